//! The lane cache: the chain's lanes as the paywall last read them, the
//! chain's clock, and the refresher that keeps both current.
//!
//! Requests read lanes from here; a miss, a stale entry or a forced read goes
//! to the chain once per lane at a time (the others wait for its answer),
//! and at most `max_lookups` unknown lanes are read at once, so a flood of
//! made-up lanes cannot flood the RPC node.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anchor_lang::prelude::Pubkey;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::settle::SettleHook;
use crate::chain::{Chain, ChainError};
use crate::lane::LaneAccounts;

/// Why a lane could not be read.
#[derive(Debug)]
pub(crate) enum LookupError {
    /// Too many unknown lanes are being read already.
    Busy,
    /// The chain did not answer.
    Chain(ChainError),
}

/// A cached lane and when it was read.
struct Cached {
    accounts: Arc<LaneAccounts>,
    fetched: Instant,
    /// Milliseconds since the cache started, at the last use.
    used: AtomicI64,
}

type Gates = Mutex<HashMap<Pubkey, Arc<tokio::sync::Mutex<()>>>>;

/// The lanes, the clock and what reading them costs.
pub(crate) struct LaneCache {
    chain: Arc<dyn Chain>,
    lanes: RwLock<HashMap<Pubkey, Arc<Cached>>>,
    /// One chain read per lane at a time: the others wait for its result.
    fetching: Gates,
    /// Chain time minus system time, in seconds.
    clock_offset: AtomicI64,
    started: Instant,
    lookups: Semaphore,
    /// How often lanes and the clock are re-read; an entry twice as old is stale.
    refresh: Duration,
    /// Told about lanes found closing.
    settler: SettleHook,
}

impl LaneCache {
    /// An empty cache, with the chain's clock read.
    pub(crate) async fn start(
        chain: Arc<dyn Chain>,
        refresh: Duration,
        max_lookups: usize,
        settler: SettleHook,
    ) -> Result<Arc<Self>, ChainError> {
        let cache = Arc::new(Self {
            chain,
            lanes: RwLock::new(HashMap::new()),
            fetching: Mutex::new(HashMap::new()),
            clock_offset: AtomicI64::new(0),
            started: Instant::now(),
            lookups: Semaphore::new(max_lookups),
            refresh,
            settler,
        });
        crate::chain::retry_transient(|| cache.refresh_clock()).await?;
        Ok(cache)
    }

    /// Re-reads lanes every refresh period while anyone holds the cache.
    pub(crate) fn spawn_refresher(self: &Arc<Self>) -> JoinHandle<()> {
        tokio::spawn(refresh_loop(Arc::downgrade(self), self.refresh))
    }

    /// The chain's unix time, without asking the chain.
    pub(crate) fn now(&self) -> i64 {
        system_now().saturating_add(self.clock_offset.load(Ordering::Relaxed))
    }

    fn uptime_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    async fn refresh_clock(&self) -> Result<(), ChainError> {
        let clock = self.chain.clock().await?;
        self.clock_offset.store(
            clock.unix_timestamp.saturating_sub(system_now()),
            Ordering::Relaxed,
        );
        Ok(())
    }

    /// The lane at `address`, from the cache unless `force` or too old;
    /// `None` when nothing there is an AMP lane.
    pub(crate) async fn lane(
        &self,
        address: &Pubkey,
        force: bool,
    ) -> Result<Option<Arc<LaneAccounts>>, LookupError> {
        let max_age = self.refresh.saturating_mul(2);
        let cached = |force: bool| {
            let lanes = self.lanes.read().unwrap_or_else(|e| e.into_inner());
            let entry = lanes.get(address)?;
            entry.used.store(self.uptime_ms(), Ordering::Relaxed);
            (!force && entry.fetched.elapsed() <= max_age).then(|| Arc::clone(&entry.accounts))
        };
        if let Some(accounts) = cached(force) {
            return Ok(Some(accounts));
        }
        let requested = Instant::now();
        let gate = Gate::enter(&self.fetching, address);
        let _turn = gate.gate.lock().await;
        // Someone else may have read it while this request waited.
        {
            let lanes = self.lanes.read().unwrap_or_else(|e| e.into_inner());
            if let Some(entry) = lanes.get(address) {
                if entry.fetched >= requested {
                    return Ok(Some(Arc::clone(&entry.accounts)));
                }
            }
        }
        let Ok(_permit) = self.lookups.try_acquire() else {
            return Err(LookupError::Busy);
        };
        match LaneAccounts::fetch(self.chain.as_ref(), address).await {
            Ok(Some(accounts)) => {
                self.settler
                    .mint_of(accounts.address, accounts.channel.mint);
                Ok(Some(self.cache(accounts)))
            }
            Ok(None) => {
                self.forget(address);
                Ok(None)
            }
            Err(error) => Err(LookupError::Chain(error)),
        }
    }

    /// How many lanes are cached (the operator metrics' gauge).
    pub(crate) fn len(&self) -> usize {
        self.lanes.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Drops a lane (closed here, or gone on-chain).
    pub(crate) fn forget(&self, address: &Pubkey) {
        self.lanes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(address);
    }

    /// Caches freshly read accounts, keeping the entry's last use.
    fn cache(&self, accounts: LaneAccounts) -> Arc<LaneAccounts> {
        let accounts = Arc::new(accounts);
        let mut lanes = self.lanes.write().unwrap_or_else(|e| e.into_inner());
        let used = lanes
            .get(&accounts.address)
            .map_or_else(|| self.uptime_ms(), |e| e.used.load(Ordering::Relaxed));
        lanes.insert(
            accounts.address,
            Arc::new(Cached {
                accounts: Arc::clone(&accounts),
                fetched: Instant::now(),
                used: AtomicI64::new(used),
            }),
        );
        accounts
    }

    /// Re-reads the clock and every cached lane; forgets lanes unused for
    /// ten refresh periods; tells the settler about lanes that started closing.
    pub(crate) async fn refresh_all(&self) -> Result<(), ChainError> {
        self.refresh_clock().await?;
        let idle_ms =
            i64::try_from(self.refresh.saturating_mul(10).as_millis()).unwrap_or(i64::MAX);
        let now_ms = self.uptime_ms();
        let addresses: Vec<Pubkey> = {
            let mut lanes = self.lanes.write().unwrap_or_else(|e| e.into_inner());
            lanes.retain(|_, entry| now_ms - entry.used.load(Ordering::Relaxed) <= idle_ms);
            lanes.keys().copied().collect()
        };
        let now = self.now();
        for address in addresses {
            match LaneAccounts::fetch(self.chain.as_ref(), &address).await? {
                Some(accounts) => {
                    if !accounts.status(now).is_open() {
                        self.settler.closing(address);
                    }
                    self.cache(accounts);
                }
                None => self.forget(&address),
            }
        }
        Ok(())
    }
}

fn system_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The refresher: re-reads lanes every `every` while the cache lives.
async fn refresh_loop(cache: Weak<LaneCache>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(cache) = cache.upgrade() else {
            return;
        };
        if let Err(error) = cache.refresh_all().await {
            tracing::warn!(%error, "refreshing lanes failed");
        }
    }
}

/// A place in the queue of requests reading one lane from the chain; the
/// last one out removes the queue, whatever way it leaves (answer, error,
/// refusal, or the client going away).
struct Gate<'a> {
    gates: &'a Gates,
    address: Pubkey,
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl<'a> Gate<'a> {
    fn enter(gates: &'a Gates, address: &Pubkey) -> Self {
        let mut map = gates.lock().unwrap_or_else(|e| e.into_inner());
        Self {
            gates,
            address: *address,
            gate: Arc::clone(map.entry(*address).or_default()),
        }
    }
}

impl Drop for Gate<'_> {
    fn drop(&mut self) {
        let mut map = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        // The map's copy and this one: nobody else is waiting.
        if map
            .get(&self.address)
            .is_some_and(|g| Arc::ptr_eq(g, &self.gate))
            && Arc::strong_count(&self.gate) == 2
        {
            map.remove(&self.address);
        }
    }
}
