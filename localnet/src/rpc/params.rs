//! Reading a method's positional parameters, with the validator's messages
//! for a missing or mistyped one.

use serde::de::DeserializeOwned;
use serde_json::Value;
use solana_pubkey::Pubkey;
use solana_signature::Signature;

use super::wire::RpcError;

/// A call's parameters: an array (or nothing).
pub struct Params(Vec<Value>);

impl Params {
    pub fn new(params: Option<Value>) -> Result<Self, RpcError> {
        match params {
            None | Some(Value::Null) => Ok(Self(Vec::new())),
            Some(Value::Array(values)) => Ok(Self(values)),
            Some(_) => Err(RpcError::invalid_params(
                "Invalid parameters: expected an array",
            )),
        }
    }

    /// The parameter at `index`, which must be there.
    pub fn required<T: DeserializeOwned>(&self, index: usize, name: &str) -> Result<T, RpcError> {
        match self.0.get(index) {
            None | Some(Value::Null) => Err(RpcError::invalid_params(format!(
                "`params` should have at least {} argument(s)",
                index + 1
            ))),
            Some(value) => T::deserialize(value)
                .map_err(|e| RpcError::invalid_params(format!("Invalid params: {name}: {e}."))),
        }
    }

    /// The parameter at `index`, or `None`.
    pub fn optional<T: DeserializeOwned>(
        &self,
        index: usize,
        name: &str,
    ) -> Result<Option<T>, RpcError> {
        match self.0.get(index) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => T::deserialize(value)
                .map(Some)
                .map_err(|e| RpcError::invalid_params(format!("Invalid params: {name}: {e}."))),
        }
    }

    /// A base-58 address.
    pub fn pubkey(&self, index: usize) -> Result<Pubkey, RpcError> {
        parse_pubkey(&self.required::<String>(index, "pubkey")?)
    }
}

pub fn parse_pubkey(text: &str) -> Result<Pubkey, RpcError> {
    text.parse()
        .map_err(|_| RpcError::invalid_params("Invalid param: Invalid"))
}

pub fn parse_signature(text: &str) -> Result<Signature, RpcError> {
    text.parse()
        .map_err(|_| RpcError::invalid_params("Invalid param: Invalid"))
}
