//! Sponsored opening (SPEC section 5, "Sponsored opening"): the documents an
//! agent that holds only tokens exchanges with a service that fronts the
//! rent and the fee of its `open` (and the fee of its `top_up`).
//!
//! The agent builds the transaction with the service's wallet as fee payer
//! (and, for `open`, as the rent `payer`), signs it as funder and posts it as
//! a [`SponsorRequest`]; the service checks it against what its manifest
//! advertised ([`Sponsorship`]), adds its signature, sends it and answers a
//! [`SponsorAnswer`]. Every refusal is an [`ErrorBody`](crate::manifest::ErrorBody)
//! with one of the `AMP_SPONSOR_*` codes, and nothing is signed.

use amp_channel::instructions::OpenArgs;
use anchor_lang::prelude::Pubkey;
use base64::Engine;
use serde::{Deserialize, Serialize};
use solana_hash::Hash;
use solana_instruction::Instruction;
use solana_signer::{Signer, SignerError};
use solana_transaction::Transaction;

use crate::decimal::u64_string;
use crate::instructions::{self as ix, ChannelKeys};
use crate::transactions::{self, MAX_TRANSACTION_SIZE};

/// Where an agent posts an `open` transaction for the service to co-sign.
pub const OPEN_PATH: &str = "/.well-known/amp/open";
/// Where an agent posts a `top_up` transaction for the service to co-sign
/// (the service pays the fee only).
pub const TOP_UP_PATH: &str = "/.well-known/amp/top-up";
/// Largest request body the sponsor endpoints read: a packet, base64 encoded,
/// and the JSON around it.
pub const MAX_REQUEST_LEN: usize = 4 * 1024;

/// Lamports each signature of a transaction costs.
pub const LAMPORTS_PER_SIGNATURE: u64 = 5_000;
/// An SPL Token account's size: a vault of an SPL Token mint.
pub const SPL_TOKEN_VAULT_LEN: usize = 165;
/// An upper bound of a Token-2022 vault's size, with the extensions a vault
/// can carry.
pub const VAULT_LEN_BOUND: usize = 300;

/// The rent of a Channel and of a Vault of `vault_len` bytes: what an open
/// fronts, which comes back when the channel closes.
pub fn open_rent(vault_len: usize) -> u64 {
    let rent = anchor_lang::prelude::Rent::default();
    rent.minimum_balance(amp_channel::constants::MAX_CHANNEL_ACCOUNT_LEN)
        .saturating_add(rent.minimum_balance(vault_len))
}

/// What a service sponsors, as its manifest advertises it (`"sponsor"`).
/// Amounts are in the mint's smallest unit; fees in lamports and
/// micro-lamports per compute unit, as Solana counts them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sponsorship {
    /// The service's wallet: the fee payer and rent payer to name.
    #[serde(with = "crate::base58")]
    pub payer: Pubkey,
    /// Mints whose channels it sponsors (a subset of the manifest's).
    #[serde(with = "crate::base58::vec")]
    pub mints: Vec<Pubkey>,
    /// Smallest deposit of a sponsored `open`.
    #[serde(with = "u64_string")]
    pub min_deposit: u64,
    /// Largest deposit of a sponsored `open`.
    #[serde(with = "u64_string")]
    pub max_deposit: u64,
    /// Shortest grace period (seconds) a sponsored `open` may choose.
    pub min_grace_period: u32,
    /// Longest grace period (seconds) a sponsored `open` may choose.
    pub max_grace_period: u32,
    /// Highest compute-unit price (micro-lamports) the transaction may set;
    /// with the limit below it bounds the fee the service pays.
    pub max_compute_unit_price: u64,
    /// Highest compute-unit limit the transaction may set.
    pub max_compute_unit_limit: u32,
    /// Whether `top_up` is sponsored too (the fee only).
    pub top_up: bool,
}

impl Sponsorship {
    /// Whether a channel in `mint` with `deposit` and `grace_period` is one
    /// the service sponsors.
    pub fn covers(&self, mint: &Pubkey, deposit: u64, grace_period: u32) -> bool {
        self.mints.contains(mint)
            && (self.min_deposit..=self.max_deposit).contains(&deposit)
            && (self.min_grace_period..=self.max_grace_period).contains(&grace_period)
    }
}

/// The body of a sponsored `open` or `top_up`: the transaction, signed by the
/// funder, with the service's signature slot left empty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SponsorRequest {
    /// The wire transaction (legacy encoding), base64.
    pub transaction: String,
}

impl SponsorRequest {
    /// The request carrying `transaction`.
    pub fn new(transaction: &Transaction) -> Self {
        let bytes = bincode::serialize(transaction).unwrap_or_default();
        Self {
            transaction: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    /// The transaction it carries; `None` when it is not one (bad base64,
    /// larger than a packet, not a legacy transaction).
    pub fn decode(&self) -> Option<Transaction> {
        // Base64 of a packet is at most 4/3 of it.
        if self.transaction.len() > MAX_TRANSACTION_SIZE.div_ceil(3) * 4 {
            return None;
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.transaction)
            .ok()?;
        if bytes.len() > MAX_TRANSACTION_SIZE {
            return None;
        }
        let transaction: Transaction = bincode::deserialize(&bytes).ok()?;
        // Exactly these bytes: no trailing data a second parser might read.
        (bincode::serialized_size(&transaction).ok()? == bytes.len() as u64).then_some(transaction)
    }
}

/// The `open` a sponsor co-signs: `sponsorship.payer` pays the fee and the
/// rent, `funder` signs for the deposit (from its associated token account).
/// `budget` is the compute-budget instructions to put first (none is fine).
/// The sponsor's signature slot is left empty.
pub fn open_transaction(
    funder: &dyn Signer,
    sponsorship: &Sponsorship,
    mint: Pubkey,
    token_program: Pubkey,
    args: OpenArgs,
    budget: &[Instruction],
    blockhash: Hash,
) -> Result<(ChannelKeys, Transaction), SignerError> {
    let options = transactions::OpenOptions {
        payer: Some(sponsorship.payer),
        ..Default::default()
    };
    let (keys, open) = transactions::open(funder.pubkey(), mint, token_program, args, options);
    let tx = co_signed(funder, sponsorship, budget, &open, blockhash)?;
    Ok((keys, tx))
}

/// The `top_up` of `amount` a sponsor co-signs (paying the fee only), from
/// the funder's associated token account.
pub fn top_up_transaction(
    funder: &dyn Signer,
    sponsorship: &Sponsorship,
    keys: &ChannelKeys,
    amount: u64,
    budget: &[Instruction],
    blockhash: Hash,
) -> Result<Transaction, SignerError> {
    let top_up = [ix::top_up(keys, transactions::funder_token(keys), amount)];
    co_signed(funder, sponsorship, budget, &top_up, blockhash)
}

fn co_signed(
    funder: &dyn Signer,
    sponsorship: &Sponsorship,
    budget: &[Instruction],
    instructions: &[Instruction],
    blockhash: Hash,
) -> Result<Transaction, SignerError> {
    let all: Vec<Instruction> = budget.iter().chain(instructions).cloned().collect();
    let mut tx = Transaction::new_with_payer(&all, Some(&sponsorship.payer));
    tx.try_partial_sign(&[funder], blockhash)?;
    Ok(tx)
}

/// The service's answer once the sponsored transaction landed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SponsorAnswer {
    /// The channel opened or topped up.
    #[serde(with = "crate::base58")]
    pub channel: Pubkey,
    /// The transaction's signature.
    pub signature: String,
    /// Lamports of rent the service fronted (0 for a top-up); they return to
    /// it when the channel closes.
    pub rent: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use solana_keypair::Keypair;
    use solana_signer::Signer;

    #[test]
    fn a_request_round_trips_and_refuses_what_is_not_a_transaction() {
        let payer = Keypair::new();
        let ix = solana_instruction::Instruction::new_with_bytes(
            Pubkey::new_unique(),
            &[1, 2, 3],
            vec![],
        );
        let tx = Transaction::new_with_payer(&[ix], Some(&payer.pubkey()));
        let request = SponsorRequest::new(&tx);
        assert_eq!(request.decode(), Some(tx.clone()));
        let json = serde_json::to_string(&request).unwrap();
        let back: SponsorRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(back.decode(), Some(tx.clone()));

        let bad = |transaction: String| SponsorRequest { transaction }.decode();
        assert_eq!(bad("not base64!".into()), None);
        assert_eq!(bad(String::new()), None);
        let mut trailing = bincode::serialize(&tx).unwrap();
        trailing.push(0);
        let engine = base64::engine::general_purpose::STANDARD;
        assert_eq!(bad(engine.encode(&trailing)), None);
        assert_eq!(
            bad(engine.encode(vec![7u8; MAX_TRANSACTION_SIZE + 1])),
            None
        );
        assert_eq!(bad("A".repeat(10_000)), None);
    }

    #[test]
    fn covers_the_advertised_terms_only() {
        let mint = Pubkey::new_unique();
        let s = Sponsorship {
            payer: Pubkey::new_unique(),
            mints: vec![mint],
            min_deposit: 10,
            max_deposit: 100,
            min_grace_period: 60,
            max_grace_period: 3_600,
            max_compute_unit_price: 1_000,
            max_compute_unit_limit: 100_000,
            top_up: true,
        };
        assert!(s.covers(&mint, 10, 60));
        assert!(s.covers(&mint, 100, 3_600));
        assert!(!s.covers(&mint, 9, 60));
        assert!(!s.covers(&mint, 101, 60));
        assert!(!s.covers(&mint, 50, 59));
        assert!(!s.covers(&mint, 50, 3_601));
        assert!(!s.covers(&Pubkey::new_unique(), 50, 600));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["max_deposit"], "100");
        assert_eq!(serde_json::from_value::<Sponsorship>(json).unwrap(), s);
    }
}
