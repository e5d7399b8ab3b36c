//! One behaviour for every voucher store: the same suite runs against the
//! memory store, the SQLite store and the PostgreSQL store (the last needs
//! `AMP_TEST_POSTGRES_URL`; without it, it says it was skipped).
//!
//! What every store must do (the contract of `VoucherStore`): keep nothing
//! an update declined, give an update the stored state (not the fresh one),
//! round-trip every field, keep generations apart, answer `find` in key
//! order with the right lanes, keep in-flight reservations while it runs,
//! serialise concurrent updates of a lane (no lost update, no seq accepted
//! twice), survive a panicking update, grant settlement claims. A durable
//! store also keeps everything across a close and reopen (and forgets the
//! reservations, whose requests died), and refuses work once closed. A store
//! several processes can share (PostgreSQL) also serialises lanes across
//! store instances, shares live reservations and forgets a dead instance's,
//! and gives each lane's settlement lease to one instance at a time, taken
//! over when the holder dies.

use crate::support::{eventually_within, postgres};

use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amp_sdk::store::{
    self, Durability, LaneId, LaneQuery, LaneState, MemoryStore, SqliteStore, StoreError,
    VoucherStore,
};
use amp_sdk::voucher::{SignedVoucher, Voucher};
use anchor_lang::prelude::Pubkey;

type Store = Arc<dyn VoucherStore>;
type Opening<'a> = Pin<Box<dyn Future<Output = Store> + Send + 'a>>;

/// How the suite gets stores of one kind.
trait Backend: Sync {
    fn name(&self) -> &str;
    /// A store on this backend's storage: a new instance for a shared
    /// store, the file reopened (the previous one closed) for a durable one,
    /// an empty store otherwise.
    fn open(&self) -> Opening<'_>;
    /// Lanes survive a close and reopen.
    fn durable(&self) -> bool;
    /// Several instances may be open at once, in several processes.
    fn shared(&self) -> bool;
    /// The settlement lease (shared stores).
    fn lease(&self) -> Duration {
        Duration::ZERO
    }
}

struct Memory;

impl Backend for Memory {
    fn name(&self) -> &str {
        "memory"
    }
    fn open(&self) -> Opening<'_> {
        Box::pin(async { Arc::new(MemoryStore::new()) as Store })
    }
    fn durable(&self) -> bool {
        false
    }
    fn shared(&self) -> bool {
        false
    }
}

struct Sqlite {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Backend for Sqlite {
    fn name(&self) -> &str {
        "sqlite"
    }
    fn open(&self) -> Opening<'_> {
        Box::pin(async {
            Arc::new(SqliteStore::open(&self.path, Durability::Full).unwrap()) as Store
        })
    }
    fn durable(&self) -> bool {
        true
    }
    fn shared(&self) -> bool {
        false
    }
}

struct Postgres {
    scope: postgres::Scope,
}

/// The suite's PostgreSQL lease: short, so that takeovers are quick to see.
const PG_LEASE: Duration = Duration::from_secs(1);

impl Backend for Postgres {
    fn name(&self) -> &str {
        "postgres"
    }
    fn open(&self) -> Opening<'_> {
        Box::pin(async {
            // Through `store::open`, as a configuration file's URL would be.
            store::open(
                self.scope.url("amp_lease=1&amp_pool_size=8"),
                Durability::Full,
            )
            .await
            .unwrap()
        })
    }
    fn durable(&self) -> bool {
        true
    }
    fn shared(&self) -> bool {
        true
    }
    fn lease(&self) -> Duration {
        PG_LEASE
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conforms() {
    suite(&Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Sqlite {
        path: dir.path().join("vouchers.sqlite"),
        _dir: dir,
    };
    suite(&backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_conforms() {
    let Some(scope) = postgres::Scope::new("postgres_store_conforms").await else {
        return;
    };
    let backend = Postgres { scope };
    suite(&backend).await;
    backend.scope.drop().await;
}

/// The whole suite, one case after the other on one backend.
async fn suite(backend: &dyn Backend) {
    let store = backend.open().await;
    nothing_kept_until_persisted(&store).await;
    updates_see_the_stored_state(&store).await;
    every_field_round_trips(&store).await;
    generations_are_separate_lanes(&store).await;
    find_answers_in_key_order(&store).await;
    reservations_last_while_the_store_runs(&store).await;
    concurrent_updates_serialise(std::slice::from_ref(&store)).await;
    a_panicking_update_changes_nothing(&store).await;
    claims_are_granted(&store).await;
    many_lanes_at_once(&store).await;
    if backend.durable() {
        everything_survives_a_reopen(backend, store).await;
    } else {
        store.close().await.unwrap();
    }
    if backend.shared() {
        shared_instances_agree(backend).await;
        one_settler_per_lane(backend).await;
    }
    println!("{}: the store suite passed", backend.name());
}

static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// A key no other test uses (the high bytes tell runs apart).
fn key() -> Pubkey {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&NEXT_KEY.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    bytes[16..32].copy_from_slice(&nanos.to_le_bytes());
    Pubkey::new_from_array(bytes)
}

fn lane(channel: Pubkey, delegate: Option<Pubkey>) -> LaneState {
    let address = if delegate.is_some() { key() } else { channel };
    LaneState::new(
        LaneId {
            lane: address,
            generation: 42,
        },
        channel,
        delegate,
        key(),
    )
}

fn signed(state: &LaneState, seq: u64, cumulative: u64) -> SignedVoucher {
    SignedVoucher {
        voucher: Voucher {
            lane: state.id.lane,
            generation: state.id.generation,
            seq,
            cumulative,
            expires_at: 0,
        },
        signature: [seq as u8; 64],
    }
}

/// Stores `state` as it is.
async fn put(store: &Store, state: &LaneState) {
    let wanted = state.clone();
    store::transact(store.as_ref(), state.clone(), move |s| {
        *s = wanted;
        ((), true)
    })
    .await
    .unwrap();
}

/// The state without what stores do not persist.
fn persisted(state: &LaneState) -> LaneState {
    LaneState {
        reserved: 0,
        ..state.clone()
    }
}

async fn nothing_kept_until_persisted(store: &Store) {
    let fresh = lane(key(), None);
    assert_eq!(store.lane(fresh.id).await.unwrap(), None);
    let seen = store::transact(store.as_ref(), fresh.clone(), |s| {
        s.owed = 7;
        s.last_seq = 3;
        (s.clone(), false)
    })
    .await
    .unwrap();
    assert_eq!(seen.owed, 7, "the update ran on the fresh state");
    assert_eq!(
        store.lane(fresh.id).await.unwrap(),
        None,
        "declined: nothing kept"
    );
    assert!(store
        .find(LaneQuery::Channel(fresh.channel))
        .await
        .unwrap()
        .is_empty());
    store::transact(store.as_ref(), fresh.clone(), |s| {
        s.owed = 7;
        ((), true)
    })
    .await
    .unwrap();
    let kept = store.lane(fresh.id).await.unwrap().unwrap();
    assert_eq!(kept, LaneState { owed: 7, ..fresh });
}

async fn updates_see_the_stored_state(store: &Store) {
    let state = lane(key(), None);
    put(
        store,
        &LaneState {
            owed: 10,
            last_seq: 1,
            ..state.clone()
        },
    )
    .await;
    // Another fresh state for the same lane: the stored one wins.
    let other_fresh = LaneState {
        signer: key(),
        ..state.clone()
    };
    let (owed, signer) = store::transact(store.as_ref(), other_fresh, |s| {
        let seen = (s.owed, s.signer);
        s.owed += 5;
        (seen, true)
    })
    .await
    .unwrap();
    assert_eq!((owed, signer), (10, state.signer));
    // A declined update leaves the previous state whole.
    store::transact(store.as_ref(), state.clone(), |s| {
        s.owed = 1_000;
        s.closed = true;
        ((), false)
    })
    .await
    .unwrap();
    let now = store.lane(state.id).await.unwrap().unwrap();
    assert_eq!((now.owed, now.closed, now.last_seq), (15, false, 1));
}

async fn every_field_round_trips(store: &Store) {
    let channel = key();
    let mut states = vec![
        lane(channel, None),
        lane(channel, Some(key())),
        LaneState {
            last_seq: u64::MAX,
            owed: u64::MAX - 1,
            settled: u64::MAX - 2,
            closed: true,
            ..lane(key(), Some(key()))
        },
    ];
    // The extremes of every number, and a voucher with an expiry.
    let extreme = LaneState {
        id: LaneId {
            lane: key(),
            generation: u64::MAX,
        },
        ..lane(key(), None)
    };
    let mut best = signed(&extreme, u64::MAX, u64::MAX);
    best.voucher.expires_at = i64::MIN;
    states.push(LaneState {
        best: Some(best),
        last_seq: u64::MAX,
        owed: u64::MAX,
        settled: 1,
        ..extreme
    });
    let mut with_voucher = lane(key(), None);
    let mut voucher = signed(&with_voucher, 9, 1_000);
    voucher.voucher.expires_at = 1_900_000_000;
    voucher.signature = std::array::from_fn(|i| i as u8);
    with_voucher.best = Some(voucher);
    with_voucher.owed = 990;
    with_voucher.settled = 400;
    with_voucher.last_seq = 9;
    states.push(with_voucher);
    for state in &states {
        put(store, state).await;
        assert_eq!(store.lane(state.id).await.unwrap().as_ref(), Some(state));
    }
    let by_channel = store.find(LaneQuery::Channel(channel)).await.unwrap();
    let mut expected: Vec<LaneState> = states[..2].to_vec();
    expected.sort_by_key(|s| s.id);
    assert_eq!(by_channel, expected);
}

async fn generations_are_separate_lanes(store: &Store) {
    let old = lane(key(), None);
    let new = LaneState {
        id: LaneId {
            generation: old.id.generation + 1,
            ..old.id
        },
        ..old.clone()
    };
    put(
        store,
        &LaneState {
            owed: 100,
            ..old.clone()
        },
    )
    .await;
    assert_eq!(store.lane(new.id).await.unwrap(), None);
    put(
        store,
        &LaneState {
            owed: 1,
            ..new.clone()
        },
    )
    .await;
    assert_eq!(store.lane(old.id).await.unwrap().unwrap().owed, 100);
    assert_eq!(store.lane(new.id).await.unwrap().unwrap().owed, 1);
    let both = store.find(LaneQuery::Channel(old.channel)).await.unwrap();
    assert_eq!(
        both.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![old.id, new.id]
    );
}

async fn find_answers_in_key_order(store: &Store) {
    let channel = key();
    let mut mine = Vec::new();
    for i in 0..12u64 {
        let mut state = lane(channel, (i % 3 == 1).then(key));
        // Keys in an order other than their creation's.
        state.id.lane = Pubkey::new_from_array({
            let mut bytes = state.id.lane.to_bytes();
            bytes[0] = (i * 37 % 251) as u8 ^ 0x80;
            bytes
        });
        match i % 4 {
            0 => {}                                             // no voucher: not unsettled
            1 => state.best = Some(signed(&state, i, 100 + i)), // unsettled
            2 => {
                state.best = Some(signed(&state, i, 100));
                state.settled = 100; // fully settled
            }
            _ => {
                state.best = Some(signed(&state, i, 100));
                state.closed = true; // closed: never unsettled
            }
        }
        put(store, &state).await;
        mine.push(state);
    }
    mine.sort_by_key(|s| s.id);
    assert_eq!(store.find(LaneQuery::Channel(channel)).await.unwrap(), mine);
    let unsettled: Vec<LaneState> = store
        .find(LaneQuery::Unsettled)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.channel == channel)
        .collect();
    let expected: Vec<LaneState> = mine
        .iter()
        .filter(|s| s.unsettled() > 0 && !s.closed)
        .cloned()
        .collect();
    assert_eq!(expected.len(), 3);
    assert_eq!(unsettled, expected);
    let all = store.find(LaneQuery::Unsettled).await.unwrap();
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "in key order");
    assert!(all.iter().all(|s| s.unsettled() > 0 && !s.closed));
}

async fn reservations_last_while_the_store_runs(store: &Store) {
    let state = lane(key(), None);
    store::transact(store.as_ref(), state.clone(), |s| {
        s.reserved = 50;
        s.owed = 5;
        ((), true)
    })
    .await
    .unwrap();
    assert_eq!(store.lane(state.id).await.unwrap().unwrap().reserved, 50);
    let seen = store::transact(store.as_ref(), state.clone(), |s| {
        let seen = s.reserved;
        s.reserved -= 30;
        (seen, true)
    })
    .await
    .unwrap();
    assert_eq!(seen, 50);
    assert_eq!(store.lane(state.id).await.unwrap().unwrap().reserved, 20);
    // A declined update does not touch them either.
    store::transact(store.as_ref(), state.clone(), |s| {
        s.reserved = 0;
        ((), false)
    })
    .await
    .unwrap();
    assert_eq!(store.lane(state.id).await.unwrap().unwrap().reserved, 20);
    store::transact(store.as_ref(), state.clone(), |s| {
        s.reserved = 0;
        ((), true)
    })
    .await
    .unwrap();
    assert_eq!(store.lane(state.id).await.unwrap().unwrap().reserved, 0);
}

/// Requests on one lane through `stores` at once, as the paywall makes
/// them: a credential is accepted only above the last seq, and charges 10.
/// In waves of 20 concurrent updates, every seq of the wave is sent twice, in
/// no particular order; every update also bumps a counter (lost updates).
async fn concurrent_updates_serialise(stores: &[Store]) {
    const WAVES: u64 = 10;
    const WAVE: u64 = 20;
    let state = lane(key(), None);
    let mut accepted = Vec::new();
    for wave in 0..WAVES {
        let mut tasks = Vec::new();
        for attempt in 0..WAVE {
            let store = Arc::clone(&stores[attempt as usize % stores.len()]);
            let fresh = state.clone();
            let seq = wave * WAVE + (attempt * 7 % WAVE) / 2 + 1;
            tasks.push(tokio::spawn(async move {
                store::transact(store.as_ref(), fresh, move |s| {
                    s.settled += 1; // a counter: every update persists it
                    if seq <= s.last_seq {
                        return (None, true);
                    }
                    s.last_seq = seq;
                    s.owed += 10;
                    (Some((seq, s.owed)), true)
                })
                .await
                .unwrap()
            }));
        }
        let before = accepted.len();
        for task in tasks {
            if let Some(accept) = task.await.unwrap() {
                accepted.push(accept);
            }
        }
        assert!(accepted.len() > before, "every wave has a highest seq");
    }
    let seqs: HashSet<u64> = accepted.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs.len(), accepted.len(), "a seq was accepted twice");
    let mut owed: Vec<u64> = accepted.iter().map(|(_, owed)| *owed).collect();
    owed.sort_unstable();
    let expected: Vec<u64> = (1..=accepted.len() as u64).map(|n| n * 10).collect();
    assert_eq!(owed, expected, "every acceptance saw the previous one");
    // Accepted seqs rise in the order the store applied them.
    let mut by_owed = accepted.clone();
    by_owed.sort_by_key(|(_, owed)| *owed);
    assert!(by_owed.windows(2).all(|w| w[0].0 < w[1].0));
    let stored = stores[0].lane(state.id).await.unwrap().unwrap();
    assert_eq!(stored.owed, 10 * accepted.len() as u64);
    assert_eq!(stored.settled, WAVES * WAVE, "no update was lost");
}

async fn a_panicking_update_changes_nothing(store: &Store) {
    let state = lane(key(), None);
    put(
        store,
        &LaneState {
            owed: 3,
            ..state.clone()
        },
    )
    .await;
    let (running, fresh) = (Arc::clone(store), state.clone());
    let result = tokio::spawn(async move {
        store::transact(running.as_ref(), fresh, |s| -> ((), bool) {
            s.owed = 99;
            panic!("a bug in an update (this panic is part of the test)");
        })
        .await
    })
    .await;
    // The durable stores report it as an update that did not run; the
    // memory store lets the panic through to its caller.
    match result {
        Ok(Err(StoreError::Corrupt(_))) => {}
        Err(join) if join.is_panic() => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(store.lane(state.id).await.unwrap().unwrap().owed, 3);
    put(
        store,
        &LaneState {
            owed: 4,
            ..state.clone()
        },
    )
    .await;
    assert_eq!(store.lane(state.id).await.unwrap().unwrap().owed, 4);
}

async fn claims_are_granted(store: &Store) {
    let lanes: Vec<LaneState> = (0..3).map(|_| lane(key(), None)).collect();
    for state in &lanes {
        put(store, state).await;
    }
    let mut ids: Vec<LaneId> = lanes.iter().map(|s| s.id).collect();
    ids.sort();
    // One instance alone leads every lane, again and again.
    assert_eq!(store.claim(&ids).await.unwrap(), ids);
    assert_eq!(store.claim(&ids[..1]).await.unwrap(), ids[..1]);
    store.release(&ids).await.unwrap();
    assert_eq!(store.claim(&ids).await.unwrap(), ids);
    store.release(&ids).await.unwrap();
    assert!(store.claim(&[]).await.unwrap().is_empty());
}

async fn many_lanes_at_once(store: &Store) {
    let channel = key();
    let tasks: Vec<_> = (0..300u64)
        .map(|i| {
            let store = Arc::clone(store);
            let mut state = lane(channel, Some(key()));
            state.best = Some(signed(&state, 1, i + 1));
            tokio::spawn(async move {
                put(&store, &state).await;
                state
            })
        })
        .collect();
    let mut states = Vec::new();
    for task in tasks {
        states.push(task.await.unwrap());
    }
    states.sort_by_key(|s| s.id);
    assert_eq!(
        store.find(LaneQuery::Channel(channel)).await.unwrap(),
        states
    );
}

async fn everything_survives_a_reopen(backend: &dyn Backend, store: Store) {
    let mut state = lane(key(), None);
    state.best = Some(signed(&state, 4, 400));
    state.owed = 390;
    state.last_seq = 4;
    put(&store, &state).await;
    store::transact(store.as_ref(), state.clone(), |s| {
        s.reserved = 77;
        ((), true)
    })
    .await
    .unwrap();
    let unsettled = store.find(LaneQuery::Unsettled).await.unwrap();
    let channel_lanes = store.find(LaneQuery::Channel(state.channel)).await.unwrap();
    store.close().await.unwrap();
    assert!(
        matches!(store.lane(state.id).await, Err(StoreError::Closed)),
        "a closed store refuses work"
    );
    let update = store::transact(store.as_ref(), state.clone(), |_| ((), true)).await;
    assert!(matches!(update, Err(StoreError::Closed)), "{update:?}");
    drop(store);

    let reopened = backend.open().await;
    // The requests that held reservations died with the store that made them.
    assert_eq!(
        reopened.lane(state.id).await.unwrap(),
        Some(persisted(&state))
    );
    assert_eq!(
        reopened.find(LaneQuery::Unsettled).await.unwrap(),
        unsettled
    );
    assert_eq!(
        reopened
            .find(LaneQuery::Channel(state.channel))
            .await
            .unwrap(),
        channel_lanes
    );
    // And it goes on from there.
    store::transact(reopened.as_ref(), state.clone(), |s| {
        s.last_seq += 1;
        ((), true)
    })
    .await
    .unwrap();
    assert_eq!(reopened.lane(state.id).await.unwrap().unwrap().last_seq, 5);
    reopened.close().await.unwrap();
}

async fn shared_instances_agree(backend: &dyn Backend) {
    let a = backend.open().await;
    let b = backend.open().await;
    // A lane hammered through two instances is serialised by the database.
    concurrent_updates_serialise(&[a.clone(), b.clone()]).await;

    // What one writes, the other reads at once.
    let state = lane(key(), None);
    put(
        &a,
        &LaneState {
            owed: 11,
            ..state.clone()
        },
    )
    .await;
    assert_eq!(b.lane(state.id).await.unwrap().unwrap().owed, 11);

    // Reservations of live instances add up, whoever asks.
    let reserve = |store: &Store, delta: i64| {
        let store = Arc::clone(store);
        let fresh = state.clone();
        async move {
            store::transact(store.as_ref(), fresh, move |s| {
                let seen = s.reserved;
                s.reserved = s.reserved.checked_add_signed(delta).unwrap();
                (seen, true)
            })
            .await
            .unwrap()
        }
    };
    assert_eq!(reserve(&a, 30).await, 0);
    assert_eq!(reserve(&b, 12).await, 30);
    assert_eq!(a.lane(state.id).await.unwrap().unwrap().reserved, 42);
    // An instance releases its own.
    assert_eq!(reserve(&a, -30).await, 42);
    assert_eq!(b.lane(state.id).await.unwrap().unwrap().reserved, 12);
    assert_eq!(reserve(&a, 8).await, 12);
    // A clean close takes an instance's reservations away at once...
    a.close().await.unwrap();
    assert_eq!(b.lane(state.id).await.unwrap().unwrap().reserved, 12);
    // ...and a crash (dropped without closing), once its lease runs out.
    let c = backend.open().await;
    assert_eq!(reserve(&c, 100).await, 12);
    assert_eq!(b.lane(state.id).await.unwrap().unwrap().reserved, 112);
    drop(c);
    let died = Instant::now();
    eventually_within(
        "a dead instance's reservations are forgotten",
        backend.lease() * 10,
        async || b.lane(state.id).await.unwrap().unwrap().reserved == 12,
    )
    .await;
    assert!(died.elapsed() >= backend.lease() / 2, "forgotten too early");
    assert_eq!(reserve(&b, -12).await, 12);
    assert_eq!(b.lane(state.id).await.unwrap().unwrap().reserved, 0);
    b.close().await.unwrap();
}

async fn one_settler_per_lane(backend: &dyn Backend) {
    let a = backend.open().await;
    let b = backend.open().await;
    let states: Vec<LaneState> = (0..40).map(|_| lane(key(), None)).collect();
    for state in &states {
        put(&a, state).await;
    }
    let mut ids: Vec<LaneId> = states.iter().map(|s| s.id).collect();
    ids.sort();
    let (x, y, z) = (ids[0], ids[1], ids[2]);

    assert_eq!(a.claim(&[x, y]).await.unwrap(), vec![x, y]);
    assert_eq!(
        b.claim(&[x, y, z]).await.unwrap(),
        vec![z],
        "A leads x and y"
    );
    assert_eq!(
        a.claim(&[x]).await.unwrap(),
        vec![x],
        "a leader claims again"
    );
    a.release(&[x]).await.unwrap();
    b.release(&[x]).await.unwrap(); // not B's: nothing happens
    assert_eq!(b.claim(&[x]).await.unwrap(), vec![x], "released: B takes x");
    assert!(a.claim(&[x, z]).await.unwrap().is_empty());
    b.release(&[x, z]).await.unwrap();

    // Both ask for everything at once: each lane goes to exactly one.
    let rest = ids[3..].to_vec();
    let (won_a, won_b) = tokio::join!(a.claim(&rest), b.claim(&rest));
    let (won_a, won_b) = (won_a.unwrap(), won_b.unwrap());
    let mut all: Vec<LaneId> = won_a.iter().chain(&won_b).copied().collect();
    all.sort();
    assert_eq!(
        all,
        rest,
        "every lane led once (A {}, B {})",
        won_a.len(),
        won_b.len()
    );
    a.release(&won_a).await.unwrap();
    b.release(&won_b).await.unwrap();

    // A leader that dies (dropped without closing) keeps its lanes until its
    // lease runs out; then another takes them over. (A renews its lead on y
    // first: on a loaded machine the suite may have outlasted the lease.)
    assert_eq!(a.claim(&[y]).await.unwrap(), vec![y]);
    let c = backend.open().await;
    assert_eq!(
        c.claim(&[y]).await.unwrap(),
        Vec::<LaneId>::new(),
        "A still leads y"
    );
    a.release(&[y]).await.unwrap();
    assert_eq!(c.claim(&[y]).await.unwrap(), vec![y]);
    drop(c);
    let died = Instant::now();
    assert!(
        b.claim(&[y]).await.unwrap().is_empty(),
        "the lease still runs"
    );
    eventually_within(
        "a dead leader's lane is taken over",
        backend.lease() * 10,
        async || b.claim(&[y]).await.unwrap() == vec![y],
    )
    .await;
    assert!(
        died.elapsed() >= backend.lease() / 2,
        "taken over too early"
    );
    // A clean close releases at once.
    assert_eq!(a.claim(&[z]).await.unwrap(), vec![z]);
    a.close().await.unwrap();
    assert_eq!(b.claim(&[z]).await.unwrap(), vec![z]);
    b.close().await.unwrap();
}
