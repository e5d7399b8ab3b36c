//! The service side of AMP (SPEC section 5): a tower [`Layer`] that makes any
//! HTTP service paid.
//!
//! ```no_run
//! # async fn example(chain: std::sync::Arc<dyn amp_sdk::chain::Chain>,
//! #                  wallet: solana_keypair::Keypair,
//! #                  mint: anchor_lang::prelude::Pubkey) -> Result<(), Box<dyn std::error::Error>> {
//! use amp_sdk::manifest::{Price, PricingMode};
//! use amp_sdk::server::{Payment, Paywall};
//! use amp_sdk::store::{Durability, SqliteStore};
//!
//! let paywall = Paywall::builder(chain, wallet)
//!     .mint(mint, Some("USDC"))
//!     .price(Price { mode: PricingMode::PerCall, rate: 100 })
//!     .free("/health")
//!     .store(SqliteStore::open("vouchers.sqlite", Durability::Full)?)
//!     .start()
//!     .await?;
//! let app = axum::Router::new()
//!     .route("/v1/hello", axum::routing::get(|payment: axum::Extension<Payment>| async move {
//!         format!("hello, lane {}", payment.lane)
//!     }))
//!     .layer(paywall.layer());
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! axum::serve(listener, app).await?;
//! paywall.shutdown().await?; // settles what is still unsettled
//! # Ok(()) }
//! ```
//!
//! What the layer does for every request:
//!
//! * `GET /.well-known/amp.json` answers the manifest;
//!   `POST /.well-known/amp/close` closes a lane cooperatively;
//!   `POST /.well-known/amp/credit` pays a metered response as it streams;
//!   `GET /.well-known/amp/status` reports the settler (unless disabled).
//! * A free path goes straight to the service.
//! * A paid path needs a credential. It is checked against the lane's
//!   on-chain accounts (cached; re-read on a miss, when a voucher asks for
//!   more than the cached lane can pay, on close requests and every
//!   [`Config::refresh`]), then accepted or refused by the lane's
//!   [`VoucherStore`] under the lane's lock, and persisted before the
//!   service runs. Refusals are the SPEC's JSON error bodies.
//! * The service sees the paying lane as a [`Payment`] request extension;
//!   the response carries `AMP-Owed` and `AMP-Remaining`.

mod body;
mod config;
mod credit;
mod lane;
mod meter;
mod pricing;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anchor_lang::prelude::Pubkey;
use anchor_lang::AccountDeserialize;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body;
use serde::Serialize;
use solana_keypair::Keypair;
use solana_signer::Signer;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tower_layer::Layer;
use tower_service::Service;

use amp_channel::error::AmpError;

use crate::chain::{Chain, ChainError, ChainExt};
use crate::headers::{Credential, Receipt};
use crate::manifest::{
    CloseAnswer, ErrorBody, ErrorCode, Manifest, MintInfo, Price, CLOSE_PATH, MANIFEST_PATH,
};
use crate::settle::{self, Settler, SettlerStatus};
use crate::store::{self, LaneQuery, LaneState, MemoryStore, StoreError, VoucherStore};
use crate::transactions;
use crate::voucher::SignedVoucher;

pub use body::{AmpBody, BoxError};
pub use config::{Config, FileConfig, MintConfig, SettleConfig};
pub use lane::LaneAccounts;
pub use meter::RateLimit;

/// Where the settler's status is served.
pub use crate::manifest::STATUS_PATH;

/// Why a paywall could not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is invalid or unreadable (bad TOML, no mint, a
    /// route not starting with `/`); the message says what.
    #[error("configuration: {0}")]
    Config(String),
    /// Reading the mints or the clock, or creating the recipient's token
    /// account, failed on-chain.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The voucher store could not be opened or closed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The recipient's keypair file could not be read.
    #[error(transparent)]
    Keypair(#[from] crate::keypair::KeypairError),
}

/// The paying lane, as the service sees it (an axum `Extension<Payment>`).
#[derive(Clone, Debug)]
pub struct Payment {
    /// The lane the credential names: a Channel, or a Delegation.
    pub lane: Pubkey,
    /// The Channel the lane belongs to.
    pub channel: Pubkey,
    /// The delegate, when a delegate pays.
    pub delegate: Option<Pubkey>,
    /// Who funds the channel.
    pub funder: Pubkey,
    /// The token the channel pays in.
    pub mint: Pubkey,
    /// The credential's seq (above every seq the lane used before).
    pub seq: u64,
    /// The cumulative amount the credential signs.
    pub amount: u64,
    /// The price of the requested path.
    pub price: Price,
    /// Cumulative amount charged on the lane, this request's upfront price included.
    pub owed: u64,
    /// For a metered price: the most this request may be charged.
    pub allowance: Option<u64>,
    usage: body::Usage,
}

impl Payment {
    /// Reports units used, for a `per_token` price; may be called several
    /// times (they add up), also while the response body streams.
    pub fn report(&self, units: u64) {
        self.usage.add(units);
    }

    /// Units reported so far.
    pub fn reported(&self) -> u64 {
        self.usage.get()
    }

    /// Most units the allowance pays for (`None`: unlimited or not metered).
    /// Units beyond it are served free, so a handler should stop there.
    pub fn max_units(&self) -> Option<u64> {
        self.allowance
            .and_then(|allowance| pricing::max_units(&self.price, allowance))
    }
}

/// A running paywall: the layer's shared state, the lane refresher and the
/// settler. Dropping it stops the background tasks without settling; call
/// [`shutdown`](Self::shutdown) to settle first.
pub struct Paywall {
    core: Arc<Core>,
    settler: Option<Settler>,
    refresher: JoinHandle<()>,
}

/// Builds a [`Paywall`] from code; see [`Config`] for what each setting means.
pub struct PaywallBuilder {
    chain: Arc<dyn Chain>,
    wallet: Keypair,
    config: Config,
    store: Option<Arc<dyn VoucherStore>>,
}

impl PaywallBuilder {
    /// Replaces every setting at once (for example from a [`FileConfig`]).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The manifest's `network` (`solana:devnet`); default `solana:localnet`.
    pub fn network(mut self, network: impl Into<String>) -> Self {
        self.config.network = Some(network.into());
        self
    }

    /// Accepts `mint`; its decimals are read from the chain.
    pub fn mint(mut self, mint: Pubkey, symbol: Option<&str>) -> Self {
        self.config.mints.push(MintConfig {
            mint,
            symbol: symbol.map(str::to_owned),
        });
        self
    }

    /// The default price of every paid path.
    pub fn price(mut self, price: Price) -> Self {
        self.config.pricing.default = price;
        self
    }

    /// The price of `pattern`: an exact path, or a prefix ending in `*`.
    pub fn route(mut self, pattern: impl Into<String>, price: Price) -> Self {
        self.config.pricing.routes.insert(pattern.into(), price);
        self
    }

    /// Serves `pattern` (exact, or a prefix ending in `*`) without payment.
    pub fn free(mut self, pattern: impl Into<String>) -> Self {
        self.config.free.push(pattern.into());
        self
    }

    /// Most served beyond the signed amount for metered prices, in the mint's
    /// smallest unit ([`Config::credit`]).
    pub fn credit(mut self, credit: u64) -> Self {
        self.config.credit = credit;
        self
    }

    /// Smallest lane limit accepted: a deposit, or a delegation's cap.
    pub fn min_deposit(mut self, min_deposit: u64) -> Self {
        self.config.min_deposit = min_deposit;
        self
    }

    /// Shortest grace period accepted, in seconds: the time the server has
    /// to settle after a close request.
    pub fn min_grace_period(mut self, seconds: u32) -> Self {
        self.config.min_grace_period = seconds;
        self
    }

    /// How often cached lanes and the chain's clock are re-read.
    pub fn refresh(mut self, every: Duration) -> Self {
        self.config.refresh = every;
        self
    }

    /// How long an accepted voucher must stay valid, so it can still be
    /// settled; one expiring sooner is refused as `AMP_EXPIRED`.
    pub fn voucher_margin(mut self, margin: Duration) -> Self {
        self.config.voucher_margin = margin;
        self
    }

    /// Limits each lane's request rate; requests beyond it get `AMP_RATE_EXCEEDED`.
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.config.rate_limit = Some(limit);
        self
    }

    /// When and how the settler settles lanes (or whether it runs at all).
    pub fn settle(mut self, settle: SettleConfig) -> Self {
        self.config.settle = settle;
        self
    }

    /// Where vouchers are kept; without one, a [`MemoryStore`] (not durable).
    pub fn store(self, store: impl VoucherStore + 'static) -> Self {
        self.shared_store(Arc::new(store))
    }

    /// Like [`store`](Self::store), for a store already shared (as
    /// [`store::open`] returns it).
    pub fn shared_store(mut self, store: Arc<dyn VoucherStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Reads the mints, makes sure the recipient can be paid in each, and
    /// starts the refresher and the settler.
    pub async fn start(self) -> Result<Paywall, ServerError> {
        let config = self.config;
        config.validate()?;
        let chain = self.chain;
        let recipient = self.wallet.pubkey();
        let store = self.store.unwrap_or_else(|| {
            tracing::warn!("no voucher store configured: vouchers are kept in memory only");
            Arc::new(MemoryStore::new())
        });

        let mut mints = HashMap::new();
        let mut infos = Vec::new();
        for MintConfig { mint, symbol } in &config.mints {
            let token_program = chain.mint_token_program(mint).await?;
            let decimals = read_decimals(chain.as_ref(), mint).await?;
            ensure_token_account(chain.as_ref(), &recipient, mint, &token_program).await?;
            mints.insert(*mint, token_program);
            infos.push(MintInfo {
                mint: *mint,
                decimals,
                symbol: symbol.clone(),
            });
        }
        let manifest = Manifest {
            amp_version: crate::manifest::AMP_VERSION.into(),
            network: config
                .network
                .clone()
                .unwrap_or_else(|| "solana:localnet".into()),
            program_id: amp_channel::ID,
            recipient,
            mints: infos,
            min_deposit: config.min_deposit,
            min_grace_period: config.min_grace_period,
            credit: config.credit,
            pricing: config.pricing.clone(),
        };
        let manifest_json = Bytes::from(
            serde_json::to_vec(&manifest).map_err(|e| ServerError::Config(e.to_string()))?,
        );

        let settler = if config.settle.enabled {
            let settle = config.settle.clone();
            Some(Settler::start(Arc::clone(&chain), Arc::clone(&store), settle).await?)
        } else {
            None
        };
        let core = Arc::new(Core {
            prices: pricing::PriceTable::new(&config.pricing, &config.free),
            limiter: config.rate_limit.map(meter::RateLimiter::new),
            lookups: Semaphore::new(config.max_lookups),
            signal: settler.as_ref().map(Settler::signal),
            chain,
            store,
            wallet: Arc::new(self.wallet),
            recipient,
            mints,
            manifest,
            manifest_json,
            lanes: RwLock::new(HashMap::new()),
            fetching: Mutex::new(HashMap::new()),
            clock_offset: AtomicI64::new(0),
            started: Instant::now(),
            config,
        });
        core.refresh_clock().await?;
        let refresher = tokio::spawn(refresh_loop(Arc::downgrade(&core)));
        tracing::info!(recipient = %core.recipient, "paywall started");
        Ok(Paywall {
            core,
            settler,
            refresher,
        })
    }
}

impl Paywall {
    /// Starts building a paywall that checks lanes on `chain` and receives
    /// payments (and signs cooperative closes) as `wallet`.
    pub fn builder(chain: Arc<dyn Chain>, wallet: Keypair) -> PaywallBuilder {
        PaywallBuilder {
            chain,
            wallet,
            config: Config::default(),
            store: None,
        }
    }

    /// Starts a paywall from a TOML file: RPC chain, keypair file, and the
    /// SQLite file or PostgreSQL database its `store` names ([`store::open`]).
    pub async fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self, ServerError> {
        let file = FileConfig::load(path)?;
        let wallet = crate::keypair::read(&file.wallet)?;
        let cluster: crate::rpc::Cluster = file
            .cluster
            .parse()
            .map_err(|e: crate::rpc::ClusterParseError| ServerError::Config(e.to_string()))?;
        let mut service = file.service;
        if service.network.is_none() {
            service.network = cluster.network().map(str::to_owned);
        }
        let chain = Arc::new(crate::rpc::RpcChain::new(&cluster, wallet.insecure_clone()));
        // A SQLite file, or a postgres:// URL that several replicas share.
        let store = store::open(&file.store, file.durability).await?;
        Self::builder(chain, wallet)
            .config(service)
            .shared_store(store)
            .start()
            .await
    }

    /// The tower layer; clone it freely (every copy shares this paywall).
    pub fn layer(&self) -> PaywallLayer {
        PaywallLayer {
            core: Arc::clone(&self.core),
        }
    }

    /// The manifest served at `/.well-known/amp.json`.
    pub fn manifest(&self) -> &Manifest {
        &self.core.manifest
    }

    /// The voucher store the paywall records lanes in.
    pub fn store(&self) -> &Arc<dyn VoucherStore> {
        &self.core.store
    }

    /// The settler's counters (all zero when it is disabled).
    pub fn status(&self) -> SettlerStatus {
        self.settler
            .as_ref()
            .map(Settler::status)
            .unwrap_or_default()
    }

    /// Settles every unsettled lane now and returns the settler's status.
    pub async fn settle_now(&self) -> SettlerStatus {
        match &self.settler {
            Some(settler) => settler.settle_all().await,
            None => SettlerStatus::default(),
        }
    }

    /// Re-reads the chain's clock and every cached lane now.
    pub async fn refresh(&self) -> Result<(), ChainError> {
        self.core.refresh_all().await
    }

    /// Stops the refresher, settles what is unsettled (if configured), and
    /// closes the store.
    pub async fn shutdown(mut self) -> Result<SettlerStatus, ServerError> {
        self.refresher.abort();
        let status = match self.settler.take() {
            Some(settler) => settler.shutdown().await,
            None => SettlerStatus::default(),
        };
        self.core.store.close().await?;
        tracing::info!(?status, "paywall stopped");
        Ok(status)
    }
}

impl Drop for Paywall {
    fn drop(&mut self) {
        self.refresher.abort();
    }
}

/// The tower layer of a [`Paywall`].
#[derive(Clone)]
pub struct PaywallLayer {
    core: Arc<Core>,
}

impl<S> Layer<S> for PaywallLayer {
    type Service = PaywallService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PaywallService {
            core: Arc::clone(&self.core),
            inner,
        }
    }
}

/// A service behind the paywall.
#[derive(Clone)]
pub struct PaywallService<S> {
    core: Arc<Core>,
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for PaywallService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send,
    ReqBody: Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<AmpBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<AmpBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let core = Arc::clone(&self.core);
        // The ready service goes into the future; a fresh clone stays behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let path = request.uri().path();
            let method = request.method();
            if path == MANIFEST_PATH && method == Method::GET {
                return Ok(body::json(StatusCode::OK, core.manifest_json.to_vec()));
            }
            if path == CLOSE_PATH && method == Method::POST {
                return Ok(core.close(request.headers()).await);
            }
            if path == crate::manifest::CREDIT_PATH && method == Method::POST {
                return Ok(core.credit(request.headers()).await);
            }
            if path == STATUS_PATH && method == Method::GET && core.config.status_route {
                let status = core.signal.as_ref().map(|s| s.status()).unwrap_or_default();
                return Ok(body::json(StatusCode::OK, to_json(&status)));
            }
            let Some(price) = core.prices.price(path) else {
                return Ok(inner.call(request).await?.map(body::boxed));
            };
            let admission = match core.admit(request.headers(), price).await {
                Ok(admission) => admission,
                Err(refusal) => return Ok(refusal),
            };
            request.extensions_mut().insert(admission.payment.clone());
            let meter = admission.meter(&core);
            // A per-second price also bounds the handler itself: when the
            // allowance runs out first, the request is cut off and charged it.
            let response = match meter.as_ref().and_then(body::Meter::deadline) {
                None => inner.call(request).await?,
                Some(deadline) => {
                    match tokio::time::timeout_at(deadline.into(), inner.call(request)).await {
                        Ok(response) => response?,
                        Err(_) => return Ok(admission.timed_out(&core, meter).await),
                    }
                }
            };
            Ok(admission.respond(response, meter))
        })
    }
}

/// A paid request let through.
struct Admission {
    payment: Payment,
    fresh: LaneState,
    limit: u64,
}

impl Admission {
    fn meter(&self, core: &Arc<Core>) -> Option<body::Meter> {
        let allowance = self.payment.allowance?;
        Some(body::Meter::new(
            Arc::clone(core),
            self.fresh.clone(),
            self.payment.price,
            allowance,
            self.payment.usage.clone(),
        ))
    }

    /// The handler outlasted a per-second allowance: charge it all and say so.
    async fn timed_out(self, core: &Core, meter: Option<body::Meter>) -> Response<AmpBody> {
        let charged = self.payment.allowance.unwrap_or(0);
        if let Some(meter) = meter {
            meter.finish_now().await;
        }
        let owed = self.payment.owed.saturating_add(charged);
        core.refuse(
            ErrorBody::new(
                ErrorCode::Underfunded,
                "the request outlasted what the voucher and the credit pay for",
            )
            .with_required(owed)
            .with_owed(owed),
        )
    }

    /// Adds the receipt and, for a metered price, meters the body.
    fn respond<B>(self, response: Response<B>, meter: Option<body::Meter>) -> Response<AmpBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (mut parts, inner) = response.into_parts();
        let (owed, body) = match meter {
            None => (self.payment.owed, body::boxed(inner)),
            Some(meter) => {
                // As far as known: the body's size if it has one, the time so
                // far, or the units reported so far.
                let known = meter.charge_with(inner.size_hint().exact().unwrap_or(0));
                let owed = self.payment.owed.saturating_add(known);
                (
                    owed,
                    body::boxed(body::MeteredBody::new(body::boxed(inner), meter)),
                )
            }
        };
        Receipt {
            owed,
            remaining: self.limit.saturating_sub(owed),
        }
        .write(&mut parts.headers);
        Response::from_parts(parts, body)
    }
}

type Gates = Mutex<HashMap<Pubkey, Arc<tokio::sync::Mutex<()>>>>;

/// A place in the queue of requests reading one lane from the chain; the
/// last one out removes the queue, whatever way it leaves (answer, error,
/// refusal, or the client going away).
struct Gate<'a> {
    gates: &'a Gates,
    address: Pubkey,
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl<'a> Gate<'a> {
    fn enter(gates: &'a Gates, address: &Pubkey) -> Self {
        let mut map = gates.lock().unwrap_or_else(|e| e.into_inner());
        Self {
            gates,
            address: *address,
            gate: Arc::clone(map.entry(*address).or_default()),
        }
    }
}

impl Drop for Gate<'_> {
    fn drop(&mut self) {
        let mut map = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        // The map's copy and this one: nobody else is waiting.
        if map
            .get(&self.address)
            .is_some_and(|g| Arc::ptr_eq(g, &self.gate))
            && Arc::strong_count(&self.gate) == 2
        {
            map.remove(&self.address);
        }
    }
}

/// A cached lane and when it was read.
struct Cached {
    accounts: Arc<LaneAccounts>,
    fetched: Instant,
    /// Milliseconds since the paywall started, at the last use.
    used: AtomicI64,
}

/// Everything the layer, the refresher and metered bodies share.
pub(crate) struct Core {
    chain: Arc<dyn Chain>,
    pub(crate) store: Arc<dyn VoucherStore>,
    wallet: Arc<Keypair>,
    recipient: Pubkey,
    config: Config,
    manifest: Manifest,
    manifest_json: Bytes,
    prices: pricing::PriceTable,
    /// Accepted mints and their token programs.
    mints: HashMap<Pubkey, Pubkey>,
    lanes: RwLock<HashMap<Pubkey, Arc<Cached>>>,
    /// One chain read per lane at a time: the others wait for its result.
    fetching: Gates,
    /// Chain time minus system time, in seconds.
    clock_offset: AtomicI64,
    started: Instant,
    limiter: Option<meter::RateLimiter>,
    lookups: Semaphore,
    signal: Option<settle::Signal>,
}

/// A refusal, ready to send.
type Refusal = Response<AmpBody>;

impl Core {
    /// The chain's unix time, without asking the chain.
    fn now(&self) -> i64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        system.saturating_add(self.clock_offset.load(Ordering::Relaxed))
    }

    fn uptime_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    async fn refresh_clock(&self) -> Result<(), ChainError> {
        let clock = self.chain.clock().await?;
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.clock_offset.store(
            clock.unix_timestamp.saturating_sub(system),
            Ordering::Relaxed,
        );
        Ok(())
    }

    /// Refusal with the SPEC's body; 402s carry the manifest.
    fn refuse(&self, body: impl Into<Box<ErrorBody>>) -> Refusal {
        let mut body: Box<ErrorBody> = body.into();
        if body.status() == StatusCode::PAYMENT_REQUIRED {
            body.manifest = Some(self.manifest.clone());
        }
        tracing::debug!(code = %body.error, message = %body.message, "request refused");
        body::json(body.status(), to_json(&*body))
    }

    /// The server could not do its part (chain or store down): 503, not a
    /// client error.
    fn unavailable(&self, what: &str, error: &dyn std::fmt::Display) -> Refusal {
        tracing::warn!(%error, "{what}");
        let body = ErrorBody::new(ErrorCode::Unavailable, format!("{what}; try again"));
        body::json(body.status(), to_json(&body))
    }

    /// The lane at `address`, from the cache unless `force` or too old.
    async fn lane(
        &self,
        address: &Pubkey,
        force: bool,
    ) -> Result<Option<Arc<LaneAccounts>>, Refusal> {
        let max_age = self.config.refresh.saturating_mul(2);
        let cached = |force: bool| {
            let lanes = self.lanes.read().unwrap_or_else(|e| e.into_inner());
            let entry = lanes.get(address)?;
            entry.used.store(self.uptime_ms(), Ordering::Relaxed);
            (!force && entry.fetched.elapsed() <= max_age).then(|| Arc::clone(&entry.accounts))
        };
        if let Some(accounts) = cached(force) {
            return Ok(Some(accounts));
        }
        let requested = Instant::now();
        let gate = Gate::enter(&self.fetching, address);
        let _turn = gate.gate.lock().await;
        // Someone else may have read it while this request waited.
        {
            let lanes = self.lanes.read().unwrap_or_else(|e| e.into_inner());
            if let Some(entry) = lanes.get(address) {
                if entry.fetched >= requested {
                    return Ok(Some(Arc::clone(&entry.accounts)));
                }
            }
        }
        let Ok(_permit) = self.lookups.try_acquire() else {
            return Err(self.refuse(ErrorBody::new(
                ErrorCode::RateExceeded,
                "too many unknown lanes at once; retry shortly",
            )));
        };
        let fetched = LaneAccounts::fetch(self.chain.as_ref(), address).await;
        match fetched {
            Ok(Some(accounts)) => Ok(Some(self.cache(accounts))),
            Ok(None) => {
                self.lanes
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(address);
                Ok(None)
            }
            Err(error) => Err(self.unavailable("cannot read the lane from the chain", &error)),
        }
    }

    /// Caches freshly read accounts, keeping the entry's last use.
    fn cache(&self, accounts: LaneAccounts) -> Arc<LaneAccounts> {
        let accounts = Arc::new(accounts);
        let mut lanes = self.lanes.write().unwrap_or_else(|e| e.into_inner());
        let used = lanes
            .get(&accounts.address)
            .map_or_else(|| self.uptime_ms(), |e| e.used.load(Ordering::Relaxed));
        lanes.insert(
            accounts.address,
            Arc::new(Cached {
                accounts: Arc::clone(&accounts),
                fetched: Instant::now(),
                used: AtomicI64::new(used),
            }),
        );
        accounts
    }

    /// The checks that need only the lane's accounts: does it pay us, in a
    /// mint we take, on terms we accept, and is it still open.
    fn check_lane(&self, accounts: &LaneAccounts) -> Result<(), Box<ErrorBody>> {
        let channel = &accounts.channel;
        if channel.recipient != self.recipient {
            return Err(Box::new(ErrorBody::new(
                ErrorCode::WrongChannel,
                format!("the lane pays {}, not this service", channel.recipient),
            )));
        }
        if !self.mints.contains_key(&channel.mint) {
            return Err(Box::new(ErrorBody::new(
                ErrorCode::WrongChannel,
                format!("mint {} is not accepted", channel.mint),
            )));
        }
        if channel.grace_period < self.config.min_grace_period {
            return Err(Box::new(ErrorBody::new(
                ErrorCode::WrongChannel,
                format!(
                    "grace period {} s is below the minimum {} s",
                    channel.grace_period, self.config.min_grace_period
                ),
            )));
        }
        if accounts.limit() < self.config.min_deposit {
            return Err(Box::new(
                ErrorBody::new(
                    ErrorCode::Underfunded,
                    format!(
                        "the lane can pay {}, below the minimum deposit {}",
                        accounts.limit(),
                        self.config.min_deposit
                    ),
                )
                .with_required(self.config.min_deposit),
            ));
        }
        if !accounts.status(self.now()).is_open() {
            if let Some(signal) = &self.signal {
                signal.urgent(accounts.address);
            }
            return Err(Box::new(ErrorBody::new(
                ErrorCode::Closed,
                "the lane is closing or closed",
            )));
        }
        Ok(())
    }

    /// Why a lane has no account on-chain: a channel closed cooperatively
    /// (possibly by another replica sharing the store) is `Closed`, anything
    /// else was never opened here.
    async fn missing_lane(&self, lane: &Pubkey) -> ErrorBody {
        let closed = match self.store.find(store::LaneQuery::Channel(*lane)).await {
            Ok(states) => states.iter().any(|s| s.id.lane == *lane && s.closed),
            Err(e) => {
                tracing::warn!(%lane, error = %e, "store lookup for a missing lane failed");
                false
            }
        };
        if closed {
            ErrorBody::new(ErrorCode::Closed, "the lane is closed")
        } else {
            ErrorBody::new(ErrorCode::NoChannel, format!("no AMP lane at {lane}"))
        }
    }

    /// Parses and verifies a credential against its lane; re-reads the lane
    /// once when the voucher asks for more than the cached lane can pay (a
    /// top-up the cache has not seen).
    async fn verify(
        &self,
        headers: &HeaderMap,
        force: bool,
    ) -> Result<(Arc<LaneAccounts>, SignedVoucher), Refusal> {
        let credential = Credential::from_headers(headers)
            .map_err(|e| self.refuse(ErrorBody::new(e.code(), e.to_string())))?;
        let mut accounts = self.lane(&credential.lane, force).await?;
        if let Some(cached) = &accounts {
            if credential.cumulative > cached.limit() && !force {
                accounts = self.lane(&credential.lane, true).await?;
            }
        }
        let Some(accounts) = accounts else {
            return Err(self.refuse(self.missing_lane(&credential.lane).await));
        };
        self.check_lane(&accounts).map_err(|e| self.refuse(e))?;
        let signed = accounts
            .verify(&credential)
            .map_err(|e| self.refuse(ErrorBody::new(e.code(), e.to_string())))?;
        let margin = i64::try_from(self.config.voucher_margin.as_secs()).unwrap_or(i64::MAX);
        if signed.voucher.is_expired(self.now().saturating_add(margin)) {
            return Err(self.refuse(ErrorBody::new(
                ErrorCode::Expired,
                format!(
                    "the voucher expires at {}; it must stay valid {} s more",
                    signed.voucher.expires_at, margin
                ),
            )));
        }
        Ok((accounts, signed))
    }

    /// Checks a paid request's credential and charges the lane.
    async fn admit(&self, headers: &HeaderMap, price: Price) -> Result<Admission, Refusal> {
        let (accounts, signed) = self.verify(headers, false).await?;
        if let Some(limiter) = &self.limiter {
            if !limiter.allow(&accounts.address) {
                return Err(self.refuse(ErrorBody::new(
                    ErrorCode::RateExceeded,
                    "too many requests on this lane",
                )));
            }
        }
        let limit = accounts.limit();
        let credit = self.config.credit;
        let fresh = accounts.fresh_state();
        let accepted =
            store::transact(
                self.store.as_ref(),
                fresh.clone(),
                move |state| match meter::accept(state, &signed, &price, limit, credit) {
                    Ok(accepted) => (Ok(accepted), true),
                    Err(refusal) => (Err(refusal), false),
                },
            )
            .await
            .map_err(|e| self.unavailable("cannot record the voucher", &e))?
            .map_err(|e| self.refuse(e))?;
        self.after_charge(accepted.unsettled);
        Ok(Admission {
            payment: Payment {
                lane: accounts.address,
                channel: accounts.channel_address,
                delegate: accounts.delegate(),
                funder: accounts.channel.funder,
                mint: accounts.channel.mint,
                seq: signed.voucher.seq,
                amount: signed.voucher.cumulative,
                price,
                owed: accepted.owed,
                allowance: accepted.allowance,
                usage: body::Usage::default(),
            },
            fresh,
            limit,
        })
    }

    /// Wakes the settler once a lane's unsettled value passes the threshold.
    fn after_charge(&self, unsettled: u64) {
        if let Some(signal) = &self.signal {
            if unsettled >= self.config.settle.threshold {
                signal.wake();
            }
        }
    }

    /// `POST /.well-known/amp/close`: accept the final voucher, settle it
    /// and close the lane on-chain, so the funder's refund is immediate.
    async fn close(&self, headers: &HeaderMap) -> Response<AmpBody> {
        match self.try_close(headers).await {
            Ok(response) | Err(response) => response,
        }
    }

    async fn try_close(&self, headers: &HeaderMap) -> Result<Response<AmpBody>, Refusal> {
        let (accounts, signed) = self.verify(headers, true).await?;
        let limit = accounts.limit();
        let fresh = accounts.fresh_state();
        let state =
            store::transact(
                self.store.as_ref(),
                fresh,
                move |state| match meter::accept_final(state, &signed, limit) {
                    Ok(()) => (Ok(state.clone()), true),
                    Err(refusal) => (Err(refusal), false),
                },
            )
            .await
            .map_err(|e| self.unavailable("cannot record the voucher", &e))?
            .map_err(|e| self.refuse(e))?;

        match self.close_on_chain(&accounts, &state).await {
            Ok(signature) => {
                let settled = state.signed().max(accounts.settled());
                let id = state.id;
                let _ = store::transact(self.store.as_ref(), state.clone(), move |s| {
                    s.settled = s.settled.max(settled);
                    ((), true)
                })
                .await
                .map_err(|e| tracing::error!(lane = %id.lane, %e, "cannot record the close"));
                tracing::info!(lane = %accounts.address, %signature, settled, "lane closed cooperatively");
                self.lanes
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&accounts.address);
                let mut response = body::json(
                    StatusCode::OK,
                    to_json(&CloseAnswer {
                        lane: accounts.address,
                        closed: true,
                        settled,
                        signature: signature.to_string(),
                    }),
                );
                Receipt {
                    owed: state.owed,
                    remaining: 0,
                }
                .write(response.headers_mut());
                Ok(response)
            }
            Err(error) => {
                // Not closed after all: the settler takes the voucher, and the
                // client may retry with a new seq.
                let _ = store::transact(self.store.as_ref(), state, |s| {
                    s.closed = false;
                    ((), true)
                })
                .await;
                Err(self.unavailable("the close transaction failed", &error))
            }
        }
    }

    /// Settles the best voucher and closes the lane in one transaction; a
    /// channel's delegations this server knows are settled and closed first.
    async fn close_on_chain(
        &self,
        accounts: &LaneAccounts,
        state: &LaneState,
    ) -> Result<solana_signature::Signature, ChainError> {
        let token_program = self.mints[&accounts.channel.mint];
        let keys = accounts.keys(token_program);
        let signer: &crate::chain::TxSigner = self.wallet.as_ref();
        if let Some(delegate) = accounts.delegate() {
            let mut instructions = settle::settle_instructions(accounts, &keys, state);
            instructions.push(crate::instructions::close_delegation(
                &keys,
                &delegate,
                self.recipient,
            ));
            return self.chain.send(&instructions, &[signer]).await;
        }
        if accounts.channel.delegations > 0 {
            self.close_delegations(accounts, &keys).await?;
        }
        let Some(best) = state
            .best
            .filter(|best| best.voucher.cumulative > accounts.settled())
        else {
            return self
                .chain
                .send(&transactions::close(&keys), &[signer])
                .await;
        };
        let settlement =
            transactions::Settlement::new(keys, state.signer, best.voucher, best.signature);
        let closed = self
            .chain
            .send(&transactions::close_with_voucher(&settlement), &[signer])
            .await;
        match closed {
            // The voucher is public: anyone may have settled it (or more)
            // since the lane was read, which a program before the final-voucher
            // rule refuses as stale. What it pays is on-chain already.
            Err(error) if error.is_amp_error(AmpError::StaleVoucher) => {
                self.chain
                    .send(&transactions::close(&keys), &[signer])
                    .await
            }
            other => other,
        }
    }

    /// Settles and closes every delegation of the channel this server has seen.
    async fn close_delegations(
        &self,
        accounts: &LaneAccounts,
        keys: &crate::instructions::ChannelKeys,
    ) -> Result<(), ChainError> {
        let lanes = self
            .store
            .find(LaneQuery::Channel(accounts.channel_address))
            .await
            .map_err(|e| ChainError::Bank(format!("voucher store: {e}")))?;
        let signer: &crate::chain::TxSigner = self.wallet.as_ref();
        for lane in lanes.iter().filter(|l| l.delegate.is_some()) {
            let Some(delegation) = LaneAccounts::fetch(self.chain.as_ref(), &lane.id.lane).await?
            else {
                continue;
            };
            if delegation.generation() != lane.id.generation {
                continue;
            }
            let delegate = lane.delegate.unwrap_or_default();
            let mut instructions = settle::settle_instructions(&delegation, keys, lane);
            instructions.push(crate::instructions::close_delegation(
                keys,
                &delegate,
                self.recipient,
            ));
            self.chain.send(&instructions, &[signer]).await?;
            let settled = lane.signed().max(delegation.settled());
            let _ = store::transact(self.store.as_ref(), lane.clone(), move |s| {
                s.settled = s.settled.max(settled);
                s.closed = true;
                ((), true)
            })
            .await;
        }
        Ok(())
    }

    /// Re-reads the clock and every cached lane; forgets lanes unused for
    /// ten refresh periods; tells the settler about lanes that started closing.
    async fn refresh_all(&self) -> Result<(), ChainError> {
        self.refresh_clock().await?;
        let idle_ms =
            i64::try_from(self.config.refresh.saturating_mul(10).as_millis()).unwrap_or(i64::MAX);
        let now_ms = self.uptime_ms();
        let addresses: Vec<Pubkey> = {
            let mut lanes = self.lanes.write().unwrap_or_else(|e| e.into_inner());
            lanes.retain(|_, entry| now_ms - entry.used.load(Ordering::Relaxed) <= idle_ms);
            lanes.keys().copied().collect()
        };
        let now = self.now();
        for address in addresses {
            match LaneAccounts::fetch(self.chain.as_ref(), &address).await? {
                Some(accounts) => {
                    if !accounts.status(now).is_open() {
                        if let Some(signal) = &self.signal {
                            signal.urgent(address);
                        }
                    }
                    self.cache(accounts);
                }
                None => {
                    self.lanes
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&address);
                }
            }
        }
        Ok(())
    }
}

/// The refresher: re-reads lanes every [`Config::refresh`] while the paywall lives.
async fn refresh_loop(core: std::sync::Weak<Core>) {
    loop {
        let Some(every) = core.upgrade().map(|c| c.config.refresh) else {
            return;
        };
        tokio::time::sleep(every).await;
        let Some(core) = core.upgrade() else {
            return;
        };
        if let Err(error) = core.refresh_all().await {
            tracing::warn!(%error, "refreshing lanes failed");
        }
    }
}

fn to_json(value: &impl Serialize) -> Vec<u8> {
    // Serialising these plain structs cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

async fn read_decimals(chain: &dyn Chain, mint: &Pubkey) -> Result<u8, ChainError> {
    let account = chain
        .account(mint)
        .await?
        .ok_or_else(|| ChainError::InvalidAccount {
            address: *mint,
            expected: "mint",
            reason: "account does not exist".into(),
        })?;
    let state = anchor_spl::token_interface::Mint::try_deserialize(&mut account.data.as_slice())
        .map_err(|e| ChainError::InvalidAccount {
            address: *mint,
            expected: "mint",
            reason: e.to_string(),
        })?;
    Ok(state.decimals)
}

/// Settlements need the recipient's token account: create it if missing.
async fn ensure_token_account(
    chain: &dyn Chain,
    owner: &Pubkey,
    mint: &Pubkey,
    token_program: &Pubkey,
) -> Result<(), ChainError> {
    let address = crate::pda::associated_token(owner, mint, token_program);
    if chain.account(&address).await?.is_none() {
        let create = transactions::create_token_account_idempotent(
            &chain.fee_payer(),
            owner,
            mint,
            token_program,
        );
        chain.send(&[create], &[]).await?;
        tracing::info!(%address, %mint, "created the recipient's token account");
    }
    Ok(())
}
