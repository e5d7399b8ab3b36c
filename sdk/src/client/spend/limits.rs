//! Spend limits over rolling windows: pure bookkeeping of what was spent
//! when and where, and whether one more payment fits ("caller writes
//! back": [`Windows::check`] decides, [`Windows::add`] records).
//!
//! Each window counts in sixtieths of its period: a payment leaves it up to
//! a sixtieth of the period late, never early, so a limit is never exceeded
//! and memory stays bounded however many payments there are.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// How many parts a window's period is counted in.
const PARTS: i64 = 60;

/// The most the agent may spend within any `period`, in the mint's smallest
/// unit: in all, and at any one service (origin).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpendLimit {
    /// The rolling window: any interval of this length.
    pub period: Duration,
    /// Most spent across all services within the period; `None`: no limit.
    pub total: Option<u64>,
    /// Most spent at any one service within the period; `None`: no limit.
    pub per_service: Option<u64>,
}

impl SpendLimit {
    /// At most `total` in all within any `period`.
    pub fn total(total: u64, period: Duration) -> Self {
        Self {
            period,
            total: Some(total),
            per_service: None,
        }
    }

    /// At most `per_service` at each service within any `period`.
    pub fn per_service(per_service: u64, period: Duration) -> Self {
        Self {
            period,
            total: None,
            per_service: Some(per_service),
        }
    }
}

/// Which limit a payment would pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exceeded {
    /// The limit's period.
    pub period: Duration,
    /// The service, for a per-service limit; `None` for the total.
    pub service: Option<String>,
    /// The limit.
    pub limit: u64,
    /// Already spent within the period.
    pub spent: u64,
    /// The payment refused.
    pub amount: u64,
}

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scope = match self.service {
            Some(_) => "at this service",
            None => "in all",
        };
        write!(
            f,
            "the spend limit of {} {scope} per {} s is {} spent; {} more would pass it",
            self.limit,
            self.period.as_secs_f64(),
            self.spent,
            self.amount
        )
    }
}

/// One part of a window: what was spent in it, in all and per service.
#[derive(Debug)]
struct Part {
    start: i64,
    total: u64,
    services: HashMap<String, u64>,
}

/// One limit and the parts of its window still inside it.
#[derive(Debug)]
struct Window {
    limit: SpendLimit,
    /// The period, in milliseconds.
    period: i64,
    /// Length of a part, in milliseconds (at least 1).
    width: i64,
    parts: VecDeque<Part>,
}

impl Window {
    fn new(limit: SpendLimit) -> Self {
        let period = i64::try_from(limit.period.as_millis()).unwrap_or(i64::MAX);
        Self {
            limit,
            period,
            width: (period / PARTS).max(1),
            parts: VecDeque::new(),
        }
    }

    /// Drops the parts wholly before the window ending at `now`.
    fn expire(&mut self, now: i64) {
        let from = now.saturating_sub(self.period);
        while self
            .parts
            .front()
            .is_some_and(|p| p.start.saturating_add(self.width) <= from)
        {
            self.parts.pop_front();
        }
    }

    fn spent(&self, service: Option<&str>) -> u64 {
        self.parts.iter().fold(0u64, |sum, part| {
            let here = match service {
                None => part.total,
                Some(service) => part.services.get(service).copied().unwrap_or(0),
            };
            sum.saturating_add(here)
        })
    }

    fn check(&self, service: &str, amount: u64) -> Result<(), Exceeded> {
        let over = |limit: Option<u64>, service: Option<&str>| {
            let limit = limit?;
            let spent = self.spent(service);
            (spent.saturating_add(amount) > limit).then(|| Exceeded {
                period: self.limit.period,
                service: service.map(str::to_owned),
                limit,
                spent,
                amount,
            })
        };
        match over(self.limit.total, None).or_else(|| over(self.limit.per_service, Some(service))) {
            Some(exceeded) => Err(exceeded),
            None => Ok(()),
        }
    }

    fn add(&mut self, at: i64, service: &str, amount: u64) {
        let start = at - at.rem_euclid(self.width);
        // Payments recorded out of order (a replayed log) go to their part.
        let index = self.parts.iter().rposition(|p| p.start <= start);
        let part = match index {
            Some(i) if self.parts[i].start == start => &mut self.parts[i],
            _ => {
                let at_index = index.map_or(0, |i| i + 1);
                self.parts.insert(
                    at_index,
                    Part {
                        start,
                        total: 0,
                        services: HashMap::new(),
                    },
                );
                &mut self.parts[at_index]
            }
        };
        part.total = part.total.saturating_add(amount);
        let here = part.services.entry(service.to_owned()).or_default();
        *here = here.saturating_add(amount);
    }
}

/// What was spent within each limit's window.
#[derive(Debug)]
pub(crate) struct Windows {
    windows: Vec<Window>,
}

impl Windows {
    /// Empty windows for `limits`.
    pub(crate) fn new(limits: &[SpendLimit]) -> Self {
        Self {
            windows: limits.iter().copied().map(Window::new).collect(),
        }
    }

    /// The longest period of any limit: older payments no longer count.
    pub(crate) fn longest(&self) -> Duration {
        self.windows
            .iter()
            .map(|w| w.limit.period)
            .max()
            .unwrap_or_default()
    }

    /// Whether paying `amount` to `service` at `now` (unix milliseconds)
    /// keeps every limit.
    pub(crate) fn check(&mut self, now: i64, service: &str, amount: u64) -> Result<(), Exceeded> {
        self.windows.iter_mut().try_for_each(|window| {
            window.expire(now);
            window.check(service, amount)
        })
    }

    /// Records `amount` paid to `service` at `at` (unix milliseconds).
    pub(crate) fn add(&mut self, at: i64, service: &str, amount: u64) {
        for window in &mut self.windows {
            window.add(at, service, amount);
        }
    }

    /// What counts against `limit` number `index` at `now`, in all or at `service`.
    #[cfg(test)]
    pub(crate) fn spent(&mut self, index: usize, now: i64, service: Option<&str>) -> u64 {
        let window = &mut self.windows[index];
        window.expire(now);
        window.spent(service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_payment_counts_for_a_whole_period_then_leaves() {
        let mut windows = Windows::new(&[SpendLimit::total(100, MINUTE)]);
        windows.add(0, "a", 60);
        assert!(windows.check(1_000, "b", 40).is_ok());
        let refused = windows.check(59_000, "b", 41).unwrap_err();
        assert_eq!(
            (refused.limit, refused.spent, refused.amount),
            (100, 60, 41)
        );
        assert_eq!(refused.service, None);
        // Out of the window once its part is wholly older than a minute.
        assert!(windows.check(61_000, "b", 100).is_ok());
        assert_eq!(windows.spent(0, 61_000, None), 0);
    }

    #[test]
    fn per_service_limits_count_each_service_apart() {
        let mut windows = Windows::new(&[SpendLimit::per_service(50, MINUTE)]);
        windows.add(0, "a", 50);
        assert!(windows.check(10, "b", 50).is_ok());
        let refused = windows.check(10, "a", 1).unwrap_err();
        assert_eq!(refused.service.as_deref(), Some("a"));
    }

    /// A payment at `at` of `amount` to service `s`.
    fn payments() -> impl Strategy<Value = Vec<(i64, u8, u64)>> {
        prop::collection::vec((0i64..5_000, 0u8..3, 1u64..40), 1..200)
    }

    proptest! {
        /// Whatever the order and timing of payments, what [`Windows`]
        /// admits never exceeds a limit over any interval of its period
        /// (checked against every payment admitted, exactly).
        #[test]
        fn admitted_payments_never_exceed_a_limit(steps in payments()) {
            let period = Duration::from_millis(600);
            let limits = [SpendLimit {
                period,
                total: Some(100),
                per_service: Some(60),
            }];
            let mut windows = Windows::new(&limits);
            let mut now = 0i64;
            let mut admitted: Vec<(i64, u8, u64)> = Vec::new();
            for (advance, service, amount) in steps {
                now += advance % 97;
                let name = service.to_string();
                if windows.check(now, &name, amount).is_ok() {
                    windows.add(now, &name, amount);
                    admitted.push((now, service, amount));
                }
            }
            for &(end, _, _) in &admitted {
                let within = |s: Option<u8>| -> u64 {
                    admitted
                        .iter()
                        .filter(|(at, who, _)| *at > end - 600 && *at <= end && s.is_none_or(|s| s == *who))
                        .map(|(_, _, a)| a)
                        .sum()
                };
                prop_assert!(within(None) <= 100);
                for s in 0..3 {
                    prop_assert!(within(Some(s)) <= 60);
                }
            }
        }
    }
}
