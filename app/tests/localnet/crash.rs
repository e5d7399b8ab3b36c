//! Crashes: `amp serve` killed (SIGKILL) under load settles, after a
//! restart, every voucher it accepted; `amp pay` killed at any moment leaves
//! a lane file the next run uses, and never a second channel.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use amp_sdk::chain::Chain;
use amp_sdk::rpc::{Cluster, RpcChain};
use amp_sdk::store::{self, Durability, LaneQuery};
use solana_keypair::Keypair;

use super::service::{channels_funded_by, prices, sdk_agent, upstream, Serve, PRICE};
use super::support::{run, Localnet, Process, COMMAND};

const USDC: u64 = 1_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_killed_under_load_settles_every_voucher_it_accepted() {
    let node = Localnet::start(&[]).await;
    let agent_address = node.fund("agent.json", "100").await;
    let service = node.fund("service.json", "0").await;
    let config = node.path("prices.toml");
    std::fs::write(&config, prices(&node, "vouchers.sqlite")).unwrap();
    let mut serve = Serve::start(&node, upstream().await, config).await;
    let hello = format!("{}/v1/hello", serve.url);
    let wallet = amp_sdk::keypair::read(node.path("agent.json")).unwrap();
    let agent = sdk_agent(&node, &wallet, "lanes.json", 5 * USDC).await;
    // The first call opens the lane.
    agent.get(&hello).await.expect("the first paid call");

    // Four tasks call without pause; a refused connection (the service is
    // down) is retried until the test says stop.
    let served = Arc::new(AtomicU64::new(1));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (agent, hello, served, stop) =
            (agent.clone(), hello.clone(), served.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                match agent.get(&hello).await {
                    Ok(response) if response.status() == 200 => {
                        served.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }));
    }
    let wait_for = |count: u64| {
        let served = served.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(120), async {
                while served.load(Ordering::SeqCst) < count {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("{count} calls served within 2 minutes"));
        }
    };
    wait_for(300).await;
    serve.process.kill9();
    let at_kill = served.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    serve.restart(&node).await;
    wait_for(at_kill + 300).await;
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("the callers stop")
            .unwrap();
    }
    let served = served.load(Ordering::SeqCst);
    let signed = agent.lanes().pop().expect("the lane").signed;
    let report = serve.stop().await;
    assert!(report.contains("0 pending"), "{report}");

    // What the store accepted is exactly what is settled on-chain: at least
    // every call served, at most what the agent signed.
    let store = store::open(node.path("vouchers.sqlite"), Durability::Full)
        .await
        .unwrap();
    let lanes = store
        .find(LaneQuery::Channel(agent.lanes()[0].record.lane))
        .await
        .unwrap();
    let best = lanes[0]
        .best
        .expect("an accepted voucher")
        .voucher
        .cumulative;
    let chain = RpcChain::new(&Cluster::Custom(node.rpc_url.clone()), Keypair::new());
    let channel = chain
        .channel(&agent.lanes()[0].record.lane)
        .await
        .unwrap()
        .expect("the channel");
    assert_eq!(channel.settled, best, "every accepted voucher settled");
    assert_eq!(lanes[0].settled, best);
    assert!(
        best >= served * PRICE,
        "served {served} calls, settled {best}"
    );
    assert!(
        best <= signed,
        "settled {best} beyond what was signed ({signed})"
    );
    assert_eq!(node.tokens(&service).await, best);
    let vault = amp_sdk::pda::vault(&channel_address(&agent)).0;
    assert_eq!(
        node.tokens(&agent_address).await + node.token_account(&vault).await + best,
        100 * USDC
    );
}

fn channel_address(agent: &amp_sdk::client::AmpClient) -> anchor_lang::prelude::Pubkey {
    agent.lanes()[0].record.lane
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_at_any_moment_keeps_its_lane_file() {
    let node = Localnet::start(&[]).await;
    let agent = node.fund("agent.json", "100").await;
    node.fund("service.json", "0").await;
    let config = node.path("prices.toml");
    std::fs::write(&config, prices(&node, "vouchers.sqlite")).unwrap();
    let serve = Serve::start(&node, upstream().await, config).await;
    let hello = format!("{}/v1/hello", serve.url);
    let pay = || {
        let mut command = node.amp();
        command.args([
            "--keypair",
            "agent.json",
            "pay",
            &hello,
            "--budget",
            "5",
            "--lanes",
            "lanes.json",
        ]);
        command
    };
    // Killed the moment its open transaction is sent (its debug log says
    // so), before it can be confirmed: the next run must not open another.
    let mut process = Process::spawn("amp pay", {
        let mut command = pay();
        command.env("RUST_LOG", "amp_sdk::rpc=debug");
        command
    });
    process
        .wait_for_log("sending", Duration::from_secs(60))
        .await;
    process.kill9();
    // Then killed at other moments: discovering, confirming, writing the
    // lane file, paying.
    for delay_ms in [150, 400, 700, 1_000, 1_400, 2_000, 3_000] {
        let mut process = Process::spawn("amp pay", pay());
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        process.kill9();
    }
    for call in 0..5 {
        let out = run("amp pay", pay(), COMMAND).await;
        assert!(
            out.status.success(),
            "call {call} after the kills: {}",
            out.stderr
        );
        assert_eq!(out.stdout.trim(), "hello from upstream");
    }
    let mut command = node.amp();
    command.args([
        "--keypair",
        "agent.json",
        "--output",
        "json",
        "lanes",
        "list",
        "--lanes",
        "lanes.json",
    ]);
    let lanes = run("amp lanes list", command, COMMAND).await.json();
    assert_eq!(lanes["lanes"].as_array().map(Vec::len), Some(1), "{lanes}");
    assert_eq!(
        channels_funded_by(&node, &agent).await,
        1,
        "one channel, whatever was killed when"
    );
    drop(serve);
}
