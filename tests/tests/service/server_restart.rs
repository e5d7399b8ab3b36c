//! A server stopped without warning resumes from its SQLite file: it
//! settles exactly what was owed and keeps refusing old credentials.

use std::sync::Arc;
use std::time::Duration;

use crate::support::server::*;
use amp_sdk::chain::Chain;
use amp_sdk::manifest::ErrorCode;
use amp_sdk::server::Settler;
use amp_sdk::store::{LaneId, LaneState, MemoryStore, VoucherStore};
use amp_sdk::voucher::SignedVoucher;
use amp_tests::*;

const PAID: u64 = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_settles_what_was_owed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Scene::with(|b| b.store(sqlite(dir.path()))).await;
    for seq in 1..=PAID {
        s.get("/v1/call", s.credential(seq, seq * 10)).await.ok();
    }
    // A metered charge is recorded too: 5 units at 2.
    let owed = PAID * 10 + 10;
    let reply = s
        .get("/v1/tokens?units=5", s.credential(PAID + 1, PAID * 10))
        .await;
    assert_eq!(reply.ok().receipt().owed, owed);
    // The client's next voucher covers it; then the server dies.
    s.get("/v1/call", s.credential(PAID + 2, owed + 10))
        .await
        .ok();
    let owed = owed + 10;

    let Scene {
        mut h,
        funder,
        recipient,
        lane,
        server,
        client,
    } = s;
    server.crash().await;
    assert_eq!(
        h.tokens(&recipient.token).await,
        0,
        "nothing settled before the crash"
    );

    let paywall = builder(&h, &recipient.wallet)
        .store(sqlite(dir.path()))
        .start()
        .await
        .unwrap();
    let s = Scene {
        server: Server::start(paywall).await,
        h,
        funder,
        recipient,
        lane,
        client,
    };
    eventually("the restarted server to settle", async || {
        s.server.paywall.status().lanes_settled == 1
    })
    .await;
    let mut s = s;
    assert_eq!(s.server.paywall.status().amount_settled, owed);
    assert_eq!(s.h.tokens(&s.recipient.token).await, owed);
    assert_eq!(
        s.h.channel(&s.lane.keys.channel).await.unwrap().settled,
        owed
    );

    // The lane's state came back: old seqs are refused, the owed amount stands.
    s.get("/v1/call", s.credential(PAID + 2, owed + 10))
        .await
        .expect(ErrorCode::InvalidSeq);
    let body = s
        .get("/v1/call", s.credential(PAID + 3, owed + 9))
        .await
        .expect(ErrorCode::Underfunded);
    assert_eq!(body.required, Some(owed + 10));
    s.get("/v1/call", s.credential(PAID + 3, owed + 10))
        .await
        .ok();
    let status = s.server.stop().await;
    assert_eq!(
        status.amount_settled,
        owed + 10,
        "shutdown settles the rest"
    );
}

async fn settled(h: &mut Harness, lane: &Lane) -> u64 {
    h.channel(&lane.keys.channel).await.unwrap().settled
}

/// A voucher `funder` signed for `cumulative` on `lane`, as the paywall
/// records an accepted credential.
async fn record(store: &MemoryStore, funder: &Party, lane: &Lane, cumulative: u64) {
    let signed = SignedVoucher::sign(&funder.wallet, lane.voucher(1, cumulative));
    let id = LaneId {
        lane: lane.keys.channel,
        generation: lane.generation,
    };
    let fresh = LaneState::new(id, lane.keys.channel, None, funder.key());
    let update = move |state: &mut LaneState| {
        state.last_seq = 1;
        state.owed = cumulative;
        state.best = Some(signed);
        true
    };
    store.update(fresh, Box::new(update)).await.unwrap();
}

/// At start the settler settles what a previous run left, and only that:
/// what is paid once it runs waits for its own trigger. On one thread, the
/// settler's task first runs when the test yields, after the second voucher
/// is stored: a settler deciding what was "left" in its task would take it
/// for a leftover.
#[tokio::test(flavor = "current_thread")]
async fn only_what_a_previous_run_left_is_settled_at_start() {
    let mut h = Harness::new(TokenKind::Token).await;
    let funder = h.party(FUNDS).await;
    let recipient = h.party(0).await;
    let left = h.open(&funder, &recipient, DEPOSIT).await;
    let paid_later = h.open(&funder, &recipient, DEPOSIT).await;
    let store = Arc::new(MemoryStore::new());
    record(&store, &funder, &left, 40).await;

    let chain: Arc<dyn Chain> = Arc::new(h.bank.clone());
    let store_dyn: Arc<dyn VoucherStore> = store.clone();
    let settler = Settler::start(chain, store_dyn, manual_settlement())
        .await
        .unwrap();
    record(&store, &funder, &paid_later, 30).await;

    eventually("the leftover to settle", async || {
        settler.status().lanes_settled == 1
    })
    .await;
    // Many passes later (a tick is 20 ms), the later voucher still waits.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(settled(&mut h, &left).await, 40);
    assert_eq!(settled(&mut h, &paid_later).await, 0);
    assert_eq!(settler.status().amount_settled, 40);

    assert_eq!(settler.settle_all().await.amount_settled, 70);
    assert_eq!(settled(&mut h, &paid_later).await, 30);
    assert_eq!(h.tokens(&recipient.token).await, 70);
}
