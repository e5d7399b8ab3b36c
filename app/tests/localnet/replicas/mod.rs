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

mod audit;
mod hammer;

use audit::*;
use hammer::*;

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
