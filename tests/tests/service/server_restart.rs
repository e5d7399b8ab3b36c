//! A server stopped without warning resumes from its SQLite file: it
//! settles exactly what was owed and keeps refusing old credentials.

use crate::support::server::*;
use amp_sdk::manifest::ErrorCode;
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
