//! Admission: whether a paid request may pass. Its credential is verified
//! against the lane's on-chain accounts, the lane against the service's
//! terms, and the charge goes through the meter into the store.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use http::HeaderMap;

use super::cache::{LaneCache, LookupError};
use super::config::Config;
use super::ledger::{Ledger, Refused};
use super::meter::{voucher_due, Accepted};
use super::metrics::SharedMetrics;
use super::payment::{Payment, Usage};
use super::rate_limit::RateLimiter;
use super::response::{refuse, unavailable, Refusal};
use super::session::keys::SessionKeys;
use super::settle::SettleHook;
use crate::headers::Credential;
use crate::lane::LaneAccounts;
use crate::manifest::{ErrorBody, ErrorCode, Manifest, Price};
use crate::session::SessionCredential;
use crate::store::{LaneQuery, LaneState};
use crate::voucher::SignedVoucher;

/// A paid request let through.
pub(crate) struct Admitted {
    pub(crate) payment: Payment,
    /// The lane's state before any voucher, for later charges on it.
    pub(crate) fresh: LaneState,
    /// The most the lane may pay in total.
    pub(crate) limit: u64,
}

/// The service's terms for a lane, and what admitting a request needs.
pub(crate) struct Admission {
    cache: Arc<LaneCache>,
    ledger: Ledger,
    settler: SettleHook,
    limiter: Option<RateLimiter>,
    /// Sent with every 402, so the payer can start over.
    manifest: Manifest,
    recipient: Pubkey,
    mints: HashSet<Pubkey>,
    min_deposit: u64,
    min_grace_period: u32,
    voucher_margin: Duration,
    credit: u64,
    /// When the service offers sessions.
    sessions: Option<Arc<SessionKeys>>,
    /// Where credential verifications are timed.
    metrics: SharedMetrics,
}

impl Admission {
    pub(crate) fn new(
        config: &Config,
        manifest: Manifest,
        cache: Arc<LaneCache>,
        ledger: Ledger,
        settler: SettleHook,
        sessions: Option<Arc<SessionKeys>>,
        metrics: SharedMetrics,
    ) -> Self {
        Self {
            cache,
            ledger,
            settler,
            limiter: config.rate_limit.map(RateLimiter::new),
            recipient: manifest.recipient,
            mints: manifest.mints.iter().map(|m| m.mint).collect(),
            manifest,
            min_deposit: config.min_deposit,
            min_grace_period: config.min_grace_period,
            voucher_margin: config.voucher_margin,
            credit: config.credit,
            sessions,
            metrics,
        }
    }

    /// Refusal with the SPEC's body; 402s carry the manifest.
    pub(crate) fn refuse(&self, body: impl Into<Box<ErrorBody>>) -> Refusal {
        refuse(&self.manifest, body)
    }

    /// A meter refusal for the payer, or a store failure as 503.
    pub(crate) fn refused(&self, refused: Refused) -> Refusal {
        match refused {
            Refused::Meter(body) => self.refuse(body),
            Refused::Store(error) => unavailable("cannot record the voucher", &error),
        }
    }

    /// Checks a paid request's credential (signed, or a session's) and
    /// charges the lane.
    pub(crate) async fn admit(
        &self,
        headers: &HeaderMap,
        price: Price,
    ) -> Result<Admitted, Refusal> {
        let session = SessionCredential::from_headers(headers)
            .map_err(|e| self.refuse(ErrorBody::new(e.code(), e.to_string())))?;
        match session {
            Some(credential) => self.admit_session(&credential, price).await,
            None => self.admit_signed(headers, price).await,
        }
    }

    async fn admit_signed(&self, headers: &HeaderMap, price: Price) -> Result<Admitted, Refusal> {
        let (accounts, signed) = self.verify(headers, false).await?;
        self.check_rate(&accounts).map_err(|e| self.refuse(e))?;
        let (seq, amount) = (signed.voucher.seq, signed.voucher.cumulative);
        let accepted = self
            .ledger
            .charge(
                accounts.fresh_state(),
                signed,
                price,
                accounts.limit(),
                self.credit,
            )
            .await
            .map_err(|e| self.refused(e))?;
        Ok(admitted(&accounts, (seq, amount), price, accepted))
    }

    /// A session request: its MAC instead of a signature, and its charge
    /// kept in memory (SPEC section 5, "Sessions").
    async fn admit_session(
        &self,
        credential: &SessionCredential,
        price: Price,
    ) -> Result<Admitted, Refusal> {
        let Some(keys) = &self.sessions else {
            return Err(self.refuse(voucher_due(
                credential.amount,
                None,
                "this service offers no sessions",
            )));
        };
        let accounts = self
            .checked_lane(&credential.lane, credential.amount)
            .await?;
        keys.check(credential, accounts.generation(), self.cache.now())
            .map_err(|e| self.refuse(e))?;
        self.check_rate(&accounts).map_err(|e| self.refuse(e))?;
        let request = (credential.seq, credential.amount);
        let accepted = self
            .ledger
            .unsigned(
                accounts.fresh_state(),
                request,
                price,
                accounts.limit(),
                self.credit,
            )
            .await
            .map_err(|e| self.refused(e))?;
        Ok(admitted(&accounts, request, price, accepted))
    }

    fn check_rate(&self, accounts: &LaneAccounts) -> Result<(), Box<ErrorBody>> {
        match &self.limiter {
            Some(limiter) if !limiter.allow(&accounts.address) => Err(Box::new(ErrorBody::new(
                ErrorCode::RateExceeded,
                "too many requests on this lane",
            ))),
            _ => Ok(()),
        }
    }

    /// Parses and verifies a credential against its lane; re-reads the lane
    /// once when the voucher asks for more than the cached lane can pay (a
    /// top-up the cache has not seen). `force` reads the lane from the chain.
    pub(crate) async fn verify(
        &self,
        headers: &HeaderMap,
        force: bool,
    ) -> Result<(Arc<LaneAccounts>, SignedVoucher), Refusal> {
        let credential = Credential::from_headers(headers)
            .map_err(|e| self.refuse(ErrorBody::new(e.code(), e.to_string())))?;
        let accounts = match force {
            true => self.lane(&credential.lane, true).await?,
            false => Some(
                self.checked_lane(&credential.lane, credential.cumulative)
                    .await?,
            ),
        };
        let Some(accounts) = accounts else {
            return Err(self.refuse(self.missing_lane(&credential.lane).await));
        };
        if force {
            self.check_lane(&accounts).map_err(|e| self.refuse(e))?;
        }
        let signed = self
            .metrics
            .verify(|| accounts.verify(&credential))
            .map_err(|e| self.refuse(ErrorBody::new(e.code(), e.to_string())))?;
        let margin = i64::try_from(self.voucher_margin.as_secs()).unwrap_or(i64::MAX);
        if signed
            .voucher
            .is_expired(self.cache.now().saturating_add(margin))
        {
            return Err(self.refuse(ErrorBody::new(
                ErrorCode::Expired,
                format!(
                    "the voucher expires at {}; it must stay valid {} s more",
                    signed.voucher.expires_at, margin
                ),
            )));
        }
        Ok((accounts, signed))
    }

    /// The lane a credential for `amount` names, checked against the
    /// service's terms; re-read once when `amount` is more than the cached
    /// lane can pay (a top-up the cache has not seen).
    async fn checked_lane(&self, lane: &Pubkey, amount: u64) -> Result<Arc<LaneAccounts>, Refusal> {
        let mut accounts = self.lane(lane, false).await?;
        if accounts
            .as_ref()
            .is_some_and(|cached| amount > cached.limit())
        {
            accounts = self.lane(lane, true).await?;
        }
        let Some(accounts) = accounts else {
            return Err(self.refuse(self.missing_lane(lane).await));
        };
        self.check_lane(&accounts).map_err(|e| self.refuse(e))?;
        Ok(accounts)
    }

    /// The lane from the cache, a failed read as its refusal.
    async fn lane(
        &self,
        address: &Pubkey,
        force: bool,
    ) -> Result<Option<Arc<LaneAccounts>>, Refusal> {
        self.cache.lane(address, force).await.map_err(|e| match e {
            LookupError::Busy => self.refuse(ErrorBody::new(
                ErrorCode::RateExceeded,
                "too many unknown lanes at once; retry shortly",
            )),
            LookupError::Chain(error) => unavailable("cannot read the lane from the chain", &error),
        })
    }

    /// The checks that need only the lane's accounts: does it pay us, in a
    /// mint we take, on terms we accept, and is it still open.
    fn check_lane(&self, accounts: &LaneAccounts) -> Result<(), Box<ErrorBody>> {
        let channel = &accounts.channel;
        if channel.recipient != self.recipient {
            return Err(Box::new(ErrorBody::new(
                ErrorCode::WrongChannel,
                format!("the lane pays {}, not this service", channel.recipient),
            )));
        }
        if !self.mints.contains(&channel.mint) {
            return Err(Box::new(ErrorBody::new(
                ErrorCode::WrongChannel,
                format!("mint {} is not accepted", channel.mint),
            )));
        }
        if channel.grace_period < self.min_grace_period {
            return Err(Box::new(ErrorBody::new(
                ErrorCode::WrongChannel,
                format!(
                    "grace period {} s is below the minimum {} s",
                    channel.grace_period, self.min_grace_period
                ),
            )));
        }
        if accounts.limit() < self.min_deposit {
            return Err(Box::new(
                ErrorBody::new(
                    ErrorCode::Underfunded,
                    format!(
                        "the lane can pay {}, below the minimum deposit {}",
                        accounts.limit(),
                        self.min_deposit
                    ),
                )
                .with_required(self.min_deposit),
            ));
        }
        if !accounts.status(self.cache.now()).is_open() {
            self.settler.closing(accounts.address);
            return Err(Box::new(ErrorBody::new(
                ErrorCode::Closed,
                "the lane is closing or closed",
            )));
        }
        Ok(())
    }

    /// Why a lane has no account on-chain: a channel closed cooperatively
    /// (possibly by another replica sharing the store) is `Closed`, anything
    /// else was never opened here.
    async fn missing_lane(&self, lane: &Pubkey) -> ErrorBody {
        let closed = match self.ledger.store().find(LaneQuery::Channel(*lane)).await {
            Ok(states) => states.iter().any(|s| s.id.lane == *lane && s.closed),
            Err(e) => {
                tracing::warn!(%lane, error = %e, "store lookup for a missing lane failed");
                false
            }
        };
        if closed {
            ErrorBody::new(ErrorCode::Closed, "the lane is closed")
        } else {
            ErrorBody::new(ErrorCode::NoChannel, format!("no AMP lane at {lane}"))
        }
    }
}

/// The request `accepted` let through on `accounts`, for a credential of
/// `(seq, amount)`.
fn admitted(
    accounts: &LaneAccounts,
    (seq, amount): (u64, u64),
    price: Price,
    accepted: Accepted,
) -> Admitted {
    Admitted {
        payment: Payment {
            lane: accounts.address,
            channel: accounts.channel_address,
            delegate: accounts.delegate(),
            funder: accounts.channel.funder,
            mint: accounts.channel.mint,
            seq,
            amount,
            price,
            owed: accepted.owed,
            allowance: accepted.allowance,
            usage: Usage::default(),
        },
        fresh: accounts.fresh_state(),
        limit: accounts.limit(),
    }
}
