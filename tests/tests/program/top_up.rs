//! `top_up`: the funder adds to an open channel's deposit; refused once the
//! channel is closing, from anyone else, of nothing, or past the u64 range.

use amp_channel::error::AmpError;
use amp_channel::instruction;
use amp_sdk::instructions as ix;
use amp_tests::*;
use solana_instruction::error::InstructionError;

use crate::support::*;

#[tokio::test]
async fn top_up_after_a_close_request() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        f.request_close().await;
        let top_up = ix::top_up(&f.lane.keys, f.funder.token, 100);
        f.h.expect_failure(
            &[top_up],
            &[&f.funder.wallet],
            amp(AmpError::ChannelClosing),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn top_up_and_close_request_after_expiry() {
    for kind in TokenKind::ALL {
        let mut f = expiring(kind).await;
        f.h.bank.advance_time(EXPIRY);
        let top_up = ix::top_up(&f.lane.keys, f.funder.token, 100);
        f.h.expect_failure(
            &[top_up],
            &[&f.funder.wallet],
            amp(AmpError::ChannelClosing),
        )
        .await;
        let request = ix::request_close(&f.lane.keys);
        f.h.expect_failure(
            &[request],
            &[&f.funder.wallet],
            amp(AmpError::ChannelClosing),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn top_up_by_someone_but_the_funder() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let stranger = f.h.party(500).await;
        let top_up = tampered(
            ix::top_up_accounts(&f.lane.keys, stranger.token),
            |a| a.funder = stranger.key(),
            instruction::TopUp { amount: 100 },
        );
        f.h.expect_failure(&[top_up], &[&stranger.wallet], amp(AmpError::NotFunder))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn top_up_from_someone_elses_token_account() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let victim = f.h.party(500).await;
        let top_up = ix::top_up(&f.lane.keys, victim.token, 100);
        f.h.expect_failure(
            &[top_up],
            &[&f.funder.wallet],
            Expected::Instruction(InstructionError::Custom(TOKEN_OWNER_MISMATCH)),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn top_up_of_nothing() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let top_up = ix::top_up(&f.lane.keys, f.funder.token, 0);
        f.h.expect_failure(&[top_up], &[&f.funder.wallet], amp(AmpError::ZeroAmount))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn top_up_of_u64_max() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let top_up = ix::top_up(&f.lane.keys, f.funder.token, u64::MAX);
        f.h.expect_failure(
            &[top_up],
            &[&f.funder.wallet],
            amp(AmpError::ArithmeticOverflow),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn the_whole_u64_range_and_not_one_more() {
    for kind in TokenKind::ALL {
        let mut h = Harness::new(kind).await;
        let funder = h.party(u64::MAX).await;
        let recipient = h.party(0).await;
        let lane = h.open(&funder, &recipient, u64::MAX - 1).await;
        h.settle(
            &lane,
            &funder.wallet,
            &lane.voucher(1, u64::MAX - 1),
            &recipient.token,
        )
        .await
        .unwrap();
        // deposited = u64::MAX - 1; topping up 2 would wrap.
        let top_up = ix::top_up(&lane.keys, funder.token, 2);
        h.expect_failure(
            &[top_up],
            &[&funder.wallet],
            amp(AmpError::ArithmeticOverflow),
        )
        .await;
        let ixs = h.settle_ixs(
            &lane,
            &funder.wallet,
            &lane.voucher(2, u64::MAX),
            &recipient.token,
        );
        h.expect_failure(&ixs, &[], amp(AmpError::VoucherExceedsDeposit))
            .await;
        assert_eq!(h.tokens(&recipient.token).await, u64::MAX - 1);
        h.assert_conserved().await;
    }
}
