//! The strict reading of a transaction a service is asked to co-sign: pure
//! validators that say what the transaction does, or why it is refused.
//!
//! The service signs as fee payer (and, for `open`, as rent payer), so the
//! only thing it may be made to pay is that fee and that rent. A transaction
//! passes when it is exactly: compute-budget limit and price (each at most
//! once, within the advertised caps), then one AMP `open` (or `top_up`); the
//! service's key appears as fee payer and, in `open`, in the `payer` slot,
//! nowhere else; the funder, the only other signer, signed it.

use amp_channel::instructions::OpenArgs;
use anchor_lang::prelude::Pubkey;
use anchor_lang::{AnchorDeserialize, Discriminator};
use ed25519_dalek::{Signature, VerifyingKey};
use solana_transaction::Transaction;

use crate::fees;
use crate::instructions::{self as ix, ChannelKeys};
use crate::manifest::{ErrorBody, ErrorCode};
use crate::sponsor::Sponsorship;

/// The compute-unit limit a transaction without `SetComputeUnitLimit` gets
/// for its one non-budget instruction.
pub(crate) const DEFAULT_COMPUTE_UNIT_LIMIT: u32 = 200_000;

/// What the compute-budget instructions ask for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Budget {
    pub limit: Option<u32>,
    /// Micro-lamports per compute unit.
    pub price: Option<u64>,
}

impl Budget {
    /// The fee's priority part the service would pay, in lamports (rounded up).
    pub(crate) fn priority_fee(&self) -> u64 {
        let units = u128::from(self.limit.unwrap_or(DEFAULT_COMPUTE_UNIT_LIMIT));
        let micro = units.saturating_mul(u128::from(self.price.unwrap_or(0)));
        u64::try_from(micro.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }
}

/// A transaction that has the shape the service co-signs; its AMP
/// instruction is still to be matched against the terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// The one signer besides the service.
    pub funder: Pubkey,
    pub budget: Budget,
    /// The AMP instruction's data and accounts, in order.
    pub data: Vec<u8>,
    pub accounts: Vec<Pubkey>,
}

/// A sponsored `open` that meets the terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SponsoredOpen {
    pub keys: ChannelKeys,
    pub args: OpenArgs,
    pub budget: Budget,
}

/// A sponsored `top_up` of `channel` by its funder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SponsoredTopUp {
    pub funder: Pubkey,
    pub channel: Pubkey,
    pub amount: u64,
    pub funder_token: Pubkey,
    pub budget: Budget,
}

fn refused(message: impl Into<String>) -> Box<ErrorBody> {
    Box::new(ErrorBody::new(ErrorCode::SponsorTransaction, message))
}

fn terms(message: impl Into<String>) -> Box<ErrorBody> {
    Box::new(ErrorBody::new(ErrorCode::SponsorTerms, message))
}

/// Checks everything about `tx` that does not depend on the AMP
/// instruction's meaning: signers, fee payer, the instructions' programs,
/// the compute budget, where the service's key appears. `payer_slot` is
/// the AMP instruction's account position where the service may appear
/// (`open`'s `payer`), if any.
pub(crate) fn parse(
    tx: &Transaction,
    sponsorship: &Sponsorship,
    payer_slot: Option<usize>,
) -> Result<Parsed, Box<ErrorBody>> {
    let message = &tx.message;
    let keys = &message.account_keys;
    if message.header.num_required_signatures != 2 || tx.signatures.len() != 2 || keys.len() < 2 {
        return Err(refused(
            "exactly two signers: the service as fee payer, the funder",
        ));
    }
    if keys[0] != sponsorship.payer {
        return Err(refused(format!(
            "the fee payer must be the service's wallet {}",
            sponsorship.payer
        )));
    }
    let funder = keys[1];
    if funder == sponsorship.payer {
        return Err(refused("the funder cannot be the service"));
    }
    check_signature(tx, &funder)?;

    let mut budget = Budget::default();
    let mut amp = None;
    for (index, instruction) in message.instructions.iter().enumerate() {
        let program = keys
            .get(usize::from(instruction.program_id_index))
            .ok_or_else(|| refused("an instruction names no program"))?;
        let accounts: Vec<Pubkey> = instruction
            .accounts
            .iter()
            .map(|&i| keys.get(usize::from(i)).copied())
            .collect::<Option<_>>()
            .ok_or_else(|| refused("an instruction names an account the message lacks"))?;
        if *program == solana_sdk_ids::compute_budget::ID && amp.is_none() {
            if !accounts.is_empty() {
                return Err(refused("a compute-budget instruction takes no account"));
            }
            read_budget(&instruction.data, &mut budget)?;
        } else if *program == amp_channel::ID && amp.is_none() {
            for (slot, key) in accounts.iter().enumerate() {
                if *key == sponsorship.payer && Some(slot) != payer_slot {
                    return Err(refused(
                        "the service's key may appear only as fee payer and rent payer",
                    ));
                }
            }
            amp = Some((instruction.data.clone(), accounts));
        } else {
            return Err(refused(format!(
                "instruction {index} (program {program}) is not one the service co-signs: \
                 compute budget, then one AMP instruction, nothing else"
            )));
        }
    }
    let Some((data, accounts)) = amp else {
        return Err(refused("no AMP instruction"));
    };
    if let Some(price) = budget.price {
        if price > sponsorship.max_compute_unit_price {
            return Err(terms(format!(
                "compute-unit price {price} is above the cap {}",
                sponsorship.max_compute_unit_price
            )));
        }
    }
    // The limit matters only with a price: the priority fee is their product.
    // A price without a limit gets the default limit.
    let limit = match budget.price {
        Some(price) if price > 0 => budget.limit.unwrap_or(DEFAULT_COMPUTE_UNIT_LIMIT),
        _ => budget.limit.unwrap_or(0),
    };
    if limit > sponsorship.max_compute_unit_limit {
        return Err(terms(format!(
            "compute-unit limit {limit} is above the cap {}",
            sponsorship.max_compute_unit_limit
        )));
    }
    Ok(Parsed {
        funder,
        budget,
        data,
        accounts,
    })
}

/// The funder's signature must verify (strictly) over the message.
fn check_signature(tx: &Transaction, funder: &Pubkey) -> Result<(), Box<ErrorBody>> {
    let key = VerifyingKey::from_bytes(funder.as_array())
        .map_err(|_| refused("the funder's key is not a valid ed25519 key"))?;
    let signature = Signature::from_bytes(tx.signatures[1].as_array());
    key.verify_strict(&tx.message_data(), &signature)
        .map_err(|_| refused("the funder's signature does not verify"))
}

/// `SetComputeUnitLimit` (2, u32) and `SetComputeUnitPrice` (3, u64), each
/// at most once; every other compute-budget instruction is refused.
fn read_budget(data: &[u8], budget: &mut Budget) -> Result<(), Box<ErrorBody>> {
    match (fees::limit_in(data), fees::price_in(data)) {
        (Some(limit), _) if budget.limit.is_none() => budget.limit = Some(limit),
        (_, Some(price)) if budget.price.is_none() => budget.price = Some(price),
        _ => {
            return Err(refused(
                "only one SetComputeUnitLimit and one SetComputeUnitPrice are allowed",
            ))
        }
    }
    Ok(())
}

/// The account order of `open` (`accounts::Open`): `payer` is slot 1.
pub(crate) const OPEN_PAYER_SLOT: usize = 1;
const OPEN_FUNDER_TOKEN: usize = 4;
const OPEN_MINT: usize = 5;
const OPEN_TOKEN_PROGRAM: usize = 6;

/// Matches a parsed `open` against the advertised terms: the recipient is
/// the service, the mint and amounts are sponsored, and every account is
/// the one the terms derive (so the program's own checks see no surprise).
/// `token_program` names the program owning each accepted mint.
pub(crate) fn open(
    parsed: &Parsed,
    sponsorship: &Sponsorship,
    recipient: &Pubkey,
    token_program: impl Fn(&Pubkey) -> Option<Pubkey>,
) -> Result<SponsoredOpen, Box<ErrorBody>> {
    let args = decode::<amp_channel::instruction::Open>(&parsed.data, "open")?.args;
    let at = |slot: usize| parsed.accounts.get(slot).copied();
    let (Some(funder_token), Some(mint), Some(program)) =
        (at(OPEN_FUNDER_TOKEN), at(OPEN_MINT), at(OPEN_TOKEN_PROGRAM))
    else {
        return Err(refused("open has too few accounts"));
    };
    if args.recipient != *recipient {
        return Err(terms(format!("the recipient must be {recipient}")));
    }
    if !sponsorship.mints.contains(&mint) {
        return Err(terms(format!("channels in mint {mint} are not sponsored")));
    }
    if !(sponsorship.min_deposit..=sponsorship.max_deposit).contains(&args.deposit) {
        return Err(terms(format!(
            "a sponsored deposit is between {} and {}",
            sponsorship.min_deposit, sponsorship.max_deposit
        )));
    }
    if !(sponsorship.min_grace_period..=sponsorship.max_grace_period).contains(&args.grace_period) {
        return Err(terms(format!(
            "a sponsored grace period is between {} and {} seconds",
            sponsorship.min_grace_period, sponsorship.max_grace_period
        )));
    }
    if token_program(&mint) != Some(program) {
        return Err(refused("the token program does not own the mint"));
    }
    let keys = ChannelKeys::new(parsed.funder, args.recipient, args.nonce, mint, program)
        .with_payer(sponsorship.payer);
    let expected = ix::open(&keys, funder_token, args);
    same_accounts(parsed, &expected, "open")?;
    Ok(SponsoredOpen {
        keys,
        args,
        budget: parsed.budget,
    })
}

const TOP_UP_CHANNEL: usize = 1;
const TOP_UP_FUNDER_TOKEN: usize = 3;

/// Reads a parsed `top_up`; the caller checks the channel on-chain (it must
/// pay this service in a sponsored mint) with [`top_up_accounts`].
pub(crate) fn top_up(parsed: &Parsed) -> Result<SponsoredTopUp, Box<ErrorBody>> {
    let amount = decode::<amp_channel::instruction::TopUp>(&parsed.data, "top_up")?.amount;
    let (Some(channel), Some(funder_token)) = (
        parsed.accounts.get(TOP_UP_CHANNEL).copied(),
        parsed.accounts.get(TOP_UP_FUNDER_TOKEN).copied(),
    ) else {
        return Err(refused("top_up has too few accounts"));
    };
    Ok(SponsoredTopUp {
        funder: parsed.funder,
        channel,
        amount,
        funder_token,
        budget: parsed.budget,
    })
}

/// The `top_up`'s accounts are exactly those of `keys` (the channel as read
/// from the chain).
pub(crate) fn top_up_accounts(
    parsed: &Parsed,
    top_up: &SponsoredTopUp,
    keys: &ChannelKeys,
) -> Result<(), Box<ErrorBody>> {
    let expected = ix::top_up(keys, top_up.funder_token, top_up.amount);
    same_accounts(parsed, &expected, "top_up")
}

/// Exactly the instruction's data for `T`: its discriminator, then its
/// arguments with nothing left over.
fn decode<T: AnchorDeserialize + Discriminator>(
    data: &[u8],
    name: &str,
) -> Result<T, Box<ErrorBody>> {
    let args = data
        .strip_prefix(T::DISCRIMINATOR)
        .ok_or_else(|| refused(format!("the AMP instruction must be an AMP {name}")))?;
    T::try_from_slice(args).map_err(|_| refused(format!("{name}'s arguments do not decode")))
}

fn same_accounts(
    parsed: &Parsed,
    expected: &solana_instruction::Instruction,
    name: &str,
) -> Result<(), Box<ErrorBody>> {
    let matches = parsed.accounts.len() == expected.accounts.len()
        && parsed
            .accounts
            .iter()
            .zip(&expected.accounts)
            .all(|(got, want)| *got == want.pubkey);
    if matches {
        Ok(())
    } else {
        Err(refused(format!(
            "{name}'s accounts are not the ones its terms derive"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_limit_and_one_price_are_read() {
        let mut budget = Budget::default();
        read_budget(&[2, 0x40, 0x9c, 0, 0], &mut budget).unwrap();
        read_budget(&[3, 10, 0, 0, 0, 0, 0, 0, 0], &mut budget).unwrap();
        assert_eq!((budget.limit, budget.price), (Some(40_000), Some(10)));
        // A second of either, a heap frame, a data-size limit, short data: refused.
        for data in [
            &[2, 1, 0, 0, 0][..],
            &[3, 1, 0, 0, 0, 0, 0, 0, 0],
            &[1, 0, 0, 1, 0],
            &[4, 0, 0, 1, 0],
            &[],
        ] {
            let mut again = budget;
            assert!(read_budget(data, &mut again).is_err(), "{data:?}");
        }
        let mut fresh = Budget::default();
        assert!(read_budget(&[2, 0, 0], &mut fresh).is_err());
    }

    #[test]
    fn the_priority_fee_is_the_price_times_the_limit_rounded_up() {
        let fee = |limit, price| Budget { limit, price }.priority_fee();
        assert_eq!(fee(Some(100_000), Some(1_000)), 100);
        assert_eq!(fee(Some(1), Some(1)), 1);
        assert_eq!(fee(None, Some(5)), 1);
        assert_eq!(fee(None, None), 0);
        assert_eq!(fee(Some(u32::MAX), Some(u64::MAX)), u64::MAX);
    }
}
