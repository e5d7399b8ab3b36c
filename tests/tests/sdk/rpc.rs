//! The RPC chain against a canned JSON-RPC server on 127.0.0.1: what it asks
//! the node, how it reads the answers, and how it maps every kind of failure.
//! Account bytes come from a real embedded bank, so the RPC chain must decode
//! exactly what the embedded chain decodes.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amp_channel::error::AmpError;
use amp_sdk::chain::{Chain, ChainError, ChainExt};
use amp_sdk::fees::FeePolicy;
use amp_sdk::rpc::{Cluster, RpcChain, RpcConfig};
use amp_sdk::transactions::{self as tx, OpenOptions, Settlement};
use amp_tests::*;
use anchor_lang::prelude::Pubkey;
use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use solana_account::Account;
use solana_commitment_config::CommitmentConfig;
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_signer::Signer;
use solana_transaction::Transaction;
use tokio::net::TcpListener;

/// Answers one JSON-RPC call: `Ok(result)` or `Err(error object)`.
type Handler = dyn Fn(&str, &Value) -> Result<Value, Value> + Send + Sync;

/// A JSON-RPC server with canned answers that records every call. Unless
/// the test answers them, it answers the compute-budget calls: a simulation
/// that consumed [`SIMULATED_UNITS`], and no recent fees.
struct MockRpc {
    url: String,
    calls: Arc<Mutex<Vec<(String, Value)>>>,
}

impl MockRpc {
    async fn start(
        handler: impl Fn(&str, &Value) -> Result<Value, Value> + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let calls = Arc::new(Mutex::new(vec![]));
        let handler: Arc<Handler> =
            Arc::new(
                move |method: &str, params: &Value| match (handler(method, params), method) {
                    (Err(error), "simulateTransaction") if error["code"] == -32601 => {
                        Ok(simulated(SIMULATED_UNITS))
                    }
                    (Err(error), "getRecentPrioritizationFees") if error["code"] == -32601 => {
                        Ok(json!([]))
                    }
                    (answer, _) => answer,
                },
            );
        let recorded = calls.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let handler = handler.clone();
                let recorded = recorded.clone();
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let handler = handler.clone();
                    let recorded = recorded.clone();
                    async move {
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        let call: Value = serde_json::from_slice(&body).unwrap();
                        let method = call["method"].as_str().unwrap_or_default().to_owned();
                        let params = call["params"].clone();
                        recorded
                            .lock()
                            .unwrap()
                            .push((method.clone(), params.clone()));
                        let reply = match handler(&method, &params) {
                            Ok(result) => {
                                json!({"jsonrpc": "2.0", "id": call["id"], "result": result})
                            }
                            Err(error) => {
                                json!({"jsonrpc": "2.0", "id": call["id"], "error": error})
                            }
                        };
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(
                            reply.to_string(),
                        ))))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Self { url, calls }
    }

    /// An RPC chain on this server, with test-sized timings.
    fn chain(&self, payer: Keypair) -> RpcChain {
        let cluster: Cluster = self.url.parse().unwrap();
        RpcChain::with_config(&cluster, payer, fast_config())
    }

    fn methods(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(m, _)| m.clone())
            .collect()
    }

    fn params(&self, method: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, p)| p.clone())
            .collect()
    }
}

fn fast_config() -> RpcConfig {
    RpcConfig {
        commitment: CommitmentConfig::confirmed(),
        request_timeout: Duration::from_millis(500),
        confirm_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(10),
        resend_interval: Duration::from_millis(30),
        ..RpcConfig::default()
    }
}

/// An RPC response with a context, as `getAccountInfo` and friends return.
fn with_context(value: Value) -> Value {
    json!({"context": {"slot": 100, "apiVersion": "3.1.12"}, "value": value})
}

fn ui_account(account: &Account) -> Value {
    json!({
        "data": [base64::engine::general_purpose::STANDARD.encode(&account.data), "base64"],
        "executable": account.executable,
        "lamports": account.lamports,
        "owner": account.owner.to_string(),
        "rentEpoch": 0,
        "space": account.data.len(),
    })
}

const LAST_VALID_BLOCK_HEIGHT: u64 = 1_000;

/// What the node's simulations consume unless a test says otherwise.
const SIMULATED_UNITS: u64 = 50_000;

/// A successful `simulateTransaction` answer.
fn simulated(units: u64) -> Value {
    with_context(json!({
        "err": null,
        "logs": [],
        "accounts": null,
        "unitsConsumed": units,
        "returnData": null,
    }))
}

fn latest_blockhash() -> Value {
    with_context(json!({
        "blockhash": solana_hash::Hash::new_from_array([7; 32]).to_string(),
        "lastValidBlockHeight": LAST_VALID_BLOCK_HEIGHT,
    }))
}

/// The transaction a `sendTransaction` call carries.
fn sent_transaction(params: &Value) -> Transaction {
    assert_eq!(params[1]["encoding"], "base64");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(params[0].as_str().unwrap())
        .unwrap();
    bincode::deserialize(&bytes).unwrap()
}

fn status(err: Value, confirmation: &str) -> Value {
    let legacy = if err.is_null() {
        json!({"Ok": null})
    } else {
        json!({"Err": err})
    };
    json!({"slot": 99, "confirmations": null, "err": err, "status": legacy, "confirmationStatus": confirmation})
}

fn unknown(method: &str) -> Result<Value, Value> {
    Err(json!({"code": -32601, "message": format!("Method not found: {method}")}))
}

/// A channel of `TokenKind::Token` opened through the SDK on an embedded bank.
struct Fixture {
    h: Harness,
    keys: amp_sdk::instructions::ChannelKeys,
}

async fn fixture() -> Fixture {
    let mut h = Harness::new(TokenKind::Token).await;
    let funder = h.party(1_000).await;
    let recipient = h.wallet().await;
    let nonce = h.next_nonce();
    let args = h.open_args(&recipient.pubkey(), nonce, 600);
    let (keys, open) = tx::open(
        funder.key(),
        h.mint,
        h.token_program(),
        args,
        OpenOptions {
            create_token_accounts: Some(h.bank.fee_payer()),
            ..OpenOptions::default()
        },
    );
    h.bank.send(&open, &[&funder.wallet]).await.unwrap();
    Fixture { h, keys }
}

#[tokio::test]
async fn reads_what_the_embedded_chain_reads() {
    let f = fixture().await;
    let bank = f.h.bank.clone();
    let clock_id = solana_sdk_ids::sysvar::clock::ID;
    let mut served = vec![];
    for address in [
        f.keys.channel,
        f.keys.vault,
        tx::recipient_token(&f.keys),
        f.h.mint,
        clock_id,
    ] {
        served.push((address, bank.account(&address).await.unwrap().unwrap()));
    }
    let node = MockRpc::start(move |method, params| match method {
        "getAccountInfo" => {
            let address: Pubkey = params[0].as_str().unwrap().parse().unwrap();
            let value = served
                .iter()
                .find(|(a, _)| *a == address)
                .map_or(Value::Null, |(_, account)| ui_account(account));
            Ok(with_context(value))
        }
        _ => unknown(method),
    })
    .await;
    let rpc = node.chain(Keypair::new());

    assert_eq!(
        rpc.channel(&f.keys.channel).await.unwrap(),
        bank.channel(&f.keys.channel).await.unwrap()
    );
    assert_eq!(
        rpc.channel(&f.keys.channel)
            .await
            .unwrap()
            .unwrap()
            .deposited,
        600
    );
    assert_eq!(rpc.token_balance(&f.keys.vault).await.unwrap(), Some(600));
    assert_eq!(
        rpc.token_balance(&tx::recipient_token(&f.keys))
            .await
            .unwrap(),
        Some(0)
    );
    assert_eq!(
        rpc.mint_token_program(&f.h.mint).await.unwrap(),
        anchor_spl::token::ID
    );
    let clock = rpc.clock().await.unwrap();
    let bank_clock: solana_clock::Clock =
        bincode::deserialize(&bank.account(&clock_id).await.unwrap().unwrap().data).unwrap();
    assert_eq!(clock, bank_clock);

    // Absent accounts are None; the wrong kind of account is a typed error.
    assert_eq!(rpc.channel(&Pubkey::new_unique()).await.unwrap(), None);
    assert_eq!(
        rpc.token_balance(&Pubkey::new_unique()).await.unwrap(),
        None
    );
    let err = rpc.channel(&f.keys.vault).await.unwrap_err();
    assert!(
        matches!(err, ChainError::InvalidAccount { address, .. } if address == f.keys.vault),
        "{err}"
    );
    let err = rpc.token_balance(&f.keys.channel).await.unwrap_err();
    assert!(matches!(err, ChainError::InvalidAccount { .. }), "{err}");

    // Every read asked for base64 at the configured commitment.
    for params in node.params("getAccountInfo") {
        assert_eq!(params[1]["encoding"], "base64");
        assert_eq!(params[1]["commitment"], "confirmed");
    }
}

#[tokio::test]
async fn sends_signed_transactions_and_waits_for_the_commitment() {
    let payer = Keypair::new();
    let payer_key = payer.pubkey();
    let funder = Keypair::new();
    let polls = Arc::new(Mutex::new(0));
    let seen = polls.clone();
    let node = MockRpc::start(move |method, params| match method {
        "getLatestBlockhash" => Ok(latest_blockhash()),
        "sendTransaction" => {
            let tx = sent_transaction(params);
            Ok(json!(tx.signatures[0].to_string()))
        }
        "getSignatureStatuses" => {
            let mut polls = seen.lock().unwrap();
            *polls += 1;
            // Unknown for a while (long enough for a re-broadcast), then
            // processed, then confirmed.
            let value = match *polls {
                1..=5 => Value::Null,
                6 => status(Value::Null, "processed"),
                _ => status(Value::Null, "confirmed"),
            };
            Ok(with_context(json!([value])))
        }
        "getBlockHeight" => Ok(json!(LAST_VALID_BLOCK_HEIGHT - 10)),
        _ => unknown(method),
    })
    .await;
    let rpc = node.chain(payer);
    assert_eq!(rpc.fee_payer(), payer_key);

    let keys = amp_sdk::instructions::ChannelKeys::new(
        funder.pubkey(),
        Pubkey::new_unique(),
        1,
        Pubkey::new_unique(),
        anchor_spl::token::ID,
    );
    let signature = rpc
        .send(&tx::request_close(&keys), &[&funder])
        .await
        .unwrap();

    let sent = node.params("sendTransaction");
    let tx = sent_transaction(&sent[0]);
    assert_eq!(tx.signatures[0], signature);
    assert_eq!(
        tx.message.account_keys[..2],
        [payer_key, funder.pubkey()],
        "fee payer first, then the funder"
    );
    assert_eq!(tx.message.header.num_required_signatures, 2);
    let message = tx.message_data();
    for (signature, key) in tx.signatures.iter().zip(&tx.message.account_keys) {
        let key = ed25519_dalek::VerifyingKey::from_bytes(&key.to_bytes()).unwrap();
        let signature = ed25519_dalek::Signature::from_bytes(&(*signature).into());
        key.verify_strict(&message, &signature).expect("signed");
    }
    assert_eq!(
        tx.message.recent_blockhash,
        solana_hash::Hash::new_from_array([7; 32])
    );
    assert_eq!(sent[0][1]["skipPreflight"], false);
    assert_eq!(sent[0][1]["preflightCommitment"], "confirmed");
    assert_eq!(*polls.lock().unwrap(), 7, "polled until confirmed");
    assert!(sent.len() >= 2, "re-broadcast while unknown");
    for resent in &sent[1..] {
        assert_eq!(resent[1]["skipPreflight"], true);
        assert_eq!(sent_transaction(resent).signatures[0], signature);
    }
    assert_eq!(
        node.methods()[..4],
        [
            "getRecentPrioritizationFees",
            "simulateTransaction",
            "getLatestBlockhash",
            "sendTransaction"
        ]
    );
    // The compute budget goes first: the simulated units and a margin, and
    // no priority without recent fees.
    let budget: Vec<_> = tx
        .message
        .instructions
        .iter()
        .take(2)
        .map(|ix| {
            Instruction::new_with_bytes(
                tx.message.account_keys[usize::from(ix.program_id_index)],
                &ix.data,
                vec![],
            )
        })
        .collect();
    assert_eq!(
        budget,
        amp_sdk::fees::compute_budget_instructions(
            amp_sdk::fees::compute_unit_limit(SIMULATED_UNITS, 20),
            0
        )
    );
    assert_eq!(tx.message.instructions.len(), 3);
}

/// The compute budget `send` prepends: the limit from an unsigned simulation
/// with a margin, the price from recent fees on the written accounts (a
/// percentile under the cap), or the policy's fixed price; none added when
/// the caller set one.
#[tokio::test]
async fn sets_the_compute_budget_from_simulation_and_recent_fees() {
    let fees = Arc::new(Mutex::new(json!([
        {"slot": 1, "prioritizationFee": 300},
        {"slot": 2, "prioritizationFee": 0},
        {"slot": 3, "prioritizationFee": 200},
        {"slot": 4, "prioritizationFee": 100},
    ])));
    let recent = fees.clone();
    let fail_simulation = Arc::new(Mutex::new(false));
    let failing = fail_simulation.clone();
    let node = MockRpc::start(move |method, params| match method {
        "getLatestBlockhash" => Ok(latest_blockhash()),
        "getRecentPrioritizationFees" => Ok(recent.lock().unwrap().clone()),
        "simulateTransaction" if *failing.lock().unwrap() => Ok(with_context(json!({
            "err": {"InstructionError": [2, {"Custom": 6000}]},
            "logs": [],
            "accounts": null,
            "unitsConsumed": 3_000,
            "returnData": null,
        }))),
        "simulateTransaction" => Ok(simulated(150_000)),
        "sendTransaction" => Ok(json!(sent_transaction(params).signatures[0].to_string())),
        "getSignatureStatuses" => Ok(with_context(json!([status(Value::Null, "confirmed")]))),
        _ => unknown(method),
    })
    .await;
    let funder = Keypair::new();
    let keys = amp_sdk::instructions::ChannelKeys::new(
        funder.pubkey(),
        Pubkey::new_unique(),
        1,
        Pubkey::new_unique(),
        anchor_spl::token::ID,
    );
    let chain = |fees: FeePolicy| {
        RpcChain::with_config(
            &node.url.parse().unwrap(),
            Keypair::new(),
            RpcConfig {
                fees,
                ..fast_config()
            },
        )
    };
    let last_sent = || {
        let sent = node.params("sendTransaction");
        let tx = sent_transaction(sent.last().unwrap());
        let budget: Vec<(Option<u32>, Option<u64>)> = tx
            .message
            .instructions
            .iter()
            .map(|ix| {
                let ix = Instruction::new_with_bytes(
                    tx.message.account_keys[usize::from(ix.program_id_index)],
                    &ix.data,
                    vec![],
                );
                (amp_sdk::fees::limit_of(&ix), amp_sdk::fees::price_of(&ix))
            })
            .collect();
        budget
    };

    // The 75th percentile of [0, 100, 200, 300] is 200; 150,000 units + 20%.
    let rpc = chain(FeePolicy::default());
    rpc.send(&tx::request_close(&keys), &[&funder])
        .await
        .unwrap();
    assert_eq!(
        last_sent(),
        [(Some(180_000), None), (None, Some(200)), (None, None)]
    );
    let asked = node.params("getRecentPrioritizationFees");
    assert_eq!(
        asked[0][0],
        json!([keys.channel.to_string()]),
        "the written accounts"
    );
    let simulation = &node.params("simulateTransaction")[0];
    assert_eq!(simulation[1]["sigVerify"], false);
    assert_eq!(simulation[1]["replaceRecentBlockhash"], true);
    assert_eq!(simulation[1]["commitment"], "confirmed");
    let simulated_tx = sent_transaction(simulation);
    assert_eq!(
        simulated_tx.message.instructions.len(),
        3,
        "simulated with the budget's own instructions"
    );

    // A spike is capped.
    *fees.lock().unwrap() = json!([{"slot": 5, "prioritizationFee": 5_000_000_000u64}]);
    rpc.send(&tx::request_close(&keys), &[&funder])
        .await
        .unwrap();
    assert_eq!(
        last_sent()[1],
        (None, Some(amp_sdk::fees::DEFAULT_MAX_COMPUTE_UNIT_PRICE))
    );

    // A fixed price: recent fees are not asked.
    let asked_before = node.params("getRecentPrioritizationFees").len();
    let fixed = chain(FeePolicy::fixed(777));
    fixed
        .send(&tx::request_close(&keys), &[&funder])
        .await
        .unwrap();
    assert_eq!(last_sent()[1], (None, Some(777)));
    assert_eq!(
        node.params("getRecentPrioritizationFees").len(),
        asked_before
    );

    // A failing simulation: the largest limit, and the node's verdict at send.
    *fail_simulation.lock().unwrap() = true;
    fixed
        .send(&tx::request_close(&keys), &[&funder])
        .await
        .unwrap();
    assert_eq!(last_sent()[0], (Some(1_400_000), None));
    *fail_simulation.lock().unwrap() = false;

    // The caller's own budget is kept as it is, and nothing is simulated.
    let simulations = node.params("simulateTransaction").len();
    let mut own = amp_sdk::fees::compute_budget_instructions(50_000, 9).to_vec();
    own.extend(tx::request_close(&keys));
    rpc.send(&own, &[&funder]).await.unwrap();
    assert_eq!(
        last_sent(),
        [(Some(50_000), None), (None, Some(9)), (None, None)]
    );
    assert_eq!(node.params("simulateTransaction").len(), simulations);
}

#[tokio::test]
async fn preflight_refusal_keeps_the_program_error_and_logs() {
    let code = u32::from(AmpError::GracePeriodNotOver);
    let node = MockRpc::start(move |method, _| match method {
        "getLatestBlockhash" => Ok(latest_blockhash()),
        "sendTransaction" => Err(json!({
            "code": -32002,
            "message": format!("Transaction simulation failed: Error processing Instruction 2: custom program error: {code:#x}"),
            "data": {
                "err": {"InstructionError": [2, {"Custom": code}]},
                "logs": ["Program log: AnchorError occurred. Error Code: GracePeriodNotOver."],
                "accounts": null,
                "unitsConsumed": 1234,
            }
        })),
        _ => unknown(method),
    })
    .await;
    let rpc = node.chain(Keypair::new());
    let keys = some_keys();
    let err = rpc.send(&tx::refund(&keys), &[]).await.unwrap_err();
    assert!(err.is_amp_error(AmpError::GracePeriodNotOver), "{err}");
    assert_eq!(err.custom_code(), Some(code));
    assert!(!err.is_transient());
    let ChainError::Transaction(failure) = &err else {
        panic!("{err}")
    };
    assert_eq!(failure.program, Some(amp_channel::ID));
    assert_eq!(failure.logs.len(), 1);
    let sent = sent_transaction(&node.params("sendTransaction")[0]);
    assert_eq!(failure.signature, sent.signatures[0]);
    assert!(err.to_string().contains("GracePeriodNotOver"), "{err}");
    assert!(
        !node.methods().contains(&"getSignatureStatuses".to_owned()),
        "a refused transaction is not polled"
    );
}

#[tokio::test]
async fn on_chain_failure_names_the_failing_program() {
    let stale = u32::from(AmpError::StaleVoucher);
    // After the two compute-budget instructions: ed25519 is 2, settle 3.
    let failing_index = Arc::new(Mutex::new(3u8));
    let index = failing_index.clone();
    let node = MockRpc::start(move |method, params| match method {
        "getLatestBlockhash" => Ok(latest_blockhash()),
        "sendTransaction" => Ok(json!(sent_transaction(params).signatures[0].to_string())),
        "getSignatureStatuses" => {
            let index = *index.lock().unwrap();
            let err = json!({"InstructionError": [index, {"Custom": stale}]});
            Ok(with_context(json!([status(err, "processed")])))
        }
        _ => unknown(method),
    })
    .await;
    let rpc = node.chain(Keypair::new());
    let keys = some_keys();
    let voucher = amp_channel::voucher::Voucher {
        lane: keys.channel,
        generation: 1,
        seq: 1,
        cumulative: 1,
        expires_at: 0,
    };
    let settlement = Settlement::new(keys, keys.funder, voucher, [1; 64]);
    let err = rpc.send(&tx::settle(&settlement), &[]).await.unwrap_err();
    assert!(err.is_amp_error(AmpError::StaleVoucher), "{err}");

    // The same code from the ed25519 instruction is not an AMP error.
    *failing_index.lock().unwrap() = 2;
    let err = rpc.send(&tx::settle(&settlement), &[]).await.unwrap_err();
    assert_eq!(err.custom_code(), Some(stale));
    assert!(err.amp_error().is_none(), "{err}");
}

#[tokio::test]
async fn node_errors_are_typed_and_transient() {
    let node = MockRpc::start(|method, _| match method {
        "getAccountInfo" => Err(json!({
            "code": -32005,
            "message": "Node is unhealthy",
            "data": {"numSlotsBehind": 42},
        })),
        "getLatestBlockhash" => Ok(json!({"unexpected": true})),
        _ => unknown(method),
    })
    .await;
    let rpc = node.chain(Keypair::new());
    let err = rpc.clock().await.unwrap_err();
    assert!(
        matches!(&err, ChainError::Rpc { code: Some(-32005), message } if message.contains("unhealthy")),
        "{err}"
    );
    assert!(err.is_transient());
    let err = rpc.send(&tx::refund(&some_keys()), &[]).await.unwrap_err();
    assert!(matches!(err, ChainError::Rpc { code: None, .. }), "{err}");
}

#[tokio::test]
async fn unreachable_node_fails_fast_and_clearly() {
    // A port nobody listens on: bind, note it, close it.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let rpc = RpcChain::with_config(&url.parse().unwrap(), Keypair::new(), fast_config());
    let started = Instant::now();
    let err = rpc.clock().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let ChainError::Unreachable { endpoint, reason } = &err else {
        panic!("{err}")
    };
    assert!(endpoint.contains(&port.to_string()));
    assert!(reason.to_lowercase().contains("refused"), "{reason}");
    assert!(err.is_transient());
    let err = rpc.send(&tx::refund(&some_keys()), &[]).await.unwrap_err();
    assert!(matches!(err, ChainError::Unreachable { .. }), "{err}");
}

#[tokio::test]
async fn silent_node_times_out() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = vec![];
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let rpc = RpcChain::with_config(&url.parse().unwrap(), Keypair::new(), fast_config());
    let started = Instant::now();
    let err = rpc.account(&Pubkey::new_unique()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(&err, ChainError::Unreachable { reason, .. } if reason.contains("timed out")),
        "{err}"
    );
}

#[tokio::test]
async fn expired_blockhash_means_it_never_lands() {
    let node = MockRpc::start(|method, params| match method {
        "getLatestBlockhash" => Ok(latest_blockhash()),
        "sendTransaction" => Ok(json!(sent_transaction(params).signatures[0].to_string())),
        "getSignatureStatuses" => Ok(with_context(json!([null]))),
        "getBlockHeight" => Ok(json!(LAST_VALID_BLOCK_HEIGHT + 1)),
        _ => unknown(method),
    })
    .await;
    let rpc = node.chain(Keypair::new());
    let err = rpc.send(&tx::refund(&some_keys()), &[]).await.unwrap_err();
    assert!(
        matches!(&err, ChainError::Expired { signature } if *signature == sent_transaction(&node.params("sendTransaction")[0]).signatures[0]),
        "{err}"
    );
    assert!(err.is_transient());
}

/// A transaction another party built and signed: sent as it is, then
/// polled like `send`'s; it expires when the node no longer knows its blockhash.
#[tokio::test]
async fn sends_a_transaction_signed_elsewhere_as_it_is() {
    let valid = Arc::new(Mutex::new(true));
    let still_valid = valid.clone();
    let polls = Arc::new(Mutex::new(0));
    let seen = polls.clone();
    let node = MockRpc::start(move |method, params| match method {
        "getLatestBlockhash" => Ok(latest_blockhash()),
        "sendTransaction" => Ok(json!(sent_transaction(params).signatures[0].to_string())),
        "getSignatureStatuses" => {
            let mut polls = seen.lock().unwrap();
            *polls += 1;
            let confirmed = *still_valid.lock().unwrap() && *polls > 2;
            let value = if confirmed {
                status(Value::Null, "confirmed")
            } else {
                Value::Null
            };
            Ok(with_context(json!([value])))
        }
        "isBlockhashValid" => {
            assert_eq!(
                params[0],
                solana_hash::Hash::new_from_array([7; 32]).to_string()
            );
            Ok(with_context(json!(*still_valid.lock().unwrap())))
        }
        _ => unknown(method),
    })
    .await;
    let rpc = node.chain(Keypair::new());
    let (blockhash, last_valid) = rpc.latest_blockhash().await.unwrap();
    assert_eq!(blockhash, solana_hash::Hash::new_from_array([7; 32]));
    assert_eq!(last_valid, LAST_VALID_BLOCK_HEIGHT);

    // Paid by someone else than the chain's fee payer: nothing is re-signed.
    let payer = Keypair::new();
    let funder = Keypair::new();
    let keys = amp_sdk::instructions::ChannelKeys::new(
        funder.pubkey(),
        Pubkey::new_unique(),
        1,
        Pubkey::new_unique(),
        anchor_spl::token::ID,
    );
    let mut transaction =
        Transaction::new_with_payer(&tx::request_close(&keys), Some(&payer.pubkey()));
    transaction.partial_sign(&[&funder], blockhash);
    let err = rpc.send_transaction(&transaction).await.unwrap_err();
    assert!(matches!(err, ChainError::Signing(_)), "{err}");
    assert!(
        node.params("sendTransaction").is_empty(),
        "a half-signed transaction stays here"
    );

    transaction.partial_sign(&[&payer], blockhash);
    let signature = rpc.send_transaction(&transaction).await.unwrap();
    assert_eq!(signature, transaction.signatures[0]);
    let sent = node.params("sendTransaction");
    assert_eq!(sent_transaction(&sent[0]), transaction, "sent as signed");
    assert_eq!(sent[0][1]["skipPreflight"], false);

    *valid.lock().unwrap() = false;
    let err = rpc.send_transaction(&transaction).await.unwrap_err();
    assert!(
        matches!(&err, ChainError::Expired { signature: s } if *s == signature),
        "{err}"
    );
}

#[tokio::test]
async fn oversized_transaction_never_reaches_the_node() {
    let node = MockRpc::start(|method, _| unknown(method)).await;
    let rpc = node.chain(Keypair::new());
    let max = tx::max_settles_per_transaction();
    let instructions: Vec<_> = tx::sample_settlements(max + 1)
        .iter()
        .flat_map(Settlement::instructions)
        .collect();
    let err = rpc.send(&instructions, &[]).await.unwrap_err();
    assert!(
        matches!(err, ChainError::TransactionTooLarge { size, max: 1232 } if size > 1232),
        "{err}"
    );
    assert!(node.methods().is_empty());
}

fn some_keys() -> amp_sdk::instructions::ChannelKeys {
    amp_sdk::instructions::ChannelKeys::new(
        Pubkey::new_unique(),
        Pubkey::new_unique(),
        1,
        Pubkey::new_unique(),
        anchor_spl::token::ID,
    )
}
