//! A paid API as an operator runs one: a small upstream HTTP service (it
//! knows nothing of AMP) and `amp serve` in front of it, as a process, with a
//! configuration naming the node's RPC.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use amp_sdk::client::{AmpClient, Policy};
use amp_sdk::rpc::{Cluster, RpcChain, RpcConfig};
use anchor_lang::prelude::Pubkey;
use axum::body::Body;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use solana_keypair::Keypair;

use super::support::{free_port, run, Localnet, Process, COMMAND};

/// What one call costs: 0.001 of the test token.
pub const PRICE: u64 = 1_000;

/// Chunks `/v1/stream` sends, one every [`TICK`].
pub const TICKS: usize = 5;
pub const TICK: Duration = Duration::from_millis(300);

/// The upstream API, on a loopback port of its own: a greeting, an echo of
/// the request body, a body streamed over [`TICKS`] × [`TICK`], a free health check.
pub async fn upstream() -> SocketAddr {
    let app = Router::new()
        .route("/v1/hello", get(|| async { "hello from upstream" }))
        .route(
            "/v1/echo",
            post(|body: axum::body::Bytes| async move { body }),
        )
        .route("/v1/stream", get(|| async { Body::from_stream(ticks()) }))
        .route("/health", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

fn ticks() -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
    futures_util::stream::unfold(0, |n| async move {
        if n == TICKS {
            return None;
        }
        if n > 0 {
            tokio::time::sleep(TICK).await;
        }
        Some((Ok(format!("tick {n}\n")), n + 1))
    })
}

/// The operator's price file: per call, settled every 0.1 token or 5 s.
pub fn prices(node: &Localnet, store: &str) -> String {
    format!(
        r#"
wallet = "service.json"
cluster = "{rpc}"
store = "{store}"
durability = "full"
min_deposit = "100000"
min_grace_period = 60
free = ["/health"]

[[mints]]
mint = "{mint}"
symbol = "USDC"

[pricing.default]
mode = "per_call"
rate = "{PRICE}"

[settle]
threshold = "100000"
interval = 5
"#,
        rpc = node.rpc_url,
        mint = node.mint,
    )
}

/// `amp serve` in front of `upstream`, with the price file `config`.
pub struct Serve {
    pub process: Process,
    pub url: String,
    name: String,
    env: Vec<(String, String)>,
    listen: SocketAddr,
    upstream: SocketAddr,
    config: PathBuf,
}

impl Serve {
    pub async fn start(node: &Localnet, upstream: SocketAddr, config: PathBuf) -> Self {
        Self::start_with_env(node, upstream, config, "amp serve", &[]).await
    }

    /// [`start`](Self::start) as a process called `name` (in failure
    /// messages), with environment variables (`RUST_LOG`, say).
    pub async fn start_with_env(
        node: &Localnet,
        upstream: SocketAddr,
        config: PathBuf,
        name: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::start_on(node, upstream, config, listen, name.to_owned(), env).await
    }

    async fn start_on(
        node: &Localnet,
        upstream: SocketAddr,
        config: PathBuf,
        listen: SocketAddr,
        name: String,
        env: Vec<(String, String)>,
    ) -> Self {
        let mut command = super::support::amp(node.dir.path());
        command
            .current_dir(node.dir.path())
            .args([
                "serve",
                "--upstream",
                &format!("http://{upstream}"),
                "--config",
            ])
            .arg(&config)
            .args(["--listen", &listen.to_string()])
            .envs(env.iter().map(|(k, v)| (k, v)));
        let mut process = Process::spawn(&name, command);
        process
            .wait_for_line("manifest:", Duration::from_secs(60))
            .await;
        Self {
            process,
            url: format!("http://{listen}"),
            name,
            env,
            listen,
            upstream,
            config,
        }
    }

    /// Starts the same service again (same port, store, wallet and environment).
    pub async fn restart(&mut self, node: &Localnet) {
        let again = Self::start_on(
            node,
            self.upstream,
            self.config.clone(),
            self.listen,
            self.name.clone(),
            self.env.clone(),
        )
        .await;
        *self = again;
    }

    /// Ctrl-C: the proxy settles what is unsettled, reports, and exits.
    pub async fn stop(self) -> String {
        self.stop_logged().await.0
    }

    /// [`stop`](Self::stop), returning its stdout and stderr.
    pub async fn stop_logged(mut self) -> (String, String) {
        self.process.signal(libc::SIGINT);
        let status = self.process.wait_exit(Duration::from_secs(120)).await;
        assert!(
            status.success(),
            "{} exited {status}\n{}",
            self.name,
            self.process.stderr()
        );
        // Shown by a failing test: what the service said while it ran.
        eprintln!("{} stderr:\n{}", self.name, self.process.stderr());
        (self.process.stdout(), self.process.stderr())
    }
}

/// An agent built on the SDK, paying over `RpcChain` on the node, with its
/// lane file in the node's directory.
pub async fn sdk_agent(node: &Localnet, wallet: &Keypair, lanes: &str, budget: u64) -> AmpClient {
    // AMP_TEST_LOG=amp_sdk=debug shows what the agent does.
    if let Ok(filter) = std::env::var("AMP_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
    let config = RpcConfig {
        poll_interval: Duration::from_millis(200),
        ..RpcConfig::default()
    };
    let chain = RpcChain::with_config(
        &Cluster::Custom(node.rpc_url.clone()),
        wallet.insecure_clone(),
        config,
    );
    AmpClient::builder(node.path(lanes), Policy::new(node.mint, budget))
        .chain(chain)
        .wallet(wallet.insecure_clone())
        .build()
        .await
        .expect("the agent client builds")
}

/// One paid call by `amp pay` as `wallet` (budget 5 tokens) with the lane
/// file `lanes`; the call must succeed and answer `expected`.
pub async fn cli_pay(node: &Localnet, wallet: &str, url: &str, lanes: &str, expected: &str) {
    let mut command = node.amp();
    command.args([
        "--keypair",
        wallet,
        "pay",
        url,
        "--budget",
        "5",
        "--lanes",
        lanes,
    ]);
    let out = run("amp pay", command, COMMAND).await;
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), expected);
}

/// `amp lanes close <service>` as `wallet` for the lane file `lanes`: its report.
pub async fn close_lanes(node: &Localnet, wallet: &str, service: &str, lanes: &str) -> Value {
    let mut command = node.amp();
    command.args([
        "--keypair",
        wallet,
        "--output",
        "json",
        "lanes",
        "close",
        service,
        "--budget",
        "5",
        "--lanes",
        lanes,
    ]);
    run("amp lanes close", command, COMMAND).await.json()
}

/// The AMP channels on the node whose funder is `funder`.
pub async fn channels_funded_by(node: &Localnet, funder: &Pubkey) -> usize {
    use anchor_lang::Discriminator;
    use solana_account_decoder_client_types::UiAccountEncoding;
    use solana_rpc_client_api::config::{RpcAccountInfoConfig, RpcProgramAccountsConfig};
    use solana_rpc_client_api::filter::{Memcmp, RpcFilterType};
    let config = RpcProgramAccountsConfig {
        // The channel's discriminator, then its funder.
        filters: Some(vec![
            RpcFilterType::Memcmp(Memcmp::new_raw_bytes(
                0,
                amp_sdk::program::state::Channel::DISCRIMINATOR.to_vec(),
            )),
            RpcFilterType::Memcmp(Memcmp::new_raw_bytes(8, funder.to_bytes().to_vec())),
        ]),
        account_config: RpcAccountInfoConfig {
            encoding: Some(UiAccountEncoding::Base64),
            ..RpcAccountInfoConfig::default()
        },
        ..RpcProgramAccountsConfig::default()
    };
    node.client()
        .get_program_ui_accounts_with_config(&amp_sdk::program::ID, config)
        .await
        .unwrap()
        .len()
}
