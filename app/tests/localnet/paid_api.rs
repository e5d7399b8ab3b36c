//! A paid API end to end: a node, an upstream, `amp serve` in front of it,
//! and agents (`amp pay` processes and an SDK agent on `RpcChain`) making
//! 1,000 paid calls; then the lanes close and every token is accounted for
//! on-chain, to the base unit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use amp_sdk::client::CloseOutcome;
use solana_signer::Signer;

use super::service::{
    channels_funded_by, cli_pay, close_lanes, prices, sdk_agent, upstream, Serve, PRICE,
};
use super::support::{run, Localnet, COMMAND};

const USDC: u64 = 1_000_000;
/// Calls made by `amp pay` processes (one process each).
const CLI_CALLS: u64 = 20;
/// Calls made by the SDK agent.
const SDK_CALLS: u64 = 980;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_paid_calls_settle_and_close_to_the_base_unit() {
    let node = Localnet::start(&[]).await;
    let cli_agent = node.fund("cli-agent.json", "100").await;
    let sdk_wallet_address = node.fund("sdk-agent.json", "100").await;
    let service = node.fund("service.json", "0").await;
    let config = node.path("prices.toml");
    std::fs::write(&config, prices(&node, "vouchers.sqlite")).unwrap();
    let serve = Serve::start(&node, upstream().await, config).await;
    let hello = format!("{}/v1/hello", serve.url);

    // `amp pay` as an agent: the first call opens a channel (within the
    // budget), the others reuse the lane its lane file remembers.
    for _ in 0..CLI_CALLS {
        cli_pay(
            &node,
            "cli-agent.json",
            &hello,
            "cli-lanes.json",
            "hello from upstream",
        )
        .await;
    }
    let mut command = node.amp();
    command.args([
        "--keypair",
        "cli-agent.json",
        "--output",
        "json",
        "lanes",
        "list",
        "--lanes",
        "cli-lanes.json",
    ]);
    let lanes = run("amp lanes list", command, COMMAND).await.json();
    assert_eq!(lanes["lanes"].as_array().map(Vec::len), Some(1), "{lanes}");

    // The SDK agent: 980 calls from four tasks sharing one client.
    let sdk_wallet = amp_sdk::keypair::read(node.path("sdk-agent.json")).unwrap();
    assert_eq!(sdk_wallet.pubkey(), sdk_wallet_address);
    let agent = sdk_agent(&node, &sdk_wallet, "sdk-lanes.json", 5 * USDC).await;
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (agent, hello, done) = (agent.clone(), hello.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while done.fetch_add(1, Ordering::SeqCst) < SDK_CALLS {
                let response = agent.get(&hello).await.expect("a paid call");
                assert_eq!(response.status(), 200);
                assert_eq!(response.text().await.unwrap(), "hello from upstream");
            }
        }));
    }
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(300), task)
            .await
            .expect("980 calls within 5 minutes")
            .unwrap();
    }
    let sdk_lane = agent.lanes().pop().expect("the SDK agent's lane");
    assert_eq!(sdk_lane.signed, SDK_CALLS * PRICE);

    // Both agents close cooperatively through the service, which settles
    // the final voucher and refunds the rest in one transaction.
    let closed = close_lanes(&node, "cli-agent.json", &serve.url, "cli-lanes.json").await;
    assert_eq!(
        closed["settled"].as_str(),
        Some((CLI_CALLS * PRICE).to_string().as_str()),
        "{closed}"
    );
    match agent
        .close(&serve.url)
        .await
        .expect("the SDK agent's lane closes")
    {
        CloseOutcome::Closed { settled, .. } => assert_eq!(settled, SDK_CALLS * PRICE),
        other => panic!("not closed: {other:?}"),
    }
    let report = serve.stop().await;
    assert!(report.contains("0 pending"), "{report}");

    // On-chain: the service holds exactly what the 1,000 calls cost, the
    // agents the rest, and no channel or vault is left.
    assert_eq!(node.tokens(&service).await, (CLI_CALLS + SDK_CALLS) * PRICE);
    assert_eq!(
        node.tokens(&cli_agent).await,
        100 * USDC - CLI_CALLS * PRICE
    );
    assert_eq!(
        node.tokens(&sdk_wallet_address).await,
        100 * USDC - SDK_CALLS * PRICE
    );
    assert_eq!(channels_funded_by(&node, &cli_agent).await, 0);
    assert_eq!(channels_funded_by(&node, &sdk_wallet_address).await, 0);
}
