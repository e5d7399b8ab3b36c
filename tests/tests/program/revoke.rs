//! `revoke`: the funder starts a delegation's grace period; the recipient may
//! still settle the delegate's vouchers until it ends.

use amp_channel::error::AmpError;
use amp_sdk::instructions as ix;
use amp_tests::*;
use solana_signer::Signer;

use crate::support::delegation::{Setup, CAP};

#[tokio::test]
async fn revocation_frees_the_unspent_cap_after_grace() {
    for kind in TokenKind::ALL {
        let mut s = Setup::new(kind).await;
        s.settle(100).await;
        s.revoke().await;
        // Accepted delegate vouchers stay settleable through the grace period.
        s.h.bank.advance_time(i64::from(GRACE) - 1);
        s.settle(150).await;
        let stranger = s.h.wallet().await;
        let early = s.close_delegation(&stranger);
        s.h.expect_failure(
            &[early],
            &[&stranger],
            Expected::Amp(AmpError::DelegationNotClosable),
        )
        .await;

        s.h.bank.advance_time(1);
        let late = s.settle_ixs(&s.delegate, &s.voucher(200));
        s.h.expect_failure(&late, &[], Expected::Amp(AmpError::GracePeriodEnded))
            .await;

        // Anyone may close it now; the unspent 150 returns to the own lane.
        let close = s.close_delegation(&stranger);
        s.h.bank.process(&[close], &[&stranger]).await.unwrap();
        let channel = s.h.channel(&s.lane.keys.channel).await.unwrap();
        assert_eq!((channel.delegated, channel.delegations), (150, 0));
        assert_eq!(channel.own_lane_limit(), DEPOSIT + CAP - 150);
        let own = s.lane.voucher(1, DEPOSIT + CAP - 150);
        s.h.settle(&s.lane, &s.funder.wallet, &own, &s.recipient.token)
            .await
            .unwrap();
        s.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn revoked_delegate_racing_a_settle() {
    for kind in TokenKind::ALL {
        let mut s = Setup::new(kind).await;
        // Revocation and a settle in one transaction, settle last: still paid.
        let mut ixs = vec![ix::revoke(&s.lane.keys, &s.delegate.pubkey())];
        ixs.extend(s.settle_ixs(&s.delegate, &s.voucher(80)));
        s.h.bank.process(&ixs, &[&s.funder.wallet]).await.unwrap();
        assert_eq!(s.h.tokens(&s.recipient.token).await, 80);
        // A second revocation is refused; after grace the lane is dead.
        let again = ix::revoke(&s.lane.keys, &s.delegate.pubkey());
        s.h.expect_failure(
            &[again],
            &[&s.funder.wallet],
            Expected::Amp(AmpError::DelegationRevoked),
        )
        .await;
        s.h.bank.advance_time(i64::from(GRACE));
        let ixs = s.settle_ixs(&s.delegate, &s.voucher(90));
        s.h.expect_failure(&ixs, &[], Expected::Amp(AmpError::GracePeriodEnded))
            .await;
        s.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn revoking_on_a_closing_channel_says_the_channel_is_closing() {
    for kind in TokenKind::ALL {
        let mut s = Setup::new(kind).await;
        s.h.request_close(&s.lane, &s.funder.wallet).await;
        let revoke = ix::revoke(&s.lane.keys, &s.delegate.pubkey());
        s.h.expect_failure(
            &[revoke],
            &[&s.funder.wallet],
            Expected::Amp(AmpError::ChannelClosing),
        )
        .await;
        s.h.assert_conserved().await;
    }
}
