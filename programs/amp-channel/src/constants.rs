//! Seeds and limits: every number the program relies on, named once.
//!
//! `#[constant]` puts the seeds and the grace-period bounds in the IDL's
//! `constants`, so IDL clients derive PDAs and check arguments without
//! restating them.

use anchor_lang::prelude::constant;

/// Seed prefix of a Channel PDA: `["amp-channel", funder, recipient, nonce_le]`.
#[constant]
pub const CHANNEL_SEED: &[u8] = b"amp-channel";

/// Seed prefix of a channel's token vault: `["amp-vault", channel]`.
#[constant]
pub const VAULT_SEED: &[u8] = b"amp-vault";

/// Seed prefix of a delegated lane: `["amp-delegation", channel, delegate]`.
#[constant]
pub const DELEGATION_SEED: &[u8] = b"amp-delegation";

/// Shortest grace period a funder may choose: long enough for a recipient to
/// land one settle transaction after seeing a close request.
#[constant]
pub const MIN_GRACE_PERIOD: u32 = 60;

/// Longest grace period: a funder's refund can never be held back longer.
#[constant]
pub const MAX_GRACE_PERIOD: u32 = 30 * 24 * 60 * 60;

/// Accounts stay small: every byte is rent the payer fronts (SPEC section 2).
/// 200 bytes until the rent payer was recorded (32 more, SPEC section 8).
pub const MAX_CHANNEL_ACCOUNT_LEN: usize = 232;
