//! Decimal numbers as AMP writes them: header values (`AMP-Seq`, `AMP-Amount`,
//! ...) and the JSON strings that carry amounts (a u64 does not survive a
//! JavaScript number).
//!
//! Only the canonical spelling is accepted: ASCII digits, a `-` only where the
//! value is signed, no `+`, no whitespace, no leading zeros, no `-0`. One value
//! has one spelling, so a value cannot be restated differently, and the
//! work done on hostile input is bounded by its length.

/// Longest canonical u64 (`18446744073709551615`) or i64 (`-9223372036854775808`).
pub const MAX_LEN: usize = 20;

/// Why a decimal value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecimalError {
    /// Empty, or holds something besides ASCII digits after an optional `-`
    /// (a `+`, whitespace, `1e3`, `0x10`...).
    #[error("not a decimal number")]
    NotDecimal,
    /// Digits with leading zeros, or `-0`: a second spelling of a value.
    #[error("not canonical (leading zeros or -0)")]
    NonCanonical,
    /// A `-` where only unsigned values are allowed.
    #[error("negative where only unsigned values are allowed")]
    Negative,
    /// The value does not fit the target type (u64 or i64).
    #[error("out of range")]
    Overflow,
}

/// Parses a canonical unsigned decimal.
pub fn parse_u64(text: &[u8]) -> Result<u64, DecimalError> {
    match text {
        [b'-', magnitude @ ..] => Err(match parse_magnitude(magnitude) {
            Ok(_) | Err(DecimalError::Overflow) => DecimalError::Negative,
            Err(e) => e,
        }),
        _ => parse_magnitude(text),
    }
}

/// Parses a canonical signed decimal.
pub fn parse_i64(text: &[u8]) -> Result<i64, DecimalError> {
    match text {
        [b'-', magnitude @ ..] => match parse_magnitude(magnitude)? {
            0 => Err(DecimalError::NonCanonical),
            m => 0i64.checked_sub_unsigned(m).ok_or(DecimalError::Overflow),
        },
        _ => i64::try_from(parse_magnitude(text)?).map_err(|_| DecimalError::Overflow),
    }
}

fn parse_magnitude(digits: &[u8]) -> Result<u64, DecimalError> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(DecimalError::NotDecimal);
    }
    if digits.len() > 1 && digits[0] == b'0' {
        return Err(DecimalError::NonCanonical);
    }
    digits.iter().try_fold(0u64, |value, digit| {
        value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(digit - b'0')))
            .ok_or(DecimalError::Overflow)
    })
}

/// Serde helper: a `u64` as a JSON string of its canonical decimal, for
/// `#[serde(with = "amp_sdk::decimal::u64_string")]`.
pub mod u64_string {
    use std::fmt;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    /// Writes `value` as a JSON string of its decimal digits.
    pub fn serialize<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    /// Reads a string holding a canonical decimal u64; a JSON number is refused.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_str(DecimalString)
    }

    /// Parses from the borrowed (or decoder-owned) string: no allocation.
    struct DecimalString;

    impl Visitor<'_> for DecimalString {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string holding a canonical decimal u64")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<u64, E> {
            super::parse_u64(text.as_bytes()).map_err(E::custom)
        }
    }

    /// The same for an `Option<u64>`; pair it with
    /// `#[serde(default, skip_serializing_if = "Option::is_none")]`.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        #[derive(Serialize, Deserialize)]
        #[serde(transparent)]
        struct Amount(#[serde(with = "super")] u64);

        /// Writes `Some` as a decimal string and `None` as `null`.
        pub fn serialize<S: Serializer>(
            value: &Option<u64>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            value.map(Amount).serialize(serializer)
        }

        /// Reads `null` as `None` and a canonical decimal string as `Some`.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<u64>, D::Error> {
            Ok(Option::<Amount>::deserialize(deserializer)?.map(|Amount(v)| v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DecimalError::*;

    #[test]
    fn unsigned() {
        assert_eq!(parse_u64(b"0"), Ok(0));
        assert_eq!(parse_u64(b"1000000"), Ok(1_000_000));
        assert_eq!(parse_u64(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), Err(Overflow));
        assert_eq!(parse_u64(b"99999999999999999999999"), Err(Overflow));
        assert_eq!(parse_u64(b"007"), Err(NonCanonical));
        assert_eq!(parse_u64(b"00"), Err(NonCanonical));
        assert_eq!(parse_u64(b"-5"), Err(Negative));
        assert_eq!(parse_u64(b"-0"), Err(Negative));
        assert_eq!(parse_u64(b"-99999999999999999999999"), Err(Negative));
        for bad in [
            &b""[..],
            b"-",
            b"+5",
            b" 5",
            b"5 ",
            b"1e3",
            b"0x10",
            b"--5",
            b"1_000",
            b"\xff",
        ] {
            assert_eq!(parse_u64(bad), Err(NotDecimal), "{bad:?}");
        }
    }

    #[test]
    fn signed() {
        assert_eq!(parse_i64(b"0"), Ok(0));
        assert_eq!(parse_i64(b"-5"), Ok(-5));
        assert_eq!(parse_i64(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), Err(Overflow));
        assert_eq!(parse_i64(b"-9223372036854775809"), Err(Overflow));
        assert_eq!(parse_i64(b"-0"), Err(NonCanonical));
        assert_eq!(parse_i64(b"-05"), Err(NonCanonical));
        assert_eq!(parse_i64(b"+5"), Err(NotDecimal));
        assert_eq!(parse_i64(b"-"), Err(NotDecimal));
    }

    #[test]
    fn display_is_canonical_and_within_max_len() {
        for v in [0, 1, 10, u64::MAX] {
            assert_eq!(parse_u64(v.to_string().as_bytes()), Ok(v));
        }
        for v in [i64::MIN, -1, 0, i64::MAX] {
            assert_eq!(parse_i64(v.to_string().as_bytes()), Ok(v));
        }
        assert_eq!(u64::MAX.to_string().len(), MAX_LEN);
        assert_eq!(i64::MIN.to_string().len(), MAX_LEN);
    }

    #[test]
    fn serde_strings() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Doc {
            #[serde(with = "u64_string")]
            a: u64,
            #[serde(
                default,
                skip_serializing_if = "Option::is_none",
                with = "u64_string::option"
            )]
            b: Option<u64>,
        }
        let doc = Doc {
            a: u64::MAX,
            b: Some(7),
        };
        let json = serde_json::to_string(&doc).unwrap();
        assert_eq!(json, r#"{"a":"18446744073709551615","b":"7"}"#);
        assert_eq!(serde_json::from_str::<Doc>(&json).unwrap(), doc);
        let none: Doc = serde_json::from_str(r#"{"a":"0"}"#).unwrap();
        assert_eq!(none, Doc { a: 0, b: None });
        assert_eq!(serde_json::to_string(&none).unwrap(), r#"{"a":"0"}"#);
        for bad in [
            r#"{"a":5}"#,
            r#"{"a":"05"}"#,
            r#"{"a":"-1"}"#,
            r#"{"a":"0","b":1}"#,
        ] {
            assert!(serde_json::from_str::<Doc>(bad).is_err(), "{bad}");
        }
        // Escapes are decoded before the value is checked.
        assert_eq!(
            serde_json::from_str::<Doc>(r#"{"a":"\u0031"}"#).unwrap().a,
            1
        );
    }
}
