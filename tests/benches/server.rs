//! What the paywall costs: a trivial handler served unpaid (no layer) and
//! paid (the layer, a SQLite or memory store), on loopback, in one run, by
//! the method of `common` (parallel lanes for throughput, one client for
//! latency, best of `ROUNDS`).
//!
//! The session rows pay as the SDK client does in a session (docs/SPEC.md,
//! "Sessions"): a MAC per request, a signed credential every half credit.
//!
//! It also prints the CPU time (client and server, this whole process) per
//! request and what one strict ed25519 verification costs, since on
//! CPU-bound cores their ratio caps paid throughput against unpaid.
//!
//! `cargo bench -p amp-tests --bench server`; `AMP_BENCH_ONLY=session`
//! measures only the rows whose name holds `session` (and unpaid).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use amp_sdk::server::SessionConfig;
use amp_sdk::store::{Durability, MemoryStore, SqliteStore, VoucherStore};
use amp_sdk::voucher::{self, SignedVoucher, VoucherSigner};
use amp_tests::{Harness, Lane, TokenKind};
use common::*;
use solana_keypair::Keypair;

/// The credit of the session rows: the client signs every half of it.
const SESSION_CREDIT: u64 = 200;

/// Time of one strict ed25519 verification of a voucher, the signer's key
/// already decompressed: what every paid request costs at least.
fn verify_cost(funder: &Keypair, lane: &Lane) -> Duration {
    const N: u32 = 2_000;
    let signed = SignedVoucher::sign(funder, lane.voucher(1, 1));
    let key = ed25519_dalek::VerifyingKey::from_bytes(funder.voucher_pubkey().as_array()).unwrap();
    let started = Instant::now();
    for _ in 0..N {
        voucher::verify_with_key(
            std::hint::black_box(&key),
            std::hint::black_box(&signed.voucher),
            &signed.signature,
        )
        .unwrap();
    }
    started.elapsed() / N
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // The servers get their own two workers; the client runs here.
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let mut h = Harness::new(TokenKind::Token).await;
    let funder = h.party(1_000_000_000).await;
    let recipient = h.party(0).await;
    let mut lanes = Vec::new();
    for _ in 0..=LANES {
        lanes.push(h.open(&funder, &recipient, 10_000_000).await);
    }
    let latency_lane = lanes.pop().unwrap();
    let dir = tempfile::tempdir().unwrap();

    let stores: Vec<(&str, Arc<dyn VoucherStore>)> = vec![
        (
            "sqlite full (fsync)",
            Arc::new(SqliteStore::open(dir.path().join("full.sqlite"), Durability::Full).unwrap()),
        ),
        (
            "sqlite normal",
            Arc::new(
                SqliteStore::open(dir.path().join("normal.sqlite"), Durability::Normal).unwrap(),
            ),
        ),
        ("memory", Arc::new(MemoryStore::new())),
    ];
    // The unpaid target first, then one per store, signed, then in sessions.
    let mut targets = vec![(vec![serve(&servers, app()).await], Pay::Signed)];
    let mut paid = Vec::new();
    for (name, store) in stores {
        // Each store gets lanes of its own incarnation: a fresh paywall and
        // store start every lane at seq 0.
        let paywall = paywall(&h, &recipient, store).await;
        let url = serve(&servers, app().layer(paywall.layer())).await;
        targets.push((vec![url], Pay::Signed));
        paid.push((format!("paid, {name}"), paywall));
    }
    let sqlite = |file: &str| -> Arc<dyn VoucherStore> {
        Arc::new(SqliteStore::open(dir.path().join(file), Durability::Full).unwrap())
    };
    let session_stores: Vec<(&str, Arc<dyn VoucherStore>, u64)> = vec![
        (
            "sqlite full (fsync)",
            sqlite("session.sqlite"),
            SESSION_CREDIT,
        ),
        ("memory", Arc::new(MemoryStore::new()), SESSION_CREDIT),
        (
            "sqlite full, credit x10",
            sqlite("session10.sqlite"),
            10 * SESSION_CREDIT,
        ),
    ];
    for (name, store, credit) in session_stores {
        let paywall = paywall_with(&h, &recipient, store, |b| {
            b.credit(credit).session(SessionConfig::default())
        })
        .await;
        let url = serve(&servers, app().layer(paywall.layer())).await;
        targets.push((vec![url], Pay::session(&recipient, credit / 2)));
        paid.push((format!("session, {name}"), paywall));
    }
    if let Ok(only) = std::env::var("AMP_BENCH_ONLY") {
        let mut keep = paid.iter().map(|(name, _)| name.contains(&only));
        let mut unpaid = true;
        targets.retain(|_| std::mem::take(&mut unpaid) || keep.next().unwrap_or(false));
        paid.retain(|(name, _)| name.contains(&only));
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(LANES * 2)
        .build()
        .unwrap();

    let mut best = measure(&client, &funder.wallet, &lanes, &latency_lane, &targets).await;
    let paid_best = best.split_off(1);
    let unpaid = best.pop().unwrap();

    println!(
        "server bench: trivial handler on loopback, {LANES} lanes x {PER_LANE} requests, \
         {LATENCY_SAMPLES} sequential requests for latency, best of {}; sessions with \
         a credit of {SESSION_CREDIT} at 1 a call (a signed credential every {} requests)",
        rounds(),
        SESSION_CREDIT / 2
    );
    println!(
        "{:<34} {:>10} {:>9} {:>10} {:>10} {:>13} {:>12}",
        "", "req/s", "vs unpaid", "p50 us", "p99 us", "p99 added us", "CPU/req us"
    );
    println!(
        "{:<34} {:>10.0} {:>9} {:>10.0} {:>10.0} {:>13} {:>12.1}",
        "unpaid",
        unpaid.run.rps,
        "100%",
        us(unpaid.p50()),
        us(unpaid.p99()),
        "-",
        us(unpaid.run.cpu)
    );
    for ((name, _), b) in paid.iter().zip(&paid_best) {
        println!(
            "{:<34} {:>10.0} {:>8.0}% {:>10.0} {:>10.0} {:>13.0} {:>12.1}",
            name,
            b.run.rps,
            100.0 * b.run.rps / unpaid.run.rps,
            us(b.p50()),
            us(b.p99()),
            us(b.p99()) - us(unpaid.p99()),
            us(b.run.cpu)
        );
    }
    // On CPU-bound cores throughput goes as 1 / CPU per request, and a paid
    // request costs at least an unpaid one plus one verification.
    let verify = verify_cost(&funder.wallet, &lanes[0]);
    println!(
        "one strict ed25519 verify: {:.1} us, so paid can reach at most {:.0}% of unpaid \
         (unpaid CPU / (unpaid CPU + verify)) if the paywall cost nothing else",
        us(verify),
        100.0 * us(unpaid.run.cpu) / (us(unpaid.run.cpu) + us(verify))
    );
    for (_, paywall) in paid {
        paywall.shutdown().await.unwrap();
    }
    drop(h);
    servers.shutdown_background();
}
