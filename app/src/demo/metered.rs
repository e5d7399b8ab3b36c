//! A [`Chain`] that records every transaction sent through it: what it did
//! (by its AMP instructions) and the fee it cost, measured as the change in
//! the fee payer's balance. The demo's report is built from this record.
//!
//! Sends are serialised so that each balance change belongs to one
//! transaction. The measurement is exact when the fee payer pays nothing
//! but fees, which the demo arranges (every token account exists before).

use std::sync::Mutex;

use amp_sdk::chain::{Chain, ChainError, TxSigner};
use amp_sdk::fees::FeePolicy;
use amp_sdk::program::instruction as amp_ix;
use anchor_lang::prelude::Pubkey;
use anchor_lang::Discriminator;
use async_trait::async_trait;
use serde::Serialize;
use solana_account::Account;
use solana_clock::Clock;
use solana_hash::Hash;
use solana_instruction::Instruction;
use solana_signature::Signature;
use solana_transaction::Transaction;

/// What a transaction did, by its first AMP instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TxKind {
    Open,
    TopUp,
    Settle,
    Close,
    RequestClose,
    Refund,
    /// Delegations and supply chains.
    OtherAmp,
    /// No AMP instruction (token transfers, account creation).
    Other,
}

impl TxKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::TopUp => "top-up",
            Self::Settle => "settle",
            Self::Close => "close",
            Self::RequestClose => "request-close",
            Self::Refund => "refund",
            Self::OtherAmp => "other AMP",
            Self::Other => "other",
        }
    }

    /// The kind of a transaction made of `instructions`.
    pub fn of(instructions: &[Instruction]) -> Self {
        instructions
            .iter()
            .filter(|ix| ix.program_id == amp_sdk::program::ID)
            .map(|ix| {
                let is = |d: &[u8]| ix.data.starts_with(d);
                if is(amp_ix::Open::DISCRIMINATOR) {
                    Self::Open
                } else if is(amp_ix::TopUp::DISCRIMINATOR) {
                    Self::TopUp
                } else if is(amp_ix::Settle::DISCRIMINATOR) {
                    Self::Settle
                } else if is(amp_ix::Close::DISCRIMINATOR) {
                    Self::Close
                } else if is(amp_ix::RequestClose::DISCRIMINATOR) {
                    Self::RequestClose
                } else if is(amp_ix::Refund::DISCRIMINATOR) {
                    Self::Refund
                } else {
                    Self::OtherAmp
                }
            })
            .next()
            .unwrap_or(Self::Other)
    }
}

/// One transaction sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TxRecord {
    pub kind: TxKind,
    /// Vouchers it settled (`settle` instructions, and a `close` with a final voucher).
    pub vouchers: u32,
    /// Lamports the fee payer's balance dropped by.
    pub fee: u64,
    /// Whether it landed and succeeded.
    pub ok: bool,
}

/// A chain that records what is sent through it.
pub struct MeteredChain<C> {
    inner: C,
    records: Mutex<Vec<TxRecord>>,
    turn: tokio::sync::Mutex<()>,
}

impl<C: Chain> MeteredChain<C> {
    pub fn new(inner: C) -> Self {
        Self {
            inner,
            records: Mutex::new(Vec::new()),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// Every transaction sent so far, in order.
    pub fn records(&self) -> Vec<TxRecord> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many transactions were sent so far (a mark for [`since`](Self::since)).
    pub fn mark(&self) -> usize {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The transactions sent after `mark`.
    pub fn since(&self, mark: usize) -> Vec<TxRecord> {
        self.records().into_iter().skip(mark).collect()
    }

    async fn payer_lamports(&self) -> Result<u64, ChainError> {
        let payer = self.inner.fee_payer();
        Ok(self.inner.account(&payer).await?.map_or(0, |a| a.lamports))
    }
}

#[async_trait]
impl<C: Chain> Chain for MeteredChain<C> {
    fn fee_payer(&self) -> Pubkey {
        self.inner.fee_payer()
    }

    async fn account(&self, address: &Pubkey) -> Result<Option<Account>, ChainError> {
        self.inner.account(address).await
    }

    async fn clock(&self) -> Result<Clock, ChainError> {
        self.inner.clock().await
    }

    async fn send(
        &self,
        instructions: &[Instruction],
        signers: &[&TxSigner],
    ) -> Result<Signature, ChainError> {
        self.metered(instructions, self.inner.send(instructions, signers))
            .await
    }

    async fn latest_blockhash(&self) -> Result<(Hash, u64), ChainError> {
        self.inner.latest_blockhash().await
    }

    async fn simulate_transaction(&self, transaction: &Transaction) -> Result<(), ChainError> {
        self.inner.simulate_transaction(transaction).await
    }

    fn fee_policy(&self) -> FeePolicy {
        self.inner.fee_policy()
    }

    async fn compute_budget_with(
        &self,
        policy: &FeePolicy,
        fee_payer: &Pubkey,
        instructions: &[Instruction],
    ) -> Result<Vec<Instruction>, ChainError> {
        self.inner
            .compute_budget_with(policy, fee_payer, instructions)
            .await
    }

    async fn send_transaction(&self, transaction: &Transaction) -> Result<Signature, ChainError> {
        // What TxKind reads of each instruction: its program and data.
        let message = &transaction.message;
        let instructions: Vec<Instruction> = message
            .instructions
            .iter()
            .filter_map(|ix| {
                let program = message.account_keys.get(usize::from(ix.program_id_index))?;
                Some(Instruction::new_with_bytes(*program, &ix.data, vec![]))
            })
            .collect();
        self.metered(&instructions, self.inner.send_transaction(transaction))
            .await
    }
}

impl<C: Chain> MeteredChain<C> {
    /// Runs one send alone and records what it did and cost.
    async fn metered(
        &self,
        instructions: &[Instruction],
        send: impl std::future::Future<Output = Result<Signature, ChainError>>,
    ) -> Result<Signature, ChainError> {
        let _turn = self.turn.lock().await;
        let before = self.payer_lamports().await?;
        let result = send.await;
        let after = self.payer_lamports().await?;
        let kind = TxKind::of(instructions);
        let vouchers = instructions
            .iter()
            .filter(|ix| ix.program_id == solana_sdk_ids::ed25519_program::ID)
            .count();
        let record = TxRecord {
            kind,
            vouchers: u32::try_from(vouchers).unwrap_or(u32::MAX),
            fee: before.saturating_sub(after),
            ok: result.is_ok(),
        };
        tracing::debug!(?record, "transaction");
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
        result
    }
}
