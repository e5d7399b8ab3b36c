//! The paywall and its builder: reads the mints, builds the components of
//! the request path (lane cache, meter, admission, credit, cooperative
//! close, well-known endpoints) and the settler beside them, and stops them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use anchor_lang::AccountDeserialize;
use bytes::Bytes;
use solana_keypair::Keypair;
use solana_signer::Signer;
use tokio::task::JoinHandle;

use super::admission::Admission;
use super::cache::LaneCache;
use super::close::CooperativeClose;
use super::config::{
    Config, FileConfig, MetricsConfig, MintConfig, SessionConfig, SettleConfig, SponsorConfig,
};
use super::credit::Credit;
use super::error::ServerError;
use super::ledger::Ledger;
use super::metrics::{Metrics, MetricsHandle, SharedMetrics};
use super::pricing::PriceTable;
use super::rate_limit::RateLimit;
use super::service::{PaywallLayer, Shared};
use super::session::endpoint::Sessions;
use super::session::keys::SessionKeys;
use super::settle::{SettleHook, Settler, SettlerStatus};
use super::sponsor::Sponsor;
use super::wellknown::{MetricsRoute, WellKnown};
use crate::chain::{self, Chain, ChainError, ChainExt};
use crate::manifest::{Manifest, MintInfo, Price};
use crate::store::{self, MemoryStore, VoucherStore};
use crate::transactions;

/// A running paywall: the layer's shared state, the lane refresher and the
/// settler. Dropping it stops the background tasks without settling; call
/// [`shutdown`](Self::shutdown) to settle first.
pub struct Paywall {
    shared: Arc<Shared>,
    cache: Arc<LaneCache>,
    store: Arc<dyn VoucherStore>,
    /// Flushed at shutdown: what session requests charged goes to the store.
    ledger: Ledger,
    manifest: Manifest,
    settler: Option<Settler>,
    refresher: JoinHandle<()>,
    metrics: SharedMetrics,
}

/// Builds a [`Paywall`] from code; see [`Config`] for what each setting means.
#[must_use = "a builder does nothing until `start` is called"]
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

    /// Prices the JSON-RPC `method` (MCP's `tools/call`) on the route
    /// `pattern`; the route's other methods are served free
    /// ([`Pricing::methods`](crate::manifest::Pricing::methods)).
    pub fn method(
        mut self,
        pattern: impl Into<String>,
        method: impl Into<String>,
        price: Price,
    ) -> Self {
        self.config
            .pricing
            .methods
            .entry(pattern.into())
            .or_default()
            .insert(method.into(), price);
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

    /// Fronts the rent and fee of agents' channels on these terms
    /// ([`SponsorConfig`]); the manifest advertises them.
    pub fn sponsor(mut self, sponsor: SponsorConfig) -> Self {
        self.config.sponsor = Some(sponsor);
        self
    }

    /// Offers sessions ([`SessionConfig`]); the manifest advertises them.
    pub fn session(mut self, session: SessionConfig) -> Self {
        self.config.session = Some(session);
        self
    }

    /// Serves the operator metrics as [`MetricsConfig`] says; without it
    /// they are only [rendered](Paywall::metrics_text) for the program.
    pub fn metrics(mut self, metrics: MetricsConfig) -> Self {
        self.config.metrics = Some(metrics);
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
            // A service started beside a node that is still starting, or
            // briefly busy, waits for it rather than exiting.
            let token_program = chain::retry_transient(|| chain.mint_token_program(mint)).await?;
            let decimals = chain::retry_transient(|| read_decimals(chain.as_ref(), mint)).await?;
            chain::retry_transient(|| {
                ensure_token_account(chain.as_ref(), &recipient, mint, &token_program)
            })
            .await?;
            mints.insert(*mint, token_program);
            infos.push(MintInfo {
                mint: *mint,
                decimals,
                symbol: symbol.clone(),
            });
        }
        let wallet = Arc::new(self.wallet);
        let sponsor = config.sponsor.as_ref().map(|sponsor| {
            Arc::new(Sponsor::new(
                Arc::clone(&chain),
                Arc::clone(&wallet),
                sponsor,
                config.min_deposit,
                config.min_grace_period,
                mints.clone(),
            ))
        });
        if let Some(sponsor) = &sponsor {
            chain::retry_transient(|| sponsor.rebuild()).await?;
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
            sponsor: sponsor.as_ref().map(|s| s.sponsorship().clone()),
            session: config
                .session
                .as_ref()
                .map(|s| crate::manifest::SessionTerms { ttl: s.ttl }),
        };
        let manifest_json = Bytes::from(
            serde_json::to_vec(&manifest).map_err(|e| ServerError::Config(e.to_string()))?,
        );

        let metrics = Arc::new(Metrics::new());
        let settler = if config.settle.enabled {
            let settle = config.settle.clone();
            let accepted = config.mints.iter().map(|m| m.mint).collect();
            Some(
                Settler::start_with(
                    Arc::clone(&chain),
                    Arc::clone(&store),
                    settle,
                    Arc::clone(&metrics),
                    accepted,
                )
                .await?,
            )
        } else {
            None
        };
        let hook = SettleHook::new(settler.as_ref().map(Settler::signal));
        let cache = LaneCache::start(
            Arc::clone(&chain),
            config.refresh,
            config.max_lookups,
            hook.clone(),
        )
        .await?;
        let lanes = Arc::downgrade(&cache);
        metrics.count_lanes_with(move || lanes.upgrade().map_or(0, |cache| cache.len()));
        let ledger = Ledger::new(Arc::clone(&store), hook.clone(), Arc::clone(&metrics));
        let keys = config
            .session
            .as_ref()
            .map(|s| Arc::new(SessionKeys::new(&wallet, s)));
        let admission = Arc::new(Admission::new(
            &config,
            manifest.clone(),
            Arc::clone(&cache),
            ledger.clone(),
            hook.clone(),
            keys.clone(),
            Arc::clone(&metrics),
        ));
        let credit = Arc::new(Credit::new(
            Arc::clone(&admission),
            Arc::clone(&cache),
            ledger.clone(),
            config.credit,
        ));
        let sessions =
            keys.map(|keys| Sessions::new(Arc::clone(&credit), Arc::clone(&cache), keys));
        let close = CooperativeClose::new(
            Arc::clone(&admission),
            Arc::clone(&cache),
            ledger.clone(),
            chain,
            wallet,
            mints,
            sponsor.clone(),
        );
        let wellknown = WellKnown::new(
            manifest_json,
            close,
            Arc::clone(&credit),
            hook,
            sponsor,
            sessions,
            config.status_route,
        );
        let wellknown = match config
            .metrics
            .as_ref()
            .and_then(|m| Some((m, m.token.clone()?)))
        {
            Some((served, token)) => wellknown.with_metrics(MetricsRoute {
                path: served.route.clone(),
                token,
                metrics: Arc::clone(&metrics),
            }),
            None => wellknown,
        };
        let prices = PriceTable::new(&config.pricing, &config.free);
        let shared = Arc::new(Shared::new(
            wellknown,
            prices,
            admission,
            credit,
            Arc::clone(&metrics),
        ));
        let refresher = cache.spawn_refresher();
        tracing::info!(%recipient, "paywall started");
        Ok(Paywall {
            shared,
            cache,
            store,
            ledger,
            manifest,
            settler,
            refresher,
            metrics,
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
        // The service's other transactions (closes) pay as its settlements do.
        let rpc = crate::rpc::RpcConfig {
            fees: service.settle.fees,
            ..crate::rpc::RpcConfig::default()
        };
        let chain = Arc::new(crate::rpc::RpcChain::with_config(
            &cluster,
            wallet.insecure_clone(),
            rpc,
        ));
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
        PaywallLayer::new(Arc::clone(&self.shared))
    }

    /// The manifest served at `/.well-known/amp.json`.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The voucher store the paywall records lanes in.
    pub fn store(&self) -> &Arc<dyn VoucherStore> {
        &self.store
    }

    /// The settler's counters (all zero when it is disabled).
    pub fn status(&self) -> SettlerStatus {
        self.settler
            .as_ref()
            .map(Settler::status)
            .unwrap_or_default()
    }

    /// The operator metrics in the OpenMetrics text format Prometheus
    /// scrapes ([`METRICS_CONTENT_TYPE`](super::METRICS_CONTENT_TYPE)), for
    /// a program that serves them itself; recorded whether or not
    /// [`MetricsConfig`] serves them.
    pub fn metrics_text(&self) -> String {
        self.metrics.render()
    }

    /// A handle that renders the metrics, for a listener of their own.
    pub fn metrics(&self) -> MetricsHandle {
        MetricsHandle(Arc::clone(&self.metrics))
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
        self.cache.refresh_all().await
    }

    /// Stops the refresher, settles what is unsettled (if configured), and
    /// closes the store.
    pub async fn shutdown(mut self) -> Result<SettlerStatus, ServerError> {
        self.refresher.abort();
        match self.ledger.flush().await {
            Ok(0) => {}
            Ok(lanes) => tracing::info!(lanes, "session charges written to the store"),
            Err(error) => tracing::error!(%error, "cannot write session charges to the store"),
        }
        let status = match self.settler.take() {
            Some(settler) => settler.shutdown().await,
            None => SettlerStatus::default(),
        };
        self.store.close().await?;
        tracing::info!(?status, "paywall stopped");
        Ok(status)
    }
}

impl Drop for Paywall {
    fn drop(&mut self) {
        self.refresher.abort();
    }
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
