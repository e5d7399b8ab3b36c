//! What the user allows the agent to do with its money, and the checks
//! that keep a service's terms (its manifest) and every deposit inside it.

use anchor_lang::prelude::Pubkey;

use super::errors::ClientError;
use super::file::Durability;
use super::spend::{ServiceFilter, SpendLimit};
use crate::manifest::{Manifest, Price, Pricing, PricingMode, AMP_VERSION};

/// What the user allows the agent to do with its money.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The mint the agent pays in; services that do not accept it are refused.
    pub mint: Pubkey,
    /// The most the agent ever signs, across all services and restarts of
    /// one lane file, in the mint's smallest unit.
    pub budget: u64,
    /// Deposit of a new channel; `None`: a quarter of the budget (never more
    /// than the budget left). Raised to the service's `min_deposit`.
    pub deposit: Option<u64>,
    /// Most one channel may hold (its deposit and top-ups; delegated caps count).
    pub max_deposit: u64,
    /// Grace period of a new channel (seconds); raised to the service's minimum.
    pub grace_period: u32,
    /// Longest grace period accepted: a vanished service keeps the deposit this long.
    pub max_grace_period: u32,
    /// Top a lane up once it can pay less than this; `None`: a quarter of its limit.
    pub top_up_below: Option<u64>,
    /// How much a top-up adds; `None`: the deposit a new channel would get.
    pub top_up_amount: Option<u64>,
    /// Seqs and budget reserved ahead, in requests: the lane file is written
    /// once per lease. 0 writes it before every request.
    pub lease: u64,
    /// Retries of a request refused for a seq race (`AMP_INVALID_SEQ`).
    /// Concurrent requests on one lane race on the wire (the service takes
    /// only a seq above the last it accepted), and a retry, with a fresh
    /// seq, can lose again to one signed meanwhile: four tasks sharing a
    /// lane over loopback lose about one request in ten, sometimes twice.
    pub seq_retries: u32,
    /// The manifest's `network` the agent accepts (`solana:devnet`); `None`: any.
    pub network: Option<String>,
    /// How hard the lane file is pushed to disk.
    pub durability: Durability,
    /// When to open (and top up) through a service that sponsors the rent
    /// and fee.
    pub sponsoring: Sponsoring,
    /// The highest prices the agent accepts: a service whose manifest asks
    /// more anywhere is refused before any channel is opened.
    pub max_prices: PriceCeilings,
    /// Most spent within rolling windows, in all and per service; counted
    /// from the spend log, so restarts never reset them.
    pub limits: Vec<SpendLimit>,
    /// Which services may be paid at all.
    pub services: ServiceFilter,
    /// Most the agent's own channels may hold at once (deposits and
    /// top-ups), apart from what may be spent; `None`: no cap.
    pub max_in_channels: Option<u64>,
}

/// The highest rate the agent accepts in each pricing mode, in the mint's
/// smallest unit per call, second, byte or token (a token's input and
/// output prices included); `None`: any.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PriceCeilings {
    /// Per call.
    pub per_call: Option<u64>,
    /// Per second.
    pub per_second: Option<u64>,
    /// Per byte.
    pub per_byte: Option<u64>,
    /// Per token, input or output.
    pub per_token: Option<u64>,
}

impl PriceCeilings {
    fn of(&self, mode: PricingMode) -> Option<u64> {
        match mode {
            PricingMode::PerCall => self.per_call,
            PricingMode::PerSecond => self.per_second,
            PricingMode::PerByte => self.per_byte,
            PricingMode::PerToken => self.per_token,
        }
    }

    /// The first price of `pricing` above its ceiling, said for people.
    fn first_above(&self, pricing: &Pricing) -> Option<String> {
        let above = |what: &str, price: &Price| {
            let ceiling = self.of(price.mode)?;
            (price.rate > ceiling).then(|| {
                format!(
                    "{what} costs {} {}, above the policy's {ceiling}",
                    price.rate, price.mode
                )
            })
        };
        let token = |rate: u64| Price {
            mode: PricingMode::PerToken,
            rate,
        };
        let mut prices = vec![("the default".to_owned(), pricing.default)];
        for (route, price) in &pricing.routes {
            // A route with token prices charges those, not its rate.
            if !pricing.tokens.contains_key(route) {
                prices.push((format!("route {route}"), *price));
            }
        }
        for (route, methods) in &pricing.methods {
            for (method, price) in methods {
                prices.push((format!("{method} on {route}"), *price));
            }
        }
        for (route, tokens) in &pricing.tokens {
            prices.push((format!("an input token on {route}"), token(tokens.input)));
            prices.push((format!("an output token on {route}"), token(tokens.output)));
            for (model, model_prices) in &tokens.models {
                let of = format!("of {model} on {route}");
                prices.push((format!("an input token {of}"), token(model_prices.input)));
                prices.push((format!("an output token {of}"), token(model_prices.output)));
            }
        }
        prices.iter().find_map(|(what, price)| above(what, price))
    }
}

/// When the agent asks a service to front an open's rent and fee (and a
/// top-up's fee), if the service's manifest offers it for the terms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sponsoring {
    /// When the fee payer holds too little SOL to send the transaction alone.
    #[default]
    Auto,
    /// Whenever it is offered, keeping the agent's SOL.
    Prefer,
    /// Never: the agent pays its own rent and fees.
    Never,
}

impl std::str::FromStr for Sponsoring {
    type Err = String;

    /// `auto`, `prefer` or `never`, as command lines and files spell them.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(Self::Auto),
            "prefer" => Ok(Self::Prefer),
            "never" => Ok(Self::Never),
            other => Err(format!("{other:?} is not auto, prefer or never")),
        }
    }
}

impl Policy {
    /// A policy paying in `mint` up to `budget`, with defaults for the rest.
    pub fn new(mint: Pubkey, budget: u64) -> Self {
        Self {
            mint,
            budget,
            deposit: None,
            max_deposit: u64::MAX,
            grace_period: 3_600,
            max_grace_period: 7 * 24 * 3_600,
            top_up_below: None,
            top_up_amount: None,
            lease: 32,
            seq_retries: 16,
            network: None,
            durability: Durability::Full,
            sponsoring: Sponsoring::Auto,
            max_prices: PriceCeilings::default(),
            limits: Vec::new(),
            services: ServiceFilter::default(),
            max_in_channels: None,
        }
    }

    /// Refuses a manifest the policy cannot pay through.
    pub(super) fn check_manifest(
        &self,
        service: &str,
        manifest: &Manifest,
    ) -> Result<(), ClientError> {
        let refuse = |reason: String| {
            Err(ClientError::Terms {
                service: service.to_owned(),
                reason,
            })
        };
        self.services
            .check(service, Some(&manifest.recipient))
            .map_err(|reason| ClientError::NotAllowed {
                service: service.to_owned(),
                reason,
            })?;
        if manifest.amp_version != AMP_VERSION {
            return refuse(format!("AMP version {}", manifest.amp_version));
        }
        if manifest.program_id != amp_channel::ID {
            return refuse(format!("program {} is not this SDK's", manifest.program_id));
        }
        if let Some(network) = &self.network {
            if &manifest.network != network {
                return refuse(format!("network {} instead of {network}", manifest.network));
            }
        }
        if !manifest.mints.iter().any(|m| m.mint == self.mint) {
            return refuse(format!("mint {} is not accepted", self.mint));
        }
        if let Some(reason) = self.max_prices.first_above(&manifest.pricing) {
            return refuse(reason);
        }
        if manifest.min_grace_period > self.max_grace_period {
            return refuse(format!(
                "a grace period of {} s is above the policy's {} s",
                manifest.min_grace_period, self.max_grace_period
            ));
        }
        Ok(())
    }

    /// The deposit a new channel (or a top-up) gets, with `available` of
    /// the budget not held by anything.
    pub(super) fn deposit_for(
        &self,
        service: &str,
        manifest: &Manifest,
        available: u64,
    ) -> Result<u64, ClientError> {
        if available == 0 {
            return Err(ClientError::BudgetExceeded {
                budget: self.budget,
                needed: 1,
                available,
            });
        }
        let wanted = self.deposit.unwrap_or((self.budget / 4).max(1));
        let deposit = wanted.min(available).max(manifest.min_deposit).max(1);
        if deposit > self.max_deposit {
            return Err(ClientError::Terms {
                service: service.to_owned(),
                reason: format!(
                    "a deposit of {deposit} is above the policy's {}",
                    self.max_deposit
                ),
            });
        }
        Ok(deposit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{MintInfo, Price, Pricing, PricingMode};

    fn key(byte: u8) -> Pubkey {
        Pubkey::new_from_array([byte; 32])
    }

    fn manifest() -> Manifest {
        Manifest {
            amp_version: AMP_VERSION.into(),
            network: "solana:devnet".into(),
            program_id: amp_channel::ID,
            recipient: key(2),
            mints: vec![MintInfo {
                mint: key(1),
                decimals: 6,
                symbol: None,
            }],
            min_deposit: 0,
            min_grace_period: 60,
            credit: 0,
            pricing: Pricing {
                default: Price {
                    mode: PricingMode::PerCall,
                    rate: 1,
                },
                routes: Default::default(),
                tokens: Default::default(),
                methods: Default::default(),
            },
            sponsor: None,
            session: None,
        }
    }

    fn refused(policy: &Policy, manifest: &Manifest) -> String {
        match policy.check_manifest("http://s", manifest) {
            Err(ClientError::Terms { reason, .. }) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn manifests_outside_the_policy_are_refused() {
        let mut policy = Policy::new(key(1), 1_000);
        assert!(policy.check_manifest("http://s", &manifest()).is_ok());
        let other_mint = Policy::new(key(9), 1_000);
        assert!(refused(&other_mint, &manifest()).contains("not accepted"));
        let mut slow = manifest();
        slow.min_grace_period = policy.max_grace_period + 1;
        assert!(refused(&policy, &slow).contains("grace period"));
        let mut old = manifest();
        old.amp_version = "0".into();
        assert!(refused(&policy, &old).contains("AMP version"));
        let mut foreign = manifest();
        foreign.program_id = key(3);
        assert!(refused(&policy, &foreign).contains("program"));
        policy.network = Some("solana:mainnet".into());
        assert!(refused(&policy, &manifest()).contains("network"));
    }

    #[test]
    fn prices_above_the_ceilings_are_refused() {
        use crate::manifest::{ModelPrices, TokenPrices};
        let price = |mode, rate| Price { mode, rate };
        let mut terms = manifest();
        terms
            .pricing
            .routes
            .insert("/v1/chat".into(), price(PricingMode::PerToken, 99));
        terms.pricing.tokens.insert(
            "/v1/chat".into(),
            TokenPrices {
                input: 1,
                output: 4,
                models: [(
                    "big".to_owned(),
                    ModelPrices {
                        input: 3,
                        output: 10,
                    },
                )]
                .into(),
            },
        );
        terms.pricing.methods.insert(
            "/mcp".into(),
            [("tools/call".to_owned(), price(PricingMode::PerCall, 500))].into(),
        );
        let mut policy = Policy::new(key(1), 1_000);
        policy.max_prices.per_call = Some(500);
        // The route's rate is not charged once it has token prices.
        policy.max_prices.per_token = Some(10);
        assert!(policy.check_manifest("http://s", &terms).is_ok());
        policy.max_prices.per_token = Some(9);
        assert_eq!(
            refused(&policy, &terms),
            "an output token of big on /v1/chat costs 10 per token, above the policy's 9"
        );
        policy.max_prices.per_token = None;
        policy.max_prices.per_call = Some(499);
        assert!(refused(&policy, &terms).starts_with("tools/call on /mcp costs 500"));
        policy.max_prices.per_call = Some(0);
        assert!(refused(&policy, &terms).starts_with("the default costs 1"));
    }

    #[test]
    fn deposits_follow_the_policy_the_budget_and_the_service() {
        let mut policy = Policy::new(key(1), 1_000);
        let mut terms = manifest();
        // A quarter of the budget, never more than is left of it.
        assert_eq!(policy.deposit_for("s", &terms, 1_000).unwrap(), 250);
        assert_eq!(policy.deposit_for("s", &terms, 100).unwrap(), 100);
        // Raised to the service's minimum, within max_deposit.
        terms.min_deposit = 400;
        assert_eq!(policy.deposit_for("s", &terms, 1_000).unwrap(), 400);
        policy.max_deposit = 300;
        assert!(matches!(
            policy.deposit_for("s", &terms, 1_000),
            Err(ClientError::Terms { .. })
        ));
        assert!(matches!(
            policy.deposit_for("s", &terms, 0),
            Err(ClientError::BudgetExceeded { needed: 1, .. })
        ));
    }
}
