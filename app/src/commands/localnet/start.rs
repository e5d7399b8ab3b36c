//! `amp localnet` itself: start the node, say where it is, serve until Ctrl-C.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use amp_localnet::{FaultConfig, Node, NodeConfig};
use clap::Args;
use serde::Serialize;

use super::LedgerArg;
use crate::error::CliError;
use crate::stdout::StdoutToStderr;

#[derive(Debug, Args)]
pub struct StartArgs {
    /// JSON-RPC port; PubSub listens on the next one.
    #[arg(long, value_name = "PORT", default_value_t = amp_localnet::DEFAULT_RPC_PORT)]
    pub rpc_port: u16,
    /// Address to bind.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub bind_address: IpAddr,
    #[command(flatten)]
    pub ledger: LedgerArg,
    /// Start from a fresh ledger (deletes the ledger directory first).
    #[arg(long)]
    pub reset: bool,
    /// Slot length in milliseconds (a cluster's is 400; a blockhash lives
    /// 150 slots, so shorter slots make expiry quicker to test).
    #[arg(long, value_name = "MS", default_value_t = 400, value_parser = clap::value_parser!(u64).range(10..=10_000))]
    pub slot_ms: u64,
    #[command(flatten)]
    pub faults: FaultArgs,
}

/// Faults for tests of retry and expiry (all off by default).
#[derive(Debug, Args)]
#[command(next_help_heading = "Faults (for tests)")]
pub struct FaultArgs {
    /// Share of sendTransaction calls answered but never landed (0 to 1).
    #[arg(long, value_name = "SHARE", default_value_t = 0.0)]
    pub fault_drop_sends: f64,
    /// Land each sent transaction this many milliseconds late.
    #[arg(long, value_name = "MS")]
    pub fault_confirm_delay_ms: Option<u64>,
    /// Share of HTTP calls answered 503 (0 to 1).
    #[arg(long, value_name = "SHARE", default_value_t = 0.0)]
    pub fault_error_rate: f64,
    /// Share of HTTP calls held for --fault-stall-ms before the answer (0 to 1).
    #[arg(long, value_name = "SHARE", default_value_t = 0.0)]
    pub fault_stall_rate: f64,
    /// How long a stalled call is held.
    #[arg(long, value_name = "MS", default_value_t = 35_000)]
    pub fault_stall_ms: u64,
    /// How long the node pauses (no answers, no slots) on SIGUSR1, or drops
    /// every sent transaction (slots going on) on SIGUSR2.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub fault_pause_secs: u64,
    /// Seed of the fault draws.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub fault_seed: u64,
}

impl FaultArgs {
    fn config(&self) -> Result<FaultConfig, CliError> {
        for (name, share) in [
            ("--fault-drop-sends", self.fault_drop_sends),
            ("--fault-error-rate", self.fault_error_rate),
            ("--fault-stall-rate", self.fault_stall_rate),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return Err(CliError::usage(format!(
                    "{name} is a share from 0 to 1, not {share}"
                )));
            }
        }
        Ok(FaultConfig {
            drop_sends: self.fault_drop_sends,
            confirm_delay: self.fault_confirm_delay_ms.map(Duration::from_millis),
            error_rate: self.fault_error_rate,
            stall_rate: self.fault_stall_rate,
            stall_for: Duration::from_millis(self.fault_stall_ms),
            pause_for: Duration::from_secs(self.fault_pause_secs),
            seed: self.fault_seed,
        })
    }
}

/// What the node had done when it stopped.
#[derive(Clone, Debug, Serialize)]
pub struct LocalnetReport {
    pub slot: u64,
    pub transactions: u64,
}

impl StartArgs {
    pub async fn run(self) -> Result<LocalnetReport, CliError> {
        let ledger = self.ledger.ledger.clone();
        if self.reset && ledger.exists() {
            std::fs::remove_dir_all(&ledger)
                .map_err(|e| CliError::Io(format!("removing {}", ledger.display()), e))?;
        }
        let config = NodeConfig {
            rpc_addr: SocketAddr::new(self.bind_address, self.rpc_port),
            ws_addr: None,
            ledger_dir: Some(ledger),
            faults: self.faults.config()?,
            slot_duration: Duration::from_millis(self.slot_ms),
        };
        let node = Node::start(config)
            .await
            .map_err(|e| CliError::usage(format!("the node did not start: {e}")))?;
        // Said while it runs: where it is and what it holds.
        let info = node.info();
        println!(
            "amp localnet: JSON-RPC {}  PubSub {}",
            info.rpc_url, info.websocket_url
        );
        for (name, id) in &info.programs {
            println!("program {name}: {id}");
        }
        println!(
            "test mint (6 decimals): {}  authority {}",
            info.test_mint, info.mint_authority
        );
        if let Some(dir) = &info.ledger {
            println!("ledger: {}", dir.display());
        }
        println!(
            "fund a wallet: amp localnet fund <WALLET> 100 --ledger {}",
            self.ledger.ledger.display()
        );
        faults_on_signals(&node)?;
        // From here on the AMP programs' `msg!` lines (printed by the host,
        // not kept in the transaction's logs) go to stderr with the logs.
        let quiet = StdoutToStderr::start();
        tokio::signal::ctrl_c()
            .await
            .map_err(|e| CliError::Io("waiting for Ctrl-C".into(), e))?;
        drop(quiet);
        eprintln!("stopping the node…");
        let bank = node
            .ledger()
            .bank(amp_localnet::ledger::Commitment::Processed);
        let report = LocalnetReport {
            slot: bank.slot(),
            transactions: bank.transaction_count(),
        };
        node.stop().await;
        Ok(report)
    }
}

/// Faults on signals, for tests: SIGUSR1 pauses the node (no answers, no
/// new slots); SIGUSR2 drops every sent transaction while slots go on.
fn faults_on_signals(node: &Node) -> Result<(), CliError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let listen = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| CliError::Io(format!("listening for {name}"), e))
        };
        let mut pauses = listen(SignalKind::user_defined1(), "SIGUSR1")?;
        let mut blackholes = listen(SignalKind::user_defined2(), "SIGUSR2")?;
        let faults = node.faults_handle();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(()) = pauses.recv() => faults.pause(),
                    Some(()) = blackholes.recv() => faults.blackhole(),
                    else => return,
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = node;
    Ok(())
}

impl fmt::Display for LocalnetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stopped at slot {} after {} transaction(s)",
            self.slot, self.transactions
        )
    }
}
