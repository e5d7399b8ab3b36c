//! Ending a lane: cooperatively (a last credential to the service's close
//! endpoint, which settles and refunds at once), or on-chain with
//! `request_close` and, after the grace period, `refund`.

use amp_channel::state::{Delegation, LaneStatus as ChainLaneStatus};
use anchor_lang::prelude::Pubkey;
use solana_signer::Signer;

use super::agent::{origin, parse_url, AmpClient};
use super::errors::ClientError;
use super::signing::Answer;
use super::sponsor::SIGNATURE_FEE;
use crate::chain::{ChainExt, TxSigner};
use crate::manifest::{CloseAnswer, CLOSE_PATH};
use crate::{instructions, pda, transactions};

/// How a close ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseOutcome {
    /// The service settled and closed the lane; the rest is refunded already.
    Closed {
        /// Total the service settled on the lane, in the mint's smallest unit.
        settled: u64,
        /// The closing transaction; empty when the channel was already gone.
        signature: String,
    },
    /// The service did not close it: the close was requested on-chain, and
    /// [`AmpClient::refund_due`] takes the refund from `refundable_at` on.
    Closing {
        /// When the grace period ends (unix seconds).
        refundable_at: i64,
    },
}

impl AmpClient {
    /// Closes the lane paying `service`: cooperatively, with a credential
    /// covering what is owed; or, when the service does not answer or will
    /// not close, by requesting the close on-chain.
    pub async fn close(&self, service: &str) -> Result<CloseOutcome, ClientError> {
        let service = origin(&parse_url(service)?)?;
        let lane = self
            .inner
            .ledger
            .with(|b| b.open_lane(&service))
            .ok_or_else(|| ClientError::NoLane(service.clone()))?;
        let url = format!("{service}{CLOSE_PATH}");
        let failure = match self.post_credential(&lane, &url, 0).await {
            Ok(Answer::Passed(response)) if response.status().is_success() => {
                match response.json::<CloseAnswer>().await {
                    Ok(closed) if closed.closed => return self.closed(&lane, closed).await,
                    Ok(_) => "the service did not close the lane".to_owned(),
                    Err(e) => format!("unreadable close answer: {e}"),
                }
            }
            Ok(Answer::Passed(response)) => format!("the service answered {}", response.status()),
            Ok(Answer::Refused(status, body)) => {
                format!("{status} {}: {}", body.error, body.message)
            }
            Err(error @ (ClientError::Http(_) | ClientError::BudgetExceeded { .. })) => {
                error.to_string()
            }
            Err(error) => return Err(error),
        };
        tracing::warn!(%service, %lane, reason = %failure, "no cooperative close; requesting it on-chain");
        if !self.is_own(&lane) {
            return Err(ClientError::Config(format!(
                "{service} did not close the delegated lane {lane} ({failure}); only its funder can end it"
            )));
        }
        self.request_close(&lane).await
    }

    /// Closes every open lane (see [`close`](Self::close)).
    pub async fn close_all(&self) -> Vec<(String, Result<CloseOutcome, ClientError>)> {
        let services = self.inner.ledger.with(|b| b.open_services());
        let mut outcomes = Vec::with_capacity(services.len());
        for service in services {
            let outcome = self.close(&service).await;
            outcomes.push((service, outcome));
        }
        outcomes
    }

    /// The service closed the lane: check that the channel is gone and retire it.
    async fn closed(
        &self,
        lane: &Pubkey,
        closed: CloseAnswer,
    ) -> Result<CloseOutcome, ClientError> {
        if let (Some(chain), true) = (&self.inner.chain, self.is_own(lane)) {
            if chain.channel(lane).await?.is_some() {
                tracing::warn!(%lane, "the service says closed but the channel is still there");
                return self.request_close(lane).await;
            }
        }
        self.inner.ledger.with(|b| b.retire_signed(lane));
        self.inner.ledger.save().await?;
        tracing::info!(%lane, settled = closed.settled, signature = %closed.signature, "lane closed cooperatively");
        Ok(CloseOutcome::Closed {
            settled: closed.settled,
            signature: closed.signature,
        })
    }

    /// `request_close` on-chain (unless the channel is already closing or gone).
    pub(super) async fn request_close(&self, lane: &Pubkey) -> Result<CloseOutcome, ClientError> {
        let chain = self.chain()?;
        let wallet = self.wallet()?;
        let record = self.record(lane)?;
        let now = chain.clock().await?.unix_timestamp;
        let Some(channel) = chain.channel(lane).await? else {
            let spent = self.inner.ledger.with(|b| b.retire_signed(lane));
            self.inner.ledger.save().await?;
            return Ok(CloseOutcome::Closed {
                settled: spent,
                signature: String::new(),
            });
        };
        let refundable_at = match channel.status(now) {
            ChainLaneStatus::Open => {
                self.ensure_sol("requesting a close on-chain", SIGNATURE_FEE)
                    .await?;
                let signature = chain
                    .send(
                        &transactions::request_close(&record.keys()),
                        &[wallet.as_ref() as &TxSigner],
                    )
                    .await?;
                tracing::info!(%lane, %signature, "close requested on-chain");
                now.saturating_add(i64::from(channel.grace_period))
            }
            ChainLaneStatus::Closing { refundable_at } => refundable_at,
            ChainLaneStatus::Refundable => now,
        };
        self.inner
            .ledger
            .with(|b| b.mark_closing(lane, refundable_at));
        self.inner.ledger.save().await?;
        Ok(CloseOutcome::Closing { refundable_at })
    }

    /// Refunds every closing lane whose grace period is over (closing the
    /// delegations it granted first); returns the lanes refunded.
    pub async fn refund_due(&self) -> Result<Vec<Pubkey>, ClientError> {
        let chain = self.chain()?;
        let wallet = self.wallet()?;
        let now = chain.clock().await?.unix_timestamp;
        let due = self.inner.ledger.with(|b| b.refundable(now));
        let mut refunded = Vec::new();
        for record in due {
            let keys = record.keys();
            let spent = match chain.channel(&record.lane).await? {
                // Closed meanwhile (the service closed it, or someone refunded).
                None => record.signed.saturating_add(record.granted_total()),
                Some(channel) => {
                    let mut spent = channel.settled;
                    let mut ixs = Vec::new();
                    for granted in &record.granted {
                        let address = pda::delegation(&keys.channel, &granted.delegate).0;
                        if let Some(d) = chain.anchor_account::<Delegation>(&address).await? {
                            spent = spent.saturating_add(d.settled);
                            ixs.push(instructions::close_delegation(
                                &keys,
                                &granted.delegate,
                                wallet.pubkey(),
                                d.payer,
                            ));
                        }
                    }
                    // Refunding needs no signature; closing a delegation, its closer's.
                    let signers: Vec<&TxSigner> = if ixs.is_empty() {
                        vec![]
                    } else {
                        vec![wallet.as_ref() as &TxSigner]
                    };
                    ixs.extend(transactions::refund(&keys));
                    self.ensure_sol("a refund after the grace period", SIGNATURE_FEE * 2)
                        .await?;
                    let signature = chain.send(&ixs, &signers).await?;
                    tracing::info!(lane = %record.lane, %signature, spent, "refunded after the grace period");
                    spent
                }
            };
            self.inner.ledger.with(|b| b.retire(&record.lane, spent));
            self.inner.ledger.save().await?;
            refunded.push(record.lane);
        }
        Ok(refunded)
    }
}
