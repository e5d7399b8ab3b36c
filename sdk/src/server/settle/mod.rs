//! The settler: a background task that turns the vouchers a server holds
//! into tokens in the recipient's account.
//!
//! It settles a lane when its unsettled value reaches a threshold, when it
//! has held unsettled value for an interval, at once when the lane starts
//! closing or its best voucher is about to expire, on start (whatever a
//! previous run left) and at shutdown. Lanes due together, own and
//! delegated, are packed into as few transactions as fit
//! ([`transactions::group_settlements`]), each with a compute budget under
//! the configured [`FeePolicy`](crate::fees::FeePolicy) (a limit from
//! simulating the batch, a price from recent fees or a fixed one). A failed
//! settlement is retried with exponential backoff.
//!
//! It never pays twice: before settling, it reads the lane's on-chain
//! `settled` and skips a voucher already covered, and a settlement refused
//! as `StaleVoucher` (someone settled it meanwhile) counts as done. Settling
//! is cumulative on-chain anyway, so a repeated voucher can only fail.

mod status;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use amp_channel::error::AmpError;
use anchor_lang::prelude::Pubkey;
use solana_instruction::Instruction;
use solana_signature::Signature;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::config::SettleConfig;
use super::metrics::{Metrics, SharedMetrics, StoreOp};
use crate::chain::{Chain, ChainError, ChainExt};
use crate::fees;
use crate::instructions::ChannelKeys;
use crate::lane::LaneAccounts;
use crate::store::{self, LaneId, LaneQuery, LaneState, StoreError, VoucherStore};
use crate::transactions::{self, Settlement};
use status::MintBook;
pub use status::{MintStatus, NextSettlement, SettleReason, SettlerStatus};

/// A handle to a running settler's triggers and status, shared with the server.
#[derive(Clone)]
pub struct Signal {
    shared: Arc<Shared>,
}

impl Signal {
    /// Runs a pass soon (a lane passed the threshold).
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// Settles `lane` at the next pass whatever its value (it is closing).
    pub fn urgent(&self, lane: Pubkey) {
        if self.shared.mark_urgent(lane) {
            tracing::info!(%lane, "lane closing: settling urgently");
            self.wake();
        }
    }

    /// The settler's counters so far.
    pub fn status(&self) -> SettlerStatus {
        self.shared.status()
    }
}

/// What the request path tells the settler; nothing when it is disabled.
#[derive(Clone, Default)]
pub(crate) struct SettleHook(Option<Signal>);

impl SettleHook {
    pub(crate) fn new(signal: Option<Signal>) -> Self {
        Self(signal)
    }

    /// A lane now holds `unsettled`: settle soon once that passes the threshold.
    pub(crate) fn charged(&self, unsettled: u64) {
        if let Some(signal) = &self.0 {
            if unsettled >= signal.shared.config.threshold {
                signal.wake();
            }
        }
    }

    /// `lane` is in `mint`, for the per-mint figures.
    pub(crate) fn mint_of(&self, lane: Pubkey, mint: Pubkey) {
        if let Some(signal) = &self.0 {
            signal.shared.mints.learn(lane, mint);
        }
    }

    /// `lane` is closing: settle it at the next pass.
    pub(crate) fn closing(&self, lane: Pubkey) {
        if let Some(signal) = &self.0 {
            signal.urgent(lane);
        }
    }

    /// The settler's counters (all zero when it is disabled).
    pub(crate) fn status(&self) -> SettlerStatus {
        self.0.as_ref().map(Signal::status).unwrap_or_default()
    }
}

/// The running settler task.
pub struct Settler {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

struct Shared {
    chain: Arc<dyn Chain>,
    store: Arc<dyn VoucherStore>,
    config: SettleConfig,
    status: Mutex<SettlerStatus>,
    wake: Notify,
    urgent: Mutex<HashSet<Pubkey>>,
    /// One pass at a time; what passes remember.
    memory: tokio::sync::Mutex<Memory>,
    metrics: SharedMetrics,
    /// Each lane's mint and what was settled per mint.
    mints: MintBook,
}

#[derive(Default)]
struct Memory {
    /// When each lane was first seen with unsettled value.
    first_seen: HashMap<LaneId, Instant>,
    /// Failed lanes: attempts so far and when to try again.
    retry: HashMap<LaneId, (u32, Instant)>,
    token_programs: HashMap<Pubkey, Pubkey>,
}

impl Settler {
    /// Starts settling the lanes of `store` on `chain`. What a previous run
    /// left unsettled is read here, before the server takes requests, and
    /// settled by the first pass; what is paid from then on waits for the
    /// usual triggers.
    pub async fn start(
        chain: Arc<dyn Chain>,
        store: Arc<dyn VoucherStore>,
        config: SettleConfig,
    ) -> Result<Self, StoreError> {
        let metrics = Arc::new(Metrics::new());
        Self::start_with(chain, store, config, metrics, Vec::new()).await
    }

    /// [`start`](Self::start), counting in the paywall's `metrics`, with
    /// figures per accepted mint of `mints`.
    pub(crate) async fn start_with(
        chain: Arc<dyn Chain>,
        store: Arc<dyn VoucherStore>,
        config: SettleConfig,
        metrics: SharedMetrics,
        mints: Vec<Pubkey>,
    ) -> Result<Self, StoreError> {
        let left: HashSet<Pubkey> = store
            .find(LaneQuery::Unsettled)
            .await?
            .iter()
            .map(|lane| lane.id.lane)
            .collect();
        if !left.is_empty() {
            tracing::info!(lanes = left.len(), "settling what a previous run left");
        }
        let shared = Arc::new(Shared {
            chain,
            store,
            config,
            status: Mutex::new(SettlerStatus::default()),
            wake: Notify::new(),
            urgent: Mutex::new(left),
            memory: tokio::sync::Mutex::new(Memory::default()),
            metrics,
            mints: MintBook::new(mints),
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(Arc::clone(&shared), stopped));
        Ok(Self {
            shared,
            stop,
            task: Some(task),
        })
    }

    /// A handle the server uses to wake the settler or mark a lane urgent.
    pub fn signal(&self) -> Signal {
        Signal {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The settler's counters so far.
    pub fn status(&self) -> SettlerStatus {
        self.shared.status()
    }

    /// Settles every unsettled lane now, whatever its value.
    pub async fn settle_all(&self) -> SettlerStatus {
        self.shared.pass(true).await;
        self.status()
    }

    /// Stops the task; settles everything first when configured to.
    pub async fn shutdown(mut self) -> SettlerStatus {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if self.shared.config.on_shutdown {
            let timeout = self.shared.config.shutdown_timeout;
            if tokio::time::timeout(timeout, self.shared.pass(true))
                .await
                .is_err()
            {
                self.shared.failed(
                    None,
                    &format!("shutdown settlement timed out after {timeout:?}"),
                );
                // The pass was cut short: say what it left, not what the
                // pass before it counted.
                let memory = self.shared.memory.lock().await;
                self.shared.count_pending(&memory).await;
            }
        }
        self.status()
    }
}

impl Drop for Settler {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

async fn run(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    shared.pass(false).await;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(shared.config.tick) => {}
            _ = shared.wake.notified() => {}
            _ = stopped.changed() => return,
        }
        if *stopped.borrow() {
            return;
        }
        shared.pass(false).await;
    }
}

/// A due lane with what settling it would pay.
struct Due {
    state: LaneState,
    /// On-chain `settled` when it was read.
    onchain: u64,
    mint: Pubkey,
    settlement: Box<Settlement>,
}

impl Shared {
    fn status(&self) -> SettlerStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Settles `lane` at the next pass it is not backing off in; whether it
    /// was not urgent already.
    fn mark_urgent(&self, lane: Pubkey) -> bool {
        self.urgent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(lane)
    }

    fn update_status(&self, f: impl FnOnce(&mut SettlerStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn failed(&self, lane: Option<&Pubkey>, error: &str) {
        match lane {
            Some(lane) => tracing::warn!(%lane, error, "settlement failed; will retry"),
            None => tracing::warn!(error, "settler"),
        }
        self.update_status(|s| {
            s.failures += 1;
            s.last_error = Some(error.to_owned());
        });
    }

    /// One look at the store: settles what is due (everything when `all`).
    async fn pass(&self, all: bool) {
        let mut memory = self.memory.lock().await;
        self.update_status(|s| s.passes += 1);
        let lanes = match self.find_unsettled().await {
            Ok(lanes) => lanes,
            Err(error) => return self.failed(None, &format!("reading the store: {error}")),
        };
        let urgent = std::mem::take(&mut *self.urgent.lock().unwrap_or_else(|e| e.into_inner()));
        let now = Instant::now();
        let present: HashSet<LaneId> = lanes.iter().map(|l| l.id).collect();
        memory.first_seen.retain(|id, _| present.contains(id));
        memory.retry.retain(|id, _| present.contains(id));
        let unix_now = self.unix_now(&lanes).await;

        let mut due = Vec::new();
        for lane in lanes {
            let first_seen = *memory.first_seen.entry(lane.id).or_insert(now);
            let expiring = lane.best.is_some_and(|b| {
                b.voucher.expires_at != 0
                    && unix_now.is_some_and(|t| {
                        b.voucher.expires_at.saturating_sub(t)
                            <= self.config.expiry_margin.as_secs() as i64
                    })
            });
            let is_urgent = all || expiring || urgent.contains(&lane.id.lane);
            let waiting = memory.retry.get(&lane.id).is_some_and(|(_, at)| *at > now);
            let is_due = is_urgent
                || lane.unsettled() >= self.config.threshold
                || now.duration_since(first_seen) >= self.config.interval;
            if is_due && (!waiting || all) {
                due.push(lane);
            } else if is_urgent {
                // Backing off after a failure: still urgent at the retry.
                self.mark_urgent(lane.id.lane);
            }
        }
        // Several servers may share the store: settle only the lanes this
        // one leads, as they are now (another may just have settled them).
        let (due, claimed) = self.lead(due).await;
        if !due.is_empty() {
            tracing::debug!(lanes = due.len(), all, "settling");
        }

        let mut ready = Vec::new();
        for lane in due {
            match self.prepare(&mut memory, lane, unix_now).await {
                Ok(Some(due)) => ready.push(due),
                Ok(None) => {}
                Err((lane, error)) => self.retry_later(&mut memory, &lane, &error),
            }
        }
        self.settle(&mut memory, ready).await;
        let release = self.store.release(&claimed);
        if let Err(error) = self.metrics.store(StoreOp::release, release).await {
            self.failed(None, &format!("releasing settled lanes: {error}"));
        }

        self.count_pending(&memory).await;
    }

    /// The lanes the store holds unsettled, timed.
    async fn find_unsettled(&self) -> Result<Vec<LaneState>, StoreError> {
        let find = self.store.find(LaneQuery::Unsettled);
        self.metrics.store(StoreOp::find, find).await
    }

    /// Counts what the store holds unsettled into the status, per mint
    /// too, with when and why each mint's next settlement is due.
    async fn count_pending(&self, memory: &Memory) {
        let pending = self.find_unsettled().await.unwrap_or_default();
        let now = Instant::now();
        let mints = {
            let urgent = self.urgent.lock().unwrap_or_else(|e| e.into_inner());
            self.mints.rows(&pending, now, |lane| {
                if let Some((_, at)) = memory.retry.get(&lane.id) {
                    (SettleReason::Retry, *at)
                } else if urgent.contains(&lane.id.lane) {
                    (SettleReason::Grace, now)
                } else if lane.unsettled() >= self.config.threshold {
                    (SettleReason::Threshold, now)
                } else {
                    let first_seen = memory.first_seen.get(&lane.id).copied().unwrap_or(now);
                    (SettleReason::Interval, first_seen + self.config.interval)
                }
            })
        };
        for row in &mints {
            self.metrics.unsettled(&row.mint, row.owed);
        }
        self.update_status(|s| {
            s.pending_lanes = pending.len() as u64;
            s.pending_amount = pending
                .iter()
                .fold(0u64, |sum, l| sum.saturating_add(l.unsettled()));
            s.mints = mints;
        });
    }

    /// Claims the due lanes ([`VoucherStore::claim`]); returns those won,
    /// re-read and still unsettled, and the claims to release after the pass.
    async fn lead(&self, due: Vec<LaneState>) -> (Vec<LaneState>, Vec<LaneId>) {
        if due.is_empty() {
            return (due, Vec::new());
        }
        let ids: Vec<LaneId> = due.iter().map(|l| l.id).collect();
        let claimed = match self
            .metrics
            .store(StoreOp::claim, self.store.claim(&ids))
            .await
        {
            Ok(claimed) => claimed,
            Err(error) => {
                self.failed(None, &format!("claiming lanes to settle: {error}"));
                return (Vec::new(), Vec::new());
            }
        };
        if claimed.len() < ids.len() {
            tracing::debug!(
                others = ids.len() - claimed.len(),
                "lanes being settled by another server"
            );
        }
        let won: HashSet<LaneId> = claimed.iter().copied().collect();
        let mut lanes = Vec::new();
        for lane in due.into_iter().filter(|l| won.contains(&l.id)) {
            match self.store.lane(lane.id).await {
                Ok(Some(now)) if now.unsettled() > 0 && !now.closed => lanes.push(now),
                Ok(_) => {}
                Err(_) => lanes.push(lane),
            }
        }
        (lanes, claimed)
    }

    /// The chain's time, read only when some voucher has an expiry.
    async fn unix_now(&self, lanes: &[LaneState]) -> Option<i64> {
        if !lanes
            .iter()
            .any(|l| l.best.is_some_and(|b| b.voucher.expires_at != 0))
        {
            return None;
        }
        match self.chain.clock().await {
            Ok(clock) => Some(clock.unix_timestamp),
            Err(error) => {
                self.failed(None, &format!("reading the clock: {error}"));
                None
            }
        }
    }

    /// Reads the lane on-chain and decides what settling it takes; `None`
    /// when there is nothing to do (already settled, or lost).
    async fn prepare(
        &self,
        memory: &mut Memory,
        state: LaneState,
        unix_now: Option<i64>,
    ) -> Result<Option<Due>, (LaneState, ChainError)> {
        let Some(best) = state.best else {
            return Ok(None);
        };
        let accounts = match LaneAccounts::fetch(self.chain.as_ref(), &state.id.lane).await {
            Ok(accounts) => accounts,
            Err(error) => return Err((state, error)),
        };
        let Some(accounts) = accounts.filter(|a| a.generation() == state.id.generation) else {
            self.lost(&state, "the lane no longer exists").await;
            return Ok(None);
        };
        let onchain = accounts.settled();
        if onchain >= best.voucher.cumulative {
            self.record_settled(memory, &state, onchain).await;
            self.update_status(|s| s.already_settled += 1);
            return Ok(None);
        }
        let now = match unix_now {
            Some(now) => now,
            None => match self.chain.clock().await {
                Ok(clock) => clock.unix_timestamp,
                Err(error) => return Err((state, error)),
            },
        };
        if accounts.status(now).is_refundable() {
            self.lost(&state, "the grace period ended before settlement")
                .await;
            return Ok(None);
        }
        let mint = accounts.channel.mint;
        self.mints.learn(state.id.lane, mint);
        let token_program = match memory.token_programs.get(&mint) {
            Some(program) => *program,
            None => match self.chain.mint_token_program(&mint).await {
                Ok(program) => *memory.token_programs.entry(mint).or_insert(program),
                Err(error) => return Err((state, error)),
            },
        };
        let settlement = Box::new(accounts.settlement(accounts.keys(token_program), best));
        Ok(Some(Due {
            state,
            onchain,
            mint,
            settlement,
        }))
    }

    /// Packs the settlements (own and delegated lanes alike) into
    /// transactions and sends them.
    async fn settle(&self, memory: &mut Memory, due: Vec<Due>) {
        if due.is_empty() {
            return;
        }
        let settlements: Vec<Settlement> = due.iter().map(|d| *d.settlement).collect();
        // Room for the compute budget each batch gets when it is sent.
        let budget = fees::compute_budget_placeholder();
        let groups =
            match transactions::group_settlements(&self.chain.fee_payer(), &budget, &settlements) {
                Ok(groups) => groups,
                Err(error) => {
                    // One settlement alone never exceeds a packet; report and retry.
                    let message = error.to_string();
                    for d in &due {
                        self.retry_later(memory, &d.state, &ChainError::Bank(message.clone()));
                    }
                    return;
                }
            };
        for group in groups {
            let batch: Vec<Instruction> = group
                .iter()
                .flat_map(|&i| settlements[i].instructions())
                .collect();
            let lanes: Vec<(LaneState, u64, Pubkey)> = group
                .iter()
                .map(|&i| (due[i].state.clone(), due[i].onchain, due[i].mint))
                .collect();
            let result = self.send(&batch).await;
            if lanes.len() > 1
                && result
                    .as_ref()
                    .is_err_and(|e| e.is_amp_error(AmpError::StaleVoucher))
            {
                // One of them was settled meanwhile: settle the rest one by one.
                for (state, _, _) in lanes {
                    match self.prepare(memory, state, None).await {
                        Ok(Some(Due {
                            state,
                            onchain,
                            mint,
                            settlement,
                        })) => {
                            let result = self.send(&settlement.instructions()).await;
                            self.landed(memory, &[(state, onchain, mint)], result).await;
                        }
                        Ok(None) => {}
                        Err((state, error)) => self.retry_later(memory, &state, &error),
                    }
                }
                continue;
            }
            self.landed(memory, &lanes, result).await;
        }
    }

    /// Sends one settlement transaction under the settler's fee policy: its
    /// compute budget (a limit from simulating `batch`, the policy's price)
    /// first, in the room packing left for it.
    /// Counted in the metrics as sent, then confirmed or failed.
    async fn send(&self, batch: &[Instruction]) -> Result<Signature, ChainError> {
        self.metrics.settlement_sent();
        let started = Instant::now();
        let result = self.send_budgeted(batch).await;
        self.metrics
            .settlement_done(result.is_ok(), started.elapsed());
        result
    }

    async fn send_budgeted(&self, batch: &[Instruction]) -> Result<Signature, ChainError> {
        let payer = self.chain.fee_payer();
        let mut instructions = self
            .chain
            .compute_budget_with(&self.config.fees, &payer, batch)
            .await?;
        instructions.extend_from_slice(batch);
        self.chain.send(&instructions, &[]).await
    }

    /// Records the outcome of one settlement transaction.
    async fn landed(
        &self,
        memory: &mut Memory,
        lanes: &[(LaneState, u64, Pubkey)],
        result: Result<Signature, ChainError>,
    ) {
        match result {
            Ok(signature) => {
                let mut paid = 0u64;
                for (state, onchain, mint) in lanes {
                    let lane_paid = state.signed().saturating_sub(*onchain);
                    paid = paid.saturating_add(lane_paid);
                    self.mints.settled(*mint, lane_paid);
                    self.metrics.settled(mint, lane_paid);
                    self.record_settled(memory, state, state.signed()).await;
                }
                tracing::info!(%signature, lanes = lanes.len(), paid, "settled");
                self.update_status(|s| {
                    s.transactions += 1;
                    s.lanes_settled += lanes.len() as u64;
                    s.amount_settled = s.amount_settled.saturating_add(paid);
                    s.last_transaction = Some(signature.to_string());
                });
            }
            Err(error) if error.is_amp_error(AmpError::StaleVoucher) => {
                // Settled by someone else meanwhile: nothing is owed any more.
                for (state, _, _) in lanes {
                    self.record_settled(memory, state, state.signed()).await;
                }
                self.update_status(|s| s.already_settled += lanes.len() as u64);
            }
            Err(error) => {
                for (state, _, _) in lanes {
                    self.retry_later(memory, state, &error);
                }
            }
        }
    }

    async fn record_settled(&self, memory: &mut Memory, state: &LaneState, settled: u64) {
        memory.retry.remove(&state.id);
        memory.first_seen.remove(&state.id);
        let transact = store::transact(self.store.as_ref(), state.clone(), move |s| {
            s.settled = s.settled.max(settled);
            ((), true)
        });
        let result = self.metrics.store(StoreOp::transact, transact).await;
        if let Err(error) = result {
            self.failed(
                Some(&state.id.lane),
                &format!("recording a settlement: {error}"),
            );
        }
    }

    /// Gives a lane up: its voucher can no longer be settled.
    async fn lost(&self, state: &LaneState, reason: &str) {
        let unsettled = state.unsettled();
        tracing::error!(lane = %state.id.lane, unsettled, reason, "voucher lost");
        let _ = store::transact(self.store.as_ref(), state.clone(), |s| {
            s.closed = true;
            ((), true)
        })
        .await;
        self.update_status(|s| {
            s.lost_lanes += 1;
            s.amount_lost = s.amount_lost.saturating_add(unsettled);
            s.last_error = Some(format!("lane {}: {reason}", state.id.lane));
        });
    }

    fn retry_later(&self, memory: &mut Memory, state: &LaneState, error: &ChainError) {
        let attempts = memory.retry.get(&state.id).map_or(0, |(a, _)| *a);
        let delay = self
            .config
            .retry_min
            .saturating_mul(1u32 << attempts.min(16))
            .min(self.config.retry_max);
        memory.retry.insert(
            state.id,
            (attempts.saturating_add(1), Instant::now() + delay),
        );
        // Due once, due until settled: an urgent lane (closing, left by a
        // previous run, asked for by `settle_all`) keeps its urgency for the
        // retry, which waits out the backoff.
        self.mark_urgent(state.id.lane);
        self.failed(Some(&state.id.lane), &error.to_string());
    }
}

/// `[ed25519, settle]` for the lane's best voucher when it pays more than
/// the lane has settled on-chain; nothing otherwise.
pub fn settle_instructions(
    accounts: &LaneAccounts,
    keys: &ChannelKeys,
    state: &LaneState,
) -> Vec<Instruction> {
    state
        .best
        .filter(|b| b.voucher.cumulative > accounts.settled())
        .map_or_else(Vec::new, |best| {
            accounts.settlement(*keys, best).instructions().to_vec()
        })
}
