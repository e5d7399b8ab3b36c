//! The service middleware and the agent client on loopback: a real axum
//! server with the paywall, reqwest agents, the embedded bank, and the
//! SQLite and PostgreSQL voucher stores.

mod support;

mod client_budget;
mod client_delegation;
mod client_flows;
mod client_policy;
mod client_restart;
mod client_session;
mod client_streaming;
mod client_vanished;
mod metrics;
mod server_concurrency;
mod server_fees;
mod server_flows;
mod server_hostile;
mod server_replicas;
mod server_restart;
mod server_rpc;
mod server_session;
mod server_sponsor;
mod server_store;
