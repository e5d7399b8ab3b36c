//! `amp serve`: charge for an existing HTTP API with a paying reverse proxy
//! in front of it (the proxy itself is in [`crate::proxy`]).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use amp_sdk::chain::Chain;
use amp_sdk::decimal::u64_string;
use amp_sdk::rpc::{Cluster, RpcChain};
use amp_sdk::server::FileConfig;
use clap::Args;
use serde::Serialize;
use solana_commitment_config::CommitmentLevel;

use crate::context::GlobalArgs;
use crate::error::CliError;
use crate::proxy::{self, Upstream};

/// Charge for an existing HTTP API: a paying reverse proxy in front of it.
///
/// Prices, accepted mints, the recipient wallet, the cluster and the
/// voucher store come from a TOML file; --url and --keypair override the
/// file's cluster and wallet, --with-compute-unit-price and
/// --max-compute-unit-price its [settle.fees], and --fee-payer pays the
/// fees instead of the wallet. Ctrl-C stops it after settling what is owed.
#[derive(Debug, Args)]
pub struct ServeCmd {
    /// The API to put behind the paywall, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub upstream: reqwest::Url,
    /// Prices, accepted mints, wallet, cluster and voucher store (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8402")]
    pub listen: SocketAddr,
}

/// What the proxy settled when it stopped.
#[derive(Clone, Debug, Serialize)]
pub struct ServeReport {
    #[serde(with = "u64_string")]
    pub settled: u64,
    pub transactions: u64,
    #[serde(with = "u64_string")]
    pub pending: u64,
}

impl ServeCmd {
    /// Loads the configuration, starts the paywall on its cluster (or
    /// `--url`'s), and serves until Ctrl-C; then settles what is unsettled.
    pub async fn run(self, globals: &GlobalArgs) -> Result<ServeReport, CliError> {
        let config = &self.config;
        let mut file = FileConfig::load(config)?;
        let cluster: Cluster = match &globals.url {
            Some(cluster) => cluster.clone(),
            None => file
                .cluster
                .parse()
                .map_err(|e| CliError::usage(format!("{}: cluster: {e}", config.display())))?,
        };
        if let Some(keypair) = &globals.keypair {
            file.wallet = crate::config::expand_home(keypair);
        }
        if file.service.network.is_none() {
            file.service.network = cluster.network().map(str::to_owned);
        }
        let wallet = amp_sdk::keypair::read(&file.wallet)?;
        // The settler and the service's other transactions pay alike. The
        // commitment is --commitment's: a server does not read a person's
        // Solana CLI configuration.
        let commitment = globals
            .commitment
            .map_or(CommitmentLevel::Confirmed, Into::into);
        let rpc = globals.rpc_config(commitment, file.service.settle.fees)?;
        file.service.settle.fees = rpc.fees;
        let payer = globals
            .fee_payer()?
            .unwrap_or_else(|| wallet.insecure_clone());
        let chain: Arc<dyn Chain> = Arc::new(RpcChain::with_config(&cluster, payer, rpc));
        let metrics_listen = file.service.metrics.as_ref().and_then(|m| m.listen);
        let paywall = proxy::start_paywall(chain, wallet, file).await?;
        let upstream = Upstream::new(self.upstream)?;
        let listen = self.listen;
        let listener = crate::listen::bind(listen).await?;
        let manifest = paywall.manifest();
        // Said while it runs, before any result: where to send requests.
        println!(
            "amp serve: http://{listen} -> {} (recipient {}, {})",
            upstream.base(),
            manifest.recipient,
            manifest.network
        );
        println!(
            "manifest: http://{listen}{}",
            amp_sdk::manifest::MANIFEST_PATH
        );
        if let Some(address) = metrics_listen {
            let bound = serve_metrics(address, paywall.metrics()).await?;
            println!("metrics: http://{bound}/metrics");
        }
        let app = proxy::paid_router(&paywall, upstream);
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
                eprintln!("shutting down: settling what is unsettled…");
            })
            .await
            .map_err(|e| CliError::Io("serving".into(), e))?;
        let status = paywall.shutdown().await?;
        Ok(ServeReport {
            settled: status.amount_settled,
            transactions: status.transactions,
            pending: status.pending_amount,
        })
    }
}

/// Serves the metrics at `/metrics` on a listener of their own (the
/// `[metrics] listen` address, which the operator keeps private), until the
/// process exits; returns the address bound.
async fn serve_metrics(
    address: SocketAddr,
    metrics: amp_sdk::server::MetricsHandle,
) -> Result<SocketAddr, CliError> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| CliError::Io(format!("metrics listener {address}"), e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| CliError::Io(format!("metrics listener {address}"), e))?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let text = metrics.render();
            async move {
                (
                    [(
                        http::header::CONTENT_TYPE,
                        amp_sdk::server::METRICS_CONTENT_TYPE,
                    )],
                    text,
                )
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the metrics listener stopped");
        }
    });
    Ok(bound)
}

impl fmt::Display for ServeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "settled {} in {} transaction(s); {} pending",
            self.settled, self.transactions, self.pending
        )
    }
}
