//! Program-derived addresses of AMP accounts (SPEC section 2).

use amp_channel::constants::{CHANNEL_SEED, DELEGATION_SEED, VAULT_SEED};
use anchor_lang::prelude::Pubkey;
use anchor_spl::associated_token::get_associated_token_address_with_program_id;

/// Seed of the PDA that signs Anchor's event self-CPI (`#[event_cpi]`).
const EVENT_AUTHORITY_SEED: &[u8] = b"__event_authority";

/// The Channel PDA of `funder` paying `recipient`, for a client-chosen `nonce`.
pub fn channel(funder: &Pubkey, recipient: &Pubkey, nonce: u64) -> (Pubkey, u8) {
    Pubkey::find_program_address(
        &[
            CHANNEL_SEED,
            funder.as_ref(),
            recipient.as_ref(),
            &nonce.to_le_bytes(),
        ],
        &amp_channel::ID,
    )
}

/// The token vault of a channel.
pub fn vault(channel: &Pubkey) -> (Pubkey, u8) {
    Pubkey::find_program_address(&[VAULT_SEED, channel.as_ref()], &amp_channel::ID)
}

/// The Delegation PDA giving `delegate` its own lane on `channel`.
pub fn delegation(channel: &Pubkey, delegate: &Pubkey) -> (Pubkey, u8) {
    Pubkey::find_program_address(
        &[DELEGATION_SEED, channel.as_ref(), delegate.as_ref()],
        &amp_channel::ID,
    )
}

/// The PDA through which the program emits its events.
pub fn event_authority() -> Pubkey {
    Pubkey::find_program_address(&[EVENT_AUTHORITY_SEED], &amp_channel::ID).0
}

/// The associated token account of `owner` for `mint` under `token_program`.
pub fn associated_token(owner: &Pubkey, mint: &Pubkey, token_program: &Pubkey) -> Pubkey {
    get_associated_token_address_with_program_id(owner, mint, token_program)
}
