//! Paid services on loopback for the agent-client tests: an embedded bank,
//! one or more [`Paywall`]s in front of a small axum app on ephemeral ports
//! of 127.0.0.1, and agents ([`AmpClient`]) paying them from lane files in
//! a temporary directory.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use amp_sdk::client::{AmpClient, AmpClientBuilder, Policy};
use amp_sdk::server::{Paywall, PaywallBuilder};
use amp_sdk::store::Durability;
use amp_tests::*;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::routing::get;
use axum::{Extension, Router};
use http_body::Frame;
use solana_keypair::Keypair;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use super::{eventually, PER_BYTE, PER_CALL, PER_SECOND, PER_TOKEN};
use super::{param, paywall};

/// What a service serves beyond the highest amount signed.
pub const CREDIT: u64 = 400;
/// Tokens each agent's wallet starts with.
pub const AGENT_FUNDS: u64 = 1_000_000;

/// The routes every test service has.
pub fn app() -> Router {
    Router::new()
        .route("/free", get(|| async { "free" }))
        .route(
            "/v1/call",
            get(
                |Extension(p): Extension<amp_sdk::server::Payment>| async move {
                    format!("{} {}", p.seq, p.owed)
                },
            ),
        )
        .route(
            "/v1/tokens",
            get(
                |Extension(p): Extension<amp_sdk::server::Payment>, request: Request| async move {
                    p.report(param(&request, "units"));
                    "reported"
                },
            ),
        )
        .route("/v1/stream/bytes", get(stream))
        .route("/v1/stream/seconds", get(stream))
}

/// `?chunks=N&size=S&ms=D`: N chunks of S bytes, one every D milliseconds.
async fn stream(request: Request) -> Body {
    let (chunks, size, ms) = (
        param(&request, "chunks"),
        param(&request, "size").max(1) as usize,
        param(&request, "ms"),
    );
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        for _ in 0..chunks {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            if tx.send(Bytes::from(vec![b'x'; size])).await.is_err() {
                return; // the client went away
            }
        }
    });
    Body::new(Chunks(rx))
}

/// A chunked body fed by a channel.
struct Chunks(mpsc::Receiver<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

/// A service paid in the harness's mint: per_call by default, metered routes.
pub fn service(h: &Harness, recipient: &Keypair) -> PaywallBuilder {
    paywall(h, recipient, CREDIT)
        .route("/v1/tokens", PER_TOKEN)
        .route("/v1/stream/bytes", PER_BYTE)
        .route("/v1/stream/seconds", PER_SECOND)
}

/// A running service.
pub struct Server {
    pub paywall: Paywall,
    pub addr: SocketAddr,
    pub recipient: Party,
    task: JoinHandle<()>,
    /// Ends serving: the listener closes and so, once idle, does every
    /// connection (a vanished service must not answer on a kept-alive one).
    shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Server {
    /// Starts a service receiving into a new party's account.
    pub async fn start(
        h: &mut Harness,
        configure: impl FnOnce(PaywallBuilder) -> PaywallBuilder,
    ) -> Self {
        logs();
        let recipient = h.party(0).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(h, recipient, listener, configure).await
    }

    /// Stops serving (dropping the paywall unsettled) and serves again at
    /// the same address and recipient under a paywall configured anew: a
    /// service changing its terms.
    pub async fn restart(
        self,
        h: &Harness,
        configure: impl FnOnce(PaywallBuilder) -> PaywallBuilder,
    ) -> Self {
        let addr = self.addr;
        let (paywall, recipient) = self.close().await;
        drop(paywall);
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        Self::serve(h, recipient, listener, configure).await
    }

    async fn serve(
        h: &Harness,
        recipient: Party,
        listener: tokio::net::TcpListener,
        configure: impl FnOnce(PaywallBuilder) -> PaywallBuilder,
    ) -> Self {
        let paywall = configure(service(h, &recipient.wallet))
            .start()
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = app().layer(paywall.layer());
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            paywall,
            addr,
            recipient,
            task,
            shutdown,
        }
    }

    /// The service's origin.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops serving and drops the paywall without settling: the service vanishes.
    pub async fn vanish(self) {
        let (paywall, _) = self.close().await;
        drop(paywall);
    }

    /// Stops serving, with every connection closed; the paywall and the
    /// recipient are left.
    async fn close(self) -> (Paywall, Party) {
        let _ = self.shutdown.send(());
        let mut task = self.task;
        // A connection still busy after that (a stream nobody reads) is left
        // to end on its own.
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
        (self.paywall, self.recipient)
    }
}

/// An agent: a funded wallet and the directory of its lane file.
pub struct Agent {
    pub party: Party,
    pub dir: tempfile::TempDir,
}

impl Agent {
    pub async fn new(h: &mut Harness) -> Self {
        Self {
            party: h.party(AGENT_FUNDS).await,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn file(&self) -> PathBuf {
        self.dir.path().join("lanes.json")
    }

    /// A client of this agent over `h`'s bank, with `policy`.
    pub fn builder(&self, h: &Harness, policy: Policy) -> AmpClientBuilder {
        AmpClient::builder(self.file(), policy)
            .chain(h.bank.clone())
            .wallet(self.party.wallet.insecure_clone())
            .http(http())
    }

    pub async fn client(&self, h: &Harness, policy: Policy) -> AmpClient {
        self.builder(h, policy).build().await.unwrap()
    }
}

/// A sub-agent's client: its own key and lane file in `dir`, no wallet,
/// no chain; it spends only from lanes it adopts.
pub async fn sub_agent(dir: &Path, h: &Harness, key: Keypair, budget: u64) -> AmpClient {
    AmpClient::builder(dir.join("lanes.json"), policy(h, budget, 0))
        .signer(Arc::new(key))
        .http(http())
        .build()
        .await
        .unwrap()
}

/// The policy of most tests: pays in the harness's mint up to `budget`,
/// depositing `deposit`; fsyncs nothing, since a test survives no power loss.
/// Makes `times` paid calls to `url`, reading each body; any failure fails
/// the test.
pub async fn call(client: &AmpClient, url: &str, times: usize) {
    for _ in 0..times {
        client.get(url).await.unwrap().text().await.unwrap();
    }
}

pub fn policy(h: &Harness, budget: u64, deposit: u64) -> Policy {
    Policy {
        deposit: Some(deposit),
        durability: Durability::Normal,
        ..Policy::new(h.mint, budget)
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// The lane file as JSON, for the tests that look inside.
pub fn lane_file(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Logs to the test's output when `RUST_LOG` is set (`RUST_LOG=amp_sdk=debug`).
fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
