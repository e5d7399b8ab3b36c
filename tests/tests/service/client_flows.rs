//! The agent client against the real service middleware on loopback:
//! discovery, opening on the manifest's terms, paying every mode, topping
//! up, closing; 1,000 calls over one channel settled in one transaction.

use crate::support::client::*;
use amp_sdk::client::{ClientError, CloseOutcome, LaneStatus};
use amp_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_calls_over_one_channel_settle_in_one_transaction() {
    let mut h = Harness::new(TokenKind::Token).await;
    let server = Server::start(&mut h, |b| b).await;
    let agent = Agent::new(&mut h).await;
    let client = agent.client(&h, policy(&h, 100_000, 20_000)).await;

    for i in 1..=1_000u64 {
        let response = client.get(&server.url("/v1/call")).await.unwrap();
        assert_eq!(response.receipt().unwrap().owed, i * PER_CALL.rate);
        response.text().await.unwrap();
    }
    let lanes = client.lanes();
    assert_eq!(lanes.len(), 1, "one channel for one service");
    let lane = &lanes[0];
    assert_eq!(lane.record.owed, 10_000);
    assert_eq!(lane.signed, 10_000, "never signed beyond what was owed");
    assert!(
        lane.record.seq >= 1_000,
        "the persisted seq is ahead of the used one"
    );

    let status = server.paywall.settle_now().await;
    assert_eq!(status.transactions, 1, "{status:?}");
    assert_eq!(status.amount_settled, 10_000);
    assert_eq!(h.tokens(&server.recipient.token).await, 10_000);
    let channel = h.channel(&lane.record.lane).await.unwrap();
    assert_eq!(channel.settled, 10_000);

    // Cooperative close: the rest of the deposit comes back at once.
    let outcome = client.close(&server.origin()).await.unwrap();
    assert!(
        matches!(
            outcome,
            CloseOutcome::Closed {
                settled: 10_000,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(h.channel(&lane.record.lane).await.is_none());
    assert_eq!(h.tokens(&agent.party.token).await, AGENT_FUNDS - 10_000);
    assert!(client.lanes().is_empty());
    assert_eq!(client.budget().spent, 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_on_the_manifest_terms_and_the_policy() {
    let mut h = Harness::new(TokenKind::Token2022).await;
    // The service wants at least 5,000 deposited and a day of grace.
    let server = Server::start(&mut h, |b| b.min_deposit(5_000).min_grace_period(86_400)).await;
    let agent = Agent::new(&mut h).await;
    let mut terms = policy(&h, 50_000, 1_000);
    terms.grace_period = 600;
    let client = agent.client(&h, terms.clone()).await;
    client.get(&server.url("/v1/call")).await.unwrap();
    let lane = client.lane(&server.origin()).unwrap();
    let channel = h.channel(&lane.record.lane).await.unwrap();
    assert_eq!(channel.deposited, 5_000, "raised to the service's minimum");
    assert_eq!(
        channel.grace_period, 86_400,
        "raised to the service's minimum"
    );
    assert_eq!(channel.recipient, server.recipient.key());
    assert_eq!(lane.record.status, LaneStatus::Open);

    // A policy that will not lock funds for a day refuses the service.
    let other = Agent::new(&mut h).await;
    terms.max_grace_period = 3_600;
    let strict = other.client(&h, terms).await;
    let err = strict.get(&server.url("/v1/call")).await.unwrap_err();
    assert!(matches!(err, ClientError::Terms { .. }), "{err}");
    // So does one paying in a mint the service does not take.
    let third = Agent::new(&mut h).await;
    let mut foreign = policy(&h, 50_000, 5_000);
    foreign.mint = anchor_lang::prelude::Pubkey::new_unique();
    let foreign = third.client(&h, foreign).await;
    let err = foreign.get(&server.url("/v1/call")).await.unwrap_err();
    assert!(matches!(err, ClientError::Terms { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tops_up_before_the_lane_runs_dry() {
    let mut h = Harness::new(TokenKind::Token).await;
    let server = Server::start(&mut h, |b| b).await;
    let agent = Agent::new(&mut h).await;
    let mut terms = policy(&h, 100_000, 200);
    terms.top_up_below = Some(100);
    terms.top_up_amount = Some(300);
    let client = agent.client(&h, terms).await;
    // 200 calls at 10 need 2,000: ten times the first deposit.
    call(&client, &server.url("/v1/call"), 200).await;
    let lane = client.lane(&server.origin()).unwrap().record.lane;
    let channel = h.channel(&lane).await.unwrap();
    assert!(
        channel.deposited >= 2_000,
        "deposited {}",
        channel.deposited
    );
    // A background top-up may still be landing; then the client knows it.
    eventually("the client to know its limit", async || {
        let limit = h.channel(&lane).await.unwrap().own_lane_limit();
        client.lane(&server.origin()).unwrap().record.limit == limit
    })
    .await;
    let record = client.lane(&server.origin()).unwrap().record;
    assert_eq!(record.deposited, h.channel(&lane).await.unwrap().deposited);
    assert_eq!(client.lanes().len(), 1, "topped up, never re-opened");
    server.paywall.settle_now().await;
    assert_eq!(h.tokens(&server.recipient.token).await, 2_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pays_reported_units_and_free_paths_cost_nothing() {
    let mut h = Harness::new(TokenKind::Token).await;
    let server = Server::start(&mut h, |b| b).await;
    let agent = Agent::new(&mut h).await;
    let client = agent.client(&h, policy(&h, 100_000, 5_000)).await;

    let free = client.get(&server.url("/free")).await.unwrap();
    assert!(free.receipt().is_none());
    assert_eq!(free.text().await.unwrap(), "free");

    // per_token: 7 units at 2 are owed after the response...
    let tokens = client.get(&server.url("/v1/tokens?units=7")).await.unwrap();
    assert_eq!(tokens.receipt().unwrap().owed, 14);
    tokens.text().await.unwrap();
    // ...and the next credential covers them without a second try.
    let call = client.get(&server.url("/v1/call")).await.unwrap();
    assert_eq!(call.receipt().unwrap().owed, 24);
    call.text().await.unwrap();
    assert_eq!(client.lane(&server.origin()).unwrap().record.owed, 24);

    let outcome = client.close(&server.origin()).await.unwrap();
    assert!(
        matches!(outcome, CloseOutcome::Closed { settled: 24, .. }),
        "{outcome:?}"
    );
    assert_eq!(h.tokens(&server.recipient.token).await, 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_without_a_manifest_is_not_paid() {
    let mut h = Harness::new(TokenKind::Token).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "hi" }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let agent = Agent::new(&mut h).await;
    let client = agent.client(&h, policy(&h, 1_000, 500)).await;
    let err = client.get(&format!("http://{addr}/")).await.unwrap_err();
    assert!(matches!(err, ClientError::Discovery { .. }), "{err}");
    assert!(client.lanes().is_empty());
    assert_eq!(client.budget().spent, 0);
}
