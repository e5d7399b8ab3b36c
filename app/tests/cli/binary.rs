//! The `amp` binary itself: help, exit codes, and stdout that holds only the
//! result (the embedded programs' log lines go to stderr).

use std::process::Command;

fn amp(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_amp"))
        .args(args)
        // No Solana CLI configuration or wallet of the machine leaks in.
        .env("HOME", env!("CARGO_TARGET_TMPDIR"))
        .env_remove("RUST_LOG")
        .output()
        .expect("amp runs")
}

#[test]
fn help_lists_every_command() {
    let out = amp(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for command in [
        "channel",
        "open",
        "top-up",
        "close",
        "request-close",
        "refund",
        "settle",
        "delegate",
        "revoke",
        "close-delegation",
        "pay",
        "lanes",
        "spend",
        "status",
        "demo",
        "serve",
    ] {
        assert!(
            help.contains(&format!("\n  {command} ")),
            "{command} missing:\n{help}"
        );
    }
}

#[test]
fn demo_json_is_the_only_thing_on_stdout() {
    let out = amp(&["demo", "--calls", "20", "--output", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(report["calls"], 20);
    assert_eq!(report["rent_paid"], report["rent_reclaimed"]);
}

#[test]
fn errors_go_to_stderr_with_a_failure_code() {
    let out = amp(&[
        "channel",
        "show",
        "11111111111111111111111111111111",
        "--url",
        "http://127.0.0.1:1",
    ]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: amp channel show: cannot reach http://127.0.0.1:1"),
        "{stderr}"
    );

    let out = amp(&["open", "--recipient", "x", "--mint", "y", "--amount", "1"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
}

#[test]
fn serve_reads_its_files_then_needs_its_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prices.toml");
    std::fs::write(&config, include_str!("../../prices.example.toml")).unwrap();
    let config = config.to_str().unwrap();

    let out = amp(&[
        "serve",
        "--config",
        config,
        "--upstream",
        "http://127.0.0.1:1",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("recipient.json"), "{stderr}");

    amp_sdk::keypair::write(
        &solana_keypair::Keypair::new(),
        dir.path().join("recipient.json"),
    )
    .unwrap();
    let out = amp(&[
        "serve",
        "--config",
        config,
        "--upstream",
        "http://127.0.0.1:1",
        "--url",
        "http://127.0.0.1:1",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach http://127.0.0.1:1"),
        "{stderr}"
    );
}
