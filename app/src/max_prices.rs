//! The price ceilings of `amp pay` and `amp proxy`: services asking more are
//! refused before any channel is opened.

use amp_sdk::client::PriceCeilings;

use crate::amount::Amount;
use crate::error::CliError;

/// `--max-per-call`, `--max-per-second`, `--max-per-byte`, `--max-per-token`.
#[derive(clap::Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct MaxPrices {
    /// Refuse services asking more than this per call, in tokens.
    #[arg(long, value_name = "AMOUNT")]
    pub max_per_call: Option<Amount>,
    /// Refuse services asking more than this per second, in tokens.
    #[arg(long, value_name = "AMOUNT")]
    pub max_per_second: Option<Amount>,
    /// Refuse services asking more than this per byte, in tokens.
    #[arg(long, value_name = "AMOUNT")]
    pub max_per_byte: Option<Amount>,
    /// Refuse services asking more than this per token (input or output), in tokens.
    #[arg(long, value_name = "AMOUNT")]
    pub max_per_token: Option<Amount>,
}

impl MaxPrices {
    /// The ceilings in base units of a mint with `decimals` decimals.
    pub fn ceilings(&self, decimals: u8) -> Result<PriceCeilings, CliError> {
        let base = |amount: &Option<Amount>| {
            amount
                .as_ref()
                .map(|a| a.to_base_units(decimals))
                .transpose()
        };
        Ok(PriceCeilings {
            per_call: base(&self.max_per_call)?,
            per_second: base(&self.max_per_second)?,
            per_byte: base(&self.max_per_byte)?,
            per_token: base(&self.max_per_token)?,
        })
    }
}
