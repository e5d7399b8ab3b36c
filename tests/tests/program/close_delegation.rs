//! `close_delegation`: a delegation's unspent cap returns to the channel and
//! its rent to the funder; a delegation created again at the same address
//! has a new generation, so the old one's vouchers are dead.

use amp_channel::error::AmpError;
use amp_channel::state::DelegationTerms;
use amp_sdk::instructions as ix;
use amp_tests::*;
use solana_signer::Signer;

use crate::support::delegation::{Setup, CAP};

#[tokio::test]
async fn recreated_delegation_has_a_new_generation() {
    let mut s = Setup::new(TokenKind::Token).await;
    s.settle(100).await;
    let old = s.voucher(250);
    let close = s.close_delegation(&s.recipient.wallet);
    s.h.bank
        .process(&[close], &[&s.recipient.wallet])
        .await
        .unwrap();
    let terms = DelegationTerms {
        delegate: s.delegate.pubkey(),
        cap: CAP,
        expires_at: 0,
    };
    s.h.bank
        .process(
            &[ix::delegate(&s.lane.keys, s.funder.token, terms)],
            &[&s.funder.wallet],
        )
        .await
        .unwrap();
    let ixs = s.settle_ixs(&s.delegate, &old);
    s.h.expect_failure(&ixs, &[], Expected::Amp(AmpError::WrongGeneration))
        .await;
    s.h.assert_conserved().await;
}
