//! `settle`: a voucher in the preceding Ed25519SigVerify instruction pays the
//! recipient what it adds, on a channel's own lane or a delegate's. Attacks
//! on vouchers (signer, lane, generation, amount, expiry), on the destination
//! account and on timing; every refusal goes through `Harness::expect_failure`
//! (exact error, and not a token, lamport or byte moved), and every test ends
//! with the conservation check. The Ed25519SigVerify instruction itself is
//! attacked in `ed25519.rs`.

use amp_channel::error::AmpError;
use amp_sdk::instructions as ix;
use amp_tests::*;
use anchor_lang::error::ErrorCode;
use solana_keypair::Keypair;
use solana_signer::Signer;

use crate::support::delegation::{Setup, CAP};
use crate::support::*;

#[tokio::test]
async fn voucher_signed_by_a_stranger() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let stranger = Keypair::new();
        let voucher = f.lane.voucher(1, 500);
        let ixs =
            f.h.settle_ixs(&f.lane, &stranger, &voucher, &f.recipient.token);
        f.h.expect_failure(&ixs, &[], amp(AmpError::WrongSigner))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn funder_signature_when_a_hot_key_is_the_signer() {
    for kind in TokenKind::ALL {
        let hot = Keypair::new().pubkey();
        let mut f = Fixture::with_terms(kind, |_, args| args.authorized_signer = Some(hot)).await;
        let ixs = f.settle_ixs(1, 500);
        f.h.expect_failure(&ixs, &[], amp(AmpError::WrongSigner))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn voucher_for_another_channel() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        // Same funder, same recipient, same signer: only the lane differs.
        let other = f.h.open(&f.funder, &f.recipient, DEPOSIT).await;
        let ixs = [
            sign(&f.funder.wallet, &other.voucher(1, 500)),
            ix::settle(&f.lane.keys, f.recipient.token),
        ];
        f.h.expect_failure(&ixs, &[], amp(AmpError::WrongLane))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn voucher_from_a_previous_incarnation() {
    for kind in TokenKind::ALL {
        let mut h = Harness::new(kind).await;
        let funder = h.party(FUNDS).await;
        let recipient = h.party(0).await;
        let nonce = h.next_nonce();
        let args = h.open_args(&recipient.key(), nonce, DEPOSIT);
        let old = h.open_with(&funder, args).await.unwrap();
        let replay = h.settle_ixs(&old, &funder.wallet, &old.voucher(1, 300), &recipient.token);
        h.bank.process(&replay, &[]).await.unwrap();
        let close = ix::close(&old.keys, recipient.token, funder.token, false);
        h.bank
            .process(&[close], &[&recipient.wallet])
            .await
            .unwrap();

        // The same address again: a new generation kills the old vouchers.
        let new = h.open_with(&funder, args).await.unwrap();
        assert_eq!(new.keys, old.keys);
        assert_ne!(new.generation, old.generation);
        h.expect_failure(&replay, &[], amp(AmpError::WrongGeneration))
            .await;
        assert_eq!(h.tokens(&recipient.token).await, 300);
        h.assert_conserved().await;
    }
}

#[tokio::test]
async fn stale_cumulative_amount() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        f.settle(1, 300).await;
        for cumulative in [300, 299, 1] {
            let ixs = f.settle_ixs(2, cumulative);
            f.h.expect_failure(&ixs, &[], amp(AmpError::StaleVoucher))
                .await;
        }
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn same_voucher_twice_in_one_transaction() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let mut ixs = f.settle_ixs(1, 300);
        ixs.extend(f.settle_ixs(1, 300));
        f.h.expect_failure(&ixs, &[], amp(AmpError::StaleVoucher))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn cumulative_above_the_deposit() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        // The vault holds more than the deposit once something else sits in it.
        let donor = f.h.party(500).await;
        f.h.transfer(&donor, &f.lane.keys.vault, 500).await;
        let ixs = f.settle_ixs(1, DEPOSIT + 1);
        f.h.expect_failure(&ixs, &[], amp(AmpError::VoucherExceedsDeposit))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn cumulative_of_u64_max() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        f.settle(1, 100).await;
        let ixs = f.settle_ixs(2, u64::MAX);
        f.h.expect_failure(&ixs, &[], amp(AmpError::VoucherExceedsDeposit))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn expired_voucher() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let now = f.h.bank.now();
        for expires_at in [now - 1_000, now - 1, now] {
            let voucher = amp_channel::voucher::Voucher {
                expires_at,
                ..f.lane.voucher(1, 500)
            };
            let ixs =
                f.h.settle_ixs(&f.lane, &f.funder.wallet, &voucher, &f.recipient.token);
            f.h.expect_failure(&ixs, &[], amp(AmpError::VoucherExpired))
                .await;
        }
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn settlement_into_an_account_not_owned_by_the_recipient() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let stranger = f.h.party(0).await;
        for destination in [stranger.token, f.funder.token] {
            let ixs = [signed(&f, 500), ix::settle(&f.lane.keys, destination)];
            f.h.expect_failure(&ixs, &[], amp(AmpError::WrongRecipientTokenAccount))
                .await;
        }
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn settlement_into_the_vault_itself() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        // Anchor refuses the vault as a second writable account before any constraint.
        let ixs = [signed(&f, 500), ix::settle(&f.lane.keys, f.lane.keys.vault)];
        f.h.expect_failure(
            &ixs,
            &[],
            anchor(ErrorCode::ConstraintDuplicateMutableAccount),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn settlement_into_an_account_of_another_mint() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let other = f.h.other_mint(kind, &[], |_| vec![]).await;
        let destination = f.h.other_token_account(&other, &f.recipient.key()).await;
        let ixs = [signed(&f, 500), ix::settle(&f.lane.keys, destination)];
        f.h.expect_failure(&ixs, &[], amp(AmpError::WrongMint))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn settle_after_the_grace_period() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        f.request_close().await;
        past_grace(&mut f.h);
        let ixs = f.settle_ixs(1, 500);
        f.h.expect_failure(&ixs, &[], amp(AmpError::GracePeriodEnded))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn settle_after_expiry_plus_grace() {
    for kind in TokenKind::ALL {
        let mut f = expiring(kind).await;
        // Expired but within grace: the recipient still gets paid.
        f.h.bank.advance_time(EXPIRY);
        f.settle(1, 200).await;
        f.h.bank.advance_time(i64::from(GRACE));
        let ixs = f.settle_ixs(2, 500);
        f.h.expect_failure(&ixs, &[], amp(AmpError::GracePeriodEnded))
            .await;
        assert_eq!(f.h.tokens(&f.recipient.token).await, 200);
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn delegate_voucher_above_cap_is_refused() {
    for kind in TokenKind::ALL {
        let mut s = Setup::new(kind).await;
        let ixs = s.settle_ixs(&s.delegate, &s.voucher(CAP + 1));
        s.h.expect_failure(&ixs, &[], Expected::Amp(AmpError::VoucherExceedsCap))
            .await;
        let ixs = s.settle_ixs(&s.delegate, &s.voucher(u64::MAX));
        s.h.expect_failure(&ixs, &[], Expected::Amp(AmpError::VoucherExceedsCap))
            .await;
        s.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn delegate_voucher_cannot_pass_as_the_channels_own() {
    for kind in TokenKind::ALL {
        let mut s = Setup::new(kind).await;
        // A delegate's voucher settled on the own lane: signed by the wrong key.
        let ixs =
            s.h.settle_ixs(&s.lane, &s.delegate, &s.voucher(50), &s.recipient.token);
        s.h.expect_failure(&ixs, &[], Expected::Amp(AmpError::WrongSigner))
            .await;
        // The delegate signing a voucher that names the channel itself.
        let own_shaped = s.lane.voucher(1, 50);
        let ixs =
            s.h.settle_ixs(&s.lane, &s.delegate, &own_shaped, &s.recipient.token);
        s.h.expect_failure(&ixs, &[], Expected::Amp(AmpError::WrongSigner))
            .await;
        s.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn channel_voucher_cannot_pass_as_a_delegates() {
    for kind in TokenKind::ALL {
        let mut s = Setup::new(kind).await;
        // The funder's own voucher presented on the delegated lane.
        let own = s.lane.voucher(1, 50);
        let ixs = s.settle_ixs(&s.funder.wallet, &own);
        s.h.expect_failure(&ixs, &[], Expected::Amp(AmpError::WrongSigner))
            .await;
        // The delegate's key signing a voucher for the channel, on the delegated lane.
        let ixs = s.settle_ixs(&s.delegate, &own);
        s.h.expect_failure(&ixs, &[], Expected::Amp(AmpError::WrongLane))
            .await;
        s.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn delegation_of_another_channel() {
    for kind in TokenKind::ALL {
        let mut s = Setup::new(kind).await;
        // A second channel of the same funder, recipient and mint: the
        // delegation, its voucher and its signer are all genuine, but they
        // belong to the first channel.
        let other = s.h.open(&s.funder, &s.recipient, DEPOSIT).await;
        let settle = tampered(
            ix::settle_accounts(&other.keys, s.recipient.token),
            |accounts| accounts.delegation = Some(s.address()),
            amp_channel::instruction::Settle {},
        );
        let ixs = [sign(&s.delegate, &s.voucher(50)), settle];
        s.h.expect_failure(&ixs, &[], amp(AmpError::WrongChannel))
            .await;
        s.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn hot_key_signs_for_a_cold_funder() {
    let mut h = Harness::new(TokenKind::Token).await;
    let funder = h.party(1_000).await;
    let recipient = h.party(0).await;
    let hot = solana_keypair::Keypair::new();
    let nonce = h.next_nonce();
    let mut args = h.open_args(&recipient.key(), nonce, 1_000);
    args.authorized_signer = Some(hot.pubkey());
    let lane = h.open_with(&funder, args).await.unwrap();
    let v = lane.voucher(1, 400);
    h.settle(&lane, &hot, &v, &recipient.token).await.unwrap();
    assert_eq!(h.tokens(&recipient.token).await, 400);
    h.assert_conserved().await;
}

#[tokio::test]
async fn several_channels_settle_in_one_transaction() {
    for kind in TokenKind::ALL {
        let mut h = Harness::new(kind).await;
        let recipient = h.party(0).await;
        let mut ixs = vec![];
        let mut expected = 0;
        // As many `[ed25519, settle]` pairs as one packet carries.
        let fit = amp_sdk::transactions::max_settles_per_transaction() as u64;
        for i in 1..=fit {
            let funder = h.party(1_000).await;
            let lane = h.open(&funder, &recipient, 1_000).await;
            let v = lane.voucher(1, 100 * i);
            expected += 100 * i;
            ixs.extend(h.settle_ixs(&lane, &funder.wallet, &v, &recipient.token));
        }
        h.bank.process(&ixs, &[]).await.unwrap();
        assert_eq!(h.tokens(&recipient.token).await, expected);
        h.assert_conserved().await;
    }
}
