//! Sub-agents: a funder hands a sub-agent a delegated lane, and the
//! sub-agent's client spends only from it, up to its cap.

use crate::support::client::*;
use amp_sdk::client::{ClientError, CloseOutcome, Grant};
use amp_tests::*;
use solana_keypair::Keypair;
use solana_signer::Signer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sub_agent_spends_only_from_its_delegated_lane() {
    let mut h = Harness::new(TokenKind::Token).await;
    let server = Server::start(&mut h, |b| b).await;
    let funder = Agent::new(&mut h).await;
    let boss = funder.client(&h, policy(&h, 10_000, 2_000)).await;

    // The funder uses the service itself, then delegates 300 to a sub-agent.
    call(&boss, &server.url("/v1/call"), 1).await;
    let worker_key = Keypair::new();
    let grant = boss
        .delegate(&server.origin(), worker_key.pubkey(), 300, 0)
        .await
        .unwrap();
    assert_eq!(
        boss.budget().spent,
        10 + 300,
        "the cap counts against the funder's budget"
    );
    // The grant travels as JSON.
    let grant: Grant = serde_json::from_str(&serde_json::to_string(&grant).unwrap()).unwrap();

    // The sub-agent: its own key and lane file, no wallet, no chain.
    let dir = tempfile::tempdir().unwrap();
    let worker = sub_agent(dir.path(), &h, worker_key, 1_000_000).await;
    worker.adopt(grant.clone()).await.unwrap();
    worker.adopt(grant.clone()).await.unwrap();
    assert_eq!(worker.lanes().len(), 1, "adopting twice is adopting once");

    let mut calls = 0;
    let error = loop {
        match worker.get(&server.url("/v1/call")).await {
            Ok(response) => {
                response.text().await.unwrap();
                calls += 1;
            }
            Err(error) => break error,
        }
    };
    assert_eq!(calls, 30, "300 at 10 a call");
    assert!(
        matches!(error, ClientError::LaneExhausted { limit: 300, .. }),
        "{error}"
    );
    assert_eq!(
        worker.lane(&server.origin()).unwrap().record.lane,
        grant.delegation
    );

    // The sub-agent closes its lane; then the funder closes the channel.
    let outcome = worker.close(&server.origin()).await.unwrap();
    assert!(
        matches!(outcome, CloseOutcome::Closed { settled: 300, .. }),
        "{outcome:?}"
    );
    let outcome = boss.close(&server.origin()).await.unwrap();
    assert!(
        matches!(outcome, CloseOutcome::Closed { settled: 10, .. }),
        "{outcome:?}"
    );
    assert_eq!(h.tokens(&server.recipient.token).await, 310);
    assert_eq!(h.tokens(&funder.party.token).await, AGENT_FUNDS - 310);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_funder_gets_unspent_caps_back_when_the_service_vanishes() {
    let mut h = Harness::new(TokenKind::Token).await;
    let server = Server::start(&mut h, |b| b).await;
    let origin = server.origin();
    let funder = Agent::new(&mut h).await;
    let boss = funder.client(&h, policy(&h, 10_000, 2_000)).await;
    let worker_key = Keypair::new();
    let grant = boss
        .delegate(&origin, worker_key.pubkey(), 300, 0)
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let worker = sub_agent(dir.path(), &h, worker_key, 1_000).await;
    worker.adopt(grant).await.unwrap();
    call(&worker, &server.url("/v1/call"), 5).await;
    server.paywall.settle_now().await;
    assert_eq!(h.tokens(&server.recipient.token).await, 50);
    server.vanish().await;

    // The sub-agent cannot end a delegated lane without its service...
    assert!(worker.close(&origin).await.is_err());
    // ...its funder can: close requested, then after the grace period the
    // delegation is closed and the channel refunded in one transaction.
    let outcome = boss.close(&origin).await.unwrap();
    assert!(
        matches!(outcome, CloseOutcome::Closing { .. }),
        "{outcome:?}"
    );
    h.bank.advance_time(i64::from(GRACE));
    let refunded = boss.refund_due().await.unwrap();
    assert_eq!(refunded.len(), 1);
    assert!(h.channel(&refunded[0]).await.is_none());
    assert_eq!(h.tokens(&funder.party.token).await, AGENT_FUNDS - 50);
    assert_eq!(
        boss.budget().spent,
        50,
        "the delegate's settled spending, exactly"
    );
}
