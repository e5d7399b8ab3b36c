//! Sessions across processes (docs/SPEC.md, "Sessions"): `amp serve`
//! offering them (`[session]` in its price file) and an SDK agent on
//! `RpcChain` paying by MAC. `amp serve` is killed (SIGKILL) mid-session
//! and started again: the session goes on (its key derives from the
//! service's wallet, nothing was stored), and what the crash lost is
//! exactly what was charged beyond the last signature: under half the
//! credit, as the status route said before the crash.

use amp_sdk::client::CloseOutcome;
use amp_sdk::manifest::STATUS_PATH;
use amp_sdk::server::ServiceStatus;

use super::service::{prices, sdk_agent, upstream, Serve, PRICE};
use super::support::Localnet;

const USDC: u64 = 1_000_000;
/// A signature every 10 calls: half of it.
const CREDIT: u64 = 20 * PRICE;

async fn status(serve: &Serve) -> ServiceStatus {
    reqwest::get(format!("{}{STATUS_PATH}", serve.url))
        .await
        .expect("the status route answers")
        .json()
        .await
        .expect("a status document")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_pays_by_mac_through_amp_serve_across_its_crash() {
    let node = Localnet::start(&[]).await;
    node.fund("agent.json", "100").await;
    let service = node.fund("service.json", "0").await;
    let config = node.path("prices.toml");
    let file = prices(&node, "vouchers.sqlite").replace(
        "free = [\"/health\"]",
        &format!("free = [\"/health\"]\ncredit = \"{CREDIT}\""),
    ) + "\n[session]\nttl = 600\nreplica = \"a\"\n";
    std::fs::write(&config, file).unwrap();
    let mut serve = Serve::start(&node, upstream().await, config).await;
    let hello = format!("{}/v1/hello", serve.url);
    let wallet = amp_sdk::keypair::read(node.path("agent.json")).unwrap();
    let agent = sdk_agent(&node, &wallet, "lanes.json", 5 * USDC).await;

    for _ in 0..45 {
        let text = agent.get(&hello).await.unwrap().text().await.unwrap();
        assert_eq!(text, "hello from upstream");
    }
    let sessions = status(&serve).await.sessions.expect("sessions offered");
    assert_eq!((sessions.credit_per_lane, sessions.lanes), (CREDIT, 1));
    assert!(
        sessions.at_risk > 0 && sessions.at_risk < CREDIT / 2,
        "{sessions:?}"
    );

    // Killed between signatures: the unsigned calls' charges die with it.
    serve.process.kill9();
    let _ = serve
        .process
        .wait_exit(std::time::Duration::from_secs(10))
        .await;
    serve.restart(&node).await;
    for _ in 0..35 {
        let text = agent.get(&hello).await.unwrap().text().await.unwrap();
        assert_eq!(text, "hello from upstream");
    }
    assert_eq!(status(&serve).await.sessions.unwrap().lanes, 1);

    // The receipts after the restart told the agent what the service still
    // knew; its final voucher pays that: 80 calls less what was at risk.
    let paid = 80 * PRICE - sessions.at_risk;
    match agent.close(&serve.url).await.expect("the lane closes") {
        CloseOutcome::Closed { settled, .. } => assert_eq!(settled, paid),
        other => panic!("not closed: {other:?}"),
    }
    let report = serve.stop().await;
    assert!(report.contains("0 pending"), "{report}");
    assert_eq!(node.tokens(&service).await, paid);
}
