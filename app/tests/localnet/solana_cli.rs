//! The `solana` command line (Agave's `solana-cli`, unchanged) against
//! `amp localnet`: balance, airdrop, account, transfer and confirm, the
//! everyday commands a developer types next to `amp`.
//!
//! Finds `solana` in `AMP_SOLANA_CLI` or on the PATH (CI installs it with
//! `cargo install solana-cli`); without it the test says it was skipped,
//! unless `AMP_REQUIRE_SOLANA_CLI=1` makes that a failure.

use std::path::PathBuf;
use std::process::Command;

use super::support::{run, Localnet, Output, COMMAND};

fn solana_cli() -> Option<PathBuf> {
    let found = std::env::var_os("AMP_SOLANA_CLI")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join("solana"))
                    .find(|path| path.is_file())
            })
        });
    if found.is_none() {
        assert!(
            std::env::var("AMP_REQUIRE_SOLANA_CLI").as_deref() != Ok("1"),
            "the solana CLI is required (AMP_REQUIRE_SOLANA_CLI=1) but neither AMP_SOLANA_CLI nor PATH has it"
        );
        eprintln!("skipped: no solana CLI (set AMP_SOLANA_CLI or put solana on the PATH)");
    }
    found
}

async fn solana(node: &Localnet, cli: &PathBuf, keypair: &str, args: &[&str]) -> Output {
    let mut command = Command::new(cli);
    command
        .current_dir(node.dir.path())
        // No configuration of the machine leaks in.
        .env("HOME", node.dir.path())
        .args([
            "--url",
            &node.rpc_url,
            "--keypair",
            keypair,
            "--commitment",
            "confirmed",
        ])
        .args(args);
    let out = run(&format!("solana {}", args[0]), command, COMMAND).await;
    assert!(
        out.status.success(),
        "solana {args:?} failed ({}):\n{}\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_solana_cli_works_against_the_node() {
    let Some(cli) = solana_cli() else { return };
    let node = Localnet::start(&[]).await;
    let payer = node.fund("payer.json", "0").await;
    let recipient = node.fund("recipient.json", "0").await;

    let balance = solana(&node, &cli, "payer.json", &["balance"]).await;
    assert_eq!(balance.stdout.trim(), "1 SOL");
    solana(&node, &cli, "payer.json", &["airdrop", "2"]).await;
    let balance = solana(&node, &cli, "payer.json", &["balance", &payer.to_string()]).await;
    assert_eq!(balance.stdout.trim(), "3 SOL");

    let transfer = solana(
        &node,
        &cli,
        "payer.json",
        &[
            "transfer",
            &recipient.to_string(),
            "0.5",
            "--output",
            "json",
        ],
    )
    .await;
    let signature = serde_json::from_str::<serde_json::Value>(&transfer.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", transfer.stdout))["signature"]
        .as_str()
        .expect("the transfer's signature")
        .to_owned();
    let confirmed = solana(&node, &cli, "payer.json", &["confirm", &signature]).await;
    assert!(
        confirmed.stdout.contains("Finalized") || confirmed.stdout.contains("Confirmed"),
        "{}",
        confirmed.stdout
    );
    let balance = solana(
        &node,
        &cli,
        "payer.json",
        &["balance", &recipient.to_string()],
    )
    .await;
    assert_eq!(balance.stdout.trim(), "1.5 SOL");

    // The test mint, read as an account.
    let account = solana(
        &node,
        &cli,
        "payer.json",
        &["account", &node.mint.to_string(), "--output", "json"],
    )
    .await;
    let account: serde_json::Value =
        serde_json::from_str(&account.stdout).unwrap_or_else(|e| panic!("{e}: {}", account.stdout));
    assert_eq!(
        account["account"]["owner"],
        "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
    );
    assert_eq!(account["account"]["space"], 82);
}
