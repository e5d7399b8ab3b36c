//! The cooperative close (`POST /.well-known/amp/close`): accept the final
//! voucher, settle it and close the lane on-chain in one transaction, so the
//! funder's refund is immediate. A channel's delegations this server knows
//! are settled and closed first, since a channel with delegations cannot close.

use std::collections::HashMap;
use std::sync::Arc;

use amp_channel::error::AmpError;
use anchor_lang::prelude::Pubkey;
use http::{HeaderMap, Response, StatusCode};
use solana_keypair::Keypair;
use solana_signer::Signer;

use super::admission::Admission;
use super::cache::LaneCache;
use super::ledger::Ledger;
use super::response::{json, to_json, unavailable, AmpBody, Refusal};
use super::settle::settle_instructions;
use super::sponsor::Sponsor;
use crate::chain::{Chain, ChainError, TxSigner};
use crate::headers::Receipt;
use crate::instructions::{close_delegation, ChannelKeys};
use crate::lane::LaneAccounts;
use crate::manifest::CloseAnswer;
use crate::store::{self, LaneQuery, LaneState};
use crate::transactions::{self, Settlement};

/// What closing lanes on-chain needs: the recipient's key and the mints' token programs.
pub(crate) struct CooperativeClose {
    admission: Arc<Admission>,
    cache: Arc<LaneCache>,
    ledger: Ledger,
    chain: Arc<dyn Chain>,
    wallet: Arc<Keypair>,
    /// Accepted mints and their token programs.
    token_programs: HashMap<Pubkey, Pubkey>,
    /// Told when a channel closes, so the rent it fronted counts as back.
    sponsor: Option<Arc<Sponsor>>,
}

impl CooperativeClose {
    pub(crate) fn new(
        admission: Arc<Admission>,
        cache: Arc<LaneCache>,
        ledger: Ledger,
        chain: Arc<dyn Chain>,
        wallet: Arc<Keypair>,
        token_programs: HashMap<Pubkey, Pubkey>,
        sponsor: Option<Arc<Sponsor>>,
    ) -> Self {
        Self {
            admission,
            cache,
            ledger,
            chain,
            wallet,
            token_programs,
            sponsor,
        }
    }

    /// `POST /.well-known/amp/close`.
    pub(crate) async fn answer(&self, headers: &HeaderMap) -> Response<AmpBody> {
        match self.try_close(headers).await {
            Ok(response) | Err(response) => response,
        }
    }

    async fn try_close(&self, headers: &HeaderMap) -> Result<Response<AmpBody>, Refusal> {
        let (accounts, signed) = self.admission.verify(headers, true).await?;
        let limit = accounts.limit();
        let state = self
            .ledger
            .close(accounts.fresh_state(), signed, limit)
            .await
            .map_err(|e| self.admission.refused(e))?;

        match self.close_on_chain(&accounts, &state).await {
            Ok(signature) => {
                let settled = state.signed().max(accounts.settled());
                let id = state.id;
                let _ = store::transact(self.ledger.store(), state.clone(), move |s| {
                    s.settled = s.settled.max(settled);
                    ((), true)
                })
                .await
                .map_err(|e| tracing::error!(lane = %id.lane, %e, "cannot record the close"));
                tracing::info!(lane = %accounts.address, %signature, settled, "lane closed cooperatively");
                self.cache.forget(&accounts.address);
                if let (Some(sponsor), None) = (&self.sponsor, &accounts.delegation) {
                    sponsor.released(&accounts.channel_address);
                }
                let mut response = json(
                    StatusCode::OK,
                    to_json(&CloseAnswer {
                        lane: accounts.address,
                        closed: true,
                        settled,
                        signature: signature.to_string(),
                    }),
                );
                Receipt {
                    owed: state.owed,
                    remaining: 0,
                }
                .write(response.headers_mut());
                Ok(response)
            }
            Err(error) => {
                // Not closed after all: the settler takes the voucher, and the
                // client may retry with a new seq.
                let _ = store::transact(self.ledger.store(), state, |s| {
                    s.closed = false;
                    ((), true)
                })
                .await;
                Err(unavailable("the close transaction failed", &error))
            }
        }
    }

    /// Settles the best voucher and closes the lane in one transaction; a
    /// channel's delegations this server knows are settled and closed first.
    async fn close_on_chain(
        &self,
        accounts: &LaneAccounts,
        state: &LaneState,
    ) -> Result<solana_signature::Signature, ChainError> {
        let token_program = self.token_programs[&accounts.channel.mint];
        let keys = accounts.keys(token_program);
        let signer: &TxSigner = self.wallet.as_ref();
        if let Some(delegation) = &accounts.delegation {
            let mut instructions = settle_instructions(accounts, &keys, state);
            instructions.push(close_delegation(
                &keys,
                &delegation.delegate,
                self.wallet.pubkey(),
                delegation.payer,
            ));
            return self.chain.send(&instructions, &[signer]).await;
        }
        if accounts.channel.delegations > 0 {
            self.close_delegations(accounts, &keys).await?;
        }
        let Some(best) = state
            .best
            .filter(|best| best.voucher.cumulative > accounts.settled())
        else {
            return self
                .chain
                .send(&transactions::close(&keys), &[signer])
                .await;
        };
        let settlement = Settlement::new(keys, state.signer, best.voucher, best.signature);
        let closed = self
            .chain
            .send(&transactions::close_with_voucher(&settlement), &[signer])
            .await;
        match closed {
            // The voucher is public: anyone may have settled it (or more)
            // since the lane was read, which a program before the final-voucher
            // rule refuses as stale. What it pays is on-chain already.
            Err(error) if error.is_amp_error(AmpError::StaleVoucher) => {
                self.chain
                    .send(&transactions::close(&keys), &[signer])
                    .await
            }
            other => other,
        }
    }

    /// Settles and closes every delegation of the channel this server has seen.
    async fn close_delegations(
        &self,
        accounts: &LaneAccounts,
        keys: &ChannelKeys,
    ) -> Result<(), ChainError> {
        let lanes = self
            .ledger
            .store()
            .find(LaneQuery::Channel(accounts.channel_address))
            .await
            .map_err(|e| ChainError::Bank(format!("voucher store: {e}")))?;
        let signer: &TxSigner = self.wallet.as_ref();
        for lane in lanes.iter().filter(|l| l.delegate.is_some()) {
            let Some(delegation) = LaneAccounts::fetch(self.chain.as_ref(), &lane.id.lane).await?
            else {
                continue;
            };
            let Some(account) = delegation
                .delegation
                .as_ref()
                .filter(|_| delegation.generation() == lane.id.generation)
            else {
                continue;
            };
            let mut instructions = settle_instructions(&delegation, keys, lane);
            instructions.push(close_delegation(
                keys,
                &account.delegate,
                self.wallet.pubkey(),
                account.payer,
            ));
            self.chain.send(&instructions, &[signer]).await?;
            let settled = lane.signed().max(delegation.settled());
            let _ = store::transact(self.ledger.store(), lane.clone(), move |s| {
                s.settled = s.settled.max(settled);
                s.closed = true;
                ((), true)
            })
            .await;
        }
        Ok(())
    }
}
