//! `refund`: after the grace period (or expiry plus grace), anyone returns
//! the vault to the funder and closes the channel; never earlier, and never
//! into someone else's account.

use amp_channel::error::AmpError;
use amp_channel::state::LaneStatus;
use amp_sdk::instructions as ix;
use amp_tests::*;

use crate::support::*;

#[tokio::test]
async fn refund_into_someone_elses_token_account() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let stranger = f.h.party(0).await;
        f.request_close().await;
        past_grace(&mut f.h);
        for destination in [stranger.token, f.recipient.token] {
            let refund = ix::refund(&f.lane.keys, destination);
            f.h.expect_failure(&[refund], &[], amp(AmpError::WrongFunderTokenAccount))
                .await;
        }
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn refund_into_a_funder_account_of_another_mint() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let other = f.h.other_mint(kind, &[], |_| vec![]).await;
        let destination = f.h.other_token_account(&other, &f.funder.key()).await;
        f.request_close().await;
        past_grace(&mut f.h);
        let refund = ix::refund(&f.lane.keys, destination);
        f.h.expect_failure(&[refund], &[], amp(AmpError::WrongMint))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn refund_before_the_grace_period_ends() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        f.request_close().await;
        f.h.bank.advance_time(i64::from(GRACE) - 1);
        let refund = f.refund_ix();
        f.h.expect_failure(&[refund], &[], amp(AmpError::GracePeriodNotOver))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn refund_without_a_close_request() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        // Time alone never makes a channel without expiry refundable.
        f.h.bank.advance_time(10 * 365 * 24 * 3_600);
        let refund = f.refund_ix();
        f.h.expect_failure(&[refund], &[], amp(AmpError::CloseNotRequested))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn refund_before_expiry_plus_grace() {
    for kind in TokenKind::ALL {
        let mut f = expiring(kind).await;
        let refund = [f.refund_ix()];
        f.h.bank.advance_time(EXPIRY - 1);
        f.h.expect_failure(&refund, &[], amp(AmpError::CloseNotRequested))
            .await;
        // One second before expiry + grace.
        f.h.bank.advance_time(i64::from(GRACE));
        f.h.expect_failure(&refund, &[], amp(AmpError::GracePeriodNotOver))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn request_close_settle_in_grace_then_refund() {
    for kind in TokenKind::ALL {
        let mut h = Harness::new(kind).await;
        let funder = h.party(5_000).await;
        let recipient = h.party(0).await;
        let funder_lamports = h.lamports(&funder.key()).await;
        let lane = h.open(&funder, &recipient, 2_000).await;

        h.bank
            .process(&[ix::request_close(&lane.keys)], &[&funder.wallet])
            .await
            .unwrap();
        let requested = h.bank.now();
        let channel = h.channel(&lane.keys.channel).await.unwrap();
        assert_eq!(
            channel.status(requested),
            LaneStatus::Closing {
                refundable_at: requested + i64::from(GRACE)
            }
        );

        h.bank.advance_time(i64::from(GRACE) - 1);
        let v = lane.voucher(9, 700);
        h.settle(&lane, &funder.wallet, &v, &recipient.token)
            .await
            .unwrap();

        h.bank.advance_time(1);
        // Anyone may land the refund: here only the bank's fee payer signs.
        h.bank
            .process(&[ix::refund(&lane.keys, funder.token)], &[])
            .await
            .unwrap();

        assert_eq!(h.tokens(&recipient.token).await, 700);
        assert_eq!(h.tokens(&funder.token).await, 5_000 - 700);
        assert!(h.channel(&lane.keys.channel).await.is_none());
        assert_eq!(h.lamports(&funder.key()).await, funder_lamports);
        h.assert_conserved().await;
    }
}
