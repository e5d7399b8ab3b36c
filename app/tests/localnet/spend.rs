//! An agent's spend policy across processes: `amp pay` processes under a
//! `--policy` file (a limit per hour, a service allow-list) paying
//! `amp serve`, each a new process that must count what the earlier ones
//! spent; then `amp spend` reporting the spend log, as JSON and as a table.

use serde_json::Value;

use super::service::{prices, upstream, Serve, PRICE};
use super::support::{run, Localnet, Output, COMMAND};

/// `amp pay` as `agent.json` under `policy.toml`: its output.
async fn pay(node: &Localnet, url: &str, extra: &[&str]) -> Output {
    let mut command = node.amp();
    command.args([
        "--keypair",
        "agent.json",
        "pay",
        url,
        "--budget",
        "5",
        "--lanes",
        "lanes.json",
        "--policy",
        "policy.toml",
    ]);
    command.args(extra);
    run("amp pay", command, COMMAND).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amp_pay_keeps_its_policy_across_processes_and_amp_spend_reports_it() {
    let node = Localnet::start(&[]).await;
    node.fund("agent.json", "100").await;
    node.fund("service.json", "0").await;
    let config = node.path("prices.toml");
    std::fs::write(&config, prices(&node, "vouchers.sqlite")).unwrap();
    let serve = Serve::start(&node, upstream().await, config).await;
    let hello = format!("{}/v1/hello", serve.url);
    // Three calls an hour (0.001 a call), and only this service.
    std::fs::write(
        node.path("policy.toml"),
        format!(
            "limit = [\"0.003/hour\"]\nallow = [\"{}\"]\nmax_per_call = \"0.001\"\n",
            serve.url
        ),
    )
    .unwrap();

    for _ in 0..3 {
        let out = pay(&node, &hello, &[]).await;
        assert!(out.status.success(), "{}", out.stderr);
        assert_eq!(out.stdout.trim(), "hello from upstream");
    }
    // A fourth process knows what the first three spent.
    let out = pay(&node, &hello, &[]).await;
    assert!(!out.status.success());
    assert!(out.stderr.contains("spend limit"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "nothing served");
    // A service not on the allow list: refused before it is called.
    let out = pay(&node, "http://127.0.0.1:9/v1/hello", &["--limit", "1/hour"]).await;
    assert!(!out.status.success());
    assert!(out.stderr.contains("not allowed"), "{}", out.stderr);

    let mut command = node.amp();
    command.args([
        "--output",
        "json",
        "spend",
        "--lanes",
        "lanes.json",
        "--by",
        "route",
    ]);
    let report: Value = run("amp spend", command, COMMAND).await.json();
    assert_eq!(
        report["total"],
        Value::from((3 * PRICE).to_string()),
        "{report}"
    );
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{report}");
    assert_eq!(
        rows[0]["key"],
        Value::from(format!("{} /v1/hello", serve.url))
    );
    assert_eq!(
        (rows[0]["payments"].as_u64(), rows[0]["units"].as_u64()),
        (Some(3), Some(3))
    );

    let mut command = node.amp();
    command.args(["spend", "--lanes", "lanes.json", "--since", "1h"]);
    let table = run("amp spend", command, COMMAND).await;
    assert!(table.status.success(), "{}", table.stderr);
    assert!(table.stdout.contains(&serve.url), "{}", table.stdout);
    assert!(table.stdout.contains("3000"), "{}", table.stdout);
}
