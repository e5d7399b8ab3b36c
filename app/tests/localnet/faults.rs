//! Node faults (`amp localnet --fault-...`, SIGUSR1, SIGUSR2): dropped
//! sends, 503s, stalled calls, slow confirmations, a pause, and blockhashes
//! that expire before their transaction lands. The settler and the agent
//! recover; nothing is settled twice; nothing accepted is lost.

use std::time::{Duration, Instant};

use amp_sdk::chain::{retry_transient, Chain};
use amp_sdk::client::AmpClient;
use amp_sdk::rpc::{Cluster, RpcChain};
use amp_sdk::store::{self, Durability, LaneQuery};
use anchor_lang::prelude::Pubkey;
use solana_keypair::Keypair;

use super::service::{prices, sdk_agent, upstream, Serve, PRICE};
use super::support::{run, Localnet};

const USDC: u64 = 1_000_000;

/// `amp localnet fund`, again while a fault refuses it.
async fn fund(node: &Localnet, wallet: &str, tokens: &str) -> Pubkey {
    for _ in 0..10 {
        let mut command = super::support::amp(node.dir.path());
        command
            .current_dir(node.dir.path())
            .args([
                "localnet", "fund", wallet, tokens, "--output", "json", "--ledger",
            ])
            .arg(node.ledger());
        let out = run("amp localnet fund", command, Duration::from_secs(120)).await;
        if out.status.success() {
            return out.json()["wallet"].as_str().unwrap().parse().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("amp localnet fund {wallet} failed ten times");
}

/// `calls` paid calls, each tried again while a fault refuses it.
async fn paid_calls(agent: &AmpClient, url: &str, calls: u64) {
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut served = 0;
    while served < calls {
        assert!(
            Instant::now() < deadline,
            "{served} of {calls} calls served in 4 minutes"
        );
        match agent.get(url).await {
            Ok(response) if response.status() == 200 => served += 1,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// After the service stopped: what its store accepted is what the chain
/// settled, the recipient holds exactly that, and no transaction on the
/// channel failed (a settlement tried twice would).
async fn check_settled(node: &Localnet, agent: &AmpClient, service: &Pubkey, served: u64) {
    let lane = agent.lanes()[0].record.lane;
    let store = store::open(node.path("vouchers.sqlite"), Durability::Full)
        .await
        .unwrap();
    let lanes = store.find(LaneQuery::Channel(lane)).await.unwrap();
    let best = lanes[0]
        .best
        .expect("an accepted voucher")
        .voucher
        .cumulative;
    // The faults still fire: every read waits them out (a 503, a stall).
    let chain = RpcChain::new(&Cluster::Custom(node.rpc_url.clone()), Keypair::new());
    let channel = retry_transient(|| chain.channel(&lane))
        .await
        .unwrap()
        .expect("the channel");
    assert_eq!(channel.settled, best, "every accepted voucher settled");
    assert!(best >= served * PRICE);
    let token = amp_sdk::pda::associated_token(service, &node.mint, &anchor_spl::token::ID);
    let balance = retry_transient(|| chain.token_balance(&token))
        .await
        .unwrap();
    assert_eq!(balance, Some(best));
    let client = node.client();
    let mut history = client.get_signatures_for_address(&lane).await;
    for _ in 0..10 {
        if history.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        history = client.get_signatures_for_address(&lane).await;
    }
    let history = history.unwrap();
    assert!(history.len() >= 2, "opened and settled");
    for entry in &history {
        assert!(
            entry.err.is_none(),
            "a failed transaction on the channel: {entry:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_sends_errors_stalls_and_slow_confirmations() {
    let node = Localnet::start(&[
        "--fault-drop-sends",
        "0.3",
        "--fault-error-rate",
        "0.05",
        "--fault-stall-rate",
        "0.01",
        "--fault-stall-ms",
        "31000",
        "--fault-confirm-delay-ms",
        "1500",
    ])
    .await;
    fund(&node, "agent.json", "100").await;
    let service = fund(&node, "service.json", "0").await;
    let config = node.path("prices.toml");
    std::fs::write(&config, prices(&node, "vouchers.sqlite")).unwrap();
    let upstream = upstream().await;
    let serve = Serve::start(&node, upstream, config.clone()).await;
    let hello = format!("{}/v1/hello", serve.url);
    let wallet = amp_sdk::keypair::read(node.path("agent.json")).unwrap();
    let agent = sdk_agent(&node, &wallet, "lanes.json", 5 * USDC).await;
    // Settled every 100 calls: a few settlements run through the faults.
    paid_calls(&agent, &hello, 400).await;
    // The shutdown settlement has 30 s, which one stalled call can take;
    // what it leaves stays in the store, and the next start settles it.
    let mut report = serve.stop().await;
    for _ in 0..4 {
        if report.contains("; 0 pending") {
            break;
        }
        report = Serve::start(&node, upstream, config.clone())
            .await
            .stop()
            .await;
    }
    assert!(report.contains("; 0 pending"), "{report}");
    check_settled(&node, &agent, &service, 400).await;
    assert!(
        node.process.stderr().contains("localnet fault"),
        "the faults fired"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_and_blockhashes_that_expire_before_landing() {
    // 50 ms slots: a blockhash (150 slots) expires in 7.5 s.
    let node = Localnet::start(&["--slot-ms", "50", "--fault-pause-secs", "10"]).await;
    fund(&node, "agent.json", "100").await;
    let service = fund(&node, "service.json", "0").await;
    let config = node.path("prices.toml");
    std::fs::write(&config, prices(&node, "vouchers.sqlite")).unwrap();
    let serve = Serve::start(&node, upstream().await, config).await;
    let hello = format!("{}/v1/hello", serve.url);
    let wallet = amp_sdk::keypair::read(node.path("agent.json")).unwrap();
    let agent = sdk_agent(&node, &wallet, "lanes.json", 5 * USDC).await;
    let lane_settled = |agent: &AmpClient| {
        let chain = RpcChain::new(&Cluster::Custom(node.rpc_url.clone()), Keypair::new());
        let lane = agent.lanes()[0].record.lane;
        async move {
            chain
                .channel(&lane)
                .await
                .unwrap()
                .expect("the channel")
                .settled
        }
    };
    paid_calls(&agent, &hello, 150).await;

    // A blackhole: every sent transaction is dropped for 10 s while slots
    // go on, so the settler's transactions expire unlanded.
    node.process.signal(libc::SIGUSR2);
    let before = lane_settled(&agent).await;
    paid_calls(&agent, &hello, 250).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        lane_settled(&agent).await,
        before,
        "nothing lands inside the blackhole"
    );

    // A pause: no answers and no slots for 10 s; the agent keeps paying
    // the service, which needs no chain to accept vouchers.
    tokio::time::sleep(Duration::from_secs(3)).await;
    node.process.signal(libc::SIGUSR1);
    paid_calls(&agent, &hello, 200).await;
    let report = serve.stop().await;
    assert!(report.contains("; 0 pending"), "{report}");
    check_settled(&node, &agent, &service, 600).await;
    let log = node.process.stderr();
    assert!(log.contains("dropping every sent transaction"), "{log}");
    assert!(log.contains("pausing the node"), "{log}");
}
