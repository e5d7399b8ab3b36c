//! Account creation that a few stray lamports cannot block.
//!
//! Anchor's `init` creates a PDA with `CreateAccount` when it holds no
//! lamports and with `CreateAccountAllowPrefund` otherwise, an instruction the
//! System program of current runtimes does not know. Anyone could then block
//! an `open` (or `delegate`) by sending a few lamports to the address first.
//! Here a pre-funded address is topped up, allocated and assigned instead, the
//! way the System program has always allowed.

use anchor_lang::prelude::*;
use anchor_lang::solana_program::program_pack::Pack;
use anchor_lang::system_program::{self, Allocate, Assign, CreateAccount, Transfer};
use anchor_spl::token_interface::spl_token_2022::{
    self,
    extension::{BaseStateWithExtensions, ExtensionType, StateWithExtensions},
    state::{Account as TokenAccountState, Mint as MintState},
};

use crate::error::AmpError;

/// Creates the PDA `account` (signing with `seeds`) with `space` bytes owned
/// by `owner`, rent paid by `payer`; lamports already there count toward rent.
pub fn create_pda_account<'info>(
    payer: &AccountInfo<'info>,
    account: &AccountInfo<'info>,
    space: usize,
    owner: &Pubkey,
    seeds: &[&[u8]],
    system_program: &AccountInfo<'info>,
) -> Result<()> {
    let rent = Rent::get()?.minimum_balance(space);
    let signer: &[&[&[u8]]] = &[seeds];
    let current = account.lamports();
    if current == 0 {
        return system_program::create_account(
            CpiContext::new_with_signer(
                system_program.key(),
                CreateAccount {
                    from: payer.clone(),
                    to: account.clone(),
                },
                signer,
            ),
            rent,
            space as u64,
            owner,
        );
    }
    // Lamports alone do not make an account: anything with data or another
    // owner really exists already.
    require!(
        account.owner == &system_program::ID && account.data_is_empty(),
        AmpError::AccountExists
    );
    let missing = rent.saturating_sub(current);
    if missing > 0 {
        system_program::transfer(
            CpiContext::new(
                system_program.key(),
                Transfer {
                    from: payer.clone(),
                    to: account.clone(),
                },
            ),
            missing,
        )?;
    }
    system_program::allocate(
        CpiContext::new_with_signer(
            system_program.key(),
            Allocate {
                account_to_allocate: account.clone(),
            },
            signer,
        ),
        space as u64,
    )?;
    system_program::assign(
        CpiContext::new_with_signer(
            system_program.key(),
            Assign {
                account_to_assign: account.clone(),
            },
            signer,
        ),
        owner,
    )
}

/// Writes a freshly created program account's discriminator and data.
pub fn write_account<T: AccountSerialize>(account: &AccountInfo, value: &T) -> Result<()> {
    let mut data = account.try_borrow_mut_data()?;
    value.try_serialize(&mut &mut data[..])
}

/// Size of a token account of `mint`: Token-2022 mints may require account
/// extensions (the vault of an allowed mint needs none, but the size is
/// computed, not assumed).
pub fn token_account_len(mint: &AccountInfo) -> Result<usize> {
    if *mint.owner != spl_token_2022::ID {
        return Ok(TokenAccountState::LEN);
    }
    let data = mint.try_borrow_data()?;
    let state = StateWithExtensions::<MintState>::unpack(&data)?;
    let required =
        ExtensionType::get_required_init_account_extensions(&state.get_extension_types()?);
    Ok(ExtensionType::try_calculate_account_len::<TokenAccountState>(&required)?)
}
