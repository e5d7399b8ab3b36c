//! Every way an AMP instruction can refuse, with a stable code (6000 onwards).

use anchor_lang::prelude::*;

#[error_code]
pub enum AmpError {
    // --- open / top_up / request_close arguments ---
    #[msg("grace period is outside the allowed bounds")]
    InvalidGracePeriod,
    #[msg("expiry must be 0 (never) or a future unix time")]
    InvalidExpiry,
    #[msg("amount must be greater than zero")]
    ZeroAmount,
    #[msg("the mint has a Token-2022 extension that breaks channel accounting")]
    UnsupportedMintExtension,
    #[msg("arithmetic overflow")]
    ArithmeticOverflow,

    // --- lifecycle ---
    #[msg("the channel is closing: a close was requested or it expired")]
    ChannelClosing,
    #[msg("a channel cannot be closed in the slot it was opened")]
    ChannelTooYoung,
    #[msg("the grace period has ended: vouchers can no longer be settled")]
    GracePeriodEnded,
    #[msg("no close was requested and the channel has not expired")]
    CloseNotRequested,
    #[msg("the grace period has not ended yet")]
    GracePeriodNotOver,

    // --- the Ed25519SigVerify instruction ---
    #[msg("the account passed as the Instructions sysvar is not the sysvar")]
    InvalidInstructionsSysvar,
    #[msg("no Ed25519SigVerify instruction immediately before this one")]
    MissingEd25519Instruction,
    #[msg("the Ed25519SigVerify instruction must carry exactly one signature")]
    Ed25519SignatureCount,
    #[msg("the Ed25519SigVerify instruction must read its data from itself")]
    Ed25519InstructionIndex,
    #[msg("the Ed25519SigVerify instruction does not use the canonical offsets")]
    Ed25519Offsets,

    // --- the voucher ---
    #[msg("the signed message is not a 68-byte AMP voucher")]
    MalformedVoucher,
    #[msg("the voucher is signed by a key that is not the lane's signer")]
    WrongSigner,
    #[msg("the voucher names another lane")]
    WrongLane,
    #[msg("the voucher belongs to another incarnation of this lane")]
    WrongGeneration,
    #[msg("the voucher has expired")]
    VoucherExpired,
    #[msg("the voucher's cumulative amount is not above what was settled")]
    StaleVoucher,
    #[msg("the voucher's cumulative amount exceeds the deposit")]
    VoucherExceedsDeposit,
    #[msg("the delegate voucher's cumulative amount exceeds the delegation's cap")]
    VoucherExceedsCap,

    // --- accounts ---
    #[msg("the account is not the channel's funder")]
    NotFunder,
    #[msg("the account is not the channel's recipient")]
    NotRecipient,
    #[msg("the token account does not belong to the channel's recipient")]
    WrongRecipientTokenAccount,
    #[msg("the token account does not belong to the channel's funder")]
    WrongFunderTokenAccount,
    #[msg("the account is not of the channel's mint")]
    WrongMint,
    #[msg("the token program does not own the mint")]
    WrongTokenProgram,

    // --- delegation and supply chains ---
    #[msg("close every delegation of the channel first")]
    DelegationsOutstanding,
    #[msg("the delegation belongs to another channel")]
    WrongChannel,
    #[msg("the delegation is revoked or expired")]
    DelegationRevoked,
    #[msg("a delegation closes only after its grace period, or by the recipient")]
    DelegationNotClosable,
    #[msg("a funder cannot pay itself")]
    SelfChannel,
    #[msg("the downstream channel must be funded by the upstream recipient")]
    NotDownstream,
    #[msg("settling into this channel would pay the upstream funder back")]
    SupplyChainCycle,

    // --- account creation ---
    #[msg("the account already exists")]
    AccountExists,
}
