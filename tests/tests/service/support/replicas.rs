//! The harness of the replica tests (`server_replicas.rs`): paying through
//! several replicas at once and checking that each seq was accepted once
//! with exact owed amounts; replica processes (this test binary run again)
//! and the HTTP bridge that lends them the parent's embedded bank as a
//! `Chain`, counting every settlement it sends.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use amp_sdk::chain::Chain;
use amp_sdk::headers::Receipt;
use amp_sdk::manifest::{ErrorBody, ErrorCode, Price, PricingMode};
use amp_sdk::server::{Payment, Paywall, SettleConfig};
use amp_sdk::store::{Durability, PostgresStore};
use amp_tests::*;
use axum::routing::get;
use axum::{Extension, Router};
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use solana_keypair::Keypair;

use crate::support::bridge::BridgeChain;
use crate::support::server::{client, credential_headers};

/// Every paid request here costs this much (`per_call`).
pub const PRICE: u64 = 10;

// Hammering: pre-signed credentials, each sent to several replicas at once.

/// What one request came back with.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub lane: usize,
    pub seq: u64,
    pub replica: usize,
    pub status: StatusCode,
    /// `AMP-Owed` of an accepted request.
    pub owed: Option<u64>,
    /// The error code of a refused one.
    pub code: Option<ErrorCode>,
}

/// Credentials `first..first + count` of each lane, each covering its seq × PRICE.
pub fn credentials(
    signer: &Keypair,
    lanes: &[Lane],
    first: u64,
    count: u64,
) -> Vec<Vec<HeaderMap>> {
    lanes
        .iter()
        .map(|lane| {
            (first..first + count)
                .map(|seq| credential_headers(signer, &lane.voucher(seq, seq * PRICE)))
                .collect()
        })
        .collect()
}

/// Status, `AMP-Owed` (or the error body's `owed`) and error code; `Err`
/// when the replica did not answer.
pub async fn try_pay(
    client: &reqwest::Client,
    url: &str,
    headers: HeaderMap,
) -> Result<(StatusCode, Option<u64>, Option<ErrorCode>), reqwest::Error> {
    let response = client.get(url).headers(headers).send().await?;
    let status = response.status();
    let receipt = Receipt::from_headers(response.headers())
        .ok()
        .map(|r| r.owed);
    let body = response.bytes().await?;
    if status == StatusCode::OK {
        return Ok((status, receipt, None));
    }
    let error = serde_json::from_slice::<ErrorBody>(&body).ok();
    Ok((
        status,
        error.as_ref().and_then(|e| e.owed),
        error.map(|e| e.error),
    ))
}

pub async fn pay(
    client: &reqwest::Client,
    url: &str,
    headers: HeaderMap,
) -> (StatusCode, Option<u64>, Option<ErrorCode>) {
    try_pay(client, url, headers)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// Sends each lane's credentials in order, one at a time, to `primary`
/// until it stops answering, then to `fallback`, as a client would that
/// retries elsewhere: a credential the dead replica accepted just before
/// dying is then refused as already seen (409), whose `owed` says what it
/// was charged; it counts as accepted. Returns the outcomes and how many
/// credentials were retried.
pub async fn hammer_failover(
    client: &reqwest::Client,
    primary: String,
    fallback: String,
    work: Vec<Vec<HeaderMap>>,
    first: u64,
) -> (Vec<Outcome>, usize) {
    let dead = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (lane, credentials) in work.into_iter().enumerate() {
        let (client, primary, fallback, dead) = (
            client.clone(),
            primary.clone(),
            fallback.clone(),
            Arc::clone(&dead),
        );
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let mut retried = 0;
            for (index, headers) in credentials.into_iter().enumerate() {
                // Paced, so that the traffic outlasts a settlement or two.
                tokio::time::sleep(Duration::from_millis(15)).await;
                let seq = first + index as u64;
                let outcome = |replica, (status, owed, code)| Outcome {
                    lane,
                    seq,
                    replica,
                    status,
                    owed,
                    code,
                };
                if !dead.load(Ordering::Relaxed) {
                    match try_pay(&client, &primary, headers.clone()).await {
                        Ok(reply) => {
                            outcomes.push(outcome(0, reply));
                            continue;
                        }
                        Err(_) => dead.store(true, Ordering::Relaxed),
                    }
                    // No answer: did the dead replica accept it first?
                    retried += 1;
                    let reply = pay(&client, &fallback, headers).await;
                    if reply.0 == StatusCode::CONFLICT {
                        outcomes.push(outcome(0, (StatusCode::OK, reply.1, None)));
                    } else {
                        outcomes.push(outcome(1, reply));
                    }
                    continue;
                }
                outcomes.push(outcome(1, pay(&client, &fallback, headers).await));
            }
            (outcomes, retried)
        }));
    }
    let mut all = Vec::new();
    let mut retried = 0;
    for task in tasks {
        let (outcomes, r) = task.await.unwrap();
        all.extend(outcomes);
        retried += r;
    }
    (all, retried)
}

/// `workers` clients per lane take the lane's credentials in order; each
/// credential goes to `fanout` replicas of `urls` at once (rotating).
pub async fn hammer(
    client: &reqwest::Client,
    urls: &[String],
    fanout: usize,
    work: Vec<Vec<HeaderMap>>,
    first: u64,
    workers: usize,
) -> Vec<Outcome> {
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let urls = Arc::new(urls.to_vec());
    let mut tasks = Vec::new();
    for (lane, credentials) in work.into_iter().enumerate() {
        let credentials = Arc::new(credentials);
        let next = Arc::new(AtomicUsize::new(0));
        for _ in 0..workers {
            let (client, urls, outcomes) =
                (client.clone(), Arc::clone(&urls), Arc::clone(&outcomes));
            let (credentials, next) = (Arc::clone(&credentials), Arc::clone(&next));
            tasks.push(tokio::spawn(async move {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(headers) = credentials.get(index) else {
                        return;
                    };
                    let seq = first + index as u64;
                    let targets: Vec<usize> = (0..fanout)
                        .map(|k| (index + lane + k) % urls.len())
                        .collect();
                    let sends: Vec<_> = targets
                        .iter()
                        .map(|&replica| {
                            let (client, url, headers) =
                                (client.clone(), urls[replica].clone(), headers.clone());
                            tokio::spawn(
                                async move { (replica, pay(&client, &url, headers).await) },
                            )
                        })
                        .collect();
                    for send in sends {
                        let (replica, (status, owed, code)) = send.await.unwrap();
                        outcomes.lock().unwrap().push(Outcome {
                            lane,
                            seq,
                            replica,
                            status,
                            owed,
                            code,
                        });
                    }
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    Arc::try_unwrap(outcomes).unwrap().into_inner().unwrap()
}

/// What a hammering left on a lane.
#[derive(Clone, Copy, Debug)]
pub struct Accepted {
    /// Requests accepted (each charged PRICE).
    pub count: u64,
    /// The highest seq accepted: its voucher, which signs seq × PRICE, is
    /// the best one, and what settling the lane pays in all.
    pub max_seq: u64,
}

impl Accepted {
    pub fn signed(&self) -> u64 {
        self.max_seq * PRICE
    }
}

/// Checks a hammering: per lane, no seq accepted twice, the receipts of the
/// accepted requests are exactly PRICE, 2·PRICE, … (each saw all the
/// others), starting above `owed_before[lane]`, and every refusal is a seq
/// already overtaken.
pub fn check_exact(outcomes: &[Outcome], owed_before: &[u64]) -> Vec<Accepted> {
    let mut accepted = Vec::new();
    for (lane, before) in owed_before.iter().enumerate() {
        let mine: Vec<&Outcome> = outcomes.iter().filter(|o| o.lane == lane).collect();
        let ok: Vec<&&Outcome> = mine.iter().filter(|o| o.status == StatusCode::OK).collect();
        let seqs: HashSet<u64> = ok.iter().map(|o| o.seq).collect();
        assert_eq!(
            seqs.len(),
            ok.len(),
            "lane {lane}: a seq was accepted twice"
        );
        let mut owed: Vec<u64> = ok.iter().map(|o| o.owed.unwrap()).collect();
        owed.sort_unstable();
        let expected: Vec<u64> = (1..=ok.len() as u64).map(|n| before + n * PRICE).collect();
        assert_eq!(owed, expected, "lane {lane}: owed is not exact");
        for refused in mine.iter().filter(|o| o.status != StatusCode::OK) {
            assert_eq!(
                (refused.status, refused.code),
                (StatusCode::CONFLICT, Some(ErrorCode::InvalidSeq)),
                "lane {lane}: {refused:?}"
            );
        }
        assert!(!ok.is_empty(), "lane {lane}: nothing accepted");
        accepted.push(Accepted {
            count: ok.len() as u64,
            max_seq: seqs.iter().copied().max().unwrap(),
        });
    }
    accepted
}

// Replicas in separate processes, on a bank lent over loopback.

/// The environment variable that makes this binary a replica.
pub const REPLICA_VAR: &str = "AMP_TEST_REPLICA";

/// Lines a replica writes for the parent start with this.
pub const LINE: &str = "AMP-REPLICA";

/// What a replica process is told (as JSON in `AMP_TEST_REPLICA`).
pub struct ReplicaConfig {
    pub label: String,
    pub bridge: String,
    pub store: String,
    /// The recipient's keypair, base58 of its 64 bytes.
    pub wallet: String,
    pub mint: String,
    pub fee_payer: String,
}

impl ReplicaConfig {
    pub fn to_json(&self) -> String {
        json!({
            "label": self.label, "bridge": self.bridge, "store": self.store,
            "wallet": self.wallet, "mint": self.mint, "fee_payer": self.fee_payer,
        })
        .to_string()
    }

    pub fn from_json(text: &str) -> Self {
        let value: Value = serde_json::from_str(text).unwrap();
        let field = |name: &str| value[name].as_str().unwrap().to_owned();
        Self {
            label: field("label"),
            bridge: field("bridge"),
            store: field("store"),
            wallet: field("wallet"),
            mint: field("mint"),
            fee_payer: field("fee_payer"),
        }
    }
}

pub async fn replica(config: ReplicaConfig) {
    let wallet =
        Keypair::try_from(bs58::decode(&config.wallet).into_vec().unwrap().as_slice()).unwrap();
    let chain: Arc<dyn Chain> = Arc::new(BridgeChain {
        url: config.bridge.clone(),
        label: config.label.clone(),
        fee_payer: config.fee_payer.parse().unwrap(),
        client: client(),
    });
    let store = Arc::new(
        PostgresStore::connect(&config.store, Durability::Full)
            .await
            .unwrap(),
    );
    let replica_id = store.replica_id();
    let paywall = Paywall::builder(chain, wallet)
        .mint(config.mint.parse().unwrap(), None)
        .price(Price {
            mode: PricingMode::PerCall,
            rate: PRICE,
        })
        .min_grace_period(GRACE)
        .settle(SettleConfig {
            // Every paid request makes its lane due: the settlers work all along.
            threshold: PRICE,
            interval: Duration::from_secs(3_600),
            tick: Duration::from_millis(50),
            retry_min: Duration::from_millis(50),
            retry_max: Duration::from_millis(500),
            ..SettleConfig::default()
        })
        .shared_store(store)
        .start()
        .await
        .unwrap();
    let app = Router::new()
        .route(
            "/v1/call",
            get(|Extension(p): Extension<Payment>| async move { format!("{} {}", p.seq, p.owed) }),
        )
        .layer(paywall.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    println!("{LINE} READY {addr} {replica_id}");
    // Serve until the parent says stop (or goes away).
    let (stop, stopped) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let _ = stop.send(());
    });
    let _ = stopped.await;
    server.abort();
    let status = paywall.shutdown().await.unwrap();
    println!("{LINE} STATUS {}", serde_json::to_string(&status).unwrap());
}

/// A replica process, killed when dropped.
pub struct Replica {
    pub label: String,
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub lines: mpsc::Receiver<String>,
    pub addr: SocketAddr,
    pub id: i64,
}

impl Replica {
    /// Starts a replica process: this binary, running only `entry_test`
    /// (the test that is the replica's body when `AMP_TEST_REPLICA` is set).
    pub fn spawn(config: &ReplicaConfig, entry_test: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([entry_test, "--exact", "--nocapture", "--test-threads=1"])
            .env(REPLICA_VAR, config.to_json())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The harness may have begun the line ("test … ... ").
                if let Some(at) = line.find(LINE) {
                    if sender
                        .send(line[at + LINE.len()..].trim().to_owned())
                        .is_err()
                    {
                        return;
                    }
                }
            }
        });
        // Waiting blocks this thread: let the runtime's other tasks (the
        // bridge the replica is calling) move elsewhere meanwhile.
        let ready = tokio::task::block_in_place(|| lines.recv_timeout(Duration::from_secs(60)))
            .unwrap_or_else(|_| panic!("{} did not start", config.label));
        let mut words = ready.split_whitespace();
        assert_eq!(words.next(), Some("READY"), "{ready}");
        let addr = words.next().unwrap().parse().unwrap();
        let id = words.next().unwrap().parse().unwrap();
        Self {
            label: config.label.clone(),
            stdin: child.stdin.take(),
            child,
            lines,
            addr,
            id,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGKILL: no shutdown, no settlement, no lease released.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// A clean stop: the replica settles what it leads and reports.
    pub fn stop(mut self) -> Value {
        let mut stdin = self.stdin.take().unwrap();
        writeln!(stdin, "stop").unwrap();
        drop(stdin);
        let line = tokio::task::block_in_place(|| self.lines.recv_timeout(Duration::from_secs(60)))
            .unwrap_or_else(|_| panic!("{} did not stop", self.label));
        let status = line
            .strip_prefix("STATUS ")
            .unwrap_or_else(|| panic!("{line}"));
        let status = serde_json::from_str(status).unwrap();
        assert!(self.child.wait().unwrap().success());
        status
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
