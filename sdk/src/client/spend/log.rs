//! The spend log: every payment the agent commits to, appended as a JSON
//! line to a file beside the lane file before the payment is sent. It is
//! what `amp spend` reports, and what the spend limits are counted from
//! again after a restart.
//!
//! A line is written with one `write` on a file opened for appending, so a
//! process killed at any point leaves whole lines and at most one torn last
//! line (skipped on reading). With [`Durability::Full`] the file is also
//! flushed to disk whenever the lane file is, so a power loss forgets at
//! most the payments of the leases since.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anchor_lang::prelude::Pubkey;
use serde::{Deserialize, Serialize};

use crate::decimal::u64_string;
use crate::durability::Durability;
use crate::manifest::PricingMode;

/// One payment: a credential (signed or, in a session, MAC'd) that raised
/// what a lane owes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendEntry {
    /// When it was committed, unix milliseconds.
    pub at: i64,
    /// The service's origin.
    pub service: String,
    /// The path paid for (an AMP endpoint's for a credential posted on its
    /// own, such as a session's opening).
    pub route: String,
    /// The pricing mode of the route, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<PricingMode>,
    /// Units paid for, when the price tells: 1 for a call, else the amount
    /// over the rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<u64>,
    /// What this payment added to the lane, in the mint's smallest unit.
    #[serde(with = "u64_string")]
    pub amount: u64,
    /// The lane's cumulative amount after it.
    #[serde(with = "u64_string")]
    pub cumulative: u64,
    /// The lane paid from.
    #[serde(with = "crate::base58")]
    pub lane: Pubkey,
    /// The credential's seq.
    pub seq: u64,
}

/// Why the spend log could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpendLogError {
    /// The file could not be opened, read or written.
    #[error("spend log {path}: {source}")]
    Io {
        /// The log's path.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A line other than the last is not an entry: the file is not a spend log.
    #[error("spend log {path}, line {line}: {reason}")]
    Corrupt {
        /// The log's path.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// Why it is not an entry.
        reason: String,
    },
}

/// The spend log of a lane file at `lanes`: `<lanes>.spend.jsonl`.
pub fn spend_log_path(lanes: &Path) -> PathBuf {
    let mut name = lanes.as_os_str().to_owned();
    name.push(".spend.jsonl");
    PathBuf::from(name)
}

/// Reads every entry of the log at `path`; none when it does not exist. A
/// torn last line (a write cut off by a crash) is skipped.
pub fn read_spend_log(path: &Path) -> Result<Vec<SpendEntry>, SpendLogError> {
    match read(path)? {
        Some(bytes) => parse(path, &bytes),
        None => Ok(Vec::new()),
    }
}

/// The log's bytes; `None` when it does not exist.
fn read(path: &Path) -> Result<Option<Vec<u8>>, SpendLogError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SpendLogError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The entries of a log's `bytes`, a last line that does not parse skipped
/// as torn.
fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<SpendEntry>, SpendLogError> {
    let text = std::str::from_utf8(bytes).map_err(|e| SpendLogError::Io {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    let lines: Vec<&str> = text.lines().collect();
    let last = lines.len();
    let mut entries = Vec::with_capacity(last);
    for (index, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(entry) => entries.push(entry),
            Err(_) if index + 1 == last => {
                tracing::warn!(path = %path.display(), "skipping the spend log's torn last line");
            }
            Err(e) => {
                return Err(SpendLogError::Corrupt {
                    path: path.to_owned(),
                    line: index + 1,
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(entries)
}

/// The log, open for appending.
#[derive(Debug)]
pub(crate) struct SpendLog {
    path: PathBuf,
    file: File,
    durability: Durability,
}

impl SpendLog {
    /// Opens (creating) the log at `path`, with what it holds already. A
    /// torn last line is cut off first, so the next entry starts a line.
    pub(crate) fn open(
        path: &Path,
        durability: Durability,
    ) -> Result<(Self, Vec<SpendEntry>), SpendLogError> {
        let io = |source| SpendLogError::Io {
            path: path.to_owned(),
            source,
        };
        // Read once: what follows the last newline is a line a crash cut
        // short, cut off here.
        let entries = match read(path)? {
            None => Vec::new(),
            Some(bytes) => {
                let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                if whole < bytes.len() {
                    tracing::warn!(path = %path.display(), "cutting the spend log's torn last line");
                    let file = OpenOptions::new().write(true).open(path).map_err(io)?;
                    file.set_len(whole as u64).map_err(io)?;
                    file.sync_data().map_err(io)?;
                }
                parse(path, &bytes[..whole])?
            }
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        let log = Self {
            path: path.to_owned(),
            file,
            durability,
        };
        Ok((log, entries))
    }

    /// Appends `entry` as one line, in one write.
    pub(crate) fn append(&mut self, entry: &SpendEntry) -> Result<(), SpendLogError> {
        let mut line = serde_json::to_vec(entry).map_err(|e| SpendLogError::Corrupt {
            path: self.path.clone(),
            line: 0,
            reason: e.to_string(),
        })?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(|source| SpendLogError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// Flushes what was appended to disk, when the durability asks for it.
    pub(crate) fn sync(&self) -> Result<(), SpendLogError> {
        if self.durability != Durability::Full {
            return Ok(());
        }
        self.file.sync_data().map_err(|source| SpendLogError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, amount: u64) -> SpendEntry {
        SpendEntry {
            at: 1_700_000_000_000 + seq as i64,
            service: "http://127.0.0.1:8080".into(),
            route: "/v1/hello".into(),
            mode: Some(PricingMode::PerCall),
            units: Some(1),
            amount,
            cumulative: seq * amount,
            lane: Pubkey::new_from_array([5; 32]),
            seq,
        }
    }

    #[test]
    fn entries_survive_reopening_and_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = spend_log_path(&dir.path().join("lanes.json"));
        assert!(path.ends_with("lanes.json.spend.jsonl"));
        assert_eq!(read_spend_log(&path).unwrap(), vec![]);
        let (mut log, found) = SpendLog::open(&path, Durability::Full).unwrap();
        assert!(found.is_empty());
        log.append(&entry(1, 10)).unwrap();
        log.append(&entry(2, 10)).unwrap();
        log.sync().unwrap();
        drop(log);
        // A crash in the middle of a write.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"at":17000"#).unwrap();
        drop(file);
        let (mut log, found) = SpendLog::open(&path, Durability::Full).unwrap();
        assert_eq!(found, vec![entry(1, 10), entry(2, 10)]);
        log.append(&entry(3, 10)).unwrap();
        drop(log);
        let read = read_spend_log(&path).unwrap();
        assert_eq!(read, vec![entry(1, 10), entry(2, 10), entry(3, 10)]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#""amount":"10""#), "{text}");
    }

    #[test]
    fn a_corrupt_line_before_the_last_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "not json\n{}\n").unwrap();
        assert!(matches!(
            read_spend_log(&path),
            Err(SpendLogError::Corrupt { line: 1, .. })
        ));
    }
}
