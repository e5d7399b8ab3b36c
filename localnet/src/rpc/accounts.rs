//! Reading accounts: one, several, a program's, balances and rent.

use serde_json::Value;
use solana_account::{Account, ReadableAccount};
use solana_account_decoder_client_types::UiAccountEncoding;
use solana_accounts_db::accounts_index::ScanConfig;
use solana_rpc_client_api::config::{
    RpcAccountInfoConfig, RpcContextConfig, RpcProgramAccountsConfig,
};
use solana_rpc_client_api::response::RpcKeyedAccount;

use super::encoding::{is_token_program, mint_decimals, passes_filters, token_amount, ui_account};
use super::params::{parse_pubkey, Params};
use super::wire::{to_value, with_context, RpcError};
use super::{commitment, Rpc};

/// The most accounts `getMultipleAccounts` takes, as the validator.
const MAX_MULTIPLE_ACCOUNTS: usize = 100;

pub fn get_account_info(rpc: &Rpc, params: Params) -> Result<Value, RpcError> {
    let address = params.pubkey(0)?;
    let config: RpcAccountInfoConfig = params.optional(1, "config")?.unwrap_or_default();
    let bank = rpc.ledger.bank(commitment(config.commitment));
    let encoding = config.encoding.unwrap_or(UiAccountEncoding::Binary);
    let value = encoded_account(&bank, &address, encoding, config.data_slice)?;
    with_context(bank.slot(), value)
}

/// An account as the validator shows it, or `None` when it holds no lamports.
fn encoded_account(
    bank: &solana_runtime::bank::Bank,
    address: &solana_pubkey::Pubkey,
    encoding: UiAccountEncoding,
    data_slice: Option<solana_account_decoder_client_types::UiDataSliceConfig>,
) -> Result<Option<solana_account_decoder_client_types::UiAccount>, RpcError> {
    bank.get_account(address)
        .map(Account::from)
        .filter(|account| account.lamports > 0)
        .map(|account| ui_account(bank, address, &account, encoding, data_slice))
        .transpose()
}

pub fn get_multiple_accounts(rpc: &Rpc, params: Params) -> Result<Value, RpcError> {
    let addresses: Vec<String> = params.required(0, "pubkeys")?;
    if addresses.len() > MAX_MULTIPLE_ACCOUNTS {
        return Err(RpcError::invalid_params(format!(
            "Too many inputs provided; max {MAX_MULTIPLE_ACCOUNTS}"
        )));
    }
    let config: RpcAccountInfoConfig = params.optional(1, "config")?.unwrap_or_default();
    let bank = rpc.ledger.bank(commitment(config.commitment));
    let encoding = config.encoding.unwrap_or(UiAccountEncoding::Base64);
    let mut values = Vec::with_capacity(addresses.len());
    for address in &addresses {
        let address = parse_pubkey(address)?;
        values.push(encoded_account(
            &bank,
            &address,
            encoding,
            config.data_slice,
        )?);
    }
    with_context(bank.slot(), values)
}

pub fn get_program_accounts(rpc: &Rpc, params: Params) -> Result<Value, RpcError> {
    let program = params.pubkey(0)?;
    let config: RpcProgramAccountsConfig = params.optional(1, "config")?.unwrap_or_default();
    let filters = config.filters.unwrap_or_default();
    for filter in &filters {
        filter
            .verify()
            .map_err(|e| RpcError::invalid_params(format!("Invalid param: {e:?}")))?;
    }
    let bank = rpc
        .ledger
        .bank(commitment(config.account_config.commitment));
    let encoding = config
        .account_config
        .encoding
        .unwrap_or(UiAccountEncoding::Binary);
    let accounts = bank
        .get_program_accounts(&program, &ScanConfig::default())
        .map_err(|e| RpcError::internal(e.to_string()))?;
    let mut keyed = Vec::new();
    for (address, account) in accounts {
        let account = Account::from(account);
        if account.lamports == 0 || !passes_filters(&filters, &account) {
            continue;
        }
        keyed.push(RpcKeyedAccount {
            pubkey: address.to_string(),
            account: ui_account(
                &bank,
                &address,
                &account,
                encoding,
                config.account_config.data_slice,
            )?,
        });
    }
    if config.with_context.unwrap_or(false) {
        with_context(bank.slot(), keyed)
    } else {
        to_value(keyed)
    }
}

pub fn get_balance(rpc: &Rpc, params: Params) -> Result<Value, RpcError> {
    let address = params.pubkey(0)?;
    let config: RpcContextConfig = params.optional(1, "config")?.unwrap_or_default();
    let bank = rpc.ledger.bank(commitment(config.commitment));
    with_context(bank.slot(), bank.get_balance(&address))
}

pub fn get_token_account_balance(rpc: &Rpc, params: Params) -> Result<Value, RpcError> {
    let address = params.pubkey(0)?;
    let config: RpcContextConfig = params.optional(1, "config")?.unwrap_or_default();
    let bank = rpc.ledger.bank(commitment(config.commitment));
    let not_token_account = || RpcError::invalid_params("Invalid param: not a Token account");
    let account = bank.get_account(&address).ok_or_else(not_token_account)?;
    if !is_token_program(account.owner()) {
        return Err(not_token_account());
    }
    let data = account.data();
    let mint = solana_account_decoder::parse_token::get_token_account_mint(data)
        .ok_or_else(not_token_account)?;
    let amount = data
        .get(64..72)
        .and_then(|bytes| bytes.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or_else(not_token_account)?;
    let decimals = mint_decimals(&bank, &mint)
        .ok_or_else(|| RpcError::invalid_params("Invalid param: mint could not be unpacked"))?;
    with_context(bank.slot(), token_amount(amount, decimals))
}

pub fn get_minimum_balance_for_rent_exemption(
    rpc: &Rpc,
    params: Params,
) -> Result<Value, RpcError> {
    let size: usize = params.required(0, "data_len")?;
    let bank = rpc.ledger.bank(crate::ledger::Commitment::Confirmed);
    to_value(bank.get_minimum_balance_for_rent_exemption(size))
}
