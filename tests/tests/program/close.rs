//! The recipient's cooperative close (`close`), as far as the other files do
//! not cover it: a final voucher is public, so anyone may settle it first.

use amp_channel::error::AmpError;
use amp_sdk::instructions as ix;
use amp_tests::*;
use solana_instruction::Instruction;

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
