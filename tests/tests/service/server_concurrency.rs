//! Concurrent credentials on one lane, against the durable SQLite store:
//! each seq is accepted at most once and every accepted request is charged
//! exactly once.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::support::server::*;
use amp_sdk::manifest::ErrorCode;
use amp_sdk::store::{LaneId, VoucherStore};
use amp_tests::*;
use http::StatusCode;

const REQUESTS: u64 = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_on_one_lane() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Scene::with(|b| b.store(sqlite(dir.path()))).await;
    // A lane deep enough for every request to be paid.
    let rich = s.h.party(REQUESTS * 20).await;
    let lane = s.h.open(&rich, &s.recipient, REQUESTS * 10).await;
    let price = PER_CALL.rate;

    let url = Arc::new(s.server.url("/v1/call"));
    let mut tasks = Vec::new();
    for seq in 1..=REQUESTS {
        let headers = credential_headers(&rich.wallet, &lane.voucher(seq, seq * price));
        let (client, url) = (s.client.clone(), Arc::clone(&url));
        tasks.push(tokio::spawn(async move {
            let reply = send(&client, client.get(url.as_str()), headers).await;
            (seq, reply)
        }));
    }
    let mut accepted = Vec::new();
    for task in tasks {
        let (seq, reply) = task.await.unwrap();
        match reply.status {
            StatusCode::OK => {
                let owed = reply.receipt().owed;
                assert!(owed <= seq * price, "charged beyond the voucher");
                accepted.push((seq, owed));
            }
            _ => {
                reply.expect(ErrorCode::InvalidSeq);
            }
        }
    }
    let k = accepted.len() as u64;
    assert!(k > 0);
    // Every accepted request was charged once: the owed amounts they saw are
    // exactly price, 2 price, ..., k price.
    let owed: BTreeSet<u64> = accepted.iter().map(|(_, owed)| *owed).collect();
    assert_eq!(owed, (1..=k).map(|i| i * price).collect::<BTreeSet<_>>());
    // In the order they were charged, their seqs only went up.
    let mut by_charge = accepted.clone();
    by_charge.sort_by_key(|(_, owed)| *owed);
    assert!(by_charge.windows(2).all(|w| w[0].0 < w[1].0));

    let id = LaneId {
        lane: lane.keys.channel,
        generation: lane.generation,
    };
    let state = s.server.paywall.store().lane(id).await.unwrap().unwrap();
    let last = by_charge.last().unwrap().0;
    assert_eq!((state.owed, state.last_seq), (k * price, last));
    assert_eq!(state.signed(), last * price, "the best voucher is kept");

    let status = s.server.paywall.settle_now().await;
    assert_eq!(status.amount_settled, last * price);
    assert_eq!(s.h.tokens(&s.recipient.token).await, last * price);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_credential_is_accepted_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Scene::with(|b| b.store(sqlite(dir.path()))).await;
    let headers = s.credential(1, 10);
    let url = Arc::new(s.server.url("/v1/call"));
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (client, url, headers) = (s.client.clone(), Arc::clone(&url), headers.clone());
        tasks.push(tokio::spawn(async move {
            send(&client, client.get(url.as_str()), headers).await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        let reply = task.await.unwrap();
        if reply.status == StatusCode::OK {
            assert_eq!(reply.receipt().owed, 10);
            ok += 1;
        } else {
            reply.expect(ErrorCode::InvalidSeq);
        }
    }
    assert_eq!(ok, 1);
}
