//! `request_close`: the funder starts the grace period, once.

use amp_channel::error::AmpError;
use amp_channel::instruction;
use amp_sdk::instructions as ix;
use amp_tests::*;
use solana_signer::Signer;

use crate::support::*;

#[tokio::test]
async fn request_close_twice() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        f.request_close().await;
        f.h.bank.advance_time(10);
        // A second request would push the refund further out.
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
async fn request_close_by_someone_but_the_funder() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let stranger = f.h.wallet().await;
        for signer in [&f.recipient.wallet, &stranger] {
            let request = tampered(
                ix::request_close_accounts(&f.lane.keys),
                |a| a.funder = signer.pubkey(),
                instruction::RequestClose {},
            );
            f.h.expect_failure(&[request], &[signer], amp(AmpError::NotFunder))
                .await;
        }
        f.h.assert_conserved().await;
    }
}
