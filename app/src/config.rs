//! Where the cluster and the wallet come from when the command line does not
//! say: the Solana CLI's own configuration (`solana config set`), then the
//! defaults.

use std::path::{Path, PathBuf};

use amp_sdk::rpc::Cluster;
use solana_commitment_config::CommitmentLevel;

use crate::error::CliError;

/// The cluster used when neither `--url` nor the Solana CLI's configuration names one.
pub const DEFAULT_CLUSTER: Cluster = Cluster::Devnet;

/// What `~/.config/solana/cli/config.yml` says, as far as `amp` cares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SolanaConfig {
    pub json_rpc_url: Option<String>,
    pub keypair_path: Option<PathBuf>,
    /// As written (`processed`, `confirmed`, `finalized`); checked by
    /// [`commitment`](Self::commitment) when a command uses it.
    pub commitment: Option<String>,
}

impl SolanaConfig {
    /// Reads the Solana CLI's configuration file, if there is one.
    pub fn load() -> Self {
        home()
            .map(|home| home.join(".config/solana/cli/config.yml"))
            .and_then(|path| std::fs::read_to_string(path).ok())
            .map(|text| Self::parse(&text))
            .unwrap_or_default()
    }

    /// Reads `file` (`-C/--config`) or, without one, the default file. A
    /// file named on the command line must exist: a typo must not quietly
    /// select the default cluster and wallet.
    pub fn load_from(file: Option<&Path>) -> Result<Self, CliError> {
        let Some(file) = file else {
            return Ok(Self::load());
        };
        let path = expand_home(file);
        std::fs::read_to_string(&path)
            .map(|text| Self::parse(&text))
            .map_err(|e| CliError::Io(format!("Solana CLI config {}", path.display()), e))
    }

    /// The configured commitment, if any; an unknown word is an error.
    pub fn commitment(&self) -> Result<Option<CommitmentLevel>, CliError> {
        self.commitment
            .as_deref()
            .map(|word| {
                parse_commitment(word)
                    .map_err(|e| CliError::usage(format!("Solana CLI config commitment: {e}")))
            })
            .transpose()
    }

    /// Reads the top-level `key: value` lines we need; the file is YAML
    /// written by the Solana CLI, flat and unquoted or double-quoted.
    pub fn parse(text: &str) -> Self {
        let mut config = Self::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
            if value.is_empty() {
                continue;
            }
            match key.trim_end() {
                "json_rpc_url" => config.json_rpc_url = Some(value.to_owned()),
                "keypair_path" => config.keypair_path = Some(PathBuf::from(value)),
                "commitment" => config.commitment = Some(value.to_owned()),
                _ => {}
            }
        }
        config
    }
}

/// `processed`, `confirmed` or `finalized`, as the Solana CLI writes them.
pub fn parse_commitment(word: &str) -> Result<CommitmentLevel, String> {
    word.trim()
        .parse::<CommitmentLevel>()
        .map_err(|_| format!("{word:?} is not a commitment (processed, confirmed or finalized)"))
}

/// `~/.config/solana/id.json`, the Solana CLI's default wallet.
pub fn default_keypair_path() -> PathBuf {
    home()
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".config/solana/id.json")
}

/// `~/.config/amp/lanes.json`: the lanes `amp pay` holds and what it signed.
pub fn default_lane_file() -> PathBuf {
    home()
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".config/amp/lanes.json")
}

/// Expands a leading `~/`.
pub fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), home()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_owned(),
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// `90`, `90s`, `15m`, `1h`, `7d` as seconds.
pub fn parse_duration(text: &str) -> Result<u32, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 3600, 90s, 15m, 1h, 7d)"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?} (use s, m, h or d)")),
    };
    number
        .checked_mul(scale)
        .and_then(|s| u32::try_from(s).ok())
        .ok_or_else(|| format!("{text} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_solana_cli_config() {
        let text = "---\njson_rpc_url: \"https://api.devnet.solana.com\"\nwebsocket_url: \"\"\nkeypair_path: /home/me/.config/solana/id.json\naddress_labels:\n  \"11111111111111111111111111111111\": System Program\ncommitment: confirmed\n";
        let config = SolanaConfig::parse(text);
        assert_eq!(
            config.json_rpc_url.as_deref(),
            Some("https://api.devnet.solana.com")
        );
        assert_eq!(
            config.keypair_path,
            Some(PathBuf::from("/home/me/.config/solana/id.json"))
        );
        assert_eq!(
            config.commitment().unwrap(),
            Some(CommitmentLevel::Confirmed)
        );
    }

    #[test]
    fn reads_the_commitment_and_refuses_an_unknown_one() {
        let config = SolanaConfig::parse("commitment: \"finalized\"\n");
        assert_eq!(
            config.commitment().unwrap(),
            Some(CommitmentLevel::Finalized)
        );
        let config = SolanaConfig::parse("json_rpc_url: http://127.0.0.1:8899\n");
        assert_eq!(config.commitment().unwrap(), None);
        let config = SolanaConfig::parse("commitment: eventually\n");
        assert!(config.commitment().is_err());
        assert_eq!(
            parse_commitment("processed"),
            Ok(CommitmentLevel::Processed)
        );
        assert!(parse_commitment("").is_err());
    }

    #[test]
    fn a_named_config_file_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yml");
        std::fs::write(
            &path,
            "json_rpc_url: http://127.0.0.1:8899\ncommitment: processed\n",
        )
        .unwrap();
        let config = SolanaConfig::load_from(Some(&path)).unwrap();
        assert_eq!(
            config.json_rpc_url.as_deref(),
            Some("http://127.0.0.1:8899")
        );
        assert_eq!(
            config.commitment().unwrap(),
            Some(CommitmentLevel::Processed)
        );
        assert!(SolanaConfig::load_from(Some(&dir.path().join("missing.yml"))).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3600"), Ok(3_600));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("1h"), Ok(3_600));
        assert_eq!(parse_duration("30d"), Ok(2_592_000));
        for bad in ["", "h", "1w", "-5", "1.5h", "99999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
