//! The node over its real sockets: `solana-rpc-client` (what the SDK's
//! `RpcChain` and the `solana` CLI use), raw JSON-RPC, and the websocket.

use std::time::Duration;

use amp_localnet::{Node, NodeConfig};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use solana_commitment_config::CommitmentConfig;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_signer::Signer;
use solana_transaction::Transaction;

const SOL: u64 = 1_000_000_000;

async fn node() -> Node {
    Node::start(NodeConfig {
        rpc_addr: "127.0.0.1:0".parse().unwrap(),
        ..NodeConfig::default()
    })
    .await
    .expect("node starts")
}

fn client(node: &Node) -> RpcClient {
    RpcClient::new_with_commitment(node.info().rpc_url.clone(), CommitmentConfig::confirmed())
}

async fn raw(node: &Node, body: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(&node.info().rpc_url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn call(node: &Node, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let (status, text) = raw(node, &body).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

async fn airdrop(client: &RpcClient, to: &Pubkey, lamports: u64) {
    let signature = client.request_airdrop(to, lamports).await.unwrap();
    confirm(client, &signature).await;
}

async fn confirm(client: &RpcClient, signature: &solana_signature::Signature) {
    for _ in 0..50 {
        if client.confirm_transaction(signature).await.unwrap() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{signature} not confirmed within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_like_a_validator() {
    let node = node().await;
    let client = client(&node);
    let version = client.get_version().await.unwrap();
    assert_eq!(version.solana_core, amp_localnet::SOLANA_VERSION);
    assert!(version.feature_set.is_some());
    client.get_health().await.unwrap();
    let genesis = client.get_genesis_hash().await.unwrap();
    let first = client.get_slot().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let later = client.get_slot().await.unwrap();
    assert!(
        later >= first + 2,
        "slots advance in real time: {first} -> {later}"
    );
    assert_eq!(client.get_genesis_hash().await.unwrap(), genesis);
    let epoch = client.get_epoch_info().await.unwrap();
    assert!(epoch.absolute_slot >= later);
    assert_eq!(
        client
            .get_minimum_balance_for_rent_exemption(0)
            .await
            .unwrap(),
        890_880
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blockhash_lives_for_150_slots_not_a_second() {
    let node = node().await;
    let client = client(&node);
    let (blockhash, last_valid) = client
        .get_latest_blockhash_with_commitment(CommitmentConfig::confirmed())
        .await
        .unwrap();
    let height = client.get_block_height().await.unwrap();
    assert!(last_valid >= height + 140, "{height} .. {last_valid}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(client
        .is_blockhash_valid(&blockhash, CommitmentConfig::processed())
        .await
        .unwrap());
    // A transaction signed with it three seconds ago still lands.
    let wallet = Keypair::new();
    airdrop(&client, &wallet.pubkey(), SOL).await;
    let transfer = solana_system_interface::instruction::transfer(
        &wallet.pubkey(),
        &Pubkey::new_unique(),
        SOL / 2,
    );
    let transaction = Transaction::new_signed_with_payer(
        &[transfer],
        Some(&wallet.pubkey()),
        &[&wallet],
        blockhash,
    );
    let signature = client.send_transaction(&transaction).await.unwrap();
    confirm(&client, &signature).await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_land_with_fees_logs_and_history() {
    let node = node().await;
    let client = client(&node);
    let wallet = Keypair::new();
    airdrop(&client, &wallet.pubkey(), 2 * SOL).await;
    assert_eq!(client.get_balance(&wallet.pubkey()).await.unwrap(), 2 * SOL);

    // Test tokens, as `amp localnet fund` mints them.
    let mint: Pubkey = node.info().test_mint.parse().unwrap();
    let authority = node.mint_authority();
    let instructions = amp_localnet::test_mint::fund_instructions(
        &mint,
        &authority.pubkey(),
        &wallet.pubkey(),
        5_000_000,
    )
    .unwrap();
    let blockhash = client.get_latest_blockhash().await.unwrap();
    let fee = client
        .get_fee_for_message(&solana_message::Message::new_with_blockhash(
            &instructions,
            Some(&authority.pubkey()),
            &blockhash,
        ))
        .await
        .unwrap();
    assert_eq!(fee, 5_000, "one signature at the cluster's price");
    let transaction = Transaction::new_signed_with_payer(
        &instructions,
        Some(&authority.pubkey()),
        &[authority],
        blockhash,
    );
    let signature = client
        .send_and_confirm_transaction(&transaction)
        .await
        .unwrap();
    let token_account =
        amp_sdk::pda::associated_token(&wallet.pubkey(), &mint, &spl_token_interface::ID);
    let balance = client
        .get_token_account_balance(&token_account)
        .await
        .unwrap();
    assert_eq!((balance.amount.as_str(), balance.decimals), ("5000000", 6));

    let got = call(
        &node,
        "getTransaction",
        json!([signature.to_string(), {"encoding": "json", "commitment": "confirmed"}]),
    )
    .await;
    let meta = &got["result"]["meta"];
    assert_eq!(meta["fee"], 5_000);
    assert!(meta["err"].is_null());
    let logs = meta["logMessages"].as_array().unwrap();
    assert!(
        logs.iter()
            .any(|l| l.as_str().unwrap().contains("MintToChecked")),
        "{logs:?}"
    );
    assert!(
        !meta["innerInstructions"].as_array().unwrap().is_empty(),
        "the ATA program's CPIs"
    );
    assert!(meta["computeUnitsConsumed"].as_u64().unwrap() > 0);

    let signatures = client
        .get_signatures_for_address(&token_account)
        .await
        .unwrap();
    assert_eq!(signatures.len(), 1);
    assert_eq!(signatures[0].signature, signature.to_string());

    // getProgramAccounts with the filters wallets use for token accounts.
    let filtered = call(&node, "getProgramAccounts", json!([spl_token_interface::ID.to_string(), {
        "encoding": "base64",
        "filters": [{"dataSize": 165}, {"memcmp": {"offset": 32, "bytes": wallet.pubkey().to_string()}}],
    }])).await;
    let accounts = filtered["result"].as_array().unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0]["pubkey"], token_account.to_string());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_answer_with_the_validators_codes() {
    let node = node().await;
    let (_, text) = raw(&node, "{not json").await;
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["error"]["code"],
        -32700
    );
    let unknown = call(&node, "getBlockProduction2", json!([])).await;
    assert_eq!(unknown["error"]["code"], -32601);
    let mistyped = call(&node, "getBalance", json!([42])).await;
    assert_eq!(mistyped["error"]["code"], -32602);
    let not_a_key = call(&node, "getBalance", json!(["not-a-key"])).await;
    assert_eq!(not_a_key["error"]["code"], -32602);
    let garbage = call(
        &node,
        "sendTransaction",
        json!(["AAAA", {"encoding": "base64"}]),
    )
    .await;
    assert_eq!(garbage["error"]["code"], -32602, "{garbage}");
    let (status, _) = raw(&node, &"x".repeat(60 * 1024)).await;
    assert_eq!(status, 413);

    // A transaction a program refuses is refused at preflight (-32002), with logs.
    let client = client(&node);
    let wallet = Keypair::new();
    airdrop(&client, &wallet.pubkey(), SOL).await;
    let too_much = solana_system_interface::instruction::transfer(
        &wallet.pubkey(),
        &Pubkey::new_unique(),
        2 * SOL,
    );
    let blockhash = client.get_latest_blockhash().await.unwrap();
    let transaction = Transaction::new_signed_with_payer(
        &[too_much],
        Some(&wallet.pubkey()),
        &[&wallet],
        blockhash,
    );
    let encoded = base64::Engine::encode(
        &base64::prelude::BASE64_STANDARD,
        bincode::serialize(&transaction).unwrap(),
    );
    let refused = call(
        &node,
        "sendTransaction",
        json!([encoded, {"encoding": "base64"}]),
    )
    .await;
    assert_eq!(refused["error"]["code"], -32002, "{refused}");
    assert!(refused["error"]["data"]["logs"].is_array());
    // A bad signature: -32003.
    let mut forged = transaction.clone();
    forged.signatures[0] = solana_signature::Signature::from([7; 64]);
    let encoded = base64::Engine::encode(
        &base64::prelude::BASE64_STANDARD,
        bincode::serialize(&forged).unwrap(),
    );
    let forged = call(
        &node,
        "sendTransaction",
        json!([encoded, {"encoding": "base64"}]),
    )
    .await;
    assert_eq!(forged["error"]["code"], -32003, "{forged}");
    // A batch answers each call.
    let (_, text) = raw(
        &node,
        r#"[{"jsonrpc":"2.0","id":1,"method":"getSlot"},{"jsonrpc":"2.0","id":2,"method":"nope"}]"#,
    )
    .await;
    let batch: Value = serde_json::from_str(&text).unwrap();
    assert!(batch[0]["result"].is_u64());
    assert_eq!(batch[1]["error"]["code"], -32601);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_the_same_ledger_keeps_accounts_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let wallet = Keypair::new();
    let config = || NodeConfig {
        rpc_addr: "127.0.0.1:0".parse().unwrap(),
        ledger_dir: Some(dir.path().to_path_buf()),
        ..NodeConfig::default()
    };
    let node = Node::start(config()).await.unwrap();
    let mint = node.info().test_mint.clone();
    airdrop(&client(&node), &wallet.pubkey(), 3 * SOL).await;
    let slot = client(&node).get_slot().await.unwrap();
    node.stop().await;

    let node = Node::start(config()).await.unwrap();
    assert_eq!(node.info().test_mint, mint);
    let client = client(&node);
    assert_eq!(client.get_balance(&wallet.pubkey()).await.unwrap(), 3 * SOL);
    assert!(
        client.get_slot().await.unwrap() >= slot,
        "slots never go back"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_notifies_signatures_and_slots() {
    let node = node().await;
    let (mut socket, _) = tokio_tungstenite::connect_async(node.info().websocket_url.as_str())
        .await
        .unwrap();
    let client = client(&node);
    let wallet = Keypair::new();
    let signature = client.request_airdrop(&wallet.pubkey(), SOL).await.unwrap();
    let send = |value: Value| tokio_tungstenite::tungstenite::Message::text(value.to_string());
    socket
        .send(send(json!({"jsonrpc":"2.0","id":1,"method":"signatureSubscribe","params":[signature.to_string(), {"commitment":"confirmed"}]})))
        .await
        .unwrap();
    socket
        .send(send(
            json!({"jsonrpc":"2.0","id":2,"method":"slotSubscribe"}),
        ))
        .await
        .unwrap();
    let mut got_signature = false;
    let mut got_slot = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !(got_signature && got_slot) {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("notifications within 10 s")
            .unwrap()
            .unwrap();
        let value: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
        match value["method"].as_str() {
            Some("signatureNotification") => {
                assert!(value["params"]["result"]["value"]["err"].is_null());
                got_signature = true;
            }
            Some("slotNotification") => got_slot = true,
            _ => assert!(value["result"].is_u64(), "{value}"),
        }
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulation_fees_and_parsed_accounts() {
    let node = node().await;
    let client = client(&node);
    let wallet = Keypair::new();
    airdrop(&client, &wallet.pubkey(), SOL).await;
    let mint: Pubkey = node.info().test_mint.parse().unwrap();
    let authority = node.mint_authority();
    let instructions = amp_localnet::test_mint::fund_instructions(
        &mint,
        &authority.pubkey(),
        &wallet.pubkey(),
        7_000_000,
    )
    .unwrap();
    let blockhash = client.get_latest_blockhash().await.unwrap();
    let transaction = Transaction::new_signed_with_payer(
        &instructions,
        Some(&authority.pubkey()),
        &[authority],
        blockhash,
    );
    let encoded = base64::Engine::encode(
        &base64::prelude::BASE64_STANDARD,
        bincode::serialize(&transaction).unwrap(),
    );

    // Simulation: logs, compute units, inner instructions; nothing kept.
    let simulated = call(
        &node,
        "simulateTransaction",
        json!([encoded, {"encoding": "base64", "sigVerify": true, "innerInstructions": true}]),
    )
    .await;
    let value = &simulated["result"]["value"];
    assert!(value["err"].is_null(), "{simulated}");
    assert!(value["unitsConsumed"].as_u64().unwrap() > 0);
    assert!(value["logs"].as_array().unwrap().len() > 2);
    assert!(!value["innerInstructions"].as_array().unwrap().is_empty());
    let token_account =
        amp_sdk::pda::associated_token(&wallet.pubkey(), &mint, &spl_token_interface::ID);
    assert!(
        client.get_account(&token_account).await.is_err(),
        "a simulation keeps nothing"
    );

    // With a compute-unit price, the fee's recent prioritization shows it.
    let mut priced = vec![solana_instruction::Instruction::new_with_bytes(
        solana_sdk_ids::compute_budget::ID,
        &[[3u8].as_slice(), &1_234u64.to_le_bytes()].concat(),
        vec![],
    )];
    priced.extend(instructions);
    let transaction = Transaction::new_signed_with_payer(
        &priced,
        Some(&authority.pubkey()),
        &[authority],
        blockhash,
    );
    let signature = client
        .send_and_confirm_transaction(&transaction)
        .await
        .unwrap();
    let fees = client
        .get_recent_prioritization_fees(&[token_account])
        .await
        .unwrap();
    let slot = client
        .get_transaction(
            &signature,
            solana_transaction_status_client_types::UiTransactionEncoding::Base64,
        )
        .await
        .unwrap()
        .slot;
    let landed = fees
        .iter()
        .find(|fee| fee.slot == slot)
        .expect("the transaction's slot");
    assert_eq!(landed.prioritization_fee, 1_234);

    // jsonParsed token accounts, and several accounts at once.
    let parsed = call(
        &node,
        "getAccountInfo",
        json!([token_account.to_string(), {"encoding": "jsonParsed"}]),
    )
    .await;
    let info = &parsed["result"]["value"]["data"]["parsed"]["info"];
    assert_eq!(info["tokenAmount"]["uiAmountString"], "7");
    assert_eq!(info["owner"], wallet.pubkey().to_string());
    let several = client
        .get_multiple_accounts(&[token_account, Pubkey::new_unique(), mint])
        .await
        .unwrap();
    assert!(several[0].is_some() && several[1].is_none() && several[2].is_some());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_and_logs_subscriptions() {
    let node = node().await;
    let (mut socket, _) = tokio_tungstenite::connect_async(node.info().websocket_url.as_str())
        .await
        .unwrap();
    let client = client(&node);
    let wallet = Keypair::new();
    let send = |value: Value| tokio_tungstenite::tungstenite::Message::text(value.to_string());
    socket
        .send(send(json!({"jsonrpc":"2.0","id":1,"method":"accountSubscribe","params":[wallet.pubkey().to_string(), {"encoding":"base64","commitment":"confirmed"}]})))
        .await
        .unwrap();
    socket
        .send(send(json!({"jsonrpc":"2.0","id":2,"method":"logsSubscribe","params":[{"mentions":[wallet.pubkey().to_string()]}, {"commitment":"processed"}]})))
        .await
        .unwrap();
    socket
        .send(send(
            json!({"jsonrpc":"2.0","id":3,"method":"programSubscribe","params":["not-a-key"]}),
        ))
        .await
        .unwrap();
    client.request_airdrop(&wallet.pubkey(), SOL).await.unwrap();
    let (mut account, mut logs, mut refused) = (false, false, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !(account && logs && refused) {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("notifications within 10 s")
            .unwrap()
            .unwrap();
        let value: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
        match value["method"].as_str() {
            Some("accountNotification") => {
                assert_eq!(value["params"]["result"]["value"]["lamports"], SOL);
                account = true;
            }
            Some("logsNotification") => {
                assert!(!value["params"]["result"]["value"]["logs"]
                    .as_array()
                    .unwrap()
                    .is_empty());
                logs = true;
            }
            _ if value["id"] == 3 => {
                assert_eq!(value["error"]["code"], -32602);
                refused = true;
            }
            _ => assert!(value["result"].is_u64(), "{value}"),
        }
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_port_leaves_no_room_for_pubsub_and_says_so() {
    let refused = Node::start(NodeConfig {
        rpc_addr: "127.0.0.1:65535".parse().unwrap(),
        ..NodeConfig::default()
    })
    .await;
    match refused {
        Err(error) => assert!(error.to_string().contains("PubSub"), "{error}"),
        Ok(_) => panic!("a node on port 65535 has no PubSub port"),
    }
}
