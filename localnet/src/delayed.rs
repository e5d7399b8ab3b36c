//! Transactions held back by the slow-confirmation fault, landed when due.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use solana_transaction::versioned::VersionedTransaction;

#[derive(Clone, Default)]
pub struct Delayed(Arc<Mutex<Vec<(Instant, VersionedTransaction)>>>);

impl Delayed {
    pub fn send_later(&self, transaction: VersionedTransaction, delay: Duration) {
        self.lock().push((Instant::now() + delay, transaction));
    }

    /// The transactions due by `now`, oldest first.
    pub fn take_due(&self, now: Instant) -> Vec<VersionedTransaction> {
        let mut queue = self.lock();
        let (due, waiting): (Vec<_>, Vec<_>) = queue.drain(..).partition(|(at, _)| *at <= now);
        *queue = waiting;
        due.into_iter()
            .map(|(_, transaction)| transaction)
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Instant, VersionedTransaction)>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
