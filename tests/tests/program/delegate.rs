//! `delegate`: a funder gives a sub-agent key its own capped lane on a
//! channel; only the funder, never to the recipient, and lamports sent ahead
//! to the delegation's address do not block it.

use amp_channel::error::AmpError;
use amp_channel::state::DelegationTerms;
use amp_sdk::{instructions as ix, pda};
use amp_tests::*;
use solana_keypair::Keypair;
use solana_signer::Signer;

use crate::support::delegation::{delegation, Setup, CAP};

#[tokio::test]
async fn delegate_pays_within_its_cap_and_rent_comes_back() {
    for kind in TokenKind::ALL {
        let mut s = Setup::new(kind).await;
        let channel = s.h.channel(&s.lane.keys.channel).await.unwrap();
        assert_eq!(
            (channel.deposited, channel.delegated, channel.delegations),
            (DEPOSIT + CAP, CAP, 1)
        );
        assert_eq!(s.h.tokens(&s.lane.keys.vault).await, DEPOSIT + CAP);

        s.settle(120).await;
        s.settle(CAP).await;
        assert_eq!(s.h.tokens(&s.recipient.token).await, CAP);
        // The own lane keeps its full deposit beside the delegate's.
        let own = s.lane.voucher(1, DEPOSIT);
        s.h.settle(&s.lane, &s.funder.wallet, &own, &s.recipient.token)
            .await
            .unwrap();
        assert_eq!(s.h.tokens(&s.recipient.token).await, CAP + DEPOSIT);

        // The recipient closes the delegation, then the channel.
        let close = s.close_delegation(&s.recipient.wallet);
        s.h.bank
            .process(&[close], &[&s.recipient.wallet])
            .await
            .unwrap();
        let address = s.address();
        assert!(delegation(&mut s.h, &address).await.is_none());
        let close = ix::close(&s.lane.keys, s.recipient.token, s.funder.token, false);
        s.h.bank
            .process(&[close], &[&s.recipient.wallet])
            .await
            .unwrap();
        assert_eq!(
            s.h.lamports(&s.funder.key()).await,
            s.funder_lamports,
            "all rent back"
        );
        assert_eq!(s.h.tokens(&s.funder.token).await, 10_000 - CAP - DEPOSIT);
        s.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn only_the_funder_delegates_and_revokes() {
    for kind in TokenKind::ALL {
        let mut s = Setup::new(kind).await;
        let mallory = s.h.party(1_000).await;
        let mut keys = s.lane.keys;
        keys.funder = mallory.key();
        let terms = DelegationTerms {
            delegate: mallory.key(),
            cap: 10,
            expires_at: 0,
        };
        let delegate = ix::delegate(&keys, mallory.token, terms);
        s.h.expect_failure(
            &[delegate],
            &[&mallory.wallet],
            Expected::Amp(AmpError::NotFunder),
        )
        .await;
        let revoke = ix::revoke(&keys, &s.delegate.pubkey());
        s.h.expect_failure(
            &[revoke],
            &[&mallory.wallet],
            Expected::Amp(AmpError::NotFunder),
        )
        .await;
        s.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn lamports_sent_ahead_do_not_block_a_delegation() {
    let mut s = Setup::new(TokenKind::Token).await;
    let next = Keypair::new();
    let address = pda::delegation(&s.lane.keys.channel, &next.pubkey()).0;
    s.h.transfer_lamports(&address, 1_000_000).await;
    let terms = DelegationTerms {
        delegate: next.pubkey(),
        cap: 50,
        expires_at: 0,
    };
    s.h.bank
        .process(
            &[ix::delegate(&s.lane.keys, s.funder.token, terms)],
            &[&s.funder.wallet],
        )
        .await
        .unwrap();
    assert_eq!(delegation(&mut s.h, &address).await.unwrap().cap, 50);
    s.h.assert_conserved().await;
}

#[tokio::test]
async fn the_recipient_cannot_be_a_delegate() {
    for kind in TokenKind::ALL {
        let mut s = Setup::new(kind).await;
        // It could otherwise sign its own payments out of the funder's cap.
        let terms = DelegationTerms {
            delegate: s.recipient.key(),
            cap: CAP,
            expires_at: 0,
        };
        let delegate = ix::delegate(&s.lane.keys, s.funder.token, terms);
        s.h.watch(pda::delegation(&s.lane.keys.channel, &s.recipient.key()).0);
        s.h.expect_failure(
            &[delegate],
            &[&s.funder.wallet],
            Expected::Amp(AmpError::RecipientCannotSign),
        )
        .await;
        s.h.assert_conserved().await;
    }
}
