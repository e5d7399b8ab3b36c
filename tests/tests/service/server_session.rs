//! Sessions (docs/SPEC.md, "Sessions"): a full credential, checked and
//! recorded as a credit credential, buys a session whose key the service
//! derives from its wallet and does not store; requests in the session are
//! paid by a MAC, kept in memory, and never let the service serve more than
//! the credit beyond the highest signed amount: not when the key is stolen
//! or guessed, requests are replayed or reordered, the service crashes, or
//! another replica takes over.

use amp_sdk::manifest::{ErrorCode, Manifest, MANIFEST_PATH, STATUS_PATH};
use amp_sdk::server::{ServiceStatus, SessionConfig};
use amp_sdk::session::{
    replica_id, Master, Session, SessionAnswer, SessionCredential, SessionKey, SESSION_PATH,
};
use amp_sdk::store::{self, Durability, LaneId, MemoryStore, VoucherStore};
use anchor_lang::prelude::Pubkey;
use http::HeaderMap;
use solana_keypair::Keypair;
use std::sync::Arc;

use crate::support::postgres;
use crate::support::server::{
    builder, credential_headers, send, sqlite, Reply, Scene, Server, CREDIT,
};

fn sessions(replica: &str) -> SessionConfig {
    SessionConfig {
        ttl: 600,
        replica: replica.into(),
    }
}

async fn scene() -> Scene {
    Scene::with(|b| b.session(sessions("a"))).await
}

async fn open(s: &Scene, headers: HeaderMap) -> Reply {
    let request = s.client.post(s.server.url(SESSION_PATH));
    send(&s.client, request, headers).await
}

/// A session the client holds: its token and key, for one lane.
struct Held {
    lane: Pubkey,
    session: Session,
    key: SessionKey,
}

impl Held {
    async fn open(s: &Scene, seq: u64, amount: u64) -> Self {
        let reply = open(s, s.credential(seq, amount)).await;
        reply.ok();
        let answer: SessionAnswer = serde_json::from_slice(reply.body.as_deref().unwrap()).unwrap();
        Self {
            lane: answer.lane,
            session: Session::decode(&answer.session).unwrap(),
            key: SessionKey::decode(&answer.key).unwrap(),
        }
    }

    /// Another session of the same lane, keyed by `master` as the service
    /// would key it (tests of what the service does with such a session).
    fn reissued(&self, master: &Master, generation: u64, session: Session) -> Self {
        Self {
            lane: self.lane,
            key: master.key(&self.lane, generation, &session),
            session,
        }
    }

    /// The headers of a session request at `seq` acknowledging `amount`.
    fn headers(&self, seq: u64, amount: u64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        SessionCredential::new(&self.key, self.session, self.lane, seq, amount).write(&mut headers);
        headers
    }
}

async fn status(s: &Scene) -> ServiceStatus {
    s.server.get_json(&s.client, STATUS_PATH).await
}

fn lane_id(s: &Scene) -> LaneId {
    LaneId {
        lane: s.lane.keys.channel,
        generation: s.lane.generation,
    }
}

/// The status once what session requests risk is `at_risk` (a metered
/// response is charged as its body ends, just after the client has it).
async fn at_risk(s: &Scene, at_risk: u64) {
    for _ in 0..200 {
        if status(s).await.sessions.unwrap().at_risk == at_risk {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("at risk: {:?}, not {at_risk}", status(s).await.sessions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_buys_a_session_whose_key_the_service_derives() {
    let s = scene().await;
    let manifest: Manifest = s.server.get_json(&s.client, MANIFEST_PATH).await;
    assert_eq!(manifest.session.unwrap().ttl, 600);

    let reply = open(&s, s.credential(1, 0)).await;
    reply.ok();
    assert_eq!(reply.receipt().owed, 0);
    let answer: SessionAnswer = serde_json::from_slice(reply.body.as_deref().unwrap()).unwrap();
    let lane = s.lane.keys.channel;
    assert_eq!(
        (answer.lane, answer.seq, answer.amount, answer.owed),
        (lane, 1, 0, 0)
    );
    let session = Session::decode(&answer.session).unwrap();
    assert_eq!(session.replica, replica_id("a"));
    assert_eq!(session.expires_at, answer.expires_at);
    assert!(answer.expires_at > 600, "the chain's clock plus the ttl");
    // The key is the one the recipient's wallet derives: nothing to store,
    // the same after a restart.
    let master = Master::from_wallet_secret(s.recipient.wallet.secret_bytes());
    let key = SessionKey::decode(&answer.key).unwrap();
    assert_eq!(key, master.key(&lane, s.lane.generation, &session));

    // Each session is its own; the credential is recorded like any other.
    let second = open(&s, s.credential(2, 0)).await;
    second.ok();
    let second: SessionAnswer = serde_json::from_slice(second.body.as_deref().unwrap()).unwrap();
    assert_ne!(second.session, answer.session);
    assert_ne!(second.key, answer.key);
    open(&s, s.credential(2, 0))
        .await
        .expect(ErrorCode::InvalidSeq);
    let stranger = Keypair::new();
    open(&s, credential_headers(&stranger, &s.lane.voucher(3, 0)))
        .await
        .expect(ErrorCode::InvalidSig);
    open(&s, HeaderMap::new())
        .await
        .expect(ErrorCode::NoChannel);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_requests_are_paid_by_mac_up_to_the_credit() {
    let s = scene().await;
    let held = Held::open(&s, 1, 0).await;
    // Ten calls at 10 each fill the credit of 100 beyond the 0 signed.
    for seq in 2..=11 {
        let amount = (seq - 1) * 10;
        let reply = s.get("/v1/call", held.headers(seq, amount)).await;
        assert_eq!(reply.ok().receipt().owed, amount);
        assert!(reply.text().ends_with(&format!(" {seq} {amount}")));
    }
    let sessions = status(&s).await.sessions.unwrap();
    assert_eq!(
        (sessions.credit_per_lane, sessions.lanes, sessions.at_risk),
        (CREDIT, 1, 100)
    );
    // One more needs a signature; the same request signed passes.
    let due = s.get("/v1/call", held.headers(12, 110)).await;
    let body = due.expect(ErrorCode::VoucherDue);
    assert_eq!((body.required, body.owed), (Some(110), Some(100)));
    assert_eq!(due.status, 402);
    s.get("/v1/call", s.credential(12, 110)).await.ok();
    assert_eq!(status(&s).await.sessions.unwrap().at_risk, 0);
    // The signed 110 moves the bound to 210.
    s.get("/v1/call", held.headers(13, 210)).await.ok();
    s.get("/v1/call", held.headers(14, 211))
        .await
        .expect(ErrorCode::VoucherDue);
    // Settlement takes only signed vouchers: 110, though 130 is owed.
    let stored = s
        .server
        .paywall
        .store()
        .lane(lane_id(&s))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.owed, stored.signed()), (110, 110));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_replayed_and_misplaced_session_requests_are_refused() {
    let mut s = scene().await;
    let held = Held::open(&s, 1, 50).await;
    s.get("/v1/call", held.headers(2, 10)).await.ok();

    // A guessed key, or a MAC over other figures.
    let guessed = Held {
        key: SessionKey::from_bytes([7; 32]),
        lane: held.lane,
        session: held.session,
    };
    s.get("/v1/call", guessed.headers(3, 20))
        .await
        .expect(ErrorCode::InvalidSig);
    let mut altered = held.headers(3, 20);
    altered.insert("AMP-Amount", 15.into());
    s.get("/v1/call", altered)
        .await
        .expect(ErrorCode::InvalidSig);
    // Replayed, reordered, or acknowledging less than is owed.
    s.get("/v1/call", held.headers(2, 10))
        .await
        .expect(ErrorCode::InvalidSeq);
    s.get("/v1/call", held.headers(5, 20)).await.ok();
    s.get("/v1/call", held.headers(4, 30))
        .await
        .expect(ErrorCode::InvalidSeq);
    let behind = s.get("/v1/call", held.headers(6, 29)).await;
    assert_eq!(behind.expect(ErrorCode::Underfunded).required, Some(30));

    // The session on another lane of the same funder: its key is not that lane's.
    let other = s.h.open(&s.funder, &s.recipient, amp_tests::DEPOSIT).await;
    let moved = Held {
        lane: other.keys.channel,
        key: held.key.clone(),
        session: held.session,
    };
    s.get("/v1/call", moved.headers(7, 30))
        .await
        .expect(ErrorCode::InvalidSig);

    // A session of another replica (the same wallet's master), or expired.
    let master = Master::from_wallet_secret(s.recipient.wallet.secret_bytes());
    let foreign = held.reissued(
        &master,
        s.lane.generation,
        Session {
            replica: replica_id("b"),
            ..held.session
        },
    );
    s.get("/v1/call", foreign.headers(7, 30))
        .await
        .expect(ErrorCode::VoucherDue);
    let stale = held.reissued(
        &master,
        s.lane.generation,
        Session {
            expires_at: 1,
            ..held.session
        },
    );
    s.get("/v1/call", stale.headers(7, 30))
        .await
        .expect(ErrorCode::VoucherDue);

    // After the lane's cooperative close, the session buys nothing.
    s.get("/v1/call", held.headers(7, 30)).await.ok();
    s.close(s.credential(8, 30)).await.ok();
    s.get("/v1/call", held.headers(9, 40))
        .await
        .expect(ErrorCode::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_without_sessions_asks_for_a_signature() {
    let s = Scene::new().await;
    let master = Master::from_wallet_secret(s.recipient.wallet.secret_bytes());
    let session = Session {
        replica: replica_id(""),
        nonce: [1; 16],
        expires_at: i64::MAX,
    };
    let held = Held {
        lane: s.lane.keys.channel,
        key: master.key(&s.lane.keys.channel, s.lane.generation, &session),
        session,
    };
    s.get("/v1/call", held.headers(1, 10))
        .await
        .expect(ErrorCode::VoucherDue);
    assert!(status(&s).await.sessions.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metered_session_requests_are_charged_what_they_use() {
    let s = scene().await;
    let held = Held::open(&s, 1, 0).await;
    // 5 tokens at 2, within the credit of 100 beyond the 0 signed.
    let reply = s.get("/v1/tokens?units=5", held.headers(2, 0)).await;
    assert_eq!(reply.ok().receipt().owed, 10);
    assert_eq!(reply.text(), "reported; at most Some(50)");
    // Bytes, 30 of them at 1; the acknowledged amount must cover what was charged.
    s.get("/v1/bytes?n=30", held.headers(3, 9))
        .await
        .expect(ErrorCode::Underfunded);
    let reply = s.get("/v1/bytes?n=30", held.headers(4, 10)).await;
    assert_eq!(reply.ok().body.as_deref().map(<[u8]>::len), Some(30));
    s.get("/v1/call", held.headers(5, 50)).await.ok();
    let stored = s.server.paywall.store().lane(lane_id(&s)).await.unwrap();
    assert_eq!(stored.unwrap().owed, 0, "no write without a signature");
    // Time, at 1,000 a second: 20 ms is charged 20 or a little more,
    // once the response has ended.
    s.get("/v1/slow?ms=20", held.headers(6, 50)).await.ok();
    let mut timed = 0;
    for _ in 0..200 {
        timed = status(&s).await.sessions.unwrap().at_risk;
        if timed >= 70 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!((70..=100).contains(&timed), "{timed}");
    // A request past what is left of the credit is cut at it.
    let reply = s.get("/v1/tokens?units=40", held.headers(7, 100)).await;
    assert_eq!(reply.ok().receipt().owed, 100);
    at_risk(&s, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loses_at_most_the_unsigned_part_and_no_voucher() {
    let dir = tempfile::tempdir().unwrap();
    let s = Scene::with(|b| b.session(sessions("a")).store(sqlite(dir.path()))).await;
    let held = Held::open(&s, 1, 0).await;
    for seq in 2..=5 {
        s.get("/v1/call", held.headers(seq, (seq - 1) * 10))
            .await
            .ok();
    }
    s.get("/v1/call", s.credential(6, 50)).await.ok();
    for seq in 7..=8 {
        s.get("/v1/call", held.headers(seq, (seq - 1) * 10))
            .await
            .ok();
    }
    // Owed 70, signed 50; the service dies before another signature.
    let s = s
        .restart(|b| b.session(sessions("a")).store(sqlite(dir.path())))
        .await;
    let stored = s.server.paywall.store().lane(lane_id(&s)).await.unwrap();
    let stored = stored.unwrap();
    assert_eq!(
        (stored.owed, stored.signed(), stored.last_seq),
        (50, 50, 6),
        "the signed voucher survives; the 20 unsigned are lost"
    );
    // The same session goes on after the restart (nothing was stored to
    // lose); the old seqs stay refused as far as the store knows them.
    s.get("/v1/call", held.headers(6, 80))
        .await
        .expect(ErrorCode::InvalidSeq);
    let reply = s.get("/v1/call", held.headers(9, 80)).await;
    assert_eq!(reply.ok().receipt().owed, 60);
    // A graceful stop writes what sessions charged: nothing lost.
    let id = lane_id(&s);
    s.server.stop().await;
    let store = sqlite(dir.path());
    let stored = store.lane(id).await.unwrap().unwrap();
    assert_eq!((stored.owed, stored.last_seq), (60, 9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replica_asks_for_a_signature_and_counts_every_charge() {
    let shared: Arc<dyn VoucherStore> = Arc::new(MemoryStore::new());
    failover(|| {
        let store = Arc::clone(&shared);
        async move { store }
    })
    .await;
}

/// The same on PostgreSQL, two replicas each with its own pool (needs
/// `AMP_TEST_POSTGRES_URL`; without it the test says it was skipped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_postgres_count_every_session_charge() {
    let Some(scope) = postgres::Scope::new("replicas_on_postgres_count_every_session_charge").await
    else {
        return;
    };
    let url = scope.url("");
    failover(|| async { store::open(&url, Durability::Full).await.unwrap() }).await;
}

/// Replicas "a" and "b" on the store `open` makes: a session at a, a
/// signature at b that does not know it, then a again.
async fn failover<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn VoucherStore>>,
{
    let mut s = scene().await;
    let first = open().await;
    let replica = |name: &str, store: Arc<dyn VoucherStore>| {
        builder(&s.h, &s.recipient.wallet)
            .session(sessions(name))
            .shared_store(store)
    };
    let a = Server::start(replica("a", Arc::clone(&first)).start().await.unwrap()).await;
    let b = Server::start(replica("b", open().await).start().await.unwrap()).await;
    let store = first;
    s.server.crash().await;
    s.server = a;
    let held = Held::open(&s, 1, 0).await;
    s.get("/v1/call", held.headers(2, 10)).await.ok();
    s.get("/v1/call", held.headers(3, 20)).await.ok();

    // Replica b takes the lane: the session is a's, so b wants a signature...
    let a = std::mem::replace(&mut s.server, b);
    s.get("/v1/call", held.headers(4, 30))
        .await
        .expect(ErrorCode::VoucherDue);
    // ...which, signed, is owed+price on b's view (a's 20 are not in the store yet).
    s.get("/v1/call", s.credential(5, 30)).await.ok();
    let b = std::mem::replace(&mut s.server, a);
    // Back on a, the session goes on; a's charges and b's add up on a's next write.
    s.get("/v1/call", held.headers(6, 40)).await.ok();
    s.get("/v1/call", s.credential(7, 50)).await.ok();
    let stored = store.lane(lane_id(&s)).await.unwrap().unwrap();
    assert_eq!(
        (stored.owed, stored.signed(), stored.last_seq),
        (50, 50, 7),
        "every charge once: 20 and 10 on a, 10 on b, 10 on a"
    );
    b.stop().await;
}
