//! What the settler reports: its counters since it started and, per mint,
//! what lanes owe, what their vouchers would settle now, what was settled,
//! and when and why the next settlement is due. These are the status
//! document's figures (docs/SPEC.md, "Status"), served by the paywall and
//! read by `amp status`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use anchor_lang::prelude::Pubkey;
use serde::{Deserialize, Serialize};

use crate::decimal::u64_string;
use crate::store::LaneState;

/// What the settler has done since it started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlerStatus {
    /// Times it looked at the store.
    pub passes: u64,
    /// Settlement transactions that landed.
    pub transactions: u64,
    /// Lane settlements that landed.
    pub lanes_settled: u64,
    /// Tokens they paid the recipient.
    #[serde(with = "u64_string")]
    pub amount_settled: u64,
    /// Vouchers found already settled on-chain, hence skipped.
    pub already_settled: u64,
    /// Failed attempts (each is retried).
    pub failures: u64,
    /// Lanes given up: closed or refunded before their voucher was settled.
    pub lost_lanes: u64,
    /// Unsettled value of the lanes given up, which will never be paid.
    #[serde(with = "u64_string")]
    pub amount_lost: u64,
    /// Lanes with unsettled value after the last pass, and how much.
    pub pending_lanes: u64,
    /// How much those lanes hold unsettled, in token base units.
    #[serde(with = "u64_string")]
    pub pending_amount: u64,
    /// The most recent failure or lost lane; kept after later successes.
    pub last_error: Option<String>,
    /// Signature of the last settlement transaction.
    pub last_transaction: Option<String>,
    /// The same figures per accepted mint, for people: amounts of
    /// different mints do not add up. Absent from a server that predates it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mints: Vec<MintStatus>,
}

/// One mint's figures, as of the settler's last pass.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MintStatus {
    /// The mint.
    #[serde(with = "crate::base58")]
    pub mint: Pubkey,
    /// Charged to lanes and not yet settled on-chain, in base units. It
    /// may exceed `pending` by the credit served beyond signed vouchers.
    #[serde(with = "u64_string")]
    pub owed: u64,
    /// What the vouchers held would settle now.
    #[serde(with = "u64_string")]
    pub pending: u64,
    /// Lanes with something to settle.
    pub pending_lanes: u64,
    /// Settled to the recipient since the service started.
    #[serde(with = "u64_string")]
    pub settled: u64,
    /// The soonest settlement due, when a lane has something to settle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_settlement: Option<NextSettlement>,
}

/// When the next settlement of a mint is due, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextSettlement {
    /// What makes it due.
    pub reason: SettleReason,
    /// Seconds from the status until it is due (0: at the next pass).
    pub in_seconds: u64,
}

/// Why a lane is settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SettleReason {
    /// Its unsettled value reached the threshold.
    Threshold,
    /// It has held unsettled value for the interval.
    Interval,
    /// It is closing: it must be settled within its grace period.
    Grace,
    /// A settlement failed and is retried after a backoff.
    Retry,
    /// A reason this version does not know (from a newer server).
    #[serde(other)]
    Other,
}

impl SettleReason {
    /// The reason as the status document writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SettleReason::Threshold => "threshold",
            SettleReason::Interval => "interval",
            SettleReason::Grace => "grace",
            SettleReason::Retry => "retry",
            SettleReason::Other => "other",
        }
    }
}

impl std::fmt::Display for SettleReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which mint each lane is in, and what was settled per mint. With one
/// accepted mint every lane is in it; with several, a lane's mint is
/// learned when the lane cache or the settler reads its accounts.
pub(super) struct MintBook {
    mints: Vec<Pubkey>,
    lanes: Mutex<HashMap<Pubkey, Pubkey>>,
    settled: Mutex<BTreeMap<Pubkey, u64>>,
}

impl MintBook {
    pub(super) fn new(mints: Vec<Pubkey>) -> Self {
        Self {
            mints,
            lanes: Mutex::default(),
            settled: Mutex::default(),
        }
    }

    /// `lane` is in `mint` (kept only when it is not the one accepted mint).
    pub(super) fn learn(&self, lane: Pubkey, mint: Pubkey) {
        if self.mints.len() != 1 {
            self.lanes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(lane, mint);
        }
    }

    /// The mint of `lane`, when known.
    fn mint(&self, lane: &Pubkey) -> Option<Pubkey> {
        match self.mints.as_slice() {
            [only] => Some(*only),
            _ => self
                .lanes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(lane)
                .copied(),
        }
    }

    /// `amount` of `mint` was settled.
    pub(super) fn settled(&self, mint: Pubkey, amount: u64) {
        let mut settled = self.settled.lock().unwrap_or_else(|e| e.into_inner());
        let total = settled.entry(mint).or_default();
        *total = total.saturating_add(amount);
    }

    /// The per-mint rows of `lanes` (the unsettled ones), with `due` the
    /// reason and time each lane's settlement is due; every accepted mint
    /// has a row. A lane whose mint is not known yet counts in the totals
    /// only.
    pub(super) fn rows(
        &self,
        lanes: &[LaneState],
        now: Instant,
        due: impl Fn(&LaneState) -> (SettleReason, Instant),
    ) -> Vec<MintStatus> {
        let mut rows: BTreeMap<Pubkey, (MintStatus, Option<(Instant, SettleReason)>)> = self
            .mints
            .iter()
            .map(|mint| (*mint, (row(*mint), None)))
            .collect();
        for lane in lanes {
            let Some(mint) = self.mint(&lane.id.lane) else {
                continue;
            };
            let (row, next) = rows.entry(mint).or_insert_with(|| (row(mint), None));
            row.owed = row
                .owed
                .saturating_add(lane.owed.saturating_sub(lane.settled));
            row.pending = row.pending.saturating_add(lane.unsettled());
            row.pending_lanes += 1;
            let (reason, at) = due(lane);
            if next.is_none_or(|(soonest, _)| at < soonest) {
                *next = Some((at, reason));
            }
        }
        let settled = self.settled.lock().unwrap_or_else(|e| e.into_inner());
        rows.into_values()
            .map(|(mut row, next)| {
                row.settled = settled.get(&row.mint).copied().unwrap_or(0);
                row.next_settlement = next.map(|(at, reason)| NextSettlement {
                    reason,
                    in_seconds: at.saturating_duration_since(now).as_secs(),
                });
                row
            })
            .collect()
    }
}

fn row(mint: Pubkey) -> MintStatus {
    MintStatus {
        mint,
        owed: 0,
        pending: 0,
        pending_lanes: 0,
        settled: 0,
        next_settlement: None,
    }
}
