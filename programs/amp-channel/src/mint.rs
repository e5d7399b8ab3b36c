//! Which mints a channel accepts.
//!
//! Token-2022 extensions that move, withhold, freeze or gate tokens outside
//! the channel's control would break the accounting (SPEC section 2), so the
//! check is an allow-list: an extension added to Token-2022 later is refused
//! until someone has thought about it.

use anchor_lang::prelude::*;
use anchor_spl::token_interface::spl_token_2022::{
    self,
    extension::{
        default_account_state::DefaultAccountState, BaseStateWithExtensions, ExtensionType,
        StateWithExtensions,
    },
    state::{AccountState, Mint},
};

use crate::error::AmpError;

/// Refuses a Token-2022 mint carrying an extension that breaks channel accounting.
pub fn check_mint_supported(mint: &AccountInfo) -> Result<()> {
    if *mint.owner != spl_token_2022::ID {
        return Ok(());
    }
    let data = mint.try_borrow_data()?;
    let state = StateWithExtensions::<Mint>::unpack(&data)?;
    for extension in state.get_extension_types()? {
        let supported = match extension {
            // Metadata, grouping and display-only extensions never touch balances.
            ExtensionType::MintCloseAuthority
            | ExtensionType::MetadataPointer
            | ExtensionType::TokenMetadata
            | ExtensionType::GroupPointer
            | ExtensionType::TokenGroup
            | ExtensionType::GroupMemberPointer
            | ExtensionType::TokenGroupMember
            | ExtensionType::InterestBearingConfig
            | ExtensionType::ScaledUiAmount => true,
            // Harmless unless new accounts (the vault) start frozen.
            ExtensionType::DefaultAccountState => {
                state.get_extension::<DefaultAccountState>()?.state != AccountState::Frozen as u8
            }
            // Transfer fees, hooks, permanent delegates, non-transferability,
            // pausing, confidential balances, and anything unknown.
            _ => false,
        };
        if !supported {
            msg!("unsupported mint extension: {:?}", extension);
            return err!(AmpError::UnsupportedMintExtension);
        }
    }
    Ok(())
}
