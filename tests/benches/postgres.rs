//! Paid requests per second with the PostgreSQL store, for 1, 2 and 4
//! replicas sharing one database, beside SQLite for reference.
//!
//! Same method as `benches/server.rs` (see `common`): a trivial `per_call`
//! handler on loopback; parallel lanes for throughput, one client for
//! latency, best of `ROUNDS`. Replicas are paywalls in this process, each
//! with its own store and connection pool, on the servers' two worker
//! threads. A lane's requests go to the replicas in turn, so every lane is
//! served by every replica (its row lock passes between them). Each
//! configuration has a schema of its own.
//!
//! On one machine the database, the replicas and the client share the same
//! cores: more replicas add database concurrency here, not CPU. Run it where
//! replicas have machines of their own to see them scale.
//!
//! `export AMP_TEST_POSTGRES_URL="$(scripts/test-postgres start)"`
//! `cargo bench -p amp-tests --bench postgres`

mod common;
#[path = "../tests/service/support/postgres.rs"]
mod postgres;

use std::sync::Arc;

use amp_sdk::server::Paywall;
use amp_sdk::store::{self, Durability, SqliteStore, VoucherStore};
use amp_tests::{Harness, TokenKind};
use common::*;

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
    let latency_lane = lanes.pop().unwrap();
    let dir = tempfile::tempdir().unwrap();

    let mut scopes = Vec::new();
    let mut configs = Vec::new();
    let sqlite: Arc<dyn VoucherStore> =
        Arc::new(SqliteStore::open(dir.path().join("full.sqlite"), Durability::Full).unwrap());
    let paywall_sqlite = paywall(&h, &recipient, sqlite).await;
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
            let paywall = paywall(&h, &recipient, store).await;
            urls.push(serve(&servers, app().layer(paywall.layer())).await);
            paywalls.push(paywall);
        }
        configs.push(Config {
            name: format!("postgres {durability}, {replicas} repl."),
            urls,
            paywalls,
        });
        scopes.push(scope);
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(LANES * 2)
        .build()
        .unwrap();
    // The unpaid target first, then one per configuration.
    let mut targets = vec![(vec![serve(&servers, app()).await], Pay::Signed)];
    targets.extend(configs.iter().map(|c| (c.urls.clone(), Pay::Signed)));
    let mut best = measure(&client, &funder.wallet, &lanes, &latency_lane, &targets).await;
    let paid_best = best.split_off(1);
    let unpaid = best.pop().unwrap();

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
        unpaid.run.rps,
        "100%",
        us(unpaid.p50()),
        us(unpaid.p99()),
    );
    for (config, b) in configs.iter().zip(&paid_best) {
        println!(
            "{:<30} {:>10.0} {:>8.0}% {:>10.0} {:>10.0}",
            format!("paid, {}", config.name),
            b.run.rps,
            100.0 * b.run.rps / unpaid.run.rps,
            us(b.p50()),
            us(b.p99()),
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
    drop(h);
    servers.shutdown_background();
}
