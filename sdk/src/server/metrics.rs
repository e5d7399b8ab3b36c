//! Operator metrics: what the paywall did, as Prometheus counters, gauges
//! and histograms in a registry the paywall owns.
//!
//! The registry belongs to one paywall, not to the process: several
//! paywalls may live in one process (tests, a server fronting two
//! services), and a global recorder would add their figures together.
//! Metrics are always recorded (atomic increments); whether anyone may read
//! them is the [`MetricsConfig`](super::MetricsConfig)'s decision, and by
//! default nobody may.
//!
//! Labels are bounded: a route is the configured route pattern (or
//! `default`), never the request's path; a code is an AMP error code; a mint
//! is one of the accepted mints. Lanes never appear in a label.
//!
//! The module is a leaf of the request path: it imports nothing of the
//! paywall, and everything that counts calls into it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anchor_lang::prelude::Pubkey;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::manifest::{ErrorCode, PricingMode};

/// The `Content-Type` of the metrics text, which Prometheus
/// scrapes as OpenMetrics.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The route label of a path priced by the default price.
pub(crate) const DEFAULT_ROUTE_LABEL: &str = "default";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    route: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UnitLabels {
    route: String,
    unit: Unit,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AmountLabels {
    route: String,
    mint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MintLabels {
    mint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: StoreOp,
}

/// What a price counts.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)] // the label values, as Prometheus shows them
enum Unit {
    call,
    token,
    byte,
    millisecond,
}

impl From<PricingMode> for Unit {
    fn from(mode: PricingMode) -> Self {
        match mode {
            PricingMode::PerToken => Unit::token,
            PricingMode::PerByte => Unit::byte,
            PricingMode::PerSecond => Unit::millisecond,
            _ => Unit::call,
        }
    }
}

/// A voucher store operation, timed.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)] // the label values, as Prometheus shows them
pub(crate) enum StoreOp {
    /// A read-modify-write of one lane under its lock.
    transact,
    /// A query for lanes (the settler's unsettled lanes).
    find,
    /// Claiming lanes to settle.
    claim,
    /// Releasing them.
    release,
}

/// One route's counters, resolved from their families once: counting a
/// request then takes a read lock and a lookup by `&str`, with no label
/// built (a label's strings, and a mint's base58, cost more than the rest
/// of a session request's accounting).
#[derive(Default)]
struct RouteCounters {
    paid: Option<Counter>,
    units: Vec<(Unit, Counter)>,
    amounts: Vec<(Pubkey, Counter)>,
}

/// Where the number of cached lanes is read from at scrape time.
type LaneCount = Box<dyn Fn() -> usize + Send + Sync>;

/// The paywall's metric families.
pub(crate) struct Metrics {
    registry: Registry,
    paid: Family<RouteLabels, Counter>,
    refused: Family<RefusedLabels, Counter>,
    units: Family<UnitLabels, Counter>,
    amount: Family<AmountLabels, Counter>,
    unsettled: Family<MintLabels, Gauge>,
    sent: Counter,
    confirmed: Counter,
    failed: Counter,
    settled: Family<MintLabels, Counter>,
    settle_seconds: Histogram,
    lanes_cached: Gauge,
    lane_count: Mutex<Option<LaneCount>>,
    store_seconds: Family<OpLabels, Histogram>,
    verify_seconds: Histogram,
    routes: RwLock<HashMap<String, RouteCounters>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Buckets from 50 µs to about 3 s: store writes and signature checks.
fn fast_buckets() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.000_05, 3.0, 11,
    ))
}

/// Buckets from 10 ms to about 3 minutes: transactions to confirmation.
fn slow_buckets() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.01, 2.0, 15,
    ))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// The families, registered under the `amp_` prefix.
    pub(crate) fn new() -> Self {
        let metrics = Self {
            registry: Registry::with_prefix("amp"),
            paid: Family::default(),
            refused: Family::default(),
            units: Family::default(),
            amount: Family::default(),
            unsettled: Family::default(),
            sent: Counter::default(),
            confirmed: Counter::default(),
            failed: Counter::default(),
            settled: Family::default(),
            settle_seconds: slow_buckets(),
            lanes_cached: Gauge::default(),
            lane_count: Mutex::new(None),
            store_seconds: Family::new_with_constructor(fast_buckets),
            verify_seconds: fast_buckets(),
            routes: RwLock::default(),
        };
        metrics.register()
    }

    fn register(mut self) -> Self {
        let r = &mut self.registry;
        r.register(
            "requests_paid",
            "Paid requests let through, by route pattern",
            self.paid.clone(),
        );
        r.register(
            "requests_refused",
            "Paid requests refused, by route pattern and AMP error code",
            self.refused.clone(),
        );
        r.register(
            "charged_units",
            "Units charged (calls, tokens, bytes, milliseconds), by route pattern",
            self.units.clone(),
        );
        r.register(
            "charged_amount",
            "Amount charged in the mint's base units, by route pattern and mint",
            self.amount.clone(),
        );
        r.register(
            "unsettled_amount",
            "Charged to lanes and not yet settled on-chain, by mint, as of the settler's last pass",
            self.unsettled.clone(),
        );
        r.register(
            "settlements_sent",
            "Settlement transactions sent",
            self.sent.clone(),
        );
        r.register(
            "settlements_confirmed",
            "Settlement transactions that landed",
            self.confirmed.clone(),
        );
        r.register(
            "settlements_failed",
            "Settlement transactions that failed (each is retried)",
            self.failed.clone(),
        );
        r.register(
            "settled_amount",
            "Amount settled to the recipient, by mint",
            self.settled.clone(),
        );
        r.register(
            "settlement_seconds",
            "Time from sending a settlement transaction to its outcome",
            self.settle_seconds.clone(),
        );
        r.register(
            "lanes_cached",
            "Lanes in the paywall's cache of on-chain accounts",
            self.lanes_cached.clone(),
        );
        r.register(
            "store_operation_seconds",
            "Voucher store operations, by kind",
            self.store_seconds.clone(),
        );
        r.register(
            "credential_verify_seconds",
            "Checking a credential's signature against its lane",
            self.verify_seconds.clone(),
        );
        self
    }

    /// Runs `count` on `route`'s counters: under the read lock when `find`
    /// finds what it needs there, else once more under the write lock
    /// after `resolve` has put it there.
    fn on_route(
        &self,
        route: &str,
        find: impl Fn(&RouteCounters) -> Option<Counter>,
        resolve: impl FnOnce(&mut RouteCounters),
    ) -> Counter {
        let found = {
            let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
            routes.get(route).and_then(&find)
        };
        if let Some(counter) = found {
            return counter;
        }
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        let counters = routes.entry(route.to_owned()).or_default();
        if find(counters).is_none() {
            resolve(counters);
        }
        find(counters).unwrap_or_default()
    }

    /// A paid request let through on `route`.
    pub(crate) fn paid(&self, route: &str) {
        self.on_route(
            route,
            |r| r.paid.clone(),
            |r| {
                let labels = RouteLabels {
                    route: route.to_owned(),
                };
                r.paid = Some(self.paid.get_or_create(&labels).clone());
            },
        )
        .inc();
    }

    /// A paid request refused on `route` with `code`.
    pub(crate) fn refused(&self, route: &str, code: ErrorCode) {
        self.refused
            .get_or_create(&RefusedLabels {
                route: route.to_owned(),
                code: code.as_str().to_owned(),
            })
            .inc();
    }

    /// `units` of `mode` charged on `route`, for `amount` of `mint`.
    pub(crate) fn charged(
        &self,
        route: &str,
        mint: &Pubkey,
        mode: PricingMode,
        units: u64,
        amount: u64,
    ) {
        let unit = Unit::from(mode);
        self.on_route(
            route,
            |r| {
                r.units
                    .iter()
                    .find(|(u, _)| *u == unit)
                    .map(|(_, c)| c.clone())
            },
            |r| {
                let labels = UnitLabels {
                    route: route.to_owned(),
                    unit,
                };
                r.units
                    .push((unit, self.units.get_or_create(&labels).clone()));
            },
        )
        .inc_by(units);
        self.on_route(
            route,
            |r| {
                r.amounts
                    .iter()
                    .find(|(m, _)| m == mint)
                    .map(|(_, c)| c.clone())
            },
            |r| {
                let labels = AmountLabels {
                    route: route.to_owned(),
                    mint: mint.to_string(),
                };
                r.amounts
                    .push((*mint, self.amount.get_or_create(&labels).clone()));
            },
        )
        .inc_by(amount);
    }

    /// What is charged and unsettled in `mint`, as the settler last counted it.
    pub(crate) fn unsettled(&self, mint: &Pubkey, amount: u64) {
        self.unsettled
            .get_or_create(&MintLabels {
                mint: mint.to_string(),
            })
            .set(i64::try_from(amount).unwrap_or(i64::MAX));
    }

    /// A settlement transaction is being sent.
    pub(crate) fn settlement_sent(&self) {
        self.sent.inc();
    }

    /// A settlement transaction's outcome after `elapsed`.
    pub(crate) fn settlement_done(&self, confirmed: bool, elapsed: Duration) {
        match confirmed {
            true => self.confirmed.inc(),
            false => self.failed.inc(),
        };
        self.settle_seconds.observe(elapsed.as_secs_f64());
    }

    /// `amount` of `mint` settled to the recipient.
    pub(crate) fn settled(&self, mint: &Pubkey, amount: u64) {
        self.settled
            .get_or_create(&MintLabels {
                mint: mint.to_string(),
            })
            .inc_by(amount);
    }

    /// Reads the number of cached lanes from `count` at each scrape.
    pub(crate) fn count_lanes_with(&self, count: impl Fn() -> usize + Send + Sync + 'static) {
        *self.lane_count.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(count));
    }

    /// Times a store operation.
    pub(crate) async fn store<T>(&self, op: StoreOp, operation: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let result = operation.await;
        self.store_seconds
            .get_or_create(&OpLabels { op })
            .observe(started.elapsed().as_secs_f64());
        result
    }

    /// Times a credential's verification.
    pub(crate) fn verify<T>(&self, verify: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = verify();
        self.verify_seconds.observe(started.elapsed().as_secs_f64());
        result
    }

    /// Every family in the OpenMetrics text format, which Prometheus scrapes
    /// ([`CONTENT_TYPE`]).
    pub(crate) fn render(&self) -> String {
        if let Some(count) = &*self.lane_count.lock().unwrap_or_else(|e| e.into_inner()) {
            self.lanes_cached
                .set(i64::try_from(count()).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// A shared handle, what every component that counts holds.
pub(crate) type SharedMetrics = Arc<Metrics>;

/// A paywall's metrics, for a program that serves them on a listener of
/// its own ([`Paywall::metrics`](super::Paywall::metrics)); cheap to clone.
#[derive(Clone, Debug)]
pub struct MetricsHandle(pub(crate) SharedMetrics);

impl MetricsHandle {
    /// Every family in the OpenMetrics text format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        self.0.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_bounded_labels() {
        let metrics = Metrics::new();
        let mint = Pubkey::new_unique();
        metrics.paid("/v1/*");
        metrics.paid("/v1/*");
        metrics.refused(DEFAULT_ROUTE_LABEL, ErrorCode::InvalidSeq);
        metrics.charged("/v1/*", &mint, PricingMode::PerCall, 2, 20);
        metrics.count_lanes_with(|| 3);
        let text = metrics.render();
        assert!(
            text.contains("amp_requests_paid_total{route=\"/v1/*\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "amp_requests_refused_total{route=\"default\",code=\"AMP_INVALID_SEQ\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains(&format!(
            "amp_charged_amount_total{{route=\"/v1/*\",mint=\"{mint}\"}} 20\n"
        )));
        assert!(text.contains("amp_charged_units_total{route=\"/v1/*\",unit=\"call\"} 2\n"));
        assert!(text.contains("amp_lanes_cached 3\n"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
