//! TypeScript clients on `amp localnet`, nothing of ours but the IDL:
//!
//! * the official Anchor TS client (`@anchor-lang/core`, with
//!   `@solana/web3.js`): `tests/ts/e2e.ts` opens a channel, settles a voucher
//!   it signs itself (`Ed25519Program`), closes, and reads every `emit_cpi!`
//!   event from `getTransaction`'s inner instructions;
//! * `@solana/kit` (`tests/ts/kit.ts`): an airdrop and a version-0 transfer
//!   sent and confirmed over the websocket, the transaction's meta, a
//!   jsonParsed mint, program accounts by filter.
//!
//! They need `tests/ts/run` to have built `tests/ts/dist` (CI does, before
//! the tests); without it they say they were skipped, unless
//! `AMP_REQUIRE_TS=1` makes that a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::support::{run, Localnet};

/// The built script `name`.js, or `None` (test skipped) when not built.
pub fn script(name: &str) -> Option<PathBuf> {
    let script = root().join(format!("tests/ts/dist/tests/ts/{name}.js"));
    if script.exists() {
        return Some(script);
    }
    assert!(
        std::env::var("AMP_REQUIRE_TS").as_deref() != Ok("1"),
        "{} is missing: run tests/ts/run first",
        script.display()
    );
    eprintln!(
        "skipped: {} is missing (run tests/ts/run)",
        script.display()
    );
    None
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// Runs `node <script>` with `env`; returns its JSON summary.
pub async fn node_script(script: &Path, env: &[(&str, String)]) -> serde_json::Value {
    let mut command = Command::new("node");
    command.arg(script).current_dir(root());
    for (name, value) in env {
        command.env(name, value);
    }
    let out = run("node", command, Duration::from_secs(180)).await;
    assert!(
        out.status.success(),
        "{} failed:\n{}\n{}",
        script.display(),
        out.stdout,
        out.stderr
    );
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anchor_ts_client_opens_settles_and_closes() {
    let Some(script) = script("e2e") else { return };
    let node = Localnet::start(&[]).await;
    node.fund("payer.json", "0").await;
    let summary = node_script(
        &script,
        &[
            ("AMP_RPC_URL", node.rpc_url.clone()),
            ("AMP_PAYER", node.path("payer.json").display().to_string()),
            ("AMP_MINT", node.mint.to_string()),
            (
                "AMP_MINT_AUTHORITY",
                node.ledger()
                    .join("mint-authority.json")
                    .display()
                    .to_string(),
            ),
        ],
    )
    .await;
    let text = summary.to_string();
    for event in ["channelOpened", "channelSettled", "channelClosed"] {
        assert!(text.contains(event), "{event} missing from {summary}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solana_kit_sends_confirms_and_reads() {
    let Some(script) = script("kit") else { return };
    let node = Localnet::start(&[]).await;
    let summary = node_script(
        &script,
        &[
            ("AMP_RPC_URL", node.rpc_url.clone()),
            ("AMP_WS_URL", node.websocket_url()),
            ("AMP_MINT", node.mint.to_string()),
        ],
    )
    .await;
    assert!(summary["signature"].is_string(), "{summary}");
}
