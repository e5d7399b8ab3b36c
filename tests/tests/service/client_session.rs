//! The agent client in sessions (docs/SPEC.md, "Sessions"): it opens one
//! when the manifest offers it (from a lane's second request on), MACs its requests, signs every half credit
//! so the service never has to ask, counts what it acknowledges against its
//! budget as it would a signature, and closes with a final voucher that
//! pays everything, unsigned requests included.

use std::sync::Arc;

use crate::support::client::*;
use amp_sdk::client::{ClientError, CloseOutcome};
use amp_sdk::manifest::STATUS_PATH;
use amp_sdk::server::{ServiceStatus, SessionConfig};
use amp_sdk::store::LaneId;
use amp_tests::*;

/// Sessions with a credit of 100: a signature every 50.
const SESSION_CREDIT: u64 = 100;

fn sessions(b: amp_sdk::server::PaywallBuilder) -> amp_sdk::server::PaywallBuilder {
    b.credit(SESSION_CREDIT).session(SessionConfig {
        ttl: 3_600,
        replica: "a".into(),
    })
}

async fn at_risk(server: &Server) -> u64 {
    let status: ServiceStatus = http()
        .get(server.url(STATUS_PATH))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    status.sessions.unwrap().at_risk
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_pays_by_mac_and_signs_every_half_credit() {
    let mut h = Harness::new(TokenKind::Token).await;
    let server = Server::start(&mut h, sessions).await;
    let agent = Agent::new(&mut h).await;
    let client = agent.client(&h, policy(&h, 100_000, 20_000)).await;

    for i in 1..=40u64 {
        let response = client.get(&server.url("/v1/call")).await.unwrap();
        assert_eq!(response.receipt().unwrap().owed, i * PER_CALL.rate);
        response.text().await.unwrap();
        // Never half the credit unsigned.
        assert!(at_risk(&server).await < SESSION_CREDIT / 2);
    }
    let lane = client.lanes()[0].record.lane;
    let id = LaneId {
        lane,
        generation: client.lanes()[0].record.generation,
    };
    let stored = server.paywall.store().lane(id).await.unwrap().unwrap();
    // The first call is signed; the second opens the session, whose
    // credential signs 20; then a signature at 70, 120, ... 370: the last 30
    // are acknowledged, unsigned, and not in the store.
    assert_eq!((stored.signed(), stored.owed), (370, 370));
    assert_eq!(stored.last_seq, 38, "the seq of the call that signed 370");

    let outcome = client.close(&server.origin()).await.unwrap();
    assert!(
        matches!(outcome, CloseOutcome::Closed { settled: 400, .. }),
        "{outcome:?}"
    );
    assert_eq!(h.tokens(&server.recipient.token).await, 400);
    assert_eq!(client.budget().spent, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_session_requests_are_each_paid_once() {
    let mut h = Harness::new(TokenKind::Token).await;
    let server = Server::start(&mut h, sessions).await;
    let agent = Agent::new(&mut h).await;
    let client = agent.client(&h, policy(&h, 100_000, 20_000)).await;
    client.get(&server.url("/v1/call")).await.unwrap();

    let url = Arc::new(server.url("/v1/call"));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (client, url) = (client.clone(), Arc::clone(&url));
            tokio::spawn(async move { call(&client, &url, 25).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let owed = 201 * PER_CALL.rate;
    assert_eq!(client.lanes()[0].record.owed, owed);
    assert!(at_risk(&server).await <= SESSION_CREDIT);
    let outcome = client.close(&server.origin()).await.unwrap();
    assert!(
        matches!(outcome, CloseOutcome::Closed { settled, .. } if settled == owed),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_agent_acknowledges_counts_against_its_budget() {
    let mut h = Harness::new(TokenKind::Token).await;
    let server = Server::start(&mut h, sessions).await;
    let agent = Agent::new(&mut h).await;
    let client = agent.client(&h, policy(&h, 100, 1_000)).await;
    call(&client, &server.url("/v1/call"), 10).await;
    assert!(at_risk(&server).await > 0, "the last calls went MAC'd");
    let err = client.get(&server.url("/v1/call")).await.unwrap_err();
    assert!(matches!(err, ClientError::BudgetExceeded { .. }), "{err:?}");
}
