//! Building an [`AmpClient`]: its chain, wallet, voucher key and HTTP
//! client, and the lane file it continues from.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use amp_channel::constants::MIN_GRACE_PERIOD;
use solana_keypair::Keypair;

use super::agent::{AmpClient, Inner, SharedSigner};
use super::book::{Book, Ledger};
use super::errors::ClientError;
use super::file;
use super::policy::Policy;
use super::session::Sessions;
use super::spend::{spend_log_path, Approver, Spending};
use crate::chain::Chain;

/// Builds an [`AmpClient`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct AmpClientBuilder {
    path: PathBuf,
    policy: Policy,
    chain: Option<Arc<dyn Chain>>,
    wallet: Option<Arc<Keypair>>,
    signer: Option<SharedSigner>,
    http: Option<reqwest::Client>,
    approval: Option<(u64, Approver)>,
}

impl AmpClientBuilder {
    /// The cluster the agent opens, tops up and refunds on.
    pub fn chain(mut self, chain: impl Chain + 'static) -> Self {
        self.chain = Some(Arc::new(chain));
        self
    }

    /// The funder: pays deposits and signs `open`, `top_up`, `delegate`,
    /// `request_close`. It also signs vouchers unless [`signer`](Self::signer) is set.
    pub fn wallet(mut self, wallet: Keypair) -> Self {
        self.wallet = Some(Arc::new(wallet));
        self
    }

    /// A separate voucher key (a hot key, or a sub-agent's delegate key).
    pub fn signer(mut self, signer: SharedSigner) -> Self {
        self.signer = Some(signer);
        self
    }

    /// The HTTP client to use (timeouts, proxies, TLS roots).
    pub fn http(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Asks `hook` before any open, top-up or payment moving at least
    /// `threshold` (0: before every one); a `false` answer refuses it with
    /// [`ClientError::NotApproved`]. The hook may take its time (ask a
    /// person, a policy service): nothing is committed meanwhile.
    pub fn approval(mut self, threshold: u64, hook: Approver) -> Self {
        self.approval = Some((threshold, hook));
        self
    }

    /// Locks and reads the lane file, and resolves lanes whose opening was
    /// interrupted.
    pub async fn build(self) -> Result<AmpClient, ClientError> {
        let signer: SharedSigner = match (&self.signer, &self.wallet) {
            (Some(signer), _) => Arc::clone(signer),
            (None, Some(wallet)) => Arc::clone(wallet) as SharedSigner,
            (None, None) => {
                return Err(ClientError::Config(
                    "a client needs a wallet or a voucher signer".into(),
                ))
            }
        };
        if self.policy.max_grace_period < MIN_GRACE_PERIOD {
            return Err(ClientError::Config(format!(
                "max_grace_period must be at least {MIN_GRACE_PERIOD} s"
            )));
        }
        let path = self.path.clone();
        let durability = self.policy.durability;
        let (lane_file, snapshot) =
            tokio::task::spawn_blocking(move || file::LaneFile::open(&path, durability))
                .await
                .map_err(|e| ClientError::Config(format!("opening the lane file: {e}")))??;
        let book = Book::from_snapshot(self.policy.budget, snapshot);
        let log = spend_log_path(&self.path);
        let limits = self.policy.limits.clone();
        let spending =
            tokio::task::spawn_blocking(move || Spending::open(&log, &limits, durability))
                .await
                .map_err(|e| ClientError::Config(format!("opening the spend log: {e}")))??;
        let client = AmpClient {
            inner: Arc::new(Inner {
                http: self.http.unwrap_or_default(),
                chain: self.chain,
                wallet: self.wallet,
                signer,
                policy: self.policy,
                ledger: Ledger::new(book, lane_file),
                services: Mutex::new(HashMap::new()),
                top_ups: Mutex::new(HashMap::new()),
                sessions: Sessions::default(),
                spending,
                depositing: tokio::sync::Mutex::new(()),
                approval: self.approval,
            }),
        };
        client.resolve_openings().await?;
        let status = client.budget();
        tracing::info!(
            file = %client.inner.ledger.path().display(),
            lanes = client.lanes().len(),
            spent = status.spent,
            budget = status.budget,
            "AMP client ready"
        );
        Ok(client)
    }
}

impl AmpClient {
    /// Starts building a client whose lanes live in the file at `path`.
    pub fn builder(path: impl Into<PathBuf>, policy: Policy) -> AmpClientBuilder {
        AmpClientBuilder {
            path: path.into(),
            policy,
            chain: None,
            wallet: None,
            signer: None,
            http: None,
            approval: None,
        }
    }
}
