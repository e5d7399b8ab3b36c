//! Lanes: finding the one paying a service or opening one on its
//! manifest's terms, resolving opens a crash interrupted, learning that a
//! lane is gone, and keeping lanes funded (top-ups, limits read back from
//! the chain).

use std::sync::Arc;

use amp_channel::constants::{MAX_GRACE_PERIOD, MIN_GRACE_PERIOD};
use amp_channel::instructions::OpenArgs;
use amp_channel::state::LaneStatus as ChainLaneStatus;
use anchor_lang::prelude::Pubkey;
use solana_keypair::Keypair;
use solana_signer::Signer;

use super::agent::{unix_now, AmpClient};
use super::errors::ClientError;
use super::file::{LaneRecord, LaneStatus, OPENING_WINDOW};
use super::spend::{Approval, ApprovalKind};
use super::sponsor::{self, SendFailure};
use crate::chain::{Chain, ChainExt, TxSigner};
use crate::manifest::{Manifest, MANIFEST_PATH};
use crate::sponsor as sponsor_wire;
use crate::{pda, transactions};

impl AmpClient {
    /// The open lane of `service`, opening one (once, however many requests
    /// ask at the same time) when there is none.
    pub(super) async fn lane_for(
        &self,
        service: &str,
        manifest: Option<Manifest>,
    ) -> Result<Pubkey, ClientError> {
        let open = self.inner.ledger.with(|b| {
            let lane = b.open_lane(service)?;
            Some((lane, b.lane(&lane)?.record.recipient))
        });
        // Before any call to a service the policy does not allow (a lane
        // of an earlier run with a looser policy included).
        self.inner
            .policy
            .services
            .check(service, open.as_ref().map(|(_, recipient)| recipient))
            .map_err(|reason| ClientError::NotAllowed {
                service: service.to_owned(),
                reason,
            })?;
        if let Some((lane, _)) = open {
            return Ok(lane);
        }
        let gate = {
            let mut services = self
                .inner
                .services
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            Arc::clone(services.entry(service.to_owned()).or_default())
        };
        let _turn = gate.lock().await;
        if let Some(lane) = self.inner.ledger.with(|b| b.open_lane(service)) {
            return Ok(lane);
        }
        let manifest = match manifest {
            Some(manifest) => manifest,
            None => self.discover(service).await?,
        };
        self.open(service, manifest).await
    }

    /// Reads the service's manifest.
    async fn discover(&self, service: &str) -> Result<Manifest, ClientError> {
        let discovery = |reason: String| ClientError::Discovery {
            service: service.to_owned(),
            reason,
        };
        let response = self
            .inner
            .http
            .get(format!("{service}{MANIFEST_PATH}"))
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(discovery(format!(
                "{MANIFEST_PATH} answered {}",
                response.status()
            )));
        }
        let manifest: Manifest = response
            .json()
            .await
            .map_err(|e| discovery(e.to_string()))?;
        tracing::debug!(%service, recipient = %manifest.recipient, "discovered the manifest");
        Ok(manifest)
    }

    /// The deposit a new channel (or a top-up) gets under the policy, with
    /// the budget as it stands.
    fn deposit_for(&self, service: &str, manifest: &Manifest) -> Result<u64, ClientError> {
        let available = self.inner.ledger.with(|b| b.available());
        self.inner.policy.deposit_for(service, manifest, available)
    }

    /// Opens a channel to the service on terms chosen from its manifest and the policy.
    pub(super) async fn open(
        &self,
        service: &str,
        manifest: Manifest,
    ) -> Result<Pubkey, ClientError> {
        let chain = self.chain()?.clone();
        let wallet = self.wallet()?.clone();
        self.inner.policy.check_manifest(service, &manifest)?;
        let policy = &self.inner.policy;
        let deposit = self.deposit_for(service, &manifest)?;
        let _depositing = self
            .deposit_allowed(ApprovalKind::Open, service, deposit, None)
            .await?;
        let grace_period = policy
            .grace_period
            .max(manifest.min_grace_period)
            .clamp(MIN_GRACE_PERIOD, MAX_GRACE_PERIOD);
        let mint = chain.mint(&policy.mint).await?;
        let refuse = |reason: String| ClientError::Terms {
            service: service.to_owned(),
            reason,
        };
        mint.check_supported().map_err(refuse)?;
        if let Some(freeze_authority) = mint.freeze_authority {
            // A trust assumption of the channel (SPEC section 2): say it.
            tracing::info!(
                %service, mint = %mint.address, %freeze_authority,
                "the mint's freeze authority can freeze the channel's vault"
            );
        }
        let token_program = mint.token_program;
        let funder = wallet.pubkey();
        let signer = self.signer();
        // An opening an earlier attempt (or a run killed mid-open) left
        // unresolved is tried again with the same nonce, hence the same
        // channel address: whichever transaction lands first creates it, the
        // other fails, and the agent never holds two channels for one.
        let earlier = self
            .inner
            .ledger
            .with(|b| b.opening_nonce(service, &manifest.recipient));
        let nonce = earlier.unwrap_or_else(random_nonce);
        let args = OpenArgs {
            recipient: manifest.recipient,
            nonce,
            deposit,
            grace_period,
            expires_at: 0,
            authorized_signer: (signer != funder).then_some(signer),
        };
        transactions::check_open(funder, policy.mint, &args, unix_now())
            .map_err(|e| refuse(e.to_string()))?;
        let funder_token = pda::associated_token(&funder, &policy.mint, &token_program);
        check_depositor(chain.as_ref(), &funder_token).await?;
        let cost = sponsor::open_cost(&token_program);
        let sponsorship = self
            .sponsorship_for(&manifest, Some((deposit, grace_period)), cost)
            .await?;
        // Alone, the agent pays the rent and fee, and creates the token
        // accounts settling and refunding need; a sponsor takes exactly the
        // open (both token accounts exist: the funder's holds the deposit,
        // the service's is made when its paywall starts).
        let (keys, ixs) = match &sponsorship {
            None => {
                self.ensure_sol("opening a channel", cost).await?;
                let options = transactions::OpenOptions {
                    create_token_accounts: Some(chain.fee_payer()),
                    ..Default::default()
                };
                transactions::open(funder, policy.mint, token_program, args, options)
            }
            Some(sponsorship) => {
                let options = transactions::OpenOptions {
                    payer: Some(sponsorship.payer),
                    ..Default::default()
                };
                transactions::open(funder, policy.mint, token_program, args, options)
            }
        };
        // Recorded before sending: a crash between the two leaves a record
        // that the next start resolves against the chain, never a lost channel.
        let record = LaneRecord {
            service: service.to_owned(),
            lane: keys.channel,
            funder,
            recipient: manifest.recipient,
            mint: policy.mint,
            token_program,
            nonce: args.nonce,
            delegate: None,
            payer: sponsorship.as_ref().map(|s| s.payer),
            generation: 0,
            limit: 0,
            deposited: 0,
            grace_period,
            status: LaneStatus::Opening,
            opening_since: unix_now(),
            seq: 0,
            signed: 0,
            owed: 0,
            granted: vec![],
            manifest,
        };
        self.inner.ledger.with(|b| b.insert(record));
        self.inner.ledger.save().await?;
        let sent = match &sponsorship {
            None => chain
                .send(&ixs, &[wallet.as_ref() as &TxSigner])
                .await
                .map(|signature| signature.to_string())
                .map_err(SendFailure::from),
            Some(sponsorship) => {
                let (blockhash, _) = chain.latest_blockhash().await?;
                let budget = self.sponsored_budget(sponsorship, &ixs).await?;
                let tx = sponsor_wire::open_transaction(
                    wallet.as_ref(),
                    sponsorship,
                    policy.mint,
                    token_program,
                    args,
                    &budget,
                    blockhash,
                )
                .map_err(|e| ClientError::Config(format!("signing the open: {e}")))?
                .1;
                self.post_sponsored(service, sponsor_wire::OPEN_PATH, &tx)
                    .await
                    .map(|answer| answer.signature)
            }
        };
        match sent {
            Ok(signature) => {
                let sponsor = sponsorship.as_ref().map(|s| s.payer);
                tracing::info!(%service, channel = %keys.channel, deposit, grace_period, %signature, ?sponsor, "opened a channel")
            }
            Err(SendFailure {
                error,
                unknown_outcome,
            }) => {
                // The channel may exist all the same: this transaction's
                // outcome is unknown, or an earlier one with this nonce landed
                // (and this one failed on the existing account). An earlier
                // one may also be landing right now, seen by the preflight
                // before reads at our commitment see it: wait for it a little.
                let attempts = if earlier.is_some() {
                    EARLIER_OPEN_POLLS
                } else {
                    1
                };
                for attempt in 0..attempts {
                    if attempt > 0 {
                        tokio::time::sleep(EARLIER_OPEN_POLL).await;
                    }
                    self.resolve_opening(&keys.channel, false).await?;
                    if let Some(lane) = self.inner.ledger.with(|b| b.open_lane(service)) {
                        tracing::info!(%service, channel = %keys.channel, "the channel of an earlier opening is there; using it");
                        return Ok(lane);
                    }
                }
                if unknown_outcome || earlier.is_some() {
                    // Unknown outcome (or an earlier attempt still in
                    // flight): the record stays, and the next attempt
                    // reuses its nonce.
                    tracing::warn!(%service, channel = %keys.channel, %error, "open not confirmed");
                } else {
                    self.inner.ledger.with(|b| b.forget(&keys.channel));
                    self.inner.ledger.save().await?;
                }
                return Err(error);
            }
        }
        self.resolve_opening(&keys.channel, true).await?;
        self.inner
            .ledger
            .with(|b| b.open_lane(service))
            .ok_or_else(|| {
                ClientError::Config(format!(
                    "channel {} not found after opening it",
                    keys.channel
                ))
            })
    }

    /// Settles a lane recorded as opening against the chain: open if the
    /// channel is there, forgotten if not.
    ///
    /// Right after an unconfirmed open (`forget_missing` false) a missing
    /// channel may still land, so the record stays until a later start.
    pub(super) async fn resolve_opening(
        &self,
        lane: &Pubkey,
        forget_missing: bool,
    ) -> Result<(), ClientError> {
        let chain = self.chain()?;
        let record = self.record(lane)?;
        match chain.channel(lane).await? {
            Some(channel)
                if channel.funder == record.funder && channel.recipient == record.recipient =>
            {
                self.inner.ledger.with(|b| b.mark_open(lane, &channel));
            }
            _ if !forget_missing => return Ok(()),
            // Sent recently: it may still land (see `resolve_openings`).
            _ if unix_now().saturating_sub(record.opening_since) < OPENING_WINDOW => return Ok(()),
            _ => {
                tracing::info!(%lane, "an interrupted open did not land; forgetting it");
                self.inner.ledger.with(|b| b.forget(lane));
            }
        }
        self.inner.ledger.save().await?;
        Ok(())
    }

    /// Resolves every lane left opening by a previous run: those whose
    /// channel is there become open; those sent longer ago than
    /// [`OPENING_WINDOW`] and still missing are forgotten. A recent one stays
    /// recorded, since its transaction may still land (a run killed right
    /// after sending it); the next opening for its service reuses its nonce.
    pub(super) async fn resolve_openings(&self) -> Result<(), ClientError> {
        if self.inner.chain.is_none() {
            return Ok(());
        }
        let opening = self.inner.ledger.with(|b| b.opening());
        for lane in opening {
            self.resolve_opening(&lane, true).await?;
        }
        Ok(())
    }

    /// The server refused our lane as absent or closing: learn what the chain says.
    pub(super) async fn lane_gone(&self, lane: &Pubkey) -> Result<(), ClientError> {
        let chain = self.chain()?;
        match chain.channel(lane).await? {
            Some(channel) => {
                let now = chain.clock().await?.unix_timestamp;
                let refundable_at = match channel.status(now) {
                    ChainLaneStatus::Closing { refundable_at } => refundable_at,
                    ChainLaneStatus::Refundable => now,
                    ChainLaneStatus::Open => {
                        return Err(ClientError::Config(format!(
                            "the service refused lane {lane} as gone, but it is open on this client's chain"
                        )))
                    }
                };
                self.inner
                    .ledger
                    .with(|b| b.mark_closing(lane, refundable_at));
            }
            None => {
                self.inner.ledger.with(|b| b.retire_signed(lane));
            }
        }
        self.inner.ledger.save().await?;
        Ok(())
    }

    /// Re-reads an own lane's limit from the chain.
    pub(super) async fn refresh_limit(&self, lane: &Pubkey) -> Result<(), ClientError> {
        if !self.is_own(lane) {
            return Ok(());
        }
        let chain = self.chain()?;
        if let Some(channel) = chain.channel(lane).await? {
            self.inner
                .ledger
                .with(|b| b.refresh_funds(lane, channel.own_lane_limit(), channel.deposited));
        }
        Ok(())
    }

    /// Adds at least `shortfall` to an own lane's deposit (one top-up per
    /// lane at a time; a top-up that another request just made counts).
    pub(super) async fn top_up(&self, lane: &Pubkey, shortfall: u64) -> Result<(), ClientError> {
        let record = self.record(lane)?;
        let exhausted = || ClientError::LaneExhausted {
            lane: *lane,
            required: record.limit.saturating_add(shortfall),
            limit: record.limit,
        };
        if record.delegate.is_some() || self.inner.chain.is_none() || self.inner.wallet.is_none() {
            return Err(exhausted());
        }
        let gate = {
            let mut top_ups = self.inner.top_ups.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(top_ups.entry(*lane).or_default())
        };
        let _turn = gate.lock().await;
        let target = record.limit.saturating_add(shortfall);
        let current = self.record(lane)?;
        if current.limit >= target {
            return Ok(());
        }
        let wanted = match self.inner.policy.top_up_amount {
            Some(amount) => amount,
            None => self.deposit_for(&current.service, &current.manifest)?,
        };
        let needed = target - current.limit;
        let room = self
            .inner
            .policy
            .max_deposit
            .saturating_sub(current.deposited);
        let amount = wanted.max(needed).min(room);
        if amount < needed {
            return Err(exhausted());
        }
        let _depositing = self
            .deposit_allowed(ApprovalKind::TopUp, &current.service, amount, Some(*lane))
            .await?;
        self.send_top_up(&current, amount).await
    }

    /// Asks the approval hook, when `amount` reaches its threshold.
    pub(super) async fn approve(
        &self,
        kind: ApprovalKind,
        service: &str,
        amount: u64,
        lane: Option<Pubkey>,
    ) -> Result<(), ClientError> {
        let Some((threshold, hook)) = &self.inner.approval else {
            return Ok(());
        };
        if amount == 0 || amount < *threshold {
            return Ok(());
        }
        let question = Approval {
            kind,
            service: service.to_owned(),
            amount,
            lane,
        };
        if hook(question).await {
            return Ok(());
        }
        tracing::warn!(%service, %kind, amount, "not approved");
        Err(ClientError::NotApproved {
            kind,
            service: service.to_owned(),
            amount,
        })
    }

    /// Checks a deposit of `amount` against the policy's cap on what the
    /// agent's channels hold at once, then asks for approval. While a cap
    /// is set, the returned guard keeps other deposits waiting until this
    /// one is recorded.
    async fn deposit_allowed(
        &self,
        kind: ApprovalKind,
        service: &str,
        amount: u64,
        lane: Option<Pubkey>,
    ) -> Result<Option<tokio::sync::MutexGuard<'_, ()>>, ClientError> {
        let guard = match self.inner.policy.max_in_channels {
            None => None,
            Some(max) => {
                let guard = self.inner.depositing.lock().await;
                let held = self.inner.ledger.with(|b| b.in_channels());
                if held.saturating_add(amount) > max {
                    return Err(ClientError::ChannelsFull {
                        service: service.to_owned(),
                        amount,
                        held,
                        max,
                    });
                }
                Some(guard)
            }
        };
        self.approve(kind, service, amount, lane).await?;
        Ok(guard)
    }

    async fn send_top_up(&self, record: &LaneRecord, amount: u64) -> Result<(), ClientError> {
        let chain = self.chain()?;
        let wallet = self.wallet()?;
        let keys = record.keys();
        check_depositor(chain.as_ref(), &transactions::funder_token(&keys)).await?;
        let sponsorship = self
            .sponsorship_for(&record.manifest, None, sponsor::SIGNATURE_FEE)
            .await?;
        let signature = match sponsorship {
            None => {
                self.ensure_sol("topping up a channel", sponsor::SIGNATURE_FEE)
                    .await?;
                chain
                    .send(
                        &transactions::top_up(&keys, amount),
                        &[wallet.as_ref() as &TxSigner],
                    )
                    .await?
                    .to_string()
            }
            Some(sponsorship) => {
                let (blockhash, _) = chain.latest_blockhash().await?;
                let budget = self
                    .sponsored_budget(&sponsorship, &transactions::top_up(&keys, amount))
                    .await?;
                let tx = sponsor_wire::top_up_transaction(
                    wallet.as_ref(),
                    &sponsorship,
                    &keys,
                    amount,
                    &budget,
                    blockhash,
                )
                .map_err(|e| ClientError::Config(format!("signing the top-up: {e}")))?;
                self.post_sponsored(&record.service, sponsor_wire::TOP_UP_PATH, &tx)
                    .await
                    .map_err(|failure| failure.error)?
                    .signature
            }
        };
        let channel = chain.channel(&keys.channel).await?;
        let (limit, deposited) = channel.map_or(
            (
                record.limit.saturating_add(amount),
                record.deposited.saturating_add(amount),
            ),
            |c| (c.own_lane_limit(), c.deposited),
        );
        self.inner
            .ledger
            .with(|b| b.topped_up(&record.lane, limit, deposited));
        self.inner.ledger.save().await?;
        tracing::info!(lane = %record.lane, amount, limit, %signature, "topped up");
        Ok(())
    }
    /// Makes sure the lane can pay `limit` in total (a service's minimum).
    pub(super) async fn make_limit(&self, lane: &Pubkey, limit: u64) -> Result<(), ClientError> {
        let current = self.record(lane)?.limit;
        if current >= limit {
            return self.refresh_limit(lane).await;
        }
        self.top_up(lane, limit - current).await
    }

    /// Makes sure the lane can pay `room` more than it owes, topping it up
    /// now if needed (a stream about to use it).
    pub(super) async fn make_room(&self, lane: &Pubkey, room: u64) -> Result<(), ClientError> {
        let (limit, owed) = self.inner.ledger.with(|b| {
            b.lane(lane)
                .map_or((0, 0), |l| (l.record.limit, l.record.owed))
        });
        let free = limit.saturating_sub(owed);
        if free >= room {
            return Ok(());
        }
        self.top_up(lane, room - free).await
    }

    /// Tops an own lane up in the background once it can pay less than the
    /// policy's threshold, if the budget could spend more than it holds.
    pub(super) fn maybe_top_up(&self, lane: Pubkey) {
        let policy = &self.inner.policy;
        if self.inner.chain.is_none() || self.inner.wallet.is_none() {
            return;
        }
        let plan = self.inner.ledger.with(|b| {
            let available = b.available();
            let l = b.lane(&lane)?;
            if l.record.delegate.is_some() || l.record.status != LaneStatus::Open {
                return None;
            }
            let room = l.record.limit.saturating_sub(l.record.owed);
            let threshold = policy.top_up_below.unwrap_or(l.record.limit / 4);
            // What the budget still lets this lane sign, beyond what it owes.
            let spendable = available
                .saturating_add(l.record.signed)
                .saturating_sub(l.record.owed);
            (room < threshold && spendable > room).then(|| (l.record.clone(), spendable - room))
        });
        let Some((record, useful)) = plan else {
            return;
        };
        let gate = {
            let mut top_ups = self.inner.top_ups.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(top_ups.entry(lane).or_default())
        };
        let client = self.clone();
        tokio::spawn(async move {
            let Ok(_turn) = gate.try_lock() else {
                return; // one is running
            };
            let wanted = match client.inner.policy.top_up_amount {
                Some(amount) => Ok(amount),
                None => client.deposit_for(&record.service, &record.manifest),
            };
            let room = client
                .inner
                .policy
                .max_deposit
                .saturating_sub(record.deposited);
            let amount = match wanted {
                Ok(wanted) => wanted.min(useful).min(room),
                Err(_) => return,
            };
            if amount == 0 {
                return;
            }
            let current = match client.record(&lane) {
                Ok(current) if current.limit == record.limit => current,
                _ => return, // topped up meanwhile
            };
            // The policy's cap and approval hold here too.
            let depositing = client
                .deposit_allowed(ApprovalKind::TopUp, &current.service, amount, Some(lane))
                .await;
            let result = match depositing {
                Ok(_depositing) => client.send_top_up(&current, amount).await,
                Err(refused) => Err(refused),
            };
            if let Err(error) = result {
                tracing::warn!(%lane, %error, "background top-up failed");
            }
        });
    }
}

/// How often, and how far apart, an open that failed looks for the channel
/// of an earlier attempt with the same nonce (10 s: several slots).
const EARLIER_OPEN_POLLS: u32 = 20;
const EARLIER_OPEN_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// A random channel nonce (SPEC §2: clients choose random nonces), from the
/// OS generator behind a fresh keypair.
fn random_nonce() -> u64 {
    let key = Keypair::new().pubkey().to_bytes();
    u64::from_le_bytes(key[..8].try_into().expect("8 bytes"))
}

/// Refuses a funder token account that the program would refuse to take a
/// deposit from (CPI Guard on), before anything is sent.
pub(super) async fn check_depositor(
    chain: &dyn Chain,
    token_account: &Pubkey,
) -> Result<(), ClientError> {
    match chain.deposit_refusal(token_account).await? {
        Some(reason) => Err(ClientError::CannotDeposit(reason)),
        None => Ok(()),
    }
}
