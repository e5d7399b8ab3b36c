//! The official Anchor TS client (`@anchor-lang/core`, with
//! `@solana/web3.js`) on `amp localnet`: `tests/ts/e2e.ts` opens a channel,
//! settles a voucher it signs itself (`Ed25519Program`), closes, and reads
//! every `emit_cpi!` event from `getTransaction`'s inner instructions.
//!
//! Needs `tests/ts/run` to have built `tests/ts/dist` (CI does, before the
//! tests); without it the test says it was skipped, unless
//! `AMP_REQUIRE_TS=1` makes that a failure.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::support::{run, Localnet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anchor_ts_client_opens_settles_and_closes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let script = root.join("tests/ts/dist/tests/ts/e2e.js");
    if !script.exists() {
        assert!(
            std::env::var("AMP_REQUIRE_TS").as_deref() != Ok("1"),
            "{} is missing: run tests/ts/run first",
            script.display()
        );
        eprintln!(
            "skipped: {} is missing (run tests/ts/run)",
            script.display()
        );
        return;
    }
    let node = Localnet::start(&[]).await;
    node.fund("payer.json", "0").await;
    let mut command = Command::new("node");
    command
        .arg(&script)
        .current_dir(root)
        .env("AMP_RPC_URL", &node.rpc_url)
        .env("AMP_PAYER", node.path("payer.json"))
        .env("AMP_MINT", node.mint.to_string())
        .env(
            "AMP_MINT_AUTHORITY",
            node.ledger().join("mint-authority.json"),
        );
    let out = run("node e2e.js", command, Duration::from_secs(180)).await;
    assert!(
        out.status.success(),
        "e2e.js failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    let summary: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    let close_events = summary.to_string();
    for event in ["channelOpened", "channelSettled", "channelClosed"] {
        assert!(
            close_events.contains(event),
            "{event} missing from {summary}"
        );
    }
}
