//! Which mints a channel accepts, and which funder accounts can deposit.
//!
//! Token-2022 extensions that move, withhold, freeze or gate tokens outside
//! the channel's control would break the accounting (SPEC section 2), so the
//! check is an allow-list: an extension added to Token-2022 later is refused
//! until someone has thought about it.
//!
//! The check runs once, at `open`, so the mint must not be able to change
//! afterwards. A mint that can be closed could be closed (once its supply is
//! zero) and re-created at the same address with any extension, while
//! `top_up`, `delegate` and `settle_into` keep moving tokens into the vault;
//! so a mint with a close authority is refused too. Token-2022 cannot give a
//! mint a close authority later, and Token mints cannot be closed at all.

use anchor_lang::prelude::*;
use anchor_spl::token_interface::spl_token_2022::{
    self,
    extension::{
        cpi_guard::CpiGuard, default_account_state::DefaultAccountState,
        mint_close_authority::MintCloseAuthority, BaseStateWithExtensions, ExtensionType,
        StateWithExtensions,
    },
    state::{Account, AccountState, Mint},
};

use crate::error::AmpError;

/// Refuses a Token-2022 mint carrying an extension that breaks channel accounting.
pub fn check_mint_supported(mint: &AccountInfo) -> Result<()> {
    match unsupported_extension(mint.owner, &mint.try_borrow_data()?)? {
        None => Ok(()),
        Some(extension) => {
            msg!("unsupported mint extension: {:?}", extension);
            err!(AmpError::UnsupportedMintExtension)
        }
    }
}

/// The first extension of a mint (given by its account's owner and data)
/// that breaks channel accounting, if any: the rule of
/// [`check_mint_supported`], for clients to apply before they send anything.
pub fn unsupported_extension(owner: &Pubkey, data: &[u8]) -> Result<Option<ExtensionType>> {
    if *owner != spl_token_2022::ID {
        return Ok(None);
    }
    let state = StateWithExtensions::<Mint>::unpack(data)?;
    for extension in state.get_extension_types()? {
        let supported = match extension {
            // Metadata, grouping and display-only extensions never touch balances.
            ExtensionType::MetadataPointer
            | ExtensionType::TokenMetadata
            | ExtensionType::GroupPointer
            | ExtensionType::TokenGroup
            | ExtensionType::GroupMemberPointer
            | ExtensionType::TokenGroupMember
            | ExtensionType::InterestBearingConfig
            | ExtensionType::ScaledUiAmount => true,
            // Harmless once nobody can close the mint (see the module docs).
            ExtensionType::MintCloseAuthority => {
                Option::<Pubkey>::from(state.get_extension::<MintCloseAuthority>()?.close_authority)
                    .is_none()
            }
            // Harmless unless new accounts (the vault) start frozen.
            ExtensionType::DefaultAccountState => {
                state.get_extension::<DefaultAccountState>()?.state != AccountState::Frozen as u8
            }
            // Transfer fees, hooks, permanent delegates, non-transferability,
            // pausing, confidential balances, and anything unknown.
            _ => false,
        };
        if !supported {
            return Ok(Some(extension));
        }
    }
    Ok(None)
}

/// Refuses a funder token account whose CPI Guard is on: Token-2022 then
/// refuses the deposit this program makes on the funder's behalf, and the
/// funder deserves to be told why rather than see a token-program failure.
pub fn check_not_cpi_guarded(token_account: &AccountInfo) -> Result<()> {
    check_depositor_data(token_account.owner, &token_account.try_borrow_data()?)
}

/// [`check_not_cpi_guarded`] on a token account's owner and data, for clients.
pub fn check_depositor_data(owner: &Pubkey, data: &[u8]) -> Result<()> {
    if *owner != spl_token_2022::ID {
        return Ok(());
    }
    let state = StateWithExtensions::<Account>::unpack(data)?;
    if let Ok(guard) = state.get_extension::<CpiGuard>() {
        require!(!bool::from(guard.lock_cpi), AmpError::CpiGuardEnabled);
    }
    Ok(())
}
