//! `amp lanes`: the lanes `amp pay` holds as an agent (its lane file), and
//! ending them: a cooperative close through the service, or a refund once a
//! close requested on-chain has run its grace period.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use amp_sdk::chain::Chain;
use amp_sdk::client::{AmpClient, CloseOutcome, LaneStatus, Policy};
use amp_sdk::decimal::u64_string;
use anchor_lang::prelude::Pubkey;
use clap::{Args, Subcommand};
use serde::Serialize;
use solana_keypair::Keypair;

use super::lane::MintInfo;
use crate::amount::Amount;
use crate::config;
use crate::context::GlobalArgs;
use crate::error::CliError;
use crate::output::{display, utc, Report};

#[derive(Debug, Subcommand)]
pub enum LanesCommand {
    /// List the lanes of the lane file.
    List(LaneFileArg),
    /// Close the lane paying a service: cooperatively, or on-chain if it will not.
    Close {
        /// The service (its origin, or any URL of it).
        service: String,
        /// Most all lanes of the lane file may ever sign, in tokens (as for `amp pay`).
        #[arg(long, value_name = "AMOUNT")]
        budget: Amount,
        #[command(flatten)]
        file: LaneFileArg,
    },
    /// Refund the lanes whose requested close has run its grace period.
    Refund(LaneFileArg),
}

impl LanesCommand {
    pub async fn run(self, globals: &GlobalArgs) -> Result<Box<dyn Report>, CliError> {
        let (wallet, chain) = globals.context()?.wallet_and_chain()?;
        let chain: Arc<dyn Chain> = Arc::new(chain);
        Ok(match self {
            Self::List(file) => Box::new(list(chain, &wallet, file.path()).await?),
            Self::Close {
                service,
                budget,
                file,
            } => Box::new(close(chain, &wallet, file.path(), &service, &budget).await?),
            Self::Refund(file) => Box::new(refund(chain, &wallet, file.path()).await?),
        })
    }
}

#[derive(Debug, Args)]
pub struct LaneFileArg {
    /// The agent's lane file [default: ~/.config/amp/lanes.json].
    #[arg(long, value_name = "FILE")]
    pub lanes: Option<PathBuf>,
}

impl LaneFileArg {
    fn path(&self) -> PathBuf {
        self.lanes
            .as_deref()
            .map(config::expand_home)
            .unwrap_or_else(config::default_lane_file)
    }
}

/// One lane of the file.
#[derive(Clone, Debug, Serialize)]
pub struct LaneRow {
    pub service: String,
    #[serde(serialize_with = "display")]
    pub lane: Pubkey,
    #[serde(serialize_with = "display")]
    pub mint: Pubkey,
    pub status: LaneStatus,
    /// Most the lane can pay, in base units.
    #[serde(with = "u64_string")]
    pub limit: u64,
    /// Highest amount signed (or reserved for signing).
    #[serde(with = "u64_string")]
    pub signed: u64,
    /// What the service says is owed, as far as the agent knows.
    #[serde(with = "u64_string")]
    pub owed: u64,
    pub seq: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LanesReport {
    pub file: PathBuf,
    pub lanes: Vec<LaneRow>,
}

/// What `amp lanes close` did.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CloseLaneReport {
    /// The service settled and closed the channel; the rest is refunded.
    Closed {
        service: String,
        #[serde(with = "u64_string")]
        settled: u64,
        signature: String,
    },
    /// The service did not close it: the close was requested on-chain;
    /// `amp lanes refund` takes the refund from `refundable_at` on.
    Closing { service: String, refundable_at: i64 },
}

#[derive(Clone, Debug, Serialize)]
pub struct RefundLanesReport {
    #[serde(serialize_with = "display_all")]
    pub refunded: Vec<Pubkey>,
}

async fn client(
    chain: Arc<dyn Chain>,
    wallet: &Keypair,
    lanes: &PathBuf,
    budget: u64,
) -> Result<AmpClient, CliError> {
    // The mint matters only for opening lanes, which these commands never do.
    AmpClient::builder(lanes, Policy::new(Pubkey::default(), budget))
        .chain(chain)
        .wallet(wallet.insecure_clone())
        .build()
        .await
        .map_err(super::pay::agent_error)
}

/// Lists the lanes of the lane file at `lanes`.
pub async fn list(
    chain: Arc<dyn Chain>,
    wallet: &Keypair,
    lanes: PathBuf,
) -> Result<LanesReport, CliError> {
    // Listing signs nothing: the budget does not matter.
    let client = client(chain, wallet, &lanes, u64::MAX).await?;
    let rows = client
        .lanes()
        .into_iter()
        .map(|info| LaneRow {
            service: info.record.service.clone(),
            lane: info.record.lane,
            mint: info.record.mint,
            status: info.record.status,
            limit: info.record.limit,
            signed: info.signed,
            owed: info.record.owed,
            seq: info.seq,
        })
        .collect();
    Ok(LanesReport {
        file: lanes,
        lanes: rows,
    })
}

/// Closes the lane paying `service` (an origin or any URL of it): the
/// service settles and closes it at once, or the close is requested
/// on-chain when it will not. The final voucher stays within `budget`
/// (tokens of the lane's mint).
pub async fn close(
    chain: Arc<dyn Chain>,
    wallet: &Keypair,
    lanes: PathBuf,
    service: &str,
    budget: &Amount,
) -> Result<CloseLaneReport, CliError> {
    // Find the lane (and so its mint) first; the budget is fixed once the
    // client is built, and it is stated in tokens of that mint.
    let (service_name, mint) = {
        let lookup = client(Arc::clone(&chain), wallet, &lanes, u64::MAX).await?;
        let lane = lookup.lane(service).ok_or_else(|| {
            CliError::state(format!("the lane file holds no open lane for {service}"))
        })?;
        (lane.record.service, lane.record.mint)
    };
    let decimals = MintInfo::fetch(chain.as_ref(), &mint).await?.decimals;
    let budget = budget.to_base_units(decimals)?;
    let client = client(chain, wallet, &lanes, budget).await?;
    match client
        .close(service)
        .await
        .map_err(super::pay::agent_error)?
    {
        CloseOutcome::Closed { settled, signature } => Ok(CloseLaneReport::Closed {
            service: service_name,
            settled,
            signature,
        }),
        CloseOutcome::Closing { refundable_at } => Ok(CloseLaneReport::Closing {
            service: service_name,
            refundable_at,
        }),
    }
}

/// Refunds every lane whose requested close has run its grace period.
pub async fn refund(
    chain: Arc<dyn Chain>,
    wallet: &Keypair,
    lanes: PathBuf,
) -> Result<RefundLanesReport, CliError> {
    let client = client(chain, wallet, &lanes, u64::MAX).await?;
    let refunded = client.refund_due().await.map_err(super::pay::agent_error)?;
    Ok(RefundLanesReport { refunded })
}

fn display_all<S: serde::Serializer>(keys: &[Pubkey], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(keys.iter().map(ToString::to_string))
}

impl fmt::Display for LanesReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lanes.is_empty() {
            return write!(f, "No lanes in {}", self.file.display());
        }
        write!(f, "Lanes in {}", self.file.display())?;
        for l in &self.lanes {
            let status = match l.status {
                LaneStatus::Opening => "opening".to_owned(),
                LaneStatus::Open => "open".to_owned(),
                LaneStatus::Closing { refundable_at } => {
                    format!("closing, refundable at {}", utc(refundable_at))
                }
            };
            write!(
                f,
                "\n  {}\n    lane {} ({status})\n    signed {} · owed {} · limit {} (base units of {}) · seq {}",
                l.service, l.lane, l.signed, l.owed, l.limit, l.mint, l.seq
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for CloseLaneReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed {
                service,
                settled,
                signature,
            } => write!(
                f,
                "{service} closed the lane: {settled} base units settled, the rest refunded\n  signature {signature}"
            ),
            Self::Closing {
                service,
                refundable_at,
            } => write!(
                f,
                "{service} did not close the lane; the close is requested on-chain.\n  Run `amp lanes refund` from {}.",
                utc(*refundable_at)
            ),
        }
    }
}

impl fmt::Display for RefundLanesReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.refunded.is_empty() {
            return f.write_str("Nothing to refund yet");
        }
        write!(f, "Refunded {} lane(s):", self.refunded.len())?;
        for lane in &self.refunded {
            write!(f, "\n  {lane}")?;
        }
        Ok(())
    }
}
