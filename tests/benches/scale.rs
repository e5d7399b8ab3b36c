//! One paywall, 100,000 open lanes (issue 16): what they cost in memory,
//! and whether requests slow down when they are spread over all of them
//! instead of 32.
//!
//! The lanes are opened on the embedded bank, then each is paid once with
//! a signed credential (it enters the lane cache and the durable SQLite
//! store) and once in a session (it gets a mirror of its unsigned charges).
//! The resident memory the process grew by at each step is the paywall's:
//! the bank's accounts were all there before, and every lane was read from
//! the bank once (it caches what it reads). Then, in one run, the same
//! number of requests goes to 32 lanes and to every lane once, signed and
//! in sessions, and 1,000 sequential requests give the p99 of each.
//!
//! `cargo bench -p amp-tests --bench scale` (`AMP_SCALE_LANES=N` for
//! another count; the opening takes most of the time).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use amp_sdk::server::SessionConfig;
use amp_sdk::store::{Durability, SqliteStore, VoucherStore};
use amp_tests::{Harness, Lane, TokenKind};
use common::*;
use http::HeaderMap;
use solana_keypair::Keypair;

/// The session credit: a signed credential every 100 requests.
const CREDIT: u64 = 200;
const HOT: usize = LANES;

/// The global allocator, counting the bytes allocated and not yet freed:
/// what the paywall holds, without the allocator's slack (the resident
/// memory shows that too).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter is only arithmetic on the sizes it was given.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as for `dealloc`, and `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes allocated through Rust's allocator and not freed.
fn live() -> u64 {
    LIVE.load(Ordering::Relaxed) as u64
}

/// Resident memory of this process, in bytes, after the allocator has
/// given back the free pages it keeps (the credentials a step made and
/// dropped would count otherwise).
fn rss() -> u64 {
    // SAFETY: `malloc_trim` only returns free memory to the system; it
    // takes no pointer and is safe to call from any thread at any time.
    unsafe { libc::malloc_trim(0) };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// One request per lane at `seq`, the lanes split among `HOT` clients.
fn once_each(funder: &Keypair, lanes: &[Lane], seq: u64, pay: &Pay) -> Vec<Vec<HeaderMap>> {
    let mut work = vec![Vec::new(); HOT];
    for (i, lane) in lanes.iter().enumerate() {
        work[i % HOT].push(pay.headers(funder, lane, seq, false));
    }
    work
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let count: usize = std::env::var("AMP_SCALE_LANES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let mut h = Harness::new(TokenKind::Token).await;
    let funder = h.party(u64::MAX / 4).await;
    h.transfer_lamports(&funder.key(), count as u64 * 10_000_000)
        .await;
    let recipient = h.party(0).await;
    let started = Instant::now();
    let mut lanes = Vec::with_capacity(count);
    for _ in 0..count {
        lanes.push(h.open(&funder, &recipient, 1_000_000).await);
    }
    let opening = started.elapsed();

    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn VoucherStore> =
        Arc::new(SqliteStore::open(dir.path().join("scale.sqlite"), Durability::Full).unwrap());
    let paywall = paywall_with(&h, &recipient, store, |b| {
        b.credit(CREDIT).session(SessionConfig::default())
    })
    .await;
    let url = vec![serve(&servers, app().layer(paywall.layer())).await];
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(HOT * 2)
        .build()
        .unwrap();
    let signed = Pay::Signed;
    let session = Pay::session(&recipient, CREDIT / 2);

    // The bank keeps what it reads in its own cache: read every lane once
    // first, so that what grows from here is the paywall's.
    for lane in &lanes {
        let _ = amp_sdk::lane::LaneAccounts::fetch(&h.bank, &lane.keys.channel).await;
    }
    // Every lane paid once, signed: the lane cache and the store hold it.
    // The credentials are made and gone within each step.
    let (before, live_before) = (rss(), live());
    let work = once_each(&funder.wallet, &lanes, 1, &signed);
    let first = throughput(&client, &url, work).await;
    let (after_signed, live_signed) = (rss(), live());
    // Every lane once in a session: a mirror of its unsigned charges too.
    let (before_session, live_before_session) = (after_signed, live_signed);
    let work = once_each(&funder.wallet, &lanes, 2, &session);
    throughput(&client, &url, work).await;
    let (after_session, live_session) = (rss(), live());
    let grown = |from: u64, to: u64| to.saturating_sub(from);
    let signed_heap = grown(live_before, live_signed);
    let session_heap = grown(live_before_session, live_session);
    let resident = grown(before, after_signed) + grown(before_session, after_session);

    // The same number of requests on the 32 hot lanes and once on every
    // other lane; seqs go on from 3 (the hot lanes' batches start signed).
    let (hot, rest) = lanes.split_at(HOT);
    let per_hot = rest.len() / HOT;
    let mut rows = Vec::new();
    let mut next_hot = 3u64;
    for (name, pay, spread_seq) in [("signed", &signed, 3u64), ("session", &session, 4)] {
        let hot_work = credentials(&funder.wallet, hot, next_hot, per_hot, pay);
        let hot_run = throughput(&client, &url, hot_work).await;
        let hot_latency = credentials(
            &funder.wallet,
            &hot[..1],
            next_hot + per_hot as u64,
            LATENCY_SAMPLES,
            pay,
        )
        .pop()
        .unwrap();
        let hot_latency = latencies(&client, &url, hot_latency).await;
        next_hot += (per_hot + LATENCY_SAMPLES) as u64;

        let (sampled, spread) = rest.split_at(LATENCY_SAMPLES.min(rest.len() / 2));
        let spread_run = throughput(
            &client,
            &url,
            once_each(&funder.wallet, spread, spread_seq, pay),
        )
        .await;
        let spread_latency: Vec<HeaderMap> = sampled
            .iter()
            .map(|lane| pay.headers(&funder.wallet, lane, spread_seq, false))
            .collect();
        let spread_latency = latencies(&client, &url, spread_latency).await;
        rows.push((name, hot_run, hot_latency, spread_run, spread_latency));
    }

    println!(
        "scale bench: one paywall (SQLite full, sessions with a credit of {CREDIT}), {count} lanes \
         opened on the embedded bank in {:.0} s",
        opening.as_secs_f64()
    );
    println!(
        "memory held (Rust heap, allocated and not freed): {:.1} MB with every lane paid once \
         signed ({:.0} bytes a lane; {:.0} req/s while filling), {:.1} MB more with every lane \
         in a session ({:.0} bytes a lane): {:.1} MB in all (goal <= 200 MB); resident memory \
         grew {:.1} MB (the heap, SQLite's page cache and the allocator's slack)",
        mb(signed_heap),
        signed_heap as f64 / count as f64,
        first.rps,
        mb(session_heap),
        session_heap as f64 / count as f64,
        mb(signed_heap + session_heap),
        mb(resident),
    );
    println!(
        "of which the data itself: the cached lane (LaneAccounts) {} bytes, the store's copy \
         of its state (LaneState) {} bytes, the session mirror about {} bytes; the rest is hash \
         tables and reference counts",
        std::mem::size_of::<amp_sdk::server::LaneAccounts>(),
        std::mem::size_of::<amp_sdk::store::LaneState>(),
        std::mem::size_of::<amp_sdk::store::LaneState>() + 16,
    );
    println!(
        "{:<10} {:>14} {:>16} {:>9} {:>12} {:>14} {:>12}",
        "", "32 lanes req/s", "all lanes req/s", "ratio", "32 p99 us", "all p99 us", "CPU/req us"
    );
    for (name, hot_run, hot_latency, spread_run, spread_latency) in rows {
        println!(
            "{:<10} {:>14.0} {:>16.0} {:>8.0}% {:>12.0} {:>14.0} {:>5.1} / {:<5.1}",
            name,
            hot_run.rps,
            spread_run.rps,
            100.0 * spread_run.rps / hot_run.rps,
            us(percentile(&hot_latency, 0.99)),
            us(percentile(&spread_latency, 0.99)),
            us(hot_run.cpu),
            us(spread_run.cpu),
        );
    }
    paywall.shutdown().await.unwrap();
    drop(h);
    servers.shutdown_background();
}
