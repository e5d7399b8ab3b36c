//! Spend policy: what the agent may spend, where, how fast, and with whose
//! approval, and the log of what it spent.
//!
//! | module | what |
//! |---|---|
//! | `limits` | [`SpendLimit`]s over rolling windows (pure) |
//! | `log` | the spend log beside the lane file: one JSON line a payment |
//! | `report` | the log grouped by service, day or route ([`SpendReport`]) |
//!
//! This module holds what ties them to a client: `Spending` (the windows
//! filled from the log, checked and written with every commit), the
//! [`ServiceFilter`] and the [`Approval`] hook.

mod limits;
mod log;
mod report;

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use anchor_lang::prelude::Pubkey;

pub use limits::{Exceeded, SpendLimit};
pub use log::{read_spend_log, spend_log_path, SpendEntry, SpendLogError};
pub use report::{civil_from_days, SpendGroup, SpendReport, SpendRow};

use crate::durability::Durability;
use limits::Windows;
use log::SpendLog;

/// Which services the agent may pay: each entry is an origin
/// (`https://api.example.com`) or a recipient's key (base58).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceFilter {
    /// When not empty, only these are paid.
    pub allow: Vec<String>,
    /// Never paid, even when allowed.
    pub deny: Vec<String>,
}

impl ServiceFilter {
    /// Refuses `service` (and, once its manifest is known, its `recipient`)
    /// when the filter does; with no recipient yet, refuses only what no
    /// recipient could make allowed (so discovery is the only call made
    /// for a service that is not allowed).
    pub fn check(&self, service: &str, recipient: Option<&Pubkey>) -> Result<(), String> {
        let named = |list: &[String]| {
            list.iter()
                .any(|entry| entry == service || recipient.is_some_and(|r| entry == &r.to_string()))
        };
        if named(&self.deny) {
            return Err("it is on the policy's deny list".into());
        }
        if self.allow.is_empty() || named(&self.allow) {
            return Ok(());
        }
        let keys_allowed = self.allow.iter().any(|entry| !entry.contains("://"));
        match recipient {
            None if keys_allowed => Ok(()),
            _ => Err("it is not on the policy's allow list".into()),
        }
    }
}

/// What the agent is about to do that needs approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApprovalKind {
    /// Open a channel with this deposit.
    Open,
    /// Add this much to a channel.
    TopUp,
    /// Commit to paying this much more on a lane.
    Payment,
}

impl std::fmt::Display for ApprovalKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Open => "open a channel",
            Self::TopUp => "top up a channel",
            Self::Payment => "pay",
        })
    }
}

/// A question for the approval hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    /// What the agent would do.
    pub kind: ApprovalKind,
    /// The service's origin.
    pub service: String,
    /// How much it moves, in the mint's smallest unit.
    pub amount: u64,
    /// The lane, once there is one.
    pub lane: Option<Pubkey>,
}

/// The approval hook: answers `true` to go ahead.
pub type Approver =
    Arc<dyn Fn(Approval) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// The spend limits' windows and the spend log of one client.
pub(crate) struct Spending {
    counted: Mutex<Counted>,
    log: Mutex<SpendLog>,
}

/// What was spent: within the limits' windows, and up to which cumulative
/// amount on each lane (a lane's credential adds what it covers beyond
/// the last one logged, whatever the lane file's leases say after a restart).
struct Counted {
    windows: Windows,
    lanes: HashMap<Pubkey, u64>,
}

impl Spending {
    /// Opens the log at `path` and counts what it holds within the limits'
    /// windows, so a restart forgets nothing spent.
    pub(crate) fn open(
        path: &Path,
        limits: &[SpendLimit],
        durability: Durability,
    ) -> Result<Self, SpendLogError> {
        Self::open_at(path, limits, durability, now_ms())
    }

    fn open_at(
        path: &Path,
        limits: &[SpendLimit],
        durability: Durability,
        now: i64,
    ) -> Result<Self, SpendLogError> {
        let (log, entries) = SpendLog::open(path, durability)?;
        let mut windows = Windows::new(limits);
        let longest = i64::try_from(windows.longest().as_millis()).unwrap_or(i64::MAX);
        let from = now.saturating_sub(longest);
        let mut lanes: HashMap<Pubkey, u64> = HashMap::new();
        for entry in &entries {
            if entry.at > from {
                windows.add(entry.at, &entry.service, entry.amount);
            }
            let last = lanes.entry(entry.lane).or_default();
            *last = (*last).max(entry.cumulative);
        }
        Ok(Self {
            counted: Mutex::new(Counted { windows, lanes }),
            log: Mutex::new(log),
        })
    }

    /// What raising `lane`'s cumulative amount to `amount` would spend.
    pub(crate) fn adds(&self, lane: &Pubkey, amount: u64) -> u64 {
        let counted = self.counted.lock().unwrap_or_else(|e| e.into_inner());
        amount.saturating_sub(counted.lanes.get(lane).copied().unwrap_or(0))
    }

    /// Runs `commit` if raising `lane`'s cumulative amount to `amount`
    /// (paying `service`) keeps every limit now, and counts what that adds
    /// once `commit` succeeds. The counts stay locked meanwhile, so
    /// concurrent payments cannot pass a limit together; `commit` runs
    /// under the book's lock, which is always taken first, and commits
    /// exactly `amount`. `Ok(Ok((result, added)))` when committed.
    pub(crate) fn spend<T, E>(
        &self,
        service: &str,
        lane: &Pubkey,
        amount: u64,
        commit: impl FnOnce() -> Result<T, E>,
    ) -> Result<Result<(T, u64), E>, Exceeded> {
        self.spend_at(now_ms(), service, lane, amount, commit)
    }

    fn spend_at<T, E>(
        &self,
        now: i64,
        service: &str,
        lane: &Pubkey,
        amount: u64,
        commit: impl FnOnce() -> Result<T, E>,
    ) -> Result<Result<(T, u64), E>, Exceeded> {
        let mut counted = self.counted.lock().unwrap_or_else(|e| e.into_inner());
        let added = amount.saturating_sub(counted.lanes.get(lane).copied().unwrap_or(0));
        counted.windows.check(now, service, added)?;
        Ok(commit().map(|committed| {
            if added > 0 {
                counted.windows.add(now, service, added);
                counted.lanes.insert(*lane, amount);
            }
            (committed, added)
        }))
    }

    /// Appends `entry` to the log; with `sync`, flushes it to disk too.
    pub(crate) fn record(&self, entry: &SpendEntry, sync: bool) -> Result<(), SpendLogError> {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.append(entry)?;
        if sync {
            log.sync()?;
        }
        Ok(())
    }
}

/// Unix milliseconds now, as the spend log counts time.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    /// A step of the property test.
    #[derive(Clone, Debug)]
    enum Step {
        /// Payments from four threads at once: (service, amount) each.
        Burst(Vec<(u8, u64)>),
        /// The clock moves on this many milliseconds.
        Advance(i64),
        /// The process restarts: the log is read again.
        Restart,
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        let step = prop_oneof![
            4 => prop::collection::vec((0u8..3, 1u64..30), 1..12).prop_map(Step::Burst),
            2 => (1i64..400).prop_map(Step::Advance),
            1 => Just(Step::Restart),
        ];
        prop::collection::vec(step, 1..40)
    }

    fn entry(at: i64, service: u8, amount: u64, seq: u64, lane: Pubkey) -> SpendEntry {
        SpendEntry {
            at,
            service: format!("http://s{service}"),
            route: "/r".into(),
            mode: None,
            units: None,
            amount,
            cumulative: amount,
            lane,
            seq,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Concurrent payments, restarts and a moving clock: no window and
        /// no per-service limit is ever exceeded by what was logged, and a
        /// restart counts everything logged before it.
        #[test]
        fn limits_hold_across_concurrency_restarts_and_time(steps in steps()) {
            const PERIOD: i64 = 1_000;
            let limits = [
                SpendLimit { period: Duration::from_millis(1_000), total: Some(120), per_service: Some(70) },
                SpendLimit::total(300, Duration::from_millis(4_000)),
            ];
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("spend.jsonl");
            let mut now = 1_000_000i64;
            let mut spending = Arc::new(Spending::open_at(&path, &limits, Durability::Normal, now).unwrap());
            let mut seq = 0u64;
            for step in steps {
                match step {
                    Step::Advance(ms) => now += ms,
                    Step::Restart => {
                        let before = spending.counted.lock().unwrap().windows.spent(0, now, None);
                        drop(spending);
                        spending = Arc::new(Spending::open_at(&path, &limits, Durability::Normal, now).unwrap());
                        let after = spending.counted.lock().unwrap().windows.spent(0, now, None);
                        prop_assert!(after >= before, "a restart forgot spending: {before} then {after}");
                    }
                    Step::Burst(payments) => {
                        let chunks: Vec<Vec<(u8, u64, u64)>> = payments
                            .chunks(payments.len().div_ceil(4))
                            .map(|c| c.iter().map(|&(s, a)| { seq += 1; (s, a, seq) }).collect())
                            .collect();
                        std::thread::scope(|scope| {
                            for chunk in chunks {
                                let spending = Arc::clone(&spending);
                                scope.spawn(move || {
                                    for (service, amount, seq) in chunk {
                                        let name = format!("http://s{service}");
                                        // Each payment on a lane of its own.
                                        let lane = Pubkey::new_unique();
                                        let paid = spending.spend_at(now, &name, &lane, amount, || {
                                            spending.record(&entry(now, service, amount, seq, lane), false)
                                        });
                                        assert!(matches!(paid, Ok(Ok(((), _))) | Err(_)));
                                    }
                                });
                            }
                        });
                    }
                }
            }
            // Exactly, from the log: every interval of a period ending at a payment.
            let logged = read_spend_log(&path).unwrap();
            for end in logged.iter().map(|e| e.at) {
                let within = |period: i64, service: Option<&str>| -> u64 {
                    logged
                        .iter()
                        .filter(|e| e.at > end - period && e.at <= end)
                        .filter(|e| service.is_none_or(|s| e.service == s))
                        .map(|e| e.amount)
                        .sum()
                };
                prop_assert!(within(PERIOD, None) <= 120);
                prop_assert!(within(4_000, None) <= 300);
                for s in 0..3 {
                    let service = format!("http://s{s}");
                    prop_assert!(within(PERIOD, Some(&service)) <= 70);
                }
            }
        }
    }

    #[test]
    fn the_filter_refuses_before_discovery_what_it_can() {
        let key = Pubkey::new_from_array([7; 32]);
        let origins = ServiceFilter {
            allow: vec!["https://a.example".into()],
            deny: vec![],
        };
        assert!(origins.check("https://a.example", None).is_ok());
        assert!(origins.check("https://b.example", None).is_err());
        let keys = ServiceFilter {
            allow: vec![key.to_string()],
            deny: vec!["https://evil.example".into()],
        };
        // Unknown until the manifest names its recipient.
        assert!(keys.check("https://b.example", None).is_ok());
        assert!(keys.check("https://b.example", Some(&key)).is_ok());
        let other = Pubkey::new_from_array([8; 32]);
        assert!(keys.check("https://b.example", Some(&other)).is_err());
        assert!(keys.check("https://evil.example", None).is_err());
        assert!(ServiceFilter::default()
            .check("https://any.example", None)
            .is_ok());
    }
}
