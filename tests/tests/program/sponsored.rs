//! A sponsor (the service, typically) fronts the rent of a channel or a
//! delegation: every closing path returns that rent to the sponsor, never to
//! the funder or a third party, while the tokens still go to the funder. The
//! single-signer form (the funder pays its own rent) records the funder.

use amp_channel::error::AmpError;
use amp_channel::instruction;
use amp_channel::state::{Delegation, DelegationTerms};
use amp_sdk::{instructions as ix, pda};
use amp_tests::*;
use anchor_lang::error::ErrorCode;
use anchor_lang::prelude::Pubkey;
use anchor_lang::AccountDeserialize;
use solana_keypair::Keypair;
use solana_signer::Signer;

use crate::support::*;

/// A channel whose rent `sponsor` fronted, and what it fronted.
struct Sponsored {
    f: Fixture,
    sponsor: Keypair,
    /// The sponsor's lamports before the open.
    sponsor_before: u64,
    /// The funder's lamports before the open: a sponsored funder never pays any.
    funder_before: u64,
    /// Lamports the Channel and Vault hold: the rent the sponsor fronted.
    rent: u64,
}

impl Sponsored {
    async fn new(kind: TokenKind) -> Self {
        Self::with_terms(kind, |_, _| {}).await
    }

    async fn with_terms(
        kind: TokenKind,
        terms: impl FnOnce(&Harness, &mut amp_channel::instructions::OpenArgs),
    ) -> Self {
        let mut h = Harness::new(kind).await;
        let funder = h.party(FUNDS).await;
        let recipient = h.party(0).await;
        let sponsor = h.wallet().await;
        let sponsor_before = h.lamports(&sponsor.pubkey()).await;
        let funder_before = h.lamports(&funder.key()).await;
        let nonce = h.next_nonce();
        let mut args = h.open_args(&recipient.key(), nonce, DEPOSIT);
        terms(&h, &mut args);
        let lane = h
            .open_sponsored(&funder, &sponsor, args)
            .await
            .expect("sponsored open");
        let rent = h.lamports(&lane.keys.channel).await + h.lamports(&lane.keys.vault).await;
        Self {
            f: Fixture {
                h,
                funder,
                recipient,
                lane,
            },
            sponsor,
            sponsor_before,
            funder_before,
            rent,
        }
    }

    /// The closing instruction `close` built with `payer` in the rent payer's place.
    fn close_paying(&self, payer: Pubkey) -> solana_instruction::Instruction {
        tampered(
            ix::close_accounts(
                &self.f.lane.keys,
                self.f.recipient.token,
                self.f.funder.token,
            ),
            |a| a.payer = payer,
            instruction::Close {
                final_voucher: false,
            },
        )
    }

    fn refund_paying(&self, payer: Pubkey) -> solana_instruction::Instruction {
        tampered(
            ix::refund_accounts(&self.f.lane.keys, self.f.funder.token),
            |a| a.payer = payer,
            instruction::Refund {},
        )
    }

    /// Substituting the funder or a stranger for the sponsor is refused.
    async fn wrong_payers(&mut self) -> [Pubkey; 2] {
        [self.f.funder.key(), self.f.h.wallet().await.pubkey()]
    }

    /// The sponsor has its rent back to the lamport and the funder paid none;
    /// the funder's tokens are whole but for what the recipient was paid.
    async fn assert_rent_returned(&mut self, paid: u64) {
        let h = &mut self.f.h;
        assert!(h
            .bank
            .account(&self.f.lane.keys.channel)
            .await
            .unwrap()
            .is_none());
        assert!(h
            .bank
            .account(&self.f.lane.keys.vault)
            .await
            .unwrap()
            .is_none());
        assert_eq!(
            h.lamports(&self.sponsor.pubkey()).await,
            self.sponsor_before
        );
        assert_eq!(h.lamports(&self.f.funder.key()).await, self.funder_before);
        assert_eq!(h.tokens(&self.f.funder.token).await, FUNDS - paid);
        assert_eq!(h.tokens(&self.f.recipient.token).await, paid);
        h.assert_conserved().await;
    }
}

#[tokio::test]
async fn a_sponsor_fronts_the_rent_and_the_funder_pays_none() {
    for kind in TokenKind::ALL {
        let mut s = Sponsored::new(kind).await;
        let h = &mut s.f.h;
        assert!(s.rent > 0);
        assert_eq!(
            h.lamports(&s.sponsor.pubkey()).await,
            s.sponsor_before - s.rent
        );
        assert_eq!(h.lamports(&s.f.funder.key()).await, s.funder_before);
        assert_eq!(h.tokens(&s.f.funder.token).await, FUNDS - DEPOSIT);
        let channel = h.channel(&s.f.lane.keys.channel).await.unwrap();
        assert_eq!(channel.payer, s.sponsor.pubkey());
        assert_eq!(channel.funder, s.f.funder.key());
    }
}

#[tokio::test]
async fn the_single_signer_form_records_the_funder_as_payer() {
    let mut f = Fixture::new(TokenKind::Token).await;
    let channel = f.h.channel(&f.lane.keys.channel).await.unwrap();
    assert_eq!(channel.payer, f.funder.key());
}

#[tokio::test]
async fn the_payer_must_sign() {
    let mut f = Fixture::new(TokenKind::Token).await;
    let sponsor = f.h.wallet().await;
    let (keys, args) = unopened(&mut f);
    let keys = keys.with_payer(sponsor.pubkey());
    let mut open = ix::open(&keys, f.funder.token, args);
    for meta in open.accounts.iter_mut() {
        if meta.pubkey == sponsor.pubkey() {
            meta.is_signer = false;
        }
    }
    f.h.watch(sponsor.pubkey());
    f.h.watch_channel(&keys);
    f.h.expect_failure(
        &[open],
        &[&f.funder.wallet],
        anchor(ErrorCode::AccountNotSigner),
    )
    .await;
}

#[tokio::test]
async fn cooperative_close_returns_the_rent_to_the_sponsor() {
    for kind in TokenKind::ALL {
        let mut s = Sponsored::new(kind).await;
        s.f.settle(1, 300).await;
        for payer in s.wrong_payers().await {
            let close = s.close_paying(payer);
            s.f.h
                .expect_failure(&[close], &[&s.f.recipient.wallet], amp(AmpError::NotPayer))
                .await;
        }
        let close = s.f.close_ix();
        s.f.h
            .bank
            .process(&[close], &[&s.f.recipient.wallet])
            .await
            .expect("close");
        s.assert_rent_returned(300).await;
    }
}

#[tokio::test]
async fn refund_after_grace_returns_the_rent_to_the_sponsor() {
    for kind in TokenKind::ALL {
        let mut s = Sponsored::new(kind).await;
        s.f.settle(1, 250).await;
        s.f.request_close().await;
        past_grace(&mut s.f.h);
        for payer in s.wrong_payers().await {
            let refund = s.refund_paying(payer);
            s.f.h
                .expect_failure(&[refund], &[], amp(AmpError::NotPayer))
                .await;
        }
        let refund = s.f.refund_ix();
        s.f.h.bank.process(&[refund], &[]).await.expect("refund");
        s.assert_rent_returned(250).await;
    }
}

#[tokio::test]
async fn refund_after_expiry_returns_the_rent_to_the_sponsor() {
    for kind in TokenKind::ALL {
        let mut s =
            Sponsored::with_terms(kind, |h, args| args.expires_at = h.bank.now() + EXPIRY).await;
        s.f.h.bank.advance_time(EXPIRY);
        past_grace(&mut s.f.h);
        for payer in s.wrong_payers().await {
            let refund = s.refund_paying(payer);
            s.f.h
                .expect_failure(&[refund], &[], amp(AmpError::NotPayer))
                .await;
        }
        let refund = s.f.refund_ix();
        s.f.h.bank.process(&[refund], &[]).await.expect("refund");
        s.assert_rent_returned(0).await;
    }
}

/// A delegation whose rent `sponsor` fronts on a channel the funder paid for.
async fn sponsored_delegation(f: &mut Fixture, sponsor: &Keypair, delegate: &Pubkey) -> Pubkey {
    let terms = DelegationTerms {
        delegate: *delegate,
        cap: 200,
        expires_at: 0,
    };
    let delegate_ix = tampered(
        ix::delegate_accounts(&f.lane.keys, delegate, f.funder.token),
        |a| a.payer = sponsor.pubkey(),
        instruction::Delegate { terms },
    );
    f.h.bank
        .process(&[delegate_ix], &[&f.funder.wallet, sponsor])
        .await
        .expect("sponsored delegate");
    let address = pda::delegation(&f.lane.keys.channel, delegate).0;
    let account = f.h.bank.account(&address).await.unwrap().unwrap();
    let delegation = Delegation::try_deserialize(&mut account.data.as_slice()).unwrap();
    assert_eq!(delegation.payer, sponsor.pubkey());
    address
}

#[tokio::test]
async fn close_delegation_returns_the_rent_to_its_sponsor_on_both_paths() {
    for by_recipient in [true, false] {
        let mut f = Fixture::new(TokenKind::Token).await;
        let sponsor = f.h.wallet().await;
        let delegate = Keypair::new();
        let sponsor_before = f.h.lamports(&sponsor.pubkey()).await;
        let funder_before = f.h.lamports(&f.funder.key()).await;
        let address = sponsored_delegation(&mut f, &sponsor, &delegate.pubkey()).await;
        let rent = f.h.lamports(&address).await;
        assert_eq!(f.h.lamports(&sponsor.pubkey()).await, sponsor_before - rent);
        assert_eq!(f.h.lamports(&f.funder.key()).await, funder_before);

        let closer = if by_recipient {
            f.recipient.wallet.insecure_clone()
        } else {
            let revoke = ix::revoke(&f.lane.keys, &delegate.pubkey());
            f.h.bank
                .process(&[revoke], &[&f.funder.wallet])
                .await
                .expect("revoke");
            past_grace(&mut f.h);
            f.h.wallet().await
        };
        let stranger = f.h.wallet().await.pubkey();
        // The channel's own payer (the funder here) is not the delegation's.
        for payer in [f.funder.key(), stranger] {
            let close =
                ix::close_delegation(&f.lane.keys, &delegate.pubkey(), closer.pubkey(), payer);
            f.h.watch(address);
            f.h.expect_failure(&[close], &[&closer], amp(AmpError::NotPayer))
                .await;
        }
        let close = ix::close_delegation(
            &f.lane.keys,
            &delegate.pubkey(),
            closer.pubkey(),
            sponsor.pubkey(),
        );
        f.h.bank
            .process(&[close], &[&closer])
            .await
            .expect("close_delegation");
        assert!(f.h.bank.account(&address).await.unwrap().is_none());
        assert_eq!(f.h.lamports(&sponsor.pubkey()).await, sponsor_before);
        assert_eq!(f.h.lamports(&f.funder.key()).await, funder_before);
        f.h.assert_conserved().await;
    }
}
