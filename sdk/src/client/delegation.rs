//! Delegation: a funder gives a sub-agent its own capped lane on one of
//! its channels ([`AmpClient::delegate`]), and the sub-agent takes it
//! ([`AmpClient::adopt`]) and spends only from it.

use amp_channel::state::{Delegation, DelegationTerms};
use anchor_lang::prelude::Pubkey;
use serde::{Deserialize, Serialize};

use super::agent::{origin, parse_url, unix_now, AmpClient};
use super::book::Refusal;
use super::errors::ClientError;
use super::file::{LaneRecord, LaneStatus};
use super::lanes::check_depositor;
use crate::chain::{ChainExt, TxSigner};
use crate::decimal::u64_string;
use crate::manifest::Manifest;
use crate::{instructions, pda, transactions};

/// A delegated lane, handed by a funder to a sub-agent ([`AmpClient::delegate`],
/// [`AmpClient::adopt`]); plain JSON, so it can travel in any message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The service's origin.
    pub service: String,
    /// The channel's funder (the agent that delegated).
    #[serde(with = "crate::base58")]
    pub funder: Pubkey,
    /// The channel's recipient: the service's payee.
    #[serde(with = "crate::base58")]
    pub recipient: Pubkey,
    /// The token the channel pays in.
    #[serde(with = "crate::base58")]
    pub mint: Pubkey,
    /// The mint's token program (SPL Token or Token-2022).
    #[serde(with = "crate::base58")]
    pub token_program: Pubkey,
    /// The channel's nonce, which with funder and recipient derives its address.
    #[serde(with = "u64_string")]
    pub nonce: u64,
    /// The Delegation address: the lane the sub-agent's vouchers name.
    #[serde(with = "crate::base58")]
    pub delegation: Pubkey,
    /// The sub-agent's key, which signs those vouchers.
    #[serde(with = "crate::base58")]
    pub delegate: Pubkey,
    /// The Delegation's generation (its creation slot), which its vouchers carry.
    #[serde(with = "u64_string")]
    pub generation: u64,
    /// The most the sub-agent can ever spend.
    #[serde(with = "u64_string")]
    pub cap: u64,
    /// The channel's grace period, in seconds.
    pub grace_period: u32,
    /// The service's terms, as the funder accepted them.
    pub manifest: Manifest,
}

impl AmpClient {
    /// Gives `delegate` its own lane on this agent's channel to `service`
    /// (opened if needed), with `cap` deposited for it and counted against
    /// this agent's budget. Hand the [`Grant`] to the sub-agent.
    pub async fn delegate(
        &self,
        service: &str,
        delegate: Pubkey,
        cap: u64,
        expires_at: i64,
    ) -> Result<Grant, ClientError> {
        let chain = self.chain()?.clone();
        let wallet = self.wallet()?.clone();
        let service = origin(&parse_url(service)?)?;
        let lane = self.lane_for(&service, None).await?;
        if !self.is_own(&lane) {
            return Err(ClientError::Config(
                "a delegated lane cannot be delegated again".into(),
            ));
        }
        let keys = self.record(&lane)?.keys();
        let terms = DelegationTerms {
            delegate,
            cap,
            expires_at,
        };
        if let Some(channel) = chain.channel(&keys.channel).await? {
            transactions::check_delegate(&channel, terms, unix_now())
                .map_err(|e| ClientError::Config(format!("cannot delegate: {e}")))?;
        }
        check_depositor(chain.as_ref(), &transactions::funder_token(&keys)).await?;
        match self.inner.ledger.with(|b| b.grant(&lane, delegate, cap)) {
            Ok(()) => {}
            Err(Refusal::Budget { needed, available }) => {
                return Err(ClientError::BudgetExceeded {
                    budget: self.inner.policy.budget,
                    needed,
                    available,
                })
            }
            Err(_) => return Err(ClientError::NoLane(lane.to_string())),
        }
        // Recorded before sending, so a crash never forgets a cap handed out.
        self.inner.ledger.save().await?;
        let record = self.record(&lane)?;
        let ix = instructions::delegate(&keys, transactions::funder_token(&keys), terms);
        let address = pda::delegation(&keys.channel, &delegate).0;
        let sent = chain.send(&[ix], &[wallet.as_ref() as &TxSigner]).await;
        let delegation = match sent {
            Ok(_) => chain.anchor_account::<Delegation>(&address).await?,
            Err(error) => {
                self.inner.ledger.with(|b| b.ungrant(&lane, &delegate));
                self.inner.ledger.save().await?;
                return Err(error.into());
            }
        };
        let delegation = delegation.ok_or_else(|| {
            ClientError::Config(format!("delegation {address} not found after creating it"))
        })?;
        self.refresh_limit(&lane).await?;
        self.inner.ledger.save().await?;
        tracing::info!(%service, %delegate, cap, delegation = %address, "delegated a lane");
        Ok(Grant {
            service,
            funder: record.funder,
            recipient: record.recipient,
            mint: record.mint,
            token_program: record.token_program,
            nonce: record.nonce,
            delegation: address,
            delegate,
            generation: delegation.generation,
            cap,
            grace_period: record.grace_period,
            manifest: record.manifest,
        })
    }

    /// Takes a delegated lane to spend from (this client's signer must be
    /// the grant's delegate). Adopting the same grant again is a no-op.
    pub async fn adopt(&self, grant: Grant) -> Result<(), ClientError> {
        if self.signer() != grant.delegate {
            return Err(ClientError::Config(format!(
                "the grant is for {}, this client signs as {}",
                grant.delegate,
                self.signer()
            )));
        }
        let service = origin(&parse_url(&grant.service)?)?;
        self.inner
            .policy
            .check_manifest(&service, &grant.manifest)?;
        let adopted = self.inner.ledger.with(|b| {
            if let Some(l) = b.lane(&grant.delegation) {
                return Ok(l.record.generation == grant.generation);
            }
            if let Some(existing) = b.open_lane(&service) {
                return Err(ClientError::Config(format!(
                    "{service} is already paid through lane {existing}"
                )));
            }
            b.insert(LaneRecord {
                service: service.clone(),
                lane: grant.delegation,
                funder: grant.funder,
                recipient: grant.recipient,
                mint: grant.mint,
                token_program: grant.token_program,
                nonce: grant.nonce,
                delegate: Some(grant.delegate),
                payer: None,
                generation: grant.generation,
                limit: grant.cap,
                deposited: grant.cap,
                grace_period: grant.grace_period,
                status: LaneStatus::Open,
                opening_since: 0,
                seq: 0,
                signed: 0,
                owed: 0,
                granted: vec![],
                manifest: grant.manifest.clone(),
            });
            Ok(false)
        })?;
        if !adopted {
            self.inner.ledger.save().await?;
            tracing::info!(%service, lane = %grant.delegation, cap = grant.cap, "adopted a delegated lane");
        }
        Ok(())
    }
}
