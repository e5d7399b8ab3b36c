//! `open`: a channel and its vault, created with a deposit. Terms refused at
//! the door (grace period, expiry, zero or unbacked deposit, a recipient that
//! could sign its own payments), the address derived from the terms, the
//! funder's token account (another mint, someone else's, the CPI Guard on,
//! which would make the deposit fail inside the token program; checked for
//! `open`, `top_up` and `delegate`, which all deposit) and the token program.

use amp_channel::constants::MAX_GRACE_PERIOD;
use amp_channel::error::AmpError;
use amp_channel::state::DelegationTerms;
use amp_sdk::instructions::ChannelKeys;
use amp_sdk::{instructions as ix, pda};
use amp_tests::*;
use anchor_lang::error::ErrorCode;
use solana_instruction::error::InstructionError;
use solana_keypair::Keypair;
use solana_signer::Signer;
use spl_token_2022_interface::extension::{cpi_guard, ExtensionType};

use crate::support::*;

#[tokio::test]
async fn deposit_of_u64_max_without_the_tokens() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let (keys, mut args) = unopened(&mut f);
        args.deposit = u64::MAX;
        let expected = Expected::Instruction(InstructionError::Custom(TOKEN_INSUFFICIENT_FUNDS));
        refused_open(&mut f.h, &f.funder, &keys, args, expected).await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn open_with_a_grace_period_out_of_bounds() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        for grace_period in [0, 59, MAX_GRACE_PERIOD + 1, u32::MAX] {
            let (keys, mut args) = unopened(&mut f);
            args.grace_period = grace_period;
            refused_open(
                &mut f.h,
                &f.funder,
                &keys,
                args,
                amp(AmpError::InvalidGracePeriod),
            )
            .await;
        }
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn open_with_an_expiry_in_the_past() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let now = f.h.bank.now();
        // i64::MAX is in the future, but its refund deadline is not representable.
        for expires_at in [-1, 1, now - 1, now, i64::MAX] {
            let (keys, mut args) = unopened(&mut f);
            args.expires_at = expires_at;
            refused_open(
                &mut f.h,
                &f.funder,
                &keys,
                args,
                amp(AmpError::InvalidExpiry),
            )
            .await;
        }
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn open_with_zero_deposit() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let (keys, mut args) = unopened(&mut f);
        args.deposit = 0;
        refused_open(&mut f.h, &f.funder, &keys, args, amp(AmpError::ZeroAmount)).await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn open_twice_at_the_same_address() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        f.settle(1, 100).await;
        let args = f.h.open_args(&f.recipient.key(), f.lane.nonce, DEPOSIT);
        let keys = f.lane.keys;
        let expected = Expected::Amp(AmpError::AccountExists);
        let open = ix::open(&keys, f.funder.token, args);
        f.h.expect_failure(&[open], &[&f.funder.wallet], expected)
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn open_at_an_address_not_derived_from_its_terms() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let (keys, mut args) = unopened(&mut f);
        args.nonce += 1;
        refused_open(
            &mut f.h,
            &f.funder,
            &keys,
            args,
            anchor(ErrorCode::ConstraintSeeds),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn open_from_a_token_account_of_another_mint() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let other = f.h.other_mint(kind, &[], |_| vec![]).await;
        let token = f.h.other_token_account(&other, &f.funder.key()).await;
        f.h.mint_other(&other, &token, FUNDS).await;
        let (keys, args) = unopened(&mut f);
        let funder = Party {
            wallet: f.funder.wallet.insecure_clone(),
            token,
        };
        refused_open(&mut f.h, &funder, &keys, args, amp(AmpError::WrongMint)).await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn open_from_someone_elses_token_account() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let victim = f.h.party(FUNDS).await;
        let (keys, args) = unopened(&mut f);
        let thief = Party {
            wallet: f.funder.wallet.insecure_clone(),
            token: victim.token,
        };
        let expected = Expected::Instruction(InstructionError::Custom(TOKEN_OWNER_MISMATCH));
        refused_open(&mut f.h, &thief, &keys, args, expected).await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn open_with_the_other_token_program() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let (unopened_keys, args) = unopened(&mut f);
        let keys = ChannelKeys {
            token_program: other_token_program(kind),
            ..unopened_keys
        };
        refused_open(
            &mut f.h,
            &f.funder,
            &keys,
            args,
            amp(AmpError::WrongTokenProgram),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

const TOKEN_2022: anchor_lang::prelude::Pubkey = spl_token_2022_interface::ID;

#[tokio::test]
async fn the_recipient_cannot_sign_the_channels_vouchers() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let nonce = f.h.next_nonce();
        let keys = f.h.keys(&f.funder.key(), &f.recipient.key(), nonce);
        let args = amp_channel::instructions::OpenArgs {
            authorized_signer: Some(f.recipient.key()),
            ..f.h.open_args(&f.recipient.key(), nonce, DEPOSIT)
        };
        f.h.watch_channel(&keys);
        f.h.expect_failure(
            &[ix::open(&keys, f.funder.token, args)],
            &[&f.funder.wallet],
            Expected::Amp(AmpError::RecipientCannotSign),
        )
        .await;
        assert!(f.h.channel(&keys.channel).await.is_none());
        f.h.assert_conserved().await;
    }
}

/// Turns on the CPI Guard of the funder's Token-2022 account.
async fn guard(h: &mut Harness, funder: &Party) {
    let reallocate = spl_token_2022_interface::instruction::reallocate(
        &TOKEN_2022,
        &funder.token,
        &funder.key(),
        &funder.key(),
        &[],
        &[ExtensionType::CpiGuard],
    )
    .unwrap();
    let enable =
        cpi_guard::instruction::enable_cpi_guard(&TOKEN_2022, &funder.token, &funder.key(), &[])
            .unwrap();
    h.bank
        .process(&[reallocate, enable], &[&funder.wallet])
        .await
        .expect("enabling the CPI Guard");
}

#[tokio::test]
async fn a_funder_account_with_the_cpi_guard_on_cannot_deposit() {
    let mut f = Fixture::new(TokenKind::Token2022).await;
    guard(&mut f.h, &f.funder).await;
    let expected = || Expected::Amp(AmpError::CpiGuardEnabled);

    let nonce = f.h.next_nonce();
    let keys = f.h.keys(&f.funder.key(), &f.recipient.key(), nonce);
    f.h.watch_channel(&keys);
    let open = ix::open(
        &keys,
        f.funder.token,
        f.h.open_args(&f.recipient.key(), nonce, DEPOSIT),
    );
    f.h.expect_failure(&[open], &[&f.funder.wallet], expected())
        .await;

    let top_up = ix::top_up(&f.lane.keys, f.funder.token, 100);
    f.h.expect_failure(&[top_up], &[&f.funder.wallet], expected())
        .await;

    let delegate = Keypair::new().pubkey();
    f.h.watch(pda::delegation(&f.lane.keys.channel, &delegate).0);
    let terms = DelegationTerms {
        delegate,
        cap: 100,
        expires_at: 0,
    };
    let delegate = ix::delegate(&f.lane.keys, f.funder.token, terms);
    f.h.expect_failure(&[delegate], &[&f.funder.wallet], expected())
        .await;

    // Turned off, the same account deposits again.
    let disable = cpi_guard::instruction::disable_cpi_guard(
        &TOKEN_2022,
        &f.funder.token,
        &f.funder.key(),
        &[],
    )
    .unwrap();
    f.h.bank
        .process(&[disable], &[&f.funder.wallet])
        .await
        .unwrap();
    let top_up = ix::top_up(&f.lane.keys, f.funder.token, 100);
    f.h.bank
        .process(&[top_up], &[&f.funder.wallet])
        .await
        .unwrap();
    assert_eq!(f.h.tokens(&f.lane.keys.vault).await, DEPOSIT + 100);
    f.h.assert_conserved().await;
}
