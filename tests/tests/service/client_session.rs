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
use solana_keypair::Keypair;
use solana_signer::Signer;

/// Sessions with a credit of 100: a signature every 50.
const SESSION_CREDIT: u64 = 100;

fn sessions(b: amp_sdk::server::PaywallBuilder) -> amp_sdk::server::PaywallBuilder {
    b.credit(SESSION_CREDIT).session(SessionConfig {
        ttl: 3_600,
        replica: "a".into(),
    })
}

async fn status(server: &Server) -> ServiceStatus {
    let response = http().get(server.url(STATUS_PATH)).send().await.unwrap();
    response.json().await.unwrap()
}

async fn at_risk(server: &Server) -> u64 {
    status(server).await.sessions.unwrap().at_risk
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metered_streams_in_a_session_are_paid_to_the_unit() {
    let mut h = Harness::new(TokenKind::Token).await;
    let server = Server::start(&mut h, sessions).await;
    let agent = Agent::new(&mut h).await;
    let client = agent.client(&h, policy(&h, 100_000, 20_000)).await;
    call(&client, &server.url("/v1/call"), 2).await;

    // 5,000 bytes at 1 a byte: fifty times the credit, admitted in the
    // session and paid as it streams with signed credit credentials.
    let mut response = client
        .get(&server.url("/v1/stream/bytes?chunks=100&size=50&ms=1"))
        .await
        .unwrap();
    let mut received = 0u64;
    while let Some(chunk) = response.chunk().await.unwrap() {
        received += chunk.len() as u64;
    }
    assert_eq!(received, 5_000, "the stream was never cut");
    drop(response);
    // Then tokens, reported by the handler.
    let response = client.get(&server.url("/v1/tokens?units=7")).await.unwrap();
    response.text().await.unwrap();
    let owed = 2 * PER_CALL.rate + 5_000 * PER_BYTE.rate + 7 * PER_TOKEN.rate;
    assert_eq!(client.lanes()[0].record.owed, owed);

    let outcome = client.close(&server.origin()).await.unwrap();
    assert!(
        matches!(outcome, CloseOutcome::Closed { settled, .. } if settled == owed),
        "{outcome:?}"
    );
    assert_eq!(h.tokens(&server.recipient.token).await, owed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sub_agent_pays_by_mac_on_its_delegated_lane() {
    let mut h = Harness::new(TokenKind::Token).await;
    let server = Server::start(&mut h, sessions).await;
    let funder = Agent::new(&mut h).await;
    let boss = funder.client(&h, policy(&h, 10_000, 2_000)).await;
    call(&boss, &server.url("/v1/call"), 1).await;
    let worker_key = Keypair::new();
    let grant = boss
        .delegate(&server.origin(), worker_key.pubkey(), 300, 0)
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let worker = sub_agent(dir.path(), &h, worker_key, 1_000_000).await;
    worker.adopt(grant).await.unwrap();
    let mut calls = 0;
    let error = loop {
        match worker.get(&server.url("/v1/call")).await {
            Ok(response) => {
                response.text().await.unwrap();
                calls += 1;
                assert!(at_risk(&server).await < SESSION_CREDIT / 2);
            }
            Err(error) => break error,
        }
    };
    assert_eq!(calls, 30, "300 at 10 a call");
    assert!(
        matches!(error, ClientError::LaneExhausted { limit: 300, .. }),
        "{error}"
    );
    // The delegated lane paid in a session; the funder's one call did not.
    assert_eq!(status(&server).await.sessions.unwrap().lanes, 1);
}
