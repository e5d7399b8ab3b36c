//! Opening a session (docs/SPEC.md, "Sessions"): a full credential, checked
//! and recorded as a credit credential, buys a session whose key the
//! service derives from its wallet and does not store. Session requests
//! themselves come with the admission path (issue 16).

use amp_sdk::manifest::{ErrorCode, Manifest, MANIFEST_PATH};
use amp_sdk::server::SessionConfig;
use amp_sdk::session::{replica_id, Master, Session, SessionAnswer, SessionKey, SESSION_PATH};
use http::HeaderMap;
use solana_keypair::Keypair;

use crate::support::server::{credential_headers, send, Reply, Scene};

async fn scene() -> Scene {
    Scene::with(|b| {
        b.session(SessionConfig {
            ttl: 600,
            replica: "a".into(),
        })
    })
    .await
}

async fn open(s: &Scene, headers: HeaderMap) -> Reply {
    let request = s.client.post(s.server.url(SESSION_PATH));
    send(&s.client, request, headers).await
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
