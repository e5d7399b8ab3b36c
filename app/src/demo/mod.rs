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
//!
//! By job: [`api`] is the paid API, [`timing`] measures what the paywall
//! adds, [`metered`] records every transaction and its fee, [`report`] adds
//! it all up, [`sandbox`] makes the mint and wallets, and [`crate::stdout`] keeps
//! the bank's log lines out of the report.

pub mod api;
pub mod metered;
pub mod report;
pub mod sandbox;
pub mod timing;

use std::sync::Arc;
use std::time::{Duration, Instant};

use amp_sdk::chain::Chain;
use amp_sdk::client::{AmpClient, CloseOutcome, Policy};
use amp_sdk::embedded::EmbeddedBank;
use amp_sdk::server::{Paywall, SettleConfig};
use amp_sdk::store::{Durability, MemoryStore};
use anchor_lang::prelude::Pubkey;
use axum::middleware;
use http::header;
use indicatif::{ProgressBar, ProgressStyle};
use solana_keypair::Keypair;
use solana_signer::Signer;

use crate::error::CliError;
use api::{api, price_of};
use metered::MeteredChain;
use report::summarise;
use timing::{mark_handler, time_request, Percentiles, Timings};

pub use api::{
    route_of, CHAT_PRICE, CHAT_ROUTE, STREAM_PRICE, STREAM_ROUTE, WEATHER_PRICE, WEATHER_ROUTE,
};
pub use report::{DemoReport, RouteReport, TxSummary};

/// The mint's decimals, like USDC.
pub const DECIMALS: u8 = 6;
const USDC: u64 = 1_000_000;

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
    use axum::serve::Listener;
    let listener = crate::listen::bind(([127, 0, 0, 1], 0).into()).await?;
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

async fn lamports(chain: &dyn Chain, address: &Pubkey) -> Result<u64, CliError> {
    Ok(chain.account(address).await?.map_or(0, |a| a.lamports))
}
