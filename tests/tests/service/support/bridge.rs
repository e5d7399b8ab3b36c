//! The parent's embedded bank lent to replica processes over loopback: a
//! small HTTP bridge (accounts, clock, send) and the [`Chain`] a replica
//! reaches it through. The bridge sees every transaction, so a test can
//! tell whether any settlement was tried twice, and can hold one up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amp_sdk::chain::{Chain, ChainError, TransactionFailure, TxSigner};
use amp_tests::*;
use anchor_lang::prelude::Pubkey;
use async_trait::async_trait;
use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use http::HeaderMap;
use serde_json::{json, Value};
use solana_account::Account;
use solana_clock::Clock;
use solana_instruction::error::InstructionError;
use solana_instruction::{AccountMeta, Instruction};
use solana_keypair::Keypair;
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction_error::TransactionError;

/// A settlement transaction the bridge saw.
#[derive(Clone, Debug)]
pub struct Sent {
    pub replica: String,
    /// The lanes its AMP instructions settle.
    pub lanes: Vec<Pubkey>,
    pub landed: bool,
    pub stale: bool,
    pub started: Instant,
}

/// The parent's bank, lent to the replicas over HTTP on loopback.
pub struct Bridge {
    pub bank: amp_sdk::embedded::EmbeddedBank,
    pub signers: HashMap<Pubkey, Keypair>,
    /// Milliseconds every transaction is held before it is processed.
    pub delay_ms: AtomicU64,
    pub sent: Mutex<Vec<Sent>>,
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

pub fn wire_instruction(ix: &Instruction) -> Value {
    json!({
        "program": ix.program_id.to_string(),
        "accounts": ix.accounts.iter()
            .map(|m| json!([m.pubkey.to_string(), m.is_signer, m.is_writable]))
            .collect::<Vec<_>>(),
        "data": b64(&ix.data),
    })
}

pub fn unwire_instruction(value: &Value) -> Instruction {
    let key = |v: &Value| -> Pubkey { v.as_str().unwrap().parse().unwrap() };
    Instruction {
        program_id: key(&value["program"]),
        accounts: value["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| AccountMeta {
                pubkey: key(&m[0]),
                is_signer: m[1].as_bool().unwrap(),
                is_writable: m[2].as_bool().unwrap(),
            })
            .collect(),
        data: unb64(value["data"].as_str().unwrap()),
    }
}

pub async fn bridge_account(State(bridge): State<Arc<Bridge>>, body: String) -> String {
    let request: Value = serde_json::from_str(&body).unwrap();
    let address: Pubkey = request["address"].as_str().unwrap().parse().unwrap();
    let account = Chain::account(&bridge.bank, &address).await.unwrap();
    let answer = match account {
        None => Value::Null,
        Some(a) => json!({
            "lamports": a.lamports,
            "owner": a.owner.to_string(),
            "executable": a.executable,
            "rent_epoch": a.rent_epoch,
            "data": b64(&a.data),
        }),
    };
    answer.to_string()
}

pub async fn bridge_clock(State(bridge): State<Arc<Bridge>>) -> String {
    let clock = Chain::clock(&bridge.bank).await.unwrap();
    json!([
        clock.slot,
        clock.epoch_start_timestamp,
        clock.epoch,
        clock.leader_schedule_epoch,
        clock.unix_timestamp
    ])
    .to_string()
}

pub async fn bridge_send(
    State(bridge): State<Arc<Bridge>>,
    headers: HeaderMap,
    body: String,
) -> String {
    let request: Value = serde_json::from_str(&body).unwrap();
    let started = Instant::now();
    let delay = bridge.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let instructions: Vec<Instruction> = request["instructions"]
        .as_array()
        .unwrap()
        .iter()
        .map(unwire_instruction)
        .collect();
    let signers: Vec<&TxSigner> = request["signers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let key: Pubkey = k.as_str().unwrap().parse().unwrap();
            &bridge.signers[&key] as &TxSigner
        })
        .collect();
    let result = Chain::send(&bridge.bank, &instructions, &signers).await;
    let lanes: Vec<Pubkey> = instructions
        .iter()
        .filter(|i| i.program_id == amp_channel::ID)
        .filter_map(|i| i.accounts.first().map(|m| m.pubkey))
        .collect();
    let replica = headers
        .get("x-amp-replica")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?")
        .to_owned();
    bridge.sent.lock().unwrap().push(Sent {
        replica,
        lanes,
        landed: result.is_ok(),
        stale: result
            .as_ref()
            .is_err_and(|e| e.is_amp_error(amp_channel::error::AmpError::StaleVoucher)),
        started,
    });
    let answer = match result {
        Ok(signature) => json!({ "signature": signature.to_string() }),
        Err(ChainError::Transaction(failure)) => {
            let (index, custom) = match &failure.error {
                TransactionError::InstructionError(index, InstructionError::Custom(code)) => {
                    (Some(*index), Some(*code))
                }
                _ => (None, None),
            };
            json!({
                "failed": failure.signature.to_string(),
                "program": failure.program.map(|p| p.to_string()),
                "index": index,
                "custom": custom,
                "message": failure.error.to_string(),
            })
        }
        Err(other) => json!({ "error": other.to_string() }),
    };
    answer.to_string()
}

/// Serves the bridge on loopback; returns its base URL.
pub async fn serve_bridge(bridge: Arc<Bridge>) -> String {
    let app = Router::new()
        .route("/account", post(bridge_account))
        .route("/clock", get(bridge_clock))
        .route("/send", post(bridge_send))
        .with_state(bridge);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A replica's chain: the parent's bank, through the bridge.
pub struct BridgeChain {
    pub url: String,
    pub label: String,
    pub fee_payer: Pubkey,
    pub client: reqwest::Client,
}

impl BridgeChain {
    pub async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, ChainError> {
        let unreachable = |e: reqwest::Error| ChainError::Unreachable {
            endpoint: self.url.clone(),
            reason: e.to_string(),
        };
        request
            .header("x-amp-replica", &self.label)
            .send()
            .await
            .map_err(unreachable)?
            .json()
            .await
            .map_err(unreachable)
    }
}

#[async_trait]
impl Chain for BridgeChain {
    fn fee_payer(&self) -> Pubkey {
        self.fee_payer
    }

    async fn account(&self, address: &Pubkey) -> Result<Option<Account>, ChainError> {
        let url = format!("{}/account", self.url);
        let value = self
            .call(
                self.client
                    .post(url)
                    .json(&json!({ "address": address.to_string() })),
            )
            .await?;
        if value.is_null() {
            return Ok(None);
        }
        Ok(Some(Account {
            lamports: value["lamports"].as_u64().unwrap(),
            data: unb64(value["data"].as_str().unwrap()),
            owner: value["owner"].as_str().unwrap().parse().unwrap(),
            executable: value["executable"].as_bool().unwrap(),
            rent_epoch: value["rent_epoch"].as_u64().unwrap(),
        }))
    }

    async fn clock(&self) -> Result<Clock, ChainError> {
        let value = self
            .call(self.client.get(format!("{}/clock", self.url)))
            .await?;
        Ok(Clock {
            slot: value[0].as_u64().unwrap(),
            epoch_start_timestamp: value[1].as_i64().unwrap(),
            epoch: value[2].as_u64().unwrap(),
            leader_schedule_epoch: value[3].as_u64().unwrap(),
            unix_timestamp: value[4].as_i64().unwrap(),
        })
    }

    async fn send(
        &self,
        instructions: &[Instruction],
        signers: &[&TxSigner],
    ) -> Result<Signature, ChainError> {
        let request = json!({
            "instructions": instructions.iter().map(wire_instruction).collect::<Vec<_>>(),
            "signers": signers.iter().map(|s| s.pubkey().to_string()).collect::<Vec<_>>(),
        });
        let url = format!("{}/send", self.url);
        let value = self.call(self.client.post(url).json(&request)).await?;
        if let Some(signature) = value["signature"].as_str() {
            return Ok(signature.parse().unwrap());
        }
        if let Some(signature) = value["failed"].as_str() {
            let error = match (value["index"].as_u64(), value["custom"].as_u64()) {
                (Some(index), Some(code)) => TransactionError::InstructionError(
                    index as u8,
                    InstructionError::Custom(code as u32),
                ),
                _ => return Err(ChainError::Bank(value["message"].to_string())),
            };
            return Err(ChainError::Transaction(Box::new(TransactionFailure {
                signature: signature.parse().unwrap(),
                error,
                program: value["program"].as_str().map(|p| p.parse().unwrap()),
                logs: Vec::new(),
            })));
        }
        Err(ChainError::Bank(value["error"].to_string()))
    }
}
