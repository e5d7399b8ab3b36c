//! `amp status URL`: the `amp` binary reads a paid service's status
//! document and prints it as a table, or as JSON.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use amp_cli::commands::{self, PayRequest};
use axum::routing::get;
use axum::Router;
use http::Method;

use crate::served::Served;

fn prices(mint: &str) -> String {
    format!(
        r#"
wallet = "service.json"
cluster = "localnet"
store = "vouchers.sqlite"

[[mints]]
mint = "{mint}"

[pricing.default]
mode = "per_call"
rate = "100"

[settle]
threshold = "1000000000"
tick = 0.02
"#
    )
}

/// Runs `amp args…` as its own process, killed if it outlasts 60 s.
fn amp(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_amp"))
        .args(args)
        .env("HOME", env!("CARGO_TARGET_TMPDIR"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("amp starts");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("amp {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// `amp` in a blocking thread, so the served paywall keeps answering.
async fn amp_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        amp(&args)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_prints_each_mint_as_a_table_and_as_json() {
    let upstream = Router::new().route("/v1/hello", get(|| async { "hello" }));
    let served = Served::start(prices, upstream).await;
    let channel = served.open("5").await;
    for _ in 0..2 {
        let request = PayRequest {
            url: format!("{}/v1/hello", served.base),
            method: Method::GET,
            headers: vec![],
            body: None,
            lane: channel,
            max: None,
        };
        let paid = commands::pay(&served.bank, &served.agent, &served.http, request)
            .await
            .unwrap();
        assert_eq!(paid.status, 200);
    }
    // The settler counts what is pending after each pass (every 20 ms).
    let started = Instant::now();
    while served.paywall.status().mints.first().map(|m| m.pending) != Some(200) {
        assert!(started.elapsed() < Duration::from_secs(10), "never pending");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let out = amp_async(vec!["status".into(), served.base.clone()]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], format!("{}/.well-known/amp/status", served.base));
    let header: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "MINT",
            "OWED",
            "PENDING",
            "LANES",
            "SETTLED",
            "NEXT",
            "SETTLEMENT"
        ]
    );
    let row: Vec<&str> = lines[2].split_whitespace().collect();
    let mint = served.mint.to_string();
    assert_eq!(
        &row[..6],
        [mint.as_str(), "200", "200", "1", "0", "interval"],
        "{stdout}"
    );
    assert!(stdout.contains("settler: 0 transaction(s)"), "{stdout}");

    let out = amp_async(vec![
        "status".into(),
        served.base.clone(),
        "--output".into(),
        "json".into(),
    ])
    .await;
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["mints"][0]["mint"], mint);
    assert_eq!(json["mints"][0]["owed"], "200");
    assert_eq!(json["mints"][0]["next_settlement"]["reason"], "interval");

    // A URL that serves no status document is an error, not an empty table.
    let out = amp_async(vec!["status".into(), format!("{}/v1", served.base)]).await;
    assert!(!out.status.success());
}
