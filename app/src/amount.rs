//! Token amounts as people write them (`2.5` USDC) and as the chain counts
//! them (2 500 000 base units of a 6-decimal mint), converted exactly.

use std::fmt;
use std::str::FromStr;

/// An amount given on the command line: a decimal number of tokens, which
/// becomes base units once the mint's decimals are known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Amount {
    /// Whole tokens and a fraction, as written (`"2.5"`).
    Tokens(String),
    /// Base units of the mint (what the program and the vouchers count).
    Base(u64),
}

/// Why an amount was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("{0:?} is not a number of tokens (write e.g. 10 or 0.25)")]
    NotDecimal(String),
    #[error("{text} has more decimal places than the mint's {decimals}")]
    TooPrecise { text: String, decimals: u8 },
    #[error("{0} is too large for a token amount")]
    Overflow(String),
}

impl Amount {
    /// The amount in base units of a mint with `decimals` decimals.
    pub fn to_base_units(&self, decimals: u8) -> Result<u64, AmountError> {
        match self {
            Amount::Base(units) => Ok(*units),
            Amount::Tokens(text) => parse_tokens(text, decimals),
        }
    }
}

impl FromStr for Amount {
    type Err = AmountError;

    /// Checks the syntax now; the precision is checked against the mint later.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // 18 decimals is more than any SPL mint has; the syntax check is all we need here.
        parse_tokens(text, u8::MAX).map(|_| Amount::Tokens(text.to_owned()))
    }
}

/// As written in a file: a string of tokens (`"2.5"`).
impl<'de> serde::Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Tokens(text) => f.write_str(text),
            Amount::Base(units) => write!(f, "{units} base units"),
        }
    }
}

/// Parses `12`, `12.`, `0.25` or `.5` tokens into base units, exactly.
pub fn parse_tokens(text: &str, decimals: u8) -> Result<u64, AmountError> {
    let not_decimal = || AmountError::NotDecimal(text.to_owned());
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return Err(not_decimal());
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > usize::from(decimals) {
        return Err(AmountError::TooPrecise {
            text: text.to_owned(),
            decimals,
        });
    }
    if decimals == u8::MAX {
        // Syntax check only.
        return Ok(0);
    }
    let overflow = || AmountError::Overflow(text.to_owned());
    let scale = 10u64
        .checked_pow(u32::from(decimals))
        .ok_or_else(overflow)?;
    let whole: u64 = match whole.trim_start_matches('0') {
        "" => 0,
        w => w.parse().map_err(|_| overflow())?,
    };
    let fraction_units: u64 = if fraction.is_empty() {
        0
    } else {
        let padded = format!("{fraction:0<width$}", width = usize::from(decimals));
        padded.parse().map_err(|_| overflow())?
    };
    whole
        .checked_mul(scale)
        .and_then(|w| w.checked_add(fraction_units))
        .ok_or_else(overflow)
}

/// Base units written as tokens: `2500000` at 6 decimals is `2.5`.
pub fn format_tokens(units: u64, decimals: u8) -> String {
    if decimals == 0 {
        return units.to_string();
    }
    let text = format!("{units:0>width$}", width = usize::from(decimals) + 1);
    let (whole, fraction) = text.split_at(text.len() - usize::from(decimals));
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        whole.to_owned()
    } else {
        format!("{whole}.{fraction}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly() {
        for (text, units) in [
            ("0", 0),
            ("1", 1_000_000),
            ("2.5", 2_500_000),
            ("0.000001", 1),
            (".5", 500_000),
            ("3.", 3_000_000),
            ("1.230000000", 1_230_000),
            ("18446744073709.551615", u64::MAX),
        ] {
            assert_eq!(parse_tokens(text, 6), Ok(units), "{text}");
        }
        assert_eq!(parse_tokens("7", 0), Ok(7));
    }

    #[test]
    fn refuses_what_is_not_an_amount() {
        for text in ["", ".", "-1", "1e6", "1,5", " 1", "0x10", "1.2.3"] {
            assert!(matches!(
                parse_tokens(text, 6),
                Err(AmountError::NotDecimal(_))
            ));
            assert!(text.parse::<Amount>().is_err(), "{text}");
        }
        assert!(matches!(
            parse_tokens("0.0000001", 6),
            Err(AmountError::TooPrecise { .. })
        ));
        assert!(matches!(
            parse_tokens("18446744073709.551616", 6),
            Err(AmountError::Overflow(_))
        ));
    }

    #[test]
    fn formats_round_trip() {
        for units in [0, 1, 10, 999_999, 1_000_000, 2_500_000, u64::MAX] {
            let text = format_tokens(units, 6);
            assert_eq!(parse_tokens(&text, 6), Ok(units), "{text}");
        }
        assert_eq!(format_tokens(2_500_000, 6), "2.5");
        assert_eq!(format_tokens(1, 6), "0.000001");
        assert_eq!(format_tokens(42, 0), "42");
    }
}
