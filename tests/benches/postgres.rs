//! Paid requests per second with the PostgreSQL store, for 1, 2 and 4
//! replicas sharing one database, beside SQLite for reference.
//!
//! Same method as `benches/server.rs`: a trivial `per_call` handler on
//! loopback; `LANES` clients in parallel, each paying on its own lane with
//! credentials signed before the clock starts; latency from one client, one
//! request at a time; best of `ROUNDS`. Replicas are paywalls in this
//! process, each with its own store and connection pool, on the servers'
//! two worker threads. A lane's requests go to the replicas in turn, so
//! every lane is served by every replica (its row lock passes between
//! them). Each configuration has a schema of its own.
//!
//! On one machine the database, the replicas and the client share the same
//! cores: more replicas add database concurrency here, not CPU. Run it where
//! replicas have machines of their own to see them scale.
//!
//! `export AMP_TEST_POSTGRES_URL="$(scripts/test-postgres start)"`
//! `cargo bench -p amp-tests --bench postgres`

#[path = "../tests/support/postgres.rs"]
mod postgres;

use std::sync::Arc;
use std::time::{Duration, Instant};

use amp_sdk::chain::Chain;
use amp_sdk::headers::Credential;
use amp_sdk::manifest::{Price, PricingMode};
use amp_sdk::server::{Paywall, SettleConfig};
use amp_sdk::store::{self, Durability, SqliteStore, VoucherStore};
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

/// Requests per second with one client per lane; `work[i]` are lane i's
/// requests, sent to `urls` in turn.
async fn throughput(client: &reqwest::Client, urls: &[String], work: Vec<Vec<HeaderMap>>) -> f64 {
    let total: usize = work.iter().map(Vec::len).sum();
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
    total as f64 / started.elapsed().as_secs_f64()
}

/// Latencies of sequential requests (to `urls` in turn), sorted.
async fn latencies(
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// One configuration: its replicas' URLs and paywalls.
struct Config {
    name: String,
    urls: Vec<String>,
    paywalls: Vec<Paywall>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let Some(server) = postgres::server_url("postgres bench") else {
        return;
    };
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
    let s = Setup {
        h,
        funder,
        recipient,
    };
    let latency_lane = lanes.pop().unwrap();
    let dir = tempfile::tempdir().unwrap();

    let mut scopes = Vec::new();
    let mut configs = Vec::new();
    let sqlite: Arc<dyn VoucherStore> =
        Arc::new(SqliteStore::open(dir.path().join("full.sqlite"), Durability::Full).unwrap());
    let paywall_sqlite = paywall(&s, sqlite).await;
    configs.push(Config {
        name: "sqlite full, 1 server".into(),
        urls: vec![serve(&servers, app().layer(paywall_sqlite.layer())).await],
        paywalls: vec![paywall_sqlite],
    });
    for (replicas, durability) in [
        (1, Durability::Full),
        (2, Durability::Full),
        (4, Durability::Full),
        (1, Durability::Normal),
        (4, Durability::Normal),
    ] {
        let scope = postgres::Scope::new("postgres bench").await.unwrap();
        let mut urls = Vec::new();
        let mut paywalls = Vec::new();
        for _ in 0..replicas {
            let store = store::open(scope.url(""), durability).await.unwrap();
            let paywall = paywall(&s, store).await;
            urls.push(serve(&servers, app().layer(paywall.layer())).await);
            paywalls.push(paywall);
        }
        let durability = match durability {
            Durability::Full => "full",
            Durability::Normal => "normal",
        };
        configs.push(Config {
            name: format!("postgres {durability}, {replicas} repl."),
            urls,
            paywalls,
        });
        scopes.push(scope);
    }
    let unpaid_url = vec![serve(&servers, app()).await];
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(LANES * 2)
        .build()
        .unwrap();

    // Warm up connections and caches (every lane read once by every replica).
    let mut next_seq = 1u64;
    let replicas_max = configs.iter().map(|c| c.urls.len()).max().unwrap();
    let warm = credentials(&s, &lanes, next_seq, replicas_max);
    let warm_latency = credentials(
        &s,
        std::slice::from_ref(&latency_lane),
        next_seq,
        replicas_max,
    );
    throughput(&client, &unpaid_url, warm.clone()).await;
    for config in &configs {
        throughput(&client, &config.urls, warm.clone()).await;
        throughput(&client, &config.urls, warm_latency.clone()).await;
    }
    next_seq += replicas_max as u64;

    let mut unpaid_rps: f64 = 0.0;
    let mut unpaid_lat: Option<Vec<Duration>> = None;
    let mut best: Vec<(f64, Option<Vec<Duration>>)> = vec![(0.0, None); configs.len()];
    for _ in 0..ROUNDS {
        let work = credentials(&s, &lanes, next_seq, PER_LANE);
        let single = credentials(
            &s,
            std::slice::from_ref(&latency_lane),
            next_seq,
            LATENCY_SAMPLES,
        )
        .pop()
        .unwrap();
        next_seq += PER_LANE.max(LATENCY_SAMPLES) as u64;

        unpaid_rps = unpaid_rps.max(throughput(&client, &unpaid_url, work.clone()).await);
        let lat = latencies(&client, &unpaid_url, single.clone()).await;
        if unpaid_lat
            .as_ref()
            .is_none_or(|l| percentile(&lat, 0.99) < percentile(l, 0.99))
        {
            unpaid_lat = Some(lat);
        }
        for (i, config) in configs.iter().enumerate() {
            let rps = throughput(&client, &config.urls, work.clone()).await;
            let lat = latencies(&client, &config.urls, single.clone()).await;
            let (best_rps, best_lat) = &mut best[i];
            *best_rps = best_rps.max(rps);
            if best_lat
                .as_ref()
                .is_none_or(|l| percentile(&lat, 0.99) < percentile(l, 0.99))
            {
                *best_lat = Some(lat);
            }
        }
    }

    let unpaid_lat = unpaid_lat.unwrap();
    println!(
        "postgres bench: trivial per_call handler on loopback, {LANES} lanes x {PER_LANE} requests \
         (a lane's requests to the replicas in turn), {LATENCY_SAMPLES} sequential requests for \
         latency, best of {ROUNDS}; {} cores shared by the database, the servers and the client",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("database: {}", server.split('@').next_back().unwrap_or("?"));
    println!(
        "{:<30} {:>10} {:>9} {:>10} {:>10}",
        "", "req/s", "vs unpaid", "p50 us", "p99 us"
    );
    println!(
        "{:<30} {:>10.0} {:>9} {:>10.0} {:>10.0}",
        "unpaid",
        unpaid_rps,
        "100%",
        us(percentile(&unpaid_lat, 0.5)),
        us(percentile(&unpaid_lat, 0.99)),
    );
    for (config, (rps, lat)) in configs.iter().zip(best) {
        let lat = lat.unwrap();
        println!(
            "{:<30} {:>10.0} {:>8.0}% {:>10.0} {:>10.0}",
            format!("paid, {}", config.name),
            rps,
            100.0 * rps / unpaid_rps,
            us(percentile(&lat, 0.5)),
            us(percentile(&lat, 0.99)),
        );
    }
    for config in configs {
        for paywall in config.paywalls {
            paywall.shutdown().await.unwrap();
        }
    }
    for scope in scopes {
        scope.drop().await;
    }
    drop(s.h);
    servers.shutdown_background();
}
