//! What a service operator decides: prices, accepted mints, the terms a lane
//! must meet, and how settlement runs. Written in code through
//! [`PaywallBuilder`](super::PaywallBuilder) or in a TOML file ([`FileConfig`]):
//!
//! ```toml
//! wallet = "/etc/amp/recipient.json"   # Solana CLI keypair file; receives payments
//! cluster = "devnet"                   # or localnet, mainnet-beta, an RPC URL
//! store = "/var/lib/amp/vouchers.sqlite"  # or postgres://amp:secret@db:5432/amp (shared by replicas)
//! durability = "full"                  # fsync every voucher ("normal": not on power loss)
//! min_deposit = "1000000"
//! min_grace_period = 3600
//! credit = "1000"
//! free = ["/health", "/docs/*"]
//!
//! [[mints]]
//! mint = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"
//! symbol = "USDC"
//!
//! [pricing.default]
//! mode = "per_call"
//! rate = "100"
//!
//! [pricing.routes."/v1/chat"]
//! mode = "per_token"
//! rate = "2"
//!
//! [pricing.methods."/mcp"."tools/call"]   # JSON-RPC: priced by method, others free
//! mode = "per_call"
//! rate = "500"
//!
//! [settle]
//! threshold = "1000000"   # settle a lane once this much is unsettled...
//! interval = 3600         # ...or once its oldest unsettled voucher is this old (seconds)
//!
//! [settle.fees]           # micro-lamports per compute unit
//! max_compute_unit_price = 100000   # never pay more (the default)
//! percentile = 75         # of recent fees on the accounts settled (the default)
//! # compute_unit_price = 1000       # or a fixed price, at most the maximum
//!
//! [metrics]               # Prometheus metrics; not served without this table
//! token = "a-long-random-secret"   # GET /.well-known/amp/metrics with `Authorization: Bearer …`
//! # route = "/.well-known/amp/metrics"
//! # listen = "127.0.0.1:9464"      # amp serve: also on a listener of their own, no token
//! ```
//!
//! Amounts are decimal strings, as in the manifest; durations are seconds
//! (fractions allowed). Relative paths are relative to the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::ServerError;
use super::rate_limit::RateLimit;
use crate::decimal::u64_string;
use crate::fees::FeePolicy;
use crate::manifest::{Price, Pricing, PricingMode};
use crate::store::Durability;

/// Largest configuration file read.
const MAX_FILE_LEN: u64 = 1024 * 1024;

/// The service's terms and policies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The manifest's `network` (`solana:devnet`); by default the cluster's
    /// name, or `solana:localnet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Accepted mints; decimals are read from the chain.
    pub mints: Vec<MintConfig>,
    /// Smallest lane limit accepted (deposit, or a delegation's cap).
    #[serde(default, with = "u64_string")]
    pub min_deposit: u64,
    /// Shortest grace period accepted: the server needs that long to settle
    /// after a close request.
    #[serde(default = "default_min_grace_period")]
    pub min_grace_period: u32,
    /// Most served beyond the signed amount, for metered prices.
    #[serde(default, with = "u64_string")]
    pub credit: u64,
    /// The default price and per-route prices (`[pricing.default]`, `[pricing.routes."/path"]`).
    pub pricing: Pricing,
    /// Paths served without payment: exact, or a prefix ending in `*`.
    #[serde(default)]
    pub free: Vec<String>,
    /// How often cached lanes and the chain's clock are re-read.
    #[serde(default = "default_refresh", with = "seconds")]
    pub refresh: Duration,
    /// A voucher must stay valid this long after it is accepted, so that it
    /// can still be settled; one expiring sooner is `AMP_EXPIRED`.
    #[serde(default = "default_voucher_margin", with = "seconds")]
    pub voucher_margin: Duration,
    /// Per-lane request rate; `AMP_RATE_EXCEEDED` beyond it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Chain reads of unknown lanes in flight at once; beyond it a request
    /// naming an unknown lane is `AMP_RATE_EXCEEDED` (protects the RPC node).
    #[serde(default = "default_max_lookups")]
    pub max_lookups: usize,
    /// Serve the settler's status at [`STATUS_PATH`](super::STATUS_PATH).
    #[serde(default = "yes")]
    pub status_route: bool,
    /// When and how lanes are settled (the `[settle]` table).
    #[serde(default)]
    pub settle: SettleConfig,
    /// Front the rent and fee of agents' channels (the `[sponsor]` table);
    /// off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sponsor: Option<SponsorConfig>,
    /// Offer sessions (the `[session]` table, docs/SPEC.md "Sessions"); off
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionConfig>,
    /// Serve the operator metrics (the `[metrics]` table); not served when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsConfig>,
}

/// Where the operator metrics may be read. They are never public by
/// accident: on the service's own port only to a request bearing `token`,
/// or on a listener of their own that the operator puts on a private
/// address (`listen`, which `amp serve` binds; an embedding program serves
/// [`Paywall::metrics_text`](super::Paywall::metrics_text) itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// The path on the service's port, served only with a `token`.
    #[serde(default = "default_metrics_route")]
    pub route: String,
    /// The bearer token a scrape on the service's port must send
    /// (`Authorization: Bearer <token>`); without one, the route is not served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A separate listener, without a token, for a program that binds it
    /// (`amp serve` does); the paywall itself only serves the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
}

impl MetricsConfig {
    /// Metrics on the service's port at [`METRICS_PATH`] to `token`'s bearer.
    pub fn with_token(token: impl Into<String>) -> Self {
        Self {
            route: default_metrics_route(),
            token: Some(token.into()),
            listen: None,
        }
    }
}

/// Where the metrics are served by default, beside the paywall's other endpoints.
pub const METRICS_PATH: &str = "/.well-known/amp/metrics";

/// The shortest bearer token accepted: a guessable one would make the
/// metrics public after all.
const MIN_TOKEN_LEN: usize = 16;

fn default_metrics_route() -> String {
    METRICS_PATH.to_owned()
}

/// Sessions: requests paid with a MAC instead of a signature, `credit` the
/// bound on what is served unsigned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// How long a session lasts, in seconds.
    pub ttl: u32,
    /// This replica's name: a session is honoured only by the replica that
    /// issued it, so replicas sharing a store need distinct names.
    pub replica: String,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ttl: 3_600,
            replica: String::new(),
        }
    }
}

/// Sponsored opening: which channels the service fronts the rent and fee of,
/// and how much it risks. Deposits start at `min_deposit` and grace periods
/// at `min_grace_period`, as for every lane. Lamports for SOL amounts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SponsorConfig {
    /// Mints sponsored; empty = every accepted mint.
    #[serde(with = "crate::base58::vec")]
    pub mints: Vec<Pubkey>,
    /// Largest deposit of a sponsored open.
    #[serde(with = "u64_string")]
    pub max_deposit: u64,
    /// Longest grace period (seconds) of a sponsored open.
    pub max_grace_period: u32,
    /// Highest compute-unit price (micro-lamports) a sponsored transaction may set.
    pub max_compute_unit_price: u64,
    /// Highest compute-unit limit a sponsored transaction may set.
    pub max_compute_unit_limit: u32,
    /// Sponsor the fee of top-ups too.
    pub top_up: bool,
    /// Sponsored transactions per minute from one funder.
    pub funder_opens_per_minute: u32,
    /// Sponsored transactions per minute in total.
    pub opens_per_minute: u32,
    /// Rent (lamports) fronted for one funder's open channels at most.
    pub funder_exposure: u64,
    /// Rent (lamports) fronted and not yet returned at most.
    pub exposure: u64,
}

impl Default for SponsorConfig {
    fn default() -> Self {
        Self {
            mints: Vec::new(),
            max_deposit: u64::MAX,
            max_grace_period: amp_channel::constants::MAX_GRACE_PERIOD,
            // 0.1 lamport per unit: at 200,000 units, 20,000 lamports.
            max_compute_unit_price: 100_000,
            max_compute_unit_limit: 200_000,
            top_up: true,
            funder_opens_per_minute: 2,
            opens_per_minute: 60,
            // A channel's rent is about 0.0045 SOL: four per funder, about
            // 200 in all.
            funder_exposure: 20_000_000,
            exposure: 1_000_000_000,
        }
    }
}

/// An accepted mint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintConfig {
    /// The mint's address.
    #[serde(with = "crate::base58")]
    pub mint: Pubkey,
    /// A display name for the manifest (`USDC`); optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
}

/// When and how lanes are settled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SettleConfig {
    /// Run the settler at all (a separate process may settle from the store).
    pub enabled: bool,
    /// Settle a lane once this much of it is unsettled.
    #[serde(with = "u64_string")]
    pub threshold: u64,
    /// Settle a lane once it has had unsettled value this long.
    #[serde(with = "seconds")]
    pub interval: Duration,
    /// How often the settler looks at the store.
    #[serde(with = "seconds")]
    pub tick: Duration,
    /// Settle at once when the best voucher expires within this long.
    #[serde(with = "seconds")]
    pub expiry_margin: Duration,
    /// First retry delay after a failed settlement; doubles up to `retry_max`.
    #[serde(with = "seconds")]
    pub retry_min: Duration,
    /// Longest delay between retries of a failed settlement.
    #[serde(with = "seconds")]
    pub retry_max: Duration,
    /// Settle everything unsettled when the server shuts down.
    pub on_shutdown: bool,
    /// Longest the shutdown settlement may take.
    #[serde(with = "seconds")]
    pub shutdown_timeout: Duration,
    /// How settlement transactions pay for priority (the `[settle.fees]` table).
    pub fees: FeePolicy,
}

impl Default for SettleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: 1_000_000,
            interval: Duration::from_secs(3_600),
            tick: Duration::from_secs(1),
            expiry_margin: Duration::from_secs(300),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            on_shutdown: true,
            shutdown_timeout: Duration::from_secs(30),
            fees: FeePolicy::default(),
        }
    }
}

fn default_min_grace_period() -> u32 {
    3_600
}

fn default_refresh() -> Duration {
    Duration::from_secs(5)
}

fn default_voucher_margin() -> Duration {
    Duration::from_secs(60)
}

fn default_max_lookups() -> usize {
    64
}

fn yes() -> bool {
    true
}

impl Default for Config {
    /// No mints, everything at `per_call` 0: set a mint and prices.
    fn default() -> Self {
        Self {
            network: None,
            mints: Vec::new(),
            min_deposit: 0,
            min_grace_period: default_min_grace_period(),
            credit: 0,
            pricing: Pricing {
                default: Price {
                    mode: PricingMode::PerCall,
                    rate: 0,
                },
                routes: Default::default(),
                tokens: Default::default(),
                methods: Default::default(),
            },
            free: Vec::new(),
            refresh: default_refresh(),
            voucher_margin: default_voucher_margin(),
            rate_limit: None,
            max_lookups: default_max_lookups(),
            status_route: true,
            settle: SettleConfig::default(),
            sponsor: None,
            session: None,
            metrics: None,
        }
    }
}

impl Config {
    /// Checks what serde cannot: the terms make sense together.
    pub fn validate(&self) -> Result<(), ServerError> {
        if self.mints.is_empty() {
            return Err(ServerError::Config("no accepted mint".into()));
        }
        let patterns = self
            .pricing
            .routes
            .keys()
            .chain(self.pricing.methods.keys());
        for pattern in patterns.chain(&self.free) {
            if !pattern.starts_with('/') {
                return Err(ServerError::Config(format!(
                    "route {pattern:?} must start with '/'"
                )));
            }
        }
        for route in self.pricing.tokens.keys() {
            let per_token = self
                .pricing
                .routes
                .get(route)
                .is_some_and(|price| price.mode == PricingMode::PerToken);
            if !per_token {
                return Err(ServerError::Config(format!(
                    "pricing.tokens.{route:?} needs a per_token route {route:?} in pricing.routes"
                )));
            }
        }
        if let Some(limit) = &self.rate_limit {
            if !(limit.per_second.is_finite() && limit.per_second > 0.0) {
                return Err(ServerError::Config(
                    "rate_limit.per_second must be positive".into(),
                ));
            }
        }
        if let Some(sponsor) = &self.sponsor {
            if sponsor.max_deposit < self.min_deposit.max(1)
                || sponsor.max_grace_period < self.min_grace_period
            {
                return Err(ServerError::Config(
                    "sponsor.max_deposit and sponsor.max_grace_period must not be below \
                     min_deposit and min_grace_period"
                        .into(),
                ));
            }
        }
        if self.max_lookups == 0 {
            return Err(ServerError::Config("max_lookups must be at least 1".into()));
        }
        self.settle
            .fees
            .validate()
            .map_err(|e| ServerError::Config(format!("settle.fees: {e}")))?;
        if let Some(metrics) = &self.metrics {
            metrics.validate()?;
        }
        if self.refresh.is_zero() || self.settle.tick.is_zero() {
            return Err(ServerError::Config(
                "refresh and settle.tick must be positive".into(),
            ));
        }
        Ok(())
    }
}

impl MetricsConfig {
    fn validate(&self) -> Result<(), ServerError> {
        if self.token.is_none() && self.listen.is_none() {
            return Err(ServerError::Config(
                "metrics: set a token (served on the service's port) or listen (a port of their own)"
                    .into(),
            ));
        }
        if self.token.as_ref().is_some_and(|t| t.len() < MIN_TOKEN_LEN) {
            return Err(ServerError::Config(format!(
                "metrics.token must be at least {MIN_TOKEN_LEN} characters"
            )));
        }
        if !self.route.starts_with('/') {
            return Err(ServerError::Config(format!(
                "metrics.route {:?} must start with '/'",
                self.route
            )));
        }
        Ok(())
    }
}

/// The TOML file: where the wallet, the cluster and the store are, and the
/// service's [`Config`] beside them at the top level.
#[derive(Clone, Debug, PartialEq)]
pub struct FileConfig {
    /// Keypair file of the recipient (Solana CLI format); it also pays fees.
    pub wallet: PathBuf,
    /// `localnet`, `devnet`, `testnet`, `mainnet-beta`, or an RPC URL.
    pub cluster: String,
    /// The voucher store: a SQLite file, or a `postgres://` URL
    /// ([`store::open`](crate::store::open)).
    pub store: PathBuf,
    /// How hard the store pushes each voucher to disk; default `full`.
    pub durability: Durability,
    /// The service's terms: every other key of the file.
    pub service: Config,
}

/// The keys of the file that are not [`Config`]'s.
#[derive(Deserialize)]
struct Deployment {
    wallet: PathBuf,
    cluster: String,
    store: PathBuf,
    #[serde(default)]
    durability: Durability,
}

impl FileConfig {
    /// Parses the TOML text; unknown keys are errors (a typo must not
    /// silently drop a price).
    pub fn from_toml(text: &str) -> Result<Self, ServerError> {
        let error = |e: toml::de::Error| ServerError::Config(e.to_string());
        let mut table: toml::Table = toml::from_str(text).map_err(error)?;
        // serde's `flatten` would let unknown keys through: split by hand.
        let mut deployment = toml::Table::new();
        for key in ["wallet", "cluster", "store", "durability"] {
            if let Some(value) = table.remove(key) {
                deployment.insert(key.to_owned(), value);
            }
        }
        let deployment: Deployment = deployment.try_into().map_err(error)?;
        let service: Config = table.try_into().map_err(error)?;
        service.validate()?;
        Ok(Self {
            wallet: deployment.wallet,
            cluster: deployment.cluster,
            store: deployment.store,
            durability: deployment.durability,
            service,
        })
    }

    /// Reads the file; relative paths in it become relative to its folder.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ServerError> {
        use std::io::Read;
        let path = path.as_ref();
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_FILE_LEN + 1).read_to_string(&mut text))
            .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))?;
        if text.len() as u64 > MAX_FILE_LEN {
            return Err(ServerError::Config(format!(
                "{} is larger than {MAX_FILE_LEN} bytes",
                path.display()
            )));
        }
        let mut config = Self::from_toml(&text)
            .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new(""));
        config.wallet = base.join(&config.wallet);
        if !config.store.to_str().is_some_and(crate::store::is_url) {
            config.store = base.join(&config.store);
        }
        Ok(config)
    }
}

/// Serde helper: a [`Duration`] as seconds (integer or fraction).
mod seconds {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        // Whole seconds as an integer: an f64 holds them exactly only up to
        // 2^53, and TOML integers stop at i64::MAX.
        match i64::try_from(value.as_secs()) {
            Ok(seconds) if value.subsec_nanos() == 0 => serializer.serialize_i64(seconds),
            _ => serializer.serialize_f64(value.as_secs_f64()),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Seconds {
            Whole(u64),
            Fraction(f64),
        }
        match Seconds::deserialize(deserializer)? {
            Seconds::Whole(s) => Ok(Duration::from_secs(s)),
            Seconds::Fraction(s) => Duration::try_from_secs_f64(s)
                .map_err(|_| serde::de::Error::custom("a duration must be a non-negative number")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
wallet = "id.json"
cluster = "devnet"
store = "vouchers.sqlite"
min_deposit = "1000000"
credit = "1000"
free = ["/health"]

[[mints]]
mint = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"
symbol = "USDC"

[pricing.default]
mode = "per_call"
rate = "100"

[pricing.routes."/v1/chat"]
mode = "per_token"
rate = "2"

[settle]
threshold = "5000"
interval = 0.5

[settle.fees]
compute_unit_price = 2000
max_compute_unit_price = 5000
"#;

    #[test]
    fn token_prices_need_their_per_token_route() {
        let mut config = Config {
            mints: vec![MintConfig {
                mint: Pubkey::new_unique(),
                symbol: None,
            }],
            ..Config::default()
        };
        let prices = crate::manifest::TokenPrices {
            input: 1,
            output: 3,
            models: Default::default(),
        };
        config.pricing.tokens.insert("/v1/chat".into(), prices);
        assert!(config.validate().is_err());
        config.pricing.routes.insert(
            "/v1/chat".into(),
            Price {
                mode: PricingMode::PerCall,
                rate: 1,
            },
        );
        assert!(config.validate().is_err());
        config.pricing.routes.insert(
            "/v1/chat".into(),
            Price {
                mode: PricingMode::PerToken,
                rate: 1,
            },
        );
        config.validate().unwrap();
    }

    #[test]
    fn parses_the_documented_form() {
        let config = FileConfig::from_toml(EXAMPLE).unwrap();
        assert_eq!(config.cluster, "devnet");
        assert_eq!(config.durability, Durability::Full);
        let service = &config.service;
        assert_eq!(service.min_deposit, 1_000_000);
        assert_eq!(service.min_grace_period, 3_600);
        assert_eq!(service.credit, 1_000);
        assert_eq!(
            service.pricing.routes["/v1/chat"].mode,
            PricingMode::PerToken
        );
        assert_eq!(service.settle.threshold, 5_000);
        assert_eq!(service.settle.interval, Duration::from_millis(500));
        assert!(service.settle.on_shutdown);
        assert_eq!(service.settle.fees.compute_unit_price, Some(2_000));
        assert_eq!(service.settle.fees.max_compute_unit_price, 5_000);
        assert_eq!(
            service.settle.fees.percentile,
            crate::fees::DEFAULT_PERCENTILE
        );
        assert_eq!(service.mints[0].symbol.as_deref(), Some("USDC"));
        // The module documentation's example parses too.
        let doc: String = include_str!("config.rs")
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| format!("{}\n", l.trim_start_matches("//!").trim_start()))
            .collect();
        FileConfig::from_toml(&doc).unwrap();
    }

    #[test]
    fn metrics_are_off_unless_someone_may_read_them() {
        let with = |table: &str| FileConfig::from_toml(&format!("{EXAMPLE}\n[metrics]\n{table}"));
        assert!(FileConfig::from_toml(EXAMPLE)
            .unwrap()
            .service
            .metrics
            .is_none());
        assert!(with("").is_err(), "neither a token nor a listener");
        assert!(with("token = \"short\"\n").is_err(), "a guessable token");
        assert!(with("token = \"0123456789abcdef\"\nroute = \"metrics\"\n").is_err());
        let config = with("token = \"0123456789abcdef\"\n").unwrap();
        assert_eq!(config.service.metrics.unwrap().route, METRICS_PATH);
        let config = with("listen = \"127.0.0.1:9464\"\n").unwrap();
        assert_eq!(config.service.metrics.unwrap().token, None);
    }

    #[test]
    fn refuses_typos_and_nonsense() {
        for (from, to) in [
            ("credit =", "credits ="),
            ("threshold =", "treshold ="),
            (r#"rate = "100""#, "rate = 100"),
            (r#"mode = "per_call""#, r#"mode = "per_request""#),
            ("interval = 0.5", "interval = -1"),
            ("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU", "not-a-key"),
            (r#"free = ["/health"]"#, r#"free = ["health"]"#),
            ("compute_unit_price = 2000", "compute_unit_prize = 2000"),
            ("compute_unit_price = 2000", "compute_unit_price = 9000"),
        ] {
            assert!(EXAMPLE.contains(from), "{from}");
            let text = EXAMPLE.replace(from, to);
            assert!(FileConfig::from_toml(&text).is_err(), "accepted {to}");
        }
    }
}
