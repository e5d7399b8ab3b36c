//! The agent's books: every lane's counters and the budget across all of
//! them, behind one lock, so that checking the budget and committing to an
//! amount are one atomic step however many requests run at once.
//!
//! The budget counts, per lane, the *highest amount that may have been
//! signed*. Signing is two steps: [`Book::commit`] raises the lane's
//! counters under the lock (refusing when the budget cannot cover it), then
//! the caller waits until the raised ceilings are durable ([`Ledger::sync`])
//! and only then computes the signature. A crash therefore never forgets a
//! signature: on restart the persisted ceilings count as signed and used.
//!
//! Ceilings are raised in leases (`lease` requests' worth ahead), so the file
//! is written once per lease instead of once per request; when the budget
//! runs short, unused leases of other lanes are reclaimed first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use amp_channel::state::Channel;
use anchor_lang::prelude::Pubkey;

use super::file::{
    GrantedLane, LaneFile, LaneFileError, LaneRecord, LaneStatus, Snapshot, FILE_VERSION,
};

/// One lane as the client holds it: the persisted record, and what only
/// this process knows.
#[derive(Clone, Debug)]
pub(crate) struct Lane {
    pub record: LaneRecord,
    /// Last seq used (`record.seq` is the persisted lease above it).
    pub seq: u64,
    /// Highest amount committed for signing (`record.signed` is the lease above it).
    pub signed: u64,
    /// The book version that makes this lane's leases durable.
    pub durable_at: u64,
    /// Requests sent and not yet answered.
    pub inflight: u32,
    /// Metered responses still being read and paid for.
    pub streams: u32,
    /// Highest seq whose response told what the lane owes.
    pub observed_seq: u64,
}

impl Lane {
    pub(crate) fn new(record: LaneRecord) -> Self {
        Self {
            seq: record.seq,
            signed: record.signed,
            durable_at: 0,
            inflight: 0,
            streams: 0,
            observed_seq: 0,
            record,
        }
    }

    /// Budget this lane holds: its signing lease and the caps it delegated.
    fn held(&self) -> u64 {
        self.record
            .signed
            .saturating_add(self.record.granted_total())
    }
}

/// An amount the client may now sign on a lane, with a seq of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Commit {
    pub lane: Pubkey,
    pub generation: u64,
    pub seq: u64,
    pub amount: u64,
    /// Whether it reserved a new lease (the lane file is written for it).
    pub leased: bool,
    /// Book version that must be durable before signing.
    pub wait_for: u64,
}

/// Why an amount cannot be committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The lane cannot pay that much: top it up first.
    OverLimit { amount: u64, limit: u64 },
    /// Signing it would pass the budget.
    Budget { needed: u64, available: u64 },
    /// The lane is not (or no longer) usable.
    NoLane,
}

/// The budget and every lane.
#[derive(Debug, Default)]
pub(crate) struct Book {
    pub budget: u64,
    /// Spent on lanes that no longer exist.
    pub retired: u64,
    pub lanes: Vec<Lane>,
    /// Bumped whenever something that must be durable changes.
    pub version: u64,
}

impl Book {
    pub(crate) fn from_snapshot(budget: u64, snapshot: Snapshot) -> Self {
        Self {
            budget,
            retired: snapshot.retired,
            lanes: snapshot.lanes.into_iter().map(Lane::new).collect(),
            version: 1,
        }
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: FILE_VERSION,
            retired: self.retired,
            lanes: self.lanes.iter().map(|l| l.record.clone()).collect(),
        }
    }

    /// Budget held: spent by retired lanes plus every live lane's lease and grants.
    pub(crate) fn consumed(&self) -> u64 {
        self.lanes
            .iter()
            .fold(self.retired, |sum, lane| sum.saturating_add(lane.held()))
    }

    /// Budget not held by anything.
    pub(crate) fn available(&self) -> u64 {
        self.budget.saturating_sub(self.consumed())
    }

    /// Budget actually committed for signing (leases not counted).
    pub(crate) fn spent(&self) -> u64 {
        self.lanes.iter().fold(self.retired, |sum, lane| {
            sum.saturating_add(lane.signed)
                .saturating_add(lane.record.granted_total())
        })
    }

    pub(crate) fn lane(&self, lane: &Pubkey) -> Option<&Lane> {
        self.lanes.iter().find(|l| l.record.lane == *lane)
    }

    /// Private: callers say what happened through a verb below, so that a
    /// lane's fields only change together with what depends on them.
    fn lane_mut(&mut self, lane: &Pubkey) -> Option<&mut Lane> {
        self.lanes.iter_mut().find(|l| l.record.lane == *lane)
    }

    /// The open lane paying `service`, if any.
    pub(crate) fn open_lane(&self, service: &str) -> Option<Pubkey> {
        self.lanes
            .iter()
            .find(|l| l.record.service == service && l.record.status == LaneStatus::Open)
            .map(|l| l.record.lane)
    }

    /// Lanes whose opening a previous run may have left unresolved.
    pub(crate) fn opening(&self) -> Vec<Pubkey> {
        self.lanes
            .iter()
            .filter(|l| l.record.status == LaneStatus::Opening)
            .map(|l| l.record.lane)
            .collect()
    }

    /// The nonce of a channel to `recipient` for `service` whose opening a
    /// previous attempt left unresolved (the transaction may still land).
    pub(crate) fn opening_nonce(&self, service: &str, recipient: &Pubkey) -> Option<u64> {
        self.lanes
            .iter()
            .find(|l| {
                l.record.service == service
                    && l.record.recipient == *recipient
                    && l.record.status == LaneStatus::Opening
            })
            .map(|l| l.record.nonce)
    }

    /// The services paid through an open lane.
    pub(crate) fn open_services(&self) -> Vec<String> {
        self.lanes
            .iter()
            .filter(|l| l.record.status == LaneStatus::Open)
            .map(|l| l.record.service.clone())
            .collect()
    }

    /// Closing lanes whose grace period is over at `now`.
    pub(crate) fn refundable(&self, now: i64) -> Vec<LaneRecord> {
        self.lanes
            .iter()
            .filter(|l| matches!(l.record.status, LaneStatus::Closing { refundable_at } if refundable_at <= now))
            .map(|l| l.record.clone())
            .collect()
    }

    /// Adds a lane (one being opened, or a delegated one adopted); a record
    /// of the same lane (an opening tried again) is replaced.
    pub(crate) fn insert(&mut self, record: LaneRecord) {
        self.lanes.retain(|l| l.record.lane != record.lane);
        self.lanes.push(Lane::new(record));
        self.bump();
    }

    /// Drops a lane that never came to exist (an open that did not land):
    /// nothing was signed on it, so nothing is counted as spent.
    pub(crate) fn forget(&mut self, lane: &Pubkey) {
        self.lanes.retain(|l| l.record.lane != *lane);
        self.bump();
    }

    /// The chain shows the channel opened: the lane takes its terms and
    /// starts paying.
    pub(crate) fn mark_open(&mut self, lane: &Pubkey, channel: &Channel) {
        if let Some(l) = self.lane_mut(lane) {
            l.record.opening_since = 0;
            l.record.generation = channel.generation;
            l.record.limit = channel.own_lane_limit();
            l.record.deposited = channel.deposited;
            l.record.grace_period = channel.grace_period;
            l.record.payer = (channel.payer != channel.funder).then_some(channel.payer);
            l.record.status = LaneStatus::Open;
        }
        self.bump();
    }

    /// The lane is closing on-chain: it pays nothing more and is refundable
    /// from `refundable_at`.
    pub(crate) fn mark_closing(&mut self, lane: &Pubkey, refundable_at: i64) {
        if let Some(l) = self.lane_mut(lane) {
            l.record.status = LaneStatus::Closing { refundable_at };
        }
        self.bump();
    }

    /// The chain's figures for an own lane, which may be lower than ours
    /// (a delegation takes its cap out of the channel's own lane).
    pub(crate) fn refresh_funds(&mut self, lane: &Pubkey, limit: u64, deposited: u64) {
        if let Some(l) = self.lane_mut(lane) {
            l.record.limit = limit;
            l.record.deposited = deposited;
        }
    }

    /// A top-up landed: the lane can pay more. Only raises, since a read
    /// after another top-up may already have recorded more.
    pub(crate) fn topped_up(&mut self, lane: &Pubkey, limit: u64, deposited: u64) {
        if let Some(l) = self.lane_mut(lane) {
            l.record.limit = l.record.limit.max(limit);
            l.record.deposited = l.record.deposited.max(deposited);
        }
    }

    /// What `lane` may have cost the budget: what was committed for signing
    /// and the caps it delegated.
    pub(crate) fn spent_on(&self, lane: &Pubkey) -> u64 {
        self.lane(lane)
            .map_or(0, |l| l.signed.saturating_add(l.record.granted_total()))
    }

    /// Retires a lane that is gone without a figure from the chain,
    /// counting [`spent_on`](Self::spent_on) it as spent; returns that.
    pub(crate) fn retire_signed(&mut self, lane: &Pubkey) -> u64 {
        let spent = self.spent_on(lane);
        self.retire(lane, spent);
        spent
    }

    /// Records a delegation of `cap` on `lane` to `delegate`, held against
    /// the budget from now on (before it is sent, so a crash never forgets it).
    pub(crate) fn grant(
        &mut self,
        lane: &Pubkey,
        delegate: Pubkey,
        cap: u64,
    ) -> Result<(), Refusal> {
        let available = self.available();
        if cap > available {
            return Err(Refusal::Budget {
                needed: cap,
                available,
            });
        }
        let l = self.lane_mut(lane).ok_or(Refusal::NoLane)?;
        l.record.granted.push(GrantedLane { delegate, cap });
        self.bump();
        Ok(())
    }

    /// Takes back a grant whose delegation was never created.
    pub(crate) fn ungrant(&mut self, lane: &Pubkey, delegate: &Pubkey) {
        if let Some(l) = self.lane_mut(lane) {
            l.record.granted.retain(|g| g.delegate != *delegate);
        }
        self.bump();
    }

    /// A metered response started on the lane: figures the server gives
    /// meanwhile may lag behind its usage.
    pub(crate) fn stream_started(&mut self, lane: &Pubkey) {
        if let Some(l) = self.lane_mut(lane) {
            l.streams += 1;
        }
    }

    /// A metered response on the lane ended.
    pub(crate) fn stream_ended(&mut self, lane: &Pubkey) {
        if let Some(l) = self.lane_mut(lane) {
            l.streams = l.streams.saturating_sub(1);
        }
    }

    /// Marks a change that must be durable; returns the version to wait for.
    pub(crate) fn bump(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    /// Removes a lane that no longer exists, counting `spent` as spent for good.
    pub(crate) fn retire(&mut self, lane: &Pubkey, spent: u64) -> Option<LaneRecord> {
        let index = self.lanes.iter().position(|l| l.record.lane == *lane)?;
        let removed = self.lanes.remove(index);
        self.retired = self.retired.saturating_add(spent);
        self.bump();
        Some(removed.record)
    }

    /// The cumulative amount committing on `lane` with `floor` would sign
    /// (0 for no open lane).
    pub(crate) fn would_commit(&self, lane: &Pubkey, floor: u64) -> u64 {
        self.lanes
            .iter()
            .find(|l| l.record.lane == *lane && l.record.status == LaneStatus::Open)
            .map_or(0, |l| l.record.owed.max(floor))
    }

    /// Tokens the agent holds in its own channels not yet closed (deposits
    /// and top-ups, delegated caps included).
    pub(crate) fn in_channels(&self) -> u64 {
        self.lanes
            .iter()
            .filter(|l| l.record.delegate.is_none())
            .fold(0u64, |sum, l| sum.saturating_add(l.record.deposited))
    }

    /// Commits to signing `max(owed, floor)` on `lane` with a fresh seq.
    ///
    /// `lease` is how many more such steps to reserve ahead (0: exactly what
    /// is needed, and a file write for every request).
    pub(crate) fn commit(
        &mut self,
        lane: &Pubkey,
        floor: u64,
        lease: u64,
    ) -> Result<Commit, Refusal> {
        let index = self
            .lanes
            .iter()
            .position(|l| l.record.lane == *lane && l.record.status == LaneStatus::Open)
            .ok_or(Refusal::NoLane)?;
        let (amount, limit, held) = {
            let l = &self.lanes[index];
            (l.record.owed.max(floor), l.record.limit, l.record.signed)
        };
        if amount > limit {
            return Err(Refusal::OverLimit { amount, limit });
        }
        let mut raised = false;
        if amount > held {
            let needed = amount - held;
            let available = self.find_budget(lane, needed)?;
            let l = &mut self.lanes[index];
            let step = amount.saturating_sub(l.signed).max(1);
            let headroom = step
                .saturating_mul(lease)
                .min(available - needed)
                .min(limit - amount);
            l.record.signed = amount + headroom;
            raised = true;
        }
        let l = &mut self.lanes[index];
        l.seq += 1;
        if l.seq > l.record.seq {
            l.record.seq = l.seq.saturating_add(lease);
            raised = true;
        }
        l.signed = l.signed.max(amount);
        let commit = Commit {
            lane: *lane,
            generation: l.record.generation,
            seq: l.seq,
            amount,
            leased: raised,
            wait_for: 0,
        };
        if raised {
            let version = self.bump();
            self.lanes[index].durable_at = version;
        }
        Ok(Commit {
            wait_for: self.lanes[index].durable_at,
            ..commit
        })
    }

    /// Whether the budget can give `lane` `needed` more to sign, reclaiming
    /// other lanes' unused leases if that takes it; what is available if so.
    fn find_budget(&mut self, lane: &Pubkey, needed: u64) -> Result<u64, Refusal> {
        if needed > self.available() {
            self.reclaim(lane);
        }
        let available = self.available();
        if needed > available {
            return Err(Refusal::Budget { needed, available });
        }
        Ok(available)
    }

    /// Whether the budget would let `lane` sign `more` beyond what it owes,
    /// without committing anything: what a stream cut short asks.
    pub(crate) fn can_sign_more(&mut self, lane: &Pubkey, more: u64) -> Result<(), Refusal> {
        let (amount, held) = self
            .lane(lane)
            .map(|l| (l.record.owed.saturating_add(more), l.record.signed))
            .ok_or(Refusal::NoLane)?;
        if amount > held {
            self.find_budget(lane, amount - held)?;
        }
        Ok(())
    }

    /// Gives back the unused part of other lanes' leases. Safe without a
    /// write: a lower ceiling in memory only makes the file more cautious
    /// until the next write records it.
    fn reclaim(&mut self, except: &Pubkey) {
        for lane in self.lanes.iter_mut().filter(|l| l.record.lane != *except) {
            lane.record.signed = lane.signed;
        }
    }

    /// Adds a request's price to what the lane owes, before signing for it.
    pub(crate) fn claim(&mut self, lane: &Pubkey, amount: u64) {
        if let Some(l) = self.lane_mut(lane) {
            l.record.owed = l.record.owed.saturating_add(amount);
            l.inflight += 1;
        }
    }

    /// Ends a request: its price stays owed only if the server took it.
    pub(crate) fn release(&mut self, lane: &Pubkey, amount: u64, admitted: bool) {
        if let Some(l) = self.lane_mut(lane) {
            l.inflight = l.inflight.saturating_sub(1);
            if !admitted {
                l.record.owed = l.record.owed.saturating_sub(amount);
            }
        }
    }

    /// Learns what the server said the lane owes when it accepted `seq`.
    /// Alone on the lane (this request only, no stream) and newer than any
    /// figure seen (responses can be read out of order), the server's figure
    /// is the truth; otherwise it may lag behind others, so it can only
    /// raise ours.
    pub(crate) fn observe(&mut self, lane: &Pubkey, seq: u64, owed: u64) {
        if let Some(l) = self.lane_mut(lane) {
            if l.inflight <= 1 && l.streams == 0 && seq > l.observed_seq {
                l.record.owed = owed;
            } else {
                l.record.owed = l.record.owed.max(owed);
            }
            l.observed_seq = l.observed_seq.max(seq);
        }
    }

    /// Raises what the lane owes (usage the client measured, or a server's
    /// refusal naming what is owed).
    pub(crate) fn owe_at_least(&mut self, lane: &Pubkey, owed: u64) {
        if let Some(l) = self.lane_mut(lane) {
            l.record.owed = l.record.owed.max(owed);
        }
    }

    /// Adds measured usage to what the lane owes; returns the new total.
    pub(crate) fn add_owed(&mut self, lane: &Pubkey, amount: u64) -> Option<u64> {
        let l = self.lane_mut(lane)?;
        l.record.owed = l.record.owed.saturating_add(amount);
        Some(l.record.owed)
    }
}

/// The book, its file, and the group commit that writes one for the other.
pub(crate) struct Ledger {
    book: Mutex<Book>,
    file: Arc<LaneFile>,
    /// One writer at a time; waiters that a write already covered skip theirs.
    writer: tokio::sync::Mutex<()>,
    durable: AtomicU64,
}

impl Ledger {
    pub(crate) fn new(book: Book, file: LaneFile) -> Self {
        Self {
            book: Mutex::new(book),
            file: Arc::new(file),
            writer: tokio::sync::Mutex::new(()),
            durable: AtomicU64::new(0),
        }
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        self.file.path()
    }

    /// Runs `f` on the book under its lock (never held across an await).
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Book) -> R) -> R {
        let mut book = self.book.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut book)
    }

    /// Returns once book version `version` (or a later one) is on disk.
    pub(crate) async fn sync(&self, version: u64) -> Result<(), LaneFileError> {
        if self.durable.load(Ordering::Acquire) >= version {
            return Ok(());
        }
        let _turn = self.writer.lock().await;
        if self.durable.load(Ordering::Acquire) >= version {
            return Ok(());
        }
        let (bytes, written) = self.with(|book| {
            let json =
                serde_json::to_vec_pretty(&book.snapshot()).expect("the lane file serialises");
            (json, book.version)
        });
        let file = Arc::clone(&self.file);
        tokio::task::spawn_blocking(move || file.write(&bytes))
            .await
            .map_err(|e| LaneFileError::Io {
                path: self.file.path().to_owned(),
                source: std::io::Error::other(e),
            })??;
        self.durable.fetch_max(written, Ordering::AcqRel);
        tracing::trace!(version = written, "lane file written");
        Ok(())
    }

    /// Bumps the version and waits until it is durable.
    pub(crate) async fn save(&self) -> Result<(), LaneFileError> {
        let version = self.with(Book::bump);
        self.sync(version).await
    }
}

#[cfg(test)]
mod tests;
