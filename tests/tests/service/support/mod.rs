//! What the service tests share: a paid service on loopback for the server
//! tests, paid services and paying agents for the client tests, a
//! PostgreSQL schema per test for the store tests, the replica test's
//! harness (`replicas`), and the one way to wait (`eventually`).

pub mod client;
pub mod postgres;
pub mod replicas;
pub mod server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use amp_sdk::chain::Chain;
use amp_sdk::manifest::{Price, PricingMode};
use amp_sdk::server::{Paywall, PaywallBuilder, SettleConfig};
use amp_tests::{Harness, GRACE};
use axum::extract::Request;
use solana_keypair::Keypair;

/// The test services' prices, in base units of the test mint.
pub const PER_CALL: Price = Price {
    mode: PricingMode::PerCall,
    rate: 10,
};
pub const PER_TOKEN: Price = Price {
    mode: PricingMode::PerToken,
    rate: 2,
};
pub const PER_BYTE: Price = Price {
    mode: PricingMode::PerByte,
    rate: 1,
};
/// One token per millisecond.
pub const PER_SECOND: Price = Price {
    mode: PricingMode::PerSecond,
    rate: 1_000,
};

/// Waits (10 s at most) until `check` holds: the one way the tests wait for
/// something that happens in the background (a settlement, a refresh).
pub async fn eventually(what: &str, check: impl AsyncFnMut() -> bool) {
    eventually_within(what, Duration::from_secs(10), check).await;
}

/// [`eventually`] with a bound of its own, for what takes longer (the
/// replicas' settlements, a lease running out).
pub async fn eventually_within(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < within,
            "timed out waiting for {what} (not within {within:?})"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A paywall on the harness's bank, paid in its mint: per call by default,
/// `/free` free, settled only when a test asks; the caller adds the metered
/// routes its app serves.
fn paywall(h: &Harness, recipient: &Keypair, credit: u64) -> PaywallBuilder {
    let chain: Arc<dyn Chain> = Arc::new(h.bank.clone());
    Paywall::builder(chain, recipient.insecure_clone())
        .mint(h.mint, Some("TEST"))
        .price(PER_CALL)
        .free("/free")
        .credit(credit)
        .min_deposit(100)
        .min_grace_period(GRACE)
        .settle(manual_settlement())
}

/// Settlement that never triggers by itself: tests call `settle_now`.
pub fn manual_settlement() -> SettleConfig {
    SettleConfig {
        threshold: u64::MAX,
        interval: Duration::from_secs(3_600),
        tick: Duration::from_millis(20),
        retry_min: Duration::from_millis(10),
        retry_max: Duration::from_millis(100),
        ..SettleConfig::default()
    }
}

/// The query parameter `name` of `request` as a number (0 when absent).
fn param(request: &Request, name: &str) -> u64 {
    request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}
