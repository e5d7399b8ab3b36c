//! The TypeScript type of an IDL, in the form `anchor build` writes to
//! `target/types/<program>.ts` (anchor-cli 1.2.2, `idl_ts`): the IDL as a
//! literal type, with every identifier (the values of `name`, `path`,
//! `account`, `relations` and `generic`) in lowerCamelCase, because that is
//! how the Anchor TS client names instructions, accounts, arguments, fields
//! and types at run time.

use anchor_lang_idl::types::Idl;
use anyhow::Result;
use heck::{ToLowerCamelCase, ToPascalCase};
use serde_json::Value;

/// `idl/<program>.ts` for `idl`: what anchor-cli 1.2.2 writes, except that the
/// header names the JSON where this repository keeps it (`idl/`, not
/// `target/idl/`).
pub fn idl_ts(idl: &Idl) -> Result<String> {
    let idl_name = &idl.metadata.name;
    let type_name = idl_name.to_pascal_case();
    let mut camel_idl = serde_json::to_value(idl)?;
    camel_case_identifiers(&mut camel_idl);
    // Through `Idl` again, like anchor-cli, so the field order is the IDL's.
    let camel_idl = serde_json::to_string_pretty(&serde_json::from_value::<Idl>(camel_idl)?)?;
    Ok(format!(
        r#"/**
 * Program IDL in camelCase format in order to be used in JS/TS.
 *
 * Note that this is only a type helper and is not the actual IDL. The original
 * IDL can be found at `idl/{idl_name}.json`.
 */
export type {type_name} = {camel_idl};
"#
    ))
}

fn camel_case_identifiers(value: &mut Value) {
    match value {
        Value::Array(values) => values.iter_mut().for_each(camel_case_identifiers),
        Value::Object(map) => {
            for (key, value) in map {
                if is_identifier_key(key) {
                    camel_case_identifier(value);
                } else {
                    camel_case_identifiers(value);
                }
            }
        }
        _ => {}
    }
}

fn camel_case_identifier(value: &mut Value) {
    match value {
        Value::String(s) => {
            if !is_pubkey(s) {
                *s = s
                    .split('.')
                    .map(ToLowerCamelCase::to_lower_camel_case)
                    .collect::<Vec<_>>()
                    .join(".");
            }
        }
        Value::Array(values) => values.iter_mut().for_each(camel_case_identifier),
        _ => camel_case_identifiers(value),
    }
}

fn is_identifier_key(key: &str) -> bool {
    matches!(key, "name" | "path" | "account" | "relations" | "generic")
}

/// What `Pubkey::try_from(&str)` accepts: at most 44 base58 characters that
/// decode to exactly 32 bytes.
fn is_pubkey(s: &str) -> bool {
    s.len() <= 44
        && bs58::decode(s)
            .into_vec()
            .is_ok_and(|bytes| bytes.len() == 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_camel_cased_and_pubkeys_kept() {
        let mut value = serde_json::json!({
            "name": "close_delegation",
            "docs": ["keeps snake_case prose"],
            "address": "Sysvar1nstructions1111111111111111111111111",
            "pda": {"seeds": [{"kind": "arg", "path": "terms.delegate_key"}]},
            "relations": ["upstream_channel"],
            "type": {"defined": {"name": "DelegationTerms"}},
            "value": "b\"amp_channel\"",
            "accounts": [{"name": "DtxJzy2Vhg9X1Pv5R4fbNE1CdHPnkQtoFUHGdcG7EpfX"}]
        });
        camel_case_identifiers(&mut value);
        assert_eq!(
            value,
            serde_json::json!({
                "name": "closeDelegation",
                "docs": ["keeps snake_case prose"],
                "address": "Sysvar1nstructions1111111111111111111111111",
                "pda": {"seeds": [{"kind": "arg", "path": "terms.delegateKey"}]},
                "relations": ["upstreamChannel"],
                "type": {"defined": {"name": "delegationTerms"}},
                "value": "b\"amp_channel\"",
                "accounts": [{"name": "DtxJzy2Vhg9X1Pv5R4fbNE1CdHPnkQtoFUHGdcG7EpfX"}]
            })
        );
    }
}
