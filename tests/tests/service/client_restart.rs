//! A killed agent restarts from its lane file and continues on the same
//! channel: no new channel, no seq used twice, nothing paid twice.

use crate::support::client::*;
use amp_sdk::client::{CloseOutcome, LaneStatus};
use amp_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agent_continues_where_it_stopped() {
    let mut h = Harness::new(TokenKind::Token).await;
    let server = Server::start(&mut h, |b| b).await;
    let agent = Agent::new(&mut h).await;
    let mut terms = policy(&h, 100_000, 5_000);
    terms.lease = 16;

    let client = agent.client(&h, terms.clone()).await;
    call(&client, &server.url("/v1/call"), 50).await;
    let before = client.lane(&server.origin()).unwrap();
    // The file holds a seq at or above every seq used: written before sending.
    let file = lane_file(&agent.file());
    let persisted: u64 = file["lanes"][0]["seq"].as_str().unwrap().parse().unwrap();
    assert!(
        persisted >= before.seq,
        "file seq {persisted} < used {}",
        before.seq
    );
    // Killed: no close, no flush; only what is on disk survives.
    drop(client);

    let client = agent.client(&h, terms).await;
    let after = client.lane(&server.origin()).unwrap();
    assert_eq!(after.record.lane, before.record.lane, "the same channel");
    assert!(after.seq >= before.seq, "seqs continue above the old ones");
    call(&client, &server.url("/v1/call"), 50).await;
    assert_eq!(client.lanes().len(), 1, "no second channel");
    assert_eq!(client.lane(&server.origin()).unwrap().record.owed, 1_000);

    // Exactly a hundred calls are paid for, once.
    let outcome = client.close(&server.origin()).await.unwrap();
    assert!(
        matches!(outcome, CloseOutcome::Closed { settled: 1_000, .. }),
        "{outcome:?}"
    );
    assert_eq!(h.tokens(&server.recipient.token).await, 1_000);
    assert_eq!(h.tokens(&agent.party.token).await, AGENT_FUNDS - 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_client_cannot_share_the_lane_file() {
    let mut h = Harness::new(TokenKind::Token).await;
    let agent = Agent::new(&mut h).await;
    let _first = agent.client(&h, policy(&h, 1_000, 500)).await;
    let second = agent.builder(&h, policy(&h, 1_000, 500)).build().await;
    assert!(second.is_err(), "two clients on one file would reuse seqs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_interrupted_by_a_crash_is_found_on_restart() {
    let mut h = Harness::new(TokenKind::Token).await;
    let server = Server::start(&mut h, |b| b).await;
    let agent = Agent::new(&mut h).await;
    let terms = policy(&h, 10_000, 1_000);

    // A first run records the lane as opening, then dies before it learns
    // that its open transaction landed.
    let client = agent.client(&h, terms.clone()).await;
    call(&client, &server.url("/v1/call"), 1).await;
    let lane = client.lane(&server.origin()).unwrap().record;
    drop(client);
    let mut file = lane_file(&agent.file());
    file["lanes"][0]["status"] = serde_json::json!({ "state": "opening" });
    // Also an open that never landed: a channel that does not exist.
    let mut ghost = file["lanes"][0].clone();
    ghost["lane"] = anchor_lang::prelude::Pubkey::new_unique()
        .to_string()
        .into();
    ghost["service"] = "http://127.0.0.1:9".into();
    file["lanes"].as_array_mut().unwrap().push(ghost);
    std::fs::write(agent.file(), serde_json::to_vec(&file).unwrap()).unwrap();

    let client = agent.client(&h, terms).await;
    let lanes = client.lanes();
    assert_eq!(lanes.len(), 1, "the ghost is forgotten");
    assert_eq!(lanes[0].record.lane, lane.lane);
    assert_eq!(lanes[0].record.status, LaneStatus::Open);
    call(&client, &server.url("/v1/call"), 1).await;
    assert_eq!(client.lanes().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_still_in_flight_at_restart_is_kept_and_its_nonce_reused() {
    let mut h = Harness::new(TokenKind::Token).await;
    let server = Server::start(&mut h, |b| b).await;
    let agent = Agent::new(&mut h).await;
    let terms = policy(&h, 10_000, 1_000);

    // A run records its opening and is killed right after sending the open
    // transaction, which has not landed yet (here: never sent at all, the
    // same as far as the next run can tell).
    let client = agent.client(&h, terms.clone()).await;
    call(&client, &server.url("/v1/call"), 1).await;
    let first = client.lane(&server.origin()).unwrap().record;
    drop(client);
    let mut file = lane_file(&agent.file());
    let mut pending = file["lanes"][0].clone();
    let nonce: u64 = 4_242;
    let recipient: anchor_lang::prelude::Pubkey = first.recipient;
    let funder: anchor_lang::prelude::Pubkey = first.funder;
    let channel = amp_sdk::pda::channel(&funder, &recipient, nonce).0;
    pending["lane"] = channel.to_string().into();
    pending["nonce"] = nonce.to_string().into();
    pending["status"] = serde_json::json!({ "state": "opening" });
    pending["opening_since"] = serde_json::json!(now());
    file["lanes"] = serde_json::json!([pending]);
    std::fs::write(agent.file(), serde_json::to_vec(&file).unwrap()).unwrap();

    // The next run keeps the recent opening (its transaction may still land)…
    let client = agent.client(&h, terms).await;
    let lanes = client.lanes();
    assert_eq!(lanes.len(), 1, "a recent opening is kept");
    assert_eq!(lanes[0].record.status, LaneStatus::Opening);
    // …and its next open for the service reuses the nonce: the same channel.
    call(&client, &server.url("/v1/call"), 1).await;
    let lane = client.lane(&server.origin()).unwrap().record;
    assert_eq!(lane.lane, channel);
    assert_eq!(lane.status, LaneStatus::Open);
    assert_eq!(client.lanes().len(), 1);
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
