//! `--ledger DIR`: the accounts every ended slot wrote, appended to one file
//! and replayed over genesis at the next start.
//!
//! A record is `[length u32 LE][slot u64 LE][count u32 LE]` then, per account,
//! `[address 32][lamports u64][owner 32][executable u8][rent_epoch u64]
//! [data length u32][data]`. A record cut short by a crash is dropped (and
//! the file truncated to the last whole record): the slot it held had not
//! ended, so its transactions were never reported confirmed.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use solana_account::Account;
use solana_pubkey::Pubkey;

const FILE: &str = "accounts.journal";

/// What a journal held at start.
#[derive(Default)]
pub(crate) struct Restored {
    /// The last slot it recorded.
    pub slot: u64,
    /// The latest state of every account it recorded.
    pub accounts: Vec<(Pubkey, Account)>,
}

/// Reading or writing the journal failed.
#[derive(Debug, thiserror::Error)]
#[error("ledger journal {path}: {source}")]
pub struct JournalError {
    path: PathBuf,
    #[source]
    source: io::Error,
}

pub(crate) struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Opens (or creates) the journal in `dir` and reads it back.
    pub(crate) fn open(dir: &Path) -> Result<(Self, Restored), JournalError> {
        let path = dir.join(FILE);
        let fail = |source| JournalError {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(fail)?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(fail)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(fail)?;
        let (restored, whole) = replay(&bytes);
        if whole < bytes.len() {
            tracing::warn!(path = %path.display(), dropped = bytes.len() - whole, "localnet: journal ends in a partial record (a crash mid-write); dropping it");
            file.set_len(whole as u64).map_err(fail)?;
            file.seek(SeekFrom::End(0)).map_err(fail)?;
        }
        Ok((Self { path, file }, restored))
    }

    /// Appends one ended slot's writes and syncs them to disk.
    pub(crate) fn append(
        &mut self,
        slot: u64,
        accounts: &[(Pubkey, Account)],
    ) -> Result<(), JournalError> {
        if accounts.is_empty() {
            return Ok(());
        }
        let mut body = Vec::new();
        body.extend_from_slice(&slot.to_le_bytes());
        body.extend_from_slice(&(accounts.len() as u32).to_le_bytes());
        for (address, account) in accounts {
            body.extend_from_slice(address.as_ref());
            body.extend_from_slice(&account.lamports.to_le_bytes());
            body.extend_from_slice(account.owner.as_ref());
            body.push(account.executable as u8);
            body.extend_from_slice(&account.rent_epoch.to_le_bytes());
            body.extend_from_slice(&(account.data.len() as u32).to_le_bytes());
            body.extend_from_slice(&account.data);
        }
        let mut record = Vec::with_capacity(body.len() + 4);
        record.extend_from_slice(&(body.len() as u32).to_le_bytes());
        record.extend_from_slice(&body);
        let fail = |source| JournalError {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&record).map_err(fail)?;
        self.file.sync_data().map_err(fail)
    }
}

/// The state the whole records in `bytes` leave, and how many bytes they span.
fn replay(bytes: &[u8]) -> (Restored, usize) {
    let mut latest: HashMap<Pubkey, Account> = HashMap::new();
    let mut order: Vec<Pubkey> = Vec::new();
    let mut slot = 0;
    let mut at = 0;
    while let Some((record_slot, accounts, next)) = record(bytes, at) {
        slot = record_slot;
        for (address, account) in accounts {
            if latest.insert(address, account).is_none() {
                order.push(address);
            }
        }
        at = next;
    }
    let accounts = order
        .into_iter()
        .filter_map(|address| latest.remove(&address).map(|account| (address, account)))
        .collect();
    (Restored { slot, accounts }, at)
}

/// One journal record: its slot, the accounts it wrote, and where the next begins.
type Record = (u64, Vec<(Pubkey, Account)>, usize);

/// The record at `at`, or `None` at the end or at a partial record.
fn record(bytes: &[u8], at: usize) -> Option<Record> {
    let mut reader = Reader { bytes, at };
    let length = reader.u32()? as usize;
    let end = reader.at.checked_add(length)?;
    if end > bytes.len() {
        return None;
    }
    let mut reader = Reader {
        bytes: &bytes[..end],
        at: reader.at,
    };
    let slot = reader.u64()?;
    let count = reader.u32()?;
    let mut accounts = Vec::new();
    for _ in 0..count {
        let address = Pubkey::new_from_array(reader.array()?);
        let lamports = reader.u64()?;
        let owner = Pubkey::new_from_array(reader.array()?);
        let executable = reader.take(1)?[0] != 0;
        let rent_epoch = reader.u64()?;
        let data_length = reader.u32()? as usize;
        let data = reader.take(data_length)?.to_vec();
        accounts.push((
            address,
            Account {
                lamports,
                data,
                owner,
                executable,
                rent_epoch,
            },
        ));
    }
    (reader.at == end).then_some((slot, accounts, end))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let slice = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(slice)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(lamports: u64, data: &[u8]) -> Account {
        Account {
            lamports,
            data: data.to_vec(),
            owner: Pubkey::new_unique(),
            executable: false,
            rent_epoch: u64::MAX,
        }
    }

    #[test]
    fn the_latest_state_of_each_account_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let a = Pubkey::new_unique();
        let b = Pubkey::new_unique();
        {
            let (mut journal, restored) = Journal::open(dir.path()).unwrap();
            assert!(restored.accounts.is_empty());
            journal
                .append(5, &[(a, account(1, b"one")), (b, account(2, b""))])
                .unwrap();
            journal.append(9, &[(a, account(3, b"three"))]).unwrap();
        }
        let (_, restored) = Journal::open(dir.path()).unwrap();
        assert_eq!(restored.slot, 9);
        let got: HashMap<_, _> = restored.accounts.into_iter().collect();
        assert_eq!(got[&a].lamports, 3);
        assert_eq!(got[&a].data, b"three");
        assert_eq!(got[&b].lamports, 2);
    }

    #[test]
    fn a_record_cut_short_by_a_crash_is_dropped_and_the_file_mended() {
        let dir = tempfile::tempdir().unwrap();
        let a = Pubkey::new_unique();
        {
            let (mut journal, _) = Journal::open(dir.path()).unwrap();
            journal.append(5, &[(a, account(1, b"one"))]).unwrap();
            journal.append(6, &[(a, account(2, b"two"))]).unwrap();
        }
        let path = dir.path().join(FILE);
        let whole = std::fs::metadata(&path).unwrap().len();
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(whole - 3).unwrap();
        drop(file);
        let (mut journal, restored) = Journal::open(dir.path()).unwrap();
        assert_eq!(restored.slot, 5);
        assert_eq!(restored.accounts[0].1.lamports, 1);
        // Appending after the mend yields a readable file again.
        journal.append(7, &[(a, account(4, b""))]).unwrap();
        drop(journal);
        let (_, restored) = Journal::open(dir.path()).unwrap();
        assert_eq!((restored.slot, restored.accounts[0].1.lamports), (7, 4));
    }
}
