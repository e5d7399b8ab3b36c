//! `close`: the recipient's cooperative close, with or without a final
//! voucher, refunds the rest at once. A channel's whole life ending in it;
//! only the recipient, never in the opening transaction, never while
//! delegations live, never into someone else's account; a final voucher is
//! public, so anyone may settle it first; a closed channel accepts nothing.

use amp_channel::error::AmpError;
use amp_channel::instruction;
use amp_sdk::instructions as ix;
use amp_tests::*;
use anchor_lang::error::ErrorCode;
use solana_instruction::Instruction;
use solana_signer::Signer;

use crate::support::delegation::Setup;
use crate::support::*;

#[tokio::test]
async fn cooperative_close_into_someone_elses_token_account() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let stranger = f.h.party(0).await;
        let close = ix::close(&f.lane.keys, f.recipient.token, stranger.token, false);
        f.h.expect_failure(
            &[close],
            &[&f.recipient.wallet],
            amp(AmpError::WrongFunderTokenAccount),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn close_by_the_funder_or_a_stranger() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let stranger = f.h.party(0).await;
        for signer in [&f.funder.wallet, &stranger.wallet] {
            let close = tampered(
                ix::close_accounts(&f.lane.keys, f.recipient.token, f.funder.token),
                |a| a.recipient = signer.pubkey(),
                instruction::Close {
                    final_voucher: false,
                },
            );
            f.h.expect_failure(&[close], &[signer], amp(AmpError::NotRecipient))
                .await;
        }
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn close_without_the_recipients_signature() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let mut close = f.close_ix();
        close.accounts[0].is_signer = false;
        f.h.expect_failure(&[close], &[], anchor(ErrorCode::AccountNotSigner))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn close_in_the_transaction_that_opens() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let (keys, args) = unopened(&mut f);
        f.h.watch_channel(&keys);
        let ixs = [
            ix::open(&keys, f.funder.token, args),
            ix::close(&keys, f.recipient.token, f.funder.token, false),
        ];
        f.h.expect_failure(
            &ixs,
            &[&f.funder.wallet, &f.recipient.wallet],
            amp(AmpError::ChannelTooYoung),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn final_voucher_after_the_grace_period() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        f.request_close().await;
        past_grace(&mut f.h);
        let ixs = [
            signed(&f, 500),
            ix::close(&f.lane.keys, f.recipient.token, f.funder.token, true),
        ];
        f.h.expect_failure(
            &ixs,
            &[&f.recipient.wallet],
            amp(AmpError::GracePeriodEnded),
        )
        .await;
        // Without the voucher the recipient may still close: all goes back.
        let close = f.close_ix();
        f.h.bank
            .process(&[close], &[&f.recipient.wallet])
            .await
            .unwrap();
        assert_eq!(f.h.tokens(&f.funder.token).await, FUNDS);
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn a_closed_channel_accepts_nothing() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        f.settle(1, 100).await;
        let close = [f.close_ix()];
        f.h.bank
            .process(&close, &[&f.recipient.wallet])
            .await
            .unwrap();
        let gone = || anchor(ErrorCode::AccountNotInitialized);
        let settle = f.settle_ixs(2, 200);
        f.h.expect_failure(&settle, &[], gone()).await;
        f.h.expect_failure(&close, &[&f.recipient.wallet], gone())
            .await;
        let top_up = ix::top_up(&f.lane.keys, f.funder.token, 100);
        f.h.expect_failure(&[top_up], &[&f.funder.wallet], gone())
            .await;
        let request = ix::request_close(&f.lane.keys);
        f.h.expect_failure(&[request], &[&f.funder.wallet], gone())
            .await;
        f.h.expect_failure(&[f.refund_ix()], &[], gone()).await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn channel_cannot_close_while_delegations_live() {
    for kind in TokenKind::ALL {
        let mut s = Setup::new(kind).await;
        let close = ix::close(&s.lane.keys, s.recipient.token, s.funder.token, false);
        s.h.expect_failure(
            &[close],
            &[&s.recipient.wallet],
            Expected::Amp(AmpError::DelegationsOutstanding),
        )
        .await;

        // The funder's way out: request close, wait, close the delegation, refund.
        s.h.bank
            .process(&[ix::request_close(&s.lane.keys)], &[&s.funder.wallet])
            .await
            .unwrap();
        s.h.bank.advance_time(i64::from(GRACE));
        let refund = ix::refund(&s.lane.keys, s.funder.token);
        s.h.expect_failure(
            std::slice::from_ref(&refund),
            &[],
            Expected::Amp(AmpError::DelegationsOutstanding),
        )
        .await;
        let stranger = s.h.wallet().await;
        let close = s.close_delegation(&stranger);
        s.h.bank
            .process(&[close, refund], &[&stranger])
            .await
            .unwrap();
        assert_eq!(s.h.tokens(&s.funder.token).await, 10_000);
        assert!(s.h.channel(&s.lane.keys.channel).await.is_none());
        s.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn full_life_with_cooperative_close() {
    for kind in TokenKind::ALL {
        let mut h = Harness::new(kind).await;
        let funder = h.party(10_000).await;
        let recipient = h.party(0).await;
        let funder_lamports = h.lamports(&funder.key()).await;

        let lane = h.open(&funder, &recipient, 1_000).await;
        let channel = h.channel(&lane.keys.channel).await.unwrap();
        assert_eq!(channel.deposited, 1_000);
        assert_eq!(channel.authorized_signer, funder.key());
        assert_eq!(h.tokens(&lane.keys.vault).await, 1_000);
        assert!(
            h.lamports(&funder.key()).await < funder_lamports,
            "funder fronts the rent"
        );

        for (seq, cumulative) in [(1, 100), (2, 250), (3, 600)] {
            let v = lane.voucher(seq, cumulative);
            h.settle(&lane, &funder.wallet, &v, &recipient.token)
                .await
                .unwrap();
            assert_eq!(h.tokens(&recipient.token).await, cumulative);
        }
        h.bank
            .process(
                &[ix::top_up(&lane.keys, funder.token, 500)],
                &[&funder.wallet],
            )
            .await
            .unwrap();
        assert_eq!(
            h.channel(&lane.keys.channel).await.unwrap().deposited,
            1_500
        );
        assert_eq!(h.tokens(&lane.keys.vault).await, 900);

        let last = lane.voucher(4, 1_200);
        let close = vec![
            sign(&funder.wallet, &last),
            ix::close(&lane.keys, recipient.token, funder.token, true),
        ];
        h.bank.process(&close, &[&recipient.wallet]).await.unwrap();

        assert_eq!(h.tokens(&recipient.token).await, 1_200);
        assert_eq!(h.tokens(&funder.token).await, 10_000 - 1_200);
        assert!(h.channel(&lane.keys.channel).await.is_none());
        assert!(h.bank.account(&lane.keys.vault).await.unwrap().is_none());
        assert_eq!(
            h.lamports(&funder.key()).await,
            funder_lamports,
            "all rent back with the funder"
        );
        h.assert_conserved().await;
    }
}

/// `[ed25519(the funder's voucher), close(final_voucher)]`.
fn close_with(f: &Fixture, cumulative: u64) -> Vec<Instruction> {
    vec![
        sign(&f.funder.wallet, &f.lane.voucher(1, cumulative)),
        ix::close(&f.lane.keys, f.recipient.token, f.funder.token, true),
    ]
}

#[tokio::test]
async fn a_final_voucher_settled_first_by_someone_else_still_closes() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        // The voucher travelled in HTTP headers: a stranger lands it first.
        f.settle(1, 600).await;
        let close = close_with(&f, 600);
        f.h.bank
            .process(&close, &[&f.recipient.wallet])
            .await
            .expect("the close goes on");
        assert_eq!(f.h.tokens(&f.recipient.token).await, 600);
        assert_eq!(f.h.tokens(&f.funder.token).await, FUNDS - 600);
        assert!(f.h.channel(&f.lane.keys.channel).await.is_none());
        assert!(f.h.balance(&f.lane.keys.vault).await.is_none());
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn a_final_voucher_below_what_was_settled_is_stale() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        f.settle(2, 600).await;
        let close = close_with(&f, 500);
        f.h.expect_failure(
            &close,
            &[&f.recipient.wallet],
            Expected::Amp(AmpError::StaleVoucher),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn a_final_voucher_above_what_was_settled_pays_the_difference() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        f.settle(1, 250).await;
        let close = close_with(&f, 600);
        f.h.bank
            .process(&close, &[&f.recipient.wallet])
            .await
            .unwrap();
        assert_eq!(f.h.tokens(&f.recipient.token).await, 600);
        assert_eq!(f.h.tokens(&f.funder.token).await, FUNDS - 600);
        f.h.assert_conserved().await;
    }
}
