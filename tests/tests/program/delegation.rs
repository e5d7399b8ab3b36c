//! Delegated lanes: a funder gives a sub-agent key its own capped lane.

use amp_channel::error::AmpError;
use amp_channel::state::{Delegation, DelegationTerms};
use amp_channel::voucher::Voucher;
use amp_sdk::instructions as ix;
use amp_sdk::pda;
use amp_tests::*;
use anchor_lang::AccountDeserialize;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// A channel with one delegation, and everything a test needs around it.
struct Setup {
    h: Harness,
    funder: Party,
    recipient: Party,
    lane: Lane,
    delegate: Keypair,
    generation: u64,
    /// The funder's lamports before it opened anything.
    funder_lamports: u64,
}

const DEPOSIT: u64 = 1_000;
const CAP: u64 = 300;

impl Setup {
    async fn new(kind: TokenKind) -> Self {
        let mut h = Harness::new(kind).await;
        let funder = h.party(10_000).await;
        let recipient = h.party(0).await;
        let funder_lamports = h.lamports(&funder.key()).await;
        let lane = h.open(&funder, &recipient, DEPOSIT).await;
        let delegate = Keypair::new();
        let terms = DelegationTerms {
            delegate: delegate.pubkey(),
            cap: CAP,
            expires_at: 0,
        };
        h.bank
            .process(
                &[ix::delegate(&lane.keys, funder.token, terms)],
                &[&funder.wallet],
            )
            .await
            .expect("delegate");
        let address = pda::delegation(&lane.keys.channel, &delegate.pubkey()).0;
        h.watch(address);
        let generation = delegation(&mut h, &address).await.unwrap().generation;
        Self {
            h,
            funder,
            recipient,
            lane,
            delegate,
            generation,
            funder_lamports,
        }
    }

    fn address(&self) -> anchor_lang::prelude::Pubkey {
        pda::delegation(&self.lane.keys.channel, &self.delegate.pubkey()).0
    }

    fn voucher(&self, cumulative: u64) -> Voucher {
        Voucher {
            lane: self.address(),
            generation: self.generation,
            seq: cumulative,
            cumulative,
            expires_at: 0,
        }
    }

    /// `[ed25519(voucher by signer), settle from the delegated lane]`.
    fn settle_ixs(
        &self,
        signer: &Keypair,
        voucher: &Voucher,
    ) -> Vec<solana_instruction::Instruction> {
        vec![
            sign(signer, voucher),
            ix::settle_delegated(
                &self.lane.keys,
                &self.delegate.pubkey(),
                self.recipient.token,
            ),
        ]
    }

    async fn settle(&mut self, cumulative: u64) {
        let ixs = self.settle_ixs(&self.delegate, &self.voucher(cumulative));
        self.h
            .bank
            .process(&ixs, &[])
            .await
            .expect("delegate settle");
    }

    async fn revoke(&mut self) {
        let revoke = ix::revoke(&self.lane.keys, &self.delegate.pubkey());
        self.h
            .bank
            .process(&[revoke], &[&self.funder.wallet])
            .await
            .expect("revoke");
    }

    fn close_delegation(&self, closer: &Keypair) -> solana_instruction::Instruction {
        ix::close_delegation(&self.lane.keys, &self.delegate.pubkey(), closer.pubkey())
    }
}

async fn delegation(h: &mut Harness, address: &anchor_lang::prelude::Pubkey) -> Option<Delegation> {
    let account = h.bank.account(address).await.unwrap()?;
    Some(Delegation::try_deserialize(&mut account.data.as_slice()).unwrap())
}

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
