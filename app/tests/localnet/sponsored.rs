//! An agent that holds only tokens: `amp serve` sponsors its channel (rent
//! and fee), the agent pays 100 calls (`amp pay` processes, then an SDK
//! agent on the same lane file), is told how much SOL a close needs while
//! the service is away, closes cooperatively with `amp lanes close`,
//! and every lamport and base unit is accounted for on-chain: the agent ends
//! with no SOL ever spent and its tokens less what it paid; the service with
//! its SOL less the fees of the transactions it paid for (the rent is back).

use std::collections::HashMap;
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use serde_json::{json, Value};
use solana_rpc_client_api::request::RpcRequest;

use super::service::{
    channels_funded_by, cli_pay, close_lanes, prices, sdk_agent, upstream, Serve, PRICE,
};
use super::support::Localnet;

const USDC: u64 = 1_000_000;
const CLI_CALLS: u64 = 10;
const SDK_CALLS: u64 = 90;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_without_sol_pays_through_a_sponsoring_service() {
    let node = Localnet::start(&[]).await;
    let agent = node.fund_with("agent.json", "100", "0").await;
    let service = node.fund("service.json", "0").await;
    let client = node.client();
    assert_eq!(client.get_balance(&agent).await.unwrap(), 0);

    let config = node.path("prices.toml");
    let sponsor = "\n[sponsor]\nfunder_opens_per_minute = 2\nmax_compute_unit_price = 10000\n";
    std::fs::write(&config, prices(&node, "vouchers.sqlite") + sponsor).unwrap();
    let mut serve = Serve::start(&node, upstream().await, config).await;
    let service_before = client.get_balance(&service).await.unwrap();
    let paid_before = fees_paid_by(&node, &service).await;
    let hello = format!("{}/v1/hello", serve.url);

    for _ in 0..CLI_CALLS {
        cli_pay(
            &node,
            "agent.json",
            &hello,
            "lanes.json",
            "hello from upstream",
        )
        .await;
    }
    // A restarted service finds the channel whose rent it fronted on-chain
    // (its payer is recorded there), so its limits still count it.
    let lanes: Value =
        serde_json::from_slice(&std::fs::read(node.path("lanes.json")).unwrap()).unwrap();
    let channel: Pubkey = lanes["lanes"][0]["lane"].as_str().unwrap().parse().unwrap();
    let vault = amp_sdk::pda::vault(&channel).0;
    let rent =
        client.get_balance(&channel).await.unwrap() + client.get_balance(&vault).await.unwrap();
    assert_eq!(exposure(&serve).await, rent);
    serve.process.signal(libc::SIGINT);
    let stopped = serve.process.wait_exit(Duration::from_secs(60)).await;
    assert!(stopped.success(), "{}", serve.process.stderr());
    serve.restart(&node).await;
    assert_eq!(exposure(&serve).await, rent);
    {
        let wallet = amp_sdk::keypair::read(node.path("agent.json")).unwrap();
        let sdk = sdk_agent(&node, &wallet, "lanes.json", 5 * USDC).await;
        for _ in 0..SDK_CALLS {
            let response = sdk.get(&hello).await.expect("a paid call");
            assert_eq!(response.status(), 200);
        }
        let lanes = sdk.lanes();
        assert_eq!(lanes.len(), 1, "one sponsored channel, reused");
        assert_eq!(lanes[0].signed, (CLI_CALLS + SDK_CALLS) * PRICE);
    }
    // With the service gone, closing needs the agent's own close request,
    // which needs SOL it does not hold: it says how much, sending nothing.
    serve.process.signal(libc::SIGINT);
    let stopped = serve.process.wait_exit(Duration::from_secs(60)).await;
    assert!(stopped.success(), "{}", serve.process.stderr());
    let vanished = node
        .output(
            "agent.json",
            &[
                "lanes",
                "close",
                &serve.url,
                "--budget",
                "5",
                "--lanes",
                "lanes.json",
            ],
        )
        .await;
    assert!(!vanished.status.success(), "{}", vanished.stdout);
    assert!(
        vanished.stderr.contains("needs about 5000 lamports of SOL"),
        "{}",
        vanished.stderr
    );
    assert_eq!(client.get_balance(&agent).await.unwrap(), 0);
    serve.restart(&node).await;

    let closed = close_lanes(&node, "agent.json", &serve.url, "lanes.json").await;
    let paid = (CLI_CALLS + SDK_CALLS) * PRICE;
    assert_eq!(
        closed["settled"].as_str(),
        Some(paid.to_string().as_str()),
        "{closed}"
    );
    let report = serve.stop().await;
    assert!(report.contains("0 pending"), "{report}");

    // The agent: not a lamport, ever; its tokens less exactly what it paid.
    assert_eq!(client.get_balance(&agent).await.unwrap(), 0);
    assert_eq!(node.tokens(&agent).await, 100 * USDC - paid);
    assert_eq!(node.tokens(&service).await, paid);
    assert_eq!(channels_funded_by(&node, &agent).await, 0);
    // The service: its SOL less the fees of what it sent (the sponsored
    // open among them), the channel's rent back.
    let paid_since: Vec<u64> = fees_paid_by(&node, &service)
        .await
        .into_iter()
        .filter(|(signature, _)| !paid_before.contains_key(signature))
        .map(|(_, fee)| fee)
        .collect();
    assert!(
        paid_since.len() >= 2,
        "the sponsored open and the close at least"
    );
    let fees: u64 = paid_since.iter().sum();
    assert_eq!(
        client.get_balance(&service).await.unwrap(),
        service_before - fees
    );
}

/// The rent the service reports it has fronted and not got back.
async fn exposure(serve: &Serve) -> u64 {
    let status: Value = reqwest::get(format!("{}{}", serve.url, amp_sdk::manifest::STATUS_PATH))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    status["sponsor"]["exposure"].as_u64().unwrap()
}

/// The fee of every transaction `payer` paid for so far, by signature,
/// read back with getSignaturesForAddress and getTransaction.
async fn fees_paid_by(node: &Localnet, payer: &Pubkey) -> HashMap<String, u64> {
    let client = node.client();
    let listed: Value = client
        .send(
            RpcRequest::GetSignaturesForAddress,
            json!([payer.to_string(), {"commitment": "confirmed", "limit": 1000}]),
        )
        .await
        .unwrap();
    let mut fees = HashMap::new();
    for entry in listed.as_array().unwrap() {
        let signature = entry["signature"].as_str().unwrap().to_owned();
        let tx: Value = client
            .send(
                RpcRequest::GetTransaction,
                json!([signature, {"encoding": "json", "commitment": "confirmed", "maxSupportedTransactionVersion": 0}]),
            )
            .await
            .unwrap();
        let fee_payer = tx["transaction"]["message"]["accountKeys"][0]
            .as_str()
            .unwrap();
        if fee_payer == payer.to_string() {
            fees.insert(signature, tx["meta"]["fee"].as_u64().unwrap());
        }
    }
    fees
}
