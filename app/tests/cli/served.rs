//! What the `amp serve` tests share: an embedded bank, an agent holding SOL
//! and 10 tokens of a fresh mint, the operator's price file and wallet, and
//! `amp serve`'s paying proxy in front of an upstream, both on loopback.

use std::net::SocketAddr;
use std::sync::Arc;

use amp_cli::commands::{self, OpenRequest};
use amp_cli::demo::sandbox;
use amp_cli::proxy::{self, Upstream};
use amp_sdk::chain::Chain;
use amp_sdk::embedded::EmbeddedBank;
use amp_sdk::server::{FileConfig, Paywall};
use anchor_lang::prelude::Pubkey;
use axum::serve::Listener;
use axum::Router;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// Serves `app` on loopback, accepting as `amp serve` does.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = amp_cli::listen::bind(([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

/// A paid API: `amp serve` with a price file in front of an upstream.
pub struct Served {
    pub bank: EmbeddedBank,
    pub chain: Arc<dyn Chain>,
    pub agent: Keypair,
    pub service: Keypair,
    pub mint: Pubkey,
    pub dir: tempfile::TempDir,
    pub paywall: Paywall,
    /// The proxy's origin (`http://127.0.0.1:port`).
    pub base: String,
    pub http: reqwest::Client,
}

impl Served {
    /// `amp serve` with the price file `prices(mint)` in front of `upstream`.
    pub async fn start(prices: impl FnOnce(&str) -> String, upstream: Router) -> Self {
        let bank = EmbeddedBank::start().await;
        let (agent, service) = (Keypair::new(), Keypair::new());
        sandbox::airdrop(&bank, &agent.pubkey(), 1_000_000_000)
            .await
            .unwrap();
        let mint = sandbox::create_mint(&bank, &agent.pubkey(), 6)
            .await
            .unwrap();
        sandbox::mint_to(&bank, &mint, &agent, &agent.pubkey(), 10_000_000)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prices.toml");
        std::fs::write(&config, prices(&mint.to_string())).unwrap();
        amp_sdk::keypair::write(&service, dir.path().join("service.json")).unwrap();
        let file = FileConfig::load(&config).unwrap();
        let wallet = amp_sdk::keypair::read(&file.wallet).unwrap();
        assert_eq!(wallet.pubkey(), service.pubkey());
        let chain: Arc<dyn Chain> = Arc::new(bank.clone());
        let paywall = proxy::start_paywall(Arc::clone(&chain), wallet, file)
            .await
            .unwrap();
        let api = serve(upstream).await;
        let upstream = Upstream::new(format!("http://{api}").parse().unwrap()).unwrap();
        let base = format!(
            "http://{}",
            serve(proxy::paid_router(&paywall, upstream)).await
        );
        Self {
            bank,
            chain,
            agent,
            service,
            mint,
            dir,
            paywall,
            base,
            http: reqwest::Client::new(),
        }
    }

    /// The agent opens a channel of `tokens` to the service (`amp open`).
    pub async fn open(&self, tokens: &str) -> Pubkey {
        commands::open(
            &self.bank,
            &self.agent,
            OpenRequest {
                recipient: self.service.pubkey(),
                mint: self.mint,
                amount: tokens.parse().unwrap(),
                grace_period: 3_600,
                nonce: None,
                signer: None,
                expires_at: 0,
            },
        )
        .await
        .unwrap()
        .channel
    }
}
