//! What the node sustains, so that it is never the bottleneck of the tests:
//! `sendTransaction` → confirmed latency, and settle transactions per second
//! (each a real `[ed25519, settle]` pair through the SPL Token program).
//!
//! `cargo bench -p amp-localnet --bench node` (release build). Figures are
//! printed with their ratios to the node's own clock, measured in one run.

use std::time::{Duration, Instant};

use amp_localnet::{Node, NodeConfig};
use amp_sdk::chain::Chain;
use amp_sdk::lane::LaneAccounts;
use amp_sdk::program::instructions::OpenArgs;
use amp_sdk::rpc::{Cluster, RpcChain, RpcConfig};
use amp_sdk::transactions::{self, OpenOptions, Settlement};
use amp_sdk::voucher::{SignedVoucher, Voucher};
use solana_commitment_config::CommitmentConfig;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_rpc_client_api::config::RpcSendTransactionConfig;
use solana_signer::Signer;
use solana_transaction::Transaction;

const LATENCY_SAMPLES: usize = 40;
const SETTLES: u64 = 400;

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(run());
}

async fn run() {
    let node = Node::start(NodeConfig {
        rpc_addr: "127.0.0.1:0".parse().unwrap(),
        ..NodeConfig::default()
    })
    .await
    .expect("the node starts");
    let url = node.info().rpc_url.clone();
    let slot = NodeConfig::default().slot_duration;
    let client = RpcClient::new_with_commitment(url.clone(), CommitmentConfig::confirmed());
    let funder = Keypair::new();
    let recipient = Keypair::new();
    let mint: Pubkey = node.info().test_mint.parse().unwrap();
    let airdrop = client
        .request_airdrop(&funder.pubkey(), 10_000_000_000)
        .await
        .unwrap();
    wait(&client, &airdrop).await;

    // Latency: a transfer sent and polled every 5 ms until confirmed.
    let chain = RpcChain::with_config(
        &Cluster::Custom(url.clone()),
        funder.insecure_clone(),
        RpcConfig {
            poll_interval: Duration::from_millis(5),
            ..RpcConfig::default()
        },
    );
    let mut latencies = Vec::with_capacity(LATENCY_SAMPLES);
    for _ in 0..LATENCY_SAMPLES {
        let transfer = solana_system_interface::instruction::transfer(
            &funder.pubkey(),
            &Pubkey::new_unique(),
            1_000_000,
        );
        let started = Instant::now();
        chain.send(&[transfer], &[]).await.unwrap();
        latencies.push(started.elapsed());
    }
    latencies.sort();

    // A channel to settle on, funded from the test mint.
    let authority = node.mint_authority();
    let fund = amp_localnet::test_mint::fund_instructions(
        &mint,
        &authority.pubkey(),
        &funder.pubkey(),
        1_000_000_000,
    )
    .unwrap();
    RpcChain::new(&Cluster::Custom(url.clone()), authority.insecure_clone())
        .send(&fund, &[])
        .await
        .unwrap();
    let args = OpenArgs {
        recipient: recipient.pubkey(),
        nonce: 1,
        deposit: 100_000_000,
        grace_period: 3_600,
        expires_at: 0,
        authorized_signer: None,
    };
    let options = OpenOptions {
        create_token_accounts: Some(funder.pubkey()),
        ..OpenOptions::default()
    };
    let (keys, open) = transactions::open(
        funder.pubkey(),
        mint,
        spl_token_interface::ID,
        args,
        options,
    );
    chain.send(&open, &[]).await.unwrap();
    let generation = LaneAccounts::fetch(&chain, &keys.channel)
        .await
        .unwrap()
        .unwrap()
        .generation();

    // Settles, back to back, each with its preflight simulation, as the
    // settler sends them (the node executes a transaction when it arrives).
    let blockhash = client.get_latest_blockhash().await.unwrap();
    let transactions: Vec<Transaction> = (1..=SETTLES)
        .map(|seq| {
            let voucher = Voucher {
                lane: keys.channel,
                generation,
                seq,
                cumulative: seq * 100,
                expires_at: 0,
            };
            let signed = SignedVoucher::sign(&funder, voucher);
            let settlement = Settlement::new(keys, funder.pubkey(), voucher, signed.signature);
            Transaction::new_signed_with_payer(
                &transactions::settle(&settlement),
                Some(&funder.pubkey()),
                &[&funder],
                blockhash,
            )
        })
        .collect();
    let started = Instant::now();
    for transaction in &transactions {
        client
            .send_transaction_with_config(transaction, RpcSendTransactionConfig::default())
            .await
            .expect("a settle lands");
    }
    let elapsed = started.elapsed();
    wait(&client, &transactions.last().unwrap().signatures[0]).await;
    let channel = chain.channel(&keys.channel).await.unwrap().unwrap();
    assert_eq!(channel.settled, SETTLES * 100, "every settle landed");
    node.stop().await;

    let per_second = SETTLES as f64 / elapsed.as_secs_f64();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let p50 = latencies[latencies.len() / 2];
    let p90 = latencies[latencies.len() * 9 / 10];
    println!("amp localnet ({} ms slots)", slot.as_millis());
    println!(
        "  sendTransaction -> confirmed   p50 {:.0} ms · p90 {:.0} ms · max {:.0} ms   ({:.2} / {:.2} / {:.2} slots)",
        ms(p50),
        ms(p90),
        ms(*latencies.last().unwrap()),
        p50.as_secs_f64() / slot.as_secs_f64(),
        p90.as_secs_f64() / slot.as_secs_f64(),
        latencies.last().unwrap().as_secs_f64() / slot.as_secs_f64(),
    );
    println!(
        "  settle transactions            {per_second:.0}/s with preflight ({:.1} ms each; {:.0} per slot)",
        ms(elapsed) / SETTLES as f64,
        per_second * slot.as_secs_f64(),
    );
}

async fn wait(client: &RpcClient, signature: &solana_signature::Signature) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client.confirm_transaction(signature).await.unwrap() {
        assert!(
            Instant::now() < deadline,
            "{signature} not confirmed in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
