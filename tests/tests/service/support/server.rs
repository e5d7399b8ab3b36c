//! A paid service on loopback for the server tests: an embedded bank with
//! an open channel, a [`Paywall`] in front of a small axum app on an
//! ephemeral port of 127.0.0.1, and a reqwest client that signs credentials.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use amp_sdk::headers::{Credential, Receipt};
use amp_sdk::manifest::{ErrorBody, ErrorCode};
use amp_sdk::server::{Payment, Paywall, PaywallBuilder};
use amp_sdk::store::{Durability, SqliteStore};
use amp_sdk::voucher::Voucher;
use amp_tests::*;
use anchor_lang::prelude::Pubkey;
use axum::extract::Request;
use axum::routing::{get, post};
use axum::{Extension, Router};
use http::{HeaderMap, StatusCode};
use solana_keypair::Keypair;
use solana_signer::Signer;
use tokio::task::JoinHandle;

pub use super::{eventually, manual_settlement, PER_BYTE, PER_CALL, PER_SECOND, PER_TOKEN};
use super::{param, paywall};

pub const CREDIT: u64 = 100;

/// The routes every test server has.
pub fn app() -> Router {
    Router::new()
        .route("/free", get(|| async { "free" }))
        .route(
            "/v1/call",
            get(|Extension(p): Extension<Payment>| async move {
                format!("{} {} {}", p.lane, p.seq, p.owed)
            }),
        )
        .route(
            "/v1/tokens",
            get(
                |Extension(p): Extension<Payment>, request: Request| async move {
                    p.report(param(&request, "units"));
                    format!("reported; at most {:?}", p.max_units())
                },
            ),
        )
        .route(
            "/v1/bytes",
            get(|request: Request| async move { vec![b'x'; param(&request, "n") as usize] }),
        )
        .route(
            "/rpc",
            post(
                |payment: Option<Extension<Payment>>, body: String| async move {
                    let paid = payment.map_or("free".to_owned(), |p| format!("paid {}", p.owed));
                    format!("{paid}; {} bytes", body.len())
                },
            ),
        )
        .route(
            "/v1/slow",
            get(|request: Request| async move {
                tokio::time::sleep(Duration::from_millis(param(&request, "ms"))).await;
                "slept"
            }),
        )
}

/// The default service: per_call by default, one route per metered mode.
pub fn builder(h: &Harness, recipient: &Keypair) -> PaywallBuilder {
    paywall(h, recipient, CREDIT)
        .route("/v1/tokens", PER_TOKEN)
        .route("/v1/bytes", PER_BYTE)
        .route("/v1/slow", PER_SECOND)
}

/// A running service.
pub struct Server {
    pub paywall: Paywall,
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    pub async fn start(paywall: Paywall) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = app().layer(paywall.layer());
        let task = tokio::spawn(async move {
            axum::serve(listener, service).await.unwrap();
        });
        Self {
            paywall,
            addr,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `GET path`, its JSON body read as `T` (the manifest, the status).
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        client: &reqwest::Client,
        path: &str,
    ) -> T {
        let response = client.get(self.url(path)).send().await.unwrap();
        response.json().await.unwrap()
    }

    /// Stops serving and drops the paywall without settling, as a crash would.
    pub async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
        drop(self.paywall);
    }

    /// Stops serving and shuts the paywall down (settling what is due).
    pub async fn stop(self) -> amp_sdk::server::SettlerStatus {
        self.task.abort();
        let _ = self.task.await;
        self.paywall.shutdown().await.unwrap()
    }
}

/// A bank, a funder, the service's recipient, an open channel between them.
pub struct Scene {
    pub h: Harness,
    pub funder: Party,
    pub recipient: Party,
    pub lane: Lane,
    pub server: Server,
    pub client: reqwest::Client,
}

impl Scene {
    pub async fn new() -> Self {
        Self::with(|b| b).await
    }

    /// A scene whose paywall is adjusted by `configure`.
    pub async fn with(configure: impl FnOnce(PaywallBuilder) -> PaywallBuilder) -> Self {
        let mut h = Harness::new(TokenKind::Token).await;
        let funder = h.party(FUNDS).await;
        let recipient = h.party(0).await;
        let lane = h.open(&funder, &recipient, DEPOSIT).await;
        let paywall = configure(builder(&h, &recipient.wallet))
            .start()
            .await
            .unwrap();
        let server = Server::start(paywall).await;
        Self {
            h,
            funder,
            recipient,
            lane,
            server,
            client: client(),
        }
    }

    /// The service crashes (nothing settled, nothing flushed) and a new
    /// paywall, made by `configure`, serves in its place.
    pub async fn restart(self, configure: impl FnOnce(PaywallBuilder) -> PaywallBuilder) -> Self {
        let Scene {
            h,
            funder,
            recipient,
            lane,
            server,
            client,
        } = self;
        server.crash().await;
        let paywall = configure(builder(&h, &recipient.wallet))
            .start()
            .await
            .unwrap();
        Scene {
            server: Server::start(paywall).await,
            h,
            funder,
            recipient,
            lane,
            client,
        }
    }

    /// Headers of the funder's credential on the scene's lane.
    pub fn credential(&self, seq: u64, amount: u64) -> HeaderMap {
        credential_headers(&self.funder.wallet, &self.lane.voucher(seq, amount))
    }

    pub async fn get(&self, path: &str, headers: HeaderMap) -> Reply {
        send(
            &self.client,
            self.client.get(self.server.url(path)),
            headers,
        )
        .await
    }

    pub async fn close(&self, headers: HeaderMap) -> Reply {
        let url = self.server.url(amp_sdk::manifest::CLOSE_PATH);
        send(&self.client, self.client.post(url), headers).await
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// The credential headers of `voucher` signed by `signer`.
pub fn credential_headers(signer: &Keypair, voucher: &Voucher) -> HeaderMap {
    let mut headers = HeaderMap::new();
    Credential::sign(signer, voucher).write(&mut headers);
    headers
}

/// What came back.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// `None` when the body broke off (a metered response cut short).
    pub body: Option<Vec<u8>>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.body.as_deref().unwrap_or_default()).into_owned()
    }

    pub fn receipt(&self) -> Receipt {
        Receipt::from_headers(&self.headers).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    /// The error body; fails unless it is the SPEC's JSON with the status
    /// its code demands.
    pub fn error(&self) -> ErrorBody {
        let body: ErrorBody = serde_json::from_slice(self.body.as_deref().unwrap_or_default())
            .unwrap_or_else(|e| panic!("not an error body ({e}): {} {}", self.status, self.text()));
        assert_eq!(body.status(), self.status, "{body:?}");
        assert_eq!(
            self.headers.get(http::header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
        if self.status == StatusCode::PAYMENT_REQUIRED {
            assert!(body.manifest.is_some(), "a 402 embeds the manifest");
        }
        body
    }

    /// Asserts a refusal with `code`.
    pub fn expect(&self, code: ErrorCode) -> ErrorBody {
        let body = self.error();
        assert_eq!(body.error, code, "{body:?}");
        body
    }

    pub fn ok(&self) -> &Self {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text());
        self
    }
}

pub async fn send(
    _client: &reqwest::Client,
    request: reqwest::RequestBuilder,
    headers: HeaderMap,
) -> Reply {
    let response = request.headers(headers).send().await.expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.ok().map(|b| b.to_vec());
    Reply {
        status,
        headers,
        body,
    }
}

/// A SQLite store in `dir`, durable.
pub fn sqlite(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir.join("vouchers.sqlite"), Durability::Full).unwrap()
}

pub fn random_key() -> Pubkey {
    Keypair::new().pubkey()
}
