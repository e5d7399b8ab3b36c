//! The agent side of AMP (SPEC section 5, "Client duties"): a reqwest
//! client that pays HTTP services through AMP lanes, within a budget.
//!
//! ```no_run
//! # async fn example(chain: amp_sdk::embedded::EmbeddedBank, wallet: solana_keypair::Keypair,
//! #                  usdc: anchor_lang::prelude::Pubkey) -> Result<(), amp_sdk::client::ClientError> {
//! use amp_sdk::client::{AmpClient, Policy};
//!
//! let agent = AmpClient::builder("agent-lanes.json", Policy::new(usdc, 5_000_000))
//!     .chain(chain)
//!     .wallet(wallet)
//!     .build()
//!     .await?;
//! let answer = agent.get("https://api.example.com/v1/hello").await?.text().await?;
//! agent.close("https://api.example.com").await?;
//! # Ok(()) }
//! ```
//!
//! For every request the client:
//!
//! * finds the lane paying the request's origin, or discovers the service's
//!   manifest (`GET /.well-known/amp.json`, or the one a 402 embeds) and opens
//!   a channel on terms chosen from it and from the [`Policy`];
//! * claims the route's price (`per_call`) and signs a credential for what
//!   the lane owes with it, after checking and committing the amount against
//!   the budget in one atomic step, and after making the seq and
//!   amount durable in the lane file;
//! * retries once on a seq race (`AMP_INVALID_SEQ`), on `AMP_UNDERFUNDED`
//!   naming what is required, and on a lane that vanished (opening a new one);
//! * reads `AMP-Owed` to know what the next credential must cover, and tops
//!   the lane up before it runs dry;
//! * for a metered response it can measure (`per_second`, `per_byte`), pays
//!   as it reads by posting fresh credentials to
//!   [`CREDIT_PATH`](crate::manifest::CREDIT_PATH) (see `docs/streaming.md`).
//!
//! [`AmpClient::close`] closes cooperatively, and falls back to
//! `request_close` when the service is gone; [`AmpClient::refund_due`] then
//! takes the refund once the grace period is over.
//!
//! The parts, in the order they depend on each other (each uses only those
//! above it; `agent` holds the [`AmpClient`] core they all extend):
//!
//! | module | what |
//! |---|---|
//! | `spend` | spend limits, the service filter, approvals, the spend log and its reports |
//! | `errors`, `policy` | [`ClientError`]; the [`Policy`] and its checks of manifests and deposits |
//! | `agent` | the [`AmpClient`] handle and the state every part shares |
//! | `file`, `book` | the lane file; the books (budget, lanes) and their verbs |
//! | `pricing`, `refusal` | a route's price; how to react to a service's refusal |
//! | `builder` | [`AmpClientBuilder`] |
//! | `lanes` | finding, opening and funding the lane paying a service |
//! | `session` | the sessions services issued, and when a request may go MAC'd |
//! | `signing` | credentials, signed within the budget, MAC'd in a session, or posted on their own |
//! | `stream` | metered responses, paid while they are read |
//! | `paying` | a paid request, from claim to receipt |
//! | `close`, `delegation` | ending lanes; delegated lanes |

mod agent;
mod book;
mod builder;
mod close;
mod delegation;
mod errors;
mod file;
mod lanes;
mod paying;
mod policy;
mod pricing;
mod refusal;
mod session;
mod signing;
pub mod spend;
mod sponsor;
mod stream;

pub use agent::{AmpClient, BudgetStatus, LaneInfo, SharedSigner};
pub use builder::AmpClientBuilder;
pub use close::CloseOutcome;
pub use delegation::Grant;
pub use errors::ClientError;
pub use file::{
    Durability, GrantedLane, LaneFileError, LaneRecord, LaneStatus, Snapshot, OPENING_WINDOW,
};
pub use policy::{Policy, PriceCeilings, Sponsoring};
pub use stream::AmpResponse;
