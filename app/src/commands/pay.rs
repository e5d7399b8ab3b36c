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
use amp_sdk::client::{AmpClient, Policy, Sponsoring};
use amp_sdk::decimal::u64_string;
use amp_sdk::headers::{Credential, Receipt};
use amp_sdk::manifest::{self, ErrorCode, Manifest, MANIFEST_PATH};
use amp_sdk::voucher::Voucher;
use anchor_lang::prelude::Pubkey;
use clap::Args;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::Serialize;
use solana_keypair::Keypair;
use solana_signer::Signer;

use super::lane::Lane;
use crate::amount::{format_tokens, Amount};
use crate::config;
use crate::context::GlobalArgs;
use crate::error::CliError;
use crate::max_prices::MaxPrices;
use crate::output::display;
use crate::spend_policy::{terminal_approver, SpendArgs};

/// Make an HTTP request and pay for it through AMP, like curl.
///
/// As an agent (--budget), the lane file remembers a channel per service
/// and the first request to a service opens one. With --channel, a channel
/// opened by `amp open` pays. The body goes to stdout, a line about the
/// payment to stderr.
#[derive(Debug, Args)]
pub struct PayCmd {
    /// The URL to request.
    #[arg(value_name = "URL")]
    pub target: String,
    /// HTTP method [default: GET, or POST with --data].
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<Method>,
    /// Extra request header, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER", value_parser = parse_header)]
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Request body; @FILE reads a file, @- reads stdin.
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    pub data: Option<String>,
    /// Print the response headers before the body.
    #[arg(short = 'i', long)]
    pub include: bool,

    /// Most all lanes of the lane file may ever sign, in tokens (the agent
    /// opens a channel when it has none for this service).
    #[arg(
        long,
        value_name = "AMOUNT",
        required_unless_present = "channel",
        help_heading = "Paying as an agent (lane file)"
    )]
    pub budget: Option<Amount>,
    /// Deposit of a channel the agent opens, in tokens [default: a quarter of the budget].
    #[arg(
        long,
        value_name = "AMOUNT",
        conflicts_with = "channel",
        help_heading = "Paying as an agent (lane file)"
    )]
    pub deposit: Option<Amount>,
    /// Mint to pay in [default: the first the service accepts].
    #[arg(
        long,
        conflicts_with = "channel",
        help_heading = "Paying as an agent (lane file)"
    )]
    pub mint: Option<Pubkey>,
    /// The agent's lane file [default: ~/.config/amp/lanes.json].
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "channel",
        help_heading = "Paying as an agent (lane file)"
    )]
    pub lanes: Option<PathBuf>,
    /// Open and top up through a service that fronts the rent and fee:
    /// `auto` when the wallet has too little SOL, `prefer` whenever the
    /// service offers it, `never`.
    #[arg(
        long,
        value_name = "WHEN",
        default_value = "auto",
        conflicts_with = "channel",
        help_heading = "Paying as an agent (lane file)"
    )]
    pub sponsor: Sponsoring,
    #[command(flatten, next_help_heading = "Paying as an agent (lane file)")]
    pub max_prices: MaxPrices,
    #[command(flatten, next_help_heading = "Spend policy (lane file)")]
    pub spend: SpendArgs,

    /// Pay from this lane instead (a channel from `amp open`, or a
    /// delegation) whose vouchers the wallet signs; no lane file.
    #[arg(
        short = 'c',
        long = "channel",
        value_name = "LANE",
        conflicts_with = "budget",
        help_heading = "Paying from a given channel"
    )]
    pub channel: Option<Pubkey>,
    /// Most this request may cost, in tokens [default: what the lane can still pay].
    #[arg(
        long,
        value_name = "AMOUNT",
        conflicts_with = "budget",
        help_heading = "Paying from a given channel"
    )]
    pub max: Option<Amount>,
}

impl PayCmd {
    pub async fn run(self, globals: &GlobalArgs) -> Result<PayOutput, CliError> {
        let context = globals.context()?;
        let wallet = context.wallet()?;
        let http = reqwest::Client::new();
        let report = match self.channel {
            Some(lane) => {
                let chain = context.chain(&wallet);
                pay(&chain, &wallet, &http, self.pay_request(lane)?).await?
            }
            None => {
                let request = self.agent_pay_request()?;
                pay_agent(context.chain(&wallet), &wallet, &http, request).await?
            }
        };
        if globals.for_people() {
            // Beside the body, not in it: stdout stays what the service sent.
            eprintln!("{}", report.summary());
        }
        Ok(PayOutput {
            report,
            include: self.include,
        })
    }

    fn body(&self) -> Result<Option<Vec<u8>>, CliError> {
        Ok(match self.data.as_deref() {
            None => None,
            Some("@-") => {
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut data)
                    .map_err(|e| CliError::Io("stdin".into(), e))?;
                Some(data)
            }
            Some(data) => match data.strip_prefix('@') {
                Some(path) => Some(std::fs::read(path).map_err(|e| CliError::Io(path.into(), e))?),
                None => Some(data.as_bytes().to_vec()),
            },
        })
    }

    fn method(&self, body: &Option<Vec<u8>>) -> Method {
        self.method.clone().unwrap_or(if body.is_some() {
            Method::POST
        } else {
            Method::GET
        })
    }

    fn pay_request(&self, lane: Pubkey) -> Result<PayRequest, CliError> {
        let body = self.body()?;
        Ok(PayRequest {
            url: self.target.clone(),
            method: self.method(&body),
            headers: self.headers.clone(),
            body,
            lane,
            max: self.max.clone(),
        })
    }

    fn agent_pay_request(&self) -> Result<AgentPayRequest, CliError> {
        let body = self.body()?;
        let budget = self
            .budget
            .clone()
            .ok_or_else(|| CliError::usage("--budget (or --channel) is required"))?;
        Ok(AgentPayRequest {
            url: self.target.clone(),
            method: self.method(&body),
            headers: self.headers.clone(),
            body,
            lanes: self
                .lanes
                .as_deref()
                .map(config::expand_home)
                .unwrap_or_else(config::default_lane_file),
            mint: self.mint,
            budget,
            deposit: self.deposit.clone(),
            sponsoring: self.sponsor,
            max_prices: self.max_prices.clone(),
            spend: self.spend.clone(),
        })
    }
}

fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not 'Name: value'"))?;
    let name = HeaderName::try_from(name.trim()).map_err(|e| format!("header name: {e}"))?;
    let value = HeaderValue::try_from(value.trim()).map_err(|e| format!("header value: {e}"))?;
    Ok((name, value))
}

/// What `amp pay` prints: the body, after the status line and the headers
/// with `--include`; as JSON, the [`PayReport`].
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct PayOutput {
    pub report: PayReport,
    #[serde(skip)]
    pub include: bool,
}

impl fmt::Display for PayOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.include {
            writeln!(f, "HTTP {}", self.report.status)?;
            for (name, value) in &self.report.headers {
                writeln!(f, "{name}: {}", String::from_utf8_lossy(value.as_bytes()))?;
            }
            writeln!(f)?;
        }
        self.report.fmt(f)
    }
}

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
    /// When to open and top up through a sponsoring service.
    pub sponsoring: Sponsoring,
    /// The highest prices accepted.
    pub max_prices: MaxPrices,
    /// Spend limits, allowed services, the cap on channels, approvals.
    pub spend: SpendArgs,
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
    let spend = request.spend.load(&request.max_prices)?;
    // Before any call, discovery included, where the origin alone decides.
    spend
        .services
        .check(&origin, None)
        .map_err(|reason| CliError::state(format!("{origin}: not allowed: {reason}")))?;
    let manifest = discover(http, &origin).await?;
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
    policy.sponsoring = request.sponsoring;
    let approve_above = spend.apply(&mut policy, decimals)?;
    create_parent(&request.lanes)?;
    let mut builder = AmpClient::builder(&request.lanes, policy)
        .chain(chain)
        .wallet(wallet.insecure_clone())
        .http(http.clone());
    if let Some(threshold) = approve_above {
        builder = builder.approval(threshold, terminal_approver());
    }
    let client = builder.build().await.map_err(agent_error)?;
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

/// The manifest `origin` publishes.
pub(crate) async fn discover(http: &reqwest::Client, origin: &str) -> Result<Manifest, CliError> {
    http.get(format!("{origin}{MANIFEST_PATH}"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
        .map_err(|e| CliError::state(format!("{origin} has no usable AMP manifest: {e}")))
}

/// Makes the directory a lane file goes in.
pub(crate) fn create_parent(lanes: &std::path::Path) -> Result<(), CliError> {
    match lanes.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => std::fs::create_dir_all(parent)
            .map_err(|e| CliError::Io(parent.display().to_string(), e)),
        None => Ok(()),
    }
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
