//! `amp spend`: what the agent of a lane file spent, from the spend log
//! beside it, grouped by service, day or route.

use std::fmt;
use std::path::PathBuf;

use amp_sdk::client::spend::{read_spend_log, spend_log_path, SpendGroup, SpendReport};
use clap::Args;
use serde::Serialize;

use crate::config;
use crate::context::GlobalArgs;
use crate::error::CliError;
use crate::output::utc;
use crate::spend_policy::parse_period;

/// Report what `amp pay` (or an SDK agent) spent, from its spend log.
#[derive(Debug, Args)]
pub struct SpendCmd {
    /// The agent's lane file; its spend log is FILE.spend.jsonl
    /// [default: ~/.config/amp/lanes.json].
    #[arg(long, value_name = "FILE")]
    pub lanes: Option<PathBuf>,
    /// Group by service, day (UTC) or route.
    #[arg(long, value_name = "GROUP", default_value = "service")]
    pub by: SpendGroup,
    /// Only payments since a UTC date (2026-12-01) or a period ago (24h, 7d).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
}

impl SpendCmd {
    pub async fn run(self, _globals: &GlobalArgs) -> Result<SpendOutput, CliError> {
        let lanes = self
            .lanes
            .as_deref()
            .map(config::expand_home)
            .unwrap_or_else(config::default_lane_file);
        let since = match &self.since {
            None => 0,
            Some(text) => since(text, amp_sdk::client::spend::now_ms())?,
        };
        let log = spend_log_path(&lanes);
        let entries = tokio::task::spawn_blocking(move || read_spend_log(&log))
            .await
            .map_err(|e| CliError::state(format!("reading the spend log: {e}")))?
            .map_err(|e| CliError::state(e.to_string()))?;
        Ok(SpendOutput(SpendReport::new(&entries, self.by, since)))
    }
}

/// `--since`: a UTC date, or a period before `now` (unix milliseconds).
fn since(text: &str, now: i64) -> Result<i64, CliError> {
    if let Some(days) = date(text) {
        return Ok(days * 86_400_000);
    }
    let period = parse_period(text)
        .map_err(|e| CliError::usage(format!("--since: {e}; or a date, e.g. 2026-12-01")))?;
    let ago = i64::try_from(period.as_millis()).unwrap_or(i64::MAX);
    Ok(now.saturating_sub(ago))
}

/// Days since 1970-01-01 of `YYYY-MM-DD` (Howard Hinnant's `days_from_civil`).
fn date(text: &str) -> Option<i64> {
    let mut parts = text.splitn(3, '-');
    let (y, m, d): (i64, i64, i64) = (
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// The report: JSON as the SDK defines it, a table for people.
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct SpendOutput(pub SpendReport);

impl fmt::Display for SpendOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let report = &self.0;
        if report.since > 0 {
            writeln!(f, "Since {}", utc(report.since / 1_000))?;
        }
        let key = match report.by {
            SpendGroup::Day => "day (UTC)",
            SpendGroup::Route => "service and route",
            _ => "service",
        };
        let width = report
            .rows
            .iter()
            .map(|r| r.key.len())
            .chain([key.len(), 5])
            .max()
            .unwrap_or(0);
        writeln!(
            f,
            "{key:<width$}  {:>8}  {:>10}  {:>14}",
            "payments", "units", "amount (base)"
        )?;
        for row in &report.rows {
            writeln!(
                f,
                "{:<width$}  {:>8}  {:>10}  {:>14}",
                row.key, row.payments, row.units, row.amount
            )?;
        }
        write!(
            f,
            "{:<width$}  {:>8}  {:>10}  {:>14}",
            "total", "", "", report.total
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_dates_and_periods() {
        assert_eq!(date("1970-01-02"), Some(1));
        assert_eq!(date("2026-12-03"), Some(20_790));
        assert_eq!(date("2026-13-01"), None);
        assert_eq!(since("2026-12-03", 0).unwrap(), 20_790 * 86_400_000);
        assert_eq!(since("24h", 100_000_000).unwrap(), 100_000_000 - 86_400_000);
        assert!(since("yesterday", 0).is_err());
    }
}
