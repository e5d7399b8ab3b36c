//! Seeds and limits: every number the program relies on, named once.

/// Seed prefix of a Channel PDA: `["amp-channel", funder, recipient, nonce_le]`.
pub const CHANNEL_SEED: &[u8] = b"amp-channel";

/// Seed prefix of a channel's token vault: `["amp-vault", channel]`.
pub const VAULT_SEED: &[u8] = b"amp-vault";

/// Seed prefix of a delegated lane: `["amp-delegation", channel, delegate]`.
pub const DELEGATION_SEED: &[u8] = b"amp-delegation";

/// Shortest grace period a funder may choose: long enough for a recipient to
/// land one settle transaction after seeing a close request.
pub const MIN_GRACE_PERIOD: u32 = 60;

/// Longest grace period: a funder's refund can never be held back longer.
pub const MAX_GRACE_PERIOD: u32 = 30 * 24 * 60 * 60;

/// Accounts stay small: every byte is rent the funder fronts (SPEC section 2).
pub const MAX_CHANNEL_ACCOUNT_LEN: usize = 200;
