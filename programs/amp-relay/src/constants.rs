//! Seeds and limits of the relay.

/// Seed prefix of a relay's configuration: `["relay", operator]`.
pub const RELAY_SEED: &[u8] = b"relay";

/// Seed prefix of the PDA that receives upstream and funds downstream:
/// `["relay-authority", relay]`. It holds lamports only (no data), so it can
/// pay rent through the System program when it opens a channel.
pub const AUTHORITY_SEED: &[u8] = b"relay-authority";

/// Shares are in basis points.
pub const BPS_DENOMINATOR: u64 = 10_000;
