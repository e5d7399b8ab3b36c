//! The spend policy of `amp pay`: limits over rolling windows, the services
//! it may pay, a cap on what its channels hold, and the amount above which
//! a person must approve, from flags and from a TOML file (`--policy`).
//! Flags add to the file's lists and win over its single values.
//!
//! ```toml
//! limit = ["5/day", "1/hour"]        # in all, in tokens per period
//! service_limit = ["2/day"]          # at each service
//! allow = ["https://api.example.com"] # origins or recipient keys
//! deny = []
//! max_in_channels = "10"
//! approve_above = "0.5"
//! max_per_call = "0.001"             # price ceilings, as --max-per-call
//! ```

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use amp_sdk::client::spend::{Approval, Approver, ServiceFilter, SpendLimit};
use amp_sdk::client::Policy;
use serde::Deserialize;

use crate::amount::Amount;
use crate::error::CliError;
use crate::max_prices::MaxPrices;

/// `AMOUNT/PERIOD`: tokens within any period (`5/day`, `0.5/10m`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rate {
    pub amount: Amount,
    pub period: Duration,
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (amount, period) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not AMOUNT/PERIOD (e.g. 5/day)"))?;
        Ok(Self {
            amount: amount.trim().parse().map_err(|e| format!("{e}"))?,
            period: parse_period(period.trim())?,
        })
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A period: `second`, `minute`, `hour`, `day`, `week`, or a number with
/// `s`, `m`, `h`, `d` or `w` (`10m`, `24h`).
pub fn parse_period(text: &str) -> Result<Duration, String> {
    let named = match text {
        "second" | "s" => Some(1),
        "minute" | "m" | "min" => Some(60),
        "hour" | "h" => Some(3_600),
        "day" | "d" => Some(86_400),
        "week" | "w" => Some(7 * 86_400),
        _ => None,
    };
    if let Some(seconds) = named {
        return Ok(Duration::from_secs(seconds));
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit (s, m, h, d or w)"))?;
    let (count, unit) = text.split_at(split);
    let count: u64 = count
        .parse()
        .map_err(|_| format!("{text:?} is not a period (e.g. hour, 10m, 7d)"))?;
    let unit = parse_period(unit)?;
    match unit.checked_mul(u32::try_from(count).map_err(|_| format!("{text:?} is too long"))?) {
        Some(period) if !period.is_zero() => Ok(period),
        _ => Err(format!("{text:?} is not a period of at least a second")),
    }
}

/// The spend policy flags of `amp pay`.
#[derive(clap::Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct SpendArgs {
    /// Most spent in all within any period, in tokens: AMOUNT/PERIOD
    /// (5/day, 0.5/10m); repeatable.
    #[arg(long = "limit", value_name = "AMOUNT/PERIOD")]
    pub limits: Vec<Rate>,
    /// Most spent at each service within any period; repeatable.
    #[arg(long = "service-limit", value_name = "AMOUNT/PERIOD")]
    pub service_limits: Vec<Rate>,
    /// Pay only these services (origins or recipient keys); repeatable.
    #[arg(long = "allow", value_name = "SERVICE")]
    pub allow: Vec<String>,
    /// Never pay these services (origins or recipient keys); repeatable.
    #[arg(long = "deny", value_name = "SERVICE")]
    pub deny: Vec<String>,
    /// Most the agent's channels may hold at once, in tokens.
    #[arg(long, value_name = "AMOUNT")]
    pub max_in_channels: Option<Amount>,
    /// Ask on the terminal before opening, topping up or paying this much
    /// or more, in tokens (without a terminal: refused).
    #[arg(long, value_name = "AMOUNT")]
    pub approve_above: Option<Amount>,
    /// A TOML file of the same settings (and the price ceilings).
    #[arg(long = "policy", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// The `--policy` file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    limit: Vec<Rate>,
    #[serde(default)]
    service_limit: Vec<Rate>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
    max_in_channels: Option<Amount>,
    approve_above: Option<Amount>,
    max_per_call: Option<Amount>,
    max_per_second: Option<Amount>,
    max_per_byte: Option<Amount>,
    max_per_token: Option<Amount>,
}

fn read_file(path: &Path) -> Result<PolicyFile, CliError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| CliError::Io(path.display().to_string(), e))?;
    toml::from_str(&text).map_err(|e| CliError::usage(format!("{}: {e}", path.display())))
}

impl SpendArgs {
    /// The file's settings with the flags', and the price ceilings of
    /// `prices` over the file's.
    pub fn load(&self, prices: &MaxPrices) -> Result<SpendPolicy, CliError> {
        let file = match &self.file {
            Some(path) => read_file(path)?,
            None => PolicyFile::default(),
        };
        let join = |a: &[Rate], b: &[Rate]| a.iter().chain(b).cloned().collect::<Vec<_>>();
        let join_text = |a: &[String], b: &[String]| a.iter().chain(b).cloned().collect();
        Ok(SpendPolicy {
            limits: join(&file.limit, &self.limits),
            service_limits: join(&file.service_limit, &self.service_limits),
            services: ServiceFilter {
                allow: join_text(&file.allow, &self.allow),
                deny: join_text(&file.deny, &self.deny),
            },
            max_in_channels: self.max_in_channels.clone().or(file.max_in_channels),
            approve_above: self.approve_above.clone().or(file.approve_above),
            prices: MaxPrices {
                max_per_call: prices.max_per_call.clone().or(file.max_per_call),
                max_per_second: prices.max_per_second.clone().or(file.max_per_second),
                max_per_byte: prices.max_per_byte.clone().or(file.max_per_byte),
                max_per_token: prices.max_per_token.clone().or(file.max_per_token),
            },
        })
    }
}

/// The spend policy from flags and file, in tokens until a mint is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpendPolicy {
    pub limits: Vec<Rate>,
    pub service_limits: Vec<Rate>,
    /// Checked before any call to a service (its manifest's recipient after).
    pub services: ServiceFilter,
    pub max_in_channels: Option<Amount>,
    pub approve_above: Option<Amount>,
    pub prices: MaxPrices,
}

impl SpendPolicy {
    /// Sets `policy`'s limits, filter, cap and price ceilings in base units
    /// of a mint with `decimals`; returns the approval threshold, if any.
    pub fn apply(&self, policy: &mut Policy, decimals: u8) -> Result<Option<u64>, CliError> {
        let base = |amount: &Amount| amount.to_base_units(decimals).map_err(CliError::from);
        let mut limits = Vec::new();
        for rate in &self.limits {
            limits.push(SpendLimit::total(base(&rate.amount)?, rate.period));
        }
        for rate in &self.service_limits {
            limits.push(SpendLimit::per_service(base(&rate.amount)?, rate.period));
        }
        policy.limits = limits;
        policy.services = self.services.clone();
        policy.max_in_channels = self.max_in_channels.as_ref().map(base).transpose()?;
        policy.max_prices = self.prices.ceilings(decimals)?;
        self.approve_above.as_ref().map(base).transpose()
    }
}

/// Asks on the terminal (`/dev/tty`, so a body piped to stdin is not
/// read); no terminal means no.
pub fn terminal_approver() -> Approver {
    Arc::new(|question: Approval| {
        Box::pin(async move {
            tokio::task::spawn_blocking(move || ask(&question).unwrap_or(false))
                .await
                .unwrap_or(false)
        })
    })
}

fn ask(question: &Approval) -> std::io::Result<bool> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let mut out = &tty;
    write!(
        out,
        "amp: {} {} base units at {}? [y/N] ",
        question.kind, question.amount, question.service
    )?;
    out.flush()?;
    let mut answer = String::new();
    std::io::BufReader::new(&tty).read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use anchor_lang::prelude::Pubkey;

    #[test]
    fn periods_and_rates_parse() {
        assert_eq!(parse_period("hour"), Ok(Duration::from_secs(3_600)));
        assert_eq!(parse_period("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_period("7d"), Ok(Duration::from_secs(7 * 86_400)));
        for bad in ["", "0s", "fortnight", "10", "-1h"] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
        let rate: Rate = "0.5/day".parse().unwrap();
        assert_eq!(rate.amount, Amount::Tokens("0.5".into()));
        assert!("5".parse::<Rate>().is_err());
    }

    #[test]
    fn flags_add_to_the_file_and_win_over_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(
            &path,
            "limit = [\"5/day\"]\nservice_limit = [\"2/hour\"]\nallow = [\"https://a.example\"]\n\
             max_in_channels = \"10\"\napprove_above = \"1\"\nmax_per_call = \"0.01\"\n",
        )
        .unwrap();
        let args = SpendArgs {
            limits: vec!["1/minute".parse().unwrap()],
            allow: vec!["https://b.example".into()],
            approve_above: Some("0.5".parse().unwrap()),
            file: Some(path.clone()),
            ..SpendArgs::default()
        };
        let mut policy = Policy::new(Pubkey::new_unique(), 1);
        let loaded = args.load(&MaxPrices::default()).unwrap();
        let threshold = loaded.apply(&mut policy, 2).unwrap();
        assert_eq!(threshold, Some(50));
        assert_eq!(
            policy.limits,
            [
                SpendLimit::total(500, Duration::from_secs(86_400)),
                SpendLimit::total(100, Duration::from_secs(60)),
                SpendLimit::per_service(200, Duration::from_secs(3_600)),
            ]
        );
        assert_eq!(
            policy.services.allow,
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(policy.max_in_channels, Some(1_000));
        assert_eq!(policy.max_prices.per_call, Some(1));

        std::fs::write(&path, "limits = [\"5/day\"]\n").unwrap();
        let typo = args.load(&MaxPrices::default()).unwrap_err();
        assert!(typo.to_string().contains("unknown field"), "{typo}");
    }
}
