//! `amp demo`: the whole story on one machine, with no setup and no network.
//!
//! An embedded Solana bank runs the AMP program beside the real SPL Token
//! program; a USDC-like mint (6 decimals) and three wallets are created; a
//! paid API starts on 127.0.0.1 behind the SDK's paywall (an LLM-shaped
//! completion route priced per token, a per-call route, and a streaming
//! route priced per second); an agent ([`AmpClient`]) discovers it, opens a
//! channel and makes the calls; the settler settles; the agent closes; and
//! the report says what it all cost on-chain, next to what paying each
//! request with its own token transfer would have cost.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amp_sdk::chain::Chain;
use amp_sdk::client::{AmpClient, CloseOutcome, Policy};
use amp_sdk::embedded::EmbeddedBank;
use amp_sdk::manifest::{Price, PricingMode};
use amp_sdk::server::{Payment, Paywall, SettleConfig};
use amp_sdk::store::{Durability, MemoryStore};
use anchor_lang::prelude::Pubkey;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use bytes::Bytes;
use http::{header, HeaderValue};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use solana_keypair::Keypair;
use solana_signer::Signer;

use crate::amount::format_tokens;
use crate::error::CliError;
use crate::metered::{MeteredChain, TxKind, TxRecord};
use crate::sandbox;

/// The mint's decimals, like USDC.
pub const DECIMALS: u8 = 6;
const USDC: u64 = 1_000_000;

/// The demo API's routes and prices.
pub const CHAT_ROUTE: &str = "/v1/chat/completions";
pub const WEATHER_ROUTE: &str = "/v1/weather";
pub const STREAM_ROUTE: &str = "/v1/stream";
/// 2 base units (0.000002 USDC) per token.
pub const CHAT_PRICE: Price = Price {
    mode: PricingMode::PerToken,
    rate: 2,
};
/// 100 base units (0.0001 USDC) per call.
pub const WEATHER_PRICE: Price = Price {
    mode: PricingMode::PerCall,
    rate: 100,
};
/// 1,000 base units (0.001 USDC) per second of stream.
pub const STREAM_PRICE: Price = Price {
    mode: PricingMode::PerSecond,
    rate: 1_000,
};

/// How the demo runs.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Paid calls the agent makes.
    pub calls: u32,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// The settler settles a lane once this much of it is unsettled.
    pub settle_threshold: u64,
    /// Chunks in a streamed response, and the pause before each.
    pub stream_chunks: u32,
    pub stream_interval: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            calls: 1_000,
            progress: false,
            settle_threshold: 20_000,
            stream_chunks: 4,
            stream_interval: Duration::from_millis(5),
        }
    }
}

/// Calls and charges of one route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteReport {
    pub route: &'static str,
    pub price: Price,
    pub calls: u32,
}

/// Transactions of one kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TxSummary {
    pub kind: TxKind,
    pub count: u32,
    /// Vouchers these transactions settled.
    pub vouchers: u32,
    /// Lamports.
    pub fees: u64,
}

/// Percentiles of a duration sample, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub p50_us: u64,
    pub p99_us: u64,
    pub samples: u32,
}

impl Percentiles {
    fn of(mut samples: Vec<Duration>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            // Nearest rank.
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            u64::try_from(samples[rank - 1].as_micros()).unwrap_or(u64::MAX)
        };
        Self {
            p50_us: at(0.50),
            p99_us: at(0.99),
            samples: u32::try_from(samples.len()).unwrap_or(u32::MAX),
        }
    }
}

/// What the demo did and what it cost.
#[derive(Clone, Debug, Serialize)]
pub struct DemoReport {
    pub calls: u32,
    pub routes: Vec<RouteReport>,
    /// Wall time of the calls, the settlement and the close.
    pub elapsed_ms: u64,
    #[serde(serialize_with = "crate::commands::display")]
    pub mint: Pubkey,
    pub decimals: u8,
    #[serde(serialize_with = "crate::commands::display")]
    pub channel: Pubkey,
    #[serde(with = "amp_sdk::decimal::u64_string")]
    pub deposit: u64,
    /// Tokens the service received.
    #[serde(with = "amp_sdk::decimal::u64_string")]
    pub paid: u64,
    /// Tokens returned to the agent at close.
    #[serde(with = "amp_sdk::decimal::u64_string")]
    pub refunded: u64,
    /// The agent's tokens before and after.
    #[serde(with = "amp_sdk::decimal::u64_string")]
    pub agent_tokens_before: u64,
    #[serde(with = "amp_sdk::decimal::u64_string")]
    pub agent_tokens_after: u64,
    /// The service's tokens after.
    #[serde(with = "amp_sdk::decimal::u64_string")]
    pub service_tokens: u64,
    /// Every transaction the channel's life took, by kind.
    pub transactions: Vec<TxSummary>,
    pub transaction_count: u32,
    /// Of those, the ones that failed (a fee is still paid).
    pub failed_transactions: u32,
    /// Lamports of fees for all of them.
    pub fees: u64,
    /// Lamports the agent fronted for the Channel and Vault accounts...
    pub rent_paid: u64,
    /// ...and got back when the channel closed.
    pub rent_reclaimed: u64,
    /// The fee of one SPL token transfer transaction, measured on the same bank.
    pub transfer_fee: u64,
    /// `calls × transfer_fee`: paying every request with its own transaction.
    pub per_request_fees: u64,
    /// Time the paywall adds to a paid request (credential parsed and
    /// verified, lane checked, voucher persisted), measured around the handler.
    pub payment_overhead: Percentiles,
    /// A paid request/response call (streams excluded) as the agent sees
    /// it, request to last byte, on loopback.
    pub call_latency: Percentiles,
}

impl DemoReport {
    /// How many of the demo's transactions' fees one-transaction-per-request would pay.
    pub fn fee_ratio(&self) -> f64 {
        if self.fees == 0 {
            return 0.0;
        }
        self.per_request_fees as f64 / self.fees as f64
    }

    pub fn count(&self, kind: TxKind) -> u32 {
        self.transactions
            .iter()
            .filter(|t| t.kind == kind)
            .map(|t| t.count)
            .sum()
    }
}

/// Runs the demo and reports.
pub async fn run(options: DemoOptions) -> Result<DemoReport, CliError> {
    if options.calls == 0 {
        return Err(CliError::usage("--calls must be at least 1"));
    }
    // The chain: an embedded bank, every transaction recorded.
    let bank = EmbeddedBank::start().await;
    let chain = Arc::new(MeteredChain::new(bank.clone()));
    let dyn_chain: Arc<dyn Chain> = chain.clone();

    // Wallets and a USDC-like mint. The bank's genesis account pays every
    // fee; the agent fronts its channel's rent, so it gets a little SOL.
    let (issuer, agent, service) = (Keypair::new(), Keypair::new(), Keypair::new());
    let payer = chain.fee_payer();
    let mint = sandbox::create_mint(chain.as_ref(), &issuer.pubkey(), DECIMALS).await?;
    sandbox::airdrop(chain.as_ref(), &agent.pubkey(), 100_000_000).await?;
    let agent_tokens_before = 10 * USDC;
    sandbox::mint_to(
        chain.as_ref(),
        &mint,
        &issuer,
        &agent.pubkey(),
        agent_tokens_before,
    )
    .await?;
    let service_account = sandbox::token_account(chain.as_ref(), &mint, &service.pubkey()).await?;
    // What one request would cost paid by its own transaction: a token
    // transfer, signed by its sender alone, measured on this bank.
    sandbox::mint_to(chain.as_ref(), &mint, &issuer, &payer, USDC).await?;
    let mark = chain.mark();
    let transfer = sandbox::transfer_instruction(
        &mint,
        &payer,
        &service.pubkey(),
        WEATHER_PRICE.rate,
        DECIMALS,
    )?;
    chain.send(&[transfer], &[]).await?;
    let transfer_fee = chain.since(mark)[0].fee;

    // The paid API.
    let timings = Arc::new(Timings::default());
    let paywall = Paywall::builder(Arc::clone(&dyn_chain), service.insecure_clone())
        .network("solana:embedded")
        .mint(mint, Some("USDC"))
        .price(WEATHER_PRICE)
        .route(CHAT_ROUTE, CHAT_PRICE)
        .route(STREAM_ROUTE, STREAM_PRICE)
        .credit(10_000)
        .min_deposit(USDC)
        .store(MemoryStore::new())
        .settle(SettleConfig {
            threshold: options.settle_threshold,
            interval: Duration::from_secs(3_600),
            tick: Duration::from_millis(200),
            ..SettleConfig::default()
        })
        .start()
        .await?;
    let app = api(&options)
        .layer(middleware::from_fn(mark_handler))
        .layer(paywall.layer())
        .layer(middleware::from_fn_with_state(
            Arc::clone(&timings),
            time_request,
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| CliError::Io("binding 127.0.0.1".into(), e))?;
    let address = listener
        .local_addr()
        .map_err(|e| CliError::Io("binding 127.0.0.1".into(), e))?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let base = format!("http://{address}");

    // The agent: a budget, a lane file, and the chain to open channels on.
    let lane_dir = tempfile::tempdir().map_err(|e| CliError::Io("temporary folder".into(), e))?;
    let mut policy = Policy::new(mint, agent_tokens_before);
    policy.deposit = Some(5 * USDC);
    policy.durability = Durability::Normal;
    let client = AmpClient::builder(lane_dir.path().join("lanes.json"), policy)
        .chain(Arc::clone(&chain))
        .wallet(agent.insecure_clone())
        .build()
        .await
        .map_err(client_error)?;

    let started = Instant::now();
    let mark = chain.mark();
    let rent_before = lamports(chain.as_ref(), &agent.pubkey()).await?;
    let bar = progress_bar(&options);
    let mut latencies = Vec::with_capacity(options.calls as usize);
    let mut routes = [CHAT_ROUTE, WEATHER_ROUTE, STREAM_ROUTE].map(|route| (route, 0u32));
    for i in 0..options.calls {
        let route = route_of(i);
        let began = Instant::now();
        call(&client, &base, route, i).await?;
        if route != STREAM_ROUTE {
            // A stream lasts as long as it streams; only answers are timed.
            latencies.push(began.elapsed());
        }
        if let Some(entry) = routes.iter_mut().find(|(r, _)| *r == route) {
            entry.1 += 1;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();

    // The channel the agent opened, and what opening it cost in rent.
    let lane = client
        .lane(&base)
        .ok_or_else(|| CliError::state("the agent holds no lane after its calls"))?;
    let channel = lane.record.lane;
    let deposit = chain.channel(&channel).await?.map_or(0, |c| c.deposited);
    let rent_paid = lamports(chain.as_ref(), &channel).await?
        + lamports(chain.as_ref(), &amp_sdk::pda::vault(&channel).0).await?;

    // The settler settles what is unsettled, then the agent closes.
    let settled = paywall.settle_now().await;
    tracing::info!(?settled, "settler");
    match client.close(&base).await.map_err(client_error)? {
        CloseOutcome::Closed { .. } => {}
        CloseOutcome::Closing { refundable_at } => {
            return Err(CliError::state(format!(
                "the service did not close the channel (refundable at {refundable_at})"
            )))
        }
    }
    let elapsed = started.elapsed();
    let records = chain.since(mark);
    let rent_after = lamports(chain.as_ref(), &agent.pubkey()).await?;
    paywall.shutdown().await?;
    server.abort();

    let agent_account =
        amp_sdk::pda::associated_token(&agent.pubkey(), &mint, &anchor_spl::token::ID);
    let agent_tokens_after = chain.token_balance(&agent_account).await?.unwrap_or(0);
    let service_tokens = chain.token_balance(&service_account).await?.unwrap_or(0)
        // The one comparison transfer is not part of the demo's payments.
        - WEATHER_PRICE.rate;
    let paid = agent_tokens_before - agent_tokens_after;
    let (transactions, fees) = summarise(&records);
    let overhead = timings.samples();
    Ok(DemoReport {
        calls: options.calls,
        routes: routes
            .iter()
            .map(|(route, calls)| RouteReport {
                route,
                price: price_of(route),
                calls: *calls,
            })
            .collect(),
        elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        mint,
        decimals: DECIMALS,
        channel,
        deposit,
        paid,
        refunded: deposit.saturating_sub(paid),
        agent_tokens_before,
        agent_tokens_after,
        service_tokens,
        transaction_count: transactions.iter().map(|t| t.count).sum(),
        failed_transactions: u32::try_from(records.iter().filter(|r| !r.ok).count())
            .unwrap_or(u32::MAX),
        transactions,
        fees,
        rent_paid,
        rent_reclaimed: (rent_after + rent_paid).saturating_sub(rent_before),
        transfer_fee,
        per_request_fees: transfer_fee * u64::from(options.calls),
        payment_overhead: Percentiles::of(overhead),
        call_latency: Percentiles::of(latencies),
    })
}

/// Which route call `i` goes to: one in ten streams, the rest alternate
/// between the completion and the per-call route.
pub fn route_of(i: u32) -> &'static str {
    if i % 10 == 9 {
        STREAM_ROUTE
    } else if i.is_multiple_of(2) {
        CHAT_ROUTE
    } else {
        WEATHER_ROUTE
    }
}

fn price_of(route: &str) -> Price {
    match route {
        CHAT_ROUTE => CHAT_PRICE,
        STREAM_ROUTE => STREAM_PRICE,
        _ => WEATHER_PRICE,
    }
}

async fn call(client: &AmpClient, base: &str, route: &str, i: u32) -> Result<(), CliError> {
    let url = format!("{base}{route}");
    let request = if route == CHAT_ROUTE {
        let prompt = serde_json::json!({
            "model": "demo-1",
            "messages": [{"role": "user", "content": format!("Question number {i}: what is a payment channel?")}],
        });
        client
            .http()
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(prompt.to_string())
    } else {
        client.http().get(url)
    };
    let response = client.send(request).await.map_err(client_error)?;
    let status = response.status();
    let body = response.bytes().await.map_err(client_error)?;
    if !status.is_success() {
        return Err(CliError::state(format!(
            "{route} answered {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    Ok(())
}

fn client_error(error: amp_sdk::client::ClientError) -> CliError {
    CliError::state(format!("agent: {error}"))
}

fn progress_bar(options: &DemoOptions) -> ProgressBar {
    if !options.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(u64::from(options.calls));
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} paid calls {bar:40.cyan/blue} {pos}/{len} {per_sec:>12} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// The demo API. Handlers see who paid as an `Extension<Payment>`.
fn api(options: &DemoOptions) -> Router {
    let (chunks, interval) = (options.stream_chunks, options.stream_interval);
    Router::new()
        .route(CHAT_ROUTE, post(chat))
        .route(WEATHER_ROUTE, get(weather))
        .route(
            STREAM_ROUTE,
            get(move || async move { stream(chunks, interval) }),
        )
}

/// An LLM-shaped completion, charged per token it "generates".
async fn chat(Extension(payment): Extension<Payment>, prompt: String) -> Response {
    let prompt_tokens = prompt.split_whitespace().count() as u64;
    // A deterministic answer length between 16 and 47 tokens.
    let mut completion_tokens = 16 + payment.seq % 32;
    if let Some(max) = payment.max_units() {
        completion_tokens = completion_tokens.min(max.saturating_sub(prompt_tokens));
    }
    let total = prompt_tokens + completion_tokens;
    payment.report(total);
    let content = vec!["token"; completion_tokens as usize].join(" ");
    let body = serde_json::json!({
        "id": format!("cmpl-{}", payment.seq),
        "object": "chat.completion",
        "model": "demo-1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": total},
    });
    json(body.to_string())
}

/// A per-call answer.
async fn weather() -> Response {
    json(r#"{"city":"Lisbon","temperature_c":21,"sky":"clear"}"#.to_owned())
}

/// A stream charged by the second (the meter counts milliseconds).
fn stream(chunks: u32, interval: Duration) -> Response {
    let ticks = futures_util::stream::unfold(0u32, move |i| async move {
        if i == chunks {
            return None;
        }
        tokio::time::sleep(interval).await;
        let line = Bytes::from(format!("tick {i}\n"));
        Some((Ok::<_, std::io::Error>(line), i + 1))
    });
    let mut response = Response::new(Body::from_stream(ticks));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

fn json(body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Per-request timing: the outer middleware measures the whole request, the
/// inner one (behind the paywall) the handler; the difference is what the
/// paywall added.
#[derive(Default)]
struct Timings {
    overheads: Mutex<Vec<Duration>>,
}

impl Timings {
    fn samples(&self) -> Vec<Duration> {
        self.overheads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Set by the inner middleware: nanoseconds the handler took, for a paid request.
#[derive(Clone, Default)]
struct HandlerTime(Arc<AtomicU64>);

async fn time_request(
    axum::extract::State(timings): axum::extract::State<Arc<Timings>>,
    mut request: Request,
    next: Next,
) -> Response {
    let handler = HandlerTime::default();
    request.extensions_mut().insert(handler.clone());
    let started = Instant::now();
    let response = next.run(request).await;
    let total = started.elapsed();
    let inner = handler.0.load(Ordering::Acquire);
    if inner > 0 {
        let overhead = total.saturating_sub(Duration::from_nanos(inner));
        timings
            .overheads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(overhead);
    }
    response
}

async fn mark_handler(request: Request, next: Next) -> Response {
    let paid = request.extensions().get::<Payment>().is_some();
    let handler = request.extensions().get::<HandlerTime>().cloned();
    let started = Instant::now();
    let response = next.run(request).await;
    if let (true, Some(handler)) = (paid, handler) {
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        handler.0.store(nanos.max(1), Ordering::Release);
    }
    response
}

fn summarise(records: &[TxRecord]) -> (Vec<TxSummary>, u64) {
    let mut summaries: Vec<TxSummary> = Vec::new();
    for record in records {
        match summaries.iter_mut().find(|s| s.kind == record.kind) {
            Some(summary) => {
                summary.count += 1;
                summary.vouchers += record.vouchers;
                summary.fees += record.fee;
            }
            None => summaries.push(TxSummary {
                kind: record.kind,
                count: 1,
                vouchers: record.vouchers,
                fees: record.fee,
            }),
        }
    }
    summaries.sort_by_key(|s| s.kind);
    let fees = records.iter().map(|r| r.fee).sum();
    (summaries, fees)
}

async fn lamports(chain: &dyn Chain, address: &Pubkey) -> Result<u64, CliError> {
    Ok(chain.account(address).await?.map_or(0, |a| a.lamports))
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let usdc = |units| format!("{} USDC", format_tokens(units, self.decimals));
        let sol = |lamports: u64| {
            format!(
                "{} lamports ({} SOL)",
                group(lamports),
                format_tokens(lamports, 9)
            )
        };
        let routes: Vec<String> = self
            .routes
            .iter()
            .map(|r| format!("{} {} ({})", r.calls, r.route, mode(r.price.mode)))
            .collect();
        let txs: Vec<String> = self
            .transactions
            .iter()
            .map(|t| {
                if t.vouchers > 0 {
                    let noun = if t.vouchers == 1 {
                        "voucher"
                    } else {
                        "vouchers"
                    };
                    format!("{} {} ({} {noun})", t.count, t.kind.name(), t.vouchers)
                } else {
                    format!("{} {}", t.count, t.kind.name())
                }
            })
            .collect();
        writeln!(
            f,
            "AMP demo: {} paid calls on an embedded Solana bank, no network",
            group(u64::from(self.calls))
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "  calls              {} in {:.1} s: {}",
            group(u64::from(self.calls)),
            self.elapsed_ms as f64 / 1_000.0,
            routes.join(", ")
        )?;
        writeln!(
            f,
            "  paid               {} to the service, from a deposit of {}; {} refunded at close",
            usdc(self.paid),
            usdc(self.deposit),
            usdc(self.refunded)
        )?;
        writeln!(
            f,
            "  on-chain           {} transactions: {}",
            self.transaction_count,
            txs.join(", ")
        )?;
        if self.failed_transactions > 0 {
            writeln!(
                f,
                "                     ({} of them failed)",
                self.failed_transactions
            )?;
        }
        writeln!(f, "  fees               {}", sol(self.fees))?;
        writeln!(
            f,
            "  rent               {} lamports fronted at open, {} reclaimed at close",
            group(self.rent_paid),
            group(self.rent_reclaimed)
        )?;
        writeln!(
            f,
            "  one tx per call    {} × {} lamports (one token transfer) = {}: {:.0}× the fees above",
            group(u64::from(self.calls)),
            group(self.transfer_fee),
            sol(self.per_request_fees),
            self.fee_ratio()
        )?;
        writeln!(
            f,
            "  payment overhead   p50 {} · p99 {} per call (paywall: verify, check lane, persist voucher)",
            micros(self.payment_overhead.p50_us),
            micros(self.payment_overhead.p99_us)
        )?;
        write!(
            f,
            "  call latency       p50 {} · p99 {} (agent to API and back on loopback; streams excluded)",
            micros(self.call_latency.p50_us),
            micros(self.call_latency.p99_us)
        )
    }
}

fn mode(mode: PricingMode) -> &'static str {
    match mode {
        PricingMode::PerCall => "per call",
        PricingMode::PerSecond => "per second",
        PricingMode::PerByte => "per byte",
        PricingMode::PerToken => "per token",
    }
}

/// `1234567` as `1,234,567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn micros(us: u64) -> String {
    if us >= 1_000 {
        format!("{:.1} ms", us as f64 / 1_000.0)
    } else {
        format!("{us} µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_digits() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_000), "1,000");
        assert_eq!(group(4_322_160), "4,322,160");
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let samples = (1..=100).map(Duration::from_micros).collect();
        let p = Percentiles::of(samples);
        assert_eq!((p.p50_us, p.p99_us, p.samples), (50, 99, 100));
        assert_eq!(Percentiles::of(vec![]), Percentiles::default());
        let one = Percentiles::of(vec![Duration::from_micros(7)]);
        assert_eq!((one.p50_us, one.p99_us), (7, 7));
    }

    #[test]
    fn one_call_in_ten_streams() {
        let routes: Vec<_> = (0..10).map(route_of).collect();
        assert_eq!(routes.iter().filter(|r| **r == STREAM_ROUTE).count(), 1);
        assert_eq!(routes.iter().filter(|r| **r == CHAT_ROUTE).count(), 5);
        assert_eq!(routes.iter().filter(|r| **r == WEATHER_ROUTE).count(), 4);
    }
}
