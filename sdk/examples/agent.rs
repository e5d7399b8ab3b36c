//! The README's agent example: an agent pays an API through AMP, within a
//! budget. Everything runs in this process: an embedded bank, a paid API on
//! 127.0.0.1 behind the paywall layer, and the agent's client.
//!
//! ```text
//! cargo run -p amp-sdk --example agent
//! ```

use std::error::Error;
use std::sync::Arc;

use amp_sdk::chain::Chain;
use amp_sdk::client::{AmpClient, Policy};
use amp_sdk::embedded::EmbeddedBank;
use amp_sdk::manifest::{Price, PricingMode};
use amp_sdk::server::Paywall;
use amp_sdk::transactions as tx;
use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::system_instruction;
use anchor_spl::token_2022::spl_token_2022::instruction as token;
use solana_keypair::Keypair;
use solana_signer::Signer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let chain = EmbeddedBank::start().await;
    let wallet = Keypair::new();
    let usdc = usdc_like_mint(&chain, &wallet, 10_000_000).await?;
    let service = serve_paid_api(&chain, usdc).await?;
    let dir = tempfile::tempdir()?;
    let lane_file = dir.path().join("lanes.json");

    // --- README snippet starts here ---
    let agent = AmpClient::builder(lane_file, Policy::new(usdc, 5_000_000)) // never signs more than 5 USDC
        .chain(chain.clone()) // or RpcChain::new(&Cluster::Devnet, fee_payer)
        .wallet(wallet) // funds the channel's deposit
        .build()
        .await?;
    // Discovers the manifest, opens a channel, signs a credential, pays.
    let reply = agent.get(&format!("{service}/v1/hello")).await?;
    let owed = reply.receipt().map_or(0, |r| r.owed);
    println!("{} (owed so far: {owed})", reply.text().await?);
    // Settles what is owed; the rest of the deposit comes back at once.
    agent.close(&service).await?;
    // --- README snippet ends here ---

    println!("budget: {:?}", agent.budget());
    Ok(())
}

/// An API charging 0.0001 USDC a call, on an ephemeral port of 127.0.0.1.
async fn serve_paid_api(chain: &EmbeddedBank, usdc: Pubkey) -> Result<String, Box<dyn Error>> {
    let shared: Arc<dyn Chain> = Arc::new(chain.clone());
    let paywall = Paywall::builder(shared, Keypair::new())
        .mint(usdc, Some("USDC"))
        .price(Price {
            mode: PricingMode::PerCall,
            rate: 100,
        })
        .start()
        .await?;
    let app = axum::Router::new()
        .route(
            "/v1/hello",
            axum::routing::get(|| async { "hello, paying agent" }),
        )
        .layer(paywall.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let _paywall = paywall; // lives as long as the server
        axum::serve(listener, app).await
    });
    Ok(format!("http://{address}"))
}

/// A 6-decimal SPL Token mint with `amount` in `owner`'s associated account;
/// `owner` also gets SOL for the channel's rent.
async fn usdc_like_mint(
    chain: &EmbeddedBank,
    owner: &Keypair,
    amount: u64,
) -> Result<Pubkey, Box<dyn Error>> {
    let mint = Keypair::new();
    let payer = chain.fee_payer();
    let program = anchor_spl::token::ID;
    let space = 82;
    let holder = amp_sdk::pda::associated_token(&owner.pubkey(), &mint.pubkey(), &program);
    let ixs = vec![
        system_instruction::transfer(&payer, &owner.pubkey(), 1_000_000_000),
        system_instruction::create_account(
            &payer,
            &mint.pubkey(),
            anchor_lang::prelude::Rent::default().minimum_balance(space),
            space as u64,
            &program,
        ),
        token::initialize_mint2(&program, &mint.pubkey(), &owner.pubkey(), None, 6)?,
        tx::create_token_account_idempotent(&payer, &owner.pubkey(), &mint.pubkey(), &program),
        token::mint_to(
            &program,
            &mint.pubkey(),
            &holder,
            &owner.pubkey(),
            &[],
            amount,
        )?,
    ];
    chain.send(&ixs, &[&mint, owner]).await?;
    Ok(mint.pubkey())
}
