//! A running node: the ledger, its slot clock, JSON-RPC and PubSub.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amp_sdk::embedded::NativeProgram;
use serde::{Deserialize, Serialize};
use solana_keypair::Keypair;
use solana_signer::Signer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::delayed::Delayed;
use crate::events::Events;
use crate::faults::{FaultConfig, Faults};
use crate::ledger::{unix_now, Ledger, LedgerOptions, SLOT_DURATION};
use crate::rpc::Rpc;
use crate::test_mint;

/// How to start a node.
pub struct NodeConfig {
    /// JSON-RPC address (port 0: any free port).
    pub rpc_addr: SocketAddr,
    /// PubSub address (`None`: the RPC port + 1, or any free port when the
    /// RPC port is 0).
    pub ws_addr: Option<SocketAddr>,
    /// Where accounts and keys are kept across restarts (`None`: memory only).
    pub ledger_dir: Option<PathBuf>,
    /// Faults to inject (all off by default).
    pub faults: FaultConfig,
    /// How long a slot lasts: a cluster's 400 ms by default; shorter slots
    /// make a blockhash (valid 150 slots) expire sooner, for tests of expiry.
    pub slot_duration: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            rpc_addr: SocketAddr::from(([127, 0, 0, 1], crate::DEFAULT_RPC_PORT)),
            ws_addr: None,
            ledger_dir: None,
            faults: FaultConfig::default(),
            slot_duration: SLOT_DURATION,
        }
    }
}

/// What a client needs to know of a running node; also written to
/// `<ledger>/node.json` so other commands (`amp localnet fund`) find it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    pub rpc_url: String,
    pub websocket_url: String,
    /// The native programs it runs, by name.
    pub programs: Vec<(String, String)>,
    /// The USDC-like test mint (6 decimals).
    pub test_mint: String,
    /// The test mint's authority (its keypair is in the ledger directory).
    pub mint_authority: String,
    /// The account that pays airdrops.
    pub faucet: String,
    /// The ledger directory, if any.
    pub ledger: Option<PathBuf>,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Journal(#[from] crate::ledger::JournalError),
    #[error("ledger directory {path}: {message}")]
    Ledger { path: PathBuf, message: String },
    #[error("creating the test mint: {0}")]
    TestMint(String),
    #[error("PubSub listens on the RPC port + 1, and there is none after {rpc_port}")]
    NoPubsubPort { rpc_port: u16 },
}

/// A running node. Dropping it without [`stop`](Self::stop) leaves its tasks
/// to the runtime.
pub struct Node {
    rpc: Rpc,
    info: NodeInfo,
    mint_authority: Keypair,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// Builds the ledger, creates the test mint, and starts serving.
    pub async fn start(config: NodeConfig) -> Result<Self, NodeError> {
        // Before anything is built or bound: PubSub needs a port.
        let ws_addr = match config.ws_addr {
            Some(addr) => addr,
            // Any free port when the RPC port is any free port too.
            None if config.rpc_addr.port() == 0 => SocketAddr::new(config.rpc_addr.ip(), 0),
            None => {
                let rpc_port = config.rpc_addr.port();
                let port = rpc_port
                    .checked_add(1)
                    .ok_or(NodeError::NoPubsubPort { rpc_port })?;
                SocketAddr::new(config.rpc_addr.ip(), port)
            }
        };
        let keys = match &config.ledger_dir {
            Some(dir) => Keys::load_or_create(dir)?,
            None => Keys::generate(),
        };
        let programs: Vec<NativeProgram> = vec![amp_sdk::native_program!(
            "amp_relay",
            amp_relay::ID,
            amp_relay::entry
        )];
        let program_names = amp_sdk::embedded::native_programs(Vec::new())
            .iter()
            .chain(programs.iter())
            .map(|p| (p.name.to_string(), p.id.to_string()))
            .collect();
        let options = LedgerOptions {
            faucet: keys.faucet.insecure_clone(),
            programs,
            journal: config.ledger_dir.clone(),
            slot_duration: config.slot_duration,
        };
        // Building a bank is CPU work (and spins up a throwaway runtime once).
        let ledger = tokio::task::spawn_blocking(move || Ledger::start(options))
            .await
            .map_err(|e| NodeError::TestMint(e.to_string()))??;
        let ledger = Arc::new(ledger);
        test_mint::ensure(&ledger, &keys.mint, &keys.mint_authority)
            .map_err(NodeError::TestMint)?;

        let rpc_listener = bind(config.rpc_addr).await?;
        let rpc_addr = rpc_listener
            .local_addr()
            .map_err(|source| NodeError::Bind {
                addr: config.rpc_addr,
                source,
            })?;
        let ws_listener = bind(ws_addr).await?;
        let ws_addr = ws_listener.local_addr().map_err(|source| NodeError::Bind {
            addr: ws_addr,
            source,
        })?;

        let rpc = Rpc {
            ledger,
            faults: Arc::new(Faults::new(config.faults)),
            events: Events::default(),
            delayed: Delayed::default(),
        };
        let info = NodeInfo {
            rpc_url: format!("http://{rpc_addr}"),
            websocket_url: format!("ws://{ws_addr}"),
            programs: program_names,
            test_mint: keys.mint.pubkey().to_string(),
            mint_authority: keys.mint_authority.pubkey().to_string(),
            faucet: keys.faucet.pubkey().to_string(),
            ledger: config.ledger_dir.clone(),
        };
        if let Some(dir) = &config.ledger_dir {
            let json = serde_json::to_vec_pretty(&info).unwrap_or_default();
            std::fs::write(dir.join(NODE_FILE), json).map_err(|e| NodeError::Ledger {
                path: dir.clone(),
                message: e.to_string(),
            })?;
        }
        let (shutdown, watch) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(crate::rpc::serve(rpc_listener, rpc.clone(), watch.clone())),
            tokio::spawn(crate::pubsub::serve(
                ws_listener,
                rpc.clone(),
                watch.clone(),
            )),
            tokio::spawn(slots(rpc.clone(), config.slot_duration, watch)),
        ];
        tracing::info!(rpc = %info.rpc_url, websocket = %info.websocket_url, "localnet: serving");
        Ok(Self {
            rpc,
            info,
            mint_authority: keys.mint_authority,
            shutdown,
            tasks,
        })
    }

    pub fn info(&self) -> &NodeInfo {
        &self.info
    }

    /// The ledger, for in-process use (tests and benchmarks).
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.rpc.ledger
    }

    /// The fault switches (for example to pause the node).
    pub fn faults(&self) -> &Faults {
        &self.rpc.faults
    }

    /// A handle on the fault switches that outlives a borrow of the node
    /// (for a signal handler's task).
    pub fn faults_handle(&self) -> Arc<Faults> {
        self.rpc.faults.clone()
    }

    /// The test mint's authority.
    pub fn mint_authority(&self) -> &Keypair {
        &self.mint_authority
    }

    /// Stops serving and producing slots, and waits for the tasks to end.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Bind { addr, source })
}

/// Ends a slot every 400 ms (not while paused), landing delayed transactions first.
async fn slots(rpc: Rpc, slot_duration: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(slot_duration);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => return,
        }
        if rpc.faults.paused() {
            continue;
        }
        let rpc = rpc.clone();
        let ended = tokio::task::spawn_blocking(move || {
            for transaction in rpc.delayed.take_due(Instant::now()) {
                if let Err(error) = crate::rpc::transactions::land(&rpc, transaction) {
                    tracing::debug!(message = %error.message, "localnet: a delayed transaction was refused");
                }
            }
            let ended = rpc.ledger.end_slot(unix_now());
            rpc.events.slot_ended(ended);
        })
        .await;
        if let Err(error) = ended {
            tracing::error!(%error, "localnet: ending a slot panicked");
        }
    }
}

/// The file in the ledger directory that describes the running node.
pub const NODE_FILE: &str = "node.json";
const FAUCET_FILE: &str = "faucet.json";
const MINT_FILE: &str = "test-mint.json";
const MINT_AUTHORITY_FILE: &str = "mint-authority.json";

struct Keys {
    faucet: Keypair,
    mint: Keypair,
    mint_authority: Keypair,
}

impl Keys {
    fn generate() -> Self {
        Self {
            faucet: Keypair::new(),
            mint: Keypair::new(),
            mint_authority: Keypair::new(),
        }
    }

    /// The keys a ledger directory holds, created on first use.
    fn load_or_create(dir: &Path) -> Result<Self, NodeError> {
        let fail = |message: String| NodeError::Ledger {
            path: dir.to_path_buf(),
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        let key = |file: &str| -> Result<Keypair, NodeError> {
            let path = dir.join(file);
            if path.exists() {
                amp_sdk::keypair::read(&path).map_err(|e| fail(e.to_string()))
            } else {
                let keypair = Keypair::new();
                amp_sdk::keypair::write(&keypair, &path).map_err(|e| fail(e.to_string()))?;
                Ok(keypair)
            }
        };
        Ok(Self {
            faucet: key(FAUCET_FILE)?,
            mint: key(MINT_FILE)?,
            mint_authority: key(MINT_AUTHORITY_FILE)?,
        })
    }
}

/// Reads the node description and the test mint's authority from a ledger
/// directory (what `amp localnet fund` needs).
pub fn read_ledger_dir(dir: &Path) -> Result<(NodeInfo, Keypair), NodeError> {
    let fail = |message: String| NodeError::Ledger {
        path: dir.to_path_buf(),
        message,
    };
    let json = std::fs::read(dir.join(NODE_FILE)).map_err(|e| {
        fail(format!(
            "{NODE_FILE}: {e} (is `amp localnet` running with this --ledger?)"
        ))
    })?;
    let info: NodeInfo =
        serde_json::from_slice(&json).map_err(|e| fail(format!("{NODE_FILE}: {e}")))?;
    let authority =
        amp_sdk::keypair::read(dir.join(MINT_AUTHORITY_FILE)).map_err(|e| fail(e.to_string()))?;
    Ok((info, authority))
}
