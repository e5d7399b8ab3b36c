//! Several server replicas on one PostgreSQL database (needs
//! `AMP_TEST_POSTGRES_URL`; without it each test says it was skipped).
//!
//! * `two_replicas_in_one_process`: two paywalls, each with its own store
//!   connection pool, on one embedded bank. Every credential is sent to
//!   both replicas at once: each seq is accepted once, owed is exact. A
//!   metered request in flight on one replica holds the lane's credit on the
//!   other. A cooperative close on one replica closes the lane for both.
//!   Both settlers settle at once: each lane is settled by exactly one of
//!   them, none is tried twice. A replica that dies holding a lane's
//!   settlement lease hands it over when the lease runs out.
//! * `replicas_in_separate_processes`: three real OS processes (this test
//!   binary run again, see `replica_process_entry`), each an axum server
//!   with the paywall layer and a PostgreSQL store. They cannot share the
//!   in-process embedded bank, so the parent owns it and lends it to them
//!   through a small HTTP bridge (`Chain` over loopback: accounts, clock,
//!   send). Hammered concurrently on the same lanes through two replicas
//!   per credential: no seq accepted twice, owed exact. Their settlers run
//!   during the hammering: while all live, no settlement is ever tried
//!   twice (the bridge sees every transaction). One replica is killed
//!   (SIGKILL) while it holds settlement leases, in the middle of a
//!   settlement the bridge holds up; the others take its lanes over once
//!   the lease runs out and settle everything: on-chain, every lane is
//!   settled to exactly what the database says is owed, and the recipient
//!   holds exactly the sum.

use crate::support::postgres;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::server::{builder, client, credential_headers, Server, PER_SECOND};
use amp_sdk::chain::{Chain, ChainError, TransactionFailure, TxSigner};
use amp_sdk::headers::Receipt;
use amp_sdk::manifest::{ErrorBody, ErrorCode, Price, PricingMode};
use amp_sdk::server::{Payment, Paywall, SettleConfig};
use amp_sdk::store::{self, Durability, LaneId, PostgresStore, VoucherStore};
use amp_tests::*;
use anchor_lang::prelude::Pubkey;
use async_trait::async_trait;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Router};
use base64::Engine;
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use solana_account::Account;
use solana_clock::Clock;
use solana_instruction::error::InstructionError;
use solana_instruction::{AccountMeta, Instruction};
use solana_keypair::Keypair;
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction_error::TransactionError;

/// Every paid request here costs this much (`per_call`).
const PRICE: u64 = 10;

// ---------------------------------------------------------------------------
// Hammering: pre-signed credentials, each sent to several replicas at once.

/// What one request came back with.
#[derive(Clone, Debug)]
struct Outcome {
    lane: usize,
    seq: u64,
    replica: usize,
    status: StatusCode,
    /// `AMP-Owed` of an accepted request.
    owed: Option<u64>,
    /// The error code of a refused one.
    code: Option<ErrorCode>,
}

/// Credentials `first..first + count` of each lane, each covering its seq × PRICE.
fn credentials(signer: &Keypair, lanes: &[Lane], first: u64, count: u64) -> Vec<Vec<HeaderMap>> {
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
async fn try_pay(
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

async fn pay(
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
async fn hammer_failover(
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
async fn hammer(
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
struct Accepted {
    /// Requests accepted (each charged PRICE).
    count: u64,
    /// The highest seq accepted: its voucher, which signs seq × PRICE, is
    /// the best one, and what settling the lane pays in all.
    max_seq: u64,
}

impl Accepted {
    fn signed(&self) -> u64 {
        self.max_seq * PRICE
    }
}

/// Checks a hammering: per lane, no seq accepted twice, the receipts of the
/// accepted requests are exactly PRICE, 2·PRICE, … (each saw all the
/// others), starting above `owed_before[lane]`, and every refusal is a seq
/// already overtaken.
fn check_exact(outcomes: &[Outcome], owed_before: &[u64]) -> Vec<Accepted> {
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

// ---------------------------------------------------------------------------
// Two replicas in one process.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_in_one_process() {
    let Some(scope) = postgres::Scope::new("two_replicas_in_one_process").await else {
        return;
    };
    let mut h = Harness::new(TokenKind::Token).await;
    let funder = h.party(10_000_000).await;
    let recipient = h.party(0).await;
    let mut lanes = Vec::new();
    for _ in 0..4 {
        lanes.push(h.open(&funder, &recipient, 100_000).await);
    }
    let credit_lane = h.open(&funder, &recipient, 100_000).await;
    let url = scope.url("amp_lease=1");
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let store = store::open(&url, Durability::Full).await.unwrap();
        let paywall = builder(&h, &recipient.wallet)
            .credit(1_000)
            .shared_store(store)
            .start()
            .await
            .unwrap();
        replicas.push(Server::start(paywall).await);
    }
    let b = replicas.pop().unwrap();
    let a = replicas.pop().unwrap();
    let client = client();
    let paid = [a.url("/v1/call"), b.url("/v1/call")];

    // Every credential to both replicas at once, four clients per lane.
    let work = credentials(&funder.wallet, &lanes, 1, 40);
    let outcomes = hammer(&client, &paid, 2, work, 1, 4).await;
    let accepted = check_exact(&outcomes, &[0; 4]);
    for (lane, accepted) in lanes.iter().zip(&accepted) {
        let id = LaneId {
            lane: lane.keys.channel,
            generation: lane.generation,
        };
        let state = b.paywall.store().lane(id).await.unwrap().unwrap();
        assert_eq!(
            state.owed,
            accepted.count * PRICE,
            "the store agrees with the receipts"
        );
        assert_eq!(
            state.signed(),
            accepted.signed(),
            "the best voucher is kept"
        );
    }

    // A metered request in flight on A holds the lane's credit; B sees it.
    let slow = {
        let headers = credential_headers(&funder.wallet, &credit_lane.voucher(1, 0));
        let (client, url) = (client.clone(), a.url("/v1/slow?ms=700"));
        tokio::spawn(async move { pay(&client, &url, headers).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let headers = credential_headers(&funder.wallet, &credit_lane.voucher(2, 0));
    let (status, _, code) = pay(&client, &b.url("/v1/tokens?units=1"), headers).await;
    assert_eq!(
        (status, code),
        (StatusCode::PAYMENT_REQUIRED, Some(ErrorCode::Underfunded)),
        "the credit is held by the request in flight on the other replica"
    );
    assert_eq!(slow.await.unwrap().0, StatusCode::OK);
    let credit_id = LaneId {
        lane: credit_lane.keys.channel,
        generation: credit_lane.generation,
    };
    let mut owed = 0;
    for _ in 0..100 {
        let state = b.paywall.store().lane(credit_id).await.unwrap().unwrap();
        if state.reserved == 0 && state.owed > 0 {
            owed = state.owed;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        owed >= 700 * PER_SECOND.rate / 1_000,
        "charged {owed} for 700 ms"
    );
    let headers = credential_headers(&funder.wallet, &credit_lane.voucher(3, owed));
    let (status, _, _) = pay(&client, &b.url("/v1/tokens?units=1"), headers).await;
    assert_eq!(status, StatusCode::OK, "released when it finished");

    // A cooperative close on B closes the lane for A too.
    let closing = lanes[2];
    let owed_closing = accepted[2].count * PRICE;
    let headers = credential_headers(&funder.wallet, &closing.voucher(1_000, owed_closing));
    let close = client
        .post(b.url(amp_sdk::manifest::CLOSE_PATH))
        .headers(headers)
        .send()
        .await
        .unwrap();
    assert_eq!(
        close.status(),
        StatusCode::OK,
        "{}",
        close.text().await.unwrap()
    );
    let headers = credential_headers(
        &funder.wallet,
        &closing.voucher(1_001, owed_closing + PRICE),
    );
    let (status, _, code) = pay(&client, &a.url("/v1/call"), headers).await;
    assert_eq!((status, code), (StatusCode::GONE, Some(ErrorCode::Closed)));

    // Both settlers at once: every unsettled lane settled by exactly one.
    let (sa, sb) = tokio::join!(a.paywall.settle_now(), b.paywall.settle_now());
    assert_eq!(sa.lanes_settled + sb.lanes_settled, 4, "{sa:?} {sb:?}");
    assert_eq!(sa.already_settled + sb.already_settled, 0, "{sa:?} {sb:?}");
    assert_eq!(sa.failures + sb.failures, 0, "{sa:?} {sb:?}");
    for (i, lane) in lanes.iter().enumerate() {
        let channel = h.channel(&lane.keys.channel).await;
        if i == 2 {
            assert!(channel.is_none(), "closed cooperatively");
        } else {
            assert_eq!(channel.unwrap().settled, accepted[i].signed());
        }
    }

    // A replica that dies leading a lane: the other takes it over once the
    // lease runs out.
    let taken = lanes[0];
    let more = credentials(&funder.wallet, &[taken], 100, 3);
    for headers in more.into_iter().flatten() {
        assert_eq!(
            pay(&client, &a.url("/v1/call"), headers).await.0,
            StatusCode::OK
        );
    }
    let taken_id = LaneId {
        lane: taken.keys.channel,
        generation: taken.generation,
    };
    assert_eq!(
        a.paywall.store().claim(&[taken_id]).await.unwrap(),
        vec![taken_id]
    );
    a.crash().await;
    let died = Instant::now();
    let status = b.paywall.settle_now().await;
    assert_eq!(status.lanes_settled, sb.lanes_settled, "still A's lane");
    let signed_taken = 102 * PRICE;
    assert_eq!(
        h.channel(&taken.keys.channel).await.unwrap().settled,
        accepted[0].signed()
    );
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let status = b.paywall.settle_now().await;
        if status.lanes_settled > sb.lanes_settled {
            break;
        }
        assert!(
            died.elapsed() < Duration::from_secs(20),
            "never taken over: {status:?}"
        );
    }
    assert!(
        died.elapsed() >= Duration::from_millis(500),
        "taken over before the lease ran out"
    );
    assert_eq!(
        h.channel(&taken.keys.channel).await.unwrap().settled,
        signed_taken
    );

    let status = b.stop().await;
    assert_eq!(status.pending_lanes, 0, "{status:?}");
    // The closed lane paid its best voucher, which covers what it owed.
    assert!(accepted[2].signed() >= owed_closing);
    let mut total = signed_taken + accepted[2].signed() + owed;
    for i in [1, 3] {
        total += accepted[i].signed();
    }
    assert_eq!(h.tokens(&recipient.token).await, total);
    h.assert_conserved().await;
    scope.drop().await;
}

// ---------------------------------------------------------------------------
// Replicas in separate processes, on a bank lent over loopback.

/// The environment variable that makes this binary a replica.
const REPLICA_VAR: &str = "AMP_TEST_REPLICA";
/// Lines a replica writes for the parent start with this.
const LINE: &str = "AMP-REPLICA";

/// What a replica process is told (as JSON in `AMP_TEST_REPLICA`).
struct ReplicaConfig {
    label: String,
    bridge: String,
    store: String,
    /// The recipient's keypair, base58 of its 64 bytes.
    wallet: String,
    mint: String,
    fee_payer: String,
}

impl ReplicaConfig {
    fn to_json(&self) -> String {
        json!({
            "label": self.label, "bridge": self.bridge, "store": self.store,
            "wallet": self.wallet, "mint": self.mint, "fee_payer": self.fee_payer,
        })
        .to_string()
    }

    fn from_json(text: &str) -> Self {
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

/// The body of a replica process: not a test by itself (it returns at
/// once unless `replicas_in_separate_processes` started this binary with
/// `AMP_TEST_REPLICA`).
#[test]
fn replica_process_entry() {
    let Ok(config) = std::env::var(REPLICA_VAR) else {
        return;
    };
    let config = ReplicaConfig::from_json(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(replica(config));
}

async fn replica(config: ReplicaConfig) {
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

/// `replica_process_entry` as the harness names it: by its module path,
/// without the crate's name.
fn replica_entry_test() -> String {
    let module = module_path!().split_once("::").map_or("", |(_, path)| path);
    format!("{module}::replica_process_entry")
}

/// A replica process, killed when dropped.
struct Replica {
    label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    addr: SocketAddr,
    id: i64,
}

impl Replica {
    fn spawn(config: &ReplicaConfig) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                replica_entry_test().as_str(),
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
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

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGKILL: no shutdown, no settlement, no lease released.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// A clean stop: the replica settles what it leads and reports.
    fn stop(mut self) -> Value {
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

/// A settlement transaction the bridge saw.
#[derive(Clone, Debug)]
struct Sent {
    replica: String,
    /// The lanes its AMP instructions settle.
    lanes: Vec<Pubkey>,
    landed: bool,
    stale: bool,
    started: Instant,
}

/// The parent's bank, lent to the replicas over HTTP on loopback.
struct Bridge {
    bank: amp_sdk::embedded::EmbeddedBank,
    signers: HashMap<Pubkey, Keypair>,
    /// Milliseconds every transaction is held before it is processed.
    delay_ms: AtomicU64,
    sent: Mutex<Vec<Sent>>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

fn wire_instruction(ix: &Instruction) -> Value {
    json!({
        "program": ix.program_id.to_string(),
        "accounts": ix.accounts.iter()
            .map(|m| json!([m.pubkey.to_string(), m.is_signer, m.is_writable]))
            .collect::<Vec<_>>(),
        "data": b64(&ix.data),
    })
}

fn unwire_instruction(value: &Value) -> Instruction {
    let key = |v: &Value| -> Pubkey { v.as_str().unwrap().parse().unwrap() };
    Instruction {
        program_id: key(&value["program"]),
        accounts: value["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| AccountMeta {
                pubkey: key(&m[0]),
                is_signer: m[1].as_bool().unwrap(),
                is_writable: m[2].as_bool().unwrap(),
            })
            .collect(),
        data: unb64(value["data"].as_str().unwrap()),
    }
}

async fn bridge_account(State(bridge): State<Arc<Bridge>>, body: String) -> String {
    let request: Value = serde_json::from_str(&body).unwrap();
    let address: Pubkey = request["address"].as_str().unwrap().parse().unwrap();
    let account = Chain::account(&bridge.bank, &address).await.unwrap();
    let answer = match account {
        None => Value::Null,
        Some(a) => json!({
            "lamports": a.lamports,
            "owner": a.owner.to_string(),
            "executable": a.executable,
            "rent_epoch": a.rent_epoch,
            "data": b64(&a.data),
        }),
    };
    answer.to_string()
}

async fn bridge_clock(State(bridge): State<Arc<Bridge>>) -> String {
    let clock = Chain::clock(&bridge.bank).await.unwrap();
    json!([
        clock.slot,
        clock.epoch_start_timestamp,
        clock.epoch,
        clock.leader_schedule_epoch,
        clock.unix_timestamp
    ])
    .to_string()
}

async fn bridge_send(
    State(bridge): State<Arc<Bridge>>,
    headers: HeaderMap,
    body: String,
) -> String {
    let request: Value = serde_json::from_str(&body).unwrap();
    let started = Instant::now();
    let delay = bridge.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let instructions: Vec<Instruction> = request["instructions"]
        .as_array()
        .unwrap()
        .iter()
        .map(unwire_instruction)
        .collect();
    let signers: Vec<&TxSigner> = request["signers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let key: Pubkey = k.as_str().unwrap().parse().unwrap();
            &bridge.signers[&key] as &TxSigner
        })
        .collect();
    let result = Chain::send(&bridge.bank, &instructions, &signers).await;
    let lanes: Vec<Pubkey> = instructions
        .iter()
        .filter(|i| i.program_id == amp_channel::ID)
        .filter_map(|i| i.accounts.first().map(|m| m.pubkey))
        .collect();
    let replica = headers
        .get("x-amp-replica")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?")
        .to_owned();
    bridge.sent.lock().unwrap().push(Sent {
        replica,
        lanes,
        landed: result.is_ok(),
        stale: result
            .as_ref()
            .is_err_and(|e| e.is_amp_error(amp_channel::error::AmpError::StaleVoucher)),
        started,
    });
    let answer = match result {
        Ok(signature) => json!({ "signature": signature.to_string() }),
        Err(ChainError::Transaction(failure)) => {
            let (index, custom) = match &failure.error {
                TransactionError::InstructionError(index, InstructionError::Custom(code)) => {
                    (Some(*index), Some(*code))
                }
                _ => (None, None),
            };
            json!({
                "failed": failure.signature.to_string(),
                "program": failure.program.map(|p| p.to_string()),
                "index": index,
                "custom": custom,
                "message": failure.error.to_string(),
            })
        }
        Err(other) => json!({ "error": other.to_string() }),
    };
    answer.to_string()
}

/// Serves the bridge on loopback; returns its base URL.
async fn serve_bridge(bridge: Arc<Bridge>) -> String {
    let app = Router::new()
        .route("/account", post(bridge_account))
        .route("/clock", get(bridge_clock))
        .route("/send", post(bridge_send))
        .with_state(bridge);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A replica's chain: the parent's bank, through the bridge.
struct BridgeChain {
    url: String,
    label: String,
    fee_payer: Pubkey,
    client: reqwest::Client,
}

impl BridgeChain {
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, ChainError> {
        let unreachable = |e: reqwest::Error| ChainError::Unreachable {
            endpoint: self.url.clone(),
            reason: e.to_string(),
        };
        request
            .header("x-amp-replica", &self.label)
            .send()
            .await
            .map_err(unreachable)?
            .json()
            .await
            .map_err(unreachable)
    }
}

#[async_trait]
impl Chain for BridgeChain {
    fn fee_payer(&self) -> Pubkey {
        self.fee_payer
    }

    async fn account(&self, address: &Pubkey) -> Result<Option<Account>, ChainError> {
        let url = format!("{}/account", self.url);
        let value = self
            .call(
                self.client
                    .post(url)
                    .json(&json!({ "address": address.to_string() })),
            )
            .await?;
        if value.is_null() {
            return Ok(None);
        }
        Ok(Some(Account {
            lamports: value["lamports"].as_u64().unwrap(),
            data: unb64(value["data"].as_str().unwrap()),
            owner: value["owner"].as_str().unwrap().parse().unwrap(),
            executable: value["executable"].as_bool().unwrap(),
            rent_epoch: value["rent_epoch"].as_u64().unwrap(),
        }))
    }

    async fn clock(&self) -> Result<Clock, ChainError> {
        let value = self
            .call(self.client.get(format!("{}/clock", self.url)))
            .await?;
        Ok(Clock {
            slot: value[0].as_u64().unwrap(),
            epoch_start_timestamp: value[1].as_i64().unwrap(),
            epoch: value[2].as_u64().unwrap(),
            leader_schedule_epoch: value[3].as_u64().unwrap(),
            unix_timestamp: value[4].as_i64().unwrap(),
        })
    }

    async fn send(
        &self,
        instructions: &[Instruction],
        signers: &[&TxSigner],
    ) -> Result<Signature, ChainError> {
        let request = json!({
            "instructions": instructions.iter().map(wire_instruction).collect::<Vec<_>>(),
            "signers": signers.iter().map(|s| s.pubkey().to_string()).collect::<Vec<_>>(),
        });
        let url = format!("{}/send", self.url);
        let value = self.call(self.client.post(url).json(&request)).await?;
        if let Some(signature) = value["signature"].as_str() {
            return Ok(signature.parse().unwrap());
        }
        if let Some(signature) = value["failed"].as_str() {
            let error = match (value["index"].as_u64(), value["custom"].as_u64()) {
                (Some(index), Some(code)) => TransactionError::InstructionError(
                    index as u8,
                    InstructionError::Custom(code as u32),
                ),
                _ => return Err(ChainError::Bank(value["message"].to_string())),
            };
            return Err(ChainError::Transaction(Box::new(TransactionFailure {
                signature: signature.parse().unwrap(),
                error,
                program: value["program"].as_str().map(|p| p.parse().unwrap()),
                logs: Vec::new(),
            })));
        }
        Err(ChainError::Bank(value["error"].to_string()))
    }
}

/// Waits (bounded) for `check`, polling.
async fn wait_for(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_in_separate_processes() {
    let Some(scope) = postgres::Scope::new("replicas_in_separate_processes").await else {
        return;
    };
    const LANES: usize = 6;
    let mut h = Harness::new(TokenKind::Token).await;
    let funder = h.party(100_000_000).await;
    let recipient = h.party(0).await;
    let mut lanes = Vec::new();
    for _ in 0..LANES {
        lanes.push(h.open(&funder, &recipient, 1_000_000).await);
    }
    let bridge = Arc::new(Bridge {
        bank: h.bank.clone(),
        signers: HashMap::from([(recipient.key(), recipient.wallet.insecure_clone())]),
        delay_ms: AtomicU64::new(0),
        sent: Mutex::new(Vec::new()),
    });
    let bridge_url = serve_bridge(Arc::clone(&bridge)).await;
    // A three-second settlement lease: a takeover is quick to see, and a
    // live settler on a loaded machine (settlements held 600 ms at the
    // bridge in phase 2) stays well inside it.
    let store_url = scope.url("amp_lease=3&amp_pool_size=4");
    let config = |label: &str| ReplicaConfig {
        label: label.to_owned(),
        bridge: bridge_url.clone(),
        store: store_url.clone(),
        wallet: bs58::encode(recipient.wallet.to_bytes()).into_string(),
        mint: h.mint.to_string(),
        fee_payer: Chain::fee_payer(&h.bank).to_string(),
    };
    // Started one after the other: the first applies the migrations.
    let mut a = Replica::spawn(&config("A"));
    let b = Replica::spawn(&config("B"));
    let c = Replica::spawn(&config("C"));
    let client = client();

    // Phase 1: every replica alive; each credential to two of them at once;
    // the settlers settle as lanes pass the threshold, during the hammering.
    let urls: Vec<String> = [&a, &b, &c].iter().map(|r| r.url("/v1/call")).collect();
    let work = credentials(&funder.wallet, &lanes, 1, 40);
    let outcomes = hammer(&client, &urls, 2, work, 1, 4).await;
    let accepted = check_exact(&outcomes, &[0; LANES]);
    for replica in 0..3 {
        assert!(
            outcomes
                .iter()
                .any(|o| o.replica == replica && o.status == StatusCode::OK),
            "replica {replica} accepted nothing"
        );
    }
    // Let the settlers catch up, then look at what they did.
    wait_for("phase 1 settled", Duration::from_secs(30), async || {
        let mut done = true;
        for (i, lane) in lanes.iter().enumerate() {
            let settled = h.channel(&lane.keys.channel).await.unwrap().settled;
            done &= settled == accepted[i].signed();
        }
        done
    })
    .await;
    let phase1: Vec<Sent> = bridge.sent.lock().unwrap().clone();
    assert!(
        phase1.iter().all(|s| s.landed),
        "while all live, no settlement is tried twice: {phase1:?}"
    );
    let settlers: HashSet<&str> = phase1.iter().map(|s| s.replica.as_str()).collect();
    println!(
        "phase 1: {} settlement transactions by {settlers:?}",
        phase1.len()
    );

    // Phase 2: settlements held up at the bridge (for less than the lease,
    // so that no lease runs out under a live settler); traffic to A, whose
    // settler each charge wakes; A is killed once it holds a lease in the
    // middle of a settlement, and its clients move to B.
    bridge.delay_ms.store(600, Ordering::Relaxed);
    let traffic = {
        let work = credentials(&funder.wallet, &lanes, 41, 100);
        let (client, primary, fallback) = (client.clone(), a.url("/v1/call"), b.url("/v1/call"));
        tokio::spawn(async move { hammer_failover(&client, primary, fallback, work, 41).await })
    };
    let holding = format!(
        "SELECT lane FROM amp_lanes WHERE settler = {} AND settler_until > now()",
        a.id
    );
    let mut held: Vec<Pubkey> = Vec::new();
    tokio::time::sleep(Duration::from_millis(300)).await;
    wait_for(
        "A leading a settlement",
        Duration::from_secs(30),
        async || {
            held = scope
                .query(&holding)
                .await
                .iter()
                .map(|r| Pubkey::try_from(r.get::<_, &[u8]>(0)).unwrap())
                .collect();
            !held.is_empty()
        },
    )
    .await;
    let in_flight = bridge.sent.lock().unwrap().len();
    a.kill();
    let killed = Instant::now();
    println!("phase 2: A killed holding {} lane lease(s)", held.len());
    bridge.delay_ms.store(0, Ordering::Relaxed);
    let (outcomes2, retried) = traffic.await.unwrap();
    println!("phase 2: {retried} credential(s) retried on B after A died");
    assert!(
        outcomes2.iter().any(|o| o.replica == 1),
        "B took A's clients over"
    );
    let owed_before: Vec<u64> = accepted.iter().map(|a| a.count * PRICE).collect();
    let accepted2 = check_exact(&outcomes2, &owed_before);
    // Phase 3: more value on every lane after the kill, through C alone:
    // only the survivors can settle it.
    let owed_before: Vec<u64> = accepted
        .iter()
        .zip(&accepted2)
        .map(|(x, y)| (x.count + y.count) * PRICE)
        .collect();
    let work = credentials(&funder.wallet, &lanes, 201, 5);
    let outcomes3 = hammer(&client, &[c.url("/v1/call")], 1, work, 201, 1).await;
    let accepted3 = check_exact(&outcomes3, &owed_before);
    let owed: Vec<u64> = owed_before
        .iter()
        .zip(&accepted3)
        .map(|(o, n)| o + n.count * PRICE)
        .collect();
    // Sent one at a time, the last seq of phase 3 is the best voucher.
    let signed: Vec<u64> = accepted3.iter().map(Accepted::signed).collect();
    assert!(signed.iter().all(|s| *s == 205 * PRICE));

    // B and C take A's lanes over once its lease runs out, and settle
    // everything; the database agrees (a replica records a settlement once
    // it has landed, so it may trail the chain by a moment).
    wait_for(
        "everything settled, on-chain and in the database",
        Duration::from_secs(60),
        async || {
            let mut done = true;
            for (i, lane) in lanes.iter().enumerate() {
                done &= h.channel(&lane.keys.channel).await.unwrap().settled == signed[i];
            }
            let unsettled = scope
                .query("SELECT count(*) FROM amp_lanes WHERE unsettled <> 0 OR settled <> 205 * 10")
                .await[0]
                .get::<_, i64>(0);
            done && unsettled == 0
        },
    )
    .await;
    let db_owed: Vec<i64> = scope
        .query("SELECT owed FROM amp_lanes ORDER BY owed")
        .await
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut expected: Vec<i64> = owed.iter().map(|o| *o as i64).collect();
    expected.sort_unstable();
    assert_eq!(db_owed, expected, "owed is exact in the database");

    let sent = bridge.sent.lock().unwrap().clone();
    let after: Vec<&Sent> = sent[in_flight..].iter().collect();
    let stale = sent.iter().filter(|s| s.stale).count();
    assert!(
        sent.iter().all(|s| s.landed || s.stale),
        "only a duplicate of the dead replica's settlement may fail: {sent:?}"
    );
    assert!(
        stale <= held.len(),
        "{stale} duplicates for {} lanes taken over",
        held.len()
    );
    for lane in &held {
        assert!(
            after.iter().any(|s| s.landed
                && s.replica != "A"
                && s.started >= killed
                && s.lanes.contains(lane)),
            "lane {lane} of the dead replica was taken over: {after:?}"
        );
    }

    let status_b = b.stop();
    let status_c = c.stop();
    for status in [&status_b, &status_c] {
        assert_eq!(status["pending_lanes"], 0, "{status}");
    }
    let settled_total: u64 = signed.iter().sum();
    assert_eq!(h.tokens(&recipient.token).await, settled_total);
    h.assert_conserved().await;
    let left = scope.query("SELECT count(*) FROM amp_replicas").await[0].get::<_, i64>(0);
    assert_eq!(left, 1, "B and C left cleanly; only the killed A remains");
    println!(
        "replicas: {} settlement transactions in all, {stale} duplicate(s); B {} C {}",
        sent.len(),
        status_b["lanes_settled"],
        status_c["lanes_settled"]
    );
    scope.drop().await;
}
