//! Terms refused at the door: a recipient that could sign its own payments,
//! and a funder account whose CPI Guard would make the deposit fail inside
//! the token program (for `open`, `top_up` and `delegate`, which all deposit).

use amp_channel::error::AmpError;
use amp_channel::state::DelegationTerms;
use amp_sdk::instructions as ix;
use amp_sdk::pda;
use amp_tests::*;
use solana_keypair::Keypair;
use solana_signer::Signer;
use spl_token_2022_interface::extension::{cpi_guard, ExtensionType};

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
