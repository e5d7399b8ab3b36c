//! `amp localnet`: a Solana node for development, on any machine, with no
//! Solana toolchain.
//!
//! It runs the embedded bank (the AMP programs natively, beside the released
//! SPL Token, Token-2022 and Associated Token Account programs and the
//! runtime's ed25519 precompile) on the wall clock — a 400 ms slot, a
//! blockhash valid for 150 slots, a cluster's fees and rent — and serves it
//! over JSON-RPC 2.0 on HTTP and the PubSub websocket, answering as a
//! validator does so that unmodified clients work.
//!
//! Data flows one way: [`rpc`] and [`pubsub`] read the [`ledger`]; the
//! [`node`] owns the ledger, its slot clock and both servers; [`faults`]
//! injects failures for tests.

pub mod delayed;
pub mod events;
pub mod faults;
pub mod ledger;
mod listen;
pub mod node;
pub mod pubsub;
pub mod rpc;
pub mod test_mint;

pub use faults::FaultConfig;
pub use node::{Node, NodeConfig, NodeError, NodeInfo};

/// The port `solana-test-validator` (and `-u localnet`) uses.
pub const DEFAULT_RPC_PORT: u16 = 8899;

/// The `solana-core` version the node reports: the runtime it runs.
pub const SOLANA_VERSION: &str = "3.1.12";

/// The first four bytes of the active feature set's identifier, as
/// `getVersion` reports it (every feature is active here).
pub fn feature_set_id() -> u32 {
    let ids = agave_feature_set::FeatureSet::all_enabled();
    let mut hasher = solana_sha256_hasher::Hasher::default();
    let mut active: Vec<_> = ids.active().keys().collect();
    active.sort();
    for id in active {
        hasher.hash(id.as_ref());
    }
    let hash = hasher.result();
    u32::from_le_bytes([
        hash.as_ref()[0],
        hash.as_ref()[1],
        hash.as_ref()[2],
        hash.as_ref()[3],
    ])
}
