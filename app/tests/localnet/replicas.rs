//! Three `amp serve` replicas on one PostgreSQL database (needs
//! `AMP_TEST_POSTGRES_URL`; without it the test says it was skipped), each a
//! process on `RpcChain` against one `amp localnet`, in front of one
//! upstream, all paid to the same recipient wallet.
//!
//! * Hammered concurrently on the same lanes, each credential sent to two
//!   replicas at once: no seq is accepted twice, owed is exact. Their
//!   settlers settle during the hammering (every charge makes a lane due).
//! * No settlement is ever tried twice, as the node and the replicas tell:
//!   no transaction on any lane failed, the node refused no preflight, no
//!   transaction was sent by two replicas (each logs what it sends), every
//!   settlement on-chain was sent by one of them, each lane's settled
//!   vouchers only go up, and while all live no settler found a lane already
//!   settled or failed.
//! * Replica A is killed (SIGKILL) in the middle of a settlement: holding
//!   settlement leases, its transaction sent and not yet confirmed (the node
//!   lands every transaction a second late). The others leave its lanes
//!   alone while the lease lasts, then take them over and settle everything:
//!   on-chain every lane is settled to exactly the voucher the database
//!   holds, the database's owed is exact, and the recipient holds exactly
//!   the sum (so do the settlements in the node's history).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amp_sdk::chain::Chain;
use amp_sdk::headers::{Credential, Receipt};
use amp_sdk::manifest::{ErrorBody, ErrorCode, STATUS_PATH};
use amp_sdk::rpc::{Cluster, RpcChain};
use amp_sdk::voucher::{Voucher, VOUCHER_LEN};
use anchor_lang::prelude::Pubkey;
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use solana_keypair::Keypair;

use super::postgres::Scope;
use super::service::{upstream, Serve, PRICE};
use super::support::Localnet;

const USDC: u64 = 1_000_000;
const LANES: usize = 6;
/// Each lane's deposit (1 token: 1,000 calls).
const DEPOSIT: u64 = USDC;
/// The settlement lease and replica heartbeat (`amp_lease`), in seconds:
/// far longer than a settlement pass of a live replica, so that no live
/// settler ever loses a lease, and short enough to see a takeover.
const LEASE: u64 = 10;
/// Every sent transaction lands this late: a settlement is in flight for
/// over a second, time enough to kill a replica in the middle of one.
const CONFIRM_DELAY_MS: &str = "1000";
/// `amp`'s own default filter.
const QUIET: &str =
    "warn,tarpc=error,solana_metrics=error,solana_runtime=error,solana_accounts_db=error";
/// The seqs (first, count) of the three phases: all replicas, A failing
/// over to B, C alone.
const PHASE_1: (u64, u64) = (1, 200);
const PHASE_2: (u64, u64) = (201, 150);
const PHASE_3: (u64, u64) = (401, 5);
/// The best voucher of every lane at the end (phase 3 is sent in order).
const LAST_SEQ: u64 = PHASE_3.0 + PHASE_3.1 - 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_postgres_survive_a_kill_mid_settlement() {
    let started = Instant::now();
    let Some(scope) = Scope::new("replicas_on_postgres_survive_a_kill_mid_settlement").await else {
        return;
    };
    // The node logs each preflight it refuses (a settlement tried twice
    // would be one).
    let node = Localnet::start_with_env(
        &["--fault-confirm-delay-ms", CONFIRM_DELAY_MS],
        &[
            ("RUST_LOG", &format!("{QUIET},amp_localnet=debug")),
            ("NO_COLOR", "1"),
        ],
    )
    .await;
    let funder = node.fund("agent.json", "100").await;
    let recipient = node.fund("service.json", "0").await;
    let agent = amp_sdk::keypair::read(node.path("agent.json")).unwrap();

    // The lanes: `amp open` processes, all at once.
    let recipient_arg = recipient.to_string();
    let mint_arg = node.mint.to_string();
    let deposit = (DEPOSIT / USDC).to_string();
    let open = [
        "open",
        "--recipient",
        &recipient_arg,
        "--mint",
        &mint_arg,
        "--amount",
        &deposit,
    ];
    let opened =
        futures_util::future::join_all((0..LANES).map(|_| node.json("agent.json", &open))).await;
    let lanes: Vec<Lane> = opened
        .iter()
        .map(|report| Lane {
            channel: address(&report["channel"]),
            vault: address(&report["vault"]),
            generation: report["generation"].as_u64().unwrap(),
        })
        .collect();
    assert_eq!(
        lanes
            .iter()
            .map(|l| l.channel)
            .collect::<HashSet<_>>()
            .len(),
        LANES
    );

    // Three replicas, started one after the other (the first applies the
    // migrations); each logs the transactions it sends and settles.
    let config = node.path("replicas.toml");
    let store = scope.url(&format!("amp_lease={LEASE}&amp_pool_size=4"));
    std::fs::write(&config, prices(&node, &store)).unwrap();
    let upstream = upstream().await;
    let log = format!("{QUIET},amp_sdk::rpc=debug,amp_sdk::server::settle=info");
    let env = [("RUST_LOG", log.as_str()), ("NO_COLOR", "1")];
    let mut a = Serve::start_with_env(&node, upstream, config.clone(), "replica A", &env).await;
    let b = Serve::start_with_env(&node, upstream, config.clone(), "replica B", &env).await;
    let c = Serve::start_with_env(&node, upstream, config, "replica C", &env).await;
    let a_id: i64 = scope
        .query(&format!(
            "SELECT id FROM amp_replicas WHERE label = 'pid {}'",
            a.process.pid()
        ))
        .await[0]
        .get(0);
    let client = client();
    let paid = |serve: &Serve| format!("{}/v1/hello", serve.url);
    println!("replicas up after {:?}", started.elapsed());

    // Phase 1: every replica alive; each credential to two of them at once;
    // the settlers settle as lanes pass the threshold, during the hammering.
    let urls = vec![paid(&a), paid(&b), paid(&c)];
    let work = credentials(&agent, &lanes, PHASE_1.0, PHASE_1.1);
    let hammering = Instant::now();
    let outcomes = hammer(&client, &urls, 2, work, PHASE_1.0, 4).await;
    println!("phase 1: hammered in {:?}", hammering.elapsed());
    let accepted1 = check_exact(&outcomes, &[0; LANES]);
    for replica in 0..3 {
        assert!(
            outcomes
                .iter()
                .any(|o| o.replica == replica && o.status == StatusCode::OK),
            "replica {replica} accepted nothing"
        );
    }
    let during: u64 = settled(&node, &lanes).await.iter().sum();
    assert!(during > 0, "the settlers settled during the hammering");
    let signed1: Vec<u64> = accepted1.iter().map(Accepted::signed).collect();
    eventually(
        "phase 1 settled on-chain",
        Duration::from_secs(60),
        async || settled(&node, &lanes).await == signed1,
    )
    .await;
    for (name, serve) in [("A", &a), ("B", &b), ("C", &c)] {
        let status = settler_status(&client, serve).await;
        assert_eq!(
            (status["failures"].as_u64(), status["already_settled"].as_u64()),
            (Some(0), Some(0)),
            "while all live, replica {name} neither failed nor found a lane settled by another: {status}"
        );
    }
    let logs = [a.process.stderr(), b.process.stderr(), c.process.stderr()];
    let phase1 = audit(&node, &lanes, &recipient, &logs).await;
    assert_eq!(phase1.paid, signed1.iter().sum::<u64>());
    println!(
        "phase 1 ({:?}): {} settlement transactions, by A/B/C {:?}; {during} of {} settled \
         during the hammering",
        started.elapsed(),
        phase1.transactions,
        phase1.by_replica,
        phase1.paid
    );

    // Phase 2: traffic to A, whose settler each charge wakes (B's and C's
    // settlers compete for the same lanes); A is killed once it holds
    // settlement leases with a settlement sent and not yet confirmed, and
    // its clients move to B.
    let sent_before = sent(&a.process.stderr()).len();
    let traffic = {
        let work = credentials(&agent, &lanes, PHASE_2.0, PHASE_2.1);
        let (client, primary, fallback) = (client.clone(), paid(&a), paid(&b));
        tokio::spawn(
            async move { hammer_failover(&client, primary, fallback, work, PHASE_2.0).await },
        )
    };
    let holding = format!(
        "SELECT lane, EXTRACT(EPOCH FROM settler_until - now())::float8 FROM amp_lanes \
         WHERE settler = {a_id} AND settler_until > now()"
    );
    let in_flight = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = a.process.stderr();
            let confirmed = confirmed(&log);
            let pending = sent(&log)
                .into_iter()
                .skip(sent_before)
                .find(|s| !confirmed.contains(s));
            if let Some(signature) = pending {
                if !scope.query(&holding).await.is_empty() {
                    break signature;
                }
            }
            assert!(
                Instant::now() < deadline && !traffic.is_finished(),
                "replica A never settled during phase 2\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    a.process.kill9();
    let killed = Instant::now();
    let held: Vec<(Pubkey, f64)> = scope
        .query(&holding)
        .await
        .iter()
        .map(|row| (pubkey(row.get(0)), row.get(1)))
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !held.is_empty(),
        "A was killed holding settlement leases (they outlive it)"
    );
    assert!(
        !confirmed(&a.process.stderr()).contains(&in_flight),
        "A was killed before its settlement {in_flight} confirmed"
    );
    println!(
        "phase 2 ({:?}): A killed holding {} lane lease(s), its settlement {in_flight} in flight",
        started.elapsed(),
        held.len()
    );

    // While the dead replica's lease lasts, its lanes are left alone (once
    // its last transaction has landed); after, they are taken over.
    let lease_end =
        killed + Duration::from_secs_f64(held.iter().map(|h| h.1).fold(f64::MAX, f64::min));
    let held_lanes: Vec<Lane> = held
        .iter()
        .map(|(lane, _)| *lanes.iter().find(|l| l.channel == *lane).unwrap())
        .collect();
    tokio::time::sleep_until((killed + Duration::from_millis(2_500)).into()).await;
    let at_death = settled(&node, &held_lanes).await;
    if Instant::now() + Duration::from_secs(1) < lease_end {
        tokio::time::sleep_until((lease_end - Duration::from_millis(500)).into()).await;
        assert_eq!(
            settled(&node, &held_lanes).await,
            at_death,
            "a live replica settled a lane whose lease the dead one still held"
        );
    } else {
        println!("phase 2: too little lease left to watch it");
    }
    let (outcomes2, retried) = tokio::time::timeout(Duration::from_secs(120), traffic)
        .await
        .expect("phase 2 traffic within 2 minutes")
        .unwrap();
    println!("phase 2: {retried} credential(s) retried on B after A died");
    assert!(
        outcomes2.iter().any(|o| o.replica == 1),
        "B took A's clients over"
    );
    let owed1: Vec<u64> = accepted1.iter().map(|a| a.count * PRICE).collect();
    let accepted2 = check_exact(&outcomes2, &owed1);

    // Phase 3: more value on every lane after the kill, through C alone:
    // only the survivors can settle it.
    let owed2: Vec<u64> = owed1
        .iter()
        .zip(&accepted2)
        .map(|(o, a)| o + a.count * PRICE)
        .collect();
    let work = credentials(&agent, &lanes, PHASE_3.0, PHASE_3.1);
    let outcomes3 = hammer(&client, &[paid(&c)], 1, work, PHASE_3.0, 1).await;
    let accepted3 = check_exact(&outcomes3, &owed2);
    let owed: Vec<u64> = owed2
        .iter()
        .zip(&accepted3)
        .map(|(o, a)| o + a.count * PRICE)
        .collect();
    assert!(accepted3.iter().all(|a| a.max_seq == LAST_SEQ));
    let last = LAST_SEQ * PRICE;

    // B and C settle everything, A's lanes included; the database agrees (a
    // replica records a settlement once it has landed, so it may trail the
    // chain by a moment).
    eventually(
        "everything settled, on-chain and in the database",
        Duration::from_secs(90),
        async || {
            let unsettled = scope
                .query(&format!(
                    "SELECT count(*) FROM amp_lanes WHERE unsettled <> 0 OR settled <> {last}"
                ))
                .await[0]
                .get::<_, i64>(0);
            unsettled == 0 && settled(&node, &lanes).await == vec![last; LANES]
        },
    )
    .await;
    println!(
        "everything settled {:?} after the kill ({:?} in all)",
        killed.elapsed(),
        started.elapsed()
    );
    let rows = scope
        .query("SELECT lane, owed, settled, voucher FROM amp_lanes")
        .await;
    assert_eq!(rows.len(), LANES);
    for row in rows {
        let lane = pubkey(row.get(0));
        let i = lanes.iter().position(|l| l.channel == lane).unwrap();
        assert_eq!(
            row.get::<_, i64>(1) as u64,
            owed[i],
            "lane {i}: owed is exact in the database"
        );
        assert_eq!(
            row.get::<_, i64>(2) as u64,
            last,
            "lane {i}: settled in the database"
        );
        let best = amp_sdk::voucher::decode(row.get::<_, &[u8]>(3)).unwrap();
        assert_eq!(
            (best.seq, best.cumulative),
            (LAST_SEQ, last),
            "lane {i}: on-chain settled to the database's best voucher"
        );
    }

    // B and C stop cleanly with nothing pending; only the dead A is left
    // registered.
    let mut logs = vec![a.process.stderr()];
    for serve in [b, c] {
        let (report, stderr) = serve.stop_logged().await;
        assert!(report.contains("; 0 pending"), "{report}");
        logs.push(stderr);
    }
    let left = scope.query("SELECT count(*) FROM amp_replicas").await[0].get::<_, i64>(0);
    assert_eq!(left, 1, "B and C left cleanly; only the killed A remains");

    // The node's history: no settlement tried twice; what it paid is what
    // the recipient holds, and every token is where it should be.
    let logs: [String; 3] = logs.try_into().unwrap();
    let total = last * LANES as u64;
    let all = audit(&node, &lanes, &recipient, &logs).await;
    assert_eq!(
        all.paid, total,
        "the settlements in the history paid it all"
    );
    assert_eq!(node.tokens(&recipient).await, total);
    for lane in &lanes {
        assert_eq!(node.token_account(&lane.vault).await, DEPOSIT - last);
    }
    assert_eq!(
        node.tokens(&funder).await,
        100 * USDC - LANES as u64 * DEPOSIT
    );
    for lane in &held_lanes {
        assert!(
            all.last_by[&lane.channel] != 0,
            "lane {} of the dead replica was settled last by a survivor",
            lane.channel
        );
    }
    println!(
        "replicas: {} settlement transactions in all, by A/B/C {:?}; A's last one landed after \
         its death: {}; {:?} in all",
        all.transactions,
        all.by_replica,
        all.landed.contains(&in_flight),
        started.elapsed()
    );
    scope.drop().await;
}

/// A lane the agent opened (`amp open`'s report).
#[derive(Clone, Copy, Debug)]
struct Lane {
    channel: Pubkey,
    vault: Pubkey,
    generation: u64,
}

impl Lane {
    fn voucher(&self, seq: u64, cumulative: u64) -> Voucher {
        Voucher {
            lane: self.channel,
            generation: self.generation,
            seq,
            cumulative,
            expires_at: 0,
        }
    }
}

fn address(value: &Value) -> Pubkey {
    value
        .as_str()
        .expect("an address")
        .parse()
        .expect("an address")
}

fn pubkey(bytes: &[u8]) -> Pubkey {
    Pubkey::try_from(bytes).expect("32 bytes")
}

/// The replicas' price file: per call, the PostgreSQL store, and a settler
/// that every charge wakes and that looks at the store every 50 ms.
fn prices(node: &Localnet, store: &str) -> String {
    format!(
        r#"
wallet = "service.json"
cluster = "{rpc}"
store = "{store}"
durability = "full"
min_deposit = "100000"
min_grace_period = 60

[[mints]]
mint = "{mint}"
symbol = "USDC"

[pricing.default]
mode = "per_call"
rate = "{PRICE}"

[settle]
threshold = "{PRICE}"
interval = 3600
tick = 0.05
retry_min = 0.05
retry_max = 0.5
"#,
        rpc = node.rpc_url,
        mint = node.mint,
    )
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Waits (at most `within`) until `check` holds.
async fn eventually(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < within,
            "timed out waiting for {what} (not within {within:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The lanes' `settled` on-chain.
async fn settled(node: &Localnet, lanes: &[Lane]) -> Vec<u64> {
    let chain = RpcChain::new(&Cluster::Custom(node.rpc_url.clone()), Keypair::new());
    let mut settled = Vec::new();
    for lane in lanes {
        let channel = chain.channel(&lane.channel).await.unwrap();
        settled.push(channel.expect("the channel is open").settled);
    }
    settled
}

/// A replica's settler status (its status route).
async fn settler_status(client: &reqwest::Client, serve: &Serve) -> Value {
    client
        .get(format!("{}{STATUS_PATH}", serve.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

// Hammering: pre-signed credentials, each sent to several replicas at once.

/// What one request came back with.
#[derive(Clone, Debug)]
struct Outcome {
    lane: usize,
    seq: u64,
    replica: usize,
    status: StatusCode,
    /// `AMP-Owed` of an accepted request (or the `owed` of a refusal).
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
                .map(|seq| {
                    let mut headers = HeaderMap::new();
                    Credential::sign(signer, &lane.voucher(seq, seq * PRICE)).write(&mut headers);
                    headers
                })
                .collect()
        })
        .collect()
}

type Reply = (StatusCode, Option<u64>, Option<ErrorCode>);

/// Status, `AMP-Owed` (or the error body's `owed`) and error code; `Err`
/// when the replica did not answer.
async fn try_pay(
    client: &reqwest::Client,
    url: &str,
    headers: HeaderMap,
) -> Result<Reply, reqwest::Error> {
    let response = client.get(url).headers(headers).send().await?;
    let status = response.status();
    let receipt = Receipt::from_headers(response.headers())
        .ok()
        .map(|r| r.owed);
    let body = response.bytes().await?;
    if status == StatusCode::OK {
        assert_eq!(&body[..], b"hello from upstream");
        return Ok((status, receipt, None));
    }
    let error = serde_json::from_slice::<ErrorBody>(&body).ok();
    Ok((
        status,
        error.as_ref().and_then(|e| e.owed),
        error.map(|e| e.error),
    ))
}

async fn pay(client: &reqwest::Client, url: &str, headers: HeaderMap) -> Reply {
    try_pay(client, url, headers)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
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
                    let sends: Vec<_> = (0..fanout)
                        .map(|k| (index + lane + k) % urls.len())
                        .map(|replica| {
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
        tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .expect("a hammering within 2 minutes")
            .unwrap();
    }
    Arc::try_unwrap(outcomes).unwrap().into_inner().unwrap()
}

/// Sends each lane's credentials in order, one at a time, to `primary`
/// until it stops answering, then to `fallback`, as a client would that
/// retries elsewhere: a credential the dead replica accepted just before
/// dying is then refused as already seen (409), whose `owed` says what it
/// was charged; it counts as accepted (by replica 0). Returns the outcomes
/// and how many credentials were retried.
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
                let outcome = |replica, (status, owed, code): Reply| Outcome {
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

// What the replicas sent, and what the node landed.

/// The signatures a replica's `RpcChain` logged as it `sent` or `confirmed`
/// them (`amp_sdk::rpc=debug`), in order.
fn logged(log: &str, message: &str) -> Vec<String> {
    let needle = format!("amp_sdk::rpc: {message} ");
    log.lines()
        .filter(|line| line.contains(&needle))
        .filter_map(|line| {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix("signature="))
                .map(str::to_owned)
        })
        .collect()
}

fn sent(log: &str) -> Vec<String> {
    logged(log, "sending")
}

fn confirmed(log: &str) -> HashSet<String> {
    logged(log, "confirmed").into_iter().collect()
}

/// A JSON-RPC call to the node; its `result`.
async fn rpc(node: &Localnet, method: &str, params: Value) -> Value {
    let request = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    let response: Value = client()
        .post(&node.rpc_url)
        .json(&request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(response["error"].is_null(), "{method}: {response}");
    response["result"].clone()
}

/// What the node's history says of the settlements.
struct Audit {
    /// Settlement transactions landed.
    transactions: usize,
    /// How many of them each replica (A, B, C) sent.
    by_replica: [usize; 3],
    /// Which replica sent each lane's last settlement.
    last_by: HashMap<Pubkey, usize>,
    /// What they paid the recipient.
    paid: u64,
    /// Their signatures.
    landed: HashSet<String>,
}

/// Checks that no settlement was tried twice, from the replicas' logs (in
/// the order A, B, C) and the node's history of every lane: no transaction
/// on a lane failed, the node refused no preflight, no replica sent a
/// transaction another sent, every settlement that landed was sent by a
/// replica, and each lane's settled vouchers only go up.
async fn audit(node: &Localnet, lanes: &[Lane], recipient: &Pubkey, logs: &[String; 3]) -> Audit {
    let node_log = node.process.stderr();
    let refused: Vec<&str> = node_log
        .lines()
        .filter(|line| line.contains("preflight refused"))
        .collect();
    assert!(
        refused.is_empty(),
        "the node refused preflights: {refused:#?}"
    );
    let mut sender: HashMap<String, usize> = HashMap::new();
    for (replica, log) in logs.iter().enumerate() {
        for signature in sent(log) {
            if let Some(other) = sender.insert(signature.clone(), replica) {
                panic!("{signature} was sent by replicas {other} and {replica}");
            }
        }
    }
    let ed25519 = solana_sdk_ids::ed25519_program::ID.to_string();
    let config = json!({ "commitment": "confirmed" });
    let mut settles: HashMap<Pubkey, Vec<Voucher>> = HashMap::new();
    let mut audit = Audit {
        transactions: 0,
        by_replica: [0; 3],
        last_by: HashMap::new(),
        paid: 0,
        landed: HashSet::new(),
    };
    for lane in lanes {
        let history = rpc(
            node,
            "getSignaturesForAddress",
            json!([lane.channel.to_string(), config]),
        )
        .await;
        // Newest first: oldest first.
        for entry in history.as_array().unwrap().iter().rev() {
            let signature = entry["signature"].as_str().unwrap().to_owned();
            let tx = rpc(
                node,
                "getTransaction",
                json!([signature, { "encoding": "json", "commitment": "confirmed",
                                    "maxSupportedTransactionVersion": 0 }]),
            )
            .await;
            let meta = &tx["meta"];
            assert!(
                entry["err"].is_null() && meta["err"].is_null(),
                "a transaction on lane {} failed: {signature} {}\n{:#}",
                lane.channel,
                meta["err"],
                meta["logMessages"]
            );
            let message = &tx["transaction"]["message"];
            let keys: Vec<&str> = message["accountKeys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap())
                .collect();
            let vouchers: Vec<Voucher> = message["instructions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|ix| keys[ix["programIdIndex"].as_u64().unwrap() as usize] == ed25519)
                .map(|ix| {
                    let data = bs58::decode(ix["data"].as_str().unwrap())
                        .into_vec()
                        .unwrap();
                    amp_sdk::voucher::decode(&data[data.len() - VOUCHER_LEN..]).unwrap()
                })
                .collect();
            if vouchers.is_empty() {
                continue; // the lane's opening
            }
            let Some(&replica) = sender.get(&signature) else {
                panic!("settlement {signature} was sent by no replica");
            };
            for voucher in vouchers.iter().filter(|v| v.lane == lane.channel) {
                settles.entry(lane.channel).or_default().push(*voucher);
                audit.last_by.insert(lane.channel, replica);
            }
            if !audit.landed.insert(signature) {
                continue; // seen on another lane it settles
            }
            audit.transactions += 1;
            audit.by_replica[replica] += 1;
            audit.paid += token_change(meta, recipient);
        }
    }
    for (lane, vouchers) in &settles {
        assert!(
            vouchers
                .windows(2)
                .all(|w| w[0].seq < w[1].seq && w[0].cumulative < w[1].cumulative),
            "lane {lane}: a voucher settled twice, or out of order: {vouchers:?}"
        );
    }
    audit
}

/// How much `owner`'s token accounts gained in a transaction.
fn token_change(meta: &Value, owner: &Pubkey) -> u64 {
    let sum = |balances: &Value| -> u64 {
        balances
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["owner"].as_str() == Some(&owner.to_string()))
            .map(|b| {
                b["uiTokenAmount"]["amount"]
                    .as_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
            })
            .sum()
    };
    sum(&meta["postTokenBalances"]) - sum(&meta["preTokenBalances"])
}
