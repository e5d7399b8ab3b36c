//! The PubSub websocket (the RPC port + 1): signature, account, program,
//! slot and logs subscriptions, with the validator's notification shapes.
//!
//! `processed` subscriptions hear of a transaction when it lands; every
//! other commitment when its slot ends (confirmed is finalized here).

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use solana_account_decoder_client_types::UiAccountEncoding;
use solana_commitment_config::CommitmentConfig;
use solana_pubkey::Pubkey;
use solana_rpc_client_api::filter::RpcFilterType;
use solana_signature::Signature;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::events::Event;
use crate::ledger::{Commitment, SlotEnded, TransactionRecord};
use crate::rpc::encoding::{passes_filters, ui_account};
use crate::rpc::wire::{self, RpcError};
use crate::rpc::Rpc;

/// Serves PubSub on `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, rpc: Rpc, shutdown: watch::Receiver<bool>) {
    let watch = shutdown.clone();
    crate::listen::accept_until(listener, watch, "pubsub", move |stream| {
        let (rpc, shutdown) = (rpc.clone(), shutdown.clone());
        async move {
            if let Err(error) = connection(stream, rpc, shutdown).await {
                tracing::debug!(%error, "localnet pubsub: connection ended");
            }
        }
    })
    .await;
}

#[derive(Clone, Debug)]
enum Subscription {
    Signature(Signature, Commitment),
    /// Account and program subscriptions hear at slot end, whatever their commitment.
    Account(Pubkey, UiAccountEncoding),
    Program(Pubkey, UiAccountEncoding, Vec<RpcFilterType>),
    Slot,
    Logs(LogsFilter, Commitment),
}

#[derive(Clone, Debug)]
enum LogsFilter {
    All,
    Mentions(Pubkey),
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    #[serde(flatten)]
    commitment: Option<CommitmentConfig>,
    encoding: Option<UiAccountEncoding>,
    filters: Option<Vec<RpcFilterType>>,
}

struct Session {
    rpc: Rpc,
    next_id: u64,
    subscriptions: HashMap<u64, Subscription>,
    /// Notifications owed right after the answer to a subscribe call.
    immediate: Vec<Value>,
}

async fn connection(
    stream: TcpStream,
    rpc: Rpc,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let socket = tokio_tungstenite::accept_async(stream).await?;
    let (mut sink, mut source) = socket.split();
    let mut events = rpc.events.subscribe();
    let mut session = Session {
        rpc,
        next_id: 0,
        subscriptions: HashMap::new(),
        immediate: Vec::new(),
    };
    loop {
        tokio::select! {
            message = source.next() => {
                let Some(message) = message else { return Ok(()) };
                match message? {
                    Message::Text(text) => {
                        let answer = session.call(text.as_bytes());
                        sink.send(Message::text(answer.to_string())).await?;
                        for notification in std::mem::take(&mut session.immediate) {
                            sink.send(Message::text(notification.to_string())).await?;
                        }
                    }
                    Message::Ping(data) => sink.send(Message::Pong(data)).await?,
                    Message::Close(_) => return Ok(()),
                    _ => {}
                }
            }
            event = events.recv() => {
                let event = match event {
                    Ok(event) => event,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "localnet pubsub: a subscriber fell behind");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                };
                for notification in session.notifications(&event) {
                    sink.send(Message::text(notification.to_string())).await?;
                }
            }
            _ = shutdown.changed() => {
                let _ = sink.send(Message::Close(None)).await;
                return Ok(());
            }
        }
    }
}

impl Session {
    fn call(&mut self, body: &[u8]) -> Value {
        let Ok(Value::Object(call)) = serde_json::from_slice::<Value>(body) else {
            return wire::response(Value::Null, Err(RpcError::parse_error()));
        };
        let id = call.get("id").cloned().unwrap_or(Value::Null);
        let method = call
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let params = match call.get("params") {
            Some(Value::Array(params)) => params.clone(),
            _ => Vec::new(),
        };
        wire::response(id, self.dispatch(method, &params))
    }

    fn dispatch(&mut self, method: &str, params: &[Value]) -> Result<Value, RpcError> {
        if let Some(kind) = method.strip_suffix("Unsubscribe") {
            let id: u64 = params
                .first()
                .and_then(Value::as_u64)
                .ok_or_else(|| RpcError::invalid_params("Invalid subscription id."))?;
            let removed = self
                .subscriptions
                .get(&id)
                .is_some_and(|s| kind_of(s) == kind);
            if !removed {
                return Err(RpcError::invalid_params("Invalid subscription id."));
            }
            self.subscriptions.remove(&id);
            return Ok(Value::Bool(true));
        }
        let config: Config = match params.get(1) {
            Some(value) => serde_json::from_value(value.clone())
                .map_err(|e| RpcError::invalid_params(format!("Invalid params: {e}.")))?,
            None => Config::default(),
        };
        let commitment = crate::rpc::commitment(config.commitment);
        let text = |index: usize| -> Result<String, RpcError> {
            params
                .get(index)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| RpcError::invalid_params("Invalid params: expected a string."))
        };
        let pubkey = |index: usize| -> Result<Pubkey, RpcError> {
            text(index)?
                .parse()
                .map_err(|_| RpcError::invalid_params("Invalid Request: Invalid pubkey provided"))
        };
        let subscription = match method {
            "signatureSubscribe" => Subscription::Signature(
                text(0)?.parse().map_err(|_| {
                    RpcError::invalid_params("Invalid Request: Invalid signature provided")
                })?,
                commitment,
            ),
            "accountSubscribe" => Subscription::Account(
                pubkey(0)?,
                config.encoding.unwrap_or(UiAccountEncoding::Binary),
            ),
            "programSubscribe" => {
                let filters = config.filters.unwrap_or_default();
                // Checked as getProgramAccounts checks them.
                for filter in &filters {
                    filter
                        .verify()
                        .map_err(|e| RpcError::invalid_params(format!("Invalid param: {e:?}")))?;
                }
                Subscription::Program(
                    pubkey(0)?,
                    config.encoding.unwrap_or(UiAccountEncoding::Binary),
                    filters,
                )
            }
            "slotSubscribe" => Subscription::Slot,
            "logsSubscribe" => {
                let filter = match params.first() {
                    Some(Value::String(all)) if all == "all" || all == "allWithVotes" => {
                        LogsFilter::All
                    }
                    Some(Value::Object(object)) => {
                        let mentions = object
                            .get("mentions")
                            .and_then(Value::as_array)
                            .filter(|m| m.len() == 1)
                            .and_then(|m| m[0].as_str())
                            .ok_or_else(|| {
                                RpcError::invalid_params(
                                    "Invalid Request: Only 1 address supported",
                                )
                            })?;
                        LogsFilter::Mentions(mentions.parse().map_err(|_| {
                            RpcError::invalid_params("Invalid Request: Invalid pubkey provided")
                        })?)
                    }
                    _ => {
                        return Err(RpcError::invalid_params(
                            "Invalid params: unknown logs filter.",
                        ))
                    }
                };
                Subscription::Logs(filter, commitment)
            }
            _ => return Err(RpcError::method_not_found()),
        };
        let id = self.next_id;
        self.next_id += 1;
        // A signature that already reached the commitment is notified at
        // once (after the answer), and the subscription ends there.
        if let Subscription::Signature(signature, commitment) = &subscription {
            if let Some(status) = self.rpc.ledger.status(signature) {
                if status.confirmed || *commitment == Commitment::Processed {
                    self.immediate.push(notification(
                        "signatureNotification",
                        id,
                        json!({ "context": { "slot": status.slot }, "value": { "err": status.status.err() } }),
                    ));
                    return Ok(Value::from(id));
                }
            }
        }
        self.subscriptions.insert(id, subscription);
        Ok(Value::from(id))
    }

    /// The notifications `event` owes this session's subscriptions.
    fn notifications(&mut self, event: &Event) -> Vec<Value> {
        let mut out = Vec::new();
        let mut done = Vec::new();
        let ledger = self.rpc.ledger.clone();
        let (commitment, landed, ended): (
            Commitment,
            Vec<TransactionRecord>,
            Option<&Arc<SlotEnded>>,
        ) = match event {
            Event::Landed(signature) => (
                Commitment::Processed,
                ledger.transaction(signature).into_iter().collect(),
                None,
            ),
            Event::SlotEnded(ended) => (
                Commitment::Confirmed,
                ended
                    .confirmed
                    .iter()
                    .filter_map(|s| ledger.transaction(s))
                    .collect(),
                Some(ended),
            ),
        };
        for (id, subscription) in &self.subscriptions {
            match subscription {
                Subscription::Signature(signature, wanted) if *wanted == commitment => {
                    if let Some(record) = landed.iter().find(|r| r.signature == *signature) {
                        out.push(notification(
                            "signatureNotification",
                            *id,
                            json!({
                                "context": { "slot": record.slot },
                                "value": { "err": record.status.clone().err() },
                            }),
                        ));
                        done.push(*id);
                    }
                }
                Subscription::Logs(filter, wanted) if *wanted == commitment => {
                    for record in &landed {
                        let mentioned = match filter {
                            LogsFilter::All => true,
                            LogsFilter::Mentions(key) => record
                                .transaction
                                .message
                                .static_account_keys()
                                .contains(key),
                        };
                        if mentioned {
                            out.push(notification(
                                "logsNotification",
                                *id,
                                json!({
                                    "context": { "slot": record.slot },
                                    "value": {
                                        "signature": record.signature.to_string(),
                                        "err": record.status.clone().err(),
                                        "logs": record.log_messages,
                                    },
                                }),
                            ));
                        }
                    }
                }
                Subscription::Slot => {
                    if let Some(ended) = ended {
                        out.push(notification(
                            "slotNotification",
                            *id,
                            json!({ "parent": ended.slot, "root": ended.slot, "slot": ended.next }),
                        ));
                    }
                }
                Subscription::Account(address, encoding) => {
                    let Some(ended) = ended else { continue };
                    let bank = ledger.bank(Commitment::Confirmed);
                    for (key, account) in &ended.written {
                        if key == address {
                            if let Ok(account) = ui_account(&bank, key, account, *encoding, None) {
                                out.push(notification(
                                    "accountNotification",
                                    *id,
                                    json!({ "context": { "slot": ended.slot }, "value": account }),
                                ));
                            }
                        }
                    }
                }
                Subscription::Program(program, encoding, filters) => {
                    let Some(ended) = ended else { continue };
                    let bank = ledger.bank(Commitment::Confirmed);
                    for (key, account) in &ended.written {
                        if account.owner == *program && passes_filters(filters, account) {
                            if let Ok(ui) = ui_account(&bank, key, account, *encoding, None) {
                                out.push(notification(
                                    "programNotification",
                                    *id,
                                    json!({
                                        "context": { "slot": ended.slot },
                                        "value": { "pubkey": key.to_string(), "account": ui },
                                    }),
                                ));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        for id in done {
            // A signature subscription ends with its notification.
            self.subscriptions.remove(&id);
        }
        out
    }
}

fn kind_of(subscription: &Subscription) -> &'static str {
    match subscription {
        Subscription::Signature(..) => "signature",
        Subscription::Account(..) => "account",
        Subscription::Program(..) => "program",
        Subscription::Slot => "slot",
        Subscription::Logs(..) => "logs",
    }
}

fn notification(method: &str, subscription: u64, result: Value) -> Value {
    json!({
        "jsonrpc": "2.0",
        "method": method,
        "params": { "result": result, "subscription": subscription },
    })
}
