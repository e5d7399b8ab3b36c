//! What the paywall benches share: a trivial handler on loopback, pre-signed
//! credentials, and the measuring method.
//!
//! Throughput: `LANES` clients in parallel, each paying on its own lane
//! with credentials signed before the clock starts (a lane's requests are
//! sequential by nature: each seq must follow the last). Latency: one
//! client, one request at a time. Runs alternate between the targets, and
//! the best of `ROUNDS` counts, to damp the noise of a shared machine.
//! `AMP_BENCH_ROUNDS` runs more rounds (to profile a run under `perf`).

// Each bench uses part of what is here.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use amp_sdk::chain::Chain;
use amp_sdk::headers::Credential;
use amp_sdk::manifest::{Price, PricingMode};
use amp_sdk::server::{Paywall, PaywallBuilder, SettleConfig};
use amp_sdk::session::{replica_id, Master, Session, SessionCredential};
use amp_sdk::store::VoucherStore;
use amp_tests::{Harness, Lane, Party};
use axum::routing::get;
use axum::Router;
use http::HeaderMap;
use solana_keypair::Keypair;

pub const LANES: usize = 32;
pub const PER_LANE: usize = 150;
pub const LATENCY_SAMPLES: usize = 1_000;
pub const ROUNDS: usize = 3;

/// `ROUNDS`, or `AMP_BENCH_ROUNDS` when set.
pub fn rounds() -> usize {
    std::env::var("AMP_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(ROUNDS)
}

/// How a target's requests pay.
#[derive(Clone)]
pub enum Pay {
    /// A signed credential on every request.
    Signed,
    /// In a session (docs/SPEC.md, "Sessions"), as the SDK client pays: a
    /// MAC per request and a signed credential every `every` seqs (half the
    /// credit, at 1 a call). The session is made from the recipient's
    /// master secret, as the session endpoint would issue it.
    Session { master: Master, every: u64 },
}

impl Pay {
    /// A session of `recipient`'s paywall (replica "", never expiring),
    /// signing every `every` requests.
    pub fn session(recipient: &Party, every: u64) -> Self {
        Pay::Session {
            master: Master::from_wallet_secret(recipient.wallet.secret_bytes()),
            every,
        }
    }

    /// Lane `lane`'s credential at `seq`, acknowledging `seq` (1 a call);
    /// a session signs the `first` of a batch too, since seqs jump between
    /// batches.
    pub fn headers(&self, funder: &Keypair, lane: &Lane, seq: u64, first: bool) -> HeaderMap {
        let mut headers = HeaderMap::new();
        match self {
            Pay::Session { master, every } if !seq.is_multiple_of(*every) && !first => {
                let session = Session {
                    replica: replica_id(""),
                    nonce: [7; 16],
                    expires_at: i64::MAX,
                };
                let key = master.key(&lane.keys.channel, lane.generation, &session);
                SessionCredential::new(&key, session, lane.keys.channel, seq, seq)
                    .write(&mut headers);
            }
            _ => Credential::sign(funder, &lane.voucher(seq, seq)).write(&mut headers),
        }
        headers
    }
}

/// Credentials made before the clock starts: `lanes[i]` gets seqs
/// `first..first + count`, paid as `pay` says.
pub fn credentials(
    funder: &Keypair,
    lanes: &[Lane],
    first: u64,
    count: usize,
    pay: &Pay,
) -> Vec<Vec<HeaderMap>> {
    lanes
        .iter()
        .map(|lane| {
            (0..count as u64)
                .map(|i| pay.headers(funder, lane, first + i, i == 0))
                .collect()
        })
        .collect()
}

/// The trivial handler.
pub fn app() -> Router {
    Router::new().route("/hello", get(|| async { "hello" }))
}

/// Serves `app` on loopback from `runtime`; the handler's URL.
pub async fn serve(runtime: &tokio::runtime::Runtime, app: Router) -> String {
    let listener = runtime
        .spawn(async { tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap() })
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hello")
}

/// A paywall charging 1 per call into `recipient`'s account, settling never.
pub async fn paywall(h: &Harness, recipient: &Party, store: Arc<dyn VoucherStore>) -> Paywall {
    paywall_with(h, recipient, store, |b| b).await
}

/// [`paywall`], adjusted by `configure` (sessions, credit).
pub async fn paywall_with(
    h: &Harness,
    recipient: &Party,
    store: Arc<dyn VoucherStore>,
    configure: impl FnOnce(PaywallBuilder) -> PaywallBuilder,
) -> Paywall {
    let chain: Arc<dyn Chain> = Arc::new(h.bank.clone());
    let builder = Paywall::builder(chain, recipient.wallet.insecure_clone())
        .mint(h.mint, None)
        .price(Price {
            mode: PricingMode::PerCall,
            rate: 1,
        })
        .min_grace_period(amp_tests::GRACE)
        .settle(SettleConfig {
            enabled: false,
            ..SettleConfig::default()
        })
        .shared_store(store);
    configure(builder).start().await.unwrap()
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

/// A throughput run: requests per second, and CPU time per request.
#[derive(Clone, Copy, Default)]
pub struct Run {
    pub rps: f64,
    pub cpu: Duration,
}

/// Requests per second with one client per lane; `work[i]` are lane i's
/// requests, sent to `urls` in turn.
pub async fn throughput(
    client: &reqwest::Client,
    urls: &[String],
    work: Vec<Vec<HeaderMap>>,
) -> Run {
    let total: usize = work.iter().map(Vec::len).sum();
    let cpu = cpu_time();
    let started = Instant::now();
    let tasks: Vec<_> = work
        .into_iter()
        .enumerate()
        .map(|(lane, requests)| {
            let (client, urls) = (client.clone(), urls.to_vec());
            tokio::spawn(async move {
                for (i, headers) in requests.into_iter().enumerate() {
                    let url = &urls[(lane + i) % urls.len()];
                    let response = client.get(url).headers(headers).send().await.unwrap();
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

/// Latencies of sequential requests (to `urls` in turn), sorted.
pub async fn latencies(
    client: &reqwest::Client,
    urls: &[String],
    work: Vec<HeaderMap>,
) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(work.len());
    for (i, headers) in work.into_iter().enumerate() {
        let started = Instant::now();
        let response = client
            .get(&urls[i % urls.len()])
            .headers(headers)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        response.bytes().await.unwrap();
        samples.push(started.elapsed());
    }
    samples.sort();
    samples
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The best a target did over the rounds: the highest throughput, the
/// lowest CPU per request, the latencies of the round with the lowest p99.
pub struct Best {
    pub run: Run,
    pub latencies: Vec<Duration>,
}

impl Best {
    pub fn p50(&self) -> Duration {
        percentile(&self.latencies, 0.5)
    }

    pub fn p99(&self) -> Duration {
        percentile(&self.latencies, 0.99)
    }

    fn record(best: &mut Option<Best>, run: Run, latencies: Vec<Duration>) {
        let Some(b) = best else {
            *best = Some(Best { run, latencies });
            return;
        };
        b.run.rps = b.run.rps.max(run.rps);
        b.run.cpu = b.run.cpu.min(run.cpu);
        if percentile(&latencies, 0.99) < b.p99() {
            b.latencies = latencies;
        }
    }
}

/// Measures every target (each a list of replica URLs, paying as its
/// [`Pay`] says) by the method above, on `lanes` for throughput and
/// `latency_lane` for latency. Each target must start every lane at seq 0
/// (its own paywall and store).
pub async fn measure(
    client: &reqwest::Client,
    funder: &Keypair,
    lanes: &[Lane],
    latency_lane: &Lane,
    targets: &[(Vec<String>, Pay)],
) -> Vec<Best> {
    // Warm up connections and caches: every lane read once by every
    // replica, with a signed credential (a session needs one first).
    let mut next_seq = 1u64;
    let replicas = targets
        .iter()
        .map(|(urls, _)| urls.len())
        .max()
        .unwrap_or(1);
    let latency = std::slice::from_ref(latency_lane);
    let warm = credentials(funder, lanes, next_seq, replicas, &Pay::Signed);
    let warm_latency = credentials(funder, latency, next_seq, replicas, &Pay::Signed);
    for (urls, _) in targets {
        throughput(client, urls, warm.clone()).await;
        throughput(client, urls, warm_latency.clone()).await;
    }
    next_seq += replicas as u64;

    let mut best: Vec<Option<Best>> = targets.iter().map(|_| None).collect();
    for _ in 0..rounds() {
        for ((urls, pay), best) in targets.iter().zip(&mut best) {
            let work = credentials(funder, lanes, next_seq, PER_LANE, pay);
            let single = credentials(funder, latency, next_seq, LATENCY_SAMPLES, pay)
                .pop()
                .unwrap();
            let run = throughput(client, urls, work).await;
            let lat = latencies(client, urls, single).await;
            Best::record(best, run, lat);
        }
        next_seq += PER_LANE.max(LATENCY_SAMPLES) as u64;
    }
    best.into_iter().map(Option::unwrap).collect()
}
