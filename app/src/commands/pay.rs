//! `amp pay`: one HTTP request paid through AMP, like `curl` with a wallet.
//!
//! Two ways to pay:
//!
//! * [`pay_agent`]: the SDK's agent client ([`AmpClient`]) with a lane file
//!   and a budget: it discovers the service, opens a channel when it has
//!   none (within the budget), pays, and remembers the lane for the next run.
//! * [`pay`]: from a lane given by address (one opened with `amp open`).
//!
//! In the second way the command keeps no state between runs, so it learns what the lane owes
//! from the service: it first signs what the lane has settled on-chain, and
//! a service that wants more answers `AMP_UNDERFUNDED` with the amount it
//! requires (what is owed plus this request's price); the command signs that
//! if it is within the caller's budget and sends the request again. The
//! voucher's seq is the current time in microseconds, which only grows.

use std::fmt;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use amp_sdk::chain::Chain;
use amp_sdk::client::{AmpClient, Policy};
use amp_sdk::decimal::u64_string;
use amp_sdk::headers::{Credential, Receipt};
use amp_sdk::manifest::{self, ErrorCode, Manifest, MANIFEST_PATH};
use amp_sdk::voucher::Voucher;
use anchor_lang::prelude::Pubkey;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::Serialize;
use solana_keypair::Keypair;
use solana_signer::Signer;

use super::{display, Lane};
use crate::amount::{format_tokens, Amount};
use crate::error::CliError;

/// A request to pay for.
#[derive(Clone, Debug)]
pub struct PayRequest {
    pub url: String,
    pub method: Method,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Option<Vec<u8>>,
    /// The lane (channel or delegation) that pays; the wallet signs its vouchers.
    pub lane: Pubkey,
    /// Most this request may add to what the lane owes; `None` = whatever
    /// the lane can still pay.
    pub max: Option<Amount>,
}

/// The response, and what it cost.
#[derive(Clone, Debug, Serialize)]
pub struct PayReport {
    pub status: u16,
    #[serde(skip)]
    pub headers: HeaderMap,
    /// The body as text (lossy UTF-8).
    pub body: String,
    #[serde(serialize_with = "display")]
    pub lane: Pubkey,
    pub seq: u64,
    /// The cumulative amount the voucher signed.
    #[serde(with = "u64_string")]
    pub signed: u64,
    /// `AMP-Owed`, when the service sent a receipt.
    #[serde(with = "u64_string::option", skip_serializing_if = "Option::is_none")]
    pub owed: Option<u64>,
    /// `AMP-Remaining`, when the service sent a receipt.
    #[serde(with = "u64_string::option", skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    #[serde(skip)]
    pub(crate) decimals: u8,
}

impl PayReport {
    /// One line about the payment, for stderr beside the body.
    pub fn summary(&self) -> String {
        let t = |units| format_tokens(units, self.decimals);
        match (self.owed, self.remaining) {
            (Some(owed), Some(remaining)) => format!(
                "HTTP {} · lane {} · seq {} · signed {} · owed {} · remaining {}",
                self.status,
                self.lane,
                self.seq,
                t(self.signed),
                t(owed),
                t(remaining)
            ),
            _ => format!(
                "HTTP {} · lane {} · seq {} · signed {} · no receipt",
                self.status,
                self.lane,
                self.seq,
                t(self.signed)
            ),
        }
    }
}

impl fmt::Display for PayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.body)
    }
}

/// A request paid by the agent client.
#[derive(Clone, Debug)]
pub struct AgentPayRequest {
    pub url: String,
    pub method: Method,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Option<Vec<u8>>,
    /// The client's lane file: the lanes it holds and what it has signed.
    pub lanes: PathBuf,
    /// The mint to pay in; `None` = the first one the service accepts.
    pub mint: Option<Pubkey>,
    /// The most the lane file's lanes may ever sign, in total.
    pub budget: Amount,
    /// Deposit of a new channel; `None` = a quarter of the budget.
    pub deposit: Option<Amount>,
}

/// Sends `request` through the SDK's agent client, opening a channel to the
/// service first if the lane file holds none. `wallet` funds and signs.
pub async fn pay_agent<C: Chain + 'static>(
    chain: C,
    wallet: &Keypair,
    http: &reqwest::Client,
    request: AgentPayRequest,
) -> Result<PayReport, CliError> {
    let url = reqwest::Url::parse(&request.url)
        .map_err(|e| CliError::usage(format!("{:?} is not a URL: {e}", request.url)))?;
    let origin = url.origin().ascii_serialization();
    let manifest: Manifest = http
        .get(format!("{origin}{MANIFEST_PATH}"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
        .map_err(|e| CliError::state(format!("{origin} has no usable AMP manifest: {e}")))?;
    let mint = match request.mint {
        Some(mint) => manifest
            .mints
            .iter()
            .find(|m| m.mint == mint)
            .ok_or_else(|| CliError::state(format!("{origin} does not accept mint {mint}")))?,
        None => manifest
            .mints
            .first()
            .ok_or_else(|| CliError::state(format!("{origin} accepts no mint")))?,
    };
    let decimals = mint.decimals;
    let mut policy = Policy::new(mint.mint, request.budget.to_base_units(decimals)?);
    policy.deposit = request
        .deposit
        .as_ref()
        .map(|d| d.to_base_units(decimals))
        .transpose()?;
    if let Some(parent) = request.lanes.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| CliError::Io(parent.display().to_string(), e))?;
    }
    let client = AmpClient::builder(&request.lanes, policy)
        .chain(chain)
        .wallet(wallet.insecure_clone())
        .http(http.clone())
        .build()
        .await
        .map_err(agent_error)?;
    let mut builder = client.http().request(request.method, url);
    for (name, value) in request.headers {
        builder = builder.header(name, value);
    }
    if let Some(body) = request.body {
        builder = builder.body(body);
    }
    let response = client.send(builder).await.map_err(agent_error)?;
    let status = response.status();
    let headers = response.headers().clone();
    let receipt = response.receipt();
    let body = response.bytes().await.map_err(agent_error)?;
    let lane = client
        .lane(&origin)
        .ok_or_else(|| CliError::state(format!("the agent holds no lane for {origin}")))?;
    Ok(PayReport {
        status: status.as_u16(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        lane: lane.record.lane,
        seq: lane.seq,
        signed: lane.signed,
        owed: receipt.map(|r| r.owed),
        remaining: receipt.map(|r| r.remaining),
        decimals,
    })
}

pub(crate) fn agent_error(error: amp_sdk::client::ClientError) -> CliError {
    match error {
        amp_sdk::client::ClientError::Refused { body, .. } => CliError::Refused(body),
        other => CliError::state(format!("agent: {other}")),
    }
}

/// Sends `request` with a credential for its lane, signed by `wallet`.
pub async fn pay(
    chain: &dyn Chain,
    wallet: &Keypair,
    http: &reqwest::Client,
    request: PayRequest,
) -> Result<PayReport, CliError> {
    let lane = Lane::fetch(chain, &request.lane).await?;
    let signer = lane.accounts.signer();
    if signer != wallet.pubkey() {
        return Err(CliError::state(format!(
            "lane {} takes vouchers signed by {signer}; the wallet is {}",
            request.lane,
            wallet.pubkey()
        )));
    }
    let max = request
        .max
        .as_ref()
        .map(|m| m.to_base_units(lane.mint.decimals))
        .transpose()?;
    let limit = lane.accounts.limit();
    let mut amount = lane.accounts.settled();
    let mut seq = micros_now();
    for attempt in 0..3 {
        let voucher = Voucher {
            lane: request.lane,
            generation: lane.accounts.generation(),
            seq,
            cumulative: amount,
            expires_at: 0,
        };
        let credential = Credential::sign(wallet, &voucher);
        let response = send(http, &request, &credential).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await?;
        let refusal = (!status.is_success())
            .then(|| manifest::refusal(status, &bytes))
            .flatten();
        let Some(error) = refusal else {
            let receipt = Receipt::from_headers(&headers).ok();
            return Ok(PayReport {
                status: status.as_u16(),
                headers,
                body: String::from_utf8_lossy(&bytes).into_owned(),
                lane: request.lane,
                seq,
                signed: amount,
                owed: receipt.map(|r| r.owed),
                remaining: receipt.map(|r| r.remaining),
                decimals: lane.mint.decimals,
            });
        };
        match (error.error, error.required) {
            (ErrorCode::Underfunded, Some(required)) if required > amount && attempt < 2 => {
                let owed = error.owed.unwrap_or(amount);
                let adds = required.saturating_sub(owed);
                if let Some(max) = max {
                    if adds > max {
                        return Err(CliError::state(format!(
                            "the service asks {} for this request, over the budget of {}",
                            format_tokens(adds, lane.mint.decimals),
                            format_tokens(max, lane.mint.decimals)
                        )));
                    }
                }
                if required > limit {
                    return Err(CliError::state(format!(
                        "the service requires a voucher for {}, more than the lane can pay ({}): top up first",
                        format_tokens(required, lane.mint.decimals),
                        format_tokens(limit, lane.mint.decimals)
                    )));
                }
                tracing::debug!(required, owed, "signing what the service requires");
                amount = required;
                seq += 1;
            }
            _ => return Err(CliError::Refused(Box::new(error))),
        }
    }
    Err(CliError::state("the service kept asking for more"))
}

async fn send(
    http: &reqwest::Client,
    request: &PayRequest,
    credential: &Credential,
) -> Result<reqwest::Response, CliError> {
    let mut headers = HeaderMap::new();
    for (name, value) in &request.headers {
        headers.append(name.clone(), value.clone());
    }
    credential.write(&mut headers);
    let mut builder = http
        .request(request.method.clone(), &request.url)
        .headers(headers);
    if let Some(body) = &request.body {
        builder = builder.body(body.clone());
    }
    Ok(builder.send().await?)
}

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(1)
}
