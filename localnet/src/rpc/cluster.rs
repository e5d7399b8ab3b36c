//! The cluster's clock and identity: slots, blockhashes, epochs, version.

use serde_json::{json, Value};
use solana_hash::Hash;
use solana_rpc_client_api::config::RpcContextConfig;
use solana_rpc_client_api::response::{RpcBlockhash, RpcVersionInfo};

use super::params::Params;
use super::wire::{to_value, with_context, RpcError};
use super::{commitment, Rpc};

pub fn get_latest_blockhash(rpc: &Rpc, params: Params) -> Result<Value, RpcError> {
    let config: RpcContextConfig = params.optional(0, "config")?.unwrap_or_default();
    let bank = rpc.ledger.bank(commitment(config.commitment));
    let blockhash = bank.last_blockhash();
    let last_valid_block_height = bank
        .get_blockhash_last_valid_block_height(&blockhash)
        .unwrap_or_else(|| bank.block_height());
    with_context(
        bank.slot(),
        RpcBlockhash {
            blockhash: blockhash.to_string(),
            last_valid_block_height,
        },
    )
}

pub fn is_blockhash_valid(rpc: &Rpc, params: Params) -> Result<Value, RpcError> {
    let text: String = params.required(0, "blockhash")?;
    let blockhash: Hash = text
        .parse()
        .map_err(|_| RpcError::invalid_params("Invalid param: Invalid"))?;
    let config: RpcContextConfig = params.optional(1, "config")?.unwrap_or_default();
    let bank = rpc.ledger.bank(commitment(config.commitment));
    with_context(bank.slot(), bank.is_blockhash_valid(&blockhash))
}

pub fn get_slot(rpc: &Rpc, params: Params) -> Result<Value, RpcError> {
    let config: RpcContextConfig = params.optional(0, "config")?.unwrap_or_default();
    to_value(rpc.ledger.bank(commitment(config.commitment)).slot())
}

pub fn get_block_height(rpc: &Rpc, params: Params) -> Result<Value, RpcError> {
    let config: RpcContextConfig = params.optional(0, "config")?.unwrap_or_default();
    to_value(
        rpc.ledger
            .bank(commitment(config.commitment))
            .block_height(),
    )
}

pub fn get_epoch_info(rpc: &Rpc, params: Params) -> Result<Value, RpcError> {
    let config: RpcContextConfig = params.optional(0, "config")?.unwrap_or_default();
    let bank = rpc.ledger.bank(commitment(config.commitment));
    let (epoch, slot_index) = bank.get_epoch_and_slot_index(bank.slot());
    Ok(json!({
        "absoluteSlot": bank.slot(),
        "blockHeight": bank.block_height(),
        "epoch": epoch,
        "slotIndex": slot_index,
        "slotsInEpoch": bank.get_slots_in_epoch(epoch),
        "transactionCount": bank.transaction_count(),
    }))
}

pub fn get_epoch_schedule(rpc: &Rpc, _params: Params) -> Result<Value, RpcError> {
    to_value(
        rpc.ledger
            .bank(crate::ledger::Commitment::Confirmed)
            .epoch_schedule(),
    )
}

pub fn get_version(_rpc: &Rpc, _params: Params) -> Result<Value, RpcError> {
    to_value(RpcVersionInfo {
        solana_core: crate::SOLANA_VERSION.to_string(),
        feature_set: Some(crate::feature_set_id()),
    })
}

pub fn get_health(rpc: &Rpc, _params: Params) -> Result<Value, RpcError> {
    let _ = rpc;
    to_value("ok")
}

pub fn get_genesis_hash(rpc: &Rpc, _params: Params) -> Result<Value, RpcError> {
    to_value(rpc.ledger.genesis_hash().to_string())
}

pub fn get_identity(rpc: &Rpc, _params: Params) -> Result<Value, RpcError> {
    Ok(
        json!({ "identity": rpc.ledger.bank(crate::ledger::Commitment::Confirmed).collector_id().to_string() }),
    )
}

pub fn get_first_available_block(_rpc: &Rpc, _params: Params) -> Result<Value, RpcError> {
    to_value(0u64)
}

pub fn get_transaction_count(rpc: &Rpc, params: Params) -> Result<Value, RpcError> {
    let config: RpcContextConfig = params.optional(0, "config")?.unwrap_or_default();
    to_value(
        rpc.ledger
            .bank(commitment(config.commitment))
            .transaction_count(),
    )
}

pub fn minimum_ledger_slot(_rpc: &Rpc, _params: Params) -> Result<Value, RpcError> {
    to_value(0u64)
}

pub fn get_identity_address(rpc: &Rpc, _params: Params) -> Result<Value, RpcError> {
    to_value(
        rpc.ledger
            .bank(crate::ledger::Commitment::Confirmed)
            .collector_id()
            .to_string(),
    )
}
