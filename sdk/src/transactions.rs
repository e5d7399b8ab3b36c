//! Transaction builders: the instructions of each step in a channel's life,
//! with associated token accounts filled in, and the packing of many
//! settlements into as few transactions as the packet size allows.
//!
//! Builders return instruction lists for [`Chain::send`](crate::chain::Chain::send),
//! which adds the fee payer and blockhash. They use associated token accounts
//! (the funder's for deposits and refunds, the recipient's for payments); for
//! other token accounts use [`crate::instructions`] directly.

use std::sync::OnceLock;

use amp_channel::error::AmpError;
use amp_channel::instructions::OpenArgs;
use amp_channel::state::{Channel, ChannelTerms, Delegation, DelegationTerms};
use amp_channel::voucher::Voucher;
use anchor_lang::prelude::Pubkey;
use anchor_spl::associated_token::spl_associated_token_account::instruction::create_associated_token_account_idempotent;
use solana_instruction::Instruction;
use solana_transaction::Transaction;

use crate::instructions::{self as ix, ChannelKeys};
use crate::pda;

/// The largest serialised transaction a cluster accepts (one network packet).
/// Defined here, below [`crate::chain`], because packing needs it and the
/// chain checks it before sending.
pub const MAX_TRANSACTION_SIZE: usize = solana_packet::PACKET_DATA_SIZE;

/// Bytes of `transaction` on the wire (the legacy encoding a cluster receives).
pub fn transaction_size(transaction: &Transaction) -> usize {
    // Serialising a transaction cannot fail; count a failure as too large.
    bincode::serialized_size(transaction).map_or(usize::MAX, |size| size as usize)
}

/// Wire size of a transaction of `instructions` paid by `fee_payer`, with
/// every signature slot filled (the signatures' values do not change the size).
pub fn instructions_size(fee_payer: &Pubkey, instructions: &[Instruction]) -> usize {
    transaction_size(&Transaction::new_with_payer(instructions, Some(fee_payer)))
}

/// The funder's associated token account for the channel's mint.
pub fn funder_token(keys: &ChannelKeys) -> Pubkey {
    pda::associated_token(&keys.funder, &keys.mint, &keys.token_program)
}

/// The recipient's associated token account for the channel's mint.
pub fn recipient_token(keys: &ChannelKeys) -> Pubkey {
    pda::associated_token(&keys.recipient, &keys.mint, &keys.token_program)
}

/// Creates `owner`'s associated token account for `mint` unless it exists;
/// `payer` fronts the rent.
pub fn create_token_account_idempotent(
    payer: &Pubkey,
    owner: &Pubkey,
    mint: &Pubkey,
    token_program: &Pubkey,
) -> Instruction {
    create_associated_token_account_idempotent(payer, owner, mint, token_program)
}

/// Choices for [`open`] beyond the channel's terms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// The token account paying the deposit; `None` = the funder's associated one.
    pub funder_token: Option<Pubkey>,
    /// Create the funder's and the recipient's associated token accounts first
    /// (idempotently), with this account paying their rent: settlements need
    /// the recipient's, refunds the funder's.
    pub create_token_accounts: Option<Pubkey>,
    /// Who fronts the Channel's and Vault's rent (and gets it back at close);
    /// `None` = the funder. A sponsor signs the transaction as well.
    pub payer: Option<Pubkey>,
}

/// The instructions that open a channel from `funder` in `mint` on `args`'s
/// terms, and the channel's keys (derived from `args`, so they always agree).
/// The funder signs, and the payer when it is another account.
pub fn open(
    funder: Pubkey,
    mint: Pubkey,
    token_program: Pubkey,
    args: OpenArgs,
    options: OpenOptions,
) -> (ChannelKeys, Vec<Instruction>) {
    let keys = ChannelKeys::new(funder, args.recipient, args.nonce, mint, token_program)
        .with_payer(options.payer.unwrap_or(funder));
    let mut instructions = Vec::with_capacity(3);
    if let Some(payer) = options.create_token_accounts {
        for owner in [funder, args.recipient] {
            instructions.push(create_token_account_idempotent(
                &payer,
                &owner,
                &mint,
                &token_program,
            ));
        }
    }
    let funder_token = options.funder_token.unwrap_or_else(|| funder_token(&keys));
    instructions.push(ix::open(&keys, funder_token, args));
    (keys, instructions)
}

/// The program's own checks of `open`'s terms, run before sending: a
/// self-channel, a grace period or expiry out of bounds, a zero deposit, the
/// recipient as the signer. (The mint and the funder's token account are
/// checked with [`crate::mint`].)
pub fn check_open(funder: Pubkey, mint: Pubkey, args: &OpenArgs, now: i64) -> Result<(), AmpError> {
    let terms = ChannelTerms {
        funder,
        payer: funder,
        recipient: args.recipient,
        mint,
        authorized_signer: args.authorized_signer.unwrap_or(funder),
        nonce: args.nonce,
        deposit: args.deposit,
        grace_period: args.grace_period,
        expires_at: args.expires_at,
    };
    Channel::new(terms, 0, now, 0, 0)
        .map(drop)
        .map_err(program_error)
}

/// The program's own checks of `delegate`'s terms on `channel`, run before
/// sending: a zero cap, an expiry out of bounds, the recipient as the delegate.
pub fn check_delegate(channel: &Channel, terms: DelegationTerms, now: i64) -> Result<(), AmpError> {
    Delegation::new(
        Pubkey::default(),
        channel,
        terms,
        Pubkey::default(),
        0,
        now,
        0,
    )
    .map(drop)
    .map_err(program_error)
}

/// The program error one of the program's pure rules returned (`Channel::new`,
/// `Delegation::new`, `LaneTerms::settlement`, …): they return nothing else,
/// so the fallback is never taken.
pub fn program_error(error: anchor_lang::error::Error) -> AmpError {
    match error {
        anchor_lang::error::Error::AnchorError(e) => AmpError::from_code(e.error_code_number),
        anchor_lang::error::Error::ProgramError(_) => None,
    }
    .unwrap_or(AmpError::ArithmeticOverflow)
}

/// Adds `amount` to the deposit from the funder's associated token account.
/// The funder signs.
pub fn top_up(keys: &ChannelKeys, amount: u64) -> Vec<Instruction> {
    vec![ix::top_up(keys, funder_token(keys), amount)]
}

/// A voucher to settle, with what settling it needs besides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settlement {
    /// The channel the voucher pays from.
    pub keys: ChannelKeys,
    /// The key that signed the voucher: the channel's authorised signer, or
    /// the delegate for a delegated lane.
    pub signer: Pubkey,
    /// The voucher; settling pays its cumulative amount minus what is already settled.
    pub voucher: Voucher,
    /// The signer's ed25519 signature of the 68-byte voucher.
    pub signature: [u8; 64],
    /// The recipient's token account that receives the payment.
    pub destination: Pubkey,
    /// For a delegate's lane, the delegate: the payment is drawn through its
    /// Delegation account. `None` for the channel's own lane.
    pub delegate: Option<Pubkey>,
}

impl Settlement {
    /// A settlement of the channel's own lane, paying into the recipient's
    /// associated token account.
    pub fn new(keys: ChannelKeys, signer: Pubkey, voucher: Voucher, signature: [u8; 64]) -> Self {
        Self {
            destination: recipient_token(&keys),
            keys,
            signer,
            voucher,
            signature,
            delegate: None,
        }
    }

    /// A settlement of `delegate`'s lane of the channel (a voucher the
    /// delegate signed), paying into the recipient's associated token account.
    pub fn delegated(
        keys: ChannelKeys,
        delegate: Pubkey,
        voucher: Voucher,
        signature: [u8; 64],
    ) -> Self {
        Self {
            delegate: Some(delegate),
            ..Self::new(keys, delegate, voucher, signature)
        }
    }

    /// The lane the voucher pays from: the channel, or the delegate's
    /// Delegation account.
    pub fn lane(&self) -> Pubkey {
        self.delegate.map_or(self.keys.channel, |delegate| {
            pda::delegation(&self.keys.channel, &delegate).0
        })
    }

    /// `[ed25519, settle]`: the proof must sit right before the instruction using it.
    pub fn instructions(&self) -> [Instruction; 2] {
        let settle = match &self.delegate {
            Some(delegate) => ix::settle_delegated(&self.keys, delegate, self.destination),
            None => ix::settle(&self.keys, self.destination),
        };
        [
            ix::ed25519_verify(&self.signer, &self.signature, &self.voucher),
            settle,
        ]
    }
}

/// Settles one voucher. Anyone may sign (only the fee payer needs to).
pub fn settle(settlement: &Settlement) -> Vec<Instruction> {
    settlement.instructions().to_vec()
}

/// A settlement that cannot fit in a transaction even on its own.
#[derive(Debug, thiserror::Error)]
#[error("a settlement of channel {channel} needs {size} bytes, over the {max}-byte limit")]
pub struct PackError {
    /// The channel of the settlement that does not fit.
    pub channel: Pubkey,
    /// Bytes of a transaction holding the prefix and that settlement alone.
    pub size: usize,
    /// The packet limit, [`MAX_TRANSACTION_SIZE`].
    pub max: usize,
}

/// Packs settlements into as few transactions as fit under the packet limit,
/// measuring each candidate by serialising the real legacy transaction paid
/// by `fee_payer`. Every batch starts with `prefix` (compute-budget
/// instructions, say) followed by `[ed25519, settle]` pairs.
///
/// Settlements are grouped by mint and destination first, because pairs that
/// share those accounts are smaller; within a group the input order is kept,
/// so several vouchers of one channel stay in increasing order.
pub fn pack_settlements(
    fee_payer: &Pubkey,
    prefix: &[Instruction],
    settlements: &[Settlement],
) -> Result<Vec<Vec<Instruction>>, PackError> {
    Ok(group_settlements(fee_payer, prefix, settlements)?
        .into_iter()
        .map(|group| {
            let mut batch = prefix.to_vec();
            batch.extend(group.iter().flat_map(|&i| settlements[i].instructions()));
            batch
        })
        .collect())
}

/// What [`pack_settlements`] packs, as indices into `settlements`: one list
/// per transaction, in the order its pairs appear. For callers that need to
/// know which settlements a transaction carries.
pub fn group_settlements(
    fee_payer: &Pubkey,
    prefix: &[Instruction],
    settlements: &[Settlement],
) -> Result<Vec<Vec<usize>>, PackError> {
    let mut ordered: Vec<usize> = (0..settlements.len()).collect();
    ordered.sort_by_key(|&i| (settlements[i].keys.mint, settlements[i].destination));

    let mut groups = Vec::new();
    let mut group = Vec::new();
    let mut batch = prefix.to_vec();
    for i in ordered {
        let settlement = &settlements[i];
        let pair = settlement.instructions();
        let mut candidate = batch.clone();
        candidate.extend_from_slice(&pair);
        let mut size = instructions_size(fee_payer, &candidate);
        if size > MAX_TRANSACTION_SIZE && !group.is_empty() {
            // The batch is full: close it and start the next with this pair.
            groups.push(std::mem::take(&mut group));
            candidate = prefix.to_vec();
            candidate.extend(pair);
            size = instructions_size(fee_payer, &candidate);
        }
        if size > MAX_TRANSACTION_SIZE {
            return Err(PackError {
                channel: settlement.keys.channel,
                size,
                max: MAX_TRANSACTION_SIZE,
            });
        }
        batch = candidate;
        group.push(i);
    }
    if !group.is_empty() {
        groups.push(group);
    }
    Ok(groups)
}

/// How many settlements fit in one transaction in the common case: one
/// recipient token account, one mint, distinct channels, no prefix
/// instructions. [`pack_settlements`] measures any other mix exactly.
pub fn max_settles_per_transaction() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| {
        let fee_payer = Pubkey::new_from_array([4; 32]);
        let sample = sample_settlements(64);
        (1..=sample.len())
            .take_while(|&n| {
                let instructions: Vec<Instruction> = sample[..n]
                    .iter()
                    .flat_map(Settlement::instructions)
                    .collect();
                instructions_size(&fee_payer, &instructions) <= MAX_TRANSACTION_SIZE
            })
            .last()
            .unwrap_or(0)
    })
}

/// `n` settlements of distinct channels paying one recipient in one mint.
/// Public so callers (and tests) can measure the same case as
/// [`max_settles_per_transaction`].
pub fn sample_settlements(n: usize) -> Vec<Settlement> {
    let recipient = Pubkey::new_from_array([1; 32]);
    let mint = Pubkey::new_from_array([2; 32]);
    (0..n as u64)
        .map(|nonce| {
            let mut funder = [3; 32];
            funder[..8].copy_from_slice(&nonce.to_le_bytes());
            let funder = Pubkey::new_from_array(funder);
            let keys = ChannelKeys::new(funder, recipient, nonce, mint, anchor_spl::token::ID);
            let voucher = Voucher {
                lane: keys.channel,
                generation: 1,
                seq: 1,
                cumulative: 1,
                expires_at: 0,
            };
            Settlement::new(keys, funder, voucher, [0; 64])
        })
        .collect()
}

/// The recipient's cooperative close without a final voucher: refunds the
/// vault to the funder's associated token account. The recipient signs.
pub fn close(keys: &ChannelKeys) -> Vec<Instruction> {
    vec![ix::close(
        keys,
        recipient_token(keys),
        funder_token(keys),
        false,
    )]
}

/// The recipient's cooperative close that first settles `last` (into its
/// destination), then refunds the rest to the funder. The recipient signs.
pub fn close_with_voucher(last: &Settlement) -> Vec<Instruction> {
    vec![
        ix::ed25519_verify(&last.signer, &last.signature, &last.voucher),
        ix::close(&last.keys, last.destination, funder_token(&last.keys), true),
    ]
}

/// Starts the grace period. The funder signs.
pub fn request_close(keys: &ChannelKeys) -> Vec<Instruction> {
    vec![ix::request_close(keys)]
}

/// Refunds the vault to the funder's associated token account once the
/// grace period is over. Anyone may sign.
pub fn refund(keys: &ChannelKeys) -> Vec<Instruction> {
    vec![ix::refund(keys, funder_token(keys))]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(settlements: &[Settlement]) -> Vec<Instruction> {
        settlements
            .iter()
            .flat_map(Settlement::instructions)
            .collect()
    }

    #[test]
    fn computed_max_is_the_max() {
        let max = max_settles_per_transaction();
        assert!(max >= 1);
        let payer = Pubkey::new_unique();
        let sample = sample_settlements(max + 1);
        assert!(instructions_size(&payer, &pairs(&sample[..max])) <= MAX_TRANSACTION_SIZE);
        assert!(instructions_size(&payer, &pairs(&sample)) > MAX_TRANSACTION_SIZE);
    }

    #[test]
    fn packs_into_the_fewest_transactions() {
        let max = max_settles_per_transaction();
        let payer = Pubkey::new_unique();
        for n in [0, 1, max, max + 1, 3 * max + 2] {
            let sample = sample_settlements(n);
            let batches = pack_settlements(&payer, &[], &sample).unwrap();
            assert_eq!(batches.len(), n.div_ceil(max), "{n} settlements");
            assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 2 * n);
            for batch in &batches {
                assert!(instructions_size(&payer, batch) <= MAX_TRANSACTION_SIZE);
            }
        }
    }

    #[test]
    fn prefix_starts_every_batch_and_is_counted() {
        let payer = Pubkey::new_unique();
        let max = max_settles_per_transaction();
        let memo = Instruction::new_with_bytes(Pubkey::new_unique(), &[7; 200], vec![]);
        let sample = sample_settlements(2 * max);
        let batches = pack_settlements(&payer, std::slice::from_ref(&memo), &sample).unwrap();
        assert!(batches.len() > 2, "a 200-byte prefix costs capacity");
        for batch in &batches {
            assert_eq!(batch[0], memo);
            assert!(instructions_size(&payer, batch) <= MAX_TRANSACTION_SIZE);
        }
    }

    #[test]
    fn refuses_what_can_never_fit() {
        let payer = Pubkey::new_unique();
        let huge = Instruction::new_with_bytes(Pubkey::new_unique(), &[0; 1_100], vec![]);
        let sample = sample_settlements(1);
        let err = pack_settlements(&payer, &[huge], &sample).unwrap_err();
        assert!(err.size > MAX_TRANSACTION_SIZE);
    }

    #[test]
    fn open_creates_token_accounts_only_when_asked() {
        let (funder, recipient, mint) = (
            Pubkey::new_unique(),
            Pubkey::new_unique(),
            Pubkey::new_unique(),
        );
        let args = OpenArgs {
            recipient,
            nonce: 9,
            deposit: 1,
            grace_period: 3_600,
            expires_at: 0,
            authorized_signer: None,
        };
        let (keys, plain) = open(
            funder,
            mint,
            anchor_spl::token::ID,
            args,
            OpenOptions::default(),
        );
        assert_eq!(keys.channel, pda::channel(&funder, &recipient, 9).0);
        assert_eq!(plain.len(), 1);
        let options = OpenOptions {
            create_token_accounts: Some(funder),
            ..OpenOptions::default()
        };
        let (_, with_atas) = open(funder, mint, anchor_spl::token::ID, args, options);
        assert_eq!(with_atas.len(), 3);
        assert_eq!(with_atas[2], plain[0]);
    }

    #[test]
    fn open_and_delegate_terms_are_checked_by_the_programs_rule() {
        let funder = Pubkey::new_unique();
        let recipient = Pubkey::new_unique();
        let mint = Pubkey::new_unique();
        let args = OpenArgs {
            recipient,
            nonce: 1,
            deposit: 10,
            grace_period: 3_600,
            expires_at: 0,
            authorized_signer: None,
        };
        check_open(funder, mint, &args, 1_000).unwrap();
        let refused =
            |args: OpenArgs| u32::from(check_open(funder, mint, &args, 1_000).unwrap_err());
        assert_eq!(
            refused(OpenArgs {
                authorized_signer: Some(recipient),
                ..args
            }),
            u32::from(AmpError::RecipientCannotSign)
        );
        assert_eq!(
            refused(OpenArgs {
                recipient: funder,
                ..args
            }),
            u32::from(AmpError::SelfChannel)
        );
        assert_eq!(
            refused(OpenArgs {
                grace_period: 1,
                ..args
            }),
            u32::from(AmpError::InvalidGracePeriod)
        );

        let channel = Channel::new(
            ChannelTerms {
                funder,
                payer: funder,
                recipient,
                mint,
                authorized_signer: funder,
                nonce: 1,
                deposit: 10,
                grace_period: 3_600,
                expires_at: 0,
            },
            5,
            1_000,
            0,
            0,
        )
        .unwrap();
        let terms = DelegationTerms {
            delegate: Pubkey::new_unique(),
            cap: 5,
            expires_at: 0,
        };
        check_delegate(&channel, terms, 1_000).unwrap();
        let refused = check_delegate(
            &channel,
            DelegationTerms {
                delegate: recipient,
                ..terms
            },
            1_000,
        );
        assert_eq!(
            refused.map_err(u32::from),
            Err(u32::from(AmpError::RecipientCannotSign))
        );
    }
}
