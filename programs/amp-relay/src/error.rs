use anchor_lang::prelude::*;

#[error_code]
pub enum RelayError {
    #[msg("the share must be at most 10,000 basis points")]
    InvalidShare,
    #[msg("the relay already has a downstream channel")]
    DownstreamExists,
    #[msg("this is not the relay's downstream channel")]
    WrongDownstream,
    #[msg("arithmetic overflow")]
    ArithmeticOverflow,
    #[msg("the relay has no downstream channel yet")]
    NoDownstream,
    #[msg("this is not the relay's token account")]
    WrongTokenAccount,
    #[msg("the amount exceeds the operator's share")]
    InsufficientOperatorShare,
}
