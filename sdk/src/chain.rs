//! One async interface to a Solana cluster, shared by the agent client, the
//! service middleware and the CLI: read accounts and the clock, send a
//! transaction and learn how it ended.
//!
//! Two implementations ship with the SDK: [`EmbeddedBank`](crate::embedded::EmbeddedBank)
//! (an in-process bank, for tests and demos) and [`RpcChain`](crate::rpc::RpcChain)
//! (a JSON-RPC node: localnet, devnet, mainnet).
//!
//! The trait uses [`async_trait`](mod@async_trait) rather than native `async fn` in traits
//! because callers hold it as `Arc<dyn Chain>` (a server and its settlement
//! task share one), and native async trait methods are not dyn-compatible.
//! The boxed futures are `Send`, so they can be spawned on a multi-threaded
//! tokio runtime; one allocation per call is nothing beside a network round trip.

use std::sync::Arc;

use amp_channel::error::AmpError;
use amp_channel::state::Channel;
use anchor_lang::prelude::Pubkey;
use anchor_lang::{AccountDeserialize, Owner};
use anchor_spl::token_interface::TokenAccount;
use async_trait::async_trait;
use solana_account::Account;
use solana_clock::Clock;
use solana_hash::Hash;
use solana_instruction::error::InstructionError;
use solana_instruction::Instruction;
use solana_signature::Signature;
use solana_signer::{Signer, SignerError};
use solana_transaction::Transaction;
use solana_transaction_error::TransactionError;

use crate::fees::{self, FeePolicy};
use crate::mint::{check_depositor, is_token_program, MintAccount};
use crate::transactions::{instructions_size, transaction_size};

/// A transaction signer a [`Chain`] can hold across an `await`: any
/// [`Signer`] that may be shared between threads (a `Keypair`, a remote signer).
pub type TxSigner = dyn Signer + Send + Sync;

pub use crate::transactions::MAX_TRANSACTION_SIZE;

/// An async view of a Solana cluster.
#[async_trait]
pub trait Chain: Send + Sync {
    /// The account that pays every transaction's fee and signs it first.
    fn fee_payer(&self) -> Pubkey;

    /// Reads an account; `None` when it does not exist.
    async fn account(&self, address: &Pubkey) -> Result<Option<Account>, ChainError>;

    /// The cluster's clock: the current slot and the unix time programs see.
    async fn clock(&self) -> Result<Clock, ChainError>;

    /// Builds a transaction from `instructions`, signs it with the fee payer
    /// and `signers` over a fresh blockhash, sends it and waits for its
    /// outcome at the chain's commitment. `Ok` means it landed and succeeded.
    ///
    /// The chain's [`compute_budget`](Self::compute_budget) goes first,
    /// unless `instructions` hold a ComputeBudget instruction already (then
    /// they are sent as they are) or fit in a packet only without it.
    async fn send(
        &self,
        instructions: &[Instruction],
        signers: &[&TxSigner],
    ) -> Result<Signature, ChainError>;

    /// A recent blockhash to sign with, and the last block height at which a
    /// transaction using it can land: for callers that build and sign a
    /// transaction themselves (or have others sign it) before
    /// [`send_transaction`](Self::send_transaction).
    async fn latest_blockhash(&self) -> Result<(Hash, u64), ChainError> {
        Err(ChainError::Unsupported {
            operation: "latest_blockhash",
        })
    }

    /// Broadcasts an already fully signed transaction and waits for its
    /// outcome as [`send`](Self::send) does, with the same errors. Nothing is
    /// added to it: the signers fixed its instructions and fee payer.
    async fn send_transaction(&self, transaction: &Transaction) -> Result<Signature, ChainError> {
        let _ = transaction;
        Err(ChainError::Unsupported {
            operation: "send_transaction",
        })
    }

    /// Runs a transaction signed (or partly signed) elsewhere as the cluster
    /// would, without checking its signatures and without landing it: `Ok`
    /// when it would succeed, else the error [`send_transaction`](Self::send_transaction)
    /// would give (`BlockhashNotFound` for a stale blockhash). A service
    /// checks a transaction this way before it adds its own signature.
    async fn simulate_transaction(&self, transaction: &Transaction) -> Result<(), ChainError> {
        let _ = transaction;
        Err(ChainError::Unsupported {
            operation: "simulate_transaction",
        })
    }

    /// How this chain prices the transactions [`send`](Self::send) builds.
    fn fee_policy(&self) -> FeePolicy {
        FeePolicy::default()
    }

    /// The ComputeBudget instructions to put before `instructions` in a
    /// transaction paid by `fee_payer`, under the chain's
    /// [`fee_policy`](Self::fee_policy): a unit limit from a simulation
    /// with a margin, a unit price from recent fees on the accounts they
    /// write. [`send`](Self::send) adds them itself.
    async fn compute_budget(
        &self,
        fee_payer: &Pubkey,
        instructions: &[Instruction],
    ) -> Result<Vec<Instruction>, ChainError> {
        self.compute_budget_with(&self.fee_policy(), fee_payer, instructions)
            .await
    }

    /// [`compute_budget`](Self::compute_budget) under another policy (a
    /// settler's own). A chain that can neither simulate nor read fees adds
    /// nothing, and its transactions run on the runtime's defaults.
    async fn compute_budget_with(
        &self,
        policy: &FeePolicy,
        fee_payer: &Pubkey,
        instructions: &[Instruction],
    ) -> Result<Vec<Instruction>, ChainError> {
        let _ = (policy, fee_payer, instructions);
        Ok(Vec::new())
    }

    /// Every account `program` owns whose data holds each `(offset, bytes)`
    /// of `filters` (getProgramAccounts with memcmp filters): what a service
    /// finds again after a restart. Some RPC providers refuse the method.
    async fn program_accounts(
        &self,
        program: &Pubkey,
        filters: &[(usize, Vec<u8>)],
    ) -> Result<Vec<(Pubkey, Account)>, ChainError> {
        let _ = (program, filters);
        Err(ChainError::Unsupported {
            operation: "program_accounts",
        })
    }

    /// Reads and decodes a Channel account; `None` once it is closed (or never was).
    async fn channel(&self, address: &Pubkey) -> Result<Option<Channel>, ChainError> {
        let account = self.account(address).await?;
        account
            .map(|account| decode_anchor::<Channel>(address, &account))
            .transpose()
    }

    /// The token amount of an SPL Token or Token-2022 account; `None` when
    /// the account does not exist.
    async fn token_balance(&self, token_account: &Pubkey) -> Result<Option<u64>, ChainError> {
        let Some(account) = self.account(token_account).await? else {
            return Ok(None);
        };
        Ok(Some(decode_token_account(token_account, &account)?.amount))
    }
}

/// Typed reads on top of [`Chain::account`]; generic, hence not part of the
/// dyn-compatible trait, and available on every `Chain` including `dyn Chain`.
pub trait ChainExt: Chain {
    /// Reads and decodes any account of the AMP program (Channel, and the
    /// account types added later) — or of any Anchor program, by its `Owner`.
    fn anchor_account<T: AccountDeserialize + Owner + Send>(
        &self,
        address: &Pubkey,
    ) -> impl std::future::Future<Output = Result<Option<T>, ChainError>> + Send {
        async move {
            let account = self.account(address).await?;
            account
                .map(|account| decode_anchor::<T>(address, &account))
                .transpose()
        }
    }

    /// Reads a mint: its token program, decimals, freeze authority, and
    /// whether channels accept it.
    fn mint(
        &self,
        mint: &Pubkey,
    ) -> impl std::future::Future<Output = Result<MintAccount, ChainError>> + Send {
        async move {
            let account = self
                .account(mint)
                .await?
                .ok_or_else(|| invalid(mint, "mint", "account does not exist"))?;
            MintAccount::parse(mint, &account).map_err(|e| invalid(mint, "mint", &e.to_string()))
        }
    }

    /// Why the program would refuse a deposit from `token_account` (a
    /// Token-2022 account with the CPI Guard on), read before sending; `None`
    /// when it may deposit, or does not exist yet.
    fn deposit_refusal(
        &self,
        token_account: &Pubkey,
    ) -> impl std::future::Future<Output = Result<Option<String>, ChainError>> + Send {
        async move {
            Ok(self
                .account(token_account)
                .await?
                .and_then(|account| check_depositor(token_account, &account).err()))
        }
    }

    /// The token program (SPL Token or Token-2022) that owns `mint`, which
    /// [`ChannelKeys`](crate::instructions::ChannelKeys) need.
    fn mint_token_program(
        &self,
        mint: &Pubkey,
    ) -> impl std::future::Future<Output = Result<Pubkey, ChainError>> + Send {
        async move { Ok(self.mint(mint).await?.token_program) }
    }
}

impl<C: Chain + ?Sized> ChainExt for C {}

/// Why a [`Chain`] call did not give an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The runtime or a program refused the transaction (at preflight or on
    /// chain). Nothing it did took effect (a fee is still paid once it is in a block).
    #[error("transaction {} failed: {}", .0.signature, describe(&.0.error, .0.program))]
    Transaction(Box<TransactionFailure>),
    /// The transaction was sent but its outcome is unknown: it may still land
    /// until its blockhash expires. Check the signature before resending.
    #[error("transaction {signature} not confirmed: {reason}")]
    Unconfirmed {
        /// The transaction's signature: look it up before sending again.
        signature: Signature,
        /// What was last seen of it when the wait ran out.
        reason: String,
    },
    /// The transaction's blockhash expired before it landed: it never will,
    /// so building and sending it again is safe.
    #[error("transaction {signature} expired before it landed")]
    Expired {
        /// The signature of the transaction that never landed.
        signature: Signature,
    },
    /// The transaction cannot fit in one packet, so no cluster would take it.
    #[error("transaction is {size} bytes, over the {max}-byte limit")]
    TransactionTooLarge {
        /// The serialised transaction's size, in bytes.
        size: usize,
        /// The packet limit, [`MAX_TRANSACTION_SIZE`].
        max: usize,
    },
    /// No answer from the node: refused, unresolvable or timed out.
    #[error("cannot reach {endpoint}: {reason}")]
    Unreachable {
        /// The node's URL.
        endpoint: String,
        /// The transport error, with its causes.
        reason: String,
    },
    /// The node answered with an error or with something unreadable.
    #[error("RPC error{}: {message}", .code.map(|c| format!(" {c}")).unwrap_or_default())]
    Rpc {
        /// The JSON-RPC error code, when the node sent one.
        code: Option<i64>,
        /// The node's error message, or why its answer could not be read.
        message: String,
    },
    /// An account exists but is not what the caller asked to decode.
    #[error("account {address} is not a valid {expected}: {reason}")]
    InvalidAccount {
        /// The account that was read.
        address: Pubkey,
        /// What it should have been: `Channel`, `mint`, `token account`, ...
        expected: &'static str,
        /// What is wrong with it: its owner, or why it does not decode.
        reason: String,
    },
    /// A signer refused or lacked a key the transaction needs.
    #[error("signing failed: {0}")]
    Signing(#[from] SignerError),
    /// The embedded bank failed (it should not).
    #[error("embedded bank: {0}")]
    Bank(String),
    /// This implementation of [`Chain`] does not offer the operation.
    #[error("this chain does not support {operation}")]
    Unsupported {
        /// The [`Chain`] method that was called.
        operation: &'static str,
    },
}

/// A refused transaction: its signature, the runtime's verdict, and what
/// else the chain could tell (boxed in [`ChainError`] to keep results small).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionFailure {
    /// The refused transaction's signature (all zeros when the embedded
    /// bank reports a failure without its transaction).
    pub signature: Signature,
    /// The runtime's verdict, e.g. which instruction failed with which custom code.
    pub error: TransactionError,
    /// The program of the failing instruction, when the error names one.
    pub program: Option<Pubkey>,
    /// Program logs, when the chain returned them (RPC preflight failures).
    pub logs: Vec<String>,
}

impl ChainError {
    /// The runtime's verdict, when the transaction was refused.
    pub fn transaction_error(&self) -> Option<&TransactionError> {
        match self {
            Self::Transaction(failure) => Some(&failure.error),
            _ => None,
        }
    }

    /// The custom error code of the failing instruction, whatever its program.
    pub fn custom_code(&self) -> Option<u32> {
        match self.transaction_error()? {
            TransactionError::InstructionError(_, InstructionError::Custom(code)) => Some(*code),
            _ => None,
        }
    }

    /// The AMP program's error, when an AMP instruction refused the
    /// transaction; a custom code from another program (SPL Token's own
    /// codes overlap nothing, but another Anchor program's would) is `None`.
    pub fn amp_error(&self) -> Option<AmpError> {
        let Self::Transaction(failure) = self else {
            return None;
        };
        if failure.program != Some(amp_channel::ID) {
            return None;
        }
        AmpError::from_code(self.custom_code()?)
    }

    /// Whether the AMP program refused with `expected` (`AmpError` has no
    /// `PartialEq`; this compares codes).
    pub fn is_amp_error(&self, expected: AmpError) -> bool {
        self.amp_error().map(u32::from) == Some(u32::from(expected))
    }

    /// Worth trying again: the node was unreachable or busy, the transaction
    /// expired unlanded, or its outcome is unknown (check the signature
    /// first). Refusals are final.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. }
                | Self::Rpc { .. }
                | Self::Unconfirmed { .. }
                | Self::Expired { .. }
        )
    }
}

/// How long [`retry_transient`] keeps trying.
const TRANSIENT_RETRIES: [u64; 6] = [250, 500, 1_000, 2_000, 4_000, 8_000];

/// Runs `attempt` again (after 0.25, 0.5, 1, 2, 4 and 8 s) while it fails
/// with a [transient](ChainError::is_transient) error; the last error is
/// returned. For reads at start-up, where waiting out a busy node is better
/// than giving up.
pub async fn retry_transient<T, F, Fut>(mut attempt: F) -> Result<T, ChainError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ChainError>>,
{
    for delay in TRANSIENT_RETRIES {
        match attempt().await {
            Err(error) if error.is_transient() => {
                tracing::warn!(%error, retry_in_ms = delay, "chain busy or unreachable; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
            }
            outcome => return outcome,
        }
    }
    attempt().await
}

/// The runtime error, with the AMP error's name and message when it is one.
fn describe(error: &TransactionError, program: Option<Pubkey>) -> String {
    match error {
        TransactionError::InstructionError(_, InstructionError::Custom(code))
            if program == Some(amp_channel::ID) =>
        {
            match AmpError::from_code(*code) {
                Some(amp) => format!("{error} ({}: {amp})", amp.name()),
                None => error.to_string(),
            }
        }
        _ => error.to_string(),
    }
}

/// A refused transaction, naming the program of the failing instruction.
pub(crate) fn transaction_failed(
    signature: Signature,
    error: TransactionError,
    instructions: &[Instruction],
    logs: Vec<String>,
) -> ChainError {
    let program = match &error {
        TransactionError::InstructionError(index, _) => instructions
            .get(usize::from(*index))
            .map(|ix| ix.program_id),
        _ => None,
    };
    ChainError::Transaction(Box::new(TransactionFailure {
        signature,
        error,
        program,
        logs,
    }))
}

/// A refused transaction, naming the program of the failing instruction as
/// the transaction's message has it (for transactions built elsewhere).
pub(crate) fn transaction_failed_in(
    transaction: &Transaction,
    error: TransactionError,
    logs: Vec<String>,
) -> ChainError {
    let program = match &error {
        TransactionError::InstructionError(index, _) => {
            transaction.message.program_id(usize::from(*index)).copied()
        }
        _ => None,
    };
    ChainError::Transaction(Box::new(TransactionFailure {
        signature: first_signature(transaction),
        error,
        program,
        logs,
    }))
}

/// The signature a transaction is known by (the fee payer's); all zeros
/// for a transaction without signatures.
pub(crate) fn first_signature(transaction: &Transaction) -> Signature {
    transaction.signatures.first().copied().unwrap_or_default()
}

/// Refuses a transaction with a missing signature before it is broadcast:
/// a cluster would drop it without a verdict.
pub(crate) fn check_signed(transaction: &Transaction) -> Result<(), ChainError> {
    let required = usize::from(transaction.message.header.num_required_signatures);
    if transaction.signatures.len() != required || !transaction.is_signed() {
        return Err(ChainError::Signing(SignerError::NotEnoughSigners));
    }
    Ok(())
}

/// What [`Chain::send`] sends: `instructions` after the chain's compute
/// budget, unless they set one already, or would fit in a packet only
/// without it (then the runtime's default limit and no priority apply), or
/// do not fit at all (the size check refuses them before any round trip).
pub(crate) async fn with_compute_budget<C: Chain + ?Sized>(
    chain: &C,
    fee_payer: &Pubkey,
    instructions: &[Instruction],
) -> Result<Vec<Instruction>, ChainError> {
    if fees::has_compute_budget(instructions) {
        return Ok(instructions.to_vec());
    }
    let mut budgeted = fees::compute_budget_placeholder().to_vec();
    budgeted.extend_from_slice(instructions);
    if instructions_size(fee_payer, &budgeted) > MAX_TRANSACTION_SIZE {
        if instructions_size(fee_payer, instructions) <= MAX_TRANSACTION_SIZE {
            tracing::debug!("no room for a compute budget: sending on the defaults");
        }
        return Ok(instructions.to_vec());
    }
    let mut budgeted = chain.compute_budget(fee_payer, instructions).await?;
    budgeted.extend_from_slice(instructions);
    Ok(budgeted)
}

/// The instructions a simulation for the compute budget runs: `instructions`
/// (without a budget of their own) after the largest limit and a zero price,
/// which consume what the final budget will and cost the payer nothing extra.
pub(crate) fn simulation_instructions(instructions: &[Instruction]) -> Vec<Instruction> {
    fees::compute_budget_instructions(fees::MAX_COMPUTE_UNIT_LIMIT, 0)
        .into_iter()
        .chain(
            instructions
                .iter()
                .filter(|ix| !fees::is_compute_budget(ix))
                .cloned(),
        )
        .collect()
}

/// The unsigned transaction every implementation sends: fee payer first.
pub(crate) fn unsigned_transaction(
    fee_payer: &Pubkey,
    instructions: &[Instruction],
) -> Transaction {
    Transaction::new_with_payer(instructions, Some(fee_payer))
}

/// Refuses a transaction no cluster would accept, before spending a round trip on it.
pub(crate) fn check_size(transaction: &Transaction) -> Result<(), ChainError> {
    let size = transaction_size(transaction);
    if size > MAX_TRANSACTION_SIZE {
        return Err(ChainError::TransactionTooLarge {
            size,
            max: MAX_TRANSACTION_SIZE,
        });
    }
    Ok(())
}

/// The fee payer followed by the other signers, each once.
pub(crate) fn with_fee_payer<'a>(
    fee_payer: &'a TxSigner,
    signers: &[&'a TxSigner],
) -> Vec<&'a TxSigner> {
    let payer = fee_payer.pubkey();
    std::iter::once(fee_payer)
        .chain(signers.iter().copied().filter(|s| s.pubkey() != payer))
        .collect()
}

fn decode_anchor<T: AccountDeserialize + Owner>(
    address: &Pubkey,
    account: &Account,
) -> Result<T, ChainError> {
    let expected = std::any::type_name::<T>()
        .rsplit("::")
        .next()
        .unwrap_or("account");
    if account.owner != T::owner() {
        return Err(ChainError::InvalidAccount {
            address: *address,
            expected,
            reason: format!("owned by {}, expected {}", account.owner, T::owner()),
        });
    }
    T::try_deserialize(&mut account.data.as_slice()).map_err(|e| ChainError::InvalidAccount {
        address: *address,
        expected,
        reason: e.to_string(),
    })
}

fn decode_token_account(address: &Pubkey, account: &Account) -> Result<TokenAccount, ChainError> {
    if !is_token_program(&account.owner) {
        return Err(invalid(
            address,
            "token account",
            &format!("owned by {}, not a token program", account.owner),
        ));
    }
    TokenAccount::try_deserialize(&mut account.data.as_slice())
        .map_err(|e| invalid(address, "token account", &e.to_string()))
}

fn invalid(address: &Pubkey, expected: &'static str, reason: &str) -> ChainError {
    ChainError::InvalidAccount {
        address: *address,
        expected,
        reason: reason.to_owned(),
    }
}

/// Sharing: an `Arc` of a chain is a chain, so generic code can take either.
#[async_trait]
impl<C: Chain + ?Sized> Chain for Arc<C> {
    fn fee_payer(&self) -> Pubkey {
        (**self).fee_payer()
    }

    async fn account(&self, address: &Pubkey) -> Result<Option<Account>, ChainError> {
        (**self).account(address).await
    }

    async fn clock(&self) -> Result<Clock, ChainError> {
        (**self).clock().await
    }

    async fn send(
        &self,
        instructions: &[Instruction],
        signers: &[&TxSigner],
    ) -> Result<Signature, ChainError> {
        (**self).send(instructions, signers).await
    }

    async fn latest_blockhash(&self) -> Result<(Hash, u64), ChainError> {
        (**self).latest_blockhash().await
    }

    async fn send_transaction(&self, transaction: &Transaction) -> Result<Signature, ChainError> {
        (**self).send_transaction(transaction).await
    }

    async fn simulate_transaction(&self, transaction: &Transaction) -> Result<(), ChainError> {
        (**self).simulate_transaction(transaction).await
    }

    fn fee_policy(&self) -> FeePolicy {
        (**self).fee_policy()
    }

    async fn compute_budget(
        &self,
        fee_payer: &Pubkey,
        instructions: &[Instruction],
    ) -> Result<Vec<Instruction>, ChainError> {
        (**self).compute_budget(fee_payer, instructions).await
    }

    async fn compute_budget_with(
        &self,
        policy: &FeePolicy,
        fee_payer: &Pubkey,
        instructions: &[Instruction],
    ) -> Result<Vec<Instruction>, ChainError> {
        (**self)
            .compute_budget_with(policy, fee_payer, instructions)
            .await
    }

    async fn program_accounts(
        &self,
        program: &Pubkey,
        filters: &[(usize, Vec<u8>)],
    ) -> Result<Vec<(Pubkey, Account)>, ChainError> {
        (**self).program_accounts(program, filters).await
    }

    async fn channel(&self, address: &Pubkey) -> Result<Option<Channel>, ChainError> {
        (**self).channel(address).await
    }

    async fn token_balance(&self, token_account: &Pubkey) -> Result<Option<u64>, ChainError> {
        (**self).token_balance(token_account).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(program: Pubkey, code: u32) -> ChainError {
        let instructions = [
            Instruction::new_with_bytes(Pubkey::default(), &[], vec![]),
            Instruction::new_with_bytes(program, &[], vec![]),
        ];
        transaction_failed(
            Signature::default(),
            TransactionError::InstructionError(1, InstructionError::Custom(code)),
            &instructions,
            vec![],
        )
    }

    #[test]
    fn amp_errors_only_from_the_amp_program() {
        let code = u32::from(AmpError::GracePeriodNotOver);
        let err = failed(amp_channel::ID, code);
        assert!(matches!(
            err.amp_error(),
            Some(AmpError::GracePeriodNotOver)
        ));
        assert_eq!(err.custom_code(), Some(code));
        assert!(err.to_string().contains("GracePeriodNotOver"), "{err}");
        assert!(!err.is_transient());

        let other = failed(anchor_spl::token::ID, code);
        assert!(other.amp_error().is_none());
        assert_eq!(other.custom_code(), Some(code));
    }
}
