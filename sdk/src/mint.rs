//! What a client must know of a mint before it trusts a channel to it: its
//! token program and decimals, whether the program accepts it (the program's
//! own rule, applied before anything is sent), and who can freeze its
//! accounts (SPEC section 2, "Trust in the mint's authorities").

use amp_channel::mint::{check_depositor_data, unsupported_extension};
use anchor_lang::prelude::Pubkey;
use anchor_spl::token_interface::spl_token_2022::{
    extension::StateWithExtensions, state::Mint as MintState,
};
use solana_account::Account;

/// Why an account is not a mint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MintError {
    /// Neither SPL Token nor Token-2022 owns it.
    #[error("owned by {0}, not a token program")]
    NotATokenProgram(Pubkey),
    /// Its data is not a mint's.
    #[error("not a mint: {0}")]
    Malformed(String),
}

/// Whether `program` is SPL Token or Token-2022.
pub fn is_token_program(program: &Pubkey) -> bool {
    *program == anchor_spl::token::ID || *program == anchor_spl::token_2022::ID
}

/// A mint as read from the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MintAccount {
    /// The mint's address.
    pub address: Pubkey,
    /// SPL Token or Token-2022: the program that owns the mint.
    pub token_program: Pubkey,
    /// Decimals of the token's smallest unit.
    pub decimals: u8,
    /// The key that can freeze any account of this mint, a channel's vault
    /// included, blocking settle, close and refund until it thaws them.
    pub freeze_authority: Option<Pubkey>,
    /// Why `open` would refuse this mint (the Token-2022 extension that
    /// breaks channel accounting, or a close authority); `None` when accepted.
    pub unsupported: Option<String>,
}

impl MintAccount {
    /// Reads a mint from its account.
    pub fn parse(address: &Pubkey, account: &Account) -> Result<Self, MintError> {
        if !is_token_program(&account.owner) {
            return Err(MintError::NotATokenProgram(account.owner));
        }
        let malformed = |e: &dyn std::fmt::Display| MintError::Malformed(e.to_string());
        let state =
            StateWithExtensions::<MintState>::unpack(&account.data).map_err(|e| malformed(&e))?;
        let unsupported = unsupported_extension(&account.owner, &account.data)
            .map_err(|e| malformed(&e))?
            .map(|extension| format!("{extension:?}"));
        Ok(Self {
            address: *address,
            token_program: account.owner,
            decimals: state.base.decimals,
            freeze_authority: state.base.freeze_authority.into(),
            unsupported,
        })
    }

    /// Refuses a mint that `open` would refuse, with the reason.
    pub fn check_supported(&self) -> Result<(), String> {
        match &self.unsupported {
            None => Ok(()),
            Some(extension) => Err(format!(
                "mint {} has the Token-2022 extension {extension}, which AMP refuses \
                 (it could move, withhold or freeze vault tokens, or the mint could be \
                 closed and re-created)",
                self.address
            )),
        }
    }
}

/// Refuses a funder token account that cannot deposit into a channel (a
/// Token-2022 account with the CPI Guard on), with what to do about it.
pub fn check_depositor(address: &Pubkey, account: &Account) -> Result<(), String> {
    check_depositor_data(&account.owner, &account.data).map_err(|_| {
        format!(
            "token account {address} has the CPI Guard on, so no program can move its \
             tokens into a channel: turn it off (Token-2022 `disable-cpi-guard`) to deposit"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anchor_spl::token_interface::spl_token_2022::{
        extension::{
            cpi_guard::CpiGuard, mint_close_authority::MintCloseAuthority,
            BaseStateWithExtensionsMut, ExtensionType, StateWithExtensionsMut,
        },
        state::{Account as TokenAccountState, AccountState},
    };

    const TOKEN_2022: Pubkey = anchor_spl::token_2022::ID;

    fn account(owner: Pubkey, data: Vec<u8>) -> Account {
        Account {
            lamports: 1,
            data,
            owner,
            executable: false,
            rent_epoch: 0,
        }
    }

    /// A Token-2022 mint with a close authority (`Some`) or the extension
    /// without one (`None`), and `freeze` as its freeze authority.
    fn mint(close: Option<Pubkey>, freeze: Option<Pubkey>) -> Account {
        let len = ExtensionType::try_calculate_account_len::<MintState>(&[
            ExtensionType::MintCloseAuthority,
        ])
        .unwrap();
        let mut data = vec![0; len];
        let mut state =
            StateWithExtensionsMut::<MintState>::unpack_uninitialized(&mut data).unwrap();
        state
            .init_extension::<MintCloseAuthority>(true)
            .unwrap()
            .close_authority = close.try_into().unwrap();
        state.base.decimals = 6;
        state.base.is_initialized = true;
        state.base.freeze_authority = freeze.into();
        state.pack_base();
        state.init_account_type().unwrap();
        account(TOKEN_2022, data)
    }

    #[test]
    fn a_closable_mint_is_unsupported_and_its_freeze_authority_shown() {
        let address = Pubkey::new_unique();
        let freezer = Pubkey::new_unique();
        let closable = MintAccount::parse(&address, &mint(Some(freezer), Some(freezer))).unwrap();
        assert_eq!(closable.decimals, 6);
        assert_eq!(closable.freeze_authority, Some(freezer));
        assert_eq!(closable.unsupported.as_deref(), Some("MintCloseAuthority"));
        assert!(closable
            .check_supported()
            .unwrap_err()
            .contains("MintCloseAuthority"));

        let fixed = MintAccount::parse(&address, &mint(None, None)).unwrap();
        assert_eq!(fixed.freeze_authority, None);
        fixed.check_supported().unwrap();

        let not_a_mint = account(Pubkey::new_unique(), vec![0; 82]);
        assert!(matches!(
            MintAccount::parse(&address, &not_a_mint),
            Err(MintError::NotATokenProgram(_))
        ));
    }

    /// A Token-2022 account with the CPI Guard extension, `locked` or not.
    fn guarded(locked: bool) -> Account {
        let len = ExtensionType::try_calculate_account_len::<TokenAccountState>(&[
            ExtensionType::CpiGuard,
        ])
        .unwrap();
        let mut data = vec![0; len];
        let mut state =
            StateWithExtensionsMut::<TokenAccountState>::unpack_uninitialized(&mut data).unwrap();
        state.base.state = AccountState::Initialized;
        state.pack_base();
        state.init_account_type().unwrap();
        state.init_extension::<CpiGuard>(true).unwrap().lock_cpi = locked.into();
        account(TOKEN_2022, data)
    }

    #[test]
    fn a_token_account_with_the_cpi_guard_on_cannot_deposit() {
        let address = Pubkey::new_unique();
        let refused = check_depositor(&address, &guarded(true)).unwrap_err();
        assert!(refused.contains("CPI Guard"), "{refused}");
        check_depositor(&address, &guarded(false)).unwrap();
    }
}
