//! Processes as a user starts them: `amp localnet`, `amp serve`, `amp pay`
//! and the cluster commands, each with bounded waits, and killed (SIGKILL)
//! when dropped, so a failing test leaves nothing running.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anchor_lang::prelude::Pubkey;
use serde_json::Value;
use solana_commitment_config::CommitmentConfig;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;

/// The `amp` binary, with no Solana CLI configuration or wallet of the
/// machine leaking in.
pub fn amp(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_amp"));
    command.env("HOME", home).env_remove("RUST_LOG");
    command
}

/// A running process whose output is collected as it comes.
pub struct Process {
    name: String,
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Process {
    pub fn spawn(name: &str, mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let stdout = collect(child.stdout.take().expect("piped stdout"));
        let stderr = collect(child.stderr.take().expect("piped stderr"));
        Self {
            name: name.to_owned(),
            child,
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stdout holds a line containing `needle`; returns that line.
    pub async fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> String {
        self.wait_for(false, needle, timeout).await
    }

    /// Waits until stderr (the logs) holds a line containing `needle`.
    pub async fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> String {
        self.wait_for(true, needle, timeout).await
    }

    async fn wait_for(&mut self, stderr: bool, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = if stderr { self.stderr() } else { self.stdout() };
            if let Some(line) = text.lines().find(|line| line.contains(needle)) {
                return line.to_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before printing {needle:?}\nstdout:\n{}\nstderr:\n{}",
                    self.name,
                    self.stdout(),
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not print {needle:?} within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                self.name,
                self.stdout(),
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on a child we own and have not reaped.
        unsafe {
            libc::kill(self.pid(), signal);
        }
    }

    /// SIGKILL: the crash a test wants to survive.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit; kills it and fails past `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader threads drain the pipes.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return status;
            }
            if Instant::now() >= deadline {
                self.kill9();
                panic!(
                    "{} did not exit within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                    self.name,
                    self.stdout(),
                    self.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(source: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(source).lines() {
            let Ok(line) = line else { return };
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    text
}

/// What a finished command printed.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The JSON report of a command that must have succeeded.
    pub fn json(&self) -> Value {
        assert!(
            self.status.success(),
            "failed ({}):\n{}",
            self.status,
            self.stderr
        );
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("{e}: stdout was\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }
}

/// Runs a command to its end, within `timeout`.
pub async fn run(name: &str, command: Command, timeout: Duration) -> Output {
    let mut process = Process::spawn(name, command);
    let status = process.wait_exit(timeout).await;
    Output {
        status,
        stdout: process.stdout(),
        stderr: process.stderr(),
    }
}

/// Two free consecutive loopback ports (JSON-RPC and PubSub).
pub fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two free consecutive ports");
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `amp localnet` in a directory of its own.
pub struct Localnet {
    pub process: Process,
    pub dir: tempfile::TempDir,
    pub rpc_url: String,
    pub mint: Pubkey,
}

/// The longest a node takes to start (it builds a bank).
const START: Duration = Duration::from_secs(90);
/// The longest a cluster command takes (it sends and confirms).
pub const COMMAND: Duration = Duration::from_secs(90);

impl Localnet {
    /// Starts `amp localnet` with `extra` flags, and waits until it serves.
    pub async fn start(extra: &[&str]) -> Self {
        Self::start_with_env(extra, &[]).await
    }

    /// [`start`](Self::start) with environment variables (`RUST_LOG`, say).
    pub async fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::launch(tempfile::tempdir().unwrap(), free_port_pair(), extra, env).await
    }

    async fn launch(
        dir: tempfile::TempDir,
        port: u16,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let ledger = dir.path().join("ledger");
        let mut command = amp(dir.path());
        command
            .current_dir(dir.path())
            .args(["localnet", "--rpc-port", &port.to_string(), "--ledger"])
            .arg(&ledger)
            .args(extra)
            .envs(env.iter().copied());
        let mut process = Process::spawn("amp localnet", command);
        process.wait_for_line("amp localnet: JSON-RPC", START).await;
        let mint_line = process.wait_for_line("test mint", START).await;
        let mint = mint_line
            .split_whitespace()
            .find_map(|word| word.parse::<Pubkey>().ok())
            .expect("the test mint's address");
        Self {
            process,
            dir,
            rpc_url: format!("http://127.0.0.1:{port}"),
            mint,
        }
    }

    /// Ctrl-C: the node stops cleanly; returns what it printed.
    pub async fn stop(&mut self) -> String {
        self.process.signal(libc::SIGINT);
        let status = self.process.wait_exit(Duration::from_secs(30)).await;
        assert!(
            status.success(),
            "amp localnet exited {status}\n{}",
            self.process.stderr()
        );
        self.process.stdout()
    }

    /// Starts the node again on the same ledger and port (after [`stop`](Self::stop)).
    pub async fn relaunch(self) -> Self {
        let port: u16 = self.rpc_url.rsplit(':').next().unwrap().parse().unwrap();
        let Self { process, dir, .. } = self;
        drop(process);
        Self::launch(dir, port, &[], &[]).await
    }

    /// The PubSub URL (the RPC port + 1).
    pub fn websocket_url(&self) -> String {
        let port: u16 = self.rpc_url.rsplit(':').next().unwrap().parse().unwrap();
        format!("ws://127.0.0.1:{}", port + 1)
    }

    pub fn ledger(&self) -> PathBuf {
        self.dir.path().join("ledger")
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// An `amp` command on this node, run in its directory.
    pub fn amp(&self) -> Command {
        let mut command = amp(self.dir.path());
        command
            .current_dir(self.dir.path())
            .args(["--url", &self.rpc_url]);
        command
    }

    /// Runs `amp <args> --output json` on this node with `wallet` and
    /// returns its report (it must succeed).
    pub async fn json(&self, wallet: &str, args: &[&str]) -> Value {
        let mut command = self.amp();
        command
            .args(["--keypair", wallet, "--output", "json"])
            .args(args);
        run(&format!("amp {}", args[0]), command, COMMAND)
            .await
            .json()
    }

    /// Runs `amp <args>` on this node with `wallet`, whatever its outcome.
    pub async fn output(&self, wallet: &str, args: &[&str]) -> Output {
        let mut command = self.amp();
        command.args(["--keypair", wallet]).args(args);
        run(&format!("amp {}", args[0]), command, COMMAND).await
    }

    /// `amp localnet fund <wallet> <tokens>`: creates the wallet file if
    /// missing; returns the wallet's address.
    pub async fn fund(&self, wallet: &str, tokens: &str) -> Pubkey {
        self.fund_with(wallet, tokens, "1").await
    }

    /// [`fund`](Self::fund) with `sol` SOL instead of one ("0": none at all).
    pub async fn fund_with(&self, wallet: &str, tokens: &str, sol: &str) -> Pubkey {
        let mut command = amp(self.dir.path());
        command
            .current_dir(self.dir.path())
            .args([
                "localnet", "fund", wallet, tokens, "--sol", sol, "--output", "json", "--ledger",
            ])
            .arg(self.ledger());
        let report = run("amp localnet fund", command, COMMAND).await.json();
        report["wallet"].as_str().unwrap().parse().unwrap()
    }

    pub fn client(&self) -> RpcClient {
        RpcClient::new_with_commitment(self.rpc_url.clone(), CommitmentConfig::confirmed())
    }

    /// The test-mint balance of `owner`'s associated token account (0 when
    /// it has none).
    pub async fn tokens(&self, owner: &Pubkey) -> u64 {
        let account = amp_sdk::pda::associated_token(owner, &self.mint, &anchor_spl::token::ID);
        self.token_account(&account).await
    }

    /// A token account's balance (0 when it does not exist).
    pub async fn token_account(&self, account: &Pubkey) -> u64 {
        match self.client().get_token_account_balance(account).await {
            Ok(balance) => balance.amount.parse().unwrap(),
            Err(_) => 0,
        }
    }

    pub async fn exists(&self, address: &Pubkey) -> bool {
        self.client()
            .get_account_with_commitment(address, CommitmentConfig::confirmed())
            .await
            .unwrap()
            .value
            .is_some()
    }
}
