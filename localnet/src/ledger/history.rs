//! What the node remembers of the transactions it landed: enough for
//! `getTransaction`, `getSignatureStatuses` and `getSignaturesForAddress`.

use std::collections::{BTreeMap, HashMap};

use solana_message::inner_instruction::InnerInstructionsList;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_svm::transaction_balances::SvmTokenInfo;
use solana_transaction::versioned::VersionedTransaction;
use solana_transaction_context::TransactionReturnData;
use solana_transaction_error::TransactionError;

/// One landed transaction (it may have failed: a failed transaction still
/// lands, and pays its fee).
#[derive(Clone, Debug)]
pub struct TransactionRecord {
    /// The transaction's first signature.
    pub signature: Signature,
    /// The slot it landed in.
    pub slot: u64,
    /// The slot's unix time.
    pub block_time: i64,
    /// The transaction as sent.
    pub transaction: VersionedTransaction,
    /// `Ok` or the error it failed with.
    pub status: Result<(), TransactionError>,
    /// Lamports charged.
    pub fee: u64,
    /// Lamports of every account key, before and after.
    pub pre_balances: Vec<u64>,
    /// See `pre_balances`.
    pub post_balances: Vec<u64>,
    /// Token balances of the token accounts among the keys, before and after.
    pub pre_token_balances: Vec<SvmTokenInfo>,
    /// See `pre_token_balances`.
    pub post_token_balances: Vec<SvmTokenInfo>,
    /// The programs' logs.
    pub log_messages: Vec<String>,
    /// Inner instructions per top-level instruction (CPIs, and `emit_cpi!`
    /// events, which are self-CPIs).
    pub inner_instructions: InnerInstructionsList,
    /// Compute units consumed.
    pub compute_units_consumed: u64,
    /// Return data of the last instruction that set any.
    pub return_data: Option<TransactionReturnData>,
}

/// Landed transactions by signature, and by the addresses they touched
/// (newest last).
#[derive(Default)]
pub(crate) struct History {
    by_signature: HashMap<Signature, TransactionRecord>,
    by_address: HashMap<Pubkey, Vec<Signature>>,
    by_slot: BTreeMap<u64, Vec<Signature>>,
}

impl History {
    pub(crate) fn insert(&mut self, record: TransactionRecord) {
        for key in record.transaction.message.static_account_keys() {
            self.by_address
                .entry(*key)
                .or_default()
                .push(record.signature);
        }
        self.by_slot
            .entry(record.slot)
            .or_default()
            .push(record.signature);
        self.by_signature.insert(record.signature, record);
    }

    /// Per slot from `first` to `last`, the lowest compute-unit price (in
    /// micro-lamports) paid by a transaction that writes any of `addresses`
    /// (every transaction when empty); 0 for a slot without one.
    pub(crate) fn prioritization_fees(
        &self,
        first: u64,
        last: u64,
        addresses: &[Pubkey],
    ) -> Vec<(u64, u64)> {
        (first..=last)
            .map(|slot| {
                let lowest = self
                    .by_slot
                    .get(&slot)
                    .into_iter()
                    .flatten()
                    .filter_map(|signature| self.by_signature.get(signature))
                    .filter(|record| {
                        addresses.is_empty() || writes_any(&record.transaction, addresses)
                    })
                    .map(|record| compute_unit_price(&record.transaction))
                    .min()
                    .unwrap_or(0);
                (slot, lowest)
            })
            .collect()
    }

    pub(crate) fn get(&self, signature: &Signature) -> Option<&TransactionRecord> {
        self.by_signature.get(signature)
    }

    /// Signatures touching `address`, newest first, starting after `before`
    /// (exclusive) and stopping at `until` (exclusive), at most `limit`.
    pub(crate) fn signatures_for(
        &self,
        address: &Pubkey,
        before: Option<&Signature>,
        until: Option<&Signature>,
        limit: usize,
    ) -> Vec<&TransactionRecord> {
        let Some(signatures) = self.by_address.get(address) else {
            return Vec::new();
        };
        let mut newest_first = signatures.iter().rev().peekable();
        if let Some(before) = before {
            // Skip up to and including `before`; an unknown `before` yields nothing.
            if !signatures.contains(before) {
                return Vec::new();
            }
            for signature in newest_first.by_ref() {
                if signature == before {
                    break;
                }
            }
        }
        newest_first
            .take_while(|signature| Some(*signature) != until)
            .take(limit)
            .filter_map(|signature| self.by_signature.get(signature))
            .collect()
    }
}

fn writes_any(transaction: &VersionedTransaction, addresses: &[Pubkey]) -> bool {
    let message = &transaction.message;
    message
        .static_account_keys()
        .iter()
        .enumerate()
        .any(|(index, key)| addresses.contains(key) && message.is_maybe_writable(index, None))
}

/// The price a transaction's `SetComputeUnitPrice` instruction sets (0 without one).
fn compute_unit_price(transaction: &VersionedTransaction) -> u64 {
    const SET_COMPUTE_UNIT_PRICE: u8 = 3;
    let keys = transaction.message.static_account_keys();
    transaction
        .message
        .instructions()
        .iter()
        .filter(|ix| {
            keys.get(usize::from(ix.program_id_index)) == Some(&solana_sdk_ids::compute_budget::ID)
        })
        .find_map(|ix| match ix.data.split_first() {
            Some((&SET_COMPUTE_UNIT_PRICE, rest)) => {
                rest.get(..8)?.try_into().ok().map(u64::from_le_bytes)
            }
            _ => None,
        })
        .unwrap_or(0)
}
