//! `amp status <URL>`: what a paid service's settler reports, for people.

use std::fmt;

use amp_sdk::server::{ServiceStatus, SettlerStatus, STATUS_PATH};
use clap::Args;
use serde::Serialize;

use crate::context::GlobalArgs;
use crate::error::CliError;

/// Show a paid service's status: per mint, what is owed, pending and
/// settled, and when and why the next settlement is due.
///
/// Reads the service's status document (GET /.well-known/amp/status).
/// Amounts are in the mint's base units.
#[derive(Debug, Args)]
pub struct StatusCmd {
    // Not `url`: that is the global cluster option's name.
    /// The service, e.g. http://127.0.0.1:8402 (or its status URL).
    #[arg(value_name = "URL")]
    pub service: reqwest::Url,
}

/// The service's status document, and where it was read.
#[derive(Clone, Debug, Serialize)]
pub struct StatusReport {
    pub url: String,
    #[serde(flatten)]
    pub status: ServiceStatus,
}

impl StatusCmd {
    /// Reads the status document.
    pub async fn run(self, _globals: &GlobalArgs) -> Result<StatusReport, CliError> {
        let url = status_url(self.service);
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        let response = http.get(url.clone()).send().await?;
        if !response.status().is_success() {
            return Err(CliError::State(format!(
                "{url} answered {} (the service may not serve its status)",
                response.status()
            )));
        }
        let status: ServiceStatus = response.json().await?;
        Ok(StatusReport {
            url: url.to_string(),
            status,
        })
    }
}

/// The status document's URL: `url` itself when it names it, else the
/// document under `url`'s path.
fn status_url(mut url: reqwest::Url) -> reqwest::Url {
    if !url.path().ends_with(STATUS_PATH) {
        let path = format!("{}{STATUS_PATH}", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    url.set_query(None);
    url
}

impl fmt::Display for StatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.status.settler;
        writeln!(f, "{}", self.url)?;
        let rows: Vec<[String; 6]> = s
            .mints
            .iter()
            .map(|m| {
                let next = m.next_settlement.map_or_else(
                    || "-".to_owned(),
                    |n| match n.in_seconds {
                        0 => format!("{} (now)", n.reason),
                        s => format!("{} in {}", n.reason, duration(s)),
                    },
                );
                [
                    m.mint.to_string(),
                    m.owed.to_string(),
                    m.pending.to_string(),
                    m.pending_lanes.to_string(),
                    m.settled.to_string(),
                    next,
                ]
            })
            .collect();
        let header = [
            "MINT",
            "OWED",
            "PENDING",
            "LANES",
            "SETTLED",
            "NEXT SETTLEMENT",
        ];
        let mut widths = header.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.len());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, cells: [&str; 6]| {
            let text: Vec<String> = cells
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            writeln!(f, "{}", text.join("  ").trim_end())
        };
        line(f, header)?;
        for row in &rows {
            line(f, row.each_ref().map(String::as_str))?;
        }
        if rows.is_empty() {
            writeln!(
                f,
                "(no figures per mint: the settler is off or has not run)"
            )?;
        }
        settler(f, s)?;
        if let Some(sessions) = &self.status.sessions {
            write!(
                f,
                "\nsessions: {} lane(s), {} at risk (credit {} per lane)",
                sessions.lanes, sessions.at_risk, sessions.credit_per_lane
            )?;
        }
        Ok(())
    }
}

fn settler(f: &mut fmt::Formatter<'_>, s: &SettlerStatus) -> fmt::Result {
    write!(
        f,
        "settler: {} transaction(s), {} lane(s) settled for {}, {} failure(s), {} lost lane(s)",
        s.transactions, s.lanes_settled, s.amount_settled, s.failures, s.lost_lanes
    )?;
    if let Some(error) = &s.last_error {
        write!(f, "\nlast error: {error}")?;
    }
    if let Some(signature) = &s.last_transaction {
        write!(f, "\nlast transaction: {signature}")?;
    }
    Ok(())
}

/// Seconds as `1h 5m`, `4m 10s` or `9s`.
fn duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3_600, seconds / 60 % 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_status_document() {
        for (given, expected) in [
            (
                "http://127.0.0.1:8402",
                "http://127.0.0.1:8402/.well-known/amp/status",
            ),
            ("http://h/api/", "http://h/api/.well-known/amp/status"),
            (
                "http://h/.well-known/amp/status",
                "http://h/.well-known/amp/status",
            ),
        ] {
            assert_eq!(status_url(given.parse().unwrap()).as_str(), expected);
        }
        assert_eq!(duration(3_725), "1h 2m");
        assert_eq!(duration(250), "4m 10s");
        assert_eq!(duration(9), "9s");
    }
}
