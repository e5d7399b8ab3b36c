//! Sending, simulating and looking up transactions; airdrops and fees.

use serde_json::Value;
use solana_account_decoder_client_types::UiAccountEncoding;
use solana_message::VersionedMessage;
use solana_rpc_client_api::config::{
    RpcEncodingConfigWrapper, RpcSendTransactionConfig, RpcSignatureStatusConfig,
    RpcSignaturesForAddressConfig, RpcSimulateTransactionConfig, RpcTransactionConfig,
};
use solana_rpc_client_api::response::{
    RpcBlockhash, RpcConfirmedTransactionStatusWithSignature, RpcPrioritizationFee,
    RpcSimulateTransactionResult,
};
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;
use solana_transaction::{Transaction, TransactionVerificationMode};
use solana_transaction_error::TransactionError;
use solana_transaction_status_client_types::{
    EncodedConfirmedTransactionWithStatusMeta, TransactionConfirmationStatus, TransactionStatus,
    UiTransactionEncoding, UiTransactionReturnData,
};

use super::encoding::{
    decode_transaction, encoded_transaction, inner_instructions, token_balances, ui_account,
};
use super::params::{parse_pubkey, parse_signature, Params};
use super::wire::{
    to_value, with_context, RpcError, PREFLIGHT_FAILURE, SIGNATURE_VERIFICATION_FAILURE,
};
use super::Rpc;
use crate::ledger::{Commitment, SendError, SignatureStatus};

const MAX_SIGNATURE_STATUSES: usize = 256;
const MAX_SIGNATURES_FOR_ADDRESS: usize = 1000;

pub fn send_transaction(rpc: &Rpc, params: Params) -> Result<Value, RpcError> {
    let data: String = params.required(0, "transaction")?;
    let config: RpcSendTransactionConfig = params.optional(1, "config")?.unwrap_or_default();
    let transaction = decode_transaction(
        &data,
        config.encoding.unwrap_or(UiTransactionEncoding::Base58),
    )?;
    let signature = *transaction
        .signatures
        .first()
        .ok_or_else(|| RpcError::invalid_params("transaction has no signature"))?;
    if !config.skip_preflight {
        let (simulation, slot) = rpc
            .ledger
            .simulate(transaction.clone(), true, false)
            .map_err(verification_error)?;
        if let Err(error) = simulation.result {
            let message = format!("Transaction simulation failed: {error}");
            let data = RpcSimulateTransactionResult {
                err: Some(error.into()),
                logs: Some(simulation.logs),
                accounts: None,
                units_consumed: Some(simulation.units_consumed),
                loaded_accounts_data_size: Some(simulation.loaded_accounts_data_size),
                return_data: simulation.return_data.map(UiTransactionReturnData::from),
                inner_instructions: None,
                replacement_blockhash: None,
                fee: simulation.fee,
                pre_balances: None,
                post_balances: None,
                pre_token_balances: None,
                post_token_balances: None,
                loaded_addresses: None,
            };
            tracing::debug!(%signature, slot, %message, "localnet: preflight refused");
            return Err(RpcError::new(PREFLIGHT_FAILURE, message).with_data(to_value(data)?));
        }
    }
    if rpc.faults.drop_send() {
        tracing::warn!(%signature, "localnet fault: dropping a sent transaction");
        return to_value(signature.to_string());
    }
    if let Some(delay) = rpc.faults.confirm_delay() {
        // Lands later (perhaps after its blockhash expired), as on a busy cluster.
        rpc.delayed.send_later(transaction, delay);
        return to_value(signature.to_string());
    }
    land(rpc, transaction)?;
    to_value(signature.to_string())
}

/// Executes a transaction now; what the bank refuses is, as on a cluster,
/// silently never landed (the sender learns of it by its blockhash expiring).
pub(crate) fn land(rpc: &Rpc, transaction: VersionedTransaction) -> Result<(), RpcError> {
    match rpc.ledger.send(transaction) {
        Ok(signature) => {
            rpc.events.landed(signature);
            Ok(())
        }
        Err(SendError::Verification(error)) => Err(verification_error(error)),
        Err(SendError::Rejected(error)) => {
            tracing::debug!(%error, "localnet: transaction not landed");
            Ok(())
        }
    }
}

fn verification_error(error: TransactionError) -> RpcError {
    match error {
        TransactionError::SignatureFailure => RpcError::new(
            SIGNATURE_VERIFICATION_FAILURE,
            "Transaction signature verification failure",
        ),
        other => RpcError::invalid_params(format!("invalid transaction: {other}")),
    }
}

pub fn simulate_transaction(rpc: &Rpc, params: Params) -> Result<Value, RpcError> {
    let data: String = params.required(0, "transaction")?;
    let config: RpcSimulateTransactionConfig = params.optional(1, "config")?.unwrap_or_default();
    if config.sig_verify && config.replace_recent_blockhash {
        return Err(RpcError::invalid_params(
            "sigVerify may not be used with replaceRecentBlockhash",
        ));
    }
    let transaction = decode_transaction(
        &data,
        config.encoding.unwrap_or(UiTransactionEncoding::Base58),
    )?;
    let (simulation, slot) = rpc
        .ledger
        .simulate(
            transaction,
            config.sig_verify,
            config.replace_recent_blockhash,
        )
        .map_err(verification_error)?;
    let bank = rpc.ledger.bank(Commitment::Processed);
    let accounts = match &config.accounts {
        None => None,
        Some(wanted) => {
            let encoding = wanted.encoding.unwrap_or(UiAccountEncoding::Base64);
            let mut accounts = Vec::new();
            for address in &wanted.addresses {
                let address = parse_pubkey(address)?;
                let account = simulation
                    .post_simulation_accounts
                    .iter()
                    .find(|(key, _)| *key == address)
                    .map(|(_, account)| solana_account::Account::from(account.clone()))
                    .or_else(|| bank.get_account(&address).map(Into::into));
                accounts.push(match account {
                    Some(account) => Some(ui_account(&bank, &address, &account, encoding, None)?),
                    None => None,
                });
            }
            Some(accounts)
        }
    };
    let replacement_blockhash = config.replace_recent_blockhash.then(|| {
        let blockhash = bank.last_blockhash();
        RpcBlockhash {
            blockhash: blockhash.to_string(),
            last_valid_block_height: bank
                .get_blockhash_last_valid_block_height(&blockhash)
                .unwrap_or_default(),
        }
    });
    let inner_instructions = config.inner_instructions.then(|| {
        let list = simulation.inner_instructions.as_deref().unwrap_or_default();
        inner_instructions(list)
            .into_iter()
            .map(Into::into)
            .collect()
    });
    let result = RpcSimulateTransactionResult {
        err: simulation.result.err().map(Into::into),
        logs: Some(simulation.logs),
        accounts,
        units_consumed: Some(simulation.units_consumed),
        loaded_accounts_data_size: Some(simulation.loaded_accounts_data_size),
        return_data: simulation.return_data.map(UiTransactionReturnData::from),
        inner_instructions,
        replacement_blockhash,
        fee: simulation.fee,
        pre_balances: simulation.pre_balances,
        post_balances: simulation.post_balances,
        pre_token_balances: simulation
            .pre_token_balances
            .map(|b| token_balances(&b).into_iter().map(Into::into).collect()),
        post_token_balances: simulation
            .post_token_balances
            .map(|b| token_balances(&b).into_iter().map(Into::into).collect()),
        loaded_addresses: None,
    };
    with_context(slot, result)
}

pub fn get_transaction(rpc: &Rpc, params: Params) -> Result<Value, RpcError> {
    let signature = parse_signature(&params.required::<String>(0, "signature")?)?;
    let config =
        match params.optional::<RpcEncodingConfigWrapper<RpcTransactionConfig>>(1, "config")? {
            None => RpcTransactionConfig::default(),
            Some(wrapper) => wrapper.convert_to_current(),
        };
    if config
        .commitment
        .is_some_and(|c| !c.is_at_least_confirmed())
    {
        return Err(RpcError::invalid_params(
            "Method does not support commitment below `confirmed`",
        ));
    }
    let Some(record) = rpc.ledger.transaction(&signature) else {
        return Ok(Value::Null);
    };
    if rpc.ledger.status(&signature).is_some_and(|s| !s.confirmed) {
        return Ok(Value::Null);
    }
    let encoded = encoded_transaction(
        &record,
        config.encoding.unwrap_or(UiTransactionEncoding::Json),
        config.max_supported_transaction_version,
    )?;
    to_value(EncodedConfirmedTransactionWithStatusMeta {
        slot: record.slot,
        transaction: encoded,
        block_time: Some(record.block_time),
    })
}

pub fn get_signature_statuses(rpc: &Rpc, params: Params) -> Result<Value, RpcError> {
    let signatures: Vec<String> = params.required(0, "signatures")?;
    if signatures.len() > MAX_SIGNATURE_STATUSES {
        return Err(RpcError::invalid_params(format!(
            "Too many inputs provided; max {MAX_SIGNATURE_STATUSES}"
        )));
    }
    let _config: Option<RpcSignatureStatusConfig> = params.optional(1, "config")?;
    let mut statuses = Vec::with_capacity(signatures.len());
    for signature in &signatures {
        let signature = parse_signature(signature)?;
        statuses.push(rpc.ledger.status(&signature).map(transaction_status));
    }
    let slot = rpc.ledger.bank(Commitment::Processed).slot();
    with_context(slot, statuses)
}

pub fn transaction_status(status: SignatureStatus) -> TransactionStatus {
    TransactionStatus {
        slot: status.slot,
        confirmations: if status.confirmed { None } else { Some(0) },
        err: status.status.clone().err(),
        status: status.status,
        confirmation_status: Some(if status.confirmed {
            TransactionConfirmationStatus::Finalized
        } else {
            TransactionConfirmationStatus::Processed
        }),
    }
}

pub fn get_signatures_for_address(rpc: &Rpc, params: Params) -> Result<Value, RpcError> {
    let address = params.pubkey(0)?;
    let config: RpcSignaturesForAddressConfig = params.optional(1, "config")?.unwrap_or_default();
    let limit = config.limit.unwrap_or(MAX_SIGNATURES_FOR_ADDRESS);
    if !(1..=MAX_SIGNATURES_FOR_ADDRESS).contains(&limit) {
        return Err(RpcError::invalid_params(format!(
            "Invalid limit; max {MAX_SIGNATURES_FOR_ADDRESS}"
        )));
    }
    let before = config.before.as_deref().map(parse_signature).transpose()?;
    let until = config.until.as_deref().map(parse_signature).transpose()?;
    let confirmed_only = config.commitment.is_none_or(|c| c.is_at_least_confirmed());
    let confirmed_slot = rpc.ledger.bank(Commitment::Confirmed).slot();
    let records = rpc
        .ledger
        .signatures_for(&address, before.as_ref(), until.as_ref(), limit);
    let statuses: Vec<_> = records
        .into_iter()
        .filter(|record| !confirmed_only || record.slot <= confirmed_slot)
        .map(|record| RpcConfirmedTransactionStatusWithSignature {
            signature: record.signature.to_string(),
            slot: record.slot,
            err: record.status.clone().err().map(Into::into),
            memo: None,
            block_time: Some(record.block_time),
            confirmation_status: Some(if record.slot <= confirmed_slot {
                TransactionConfirmationStatus::Finalized
            } else {
                TransactionConfirmationStatus::Processed
            }),
        })
        .collect();
    to_value(statuses)
}

pub fn request_airdrop(rpc: &Rpc, params: Params) -> Result<Value, RpcError> {
    let to = params.pubkey(0)?;
    let lamports: u64 = params.required(1, "lamports")?;
    if lamports == 0 {
        return Err(RpcError::invalid_params(
            "Invalid params: lamports must be positive",
        ));
    }
    let faucet = rpc.ledger.faucet();
    let bank = rpc.ledger.bank(Commitment::Processed);
    let transfer = solana_system_interface::instruction::transfer(&faucet.pubkey(), &to, lamports);
    let transaction = Transaction::new_signed_with_payer(
        &[transfer],
        Some(&faucet.pubkey()),
        &[faucet],
        bank.last_blockhash(),
    );
    let signature: Signature = transaction.signatures[0];
    match rpc.ledger.send(transaction.into()) {
        Ok(_) => {
            rpc.events.landed(signature);
            to_value(signature.to_string())
        }
        Err(error) => Err(RpcError::internal(format!("airdrop failed: {error}"))),
    }
}

pub fn get_fee_for_message(rpc: &Rpc, params: Params) -> Result<Value, RpcError> {
    use base64::prelude::{Engine, BASE64_STANDARD};
    let data: String = params.required(0, "message")?;
    let config: solana_rpc_client_api::config::RpcContextConfig =
        params.optional(1, "config")?.unwrap_or_default();
    let bytes = BASE64_STANDARD
        .decode(&data)
        .map_err(|e| RpcError::invalid_params(format!("invalid base64 encoding: {e:?}")))?;
    let message: VersionedMessage = bincode::deserialize(&bytes)
        .map_err(|e| RpcError::invalid_params(format!("invalid message: {e}")))?;
    let bank = rpc.ledger.bank(super::commitment(config.commitment));
    let signatures = usize::from(message.header().num_required_signatures);
    let transaction = VersionedTransaction {
        signatures: vec![Signature::default(); signatures],
        message,
    };
    let sanitized = bank
        .verify_transaction(transaction, TransactionVerificationMode::HashOnly)
        .map_err(|e| RpcError::invalid_params(format!("invalid message: {e}")))?;
    let fee = bank.get_fee_for_message(sanitized.message());
    with_context(bank.slot(), fee)
}

pub fn get_recent_prioritization_fees(rpc: &Rpc, params: Params) -> Result<Value, RpcError> {
    let addresses: Vec<String> = params.optional(0, "addresses")?.unwrap_or_default();
    if addresses.len() > 128 {
        return Err(RpcError::invalid_params(
            "Too many inputs provided; max 128",
        ));
    }
    let addresses = addresses
        .iter()
        .map(|a| parse_pubkey(a))
        .collect::<Result<Vec<_>, _>>()?;
    let fees: Vec<RpcPrioritizationFee> = rpc
        .ledger
        .prioritization_fees(&addresses)
        .into_iter()
        .map(|(slot, prioritization_fee)| RpcPrioritizationFee {
            slot,
            prioritization_fee,
        })
        .collect();
    to_value(fees)
}
