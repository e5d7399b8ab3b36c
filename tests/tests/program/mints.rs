//! Token-2022 mints: extensions that would move, withhold, freeze or gate
//! vault tokens outside the channel's control are refused at `open` with
//! `UnsupportedMintExtension`; harmless ones carry a channel through its whole
//! life. These mints exist only under Token-2022, so the tests run there only.
//!
//! Their tokens are outside the harness's conservation check of its own mint,
//! so each test checks the balances of the extension mint explicitly.

use amp_channel::error::AmpError;
use amp_channel::instructions::OpenArgs;
use amp_sdk::instructions::{self as ix, ChannelKeys};
use amp_tests::*;
use anchor_lang::prelude::Pubkey;
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_signer::Signer;
use spl_token_2022_interface::extension::{
    confidential_transfer, default_account_state, interest_bearing_mint, metadata_pointer,
    mint_close_authority::MintCloseAuthority, pausable, transfer_fee, transfer_hook,
    BaseStateWithExtensionsMut, ExtensionType, StateWithExtensions, StateWithExtensionsMut,
};
use spl_token_2022_interface::instruction as token_ix;
use spl_token_2022_interface::state::{Account, AccountState, Mint};

const TOKEN_2022: Pubkey = spl_token_2022_interface::ID;

/// A funder holding [`FUNDS`] of an extension mint, a recipient with an empty
/// account of it, and the channel between them, not yet opened.
struct Scene {
    h: Harness,
    funder: Party,
    recipient: Party,
    keys: ChannelKeys,
    args: OpenArgs,
}

impl Scene {
    async fn new(
        extensions: &[ExtensionType],
        init: impl FnOnce(&Pubkey) -> Vec<Instruction>,
    ) -> Self {
        let mut h = Harness::new(TokenKind::Token2022).await;
        let mint = h.other_mint(TokenKind::Token2022, extensions, init).await;
        h.watch(mint.mint);
        let funder = party_of(&mut h, &mint, FUNDS).await;
        let recipient = party_of(&mut h, &mint, 0).await;
        let nonce = h.next_nonce();
        let keys = ChannelKeys::new(
            funder.key(),
            recipient.key(),
            nonce,
            mint.mint,
            mint.token_program,
        );
        h.watch_channel(&keys);
        let args = h.open_args(&recipient.key(), nonce, DEPOSIT);
        Self {
            h,
            funder,
            recipient,
            keys,
            args,
        }
    }

    fn open_ix(&self) -> Instruction {
        ix::open(&self.keys, self.funder.token, self.args)
    }
}

/// A wallet with a usable (thawed) account of `mint` holding `tokens`.
async fn party_of(h: &mut Harness, mint: &OtherMint, tokens: u64) -> Party {
    let wallet = h.wallet().await;
    let token = h.other_token_account(mint, &wallet.pubkey()).await;
    let data = h
        .bank
        .account(&token)
        .await
        .unwrap()
        .expect("token account")
        .data;
    let state = StateWithExtensions::<Account>::unpack(&data)
        .unwrap()
        .base
        .state;
    if state == AccountState::Frozen {
        let authority = h.mint_authority().insecure_clone();
        let thaw = token_ix::thaw_account(
            &mint.token_program,
            &token,
            &mint.mint,
            &authority.pubkey(),
            &[],
        )
        .unwrap();
        h.bank.process(&[thaw], &[&authority]).await.unwrap();
    }
    if tokens > 0 {
        h.mint_other(mint, &token, tokens).await;
    }
    Party { wallet, token }
}

/// `open` with a mint carrying `extension` must fail with
/// `UnsupportedMintExtension`, leaving the funder's tokens where they were.
async fn refused(extension: ExtensionType, init: impl FnOnce(&Pubkey) -> Vec<Instruction>) {
    let mut s = Scene::new(&[extension], init).await;
    let open = s.open_ix();
    s.h.expect_failure(
        &[open],
        &[&s.funder.wallet],
        Expected::Amp(AmpError::UnsupportedMintExtension),
    )
    .await;
    assert_eq!(s.h.balance(&s.funder.token).await, Some(FUNDS));
    assert!(s.h.bank.account(&s.keys.channel).await.unwrap().is_none());
    assert!(s.h.bank.account(&s.keys.vault).await.unwrap().is_none());
    s.h.assert_conserved().await;
}

/// A channel in a mint carrying `extensions` opens, settles and closes, and
/// every token of that mint ends with the funder or the recipient.
async fn accepted(extensions: &[ExtensionType], init: impl FnOnce(&Pubkey) -> Vec<Instruction>) {
    let mut s = Scene::new(extensions, init).await;
    let open = s.open_ix();
    s.h.bank
        .process(&[open], &[&s.funder.wallet])
        .await
        .unwrap();
    let generation = s.h.channel(&s.keys.channel).await.unwrap().generation;
    let lane = Lane {
        keys: s.keys,
        nonce: s.args.nonce,
        generation,
    };
    s.h.settle(
        &lane,
        &s.funder.wallet,
        &lane.voucher(1, 300),
        &s.recipient.token,
    )
    .await
    .unwrap();
    let close = ix::close(&s.keys, s.recipient.token, s.funder.token, false);
    s.h.bank
        .process(&[close], &[&s.recipient.wallet])
        .await
        .unwrap();

    assert_eq!(s.h.balance(&s.recipient.token).await, Some(300));
    assert_eq!(s.h.balance(&s.funder.token).await, Some(FUNDS - 300));
    assert!(s.h.bank.account(&s.keys.vault).await.unwrap().is_none());
    s.h.assert_conserved().await;
}

/// Some authority for an extension; nothing here needs it to sign.
fn authority() -> Pubkey {
    Pubkey::new_from_array([7; 32])
}

// --- refused -----------------------------------------------------------------

#[tokio::test]
async fn transfer_fee_is_refused() {
    refused(ExtensionType::TransferFeeConfig, |mint| {
        vec![transfer_fee::instruction::initialize_transfer_fee_config(
            &TOKEN_2022,
            mint,
            Some(&authority()),
            Some(&authority()),
            100,
            1_000,
        )
        .unwrap()]
    })
    .await;
}

#[tokio::test]
async fn transfer_hook_is_refused() {
    refused(ExtensionType::TransferHook, |mint| {
        vec![transfer_hook::instruction::initialize(
            &TOKEN_2022,
            mint,
            Some(authority()),
            Some(Pubkey::new_from_array([8; 32])),
        )
        .unwrap()]
    })
    .await;
}

#[tokio::test]
async fn permanent_delegate_is_refused() {
    refused(ExtensionType::PermanentDelegate, |mint| {
        vec![token_ix::initialize_permanent_delegate(&TOKEN_2022, mint, &authority()).unwrap()]
    })
    .await;
}

#[tokio::test]
async fn non_transferable_is_refused() {
    refused(ExtensionType::NonTransferable, |mint| {
        vec![token_ix::initialize_non_transferable_mint(&TOKEN_2022, mint).unwrap()]
    })
    .await;
}

#[tokio::test]
async fn pausable_is_refused() {
    refused(ExtensionType::Pausable, |mint| {
        vec![pausable::instruction::initialize(&TOKEN_2022, mint, &authority()).unwrap()]
    })
    .await;
}

#[tokio::test]
async fn default_frozen_accounts_are_refused() {
    refused(ExtensionType::DefaultAccountState, |mint| {
        vec![
            default_account_state::instruction::initialize_default_account_state(
                &TOKEN_2022,
                mint,
                &AccountState::Frozen,
            )
            .unwrap(),
        ]
    })
    .await;
}

#[tokio::test]
async fn confidential_transfer_is_refused() {
    refused(ExtensionType::ConfidentialTransferMint, |mint| {
        vec![confidential_transfer::instruction::initialize_mint(
            &TOKEN_2022,
            mint,
            Some(authority()),
            true,
            None,
        )
        .unwrap()]
    })
    .await;
}

#[tokio::test]
async fn a_mint_that_can_be_closed_is_refused() {
    // Closed once its supply is zero, it could come back at the same address
    // with a permanent delegate while the channel lives on.
    refused(ExtensionType::MintCloseAuthority, |mint| {
        vec![
            token_ix::initialize_mint_close_authority(&TOKEN_2022, mint, Some(&authority()))
                .unwrap(),
        ]
    })
    .await;
}

// --- accepted ----------------------------------------------------------------

#[tokio::test]
async fn a_mint_without_a_close_authority_is_accepted() {
    // The extension is there, but nobody can ever close the mint.
    accepted(&[ExtensionType::MintCloseAuthority], |mint| {
        vec![token_ix::initialize_mint_close_authority(&TOKEN_2022, mint, None).unwrap()]
    })
    .await;
}

#[tokio::test]
async fn metadata_pointer_is_accepted() {
    accepted(&[ExtensionType::MetadataPointer], |mint| {
        vec![metadata_pointer::instruction::initialize(
            &TOKEN_2022,
            mint,
            Some(authority()),
            Some(*mint),
        )
        .unwrap()]
    })
    .await;
}

#[tokio::test]
async fn default_initialized_accounts_are_accepted() {
    accepted(&[ExtensionType::DefaultAccountState], |mint| {
        vec![
            default_account_state::instruction::initialize_default_account_state(
                &TOKEN_2022,
                mint,
                &AccountState::Initialized,
            )
            .unwrap(),
        ]
    })
    .await;
}

#[tokio::test]
async fn interest_bearing_with_close_authority_is_accepted() {
    accepted(
        &[
            ExtensionType::InterestBearingConfig,
            ExtensionType::MintCloseAuthority,
        ],
        |mint| {
            vec![
                interest_bearing_mint::instruction::initialize(
                    &TOKEN_2022,
                    mint,
                    Some(authority()),
                    500,
                )
                .unwrap(),
                token_ix::initialize_mint_close_authority(&TOKEN_2022, mint, None).unwrap(),
            ]
        },
    )
    .await;
}

// --- a mint closed under a live channel ----------------------------------------

/// How an emptied channel ends after its mint was closed.
#[derive(Clone, Copy, Debug)]
enum Ending {
    Close,
    Refund,
}

/// A channel opened before closable mints were refused (the mint's close
/// authority is hidden from `open`, as the older rule ignored it), emptied,
/// and then its mint closed: both the recipient's close and the funder's
/// refund still close the channel and return every lamport of rent.
#[tokio::test]
async fn an_empty_channel_still_ends_after_its_mint_is_closed() {
    for ending in [Ending::Close, Ending::Refund] {
        let closer = Keypair::new();
        let close_authority = closer.pubkey();
        let mut s = Scene::new(&[ExtensionType::MintCloseAuthority], |mint| {
            vec![token_ix::initialize_mint_close_authority(
                &TOKEN_2022,
                mint,
                Some(&close_authority),
            )
            .unwrap()]
        })
        .await;
        let mint = s.keys.mint;
        let lamports_before = s.h.lamports(&s.funder.key()).await;

        let genuine = s.h.bank.account(&mint).await.unwrap().unwrap();
        let mut hidden = genuine.clone();
        {
            let mut state = StateWithExtensionsMut::<Mint>::unpack(&mut hidden.data).unwrap();
            state
                .get_extension_mut::<MintCloseAuthority>()
                .unwrap()
                .close_authority = Default::default();
        }
        s.h.bank.set_account(&mint, hidden).await;
        let open = s.open_ix();
        s.h.bank
            .process(&[open], &[&s.funder.wallet])
            .await
            .unwrap();
        s.h.bank.set_account(&mint, genuine).await;

        // The whole deposit is settled, every token burnt, the mint closed.
        let generation = s.h.channel(&s.keys.channel).await.unwrap().generation;
        let lane = Lane {
            keys: s.keys,
            nonce: s.args.nonce,
            generation,
        };
        let voucher = lane.voucher(1, DEPOSIT);
        s.h.settle(&lane, &s.funder.wallet, &voucher, &s.recipient.token)
            .await
            .unwrap();
        for (party, amount) in [(&s.funder, FUNDS - DEPOSIT), (&s.recipient, DEPOSIT)] {
            let burn = token_ix::burn_checked(
                &TOKEN_2022,
                &party.token,
                &mint,
                &party.key(),
                &[],
                amount,
                DECIMALS,
            )
            .unwrap();
            s.h.bank.process(&[burn], &[&party.wallet]).await.unwrap();
        }
        let close_mint =
            token_ix::close_account(&TOKEN_2022, &mint, &closer.pubkey(), &closer.pubkey(), &[])
                .unwrap();
        s.h.bank.process(&[close_mint], &[&closer]).await.unwrap();
        assert!(s.h.bank.account(&mint).await.unwrap().is_none());

        match ending {
            Ending::Close => {
                let close = ix::close(&s.keys, s.recipient.token, s.funder.token, false);
                s.h.bank
                    .process(&[close], &[&s.recipient.wallet])
                    .await
                    .expect("close after the mint is gone");
            }
            Ending::Refund => {
                s.h.request_close(&lane, &s.funder.wallet).await;
                s.h.bank.advance_time(i64::from(GRACE));
                let refund = ix::refund(&s.keys, s.funder.token);
                s.h.bank
                    .process(&[refund], &[])
                    .await
                    .expect("refund after the mint is gone");
            }
        }
        assert!(s.h.channel(&s.keys.channel).await.is_none(), "{ending:?}");
        assert!(s.h.bank.account(&s.keys.vault).await.unwrap().is_none());
        assert_eq!(
            s.h.lamports(&s.funder.key()).await,
            lamports_before,
            "{ending:?}: all rent back to the funder"
        );
    }
}
