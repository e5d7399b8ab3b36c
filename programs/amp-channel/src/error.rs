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

    // --- added later: codes above keep their numbers ---
    #[msg("the funder's token account has the CPI Guard on: turn it off to deposit")]
    CpiGuardEnabled,
    #[msg("the recipient cannot sign the vouchers that pay it")]
    RecipientCannotSign,
    #[msg("the account is not the one that fronted the rent")]
    NotPayer,
}

/// The first error's code: Anchor numbers custom errors from here, in
/// declaration order.
pub const FIRST_ERROR_CODE: u32 = 6000;

impl AmpError {
    /// The error a failed transaction reports as custom code `code`, when
    /// `code` is one of this program's.
    pub fn from_code(code: u32) -> Option<Self> {
        let index = usize::try_from(code.checked_sub(FIRST_ERROR_CODE)?).ok()?;
        Self::ALL.get(index).copied()
    }
}

/// Lists every error once, in declaration order, as [`AmpError::ALL`]; the
/// exhaustive match (in tests) fails the build until a new error is listed.
macro_rules! list_errors {
    ($($variant:ident),* $(,)?) => {
        impl AmpError {
            /// Every error, in code order.
            pub const ALL: &'static [AmpError] = &[$(AmpError::$variant),*];
        }

        #[cfg(test)]
        #[allow(dead_code)]
        fn every_error_is_listed(e: AmpError) {
            match e {
                $(AmpError::$variant)|* => {}
            }
        }
    };
}

list_errors!(
    InvalidGracePeriod,
    InvalidExpiry,
    ZeroAmount,
    UnsupportedMintExtension,
    ArithmeticOverflow,
    ChannelClosing,
    ChannelTooYoung,
    GracePeriodEnded,
    CloseNotRequested,
    GracePeriodNotOver,
    InvalidInstructionsSysvar,
    MissingEd25519Instruction,
    Ed25519SignatureCount,
    Ed25519InstructionIndex,
    Ed25519Offsets,
    MalformedVoucher,
    WrongSigner,
    WrongLane,
    WrongGeneration,
    VoucherExpired,
    StaleVoucher,
    VoucherExceedsDeposit,
    VoucherExceedsCap,
    NotFunder,
    NotRecipient,
    WrongRecipientTokenAccount,
    WrongFunderTokenAccount,
    WrongMint,
    WrongTokenProgram,
    DelegationsOutstanding,
    WrongChannel,
    DelegationRevoked,
    DelegationNotClosable,
    SelfChannel,
    NotDownstream,
    SupplyChainCycle,
    AccountExists,
    CpiGuardEnabled,
    RecipientCannotSign,
    NotPayer,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_back_to_its_error() {
        for (i, e) in AmpError::ALL.iter().enumerate() {
            let code = FIRST_ERROR_CODE + u32::try_from(i).unwrap();
            // Listed in declaration order, so the codes are consecutive.
            assert_eq!(u32::from(*e), code, "{}", e.name());
            assert_eq!(AmpError::from_code(code).map(|e| e.name()), Some(e.name()));
        }
        assert!(AmpError::from_code(0).is_none());
        assert!(AmpError::from_code(FIRST_ERROR_CODE - 1).is_none());
        let past = FIRST_ERROR_CODE + u32::try_from(AmpError::ALL.len()).unwrap();
        assert!(AmpError::from_code(past).is_none());
        assert!(AmpError::from_code(u32::MAX).is_none());
    }
}
