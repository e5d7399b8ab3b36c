//! A [`Chain`] over a Solana JSON-RPC node (localnet, devnet, testnet,
//! mainnet-beta or any URL), built on Solana's nonblocking RPC client.
//!
//! Sending does what a careful client does: a compute budget (a limit from
//! a simulation, a price from recent fees: [`crate::fees`]), a fresh blockhash, preflight
//! simulation at the chain's commitment, then polling the signature until it
//! reaches that commitment, re-broadcasting meanwhile, and giving up with
//! [`ChainError::Expired`] once the blockhash has expired. How to run it
//! against a local validator: `docs/rpc.md`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use async_trait::async_trait;
use solana_account::Account;
use solana_account_decoder_client_types::{UiAccount, UiAccountEncoding};
use solana_clock::Clock;
use solana_commitment_config::CommitmentConfig;
use solana_hash::Hash;
use solana_instruction::Instruction;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_rpc_client_api::client_error::{reqwest, Error as ClientError, ErrorKind};
use solana_rpc_client_api::config::{
    RpcAccountInfoConfig, RpcProgramAccountsConfig, RpcSendTransactionConfig,
    RpcSimulateTransactionConfig,
};
use solana_rpc_client_api::filter::{Memcmp, RpcFilterType};
use solana_rpc_client_api::request::{RpcError, RpcRequest, RpcResponseErrorData};
use solana_rpc_client_api::response::Response;
use solana_signature::Signature;
use solana_transaction::Transaction;
use tokio::time::{sleep, Instant};

use crate::chain::{self, Chain, ChainError, TxSigner};
use crate::fees::{self, FeePolicy};

/// A Solana cluster, named as the Solana CLI's `--url` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cluster {
    /// `solana-test-validator` on this machine.
    Localnet,
    /// The public development cluster, with free airdrops.
    Devnet,
    /// The public cluster where validators test new releases.
    Testnet,
    /// The production cluster, where tokens have real value.
    MainnetBeta,
    /// Any other RPC endpoint (a private node, a provider with an API key).
    Custom(String),
}

impl Cluster {
    /// The JSON-RPC endpoint.
    pub fn url(&self) -> &str {
        match self {
            Cluster::Localnet => "http://127.0.0.1:8899",
            Cluster::Devnet => "https://api.devnet.solana.com",
            Cluster::Testnet => "https://api.testnet.solana.com",
            Cluster::MainnetBeta => "https://api.mainnet-beta.solana.com",
            Cluster::Custom(url) => url,
        }
    }

    /// The network name AMP manifests use (`solana:devnet`), for the named clusters.
    pub fn network(&self) -> Option<&'static str> {
        match self {
            Cluster::Localnet => Some("solana:localnet"),
            Cluster::Devnet => Some("solana:devnet"),
            Cluster::Testnet => Some("solana:testnet"),
            Cluster::MainnetBeta => Some("solana:mainnet-beta"),
            Cluster::Custom(_) => None,
        }
    }
}

impl fmt::Display for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cluster::Localnet => f.write_str("localnet"),
            Cluster::Devnet => f.write_str("devnet"),
            Cluster::Testnet => f.write_str("testnet"),
            Cluster::MainnetBeta => f.write_str("mainnet-beta"),
            Cluster::Custom(url) => f.write_str(url),
        }
    }
}

/// A cluster name that is neither a known moniker nor an http(s) URL.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown cluster {0:?}: expected localnet, devnet, testnet, mainnet-beta (or l, d, t, m), solana:<name>, or an http(s) URL")]
pub struct ClusterParseError(pub String);

impl FromStr for Cluster {
    type Err = ClusterParseError;

    /// Accepts what `solana --url` accepts (`localhost`/`l`, `devnet`/`d`,
    /// `testnet`/`t`, `mainnet-beta`/`m`, a URL), plus `localnet` and the
    /// manifest spelling `solana:<name>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        let moniker = trimmed.strip_prefix("solana:").unwrap_or(trimmed);
        match moniker.to_ascii_lowercase().as_str() {
            "l" | "localhost" | "localnet" => return Ok(Cluster::Localnet),
            "d" | "devnet" => return Ok(Cluster::Devnet),
            "t" | "testnet" => return Ok(Cluster::Testnet),
            "m" | "mainnet" | "mainnet-beta" => return Ok(Cluster::MainnetBeta),
            _ => {}
        }
        match reqwest::Url::parse(trimmed) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
                Ok(Cluster::Custom(trimmed.to_owned()))
            }
            _ => Err(ClusterParseError(s.to_owned())),
        }
    }
}

/// How an [`RpcChain`] talks to its node.
#[derive(Clone, Debug)]
pub struct RpcConfig {
    /// Commitment of reads, of preflight simulation, and that `send` waits for.
    pub commitment: CommitmentConfig,
    /// Longest wait for one HTTP request.
    pub request_timeout: Duration,
    /// Longest wait for a sent transaction to reach the commitment; the
    /// blockhash (about 60–90 s) usually expires first.
    pub confirm_timeout: Duration,
    /// Pause between signature status polls.
    pub poll_interval: Duration,
    /// Re-broadcast an unconfirmed transaction this often: nodes drop
    /// transactions under load, and a resend of the same signature is harmless.
    pub resend_interval: Duration,
    /// How `send` sets each transaction's compute-unit limit and price.
    pub fees: FeePolicy,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            commitment: CommitmentConfig::confirmed(),
            request_timeout: Duration::from_secs(30),
            confirm_timeout: Duration::from_secs(120),
            poll_interval: Duration::from_millis(500),
            resend_interval: Duration::from_secs(2),
            fees: FeePolicy::default(),
        }
    }
}

/// A [`Chain`] backed by a JSON-RPC node; signs every transaction with its fee payer.
pub struct RpcChain {
    client: RpcClient,
    payer: Box<TxSigner>,
    config: RpcConfig,
}

impl RpcChain {
    /// A chain on `cluster` with the default configuration (confirmed commitment).
    pub fn new(
        cluster: &Cluster,
        payer: impl solana_signer::Signer + Send + Sync + 'static,
    ) -> Self {
        Self::with_config(cluster, payer, RpcConfig::default())
    }

    /// A chain on `cluster` with `config`; `payer` pays and signs every transaction.
    pub fn with_config(
        cluster: &Cluster,
        payer: impl solana_signer::Signer + Send + Sync + 'static,
        config: RpcConfig,
    ) -> Self {
        let client = RpcClient::new_with_timeout_and_commitment(
            cluster.url().to_owned(),
            config.request_timeout,
            config.commitment,
        );
        Self {
            client,
            payer: Box::new(payer),
            config,
        }
    }

    /// The underlying client, for calls the [`Chain`] trait does not cover.
    pub fn client(&self) -> &RpcClient {
        &self.client
    }

    /// The timeouts and commitment this chain was built with.
    pub fn config(&self) -> &RpcConfig {
        &self.config
    }

    /// Turns a client error into a [`ChainError`], keeping what callers act on.
    fn error(&self, err: ClientError) -> ChainError {
        let endpoint = self.client.url();
        match *err.kind {
            ErrorKind::Io(e) => ChainError::Unreachable {
                endpoint,
                reason: error_chain(&e),
            },
            ErrorKind::Reqwest(e) => reqwest_error(endpoint, &e),
            ErrorKind::Middleware(e) => ChainError::Rpc {
                code: None,
                message: format!("{e:#}"),
            },
            ErrorKind::RpcError(RpcError::RpcResponseError { code, message, .. }) => {
                ChainError::Rpc {
                    code: Some(code),
                    message,
                }
            }
            ErrorKind::RpcError(e) => ChainError::Rpc {
                code: None,
                message: e.to_string(),
            },
            ErrorKind::SerdeJson(e) => ChainError::Rpc {
                code: None,
                message: format!("unreadable response: {e}"),
            },
            ErrorKind::SigningError(e) => ChainError::Signing(e),
            ErrorKind::TransactionError(error) => {
                chain::transaction_failed(Signature::default(), error, &[], vec![])
            }
            ErrorKind::Custom(message) => ChainError::Rpc {
                code: None,
                message,
            },
        }
    }

    /// Like [`error`](Self::error), for errors about one sent transaction:
    /// a preflight refusal becomes [`ChainError::Transaction`] with its logs.
    fn send_error(&self, err: ClientError, tx: &Transaction) -> ChainError {
        let Some(error) = err.get_transaction_error() else {
            return self.error(err);
        };
        let logs = match &*err.kind {
            ErrorKind::RpcError(RpcError::RpcResponseError {
                data: RpcResponseErrorData::SendTransactionPreflightFailure(result),
                ..
            }) => result.logs.clone().unwrap_or_default(),
            _ => vec![],
        };
        chain::transaction_failed_in(tx, error, logs)
    }

    /// Recent per-slot prioritization fees paid beside `accounts`.
    async fn recent_fees(&self, accounts: &[Pubkey]) -> Result<Vec<u64>, ChainError> {
        let fees = self
            .client
            .get_recent_prioritization_fees(accounts)
            .await
            .map_err(|e| self.error(e))?;
        Ok(fees.into_iter().map(|f| f.prioritization_fee).collect())
    }

    /// The limit for `instructions` from a simulation at the chain's
    /// commitment. A simulation that fails gets the largest limit, so that
    /// sending fails for the transaction's own reason (with its signature
    /// and logs), not for a limit guessed from a run that stopped early.
    async fn simulated_limit(
        &self,
        policy: &FeePolicy,
        fee_payer: &Pubkey,
        instructions: &[Instruction],
    ) -> Result<u32, ChainError> {
        let tx =
            chain::unsigned_transaction(fee_payer, &chain::simulation_instructions(instructions));
        let config = RpcSimulateTransactionConfig {
            sig_verify: false,
            replace_recent_blockhash: true,
            commitment: Some(self.config.commitment),
            ..RpcSimulateTransactionConfig::default()
        };
        let result = self
            .client
            .simulate_transaction_with_config(&tx, config)
            .await
            .map_err(|e| self.error(e))?
            .value;
        match (result.err, result.units_consumed) {
            (None, Some(units)) => Ok(fees::compute_unit_limit(units, policy.compute_unit_margin)),
            (err, _) => {
                tracing::debug!(?err, "simulation failed: the largest compute unit limit");
                Ok(fees::MAX_COMPUTE_UNIT_LIMIT)
            }
        }
    }

    /// Broadcasts a signed transaction (with preflight) and waits for its
    /// verdict; `expiry` tells when it can no longer land.
    async fn submit(&self, tx: &Transaction, expiry: Expiry) -> Result<Signature, ChainError> {
        let signature = chain::first_signature(tx);
        tracing::debug!(%signature, instructions = tx.message.instructions.len(), "sending");
        self.broadcast(tx, true)
            .await
            .map_err(|e| self.send_error(e, tx))?;
        self.confirm(tx, expiry).await
    }

    async fn broadcast(&self, tx: &Transaction, preflight: bool) -> Result<Signature, ClientError> {
        let config = RpcSendTransactionConfig {
            skip_preflight: !preflight,
            preflight_commitment: Some(self.config.commitment.commitment),
            ..RpcSendTransactionConfig::default()
        };
        self.client.send_transaction_with_config(tx, config).await
    }

    /// Polls until the transaction reaches the commitment, fails, or can no
    /// longer land. Poll errors are retried: the transaction is out there.
    async fn confirm(&self, tx: &Transaction, expiry: Expiry) -> Result<Signature, ChainError> {
        let signature = chain::first_signature(tx);
        let deadline = Instant::now() + self.config.confirm_timeout;
        let mut last_sent = Instant::now();
        let mut last_problem = String::from("no status yet");
        loop {
            match self.client.get_signature_statuses(&[signature]).await {
                Ok(response) => match response.value.into_iter().next().flatten() {
                    Some(status) => {
                        if let Some(error) = status.err {
                            return Err(chain::transaction_failed_in(tx, error, vec![]));
                        }
                        if status.satisfies_commitment(self.config.commitment) {
                            tracing::debug!(%signature, slot = status.slot, "confirmed");
                            return Ok(signature);
                        }
                        last_problem = format!(
                            "seen in slot {}, not yet {:?}",
                            status.slot, self.config.commitment.commitment
                        );
                    }
                    None => {
                        // Past the blockhash's last block, one more look decides:
                        // a transaction that landed in time shows by now.
                        if self.expired(expiry).await && !self.has_status(&signature).await {
                            return Err(ChainError::Expired { signature });
                        }
                        if last_sent.elapsed() >= self.config.resend_interval {
                            tracing::debug!(%signature, "re-broadcasting");
                            if let Err(err) = self.broadcast(tx, false).await {
                                tracing::debug!(%signature, %err, "re-broadcast failed");
                            }
                            last_sent = Instant::now();
                        }
                    }
                },
                Err(err) => {
                    let err = self.error(err);
                    tracing::warn!(%signature, %err, "signature status poll failed");
                    last_problem = err.to_string();
                }
            }
            if Instant::now() >= deadline {
                return Err(ChainError::Unconfirmed {
                    signature,
                    reason: format!(
                        "no verdict after {:?} ({last_problem})",
                        self.config.confirm_timeout
                    ),
                });
            }
            sleep(self.config.poll_interval).await;
        }
    }

    /// Whether the node knows the signature at all (errors count as "yes",
    /// so that an unanswered question never declares a transaction dead).
    async fn has_status(&self, signature: &Signature) -> bool {
        match self.client.get_signature_statuses(&[*signature]).await {
            Ok(response) => response.value.first().is_some_and(Option::is_some),
            Err(_) => true,
        }
    }

    /// Whether a transaction can no longer land; an unanswered question
    /// counts as "not yet", so polling goes on until the deadline.
    async fn expired(&self, expiry: Expiry) -> bool {
        match expiry {
            Expiry::BlockHeight(last_valid_block_height) => self
                .client
                .get_block_height_with_commitment(CommitmentConfig::confirmed())
                .await
                .is_ok_and(|height| height > last_valid_block_height),
            // Preflight found the blockhash at the chain's commitment, so an
            // invalid one now has aged out (not merely not arrived yet).
            Expiry::Blockhash(blockhash) => self
                .client
                .is_blockhash_valid(&blockhash, CommitmentConfig::confirmed())
                .await
                .is_ok_and(|valid| !valid),
        }
    }
}

/// How [`RpcChain::confirm`] tells that a transaction can no longer land.
#[derive(Clone, Copy, Debug)]
enum Expiry {
    /// Past this block height: known when this chain fetched the blockhash.
    BlockHeight(u64),
    /// Once the node no longer holds this blockhash valid: for a transaction
    /// signed elsewhere, whose blockhash's last block height is not known.
    Blockhash(Hash),
}

#[async_trait]
impl Chain for RpcChain {
    fn fee_payer(&self) -> Pubkey {
        self.payer.pubkey()
    }

    async fn program_accounts(
        &self,
        program: &Pubkey,
        filters: &[(usize, Vec<u8>)],
    ) -> Result<Vec<(Pubkey, Account)>, ChainError> {
        let config = RpcProgramAccountsConfig {
            filters: Some(
                filters
                    .iter()
                    .map(|(offset, bytes)| {
                        RpcFilterType::Memcmp(Memcmp::new_raw_bytes(*offset, bytes.clone()))
                    })
                    .collect(),
            ),
            account_config: RpcAccountInfoConfig {
                encoding: Some(UiAccountEncoding::Base64),
                commitment: Some(self.config.commitment),
                ..RpcAccountInfoConfig::default()
            },
            ..RpcProgramAccountsConfig::default()
        };
        let found = self
            .client
            .get_program_ui_accounts_with_config(program, config)
            .await
            .map_err(|e| self.error(e))?;
        found
            .into_iter()
            .map(|(address, account)| {
                let account = account.decode::<Account>().ok_or_else(|| ChainError::Rpc {
                    code: None,
                    message: format!("account {address} came back in an undecodable encoding"),
                })?;
                Ok((address, account))
            })
            .collect()
    }

    async fn account(&self, address: &Pubkey) -> Result<Option<Account>, ChainError> {
        let config = RpcAccountInfoConfig {
            encoding: Some(UiAccountEncoding::Base64),
            commitment: Some(self.config.commitment),
            ..RpcAccountInfoConfig::default()
        };
        // Not `get_ui_account_with_config`: it flattens every error into a string.
        let response: Response<Option<UiAccount>> = self
            .client
            .send(
                RpcRequest::GetAccountInfo,
                serde_json::json!([address.to_string(), config]),
            )
            .await
            .map_err(|e| self.error(e))?;
        response
            .value
            .map(|account| {
                account.decode::<Account>().ok_or_else(|| ChainError::Rpc {
                    code: None,
                    message: format!("account {address} came back in an undecodable encoding"),
                })
            })
            .transpose()
    }

    /// Read from the Clock sysvar account, so slot and time come from one bank.
    async fn clock(&self) -> Result<Clock, ChainError> {
        let address = solana_sdk_ids::sysvar::clock::ID;
        let account = self
            .account(&address)
            .await?
            .ok_or_else(|| ChainError::Rpc {
                code: None,
                message: "the node has no Clock sysvar".into(),
            })?;
        bincode::deserialize(&account.data).map_err(|e| ChainError::InvalidAccount {
            address,
            expected: "Clock sysvar",
            reason: e.to_string(),
        })
    }

    async fn send(
        &self,
        instructions: &[Instruction],
        signers: &[&TxSigner],
    ) -> Result<Signature, ChainError> {
        let payer = self.payer.pubkey();
        let instructions = chain::with_compute_budget(self, &payer, instructions).await?;
        let mut tx = chain::unsigned_transaction(&payer, &instructions);
        chain::check_size(&tx)?;
        let (blockhash, last_valid_block_height) = self.latest_blockhash().await?;
        tx.try_sign(&chain::with_fee_payer(&*self.payer, signers), blockhash)?;
        self.submit(&tx, Expiry::BlockHeight(last_valid_block_height))
            .await
    }

    fn fee_policy(&self) -> FeePolicy {
        self.config.fees
    }

    /// The price from `getRecentPrioritizationFees` over the accounts the
    /// instructions write (unless the policy fixes it), the limit from
    /// `simulateTransaction` without signatures on a fresh blockhash.
    async fn compute_budget_with(
        &self,
        policy: &FeePolicy,
        fee_payer: &Pubkey,
        instructions: &[Instruction],
    ) -> Result<Vec<Instruction>, ChainError> {
        let history = match policy.compute_unit_price {
            Some(_) => Vec::new(),
            None => {
                self.recent_fees(&fees::writable_accounts(instructions))
                    .await?
            }
        };
        let price = fees::compute_unit_price(policy, &history);
        let limit = self
            .simulated_limit(policy, fee_payer, instructions)
            .await?;
        tracing::debug!(limit, price, slots = history.len(), "compute budget");
        Ok(fees::compute_budget_instructions(limit, price).to_vec())
    }

    /// A confirmed blockhash: a processed one may belong to a dropped fork,
    /// a finalized one leaves less of the ~150-block validity window.
    async fn latest_blockhash(&self) -> Result<(Hash, u64), ChainError> {
        self.client
            .get_latest_blockhash_with_commitment(CommitmentConfig::confirmed())
            .await
            .map_err(|e| self.error(e))
    }

    async fn simulate_transaction(&self, transaction: &Transaction) -> Result<(), ChainError> {
        chain::check_size(transaction)?;
        let config = RpcSimulateTransactionConfig {
            sig_verify: false,
            replace_recent_blockhash: false,
            commitment: Some(CommitmentConfig::confirmed()),
            ..RpcSimulateTransactionConfig::default()
        };
        let outcome = self
            .client
            .simulate_transaction_with_config(transaction, config)
            .await
            .map_err(|e| self.error(e))?
            .value;
        match outcome.err {
            None => Ok(()),
            Some(error) => Err(chain::transaction_failed_in(
                transaction,
                error.into(),
                outcome.logs.unwrap_or_default(),
            )),
        }
    }

    async fn send_transaction(&self, transaction: &Transaction) -> Result<Signature, ChainError> {
        chain::check_size(transaction)?;
        chain::check_signed(transaction)?;
        self.submit(
            transaction,
            Expiry::Blockhash(transaction.message.recent_blockhash),
        )
        .await
    }
}

/// Connection failures and timeouts mean "unreachable"; an HTTP error status
/// means the node (or a proxy before it) answered.
fn reqwest_error(endpoint: String, err: &reqwest::Error) -> ChainError {
    if let Some(status) = err.status() {
        return ChainError::Rpc {
            code: None,
            message: format!("HTTP {status} from {endpoint}"),
        };
    }
    if err.is_connect() || err.is_timeout() || err.is_request() {
        return ChainError::Unreachable {
            endpoint,
            reason: error_chain(err),
        };
    }
    ChainError::Rpc {
        code: None,
        message: error_chain(err),
    }
}

/// An error and its causes on one line ("error sending request: connection refused").
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cli_monikers_and_urls() {
        let cases = [
            ("localnet", Cluster::Localnet),
            ("localhost", Cluster::Localnet),
            ("l", Cluster::Localnet),
            ("devnet", Cluster::Devnet),
            ("d", Cluster::Devnet),
            ("solana:devnet", Cluster::Devnet),
            ("testnet", Cluster::Testnet),
            ("t", Cluster::Testnet),
            ("mainnet-beta", Cluster::MainnetBeta),
            ("m", Cluster::MainnetBeta),
            ("Mainnet-Beta", Cluster::MainnetBeta),
            (
                "https://rpc.example.com/?api-key=x",
                Cluster::Custom("https://rpc.example.com/?api-key=x".into()),
            ),
            (
                "http://127.0.0.1:8899",
                Cluster::Custom("http://127.0.0.1:8899".into()),
            ),
        ];
        for (text, cluster) in cases {
            assert_eq!(text.parse::<Cluster>(), Ok(cluster), "{text}");
        }
        for bad in ["", "devnet2", "ftp://example.com", "example.com", "http://"] {
            assert!(bad.parse::<Cluster>().is_err(), "{bad}");
        }
    }

    #[test]
    fn named_clusters_round_trip() {
        for cluster in [
            Cluster::Localnet,
            Cluster::Devnet,
            Cluster::Testnet,
            Cluster::MainnetBeta,
        ] {
            assert_eq!(cluster.to_string().parse::<Cluster>(), Ok(cluster.clone()));
            assert_eq!(cluster.network().unwrap().parse::<Cluster>(), Ok(cluster));
        }
        assert_eq!(Cluster::Devnet.url(), "https://api.devnet.solana.com");
        assert_eq!(Cluster::Localnet.url(), "http://127.0.0.1:8899");
    }
}
