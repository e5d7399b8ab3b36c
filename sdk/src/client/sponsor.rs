//! Opening and topping up through a sponsoring service (SPEC section 5,
//! "Sponsored opening"): when the manifest offers it and the policy says so
//! (by default: when the fee payer holds too little SOL), the agent builds
//! the transaction with the service as fee and rent payer, signs it as
//! funder and posts it; the service co-signs and sends it.

use anchor_lang::prelude::Pubkey;
use http::StatusCode;
use solana_instruction::Instruction;
use solana_transaction::Transaction;

use super::agent::AmpClient;
use super::errors::ClientError;
use super::policy::Sponsoring;
use crate::chain::{Chain, ChainError};
use crate::fees::{self, FeePolicy};
use crate::manifest::{refusal, Manifest};
use crate::sponsor::{
    open_rent, SponsorAnswer, SponsorRequest, Sponsorship, LAMPORTS_PER_SIGNATURE,
    SPL_TOKEN_VAULT_LEN, VAULT_LEN_BOUND,
};

/// Lamports of one signature's fee.
pub(super) const SIGNATURE_FEE: u64 = LAMPORTS_PER_SIGNATURE;

/// Lamports an agent opening alone needs: both accounts' rent and the fee
/// (the associated token accounts exist already: the funder's holds the
/// deposit). A Token-2022 vault may carry extensions: its bound is larger.
pub(super) fn open_cost(token_program: &Pubkey) -> u64 {
    let vault = if *token_program == anchor_spl::token::ID {
        SPL_TOKEN_VAULT_LEN
    } else {
        VAULT_LEN_BOUND
    };
    open_rent(vault).saturating_add(SIGNATURE_FEE)
}

/// Why a transaction (sent alone or through the sponsor) did not land, and
/// whether its outcome is unknown (it may have landed all the same).
pub(super) struct SendFailure {
    pub error: ClientError,
    pub unknown_outcome: bool,
}

impl From<ChainError> for SendFailure {
    fn from(error: ChainError) -> Self {
        Self {
            unknown_outcome: error.is_transient(),
            error: error.into(),
        }
    }
}

impl AmpClient {
    /// The sponsorship to send through, if any: the manifest offers one that
    /// covers these terms and the policy wants it (`Auto`: the fee payer
    /// holds less than `cost` lamports).
    pub(super) async fn sponsorship_for(
        &self,
        manifest: &Manifest,
        deposit: Option<(u64, u32)>,
        cost: u64,
    ) -> Result<Option<Sponsorship>, ClientError> {
        let mint = &self.inner.policy.mint;
        let Some(offer) = manifest.sponsor.as_ref().filter(|s| match deposit {
            Some((deposit, grace_period)) => s.covers(mint, deposit, grace_period),
            None => s.top_up && s.mints.contains(mint),
        }) else {
            return Ok(None);
        };
        let wanted = match self.inner.policy.sponsoring {
            Sponsoring::Never => false,
            Sponsoring::Prefer => true,
            Sponsoring::Auto => self.fee_payer_balance().await? < cost,
        };
        Ok(wanted.then(|| offer.clone()))
    }

    /// The compute budget of a sponsored transaction: the chain's fee
    /// policy with the sponsor's caps on top (a price above the advertised
    /// cap, or a limit above its limit, would only be refused).
    pub(super) async fn sponsored_budget(
        &self,
        sponsorship: &Sponsorship,
        instructions: &[Instruction],
    ) -> Result<Vec<Instruction>, ClientError> {
        let chain = self.chain()?;
        let policy = sponsored_policy(chain.fee_policy(), sponsorship);
        let budget = chain
            .compute_budget_with(&policy, &sponsorship.payer, instructions)
            .await?;
        Ok(within_caps(&budget, sponsorship))
    }

    /// Lamports the chain's fee payer (the agent's wallet, over RPC) holds.
    pub(super) async fn fee_payer_balance(&self) -> Result<u64, ClientError> {
        let chain = self.chain()?;
        let payer = chain.fee_payer();
        Ok(chain.account(&payer).await?.map_or(0, |a| a.lamports))
    }

    /// Refuses, before sending, a transaction only this agent can pay for
    /// when its fee payer holds less than `needed` lamports.
    pub(super) async fn ensure_sol(
        &self,
        action: &'static str,
        needed: u64,
    ) -> Result<(), ClientError> {
        let balance = self.fee_payer_balance().await?;
        if balance < needed {
            return Err(ClientError::NeedsSol {
                action,
                payer: self.chain()?.fee_payer(),
                needed,
                balance,
            });
        }
        Ok(())
    }

    /// Posts `tx` to the service's sponsor endpoint `path`.
    pub(super) async fn post_sponsored(
        &self,
        service: &str,
        path: &str,
        tx: &Transaction,
    ) -> Result<SponsorAnswer, SendFailure> {
        let unknown = |error: ClientError| SendFailure {
            error,
            unknown_outcome: true,
        };
        let response = self
            .inner
            .http
            .post(format!("{service}{path}"))
            .json(&SponsorRequest::new(tx))
            .send()
            .await
            .map_err(|e| unknown(e.into()))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| unknown(e.into()))?;
        if status == StatusCode::OK {
            return serde_json::from_slice(&body).map_err(|e| unknown(e.into()));
        }
        let error = match refusal(status, &body) {
            Some(body) => ClientError::Refused {
                service: service.to_owned(),
                status,
                body: Box::new(body),
            },
            None => ClientError::Discovery {
                service: service.to_owned(),
                reason: format!("{path} answered {status}"),
            },
        };
        Err(SendFailure {
            error,
            // A 5xx may come after the service sent the transaction.
            unknown_outcome: status.is_server_error(),
        })
    }
}

/// `policy` with its price capped at what the sponsor advertises.
fn sponsored_policy(policy: FeePolicy, sponsorship: &Sponsorship) -> FeePolicy {
    let cap = policy
        .max_compute_unit_price
        .min(sponsorship.max_compute_unit_price);
    FeePolicy {
        compute_unit_price: policy.compute_unit_price.map(|price| price.min(cap)),
        max_compute_unit_price: cap,
        ..policy
    }
}

/// The budget instructions with the limit and price held to the sponsor's caps.
fn within_caps(budget: &[Instruction], sponsorship: &Sponsorship) -> Vec<Instruction> {
    let limit = budget.iter().find_map(fees::limit_of);
    let price = budget.iter().find_map(fees::price_of);
    match (limit, price) {
        (None, None) => Vec::new(),
        (limit, price) => {
            let limit = limit
                .unwrap_or(sponsorship.max_compute_unit_limit)
                .min(sponsorship.max_compute_unit_limit);
            let price = price.unwrap_or(0).min(sponsorship.max_compute_unit_price);
            fees::compute_budget_instructions(limit, price).to_vec()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sponsorship() -> Sponsorship {
        Sponsorship {
            payer: Pubkey::new_unique(),
            mints: vec![],
            min_deposit: 1,
            max_deposit: 10,
            min_grace_period: 60,
            max_grace_period: 600,
            max_compute_unit_price: 1_000,
            max_compute_unit_limit: 100_000,
            top_up: true,
        }
    }

    #[test]
    fn a_sponsored_budget_never_exceeds_the_advertised_caps() {
        let s = sponsorship();
        let capped = within_caps(&fees::compute_budget_instructions(1_400_000, 5_000), &s);
        assert_eq!(capped.iter().find_map(fees::limit_of), Some(100_000));
        assert_eq!(capped.iter().find_map(fees::price_of), Some(1_000));
        let kept = within_caps(&fees::compute_budget_instructions(40_000, 10), &s);
        assert_eq!(kept.iter().find_map(fees::limit_of), Some(40_000));
        assert_eq!(kept.iter().find_map(fees::price_of), Some(10));
        assert!(within_caps(&[], &s).is_empty());

        let policy = sponsored_policy(FeePolicy::fixed(50_000), &s);
        assert_eq!(policy.compute_unit_price, Some(1_000));
        assert_eq!(policy.max_compute_unit_price, 1_000);
        policy.validate().unwrap();
    }
}
