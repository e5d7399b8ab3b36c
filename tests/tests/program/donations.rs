//! Nothing is stranded (SPEC safety property 4): tokens or lamports that a
//! third party sends straight to a channel's accounts never block `close` or
//! `refund`, never raise what the recipient can claim, and end with the
//! funder. On SPL Token and Token-2022, with the conservation check.

use amp_channel::error::AmpError;
use amp_sdk::instructions as ix;
use amp_tests::*;

/// What a third party sends into the vault.
const DONATION: u64 = 777;

/// The fixture with [`DONATION`] tokens sent into its vault by a stranger.
async fn donated(kind: TokenKind) -> Fixture {
    let mut f = Fixture::new(kind).await;
    let donor = f.h.party(DONATION).await;
    f.h.transfer(&donor, &f.lane.keys.vault, DONATION).await;
    assert_eq!(f.h.tokens(&f.lane.keys.vault).await, DEPOSIT + DONATION);
    f
}

/// The channel is gone and the funder holds everything but what was settled,
/// donation included.
async fn assert_donation_refunded(f: &mut Fixture, settled: u64) {
    assert!(f.h.channel(&f.lane.keys.channel).await.is_none());
    assert!(f
        .h
        .bank
        .account(&f.lane.keys.vault)
        .await
        .unwrap()
        .is_none());
    assert_eq!(f.h.tokens(&f.recipient.token).await, settled);
    assert_eq!(
        f.h.tokens(&f.funder.token).await,
        FUNDS - settled + DONATION
    );
    f.h.assert_conserved().await;
}

#[tokio::test]
async fn cooperative_close_returns_a_donation_to_the_funder() {
    for kind in TokenKind::ALL {
        let mut f = donated(kind).await;
        f.settle(1, 300).await;
        let close = f.close_ix();
        f.h.bank
            .process(&[close], &[&f.recipient.wallet])
            .await
            .unwrap();
        assert_donation_refunded(&mut f, 300).await;
    }
}

#[tokio::test]
async fn close_with_a_final_voucher_returns_a_donation_to_the_funder() {
    for kind in TokenKind::ALL {
        let mut f = donated(kind).await;
        let last = f.lane.voucher(1, DEPOSIT);
        let close = [
            sign(&f.funder.wallet, &last),
            ix::close(&f.lane.keys, f.recipient.token, f.funder.token, true),
        ];
        f.h.bank
            .process(&close, &[&f.recipient.wallet])
            .await
            .unwrap();
        assert_donation_refunded(&mut f, DEPOSIT).await;
    }
}

#[tokio::test]
async fn refund_returns_a_donation_to_the_funder() {
    for kind in TokenKind::ALL {
        let mut f = donated(kind).await;
        f.settle(1, 400).await;
        f.request_close().await;
        f.h.bank.advance_time(i64::from(GRACE));
        let refund = f.refund_ix();
        f.h.bank.process(&[refund], &[]).await.unwrap();
        assert_donation_refunded(&mut f, 400).await;
    }
}

#[tokio::test]
async fn a_donation_raises_nothing_the_recipient_can_claim() {
    for kind in TokenKind::ALL {
        let mut f = donated(kind).await;
        let ixs = f.settle_ixs(1, DEPOSIT + DONATION);
        f.h.expect_failure(&ixs, &[], Expected::Amp(AmpError::VoucherExceedsDeposit))
            .await;
        f.settle(2, DEPOSIT).await;
        let ixs = f.settle_ixs(3, DEPOSIT + 1);
        f.h.expect_failure(&ixs, &[], Expected::Amp(AmpError::VoucherExceedsDeposit))
            .await;
        let close = f.close_ix();
        f.h.bank
            .process(&[close], &[&f.recipient.wallet])
            .await
            .unwrap();
        assert_donation_refunded(&mut f, DEPOSIT).await;
    }
}

#[tokio::test]
async fn lamports_sent_to_the_channel_and_vault_go_to_the_funder() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let keys = f.lane.keys;
        let rent = f.h.lamports(&keys.channel).await + f.h.lamports(&keys.vault).await;
        f.h.transfer_lamports(&keys.channel, 1_000_000).await;
        f.h.transfer_lamports(&keys.vault, 2_000_000).await;
        let funder_lamports = f.h.lamports(&f.funder.key()).await;

        let close = f.close_ix();
        f.h.bank
            .process(&[close], &[&f.recipient.wallet])
            .await
            .unwrap();
        assert_eq!(
            f.h.lamports(&f.funder.key()).await,
            funder_lamports + rent + 3_000_000
        );
        assert_eq!(f.h.tokens(&f.funder.token).await, FUNDS);
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn lamports_sent_ahead_to_a_channels_addresses_do_not_block_open() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        // Addresses are predictable once an open is in flight: a stranger
        // pre-funds the channel's address, or its vault's.
        for vault in [false, true] {
            let nonce = f.h.next_nonce();
            let keys = f.h.keys(&f.funder.key(), &f.recipient.key(), nonce);
            let target = if vault { keys.vault } else { keys.channel };
            f.h.transfer_lamports(&target, 1_000_000).await;
            let funder_lamports = f.h.lamports(&f.funder.key()).await;

            let args = f.h.open_args(&f.recipient.key(), nonce, DEPOSIT);
            let lane = f.h.open_with(&f.funder, args).await.unwrap();
            assert_eq!(f.h.tokens(&lane.keys.vault).await, DEPOSIT);
            let close = ix::close(&lane.keys, f.recipient.token, f.funder.token, false);
            f.h.bank
                .process(&[close], &[&f.recipient.wallet])
                .await
                .unwrap();
            // The funder fronted only the rent not already there and got all of it back.
            assert_eq!(
                f.h.lamports(&f.funder.key()).await,
                funder_lamports + 1_000_000
            );
        }
        f.h.assert_conserved().await;
    }
}
