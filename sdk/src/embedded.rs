//! An embedded Solana bank: `solana-program-test` running the AMP program
//! natively, beside the real SPL Token and Token-2022 programs (the released
//! SBF binaries bundled with solana-program-test, executed by the VM) and the
//! runtime's own Ed25519SigVerify precompile and Instructions sysvar.
//!
//! This is the one place that adapts the program's entrypoint to a builtin and
//! the one place that touches solana-program-test's API, which Agave marks as
//! unstable (hence the `deprecated` allowance below).
#![allow(deprecated)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use anchor_lang::event::EVENT_IX_TAG_LE;
use anchor_lang::prelude::Pubkey;
use async_trait::async_trait;
use solana_account::Account;
use solana_clock::Clock;
use solana_commitment_config::CommitmentLevel;
use solana_hash::Hash;
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_program_test::{BanksClientError, ProgramTest, ProgramTestContext};
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction::Transaction;
use solana_transaction_error::TransactionError;
use tokio::sync::Mutex;

use crate::chain::{self, Chain, ChainError, TxSigner};
use crate::fees::{self, FeePolicy};

/// What the embedded bank can answer instead of a result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BankError {
    /// The runtime or a program refused the transaction.
    #[error("transaction failed: {0}")]
    Transaction(#[from] TransactionError),
    /// The transaction would not fit in a packet, so no cluster would carry it.
    #[error("transaction of {size} bytes exceeds the {max}-byte packet limit")]
    TooLarge {
        /// The serialised transaction's size, in bytes.
        size: usize,
        /// The packet limit, [`MAX_TRANSACTION_SIZE`](crate::chain::MAX_TRANSACTION_SIZE).
        max: usize,
    },
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

impl From<BankError> for ChainError {
    fn from(err: BankError) -> Self {
        match err {
            // Callers with a transaction in hand use `chain::transaction_failed`,
            // which also names the signature and the failing program.
            BankError::Transaction(error) => {
                chain::transaction_failed(Signature::default(), error, &[], vec![])
            }
            BankError::TooLarge { size, max } => ChainError::TransactionTooLarge { size, max },
            BankError::Bank(message) => ChainError::Bank(message),
        }
    }
}

/// A running bank with its own virtual clock.
///
/// Every transaction lands in a slot of its own (so identical transactions
/// never collide on a signature, and a channel is never opened and closed in
/// separate transactions of one slot), at the unix time of the virtual clock,
/// which only moves when told to.
///
/// Cloning is cheap and yields another handle to the same bank and clock, so
/// a server task and a client task can share one (for example as
/// `Arc<dyn Chain>`); transactions are processed one at a time.
#[derive(Clone)]
pub struct EmbeddedBank {
    inner: Arc<Inner>,
}

struct Inner {
    /// Async lock: a transaction holds it across the bank's own awaits.
    ctx: Mutex<ProgramTestContext>,
    /// A copy of the context's payer, readable without the lock.
    payer: Keypair,
    now: AtomicI64,
    /// How `send` prices transactions; the bank has no fee market, so only
    /// a fixed price applies.
    fees: std::sync::Mutex<FeePolicy>,
}

impl EmbeddedBank {
    /// Starts a bank with the AMP program and the SPL programs.
    pub async fn start() -> Self {
        Self::start_with(vec![]).await
    }

    /// Starts a bank with the AMP program, the SPL programs and `programs`.
    pub async fn start_with(programs: Vec<NativeProgram>) -> Self {
        let ctx = program_test(programs).start_with_context().await;
        let clock: Clock = ctx
            .banks_client
            .get_sysvar()
            .await
            .expect("a fresh bank has a clock");
        Self {
            inner: Arc::new(Inner {
                payer: ctx.payer.insecure_clone(),
                ctx: Mutex::new(ctx),
                now: AtomicI64::new(clock.unix_timestamp),
                fees: std::sync::Mutex::new(FeePolicy::default()),
            }),
        }
    }

    /// The genesis account, rich in SOL; pays every transaction's fee.
    pub fn payer(&self) -> &Keypair {
        &self.inner.payer
    }

    /// The virtual clock's unix time.
    pub fn now(&self) -> i64 {
        self.inner.now.load(Ordering::SeqCst)
    }

    /// Moves the virtual clock (takes effect from the next transaction on).
    pub fn advance_time(&self, seconds: i64) {
        self.inner.now.fetch_add(seconds, Ordering::SeqCst);
    }

    /// Sets the virtual clock (takes effect from the next transaction on).
    pub fn set_time(&self, unix_timestamp: i64) {
        self.inner.now.store(unix_timestamp, Ordering::SeqCst);
    }

    /// Sets how `send` prices transactions from now on (every handle to
    /// this bank shares it): a fixed price is paid, as on a cluster.
    pub fn set_fee_policy(&self, policy: FeePolicy) {
        *self.inner.fees.lock().unwrap_or_else(|e| e.into_inner()) = policy;
    }

    /// Current slot of the working bank.
    pub async fn slot(&self) -> Result<u64, BankError> {
        let ctx = self.inner.ctx.lock().await;
        let clock: Clock = ctx.banks_client.get_sysvar().await?;
        Ok(clock.slot)
    }

    /// Signs with the payer and `signers` and processes the transaction in a
    /// new slot at the virtual clock's time.
    ///
    /// Like a cluster, it refuses a transaction over the packet size limit
    /// ([`BankError::TooLarge`]), so that what passes here also fits there.
    pub async fn process(
        &self,
        instructions: &[Instruction],
        signers: &[&Keypair],
    ) -> Result<(), BankError> {
        let signers = as_tx_signers(signers);
        let mut ctx = self.inner.ctx.lock().await;
        let tx = self
            .next_transaction(&mut ctx, instructions, &signers)
            .await?;
        Ok(ctx.banks_client.process_transaction(tx).await?)
    }

    /// Like [`process`](Self::process), and returns the Anchor events the
    /// program emitted through its self-CPI (event tag stripped: 8-byte
    /// discriminator then Borsh data). The transaction is simulated first, on
    /// the same state, because only simulation reports inner instructions.
    pub async fn process_with_events(
        &self,
        instructions: &[Instruction],
        signers: &[&Keypair],
    ) -> Result<Vec<Vec<u8>>, BankError> {
        let signers = as_tx_signers(signers);
        let mut ctx = self.inner.ctx.lock().await;
        let tx = self
            .next_transaction(&mut ctx, instructions, &signers)
            .await?;
        let simulation = ctx.banks_client.simulate_transaction(tx.clone()).await?;
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
        ctx.banks_client.process_transaction(tx).await?;
        Ok(events)
    }

    /// Reads an account (`None` when it does not exist).
    pub async fn account(&self, address: &Pubkey) -> Result<Option<Account>, BankError> {
        let ctx = self.inner.ctx.lock().await;
        Ok(ctx.banks_client.get_account(*address).await?)
    }

    /// Overwrites an account, for tests that need a state no transaction can
    /// make any more (for example a channel opened under an older program
    /// rule). Takes effect from the next transaction on.
    pub async fn set_account(&self, address: &Pubkey, account: Account) {
        let mut ctx = self.inner.ctx.lock().await;
        ctx.set_account(address, &account.into());
    }

    /// Lamports held by an address (0 when it does not exist).
    pub async fn lamports(&self, address: &Pubkey) -> Result<u64, BankError> {
        let ctx = self.inner.ctx.lock().await;
        Ok(ctx.banks_client.get_balance(*address).await?)
    }

    /// Moves to a new slot, stamps it with the virtual time, and signs.
    async fn next_transaction(
        &self,
        ctx: &mut ProgramTestContext,
        instructions: &[Instruction],
        signers: &[&TxSigner],
    ) -> Result<Transaction, BankError> {
        let mut tx = chain::unsigned_transaction(&self.inner.payer.pubkey(), instructions);
        let blockhash = self.next_slot(ctx).await?;
        tx.try_sign(
            &chain::with_fee_payer(&self.inner.payer, signers),
            blockhash,
        )
        .map_err(|e| BankError::Bank(format!("signing: {e}")))?;
        chain::check_size(&tx).map_err(|e| match e {
            ChainError::TransactionTooLarge { size, max } => BankError::TooLarge { size, max },
            other => BankError::Bank(other.to_string()),
        })?;
        Ok(tx)
    }

    /// Moves the bank to a new slot at the virtual clock's time; returns the
    /// blockhash to sign with.
    async fn next_slot(&self, ctx: &mut ProgramTestContext) -> Result<Hash, BankError> {
        let mut clock: Clock = ctx.banks_client.get_sysvar().await?;
        ctx.warp_to_slot(clock.slot + 1)
            .map_err(|e| BankError::Bank(format!("{e:?}")))?;
        clock.slot += 1;
        clock.unix_timestamp = self.now();
        ctx.set_sysvar(&clock);
        Ok(ctx.last_blockhash)
    }
}

#[async_trait]
impl Chain for EmbeddedBank {
    fn fee_payer(&self) -> Pubkey {
        self.inner.payer.pubkey()
    }

    async fn account(&self, address: &Pubkey) -> Result<Option<Account>, ChainError> {
        Ok(EmbeddedBank::account(self, address).await?)
    }

    /// The bank's slot, and the virtual clock's time: what the next
    /// transaction will see, even when the clock moved since the last one.
    async fn clock(&self) -> Result<Clock, ChainError> {
        let ctx = self.inner.ctx.lock().await;
        let mut clock: Clock = ctx
            .banks_client
            .get_sysvar()
            .await
            .map_err(BankError::from)?;
        clock.unix_timestamp = self.now();
        Ok(clock)
    }

    /// Processes at once (the bank confirms synchronously), enforcing the
    /// packet size limit like a real cluster.
    async fn send(
        &self,
        instructions: &[Instruction],
        signers: &[&TxSigner],
    ) -> Result<Signature, ChainError> {
        let payer = self.inner.payer.pubkey();
        let instructions = chain::with_compute_budget(self, &payer, instructions).await?;
        let mut tx = chain::unsigned_transaction(&payer, &instructions);
        chain::check_size(&tx)?;
        let mut ctx = self.inner.ctx.lock().await;
        let blockhash = self.next_slot(&mut ctx).await?;
        tx.try_sign(
            &chain::with_fee_payer(&self.inner.payer, signers),
            blockhash,
        )?;
        let signature = tx.signatures[0];
        tracing::debug!(%signature, instructions = instructions.len(), "embedded bank: processing");
        match ctx.banks_client.process_transaction(tx).await {
            Ok(()) => Ok(signature),
            Err(err) => Err(match BankError::from(err) {
                BankError::Transaction(error) => {
                    chain::transaction_failed(signature, error, &instructions, vec![])
                }
                other => other.into(),
            }),
        }
    }

    fn fee_policy(&self) -> FeePolicy {
        *self.inner.fees.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The limit from a simulation on the working bank; the price is the
    /// policy's fixed one or 0 (no other transactions compete here).
    async fn compute_budget_with(
        &self,
        policy: &FeePolicy,
        fee_payer: &Pubkey,
        instructions: &[Instruction],
    ) -> Result<Vec<Instruction>, ChainError> {
        let price = fees::compute_unit_price(policy, &[]);
        let mut tx =
            chain::unsigned_transaction(fee_payer, &chain::simulation_instructions(instructions));
        let ctx = self.inner.ctx.lock().await;
        tx.message.recent_blockhash = ctx.last_blockhash;
        let simulation = ctx
            .banks_client
            .simulate_transaction(tx)
            .await
            .map_err(BankError::from)?;
        let limit = match (simulation.result, simulation.simulation_details) {
            (Some(Ok(())), Some(details)) => {
                fees::compute_unit_limit(details.units_consumed, policy.compute_unit_margin)
            }
            // Processing will fail for its own reason; not for a guessed limit.
            _ => fees::MAX_COMPUTE_UNIT_LIMIT,
        };
        Ok(fees::compute_budget_instructions(limit, price).to_vec())
    }

    /// The working bank's blockhash and its last valid block height.
    async fn latest_blockhash(&self) -> Result<(Hash, u64), ChainError> {
        let ctx = self.inner.ctx.lock().await;
        ctx.banks_client
            .get_latest_blockhash_with_commitment(CommitmentLevel::Processed)
            .await
            .map_err(BankError::from)?
            .ok_or_else(|| ChainError::Bank("no blockhash".into()))
    }

    /// Simulates on the bank, which checks the blockhash but not the signatures.
    async fn simulate_transaction(&self, transaction: &Transaction) -> Result<(), ChainError> {
        chain::check_size(transaction)?;
        let ctx = self.inner.ctx.lock().await;
        let simulation = ctx
            .banks_client
            .simulate_transaction(transaction.clone())
            .await
            .map_err(BankError::from)?;
        match simulation.result {
            Some(Err(error)) => {
                let logs = simulation
                    .simulation_details
                    .map(|details| details.logs)
                    .unwrap_or_default();
                Err(chain::transaction_failed_in(transaction, error, logs))
            }
            _ => Ok(()),
        }
    }

    /// Processes a transaction signed elsewhere in a new slot at the virtual
    /// clock's time, as [`send`](Chain::send) does.
    async fn send_transaction(&self, transaction: &Transaction) -> Result<Signature, ChainError> {
        chain::check_size(transaction)?;
        chain::check_signed(transaction)?;
        let mut ctx = self.inner.ctx.lock().await;
        self.next_slot(&mut ctx).await?;
        let signature = chain::first_signature(transaction);
        tracing::debug!(%signature, "embedded bank: processing a signed transaction");
        match ctx
            .banks_client
            .process_transaction(transaction.clone())
            .await
        {
            Ok(()) => Ok(signature),
            Err(err) => Err(match BankError::from(err) {
                BankError::Transaction(error) => {
                    chain::transaction_failed_in(transaction, error, vec![])
                }
                other => other.into(),
            }),
        }
    }
}

fn as_tx_signers<'a>(signers: &[&'a Keypair]) -> Vec<&'a TxSigner> {
    signers.iter().map(|k| *k as &TxSigner).collect()
}

/// A program the embedded bank runs natively beside AMP (for example one
/// that calls AMP through CPI); made with [`native_program!`](crate::native_program).
///
/// It carries its parts rather than a closure over `ProgramTest`, so that a
/// bank built without `solana-program-test`'s context (the `amp localnet`
/// node, which runs its own slots and blockhashes) installs the same builtins.
pub struct NativeProgram {
    /// The program's name, as logs and the program cache show it.
    pub name: &'static str,
    /// The program id.
    pub id: Pubkey,
    /// The runtime entry (a `solana-program-test` processor around the
    /// program's own entrypoint).
    pub function: BuiltinFunction,
}

/// The runtime's builtin entry type, as `solana-program-test`'s `processor!` makes it.
pub type BuiltinFunction = solana_program_runtime::invoke_context::BuiltinFunctionWithContext;

/// Turns an Anchor program's generated `entry` into a [`NativeProgram`]:
/// `native_program!("my_program", my_program::ID, my_program::entry)`.
///
/// Anchor's `entry` ties the accounts slice to the accounts' own `'info`
/// lifetime, which the runtime's builtin function type cannot express; the
/// slice and its elements live for the whole call, so the generated wrapper
/// re-borrows it with one lifetime. This is the only place that does so.
#[macro_export]
macro_rules! native_program {
    ($name:expr, $id:expr, $entry:path) => {{
        fn process(
            program_id: &$crate::embedded::__private::Pubkey,
            accounts: &[$crate::embedded::__private::AccountInfo],
            data: &[u8],
        ) -> $crate::embedded::__private::ProgramResult {
            // SAFETY: both lifetimes outlive this call; only the variance changes.
            let accounts: &[$crate::embedded::__private::AccountInfo<'_>] =
                unsafe { ::core::mem::transmute(accounts) };
            $entry(program_id, accounts, data)
        }
        #[allow(deprecated)]
        let function: ::core::option::Option<$crate::embedded::BuiltinFunction> =
            $crate::embedded::__private::processor!(process);
        $crate::embedded::NativeProgram {
            name: $name,
            id: $id,
            function: function.expect("processor! always yields a function"),
        }
    }};
}

#[doc(hidden)]
pub mod __private {
    pub use anchor_lang::prelude::Pubkey;
    pub use anchor_lang::solana_program::{account_info::AccountInfo, entrypoint::ProgramResult};
    pub use solana_program_test::processor;
}

/// The AMP program, then `extra`: what every embedded bank runs natively.
pub fn native_programs(extra: Vec<NativeProgram>) -> Vec<NativeProgram> {
    let amp = crate::native_program!("amp_channel", amp_channel::ID, amp_channel::entry);
    std::iter::once(amp).chain(extra).collect()
}

/// Makes a native builtin able to call other programs, read sysvars and log:
/// `solana-program-test` routes those calls through syscall stubs that it
/// installs, once per process, only while it builds a bank. A bank built
/// another way calls this first; it builds (and drops) one small bank the
/// first time, on a thread of its own so that it works inside a runtime too.
pub fn install_syscall_stubs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime starts");
            // Dropping the runtime stops the throwaway bank's tasks.
            runtime.block_on(async {
                drop(ProgramTest::default().start().await);
            });
        })
        .join()
        .expect("solana-program-test builds a bank");
    });
}

/// A `ProgramTest` with the AMP program, and `extra` programs, loaded natively.
pub fn program_test(extra: Vec<NativeProgram>) -> ProgramTest {
    let mut program_test = ProgramTest::default();
    program_test.prefer_bpf(false);
    for program in native_programs(extra) {
        program_test.add_builtin_program(program.name, program.id, program.function);
    }
    program_test
}
