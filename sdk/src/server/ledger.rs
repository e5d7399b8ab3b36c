//! The ledger: the meter's rules applied to a lane under its lock, and
//! written where they must be. A signed voucher is written to the store
//! before it is relied on; a session request's charge stays in the lane's
//! [`Mirror`] in memory until the next signed voucher carries it into the
//! store (SPEC section 5, "Sessions"). A charge tells the settler what the
//! lane now holds.

use std::sync::Arc;

use super::meter::{self, Accepted};
use super::metrics::{SharedMetrics, StoreOp};
use super::settle::SettleHook;
use super::unsigned::{Mirror, Shared, Unsigned};
use crate::manifest::{ErrorBody, Price};
use crate::store::{self, LaneState, StoreError, VoucherStore};
use crate::voucher::SignedVoucher;

/// Why the meter did not record a credential.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The meter's decision, for the payer.
    Meter(Box<ErrorBody>),
    /// The store could not record it; the server's fault, not the payer's.
    Store(StoreError),
}

/// Sessions in the status document: what the service stands to lose if
/// every agent in a session stopped signing now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionStatus {
    /// The most served beyond a lane's highest signed amount: the bound of
    /// what a crash or a stolen session key can cost, per lane.
    #[serde(with = "crate::decimal::u64_string")]
    pub credit_per_lane: u64,
    /// Lanes that session requests used since the service started.
    pub lanes: u64,
    /// What those lanes were charged beyond their highest signed amounts.
    #[serde(with = "crate::decimal::u64_string")]
    pub at_risk: u64,
}

/// The meter applied in the store, and in memory for session requests.
#[derive(Clone)]
pub(crate) struct Ledger {
    store: Arc<dyn VoucherStore>,
    settler: SettleHook,
    unsigned: Arc<Unsigned>,
    metrics: SharedMetrics,
}

impl Ledger {
    pub(crate) fn new(
        store: Arc<dyn VoucherStore>,
        settler: SettleHook,
        metrics: SharedMetrics,
    ) -> Self {
        Self {
            store,
            settler,
            unsigned: Arc::default(),
            metrics,
        }
    }

    /// The store the ledger writes to.
    pub(crate) fn store(&self) -> &dyn VoucherStore {
        self.store.as_ref()
    }

    /// [`store::transact`], timed in the metrics.
    async fn transact<T: Send + 'static>(
        &self,
        fresh: LaneState,
        f: impl FnOnce(&mut LaneState) -> (T, bool) + Send + 'static,
    ) -> Result<T, StoreError> {
        let transact = store::transact(self.store(), fresh, f);
        self.metrics.store(StoreOp::transact, transact).await
    }

    /// Applies `decide` to the lane's state; writes the change only when it
    /// is accepted. A lane with session requests gets their changes folded
    /// in first, so the one write carries them.
    async fn decide<T: Send + 'static>(
        &self,
        fresh: LaneState,
        decide: impl FnOnce(&mut LaneState) -> Result<T, Box<ErrorBody>> + Send + 'static,
    ) -> Result<T, Refused> {
        let Some(mirror) = self.unsigned.get(&fresh.id) else {
            return self
                .transact(fresh, move |state| match decide(state) {
                    Ok(accepted) => (Ok(accepted), true),
                    Err(refusal) => (Err(refusal), false),
                })
                .await
                .map_err(Refused::Store)?
                .map_err(Refused::Meter);
        };
        let mut mirror = mirror.lock().await;
        let accepted = self.fold_and_write(&mut mirror, fresh, decide).await?;
        if mirror.state.closed {
            self.unsigned.remove(&mirror.state.id);
        }
        Ok(accepted)
    }

    /// Folds `mirror`'s unwritten changes into the store's state of its
    /// lane, applies `decide` there, and writes the result when it is
    /// accepted: one write carries both. The mirror then matches the store.
    async fn fold_and_write<T: Send + 'static>(
        &self,
        mirror: &mut Mirror,
        fresh: LaneState,
        decide: impl FnOnce(&mut LaneState) -> Result<T, Box<ErrorBody>> + Send + 'static,
    ) -> Result<T, Refused> {
        let pending = mirror.clone();
        let (accepted, written) = self
            .transact(fresh, move |state| {
                pending.fold_into(state);
                match decide(state) {
                    Ok(accepted) => (Ok((accepted, state.clone())), true),
                    Err(refusal) => (Err(refusal), false),
                }
            })
            .await
            .map_err(Refused::Store)?
            .map_err(Refused::Meter)?;
        mirror.written(written);
        Ok(accepted)
    }

    /// Runs `f` on the lane's state in memory when session requests use the
    /// lane, else in the store (writing when it says so).
    async fn change<T: Send + 'static>(
        &self,
        fresh: LaneState,
        f: impl FnOnce(&mut LaneState) -> (T, bool) + Send + 'static,
    ) -> Result<T, StoreError> {
        match self.unsigned.get(&fresh.id) {
            Some(mirror) => Ok(f(&mut mirror.lock().await.state).0),
            None => self.transact(fresh, f).await,
        }
    }

    /// A paid request's credential ([`meter::accept`]).
    pub(crate) async fn charge(
        &self,
        fresh: LaneState,
        signed: SignedVoucher,
        price: Price,
        limit: u64,
        credit: u64,
    ) -> Result<Accepted, Refused> {
        let accepted = self
            .decide(fresh, move |state| {
                meter::accept(state, &signed, &price, limit, credit)
            })
            .await?;
        self.settler.charged(accepted.unsettled);
        Ok(accepted)
    }

    /// A session request ([`meter::accept_unsigned`]): checked and charged
    /// in memory, under the lane's lock; the store is read once, for the
    /// first one on a lane.
    pub(crate) async fn unsigned(
        &self,
        fresh: LaneState,
        (seq, amount): (u64, u64),
        price: Price,
        limit: u64,
        credit: u64,
    ) -> Result<Accepted, Refused> {
        let mirror = self.mirror(fresh).await.map_err(Refused::Store)?;
        let mut mirror = mirror.lock().await;
        meter::accept_unsigned(&mut mirror.state, seq, amount, &price, limit, credit)
            .map_err(Refused::Meter)
    }

    /// The lane's mirror, made from the store's state on first use.
    async fn mirror(&self, fresh: LaneState) -> Result<Shared, StoreError> {
        if let Some(mirror) = self.unsigned.get(&fresh.id) {
            return Ok(mirror);
        }
        let id = fresh.id;
        // Read under the store's lane lock, so no write is half seen.
        let stored = self.transact(fresh, |state| (state.clone(), false)).await?;
        Ok(self.unsigned.get_or_insert(id, Mirror::new(stored)))
    }

    /// A credit credential ([`meter::accept_credit`]); returns what is owed.
    pub(crate) async fn credit(
        &self,
        fresh: LaneState,
        signed: SignedVoucher,
        limit: u64,
    ) -> Result<u64, Refused> {
        let (owed, unsettled) = self
            .decide(fresh, move |state| {
                meter::accept_credit(state, &signed, limit)
                    .map(|()| (state.owed, state.unsettled()))
            })
            .await?;
        self.settler.charged(unsettled);
        Ok(owed)
    }

    /// The final voucher of a cooperative close ([`meter::accept_final`]);
    /// returns the lane's state, now closed.
    pub(crate) async fn close(
        &self,
        fresh: LaneState,
        signed: SignedVoucher,
        limit: u64,
    ) -> Result<LaneState, Refused> {
        self.decide(fresh, move |state| {
            meter::accept_final(state, &signed, limit).map(|()| state.clone())
        })
        .await
    }

    /// Ends a metered request ([`meter::finish`]).
    pub(crate) async fn finish(
        &self,
        fresh: LaneState,
        allowance: u64,
        charge: u64,
    ) -> Result<(), StoreError> {
        let unsettled = self
            .change(fresh, move |state| {
                meter::finish(state, allowance, charge);
                (state.unsettled(), true)
            })
            .await?;
        self.settler.charged(unsettled);
        Ok(())
    }

    /// Reserves a metered request's room ([`meter::claim`]).
    pub(crate) async fn claim(
        &self,
        fresh: LaneState,
        credit: u64,
        limit: u64,
    ) -> Result<u64, StoreError> {
        self.change(fresh, move |state| {
            let room = meter::claim(state, credit, limit);
            (room, room > 0)
        })
        .await
    }

    /// What session requests charged beyond the highest signed amounts,
    /// with `credit` the bound per lane.
    pub(crate) async fn sessions(&self, credit: u64) -> SessionStatus {
        let mut status = SessionStatus {
            credit_per_lane: credit,
            ..SessionStatus::default()
        };
        for mirror in self.unsigned.all() {
            status.lanes += 1;
            status.at_risk = status.at_risk.saturating_add(mirror.lock().await.at_risk());
        }
        status
    }

    /// Writes what session requests charged to the store (at shutdown, so
    /// a restart loses nothing); returns how many lanes had charges.
    pub(crate) async fn flush(&self) -> Result<usize, StoreError> {
        let mut flushed = 0;
        for mirror in self.unsigned.all() {
            let mut mirror = mirror.lock().await;
            if mirror.unwritten() == 0 {
                continue;
            }
            let fresh = mirror.state.clone();
            match self.fold_and_write(&mut mirror, fresh, |_| Ok(())).await {
                Ok(()) => flushed += 1,
                Err(Refused::Store(error)) => return Err(error),
                // Accepting everything, the decision refuses nothing.
                Err(Refused::Meter(_)) => {}
            }
        }
        Ok(flushed)
    }
}
