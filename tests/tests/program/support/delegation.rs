//! A channel with one delegation, and everything a delegation test needs
//! around it (the delegation's vouchers, settling, revoking, closing).

use amp_channel::state::{Delegation, DelegationTerms};
use amp_channel::voucher::Voucher;
use amp_sdk::{instructions as ix, pda};
use amp_tests::*;
use anchor_lang::AccountDeserialize;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// A channel with one delegation, and everything a test needs around it.
pub struct Setup {
    pub h: Harness,
    pub funder: Party,
    pub recipient: Party,
    pub lane: Lane,
    pub delegate: Keypair,
    pub generation: u64,
    /// The funder's lamports before it opened anything.
    pub funder_lamports: u64,
}

pub const CAP: u64 = 300;

impl Setup {
    pub async fn new(kind: TokenKind) -> Self {
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

    pub fn address(&self) -> anchor_lang::prelude::Pubkey {
        pda::delegation(&self.lane.keys.channel, &self.delegate.pubkey()).0
    }

    pub fn voucher(&self, cumulative: u64) -> Voucher {
        Voucher {
            lane: self.address(),
            generation: self.generation,
            seq: cumulative,
            cumulative,
            expires_at: 0,
        }
    }

    /// `[ed25519(voucher by signer), settle from the delegated lane]`.
    pub fn settle_ixs(
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

    pub async fn settle(&mut self, cumulative: u64) {
        let ixs = self.settle_ixs(&self.delegate, &self.voucher(cumulative));
        self.h
            .bank
            .process(&ixs, &[])
            .await
            .expect("delegate settle");
    }

    pub async fn revoke(&mut self) {
        let revoke = ix::revoke(&self.lane.keys, &self.delegate.pubkey());
        self.h
            .bank
            .process(&[revoke], &[&self.funder.wallet])
            .await
            .expect("revoke");
    }

    pub fn close_delegation(&self, closer: &Keypair) -> solana_instruction::Instruction {
        ix::close_delegation(
            &self.lane.keys,
            &self.delegate.pubkey(),
            closer.pubkey(),
            self.lane.keys.funder,
        )
    }
}

pub async fn delegation(
    h: &mut Harness,
    address: &anchor_lang::prelude::Pubkey,
) -> Option<Delegation> {
    let account = h.bank.account(address).await.unwrap()?;
    Some(Delegation::try_deserialize(&mut account.data.as_slice()).unwrap())
}
