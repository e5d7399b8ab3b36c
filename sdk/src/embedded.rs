//! An embedded Solana bank: `solana-program-test` running the AMP program
//! natively, beside the real SPL Token and Token-2022 programs (the released
//! SBF binaries bundled with solana-program-test, executed by the VM) and the
//! runtime's own Ed25519SigVerify precompile and Instructions sysvar.
//!
//! This is the one place that adapts the program's entrypoint to a builtin and
//! the one place that touches solana-program-test's API, which Agave marks as
//! unstable (hence the `deprecated` allowance below).
#![allow(deprecated)]

use anchor_lang::event::EVENT_IX_TAG_LE;
use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::{account_info::AccountInfo, entrypoint::ProgramResult};
use solana_account::Account;
use solana_clock::Clock;
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_program_test::{processor, BanksClientError, ProgramTest, ProgramTestContext};
use solana_signer::Signer;
use solana_transaction::Transaction;
use solana_transaction_error::TransactionError;

/// What the embedded bank can answer instead of a result.
#[derive(Debug, thiserror::Error)]
pub enum BankError {
    /// The runtime or a program refused the transaction.
    #[error("transaction failed: {0}")]
    Transaction(#[from] TransactionError),
    /// The bank itself failed (it should not).
    #[error("embedded bank: {0}")]
    Bank(String),
}

impl From<BanksClientError> for BankError {
    fn from(err: BanksClientError) -> Self {
        match err {
            BanksClientError::TransactionError(e) => Self::Transaction(e),
            BanksClientError::SimulationError { err, .. } => Self::Transaction(err),
            other => Self::Bank(other.to_string()),
        }
    }
}

/// A running bank with its own virtual clock.
///
/// Every transaction lands in a slot of its own (so identical transactions
/// never collide on a signature, and a channel is never opened and closed in
/// separate transactions of one slot), at the unix time of the virtual clock,
/// which only moves when told to.
pub struct EmbeddedBank {
    ctx: ProgramTestContext,
    now: i64,
}

impl EmbeddedBank {
    /// Starts a bank with the AMP program and the SPL programs.
    pub async fn start() -> Self {
        let ctx = program_test().start_with_context().await;
        let clock: Clock = ctx
            .banks_client
            .get_sysvar()
            .await
            .expect("a fresh bank has a clock");
        Self {
            ctx,
            now: clock.unix_timestamp,
        }
    }

    /// The genesis account, rich in SOL; pays every transaction's fee.
    pub fn payer(&self) -> &Keypair {
        &self.ctx.payer
    }

    /// The virtual clock's unix time.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// Moves the virtual clock (takes effect from the next transaction on).
    pub fn advance_time(&mut self, seconds: i64) {
        self.now += seconds;
    }

    /// Current slot of the working bank.
    pub async fn slot(&mut self) -> Result<u64, BankError> {
        let clock: Clock = self.ctx.banks_client.get_sysvar().await?;
        Ok(clock.slot)
    }

    /// Signs with the payer and `signers` and processes the transaction in a
    /// new slot at the virtual clock's time.
    pub async fn process(
        &mut self,
        instructions: &[Instruction],
        signers: &[&Keypair],
    ) -> Result<(), BankError> {
        let tx = self.next_transaction(instructions, signers).await?;
        Ok(self.ctx.banks_client.process_transaction(tx).await?)
    }

    /// Like [`process`](Self::process), and returns the Anchor events the
    /// program emitted through its self-CPI (event tag stripped: 8-byte
    /// discriminator then Borsh data). The transaction is simulated first, on
    /// the same state, because only simulation reports inner instructions.
    pub async fn process_with_events(
        &mut self,
        instructions: &[Instruction],
        signers: &[&Keypair],
    ) -> Result<Vec<Vec<u8>>, BankError> {
        let tx = self.next_transaction(instructions, signers).await?;
        let simulation = self
            .ctx
            .banks_client
            .simulate_transaction(tx.clone())
            .await?;
        if let Some(Err(err)) = simulation.result {
            return Err(err.into());
        }
        let events = simulation
            .simulation_details
            .and_then(|details| details.inner_instructions)
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .filter_map(|inner| {
                inner
                    .instruction
                    .data
                    .strip_prefix(EVENT_IX_TAG_LE)
                    .map(<[u8]>::to_vec)
            })
            .collect();
        self.ctx.banks_client.process_transaction(tx).await?;
        Ok(events)
    }

    /// Reads an account (`None` when it does not exist).
    pub async fn account(&mut self, address: &Pubkey) -> Result<Option<Account>, BankError> {
        Ok(self.ctx.banks_client.get_account(*address).await?)
    }

    /// Lamports held by an address (0 when it does not exist).
    pub async fn lamports(&mut self, address: &Pubkey) -> Result<u64, BankError> {
        Ok(self.ctx.banks_client.get_balance(*address).await?)
    }

    /// Moves to a new slot, stamps it with the virtual time, and signs.
    async fn next_transaction(
        &mut self,
        instructions: &[Instruction],
        signers: &[&Keypair],
    ) -> Result<Transaction, BankError> {
        let mut clock: Clock = self.ctx.banks_client.get_sysvar().await?;
        self.ctx
            .warp_to_slot(clock.slot + 1)
            .map_err(|e| BankError::Bank(format!("{e:?}")))?;
        clock.slot += 1;
        clock.unix_timestamp = self.now;
        self.ctx.set_sysvar(&clock);
        let mut all: Vec<&Keypair> = vec![&self.ctx.payer];
        all.extend(
            signers
                .iter()
                .copied()
                .filter(|k| k.pubkey() != self.ctx.payer.pubkey()),
        );
        let mut tx = Transaction::new_with_payer(instructions, Some(&self.ctx.payer.pubkey()));
        tx.try_sign(&all, self.ctx.last_blockhash)
            .map_err(|e| BankError::Bank(format!("signing: {e}")))?;
        Ok(tx)
    }
}

/// A `ProgramTest` with the AMP program loaded natively as a builtin.
pub fn program_test() -> ProgramTest {
    let mut program_test = ProgramTest::new("amp_channel", amp_channel::ID, processor!(process));
    program_test.prefer_bpf(false);
    program_test
}

/// The builtin entrypoint. Anchor's generated `entry` ties the accounts slice
/// to the accounts' own `'info` lifetime, which `processor!`'s plain function
/// type cannot express; the slice and its elements really do live for the
/// whole call, so re-borrowing it with one lifetime is sound.
fn process(program_id: &Pubkey, accounts: &[AccountInfo], data: &[u8]) -> ProgramResult {
    // SAFETY: both lifetimes outlive this call; only the variance is changed.
    let accounts: &[AccountInfo<'_>] = unsafe { std::mem::transmute(accounts) };
    amp_channel::entry(program_id, accounts, data)
}
