//! Several server replicas on one PostgreSQL database (needs
//! `AMP_TEST_POSTGRES_URL`; without it each test says it was skipped).
//!
//! * `two_replicas_in_one_process`: two paywalls, each with its own store
//!   connection pool, on one embedded bank. Every credential is sent to
//!   both replicas at once: each seq is accepted once, owed is exact. A
//!   metered request in flight on one replica holds the lane's credit on the
//!   other. A cooperative close on one replica closes the lane for both.
//!   Both settlers settle at once: each lane is settled by exactly one of
//!   them, none is tried twice. A replica that dies holding a lane's
//!   settlement lease hands it over when the lease runs out.
//! * `replicas_in_separate_processes`: three real OS processes (this test
//!   binary run again, see `replica_process_entry`), each an axum server
//!   with the paywall layer and a PostgreSQL store. They cannot share the
//!   in-process embedded bank, so the parent owns it and lends it to them
//!   through a small HTTP bridge (`Chain` over loopback: accounts, clock,
//!   send). Hammered concurrently on the same lanes through two replicas
//!   per credential: no seq accepted twice, owed exact. Their settlers run
//!   during the hammering: while all live, no settlement is ever tried
//!   twice (the bridge sees every transaction). One replica is killed
//!   (SIGKILL) while it holds settlement leases, in the middle of a
//!   settlement the bridge holds up; the others take its lanes over once
//!   the lease runs out and settle everything: on-chain, every lane is
//!   settled to exactly what the database says is owed, and the recipient
//!   holds exactly the sum.
//!
//! The harness (hammering, the replica processes, the bank bridge) is in
//! `support::replicas` and `support::bridge`; this file holds the tests.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amp_sdk::chain::Chain;
use amp_sdk::manifest::ErrorCode;
use amp_sdk::store::{self, Durability, LaneId, VoucherStore};
use amp_tests::*;
use anchor_lang::prelude::Pubkey;
use http::StatusCode;

use crate::support::bridge::*;
use crate::support::eventually_within;
use crate::support::postgres;
use crate::support::replicas::*;
use crate::support::server::{builder, client, credential_headers, Server, PER_SECOND};

// Two replicas in one process.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_in_one_process() {
    let Some(scope) = postgres::Scope::new("two_replicas_in_one_process").await else {
        return;
    };
    let mut h = Harness::new(TokenKind::Token).await;
    let funder = h.party(10_000_000).await;
    let recipient = h.party(0).await;
    let mut lanes = Vec::new();
    for _ in 0..4 {
        lanes.push(h.open(&funder, &recipient, 100_000).await);
    }
    let credit_lane = h.open(&funder, &recipient, 100_000).await;
    let url = scope.url("amp_lease=1");
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let store = store::open(&url, Durability::Full).await.unwrap();
        let paywall = builder(&h, &recipient.wallet)
            .credit(1_000)
            .shared_store(store)
            .start()
            .await
            .unwrap();
        replicas.push(Server::start(paywall).await);
    }
    let b = replicas.pop().unwrap();
    let a = replicas.pop().unwrap();
    let client = client();
    let paid = [a.url("/v1/call"), b.url("/v1/call")];

    // Every credential to both replicas at once, four clients per lane.
    let work = credentials(&funder.wallet, &lanes, 1, 40);
    let outcomes = hammer(&client, &paid, 2, work, 1, 4).await;
    let accepted = check_exact(&outcomes, &[0; 4]);
    for (lane, accepted) in lanes.iter().zip(&accepted) {
        let id = LaneId {
            lane: lane.keys.channel,
            generation: lane.generation,
        };
        let state = b.paywall.store().lane(id).await.unwrap().unwrap();
        assert_eq!(
            state.owed,
            accepted.count * PRICE,
            "the store agrees with the receipts"
        );
        assert_eq!(
            state.signed(),
            accepted.signed(),
            "the best voucher is kept"
        );
    }

    // A metered request in flight on A holds the lane's credit; B sees it.
    let slow = {
        let headers = credential_headers(&funder.wallet, &credit_lane.voucher(1, 0));
        let (client, url) = (client.clone(), a.url("/v1/slow?ms=700"));
        tokio::spawn(async move { pay(&client, &url, headers).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let headers = credential_headers(&funder.wallet, &credit_lane.voucher(2, 0));
    let (status, _, code) = pay(&client, &b.url("/v1/tokens?units=1"), headers).await;
    assert_eq!(
        (status, code),
        (StatusCode::PAYMENT_REQUIRED, Some(ErrorCode::Underfunded)),
        "the credit is held by the request in flight on the other replica"
    );
    assert_eq!(slow.await.unwrap().0, StatusCode::OK);
    let credit_id = LaneId {
        lane: credit_lane.keys.channel,
        generation: credit_lane.generation,
    };
    let mut owed = 0;
    for _ in 0..100 {
        let state = b.paywall.store().lane(credit_id).await.unwrap().unwrap();
        if state.reserved == 0 && state.owed > 0 {
            owed = state.owed;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        owed >= 700 * PER_SECOND.rate / 1_000,
        "charged {owed} for 700 ms"
    );
    let headers = credential_headers(&funder.wallet, &credit_lane.voucher(3, owed));
    let (status, _, _) = pay(&client, &b.url("/v1/tokens?units=1"), headers).await;
    assert_eq!(status, StatusCode::OK, "released when it finished");

    // A cooperative close on B closes the lane for A too.
    let closing = lanes[2];
    let owed_closing = accepted[2].count * PRICE;
    let headers = credential_headers(&funder.wallet, &closing.voucher(1_000, owed_closing));
    let close = client
        .post(b.url(amp_sdk::manifest::CLOSE_PATH))
        .headers(headers)
        .send()
        .await
        .unwrap();
    assert_eq!(
        close.status(),
        StatusCode::OK,
        "{}",
        close.text().await.unwrap()
    );
    let headers = credential_headers(
        &funder.wallet,
        &closing.voucher(1_001, owed_closing + PRICE),
    );
    let (status, _, code) = pay(&client, &a.url("/v1/call"), headers).await;
    assert_eq!((status, code), (StatusCode::GONE, Some(ErrorCode::Closed)));

    // Both settlers at once: every unsettled lane settled by exactly one.
    let (sa, sb) = tokio::join!(a.paywall.settle_now(), b.paywall.settle_now());
    assert_eq!(sa.lanes_settled + sb.lanes_settled, 4, "{sa:?} {sb:?}");
    assert_eq!(sa.already_settled + sb.already_settled, 0, "{sa:?} {sb:?}");
    assert_eq!(sa.failures + sb.failures, 0, "{sa:?} {sb:?}");
    for (i, lane) in lanes.iter().enumerate() {
        let channel = h.channel(&lane.keys.channel).await;
        if i == 2 {
            assert!(channel.is_none(), "closed cooperatively");
        } else {
            assert_eq!(channel.unwrap().settled, accepted[i].signed());
        }
    }

    // A replica that dies leading a lane: the other takes it over once the
    // lease runs out.
    let taken = lanes[0];
    let more = credentials(&funder.wallet, &[taken], 100, 3);
    for headers in more.into_iter().flatten() {
        assert_eq!(
            pay(&client, &a.url("/v1/call"), headers).await.0,
            StatusCode::OK
        );
    }
    let taken_id = LaneId {
        lane: taken.keys.channel,
        generation: taken.generation,
    };
    assert_eq!(
        a.paywall.store().claim(&[taken_id]).await.unwrap(),
        vec![taken_id]
    );
    a.crash().await;
    let died = Instant::now();
    let status = b.paywall.settle_now().await;
    assert_eq!(status.lanes_settled, sb.lanes_settled, "still A's lane");
    let signed_taken = 102 * PRICE;
    assert_eq!(
        h.channel(&taken.keys.channel).await.unwrap().settled,
        accepted[0].signed()
    );
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let status = b.paywall.settle_now().await;
        if status.lanes_settled > sb.lanes_settled {
            break;
        }
        assert!(
            died.elapsed() < Duration::from_secs(20),
            "never taken over: {status:?}"
        );
    }
    assert!(
        died.elapsed() >= Duration::from_millis(500),
        "taken over before the lease ran out"
    );
    assert_eq!(
        h.channel(&taken.keys.channel).await.unwrap().settled,
        signed_taken
    );

    let status = b.stop().await;
    assert_eq!(status.pending_lanes, 0, "{status:?}");
    // The closed lane paid its best voucher, which covers what it owed.
    assert!(accepted[2].signed() >= owed_closing);
    let mut total = signed_taken + accepted[2].signed() + owed;
    for i in [1, 3] {
        total += accepted[i].signed();
    }
    assert_eq!(h.tokens(&recipient.token).await, total);
    h.assert_conserved().await;
    scope.drop().await;
}

/// The body of a replica process: not a test by itself (it returns at
/// once unless `replicas_in_separate_processes` started this binary with
/// `AMP_TEST_REPLICA`).
#[test]
fn replica_process_entry() {
    let Ok(config) = std::env::var(REPLICA_VAR) else {
        return;
    };
    let config = ReplicaConfig::from_json(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(replica(config));
}

/// `replica_process_entry` as the harness names it: by its module path,
/// without the crate's name.
fn replica_entry_test() -> String {
    let module = module_path!().split_once("::").map_or("", |(_, path)| path);
    format!("{module}::replica_process_entry")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_in_separate_processes() {
    let Some(scope) = postgres::Scope::new("replicas_in_separate_processes").await else {
        return;
    };
    const LANES: usize = 6;
    let mut h = Harness::new(TokenKind::Token).await;
    let funder = h.party(100_000_000).await;
    let recipient = h.party(0).await;
    let mut lanes = Vec::new();
    for _ in 0..LANES {
        lanes.push(h.open(&funder, &recipient, 1_000_000).await);
    }
    let bridge = Arc::new(Bridge {
        bank: h.bank.clone(),
        signers: HashMap::from([(recipient.key(), recipient.wallet.insecure_clone())]),
        delay_ms: AtomicU64::new(0),
        sent: Mutex::new(Vec::new()),
    });
    let bridge_url = serve_bridge(Arc::clone(&bridge)).await;
    // A three-second settlement lease: a takeover is quick to see, and a
    // live settler on a loaded machine (settlements held 600 ms at the
    // bridge in phase 2) stays well inside it.
    let store_url = scope.url("amp_lease=3&amp_pool_size=4");
    let config = |label: &str| ReplicaConfig {
        label: label.to_owned(),
        bridge: bridge_url.clone(),
        store: store_url.clone(),
        wallet: bs58::encode(recipient.wallet.to_bytes()).into_string(),
        mint: h.mint.to_string(),
        fee_payer: Chain::fee_payer(&h.bank).to_string(),
    };
    // Started one after the other: the first applies the migrations.
    let mut a = Replica::spawn(&config("A"), &replica_entry_test());
    let b = Replica::spawn(&config("B"), &replica_entry_test());
    let c = Replica::spawn(&config("C"), &replica_entry_test());
    let client = client();

    // Phase 1: every replica alive; each credential to two of them at once;
    // the settlers settle as lanes pass the threshold, during the hammering.
    let urls: Vec<String> = [&a, &b, &c].iter().map(|r| r.url("/v1/call")).collect();
    let work = credentials(&funder.wallet, &lanes, 1, 40);
    let outcomes = hammer(&client, &urls, 2, work, 1, 4).await;
    let accepted = check_exact(&outcomes, &[0; LANES]);
    for replica in 0..3 {
        assert!(
            outcomes
                .iter()
                .any(|o| o.replica == replica && o.status == StatusCode::OK),
            "replica {replica} accepted nothing"
        );
    }
    // Let the settlers catch up, then look at what they did.
    eventually_within("phase 1 settled", Duration::from_secs(30), async || {
        let mut done = true;
        for (i, lane) in lanes.iter().enumerate() {
            let settled = h.channel(&lane.keys.channel).await.unwrap().settled;
            done &= settled == accepted[i].signed();
        }
        done
    })
    .await;
    let phase1: Vec<Sent> = bridge.sent.lock().unwrap().clone();
    assert!(
        phase1.iter().all(|s| s.landed),
        "while all live, no settlement is tried twice: {phase1:?}"
    );
    let settlers: HashSet<&str> = phase1.iter().map(|s| s.replica.as_str()).collect();
    println!(
        "phase 1: {} settlement transactions by {settlers:?}",
        phase1.len()
    );

    // Phase 2: settlements held up at the bridge (for less than the lease,
    // so that no lease runs out under a live settler); traffic to A, whose
    // settler each charge wakes; A is killed once it holds a lease in the
    // middle of a settlement, and its clients move to B.
    bridge.delay_ms.store(600, Ordering::Relaxed);
    let traffic = {
        let work = credentials(&funder.wallet, &lanes, 41, 100);
        let (client, primary, fallback) = (client.clone(), a.url("/v1/call"), b.url("/v1/call"));
        tokio::spawn(async move { hammer_failover(&client, primary, fallback, work, 41).await })
    };
    let holding = format!(
        "SELECT lane FROM amp_lanes WHERE settler = {} AND settler_until > now()",
        a.id
    );
    let mut held: Vec<Pubkey> = Vec::new();
    tokio::time::sleep(Duration::from_millis(300)).await;
    eventually_within(
        "A leading a settlement",
        Duration::from_secs(30),
        async || {
            held = scope
                .query(&holding)
                .await
                .iter()
                .map(|r| Pubkey::try_from(r.get::<_, &[u8]>(0)).unwrap())
                .collect();
            !held.is_empty()
        },
    )
    .await;
    let in_flight = bridge.sent.lock().unwrap().len();
    a.kill();
    let killed = Instant::now();
    println!("phase 2: A killed holding {} lane lease(s)", held.len());
    bridge.delay_ms.store(0, Ordering::Relaxed);
    let (outcomes2, retried) = traffic.await.unwrap();
    println!("phase 2: {retried} credential(s) retried on B after A died");
    assert!(
        outcomes2.iter().any(|o| o.replica == 1),
        "B took A's clients over"
    );
    let owed_before: Vec<u64> = accepted.iter().map(|a| a.count * PRICE).collect();
    let accepted2 = check_exact(&outcomes2, &owed_before);
    // Phase 3: more value on every lane after the kill, through C alone:
    // only the survivors can settle it.
    let owed_before: Vec<u64> = accepted
        .iter()
        .zip(&accepted2)
        .map(|(x, y)| (x.count + y.count) * PRICE)
        .collect();
    let work = credentials(&funder.wallet, &lanes, 201, 5);
    let outcomes3 = hammer(&client, &[c.url("/v1/call")], 1, work, 201, 1).await;
    let accepted3 = check_exact(&outcomes3, &owed_before);
    let owed: Vec<u64> = owed_before
        .iter()
        .zip(&accepted3)
        .map(|(o, n)| o + n.count * PRICE)
        .collect();
    // Sent one at a time, the last seq of phase 3 is the best voucher.
    let signed: Vec<u64> = accepted3.iter().map(Accepted::signed).collect();
    assert!(signed.iter().all(|s| *s == 205 * PRICE));

    // B and C take A's lanes over once its lease runs out, and settle
    // everything; the database agrees (a replica records a settlement once
    // it has landed, so it may trail the chain by a moment).
    eventually_within(
        "everything settled, on-chain and in the database",
        Duration::from_secs(60),
        async || {
            let mut done = true;
            for (i, lane) in lanes.iter().enumerate() {
                done &= h.channel(&lane.keys.channel).await.unwrap().settled == signed[i];
            }
            let unsettled = scope
                .query("SELECT count(*) FROM amp_lanes WHERE unsettled <> 0 OR settled <> 205 * 10")
                .await[0]
                .get::<_, i64>(0);
            done && unsettled == 0
        },
    )
    .await;
    let db_owed: Vec<i64> = scope
        .query("SELECT owed FROM amp_lanes ORDER BY owed")
        .await
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut expected: Vec<i64> = owed.iter().map(|o| *o as i64).collect();
    expected.sort_unstable();
    assert_eq!(db_owed, expected, "owed is exact in the database");

    let sent = bridge.sent.lock().unwrap().clone();
    let after: Vec<&Sent> = sent[in_flight..].iter().collect();
    let stale = sent.iter().filter(|s| s.stale).count();
    assert!(
        sent.iter().all(|s| s.landed || s.stale),
        "only a duplicate of the dead replica's settlement may fail: {sent:?}"
    );
    assert!(
        stale <= held.len(),
        "{stale} duplicates for {} lanes taken over",
        held.len()
    );
    for lane in &held {
        assert!(
            after.iter().any(|s| s.landed
                && s.replica != "A"
                && s.started >= killed
                && s.lanes.contains(lane)),
            "lane {lane} of the dead replica was taken over: {after:?}"
        );
    }

    let status_b = b.stop();
    let status_c = c.stop();
    for status in [&status_b, &status_c] {
        assert_eq!(status["pending_lanes"], 0, "{status}");
    }
    let settled_total: u64 = signed.iter().sum();
    assert_eq!(h.tokens(&recipient.token).await, settled_total);
    h.assert_conserved().await;
    let left = scope.query("SELECT count(*) FROM amp_replicas").await[0].get::<_, i64>(0);
    assert_eq!(left, 1, "B and C left cleanly; only the killed A remains");
    println!(
        "replicas: {} settlement transactions in all, {stale} duplicate(s); B {} C {}",
        sent.len(),
        status_b["lanes_settled"],
        status_c["lanes_settled"]
    );
    scope.drop().await;
}
