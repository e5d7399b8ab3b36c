//! The agent's lane file: every lane it pays through, with what it must
//! never repeat (seqs) and never exceed (the budget), so that a restarted
//! agent continues where it stopped.
//!
//! One JSON document, replaced atomically: written to a temporary file,
//! fsync'd, renamed over the old one, and the directory fsync'd
//! ([`Durability::Full`]). JSON rather than SQLite because an agent holds a
//! handful of lanes, the whole state is a few kilobytes that a person can
//! read and repair, and writes are rare: seqs and budget are reserved ahead
//! in leases (see [`super::Policy::lease`]), so a write happens once per
//! lease, not once per request. A lock file keeps two clients off one lane
//! file, since they would reuse each other's seqs.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anchor_lang::prelude::Pubkey;
use serde::{Deserialize, Serialize};

use crate::decimal::u64_string;
pub use crate::durability::Durability;
use crate::manifest::Manifest;

/// The format this client writes and reads.
pub const FILE_VERSION: u32 = 1;

/// How long opening waits for another client (or this process's previous
/// client, still finishing a background task) to release the lock.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Why the lane file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LaneFileError {
    /// Reading, writing or locking a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file that failed (the lane file, its lock or its temporary copy).
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Another client holds the lane file's lock (and kept it for the
    /// whole wait); two clients on one file would reuse seqs.
    #[error("{} is in use by another AMP client", .0.display())]
    Locked(PathBuf),
    /// The file exists but is not a lane file this client can parse.
    #[error("{}: not an AMP lane file: {source}", path.display())]
    Invalid {
        /// The lane file.
        path: PathBuf,
        /// Why it did not parse.
        #[source]
        source: serde_json::Error,
    },
    /// The file was written in a format version this client does not read.
    #[error("{}: lane file version {found}; this client reads version {FILE_VERSION}", path.display())]
    Version {
        /// The lane file.
        path: PathBuf,
        /// The version it records.
        found: u32,
    },
}

/// Where a lane is in its life, as the agent records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LaneStatus {
    /// The open transaction was (or is about to be) sent; on restart the
    /// chain says whether it landed.
    Opening,
    /// Open on-chain: requests are paid through it.
    Open,
    /// Close requested on-chain; refundable from `refundable_at` (unix seconds).
    Closing {
        /// When the grace period ends (unix seconds).
        refundable_at: i64,
    },
}

/// A delegation this agent (as funder) granted on one of its channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantedLane {
    /// The sub-agent's key, which the Delegation authorises.
    #[serde(with = "crate::base58")]
    pub delegate: Pubkey,
    /// Counted against the funder's budget: the sub-agent may spend it all.
    #[serde(with = "u64_string")]
    pub cap: u64,
}

/// One lane as persisted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneRecord {
    /// The service's origin (`https://api.example.com`).
    pub service: String,
    /// The address vouchers name: the Channel, or the Delegation of a sub-agent.
    #[serde(with = "crate::base58")]
    pub lane: Pubkey,
    /// The channel's funder: this agent, or the funder that delegated to it.
    #[serde(with = "crate::base58")]
    pub funder: Pubkey,
    /// The channel's recipient: the service's payee.
    #[serde(with = "crate::base58")]
    pub recipient: Pubkey,
    /// The token the channel pays in.
    #[serde(with = "crate::base58")]
    pub mint: Pubkey,
    /// The mint's token program (SPL Token or Token-2022).
    #[serde(with = "crate::base58")]
    pub token_program: Pubkey,
    /// The channel's nonce, which with funder and recipient derives its address.
    #[serde(with = "u64_string")]
    pub nonce: u64,
    /// Set when this agent is the delegate of a funder's channel.
    #[serde(
        default,
        with = "crate::base58::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub delegate: Option<Pubkey>,
    /// Who fronted the channel's rent when it was not the funder (a service
    /// that sponsored the open); closing paths return the rent there.
    #[serde(
        default,
        with = "crate::base58::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub payer: Option<Pubkey>,
    /// The lane account's generation (its creation slot), which vouchers carry;
    /// 0 until the open is confirmed.
    #[serde(with = "u64_string")]
    pub generation: u64,
    /// The most the lane can ever pay (deposit not delegated, or the cap).
    #[serde(with = "u64_string")]
    pub limit: u64,
    /// Tokens deposited into the channel (its own lane and the caps it
    /// delegated), or the cap of a delegated lane.
    #[serde(with = "u64_string")]
    pub deposited: u64,
    /// The channel's grace period, in seconds.
    pub grace_period: u32,
    /// Where the lane is in its life.
    pub status: LaneStatus,
    /// While opening: when the open transaction was sent (unix seconds; 0
    /// when unknown). Past [`OPENING_WINDOW`] it can no longer land.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub opening_since: i64,
    /// Highest seq that may have been used: the next credential goes above it.
    #[serde(with = "u64_string")]
    pub seq: u64,
    /// Highest cumulative amount that may have been signed; what the budget counts.
    #[serde(with = "u64_string")]
    pub signed: u64,
    /// What the lane owes as far as the agent knows (the server corrects it).
    #[serde(with = "u64_string")]
    pub owed: u64,
    /// Delegations this agent granted on the channel (empty for a delegated lane).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub granted: Vec<GrantedLane>,
    /// The service's terms when the lane was opened (prices, credit).
    pub manifest: Manifest,
}

impl LaneRecord {
    /// The channel's addresses.
    pub fn keys(&self) -> crate::instructions::ChannelKeys {
        crate::instructions::ChannelKeys::new(
            self.funder,
            self.recipient,
            self.nonce,
            self.mint,
            self.token_program,
        )
        .with_payer(self.payer.unwrap_or(self.funder))
    }

    /// Budget held by delegations granted on this lane's channel.
    pub(crate) fn granted_total(&self) -> u64 {
        self.granted
            .iter()
            .fold(0u64, |sum, g| sum.saturating_add(g.cap))
    }
}

/// The whole lane file. Public so that its parser can be fuzzed (the
/// `amp-fuzz` crate) and tools can read the file as the client does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The format version; this client reads and writes version 1.
    pub version: u32,
    /// Budget spent by lanes that no longer exist.
    #[serde(with = "u64_string")]
    pub retired: u64,
    /// Every lane the agent pays through (or is opening, or closing).
    pub lanes: Vec<LaneRecord>,
}

impl Snapshot {
    /// Parses a lane file's bytes as the client does when it opens the
    /// file, refusing other format versions; `path` only names the file in
    /// errors.
    pub fn from_json(path: &Path, bytes: &[u8]) -> Result<Self, LaneFileError> {
        let snapshot: Snapshot =
            serde_json::from_slice(bytes).map_err(|source| LaneFileError::Invalid {
                path: path.to_owned(),
                source,
            })?;
        if snapshot.version != FILE_VERSION {
            return Err(LaneFileError::Version {
                path: path.to_owned(),
                found: snapshot.version,
            });
        }
        Ok(snapshot)
    }
}

/// The open, locked lane file.
pub(crate) struct LaneFile {
    path: PathBuf,
    tmp: PathBuf,
    durability: Durability,
    /// Held for the client's life; the OS releases it if the process dies.
    _lock: File,
}

impl LaneFile {
    /// Locks and reads the file (an absent file is an empty one). Blocking.
    pub(crate) fn open(
        path: &Path,
        durability: Durability,
    ) -> Result<(Self, Snapshot), LaneFileError> {
        let io_error = |path: &Path| {
            let path = path.to_owned();
            move |source| LaneFileError::Io { path, source }
        };
        let lock_path = with_suffix(path, ".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_error(&lock_path))?;
        let started = Instant::now();
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(LaneFileError::Locked(path.to_owned()))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io_error(&lock_path)(e)),
            }
        }
        let snapshot = match std::fs::read(path) {
            Ok(bytes) => Snapshot::from_json(path, &bytes)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Snapshot {
                version: FILE_VERSION,
                ..Snapshot::default()
            },
            Err(e) => return Err(io_error(path)(e)),
        };
        Ok((
            Self {
                path: path.to_owned(),
                tmp: with_suffix(path, ".tmp"),
                durability,
                _lock: lock,
            },
            snapshot,
        ))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file's content atomically. Blocking.
    pub(crate) fn write(&self, bytes: &[u8]) -> Result<(), LaneFileError> {
        let full = self.durability == Durability::Full;
        let write = || -> io::Result<()> {
            let mut options = OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&self.tmp)?;
            file.write_all(bytes)?;
            if full {
                file.sync_all()?;
            }
            drop(file);
            std::fs::rename(&self.tmp, &self.path)?;
            if full {
                // The rename is durable only once the directory is.
                let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty());
                File::open(dir.unwrap_or(Path::new(".")))?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|source| LaneFileError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// How long an open transaction can still land after it was sent: its
/// blockhash lives 150 blocks (a minute to a minute and a half on a
/// cluster); twice that, to be sure.
pub const OPENING_WINDOW: i64 = 180;

fn is_zero(value: &i64) -> bool {
    *value == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_atomically_and_locks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lanes.json");
        let (file, snapshot) = LaneFile::open(&path, Durability::Full).unwrap();
        assert_eq!(snapshot.version, FILE_VERSION);
        assert!(snapshot.lanes.is_empty());
        let mut next = snapshot.clone();
        next.retired = 42;
        file.write(&serde_json::to_vec(&next).unwrap()).unwrap();
        assert!(!with_suffix(&path, ".tmp").exists());
        drop(file);
        let (_file, read) = LaneFile::open(&path, Durability::Normal).unwrap();
        assert_eq!(read, next);
    }

    #[test]
    fn refuses_garbage_and_other_versions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lanes.json");
        std::fs::write(&path, b"{").unwrap();
        assert!(matches!(
            LaneFile::open(&path, Durability::Full),
            Err(LaneFileError::Invalid { .. })
        ));
        std::fs::write(&path, br#"{"version":9,"retired":"0","lanes":[]}"#).unwrap();
        assert!(matches!(
            LaneFile::open(&path, Durability::Full),
            Err(LaneFileError::Version { found: 9, .. })
        ));
    }
}
