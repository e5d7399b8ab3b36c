//! What the node announces to its PubSub subscribers: a transaction landed,
//! a slot ended.

use std::sync::Arc;

use solana_signature::Signature;
use tokio::sync::broadcast;

use crate::ledger::SlotEnded;

#[derive(Clone, Debug)]
pub enum Event {
    /// A transaction landed in the slot being filled (processed).
    Landed(Signature),
    /// A slot ended: what landed in it is confirmed (and finalized).
    SlotEnded(Arc<SlotEnded>),
}

/// A broadcast of [`Event`]s; a subscriber that falls behind loses the oldest.
#[derive(Clone)]
pub struct Events(broadcast::Sender<Event>);

impl Default for Events {
    fn default() -> Self {
        Self(broadcast::channel(4096).0)
    }
}

impl Events {
    pub fn landed(&self, signature: Signature) {
        // No subscriber is not an error.
        let _ = self.0.send(Event::Landed(signature));
    }

    pub fn slot_ended(&self, ended: SlotEnded) {
        let _ = self.0.send(Event::SlotEnded(Arc::new(ended)));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.0.subscribe()
    }
}
