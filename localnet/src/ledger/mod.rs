//! The node's state: a bank per slot on the wall clock, and what landed.
//!
//! Unlike `solana-program-test`'s context, whose background ticker registers
//! a blockhash every 6.4 ms (so a blockhash dies after about a second), the
//! ledger registers one blockhash per 400 ms slot, as a cluster does: a
//! blockhash stays valid for 150 slots, about a minute.
//!
//! There are no forks: a slot is rooted as soon as it ends, so "confirmed"
//! and "finalized" are the same thing here (the last ended slot), and
//! "processed" is the slot being filled.

mod genesis;
mod history;
mod journal;

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use amp_sdk::embedded::NativeProgram;
use solana_account::{Account, AccountSharedData, ReadableAccount};
use solana_clock::Clock;
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_runtime::bank::{Bank, TransactionSimulationResult};
use solana_runtime::bank_forks::BankForks;
use solana_signature::Signature;
use solana_signer::Signer;
use solana_svm::transaction_processor::ExecutionRecordingConfig;
use solana_transaction::versioned::VersionedTransaction;
use solana_transaction::TransactionVerificationMode;
use solana_transaction_error::TransactionError;

pub use genesis::{unix_now, SLOT_DURATION};
pub use history::TransactionRecord;
pub use journal::JournalError;

use history::History;
use journal::Journal;

/// How settled a read must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commitment {
    /// The slot being filled: includes what landed a moment ago.
    Processed,
    /// The last ended slot (rooted at once: confirmed is finalized here).
    Confirmed,
}

/// Why a transaction did not land.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// It does not deserialize or sanitize, or a signature does not verify.
    #[error("transaction verification failed: {0}")]
    Verification(TransactionError),
    /// The bank would not process it (unknown or expired blockhash, already
    /// processed, fee payer cannot pay, ...): nothing was charged.
    #[error("transaction rejected: {0}")]
    Rejected(TransactionError),
}

/// A transaction's status as `getSignatureStatuses` reports it.
#[derive(Clone, Debug)]
pub struct SignatureStatus {
    /// The slot it landed in.
    pub slot: u64,
    /// `Ok`, or the error it failed with.
    pub status: Result<(), TransactionError>,
    /// Whether its slot has ended (confirmed and finalized).
    pub confirmed: bool,
}

/// A slot that just ended.
#[derive(Clone, Debug)]
pub struct SlotEnded {
    /// The slot that ended.
    pub slot: u64,
    /// The slot now being filled.
    pub next: u64,
    /// The transactions that landed in the ended slot (now confirmed).
    pub confirmed: Vec<Signature>,
    /// Accounts the ended slot's transactions wrote, with their state.
    pub written: Vec<(Pubkey, Account)>,
}

/// The node's banks and history. Every method is synchronous and short: the
/// caller holds no lock across an await.
pub struct Ledger {
    faucet: Keypair,
    genesis_hash: Hash,
    state: Mutex<State>,
}

struct State {
    forks: Arc<RwLock<BankForks>>,
    /// The slot being filled.
    working: Arc<Bank>,
    /// The last ended slot.
    confirmed: Arc<Bank>,
    history: History,
    /// Landed in the working slot: confirmed when it ends.
    pending: Vec<Signature>,
    /// Written in the working slot: journaled and announced when it ends.
    written: Vec<Pubkey>,
    journal: Option<Journal>,
}

/// How to start a ledger.
pub struct LedgerOptions {
    /// The genesis mint, which funds airdrops.
    pub faucet: Keypair,
    /// Programs to run natively beside AMP (AMP itself is always there).
    pub programs: Vec<NativeProgram>,
    /// A directory that keeps accounts across restarts (`None`: in memory).
    pub journal: Option<std::path::PathBuf>,
    /// How long a slot lasts ([`SLOT_DURATION`] on a cluster).
    pub slot_duration: std::time::Duration,
}

impl Ledger {
    /// Builds the genesis bank, replays the journal if there is one, and
    /// opens the first slot at the wall clock's time.
    pub fn start(options: LedgerOptions) -> Result<Self, JournalError> {
        let forks = genesis::genesis_bank(&options.faucet, options.programs, options.slot_duration);
        let genesis = forks.read().expect("forks lock").root_bank();
        let genesis_hash = genesis.last_blockhash();
        let (journal, restored) = match &options.journal {
            Some(dir) => {
                let (journal, restored) = Journal::open(dir)?;
                (Some(journal), restored)
            }
            None => (None, journal::Restored::default()),
        };
        for (address, account) in &restored.accounts {
            genesis.store_account(address, &AccountSharedData::from(account.clone()));
        }
        let state = State {
            working: genesis.clone(),
            confirmed: genesis,
            forks,
            history: History::default(),
            pending: Vec::new(),
            written: Vec::new(),
            journal,
        };
        let ledger = Self {
            faucet: options.faucet,
            genesis_hash,
            state: Mutex::new(state),
        };
        // Resume after the slot the journal reached, so slots never go back.
        open_slot(&mut ledger.lock(), restored.slot.max(1), unix_now());
        Ok(ledger)
    }

    /// The genesis mint: signs airdrops.
    pub fn faucet(&self) -> &Keypair {
        &self.faucet
    }

    /// The genesis bank's blockhash, which `getGenesisHash` reports.
    pub fn genesis_hash(&self) -> Hash {
        self.genesis_hash
    }

    /// The bank a read at `commitment` sees.
    pub fn bank(&self, commitment: Commitment) -> Arc<Bank> {
        let state = self.lock();
        match commitment {
            Commitment::Processed => state.working.clone(),
            Commitment::Confirmed => state.confirmed.clone(),
        }
    }

    /// Reads an account at `commitment` (`None` when it holds no lamports).
    pub fn account(&self, address: &Pubkey, commitment: Commitment) -> Option<Account> {
        self.bank(commitment)
            .get_account(address)
            .filter(|account| account.lamports() > 0)
            .map(Account::from)
    }

    /// Ends the working slot (registering its blockhash) and opens the next,
    /// stamped with `unix_timestamp`.
    pub fn end_slot(&self, unix_timestamp: i64) -> SlotEnded {
        // One lock for the whole step: no transaction lands between the slot
        // being accounted for and the next one opening.
        let mut state = self.lock();
        let (slot, confirmed, written) = {
            let slot = state.working.slot();
            let confirmed = std::mem::take(&mut state.pending);
            let written_keys = std::mem::take(&mut state.written);
            let working = state.working.clone();
            let written: Vec<(Pubkey, Account)> = written_keys
                .into_iter()
                .map(|key| {
                    let account = working
                        .get_account(&key)
                        .map(Account::from)
                        .unwrap_or_default();
                    (key, account)
                })
                .collect();
            if let Some(journal) = state.journal.as_mut() {
                if let Err(error) = journal.append(slot, &written) {
                    tracing::error!(%error, slot, "localnet: journal write failed");
                }
            }
            (slot, confirmed, written)
        };
        let next = open_slot(&mut state, slot + 1, unix_timestamp);
        SlotEnded {
            slot,
            next,
            confirmed,
            written,
        }
    }

    /// Verifies and executes a transaction in the working slot.
    ///
    /// A transaction that fails in a program still lands (and pays its fee):
    /// that is `Ok` here, with the failure in its record.
    pub fn send(&self, transaction: VersionedTransaction) -> Result<Signature, SendError> {
        let mut state = self.lock();
        let bank = state.working.clone();
        let sanitized = bank
            .verify_transaction(
                transaction.clone(),
                TransactionVerificationMode::FullVerification,
            )
            .map_err(SendError::Verification)?;
        let batch = bank.prepare_sanitized_batch(std::slice::from_ref(&sanitized));
        let (mut results, balances) = bank.load_execute_and_commit_transactions(
            &batch,
            solana_clock::MAX_PROCESSING_AGE,
            ExecutionRecordingConfig {
                enable_cpi_recording: true,
                enable_log_recording: true,
                enable_return_data_recording: true,
                enable_transaction_balance_recording: true,
            },
            &mut Default::default(),
            None,
        );
        drop(batch);
        let committed = results
            .pop()
            .ok_or(SendError::Rejected(TransactionError::SanitizeFailure))?
            .map_err(SendError::Rejected)?;
        let (native_pre, native_post, token_pre, token_post) =
            balances.map(|b| b.into_vecs()).unwrap_or_default();
        let signature = transaction.signatures[0];
        let record = TransactionRecord {
            signature,
            slot: bank.slot(),
            block_time: bank.clock().unix_timestamp,
            status: committed.status,
            fee: committed.fee_details.total_fee(),
            pre_balances: native_pre.into_iter().next().unwrap_or_default(),
            post_balances: native_post.into_iter().next().unwrap_or_default(),
            pre_token_balances: token_pre.into_iter().next().unwrap_or_default(),
            post_token_balances: token_post.into_iter().next().unwrap_or_default(),
            log_messages: committed.log_messages.unwrap_or_default(),
            inner_instructions: committed.inner_instructions.unwrap_or_default(),
            compute_units_consumed: committed.executed_units,
            return_data: committed.return_data,
            transaction,
        };
        let message = &record.transaction.message;
        let writable: Vec<Pubkey> = message
            .static_account_keys()
            .iter()
            .enumerate()
            .filter(|(index, _)| message.is_maybe_writable(*index, None))
            .map(|(_, key)| *key)
            .collect();
        for key in writable {
            if !state.written.contains(&key) {
                state.written.push(key);
            }
        }
        state.pending.push(signature);
        state.history.insert(record);
        Ok(signature)
    }

    /// Runs a transaction on the working slot's state without keeping
    /// anything. `sig_verify` checks its signatures; `replace_blockhash`
    /// signs over the working blockhash first (for unsigned simulations).
    pub fn simulate(
        &self,
        mut transaction: VersionedTransaction,
        sig_verify: bool,
        replace_blockhash: bool,
    ) -> Result<(TransactionSimulationResult, u64), TransactionError> {
        let bank = self.bank(Commitment::Processed);
        if replace_blockhash {
            transaction
                .message
                .set_recent_blockhash(bank.last_blockhash());
        }
        let mode = if sig_verify {
            TransactionVerificationMode::FullVerification
        } else {
            TransactionVerificationMode::HashOnly
        };
        let sanitized = bank.verify_transaction(transaction, mode)?;
        Ok((
            bank.simulate_transaction_unchecked(&sanitized, true),
            bank.slot(),
        ))
    }

    /// A landed transaction.
    pub fn transaction(&self, signature: &Signature) -> Option<TransactionRecord> {
        self.lock().history.get(signature).cloned()
    }

    /// A landed transaction's status.
    pub fn status(&self, signature: &Signature) -> Option<SignatureStatus> {
        let state = self.lock();
        let record = state.history.get(signature)?;
        Some(SignatureStatus {
            slot: record.slot,
            status: record.status.clone(),
            confirmed: record.slot <= state.confirmed.slot(),
        })
    }

    /// Landed transactions touching `address`, newest first.
    pub fn signatures_for(
        &self,
        address: &Pubkey,
        before: Option<&Signature>,
        until: Option<&Signature>,
        limit: usize,
    ) -> Vec<TransactionRecord> {
        self.lock()
            .history
            .signatures_for(address, before, until, limit)
            .into_iter()
            .cloned()
            .collect()
    }

    /// The lowest compute-unit price paid per recent slot (the last 150
    /// ended slots), by transactions writing any of `addresses`.
    pub fn prioritization_fees(&self, addresses: &[Pubkey]) -> Vec<(u64, u64)> {
        let state = self.lock();
        let last = state.confirmed.slot();
        let first = last.saturating_sub(149).max(1);
        state.history.prioritization_fees(first, last, addresses)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the bank as consistent as the
        // runtime left it; keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Freezes the working bank and opens `slot` after it.
fn open_slot(state: &mut State, slot: u64, unix_timestamp: i64) -> u64 {
    let parent = state.working.clone();
    // The last tick registers the slot's blockhash.
    parent.fill_bank_with_ticks_for_tests();
    parent.freeze();
    let slot = slot.max(parent.slot() + 1);
    let child = Bank::new_from_parent(parent.clone(), &Pubkey::default(), slot);
    let mut clock: Clock = child.clock();
    clock.unix_timestamp = unix_timestamp;
    child.set_sysvar_for_tests(&clock);
    let child = {
        let mut forks = state.forks.write().expect("forks lock");
        let child = forks.insert(child).clone_without_scheduler();
        forks.set_root(parent.slot(), None, Some(parent.slot()));
        child
    };
    state.confirmed = parent;
    state.working = child;
    slot
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("faucet", &self.faucet.pubkey())
            .field("genesis_hash", &self.genesis_hash)
            .finish_non_exhaustive()
    }
}
