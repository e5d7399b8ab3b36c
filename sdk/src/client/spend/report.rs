//! What the spend log adds up to, grouped for people (`amp spend`) and
//! programs alike.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::log::SpendEntry;
use crate::decimal::u64_string;

/// How a report groups payments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SpendGroup {
    /// By service (origin).
    Service,
    /// By UTC day (`YYYY-MM-DD`).
    Day,
    /// By service and route.
    Route,
}

impl std::str::FromStr for SpendGroup {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "service" => Ok(Self::Service),
            "day" => Ok(Self::Day),
            "route" => Ok(Self::Route),
            other => Err(format!("{other:?} is not service, day or route")),
        }
    }
}

/// One group's payments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendRow {
    /// The service, day, or `service route`.
    pub key: String,
    /// How many payments.
    pub payments: u64,
    /// Units paid for, where the price told them.
    pub units: u64,
    /// What they added up to, in the mint's smallest unit.
    #[serde(with = "u64_string")]
    pub amount: u64,
}

/// Payments since a time, grouped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendReport {
    /// The grouping.
    pub by: SpendGroup,
    /// Entries at or after this time (unix milliseconds) were counted.
    pub since: i64,
    /// The groups, in key order.
    pub rows: Vec<SpendRow>,
    /// All of them together.
    #[serde(with = "u64_string")]
    pub total: u64,
}

impl SpendReport {
    /// Groups the `entries` at or after `since` (unix milliseconds) by `by`.
    pub fn new(entries: &[SpendEntry], by: SpendGroup, since: i64) -> Self {
        let mut groups: BTreeMap<String, SpendRow> = BTreeMap::new();
        let mut total = 0u64;
        for entry in entries.iter().filter(|e| e.at >= since) {
            let key = match by {
                SpendGroup::Service => entry.service.clone(),
                SpendGroup::Day => day(entry.at),
                SpendGroup::Route => format!("{} {}", entry.service, entry.route),
            };
            let row = groups.entry(key.clone()).or_insert(SpendRow {
                key,
                payments: 0,
                units: 0,
                amount: 0,
            });
            row.payments += 1;
            row.units = row.units.saturating_add(entry.units.unwrap_or(0));
            row.amount = row.amount.saturating_add(entry.amount);
            total = total.saturating_add(entry.amount);
        }
        Self {
            by,
            since,
            rows: groups.into_values().collect(),
            total,
        }
    }
}

/// The UTC day of `at` (unix milliseconds), as `YYYY-MM-DD`.
fn day(at: i64) -> String {
    let (y, m, d) = civil_from_days(at.div_euclid(86_400_000));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The proleptic Gregorian date (year, month, day) `days` after 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anchor_lang::prelude::Pubkey;

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(day(0), "1970-01-01");
        assert_eq!(day(951_782_400_000), "2000-02-29");
        assert_eq!(day(1_796_256_000_000 - 1), "2026-12-02");
        assert_eq!(day(1_796_256_000_000), "2026-12-03");
    }

    #[test]
    fn reports_group_and_add_up() {
        let entry = |at: i64, service: &str, route: &str, amount: u64| SpendEntry {
            at,
            service: service.into(),
            route: route.into(),
            mode: None,
            units: Some(1),
            amount,
            cumulative: amount,
            lane: Pubkey::new_from_array([1; 32]),
            seq: 1,
        };
        let entries = [
            entry(10, "http://a", "/x", 5),
            entry(20, "http://a", "/y", 7),
            entry(86_400_000, "http://b", "/x", 11),
        ];
        let by_service = SpendReport::new(&entries, SpendGroup::Service, 0);
        assert_eq!(by_service.total, 23);
        assert_eq!(
            by_service
                .rows
                .iter()
                .map(|r| (r.key.as_str(), r.payments, r.amount))
                .collect::<Vec<_>>(),
            [("http://a", 2, 12), ("http://b", 1, 11)]
        );
        let by_day = SpendReport::new(&entries, SpendGroup::Day, 15);
        assert_eq!(by_day.total, 18);
        assert_eq!(by_day.rows[0].key, "1970-01-01");
        assert_eq!(by_day.rows[1].key, "1970-01-02");
        let by_route = SpendReport::new(&entries, SpendGroup::Route, 0);
        assert_eq!(by_route.rows.len(), 3);
        assert_eq!(by_route.rows[0].key, "http://a /x");
    }
}
