//! `amp proxy`: pay for any HTTP API from any language, through a local
//! proxy (the proxy itself is in [`crate::outbound`]).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use amp_sdk::chain::ChainExt;
use amp_sdk::client::{AmpClient, Policy, Sponsoring};
use amp_sdk::decimal::u64_string;
use anchor_lang::prelude::Pubkey;
use clap::Args;
use serde::Serialize;

use crate::amount::{format_tokens, Amount};
use crate::commands::pay::{agent_error, create_parent, discover};
use crate::config;
use crate::context::GlobalArgs;
use crate::error::CliError;
use crate::max_prices::MaxPrices;
use crate::outbound::{self, Allow, Outbound};

/// Pay for HTTP APIs from any language: a local proxy that pays every
/// request through AMP.
///
/// Point a client's base URL at `http://LISTEN/SERVICE_URL`, e.g.
/// `OPENAI_BASE_URL=http://127.0.0.1:8403/https://api.example.com/v1`; plain
/// `http://` services also work with the proxy as `HTTP_PROXY`. The first
/// request to a service opens a channel within the budget; lanes live in
/// the same lane file as `amp pay`'s. Only loopback addresses are served:
/// whoever reaches the proxy spends the budget. Ctrl-C stops it; its lanes
/// stay open (`amp lanes close` closes them).
#[derive(Debug, Args)]
pub struct ProxyCmd {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:8403")]
    pub listen: SocketAddr,
    /// A service the proxy pays (an origin, e.g. `https://api.example.com`);
    /// repeat for several.
    #[arg(
        long = "allow",
        value_name = "ORIGIN",
        required_unless_present = "allow_any"
    )]
    pub allow: Vec<String>,
    /// Pay any service the budget can (instead of --allow).
    #[arg(long, conflicts_with = "allow")]
    pub allow_any: bool,
    /// Most all lanes of the lane file may ever sign, in tokens.
    #[arg(long, value_name = "AMOUNT")]
    pub budget: Amount,
    /// Deposit of a channel the proxy opens, in tokens [default: a quarter of the budget].
    #[arg(long, value_name = "AMOUNT")]
    pub deposit: Option<Amount>,
    /// Mint to pay in [default: the first the first --allow service accepts].
    #[arg(long)]
    pub mint: Option<Pubkey>,
    /// The agent's lane file [default: ~/.config/amp/lanes.json].
    #[arg(long, value_name = "FILE")]
    pub lanes: Option<PathBuf>,
    /// Open and top up through a service that fronts the rent and fee:
    /// auto (when the wallet has too little SOL), prefer, never.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub sponsor: Sponsoring,
    #[command(flatten)]
    pub max_prices: MaxPrices,
}

/// What the proxy spent, reported when it stops.
#[derive(Clone, Debug, Serialize)]
pub struct ProxyReport {
    pub listen: SocketAddr,
    #[serde(with = "u64_string")]
    pub budget: u64,
    /// Signed (or committed to) so far, over every run of the lane file.
    #[serde(with = "u64_string")]
    pub spent: u64,
    pub lanes: usize,
    #[serde(skip)]
    pub decimals: u8,
}

impl fmt::Display for ProxyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tokens = |units| format_tokens(units, self.decimals);
        write!(
            f,
            "amp proxy stopped: {} of the budget {} signed, {} lane(s) open (`amp lanes close` closes them)",
            tokens(self.spent),
            tokens(self.budget),
            self.lanes
        )
    }
}

impl ProxyCmd {
    pub async fn run(self, globals: &GlobalArgs) -> Result<ProxyReport, CliError> {
        if !self.listen.ip().is_loopback() {
            return Err(CliError::usage(format!(
                "{}: amp proxy listens on loopback addresses only (whoever reaches it spends the budget)",
                self.listen
            )));
        }
        let allow = if self.allow_any {
            Allow::Any
        } else {
            Allow::Origins(
                self.allow
                    .iter()
                    .map(|o| origin(o))
                    .collect::<Result<_, _>>()?,
            )
        };
        let context = globals.context()?;
        let wallet = context.wallet()?;
        let chain = context.chain(&wallet);
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(CliError::from)?;
        let mint = match (self.mint, &allow) {
            (Some(mint), _) => mint,
            (None, Allow::Origins(origins)) => first_mint(&http, &origins[0]).await?,
            (None, Allow::Any) => {
                return Err(CliError::usage(
                    "--allow-any needs --mint (which token to pay in)",
                ))
            }
        };
        let decimals = chain.mint(&mint).await?.decimals;
        let budget = self.budget.to_base_units(decimals)?;
        let mut policy = Policy::new(mint, budget);
        policy.deposit = self
            .deposit
            .as_ref()
            .map(|d| d.to_base_units(decimals))
            .transpose()?;
        policy.sponsoring = self.sponsor;
        policy.max_prices = self.max_prices.ceilings(decimals)?;
        let lanes = self
            .lanes
            .as_deref()
            .map(config::expand_home)
            .unwrap_or_else(config::default_lane_file);
        create_parent(&lanes)?;
        let client = AmpClient::builder(&lanes, policy)
            .chain(chain)
            .wallet(wallet)
            .http(http)
            .build()
            .await
            .map_err(agent_error)?;
        let outbound = Arc::new(Outbound::new(client, allow));
        let listen = self.listen;
        let listener = crate::listen::bind(listen).await?;
        // Said while it runs: where clients send requests.
        println!("amp proxy: http://{listen}/<service URL>, e.g. http://{listen}/https://api.example.com/v1");
        axum::serve(listener, outbound::router(Arc::clone(&outbound)))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| CliError::Io("serving".into(), e))?;
        let client = outbound.client();
        let status = client.budget();
        Ok(ProxyReport {
            listen,
            budget: status.budget,
            spent: status.spent,
            lanes: client.lanes().len(),
            decimals,
        })
    }
}

/// `text` as an origin (scheme, host, port), refusing anything with a path.
fn origin(text: &str) -> Result<String, CliError> {
    let url =
        reqwest::Url::parse(text).map_err(|e| CliError::usage(format!("--allow {text}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(CliError::usage(format!(
            "--allow {text}: not an http(s) origin"
        )));
    }
    if url.path() != "/" || url.query().is_some() {
        return Err(CliError::usage(format!(
            "--allow {text}: an origin has no path (e.g. https://api.example.com)"
        )));
    }
    Ok(url.origin().ascii_serialization())
}

/// The first mint `service`'s manifest accepts.
async fn first_mint(http: &reqwest::Client, service: &str) -> Result<Pubkey, CliError> {
    discover(http, service)
        .await?
        .mints
        .first()
        .map(|m| m.mint)
        .ok_or_else(|| CliError::state(format!("{service} accepts no mint")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_services_are_origins() {
        assert_eq!(
            origin("https://api.example.com").unwrap(),
            "https://api.example.com"
        );
        assert_eq!(
            origin("https://api.example.com/").unwrap(),
            "https://api.example.com"
        );
        assert_eq!(
            origin("http://127.0.0.1:8402").unwrap(),
            "http://127.0.0.1:8402"
        );
        assert_eq!(
            origin("https://API.example.com:443").unwrap(),
            "https://api.example.com"
        );
        assert!(origin("https://api.example.com/v1").is_err());
        assert!(origin("ftp://example.com").is_err());
        assert!(origin("example.com").is_err());
    }
}
