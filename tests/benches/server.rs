//! What the paywall costs: a trivial handler served unpaid (no layer) and
//! paid (the layer, a SQLite store), on loopback, in one run.
//!
//! Throughput: `LANES` clients in parallel, each paying on its own lane
//! with credentials signed before the clock starts (a lane's requests are
//! sequential by nature: each seq must follow the last). Latency: one
//! client, one request at a time. Runs alternate unpaid and paid, and the
//! best of `ROUNDS` counts, to damp the noise of a shared machine.
//!
//! It also prints the CPU time (client and server, this whole process) per
//! request and what one strict ed25519 verification costs, since on
//! CPU-bound cores their ratio caps paid throughput against unpaid.
//!
//! `cargo bench -p amp-tests --bench server`

use std::sync::Arc;
use std::time::{Duration, Instant};

use amp_sdk::chain::Chain;
use amp_sdk::headers::Credential;
use amp_sdk::manifest::{Price, PricingMode};
use amp_sdk::server::{Paywall, SettleConfig};
use amp_sdk::store::{Durability, MemoryStore, SqliteStore, VoucherStore};
use amp_sdk::voucher::{self, SignedVoucher, VoucherSigner};
use amp_tests::{Harness, Lane, Party, TokenKind};
use axum::routing::get;
use axum::Router;
use http::HeaderMap;

const LANES: usize = 32;
const PER_LANE: usize = 150;
const LATENCY_SAMPLES: usize = 1_000;
const ROUNDS: usize = 3;

struct Setup {
    h: Harness,
    funder: Party,
    recipient: Party,
    lanes: Vec<Lane>,
}

/// Pre-signed credentials: `lanes[i]` gets seqs `first..first + count`.
fn credentials(s: &Setup, lanes: &[Lane], first: u64, count: usize) -> Vec<Vec<HeaderMap>> {
    lanes
        .iter()
        .map(|lane| {
            (0..count as u64)
                .map(|i| {
                    let seq = first + i;
                    let mut headers = HeaderMap::new();
                    Credential::sign(&s.funder.wallet, &lane.voucher(seq, seq)).write(&mut headers);
                    headers
                })
                .collect()
        })
        .collect()
}

fn app() -> Router {
    Router::new().route("/hello", get(|| async { "hello" }))
}

async fn serve(runtime: &tokio::runtime::Runtime, app: Router) -> String {
    let listener = runtime
        .spawn(async { tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap() })
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hello")
}

async fn paywall(s: &Setup, store: Arc<dyn VoucherStore>) -> Paywall {
    let chain: Arc<dyn Chain> = Arc::new(s.h.bank.clone());
    Paywall::builder(chain, s.recipient.wallet.insecure_clone())
        .mint(s.h.mint, None)
        .price(Price {
            mode: PricingMode::PerCall,
            rate: 1,
        })
        .min_grace_period(amp_tests::GRACE)
        .settle(SettleConfig {
            enabled: false,
            ..SettleConfig::default()
        })
        .shared_store(store)
        .start()
        .await
        .unwrap()
}

/// CPU time (user and system) this process has used so far.
fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given and reports failure by
    // its return value; an all-zero rusage is a valid value besides.
    let usage = unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()), 0);
        usage.assume_init()
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Time of one strict ed25519 verification of a voucher, the signer's key
/// already decompressed: what every paid request costs at least.
fn verify_cost(s: &Setup) -> Duration {
    const N: u32 = 2_000;
    let signed = SignedVoucher::sign(&s.funder.wallet, s.lanes[0].voucher(1, 1));
    let key = ed25519_dalek::VerifyingKey::from_bytes(s.funder.wallet.voucher_pubkey().as_array())
        .unwrap();
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

/// A throughput run: requests per second, and CPU time per request.
#[derive(Clone, Copy, Default)]
struct Run {
    rps: f64,
    cpu: Duration,
}

impl Run {
    /// The better of two runs: the higher throughput, the lower CPU cost.
    fn best(self, other: Run) -> Run {
        Run {
            rps: self.rps.max(other.rps),
            cpu: if self.cpu.is_zero() {
                other.cpu
            } else {
                self.cpu.min(other.cpu)
            },
        }
    }
}

/// Requests per second with one client per lane; `work[i]` are lane i's requests.
async fn throughput(client: &reqwest::Client, url: &str, work: Vec<Vec<HeaderMap>>) -> Run {
    let total: usize = work.iter().map(Vec::len).sum();
    let cpu = cpu_time();
    let started = Instant::now();
    let tasks: Vec<_> = work
        .into_iter()
        .map(|requests| {
            let (client, url) = (client.clone(), url.to_owned());
            tokio::spawn(async move {
                for headers in requests {
                    let response = client.get(&url).headers(headers).send().await.unwrap();
                    assert!(response.status().is_success(), "{}", response.status());
                    response.bytes().await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    Run {
        rps: total as f64 / started.elapsed().as_secs_f64(),
        cpu: (cpu_time() - cpu) / total as u32,
    }
}

/// Latencies of sequential requests, sorted.
async fn latencies(client: &reqwest::Client, url: &str, work: Vec<HeaderMap>) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(work.len());
    for headers in work {
        let started = Instant::now();
        let response = client.get(url).headers(headers).send().await.unwrap();
        assert!(response.status().is_success());
        response.bytes().await.unwrap();
        samples.push(started.elapsed());
    }
    samples.sort();
    samples
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
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
    let mut s = Setup {
        h,
        funder,
        recipient,
        lanes,
    };
    let latency_lane = s.lanes.pop().unwrap();
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
    let unpaid_url = serve(&servers, app()).await;
    let mut paid = Vec::new();
    for (name, store) in stores {
        // Each store gets lanes of its own incarnation: a fresh paywall and
        // store start every lane at seq 0.
        let paywall = paywall(&s, store).await;
        let url = serve(&servers, app().layer(paywall.layer())).await;
        paid.push((name, url, paywall));
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(LANES * 2)
        .build()
        .unwrap();

    // Warm up connections and caches (every lane read once by every paywall).
    let mut next_seq = 1u64;
    let warm = credentials(&s, &s.lanes, next_seq, 1);
    let warm_latency = credentials(&s, std::slice::from_ref(&latency_lane), next_seq, 1);
    throughput(&client, &unpaid_url, warm.clone()).await;
    for (_, url, _) in &paid {
        throughput(&client, url, warm.clone()).await;
        throughput(&client, url, warm_latency.clone()).await;
    }
    next_seq += 1;

    let mut unpaid = Run::default();
    let mut unpaid_lat: Option<Vec<Duration>> = None;
    let mut best: Vec<(Run, Option<Vec<Duration>>)> = vec![(Run::default(), None); paid.len()];
    for _ in 0..ROUNDS {
        let work = credentials(&s, &s.lanes, next_seq, PER_LANE);
        let single = credentials(
            &s,
            std::slice::from_ref(&latency_lane),
            next_seq,
            LATENCY_SAMPLES,
        )
        .pop()
        .unwrap();
        next_seq += PER_LANE.max(LATENCY_SAMPLES) as u64;

        unpaid = unpaid.best(throughput(&client, &unpaid_url, work.clone()).await);
        let lat = latencies(&client, &unpaid_url, single.clone()).await;
        if unpaid_lat
            .as_ref()
            .is_none_or(|l| percentile(&lat, 0.99) < percentile(l, 0.99))
        {
            unpaid_lat = Some(lat);
        }
        for (i, (_, url, _)) in paid.iter().enumerate() {
            let run = throughput(&client, url, work.clone()).await;
            let lat = latencies(&client, url, single.clone()).await;
            let (best_run, best_lat) = &mut best[i];
            *best_run = best_run.best(run);
            if best_lat
                .as_ref()
                .is_none_or(|l| percentile(&lat, 0.99) < percentile(l, 0.99))
            {
                *best_lat = Some(lat);
            }
        }
    }

    let unpaid_lat = unpaid_lat.unwrap();
    let (u50, u99) = (percentile(&unpaid_lat, 0.5), percentile(&unpaid_lat, 0.99));
    println!(
        "server bench: trivial handler on loopback, {LANES} lanes x {PER_LANE} requests, \
         {LATENCY_SAMPLES} sequential requests for latency, best of {ROUNDS}"
    );
    println!(
        "{:<26} {:>10} {:>9} {:>10} {:>10} {:>13} {:>12}",
        "", "req/s", "vs unpaid", "p50 us", "p99 us", "p99 added us", "CPU/req us"
    );
    println!(
        "{:<26} {:>10.0} {:>9} {:>10.0} {:>10.0} {:>13} {:>12.1}",
        "unpaid",
        unpaid.rps,
        "100%",
        us(u50),
        us(u99),
        "-",
        us(unpaid.cpu)
    );
    for ((name, _, _), (run, lat)) in paid.iter().zip(best) {
        let lat = lat.unwrap();
        let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
        println!(
            "{:<26} {:>10.0} {:>8.0}% {:>10.0} {:>10.0} {:>13.0} {:>12.1}",
            format!("paid, {name}"),
            run.rps,
            100.0 * run.rps / unpaid.rps,
            us(p50),
            us(p99),
            us(p99) - us(u99),
            us(run.cpu)
        );
    }
    // On CPU-bound cores throughput goes as 1 / CPU per request, and a paid
    // request costs at least an unpaid one plus one verification.
    let verify = verify_cost(&s);
    println!(
        "one strict ed25519 verify: {:.1} us, so paid can reach at most {:.0}% of unpaid \
         (unpaid CPU / (unpaid CPU + verify)) if the paywall cost nothing else",
        us(verify),
        100.0 * us(unpaid.cpu) / (us(unpaid.cpu) + us(verify))
    );
    for (_, _, paywall) in paid {
        paywall.shutdown().await.unwrap();
    }
    drop(s.h);
    servers.shutdown_background();
}
