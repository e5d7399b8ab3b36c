//! Serde helper: a [`Pubkey`] as a base58 string, the one way every AMP
//! document writes an address (manifest, answers, grants, the lane file, the
//! server's configuration). Use as `#[serde(with = "amp_sdk::base58")]`, or
//! `base58::option` for an optional address (`null` when absent).

use std::borrow::Cow;
use std::str::FromStr;

use anchor_lang::prelude::Pubkey;
use serde::{de, Deserialize, Deserializer, Serializer};

/// Writes the address in base58.
pub fn serialize<S: Serializer>(key: &Pubkey, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(key)
}

/// Reads a base58 address.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Pubkey, D::Error> {
    let text = Cow::<'de, str>::deserialize(deserializer)?;
    parse(&text)
}

fn parse<E: de::Error>(text: &str) -> Result<Pubkey, E> {
    Pubkey::from_str(text).map_err(|_| E::custom(format!("{text:?} is not a base58 address")))
}

/// An optional address: base58, or `null`.
pub mod option {
    use super::*;

    /// Writes the address in base58, or `null`.
    pub fn serialize<S: Serializer>(
        key: &Option<Pubkey>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match key {
            Some(key) => serializer.collect_str(key),
            None => serializer.serialize_none(),
        }
    }

    /// Reads a base58 address or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Pubkey>, D::Error> {
        Option::<Cow<'de, str>>::deserialize(deserializer)?
            .map(|text| parse(&text))
            .transpose()
    }
}

/// A list of addresses, each in base58.
pub mod vec {
    use super::*;

    /// Writes each address in base58.
    pub fn serialize<S: Serializer>(keys: &[Pubkey], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(keys.iter().map(|key| key.to_string()))
    }

    /// Reads a list of base58 addresses.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Pubkey>, D::Error> {
        Vec::<Cow<'de, str>>::deserialize(deserializer)?
            .iter()
            .map(|text| parse(text))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Doc {
        #[serde(with = "super")]
        key: Pubkey,
        #[serde(with = "super::option", default)]
        other: Option<Pubkey>,
    }

    #[test]
    fn round_trips_and_refuses_what_is_not_an_address() {
        let doc = Doc {
            key: Pubkey::new_unique(),
            other: None,
        };
        let json = serde_json::to_string(&doc).unwrap();
        assert_eq!(json, format!(r#"{{"key":"{}","other":null}}"#, doc.key));
        assert_eq!(serde_json::from_str::<Doc>(&json).unwrap(), doc);
        let err = serde_json::from_str::<Doc>(r#"{"key":"0OIl"}"#).unwrap_err();
        assert!(err.to_string().contains("base58"), "{err}");
        assert!(serde_json::from_str::<Doc>(r#"{"key":7}"#).is_err());
    }
}
