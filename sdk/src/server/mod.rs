//! The service side of AMP (SPEC section 5): a tower
//! [`Layer`](tower_layer::Layer) that makes any HTTP service paid.
//!
//! ```no_run
//! # async fn example(chain: std::sync::Arc<dyn amp_sdk::chain::Chain>,
//! #                  wallet: solana_keypair::Keypair,
//! #                  mint: anchor_lang::prelude::Pubkey) -> Result<(), Box<dyn std::error::Error>> {
//! use amp_sdk::manifest::{Price, PricingMode};
//! use amp_sdk::server::{Payment, Paywall};
//! use amp_sdk::store::{Durability, SqliteStore};
//!
//! let paywall = Paywall::builder(chain, wallet)
//!     .mint(mint, Some("USDC"))
//!     .price(Price { mode: PricingMode::PerCall, rate: 100 })
//!     .free("/health")
//!     .store(SqliteStore::open("vouchers.sqlite", Durability::Full)?)
//!     .start()
//!     .await?;
//! let app = axum::Router::new()
//!     .route("/v1/hello", axum::routing::get(|payment: axum::Extension<Payment>| async move {
//!         format!("hello, lane {}", payment.lane)
//!     }))
//!     .layer(paywall.layer());
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! axum::serve(listener, app).await?;
//! paywall.shutdown().await?; // settles what is still unsettled
//! # Ok(()) }
//! ```
//!
//! What the layer does for every request:
//!
//! * `GET /.well-known/amp.json` answers the manifest;
//!   `POST /.well-known/amp/close` closes a lane cooperatively;
//!   `POST /.well-known/amp/credit` pays a metered response as it streams;
//!   `POST /.well-known/amp/open` and `/top-up` co-sign an agent's
//!   transaction as fee and rent payer (when sponsoring);
//!   `GET /.well-known/amp/status` reports the settler and the sponsorship
//!   (unless disabled); the operator metrics are served at a route of their
//!   own, only to a bearer of their token, when [`MetricsConfig`] says so.
//! * A free path goes straight to the service.
//! * A paid path needs a credential. It is checked against the lane's
//!   on-chain accounts (cached; re-read on a miss, when a voucher asks for
//!   more than the cached lane can pay, on close requests and every
//!   [`Config::refresh`]), then accepted or refused by the lane's
//!   [`VoucherStore`](crate::store::VoucherStore) under the lane's lock,
//!   and persisted before the service runs. Refusals are the SPEC's JSON
//!   error bodies.
//! * The service sees the paying lane as a [`Payment`] request extension;
//!   the response carries `AMP-Owed` and `AMP-Remaining`.
//!
//! The request path runs one way; each step is a module that owns its state:
//!
//! ```text
//! headers ─▶ admission ─▶ meter ─▶ store ─▶ receipt      settle (beside it)
//!    │          │          ▲                               ▲
//!    │          └─ cache   └─ body, credit (metered)       └─ told by meter, cache
//!    └─▶ wellknown: manifest, close, credit, sponsor, status
//! ```
//!
//! `service` (the layer) routes a request to `wellknown` or prices it
//! (`pricing`) and has `admission` verify the credential against the lane
//! `cache` and charge it through the `meter`, which records it in the
//! store; the response gets its receipt, and a metered one a `body` that
//! charges as it streams (`credit` extends it). `close` is the cooperative
//! close; `sponsor` co-signs agents' opens; `settle` turns stored vouchers
//! into tokens in the background. `metrics` is a leaf that every step
//! counts in ([`Paywall::metrics_text`]).

mod admission;
mod body;
mod cache;
mod close;
mod config;
mod credit;
mod error;
mod ledger;
mod meter;
mod metrics;
mod payment;
mod paywall;
mod pricing;
mod rate_limit;
mod response;
mod service;
mod session;
pub mod settle;
mod sponsor;
mod unsigned;
mod wellknown;

pub use config::{
    Config, FileConfig, MetricsConfig, MintConfig, SessionConfig, SettleConfig, SponsorConfig,
    METRICS_PATH,
};
pub use error::ServerError;
pub use ledger::SessionStatus;
pub use metrics::{MetricsHandle, CONTENT_TYPE as METRICS_CONTENT_TYPE};
pub use payment::Payment;
pub use paywall::{Paywall, PaywallBuilder};
pub use rate_limit::RateLimit;
pub use response::{AmpBody, BoxError};
pub use service::{PaywallLayer, PaywallService, MAX_RPC_BODY};
pub use settle::{MintStatus, NextSettlement, SettleReason, Settler, SettlerStatus};
pub use sponsor::SponsorStatus;
pub use wellknown::ServiceStatus;

/// The chain's view of a lane, which the paywall checks credentials against.
pub use crate::lane::LaneAccounts;
/// Where the settler's status is served.
pub use crate::manifest::STATUS_PATH;
