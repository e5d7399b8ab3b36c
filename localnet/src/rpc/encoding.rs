//! Accounts and transactions in the shapes the validator answers with.

use base64::prelude::{Engine, BASE64_STANDARD};
use solana_account::{Account, ReadableAccount};
use solana_account_decoder::encode_ui_account;
use solana_account_decoder::parse_account_data::{
    AccountAdditionalDataV3, SplTokenAdditionalDataV2,
};
use solana_account_decoder::parse_token::token_amount_to_ui_amount_v3;
use solana_account_decoder_client_types::token::UiTokenAmount;
use solana_account_decoder_client_types::{UiAccount, UiAccountEncoding, UiDataSliceConfig};
use solana_message::inner_instruction::InnerInstruction as RuntimeInnerInstruction;
use solana_message::VersionedMessage;
use solana_pubkey::Pubkey;
use solana_rpc_client_api::filter::RpcFilterType;
use solana_runtime::bank::Bank;
use solana_svm::transaction_balances::SvmTokenInfo;
use solana_transaction::versioned::TransactionVersion;
use solana_transaction_status_client_types::{
    EncodedTransaction, EncodedTransactionWithStatusMeta, InnerInstruction, InnerInstructions,
    TransactionBinaryEncoding, TransactionStatusMeta, TransactionTokenBalance,
    UiAddressTableLookup, UiCompiledInstruction, UiMessage, UiRawMessage, UiTransaction,
    UiTransactionEncoding, UiTransactionStatusMeta,
};

use super::wire::RpcError;
use crate::ledger::TransactionRecord;

/// An account as `getAccountInfo` shows it. `jsonParsed` parses what the
/// account decoder knows (token accounts and mints among them) and falls back
/// to base64, as the validator does.
pub fn ui_account(
    bank: &Bank,
    address: &Pubkey,
    account: &Account,
    encoding: UiAccountEncoding,
    data_slice: Option<UiDataSliceConfig>,
) -> Result<UiAccount, RpcError> {
    if encoding == UiAccountEncoding::Binary && account.data.len() > 128 {
        return Err(RpcError::invalid_params(
            "Encoded binary (base 58) data should be less than 128 bytes, please use Base64 encoding.",
        ));
    }
    let additional = (encoding == UiAccountEncoding::JsonParsed)
        .then(|| token_additional_data(bank, account))
        .flatten()
        .map(|data| AccountAdditionalDataV3 {
            spl_token_additional_data: Some(data),
        });
    Ok(encode_ui_account(
        address, account, encoding, additional, data_slice,
    ))
}

/// The decimals of a token account's mint, which parsing it needs.
fn token_additional_data(bank: &Bank, account: &Account) -> Option<SplTokenAdditionalDataV2> {
    if !is_token_program(account.owner()) {
        return None;
    }
    let mint = solana_account_decoder::parse_token::get_token_account_mint(account.data())?;
    mint_decimals(bank, &mint).map(SplTokenAdditionalDataV2::with_decimals)
}

pub use amp_sdk::mint::is_token_program;

/// Whether `account` passes every `getProgramAccounts` / `programSubscribe`
/// filter.
pub fn passes_filters(filters: &[RpcFilterType], account: &Account) -> bool {
    filters.iter().all(|filter| match filter {
        RpcFilterType::DataSize(size) => account.data().len() as u64 == *size,
        RpcFilterType::Memcmp(memcmp) => memcmp.bytes_match(account.data()),
        RpcFilterType::TokenAccountState => {
            is_token_program(account.owner())
                && solana_account_decoder::parse_token::get_token_account_mint(account.data())
                    .is_some()
        }
    })
}

/// A mint's decimals (the byte after supply in both token programs' layout).
pub fn mint_decimals(bank: &Bank, mint: &Pubkey) -> Option<u8> {
    let account = bank.get_account(mint)?;
    if !is_token_program(account.owner()) {
        return None;
    }
    account.data().get(44).copied()
}

/// A token amount with its mint's decimals.
pub fn token_amount(amount: u64, decimals: u8) -> UiTokenAmount {
    token_amount_to_ui_amount_v3(amount, &SplTokenAdditionalDataV2::with_decimals(decimals))
}

/// A landed transaction as `getTransaction` shows it.
pub fn encoded_transaction(
    record: &TransactionRecord,
    encoding: UiTransactionEncoding,
    max_supported_version: Option<u8>,
) -> Result<EncodedTransactionWithStatusMeta, RpcError> {
    let version = match (&record.transaction.message, max_supported_version) {
        (VersionedMessage::Legacy(_), None) => None,
        (VersionedMessage::Legacy(_), Some(_)) => Some(TransactionVersion::LEGACY),
        (VersionedMessage::V0(_), Some(_)) => Some(TransactionVersion::Number(0)),
        (VersionedMessage::V0(_), _) => {
            return Err(RpcError::new(
                solana_rpc_client_api::custom_error::JSON_RPC_SERVER_ERROR_UNSUPPORTED_TRANSACTION_VERSION,
                "Transaction version (0) is not supported by the requesting client. Please try the request again with the following configuration parameter: \"maxSupportedTransactionVersion\": 0",
            ))
        }
    };
    let transaction = match encoding {
        UiTransactionEncoding::Base64 => EncodedTransaction::Binary(
            BASE64_STANDARD.encode(bincode::serialize(&record.transaction).map_err(internal)?),
            TransactionBinaryEncoding::Base64,
        ),
        UiTransactionEncoding::Base58 => EncodedTransaction::Binary(
            bs58::encode(bincode::serialize(&record.transaction).map_err(internal)?).into_string(),
            TransactionBinaryEncoding::Base58,
        ),
        UiTransactionEncoding::Binary => EncodedTransaction::LegacyBinary(
            bs58::encode(bincode::serialize(&record.transaction).map_err(internal)?).into_string(),
        ),
        // `jsonParsed` is answered as `json`: AMP's tools read raw instructions.
        _ => EncodedTransaction::Json(UiTransaction {
            signatures: record
                .transaction
                .signatures
                .iter()
                .map(ToString::to_string)
                .collect(),
            message: UiMessage::Raw(raw_message(&record.transaction.message)),
        }),
    };
    Ok(EncodedTransactionWithStatusMeta {
        transaction,
        meta: Some(status_meta(record)),
        version,
    })
}

fn raw_message(message: &VersionedMessage) -> UiRawMessage {
    UiRawMessage {
        header: *message.header(),
        account_keys: message
            .static_account_keys()
            .iter()
            .map(ToString::to_string)
            .collect(),
        recent_blockhash: message.recent_blockhash().to_string(),
        instructions: message
            .instructions()
            .iter()
            .map(|ix| UiCompiledInstruction::from(ix, None))
            .collect(),
        address_table_lookups: message
            .address_table_lookups()
            .map(|lookups| lookups.iter().map(UiAddressTableLookup::from).collect()),
    }
}

/// The status meta, with inner instructions (so `emit_cpi!` events can be
/// read), logs, balances and compute units.
pub fn status_meta(record: &TransactionRecord) -> UiTransactionStatusMeta {
    TransactionStatusMeta {
        status: record.status.clone(),
        fee: record.fee,
        pre_balances: record.pre_balances.clone(),
        post_balances: record.post_balances.clone(),
        inner_instructions: Some(inner_instructions(&record.inner_instructions)),
        log_messages: Some(record.log_messages.clone()),
        pre_token_balances: Some(token_balances(&record.pre_token_balances)),
        post_token_balances: Some(token_balances(&record.post_token_balances)),
        rewards: Some(Vec::new()),
        loaded_addresses: Default::default(),
        return_data: record.return_data.clone(),
        compute_units_consumed: Some(record.compute_units_consumed),
        cost_units: None,
    }
    .into()
}

/// The runtime's inner instructions as RPC reports them: per top-level
/// instruction that made any, with each one's stack height.
pub fn inner_instructions(list: &[Vec<RuntimeInnerInstruction>]) -> Vec<InnerInstructions> {
    list.iter()
        .enumerate()
        .filter(|(_, inner)| !inner.is_empty())
        .map(|(index, inner)| InnerInstructions {
            index: index as u8,
            instructions: inner
                .iter()
                .map(|ix| InnerInstruction {
                    instruction: ix.instruction.clone(),
                    stack_height: Some(u32::from(ix.stack_height)),
                })
                .collect(),
        })
        .collect()
}

pub fn token_balances(balances: &[SvmTokenInfo]) -> Vec<TransactionTokenBalance> {
    balances
        .iter()
        .map(|info| TransactionTokenBalance {
            account_index: info.account_index,
            mint: info.mint.to_string(),
            ui_token_amount: token_amount(info.amount, info.decimals),
            owner: info.owner.to_string(),
            program_id: info.program_id.to_string(),
        })
        .collect()
}

fn internal(error: impl std::fmt::Display) -> RpcError {
    RpcError::internal(error.to_string())
}

/// Decodes a transaction sent as base58 (the default) or base64.
pub fn decode_transaction(
    data: &str,
    encoding: UiTransactionEncoding,
) -> Result<solana_transaction::versioned::VersionedTransaction, RpcError> {
    let bytes = match encoding {
        UiTransactionEncoding::Base58 | UiTransactionEncoding::Binary => {
            if data.len() > MAX_BASE58_SIZE {
                return Err(RpcError::invalid_params(format!(
                    "base58 encoded solana_transaction::versioned::VersionedTransaction too large: {} bytes (max: encoded/raw {}/{})",
                    data.len(), MAX_BASE58_SIZE, PACKET_DATA_SIZE
                )));
            }
            bs58::decode(data)
                .into_vec()
                .map_err(|e| RpcError::invalid_params(format!("invalid base58 encoding: {e:?}")))?
        }
        UiTransactionEncoding::Base64 => {
            if data.len() > MAX_BASE64_SIZE {
                return Err(RpcError::invalid_params(format!(
                    "base64 encoded solana_transaction::versioned::VersionedTransaction too large: {} bytes (max: encoded/raw {}/{})",
                    data.len(), MAX_BASE64_SIZE, PACKET_DATA_SIZE
                )));
            }
            BASE64_STANDARD
                .decode(data)
                .map_err(|e| RpcError::invalid_params(format!("invalid base64 encoding: {e:?}")))?
        }
        other => {
            return Err(RpcError::invalid_params(format!(
                "unsupported encoding: {other}. Supported encodings: base58, base64"
            )))
        }
    };
    if bytes.len() > PACKET_DATA_SIZE {
        return Err(RpcError::invalid_params(format!(
            "decoded solana_transaction::versioned::VersionedTransaction too large: {} bytes (max: {PACKET_DATA_SIZE} bytes)",
            bytes.len()
        )));
    }
    bincode::deserialize(&bytes).map_err(|e| {
        RpcError::invalid_params(format!(
            "failed to deserialize solana_transaction::versioned::VersionedTransaction: {e}"
        ))
    })
}

const PACKET_DATA_SIZE: usize = 1232;
const MAX_BASE58_SIZE: usize = 1683;
const MAX_BASE64_SIZE: usize = 1644;
