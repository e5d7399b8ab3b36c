//! JSON-RPC 2.0 over HTTP, answering as a validator does.
//!
//! One file per family of methods (`accounts`, `transactions`, `cluster`);
//! `wire` is the envelope and error codes, `params` reads positional
//! parameters, `encoding` renders accounts and transactions.

mod accounts;
mod cluster;
pub(crate) mod encoding;
mod params;
pub(crate) mod transactions;
pub(crate) mod wire;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use solana_commitment_config::CommitmentConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::delayed::Delayed;
use crate::events::Events;
use crate::faults::Faults;
use crate::ledger::{Commitment, Ledger};
use params::Params;
use wire::RpcError;

/// The largest request body the node reads, as the validator (50 KiB).
pub const MAX_REQUEST_BODY_SIZE: usize = 50 * 1024;

/// What every method reads: the ledger, the fault switches, and where to
/// announce what landed.
#[derive(Clone)]
pub struct Rpc {
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) faults: Arc<Faults>,
    pub(crate) events: Events,
    pub(crate) delayed: Delayed,
}

type Handler = fn(&Rpc, Params) -> Result<Value, RpcError>;

fn methods() -> &'static HashMap<&'static str, Handler> {
    static METHODS: OnceLock<HashMap<&'static str, Handler>> = OnceLock::new();
    METHODS.get_or_init(|| {
        let table: [(&'static str, Handler); 30] = [
            ("getAccountInfo", accounts::get_account_info),
            ("getMultipleAccounts", accounts::get_multiple_accounts),
            ("getProgramAccounts", accounts::get_program_accounts),
            ("getBalance", accounts::get_balance),
            (
                "getTokenAccountBalance",
                accounts::get_token_account_balance,
            ),
            (
                "getMinimumBalanceForRentExemption",
                accounts::get_minimum_balance_for_rent_exemption,
            ),
            ("sendTransaction", transactions::send_transaction),
            ("simulateTransaction", transactions::simulate_transaction),
            ("getTransaction", transactions::get_transaction),
            ("getSignatureStatuses", transactions::get_signature_statuses),
            (
                "getSignaturesForAddress",
                transactions::get_signatures_for_address,
            ),
            ("requestAirdrop", transactions::request_airdrop),
            ("getFeeForMessage", transactions::get_fee_for_message),
            (
                "getRecentPrioritizationFees",
                transactions::get_recent_prioritization_fees,
            ),
            ("getLatestBlockhash", cluster::get_latest_blockhash),
            ("isBlockhashValid", cluster::is_blockhash_valid),
            ("getSlot", cluster::get_slot),
            ("getBlockHeight", cluster::get_block_height),
            ("getEpochInfo", cluster::get_epoch_info),
            ("getEpochSchedule", cluster::get_epoch_schedule),
            ("getVersion", cluster::get_version),
            ("getHealth", cluster::get_health),
            ("getGenesisHash", cluster::get_genesis_hash),
            ("getIdentity", cluster::get_identity),
            ("getFirstAvailableBlock", cluster::get_first_available_block),
            ("getTransactionCount", cluster::get_transaction_count),
            ("minimumLedgerSlot", cluster::minimum_ledger_slot),
            ("getMaxRetransmitSlot", cluster::get_slot),
            ("getMaxShredInsertSlot", cluster::get_slot),
            ("getSlotLeader", cluster::get_identity_address),
        ];
        table.into_iter().collect()
    })
}

/// The names of the methods the node serves.
pub fn method_names() -> Vec<&'static str> {
    let mut names: Vec<_> = methods().keys().copied().collect();
    names.sort_unstable();
    names
}

/// `processed` reads the slot being filled; anything else the last ended one.
pub(crate) fn commitment(config: Option<CommitmentConfig>) -> Commitment {
    match config {
        Some(config) if !config.is_at_least_confirmed() => Commitment::Processed,
        _ => Commitment::Confirmed,
    }
}

impl Rpc {
    /// Answers one request body (a call or a batch); `None` when every call
    /// in it was a notification.
    pub fn handle(&self, body: &[u8]) -> Option<Value> {
        let request: Value = match serde_json::from_slice(body) {
            Ok(request) => request,
            Err(_) => return Some(wire::response(Value::Null, Err(RpcError::parse_error()))),
        };
        match request {
            Value::Array(calls) if calls.is_empty() => Some(wire::response(
                Value::Null,
                Err(RpcError::invalid_request()),
            )),
            Value::Array(calls) => {
                let answers: Vec<Value> = calls
                    .into_iter()
                    .filter_map(|call| self.call(call))
                    .collect();
                (!answers.is_empty()).then_some(Value::Array(answers))
            }
            call => self.call(call),
        }
    }

    fn call(&self, call: Value) -> Option<Value> {
        let Value::Object(mut call) = call else {
            return Some(wire::response(
                Value::Null,
                Err(RpcError::invalid_request()),
            ));
        };
        let id = call.remove("id");
        let valid = call.get("jsonrpc").and_then(Value::as_str) == Some("2.0");
        let method = call
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let (Some(method), true) = (method, valid) else {
            return Some(wire::response(
                id.unwrap_or(Value::Null),
                Err(RpcError::invalid_request()),
            ));
        };
        let outcome = match methods().get(method.as_str()) {
            None => Err(RpcError::method_not_found()),
            Some(handler) => Params::new(call.remove("params")).and_then(|params| {
                let outcome = handler(self, params);
                if let Err(error) = &outcome {
                    tracing::debug!(method, code = error.code, message = %error.message, "localnet: error answer");
                }
                outcome
            }),
        };
        // A call without an id is a notification: no answer.
        id.map(|id| wire::response(id, outcome))
    }
}

/// Serves JSON-RPC on `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, rpc: Rpc, shutdown: watch::Receiver<bool>) {
    crate::listen::accept_until(listener, shutdown, "json-rpc", move |stream| {
        let rpc = rpc.clone();
        async move {
            let service = hyper::service::service_fn(move |request| {
                let rpc = rpc.clone();
                async move { Ok::<_, Infallible>(answer(&rpc, request).await) }
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "localnet: connection ended");
            }
        }
    })
    .await;
}

async fn answer(rpc: &Rpc, request: Request<Incoming>) -> Response<Full<Bytes>> {
    rpc.faults.wait_while_paused().await;
    if request.method() == Method::GET && request.uri().path() == "/health" {
        return plain(StatusCode::OK, "ok");
    }
    if request.method() != Method::POST {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "Used HTTP Method is not allowed. POST or OPTIONS is required",
        );
    }
    let body = match Limited::new(request.into_body(), MAX_REQUEST_BODY_SIZE)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large"),
    };
    if let Some(stall) = rpc.faults.stall() {
        tracing::warn!(?stall, "localnet fault: stalling a call");
        tokio::time::sleep(stall).await;
    }
    if rpc.faults.fail_call() {
        tracing::warn!("localnet fault: answering a call with an error");
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable (localnet fault)",
        );
    }
    let rpc = rpc.clone();
    let answer = tokio::task::spawn_blocking(move || rpc.handle(&body)).await;
    match answer {
        Ok(Some(value)) => Response::builder()
            .status(StatusCode::OK)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(value.to_string())))
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "response")),
        Ok(None) => plain(StatusCode::OK, ""),
        Err(error) => {
            tracing::error!(%error, "localnet: a method panicked");
            let body = wire::response(Value::Null, Err(RpcError::internal("Internal error")));
            Response::builder()
                .status(StatusCode::OK)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "response"))
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}
