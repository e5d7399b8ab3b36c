//! Sponsored opening: the service fronts the rent and fee of an agent's
//! `open` (and the fee of its `top_up`) so that an agent holding only tokens
//! can pay. The wire documents are in [`crate::sponsor`]; here the endpoint
//! runs one way:
//!
//! ```text
//! body ─▶ check (pure: shape, terms) ─▶ book (replay, limits) ─▶ simulate ─▶ sign, send ─▶ answer
//! ```
//!
//! Every refusal happens before the service signs anything. Limits are
//! checked and taken under one lock, so concurrent requests cannot pass a
//! limit together.

mod book;
mod check;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use amp_channel::state::Channel;
use anchor_lang::prelude::Pubkey;
use anchor_lang::{AccountDeserialize, Discriminator};
use bytes::Bytes;
use http::{Response, StatusCode};
use solana_keypair::Keypair;
use solana_signer::Signer;
use solana_transaction::Transaction;
use solana_transaction_error::TransactionError;

pub use book::SponsorStatus;
use book::{Book, Limits};
use check::{Parsed, OPEN_PAYER_SLOT};

use super::config::SponsorConfig;
use super::response::{json, to_json, unavailable, AmpBody};
use crate::chain::{Chain, ChainError};
use crate::instructions::ChannelKeys;
use crate::manifest::{ErrorBody, ErrorCode};
use crate::sponsor::{
    open_rent, SponsorAnswer, SponsorRequest, Sponsorship, LAMPORTS_PER_SIGNATURE, VAULT_LEN_BOUND,
};

/// Where a Channel account holds its rent payer: the last field, after
/// the discriminator and 192 bytes of earlier fields (checked by a test).
pub(crate) const CHANNEL_PAYER_OFFSET: usize = 200;

/// The endpoint's state: terms, limits and the wallet that co-signs.
pub(crate) struct Sponsor {
    chain: Arc<dyn Chain>,
    wallet: Arc<Keypair>,
    sponsorship: Sponsorship,
    token_programs: HashMap<Pubkey, Pubkey>,
    book: Mutex<Book>,
    /// Held from the limit check until the request is taken (or refused):
    /// concurrent requests see each other's opens.
    admitting: tokio::sync::Mutex<()>,
}

/// Which transaction the agent posted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Open,
    TopUp,
}

type Refused = Box<ErrorBody>;

impl Sponsor {
    /// The sponsorship `config` describes for a service whose accepted mints
    /// are `token_programs`' keys (sponsoring `min_deposit` and
    /// `min_grace_period` upwards, as the manifest requires).
    pub(crate) fn new(
        chain: Arc<dyn Chain>,
        wallet: Arc<Keypair>,
        config: &SponsorConfig,
        min_deposit: u64,
        min_grace_period: u32,
        token_programs: HashMap<Pubkey, Pubkey>,
    ) -> Self {
        let mut mints: Vec<Pubkey> = if config.mints.is_empty() {
            token_programs.keys().copied().collect()
        } else {
            config
                .mints
                .iter()
                .filter(|mint| token_programs.contains_key(mint))
                .copied()
                .collect()
        };
        mints.sort();
        let sponsorship = Sponsorship {
            payer: wallet.pubkey(),
            mints,
            min_deposit: min_deposit.max(1),
            max_deposit: config.max_deposit,
            min_grace_period: min_grace_period.max(amp_channel::constants::MIN_GRACE_PERIOD),
            max_grace_period: config.max_grace_period,
            max_compute_unit_price: config.max_compute_unit_price,
            max_compute_unit_limit: config.max_compute_unit_limit,
            top_up: config.top_up,
        };
        let limits = Limits {
            funder_opens_per_minute: config.funder_opens_per_minute,
            opens_per_minute: config.opens_per_minute,
            funder_exposure: config.funder_exposure,
            exposure: config.exposure,
        };
        Self {
            chain,
            wallet,
            sponsorship,
            token_programs,
            book: Mutex::new(Book::new(limits)),
            admitting: tokio::sync::Mutex::new(()),
        }
    }

    /// What the manifest advertises.
    pub(crate) fn sponsorship(&self) -> &Sponsorship {
        &self.sponsorship
    }

    /// Finds the channels whose rent this service fronted before it
    /// (re)started, so that the limits count them: the Channel accounts
    /// whose recorded payer is the service's wallet. A chain that cannot
    /// list accounts leaves the book empty, and says so.
    pub(crate) async fn rebuild(&self) -> Result<(), ChainError> {
        let filters = [
            (0, Channel::DISCRIMINATOR.to_vec()),
            (
                CHANNEL_PAYER_OFFSET,
                self.sponsorship.payer.to_bytes().to_vec(),
            ),
        ];
        let found = match self
            .chain
            .program_accounts(&amp_channel::ID, &filters)
            .await
        {
            Ok(found) => found,
            Err(ChainError::Unsupported { .. }) => {
                tracing::warn!("this chain cannot list accounts: sponsored channels from before this start are not counted");
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        for (address, account) in found {
            let Ok(channel) = Channel::try_deserialize(&mut account.data.as_slice()) else {
                continue;
            };
            // The service's own channels (it pays other services) fronted
            // nothing for anyone.
            if channel.funder == self.sponsorship.payer {
                continue;
            }
            let vault = crate::pda::vault(&address).0;
            let vault_lamports = self.chain.account(&vault).await?.map_or(0, |a| a.lamports);
            let rent = account.lamports.saturating_add(vault_lamports);
            self.book().fronted_before(address, channel.funder, rent);
        }
        let status = self.status();
        tracing::info!(
            channels = status.channels,
            exposure = status.exposure,
            "sponsored channels still open"
        );
        Ok(())
    }

    /// `channel` closed (cooperatively, through this service): if its rent
    /// was fronted here, it is back.
    pub(crate) fn released(&self, channel: &Pubkey) {
        self.book().closed(channel);
    }

    pub(crate) fn status(&self) -> SponsorStatus {
        self.book().status()
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        // The book is plain data: a panic elsewhere cannot leave it torn.
        self.book
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Answers a posted `open` or `top_up` transaction.
    pub(crate) async fn answer(&self, kind: Kind, body: Option<Bytes>) -> Response<AmpBody> {
        let outcome = match decode(body) {
            Ok(tx) => match kind {
                Kind::Open => self.open(tx).await,
                Kind::TopUp => self.top_up(tx).await,
            },
            Err(refused) => Err(Outcome::Refused(refused)),
        };
        match outcome {
            Ok(answer) => json(StatusCode::OK, to_json(&answer)),
            Err(Outcome::Refused(body)) => {
                self.book().refused();
                tracing::info!(code = %body.error, message = %body.message, "sponsored transaction refused");
                json(body.status(), to_json(&*body))
            }
            Err(Outcome::Unavailable(what, error)) => unavailable(what, &error),
        }
    }

    async fn open(&self, mut tx: Transaction) -> Result<SponsorAnswer, Outcome> {
        let parsed = check::parse(&tx, &self.sponsorship, Some(OPEN_PAYER_SLOT))?;
        let open = check::open(
            &parsed,
            &self.sponsorship,
            &self.sponsorship.payer,
            |mint| self.token_programs.get(mint).copied(),
        )?;
        let channel = open.keys.channel;
        // An upper bound until the open lands, whatever the token program.
        let estimate = open_rent(VAULT_LEN_BOUND);
        {
            let _admitting = self.admitting.lock().await;
            self.admit(&tx, &parsed, estimate).await?;
            self.simulate(&tx).await?;
            let now = Instant::now();
            self.book()
                .take_open(tx.signatures[1], parsed.funder, channel, estimate, now);
        }
        let fee = fee(&parsed);
        match self.sign_and_send(&mut tx).await {
            Ok(signature) => {
                let rent = self.rent_of(&open.keys).await.unwrap_or(estimate);
                let exposure = {
                    let mut book = self.book();
                    book.landed(&channel, rent, fee);
                    book.exposure()
                };
                tracing::info!(%channel, funder = %parsed.funder, rent, fee, exposure, %signature, "sponsored an open");
                Ok(SponsorAnswer {
                    channel,
                    signature: signature.to_string(),
                    rent,
                })
            }
            Err(error) => {
                if error.transaction_error().is_some() {
                    // Refused on-chain: nothing was fronted.
                    self.book().failed(&channel);
                }
                Err(Outcome::Unavailable(
                    "the sponsored open did not land",
                    error.to_string(),
                ))
            }
        }
    }

    async fn top_up(&self, mut tx: Transaction) -> Result<SponsorAnswer, Outcome> {
        let parsed = check::parse(&tx, &self.sponsorship, None)?;
        if !self.sponsorship.top_up {
            return Err(terms("top-ups are not sponsored").into());
        }
        let top_up = check::top_up(&parsed)?;
        let channel = self
            .chain
            .channel(&top_up.channel)
            .await
            .map_err(|e| Outcome::Unavailable("reading the channel failed", e.to_string()))?
            .ok_or_else(|| terms(format!("no channel at {}", top_up.channel)))?;
        if channel.recipient != self.sponsorship.payer
            || channel.funder != parsed.funder
            || !self.sponsorship.mints.contains(&channel.mint)
        {
            return Err(
                terms("only the funder's channels to this service, in a sponsored mint").into(),
            );
        }
        let token_program = self
            .token_programs
            .get(&channel.mint)
            .copied()
            .ok_or_else(|| terms("the channel's mint is not accepted"))?;
        let keys = ChannelKeys::new(
            channel.funder,
            channel.recipient,
            channel.nonce,
            channel.mint,
            token_program,
        )
        .with_payer(channel.payer);
        check::top_up_accounts(&parsed, &top_up, &keys)?;
        {
            let _admitting = self.admitting.lock().await;
            self.admit(&tx, &parsed, 0).await?;
            self.simulate(&tx).await?;
            self.book()
                .take_top_up(tx.signatures[1], parsed.funder, Instant::now());
        }
        let fee = fee(&parsed);
        let signature = self.sign_and_send(&mut tx).await.map_err(|error| {
            Outcome::Unavailable("the sponsored top-up did not land", error.to_string())
        })?;
        self.book().topped_up(fee);
        tracing::info!(channel = %top_up.channel, amount = top_up.amount, fee, %signature, "sponsored a top-up");
        Ok(SponsorAnswer {
            channel: top_up.channel,
            signature: signature.to_string(),
            rent: 0,
        })
    }

    /// Replay and limits. Before refusing on exposure, the channels counted
    /// are checked against the chain: closed ones have returned their rent.
    async fn admit(&self, tx: &Transaction, parsed: &Parsed, rent: u64) -> Result<(), Outcome> {
        let now = Instant::now();
        if self.book().is_replay(&tx.signatures[1], now) {
            return Err(ErrorBody::new(
                ErrorCode::SponsorReplay,
                "this transaction was posted before",
            )
            .into());
        }
        let over = self.book().over(&parsed.funder, rent, now);
        let Some(over) = over else { return Ok(()) };
        let scope = match over.code() {
            ErrorCode::SponsorFunderExposure => Some(&parsed.funder),
            ErrorCode::SponsorExposure => None,
            code => return Err(limit(code).into()),
        };
        let counted = self.book().channels_of(scope);
        for channel in counted {
            match self.chain.account(&channel).await {
                Ok(None) => self.book().closed(&channel),
                Ok(Some(_)) => {}
                Err(e) => {
                    return Err(Outcome::Unavailable(
                        "reading a sponsored channel failed",
                        e.to_string(),
                    ))
                }
            }
        }
        match self.book().over(&parsed.funder, rent, now) {
            None => Ok(()),
            Some(over) => Err(limit(over.code()).into()),
        }
    }

    /// The transaction as the chain would run it, before anything is signed.
    async fn simulate(&self, tx: &Transaction) -> Result<(), Outcome> {
        match self.chain.simulate_transaction(tx).await {
            Ok(()) => Ok(()),
            Err(error) => match error.transaction_error() {
                Some(TransactionError::BlockhashNotFound) => Err(ErrorBody::new(
                    ErrorCode::SponsorStale,
                    "the blockhash is not recent: build the transaction again",
                )
                .into()),
                Some(_) => Err(ErrorBody::new(
                    ErrorCode::SponsorTransaction,
                    format!("the transaction would fail: {error}"),
                )
                .into()),
                None => Err(Outcome::Unavailable(
                    "simulating the transaction failed",
                    error.to_string(),
                )),
            },
        }
    }

    async fn sign_and_send(
        &self,
        tx: &mut Transaction,
    ) -> Result<solana_signature::Signature, ChainError> {
        let blockhash = tx.message.recent_blockhash;
        tx.try_partial_sign(&[self.wallet.as_ref()], blockhash)
            .map_err(|e| ChainError::Bank(format!("co-signing: {e}")))?;
        self.chain.send_transaction(tx).await
    }

    /// Lamports the new Channel and Vault hold: the rent fronted.
    async fn rent_of(&self, keys: &ChannelKeys) -> Option<u64> {
        let channel = self.chain.account(&keys.channel).await.ok()??;
        let vault = self.chain.account(&keys.vault).await.ok()??;
        channel.lamports.checked_add(vault.lamports)
    }
}

/// Why a request got no answer: a refusal (4xx, nothing signed) or the
/// service's own trouble (503).
enum Outcome {
    Refused(Refused),
    Unavailable(&'static str, String),
}

impl From<Refused> for Outcome {
    fn from(body: Refused) -> Self {
        Outcome::Refused(body)
    }
}

impl From<ErrorBody> for Outcome {
    fn from(body: ErrorBody) -> Self {
        Outcome::Refused(Box::new(body))
    }
}

fn terms(message: impl Into<String>) -> Refused {
    Box::new(ErrorBody::new(ErrorCode::SponsorTerms, message))
}

fn limit(code: ErrorCode) -> ErrorBody {
    let message = match code {
        ErrorCode::SponsorFunderRate => "this funder's sponsored opens per minute are used up",
        ErrorCode::SponsorFunderExposure => {
            "the rent fronted for this funder's channels is at its cap: close one first"
        }
        ErrorCode::SponsorRate => "the service's sponsored opens per minute are used up",
        _ => "the rent the service has fronted is at its cap",
    };
    ErrorBody::new(code, message)
}

fn decode(body: Option<Bytes>) -> Result<Transaction, Refused> {
    let malformed = || {
        Box::new(ErrorBody::new(
            ErrorCode::SponsorTransaction,
            "the body must be {\"transaction\": \"<base64 wire transaction>\"}, at most one packet",
        ))
    };
    let body = body.ok_or_else(malformed)?;
    let request: SponsorRequest = serde_json::from_slice(&body).map_err(|_| malformed())?;
    request.decode().ok_or_else(malformed)
}

/// What the service pays to land the transaction (it has two signatures)
/// and the priority fee its compute budget sets.
fn fee(parsed: &Parsed) -> u64 {
    (2 * LAMPORTS_PER_SIGNATURE).saturating_add(parsed.budget.priority_fee())
}

#[cfg(test)]
mod tests {
    use super::*;
    use anchor_lang::AccountSerialize;

    #[test]
    fn the_payer_offset_is_where_a_channel_holds_its_payer() {
        let payer = Pubkey::new_from_array([7; 32]);
        let channel = Channel {
            funder: Pubkey::new_from_array([1; 32]),
            recipient: Pubkey::new_from_array([2; 32]),
            mint: Pubkey::new_from_array([3; 32]),
            authorized_signer: Pubkey::new_from_array([1; 32]),
            nonce: u64::MAX,
            generation: u64::MAX,
            deposited: u64::MAX,
            settled: u64::MAX,
            delegated: u64::MAX,
            delegations: u16::MAX,
            close_requested_at: -1,
            expires_at: -1,
            grace_period: u32::MAX,
            bump: 255,
            vault_bump: 255,
            payer,
        };
        let mut data = Vec::new();
        channel.try_serialize(&mut data).unwrap();
        assert_eq!(data.len(), amp_channel::constants::MAX_CHANNEL_ACCOUNT_LEN);
        assert_eq!(&data[CHANNEL_PAYER_OFFSET..], payer.as_ref());
    }
}
