//! Fuzz targets for every AMP parser that reads bytes from the network or
//! from disk. Each target is a plain function, so that the libFuzzer
//! binaries in `fuzz_targets/` (nightly, `scripts/fuzz`) and the corpus
//! replay in `tests/corpus.rs` (stable, `cargo test`) run the same code.
//!
//! A target must not panic on any input, and what parses must re-encode to
//! the same meaning: the encoder's output parses back to an equal value, and
//! for the formats with one spelling per value (vouchers, instructions,
//! decimals, credential headers) the re-encoding is the input itself. Every
//! target returns whether the input parsed, so the replay can check that the
//! committed corpus reaches both the accepting and the refusing paths.

use std::fmt::Debug;
use std::path::Path;

use amp_channel::voucher::ed25519::{
    instruction_data, voucher_from_instruction, MESSAGE_OFFSET, PUBKEY_OFFSET, SIGNATURE_OFFSET,
};
use amp_sdk::client::{Grant, Snapshot};
use amp_sdk::decimal::{self, u64_string};
use amp_sdk::headers::{Credential, Header, HeaderError, Receipt};
use amp_sdk::manifest::{CloseAnswer, ErrorBody, ErrorCode, Manifest};
use amp_sdk::rpc::Cluster;
use amp_sdk::server::FileConfig;
use amp_sdk::sponsor::SponsorRequest;
use amp_sdk::voucher::{Voucher, VOUCHER_LEN, VOUCHER_MAGIC};
use anchor_lang::prelude::Pubkey;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A fuzz target: takes any bytes, panics on a bug, returns whether they parsed.
pub type Target = fn(&[u8]) -> bool;

/// Every target by name: the names of `fuzz_targets/*.rs` and of the
/// `corpus/` folders.
pub const TARGETS: &[(&str, Target)] = &[
    ("voucher", voucher),
    ("ed25519_instruction", ed25519_instruction),
    ("decimal", decimal),
    ("headers", headers),
    ("manifest", manifest),
    ("error_body", error_body),
    ("close_answer", close_answer),
    ("grant", grant),
    ("lane_file", lane_file),
    ("server_config", server_config),
    ("keypair", keypair),
    ("sponsor_request", sponsor_request),
];

/// The 68-byte voucher codec, in the program and in the SDK: exactly the
/// 68-byte strings starting with the magic parse, and each re-encodes to itself.
pub fn voucher(data: &[u8]) -> bool {
    let program = Voucher::from_bytes(data);
    let sdk = amp_sdk::voucher::decode(data);
    let well_formed = data.len() == VOUCHER_LEN && data.starts_with(&VOUCHER_MAGIC);
    assert_eq!(sdk.is_ok(), well_formed);
    assert_eq!(program.is_ok(), well_formed);
    let Ok(voucher) = sdk else {
        return false;
    };
    assert_eq!(program.ok(), Some(voucher));
    assert_eq!(voucher.to_bytes()[..], data[..]);
    true
}

/// The program's reading of the Ed25519SigVerify instruction that carries a
/// voucher (instruction data, which anyone can put in a transaction): only
/// the canonical layout naming the expected signer passes, and it is exactly
/// what the SDK builds.
pub fn ed25519_instruction(data: &[u8]) -> bool {
    // The signer is taken from where the layout puts it, so that
    // well-formed inputs reach the voucher; any other signer must fail.
    let mut signer = [0u8; 32];
    if let Some(bytes) = data.get(PUBKEY_OFFSET..SIGNATURE_OFFSET) {
        signer.copy_from_slice(bytes);
    }
    let signer = Pubkey::new_from_array(signer);
    let ed25519 = solana_sdk_ids::ed25519_program::ID;
    let Ok(voucher) = voucher_from_instruction(&ed25519, data, &signer) else {
        return false;
    };
    let mut other = signer.to_bytes();
    other[0] ^= 1;
    assert!(voucher_from_instruction(&ed25519, data, &Pubkey::new_from_array(other)).is_err());
    assert!(voucher_from_instruction(&amp_channel::ID, data, &signer).is_err());
    let signature: [u8; 64] = data[SIGNATURE_OFFSET..MESSAGE_OFFSET]
        .try_into()
        .expect("the layout was checked");
    assert_eq!(
        instruction_data(&signer, &signature, &voucher.to_bytes())[..],
        data[..]
    );
    true
}

/// Amounts and numbers both ways (`decimal::u64_string`) in the JSON documents.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Amounts {
    #[serde(with = "u64_string")]
    a: u64,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "u64_string::option"
    )]
    b: Option<u64>,
}

/// Canonical decimals (header values, amounts in JSON strings): what parses
/// is the value's one spelling, and std's parser agrees on those spellings.
pub fn decimal(data: &[u8]) -> bool {
    let unsigned = decimal::parse_u64(data);
    let signed = decimal::parse_i64(data);
    let text = std::str::from_utf8(data).ok();
    // std accepts `+5` and `007`; restricted to canonical spellings it must agree.
    let canonical_u64 = text
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|v| v.to_string().as_bytes() == data);
    let canonical_i64 = text
        .and_then(|t| t.parse::<i64>().ok())
        .filter(|v| v.to_string().as_bytes() == data);
    assert_eq!(unsigned.ok(), canonical_u64);
    assert_eq!(signed.ok(), canonical_i64);
    // The data as a JSON document of amounts in strings.
    let json = serde_json::from_slice::<Amounts>(data);
    if let Ok(amounts) = &json {
        let text = serde_json::to_string(amounts).expect("amounts serialise");
        assert_eq!(
            serde_json::from_str::<Amounts>(&text).ok().as_ref(),
            Some(amounts)
        );
    }
    unsigned.is_ok() || signed.is_ok() || json.is_ok()
}

/// Builds a header map from `Name: value` lines, the form of the `headers`
/// corpus; lines that are no valid header are skipped, repeats are kept.
pub fn header_map(data: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = &line[colon + 1..];
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            // Fails only beyond http's size limit, which fuzz inputs do not reach.
            let _ = map.try_append(name, value);
        }
    }
    map
}

/// The request credential a server reads, and the receipt a client reads:
/// what parses is exactly what `write` produces (one spelling per
/// credential), and each refusal names a header that is really at fault.
pub fn headers(data: &[u8]) -> bool {
    let map = header_map(data);
    let credential = Credential::from_headers(&map);
    match credential {
        Ok(credential) => {
            let mut written = HeaderMap::new();
            credential.write(&mut written);
            assert_eq!(Credential::from_headers(&written), Ok(credential));
            for header in Header::CREDENTIAL {
                let original = map.get(header.name());
                let rewritten = written.get(header.name());
                if header == Header::Expires && original.is_some_and(|v| v == "0") {
                    // Absent means 0, so `0` is the one other spelling of "never".
                    assert_eq!(rewritten, None);
                } else {
                    assert_eq!(original, rewritten, "{header}");
                }
            }
        }
        Err(error) => check_refusal(&map, &error, &Header::CREDENTIAL),
    }
    let receipt = Receipt::from_headers(&map);
    match receipt {
        Ok(receipt) => {
            let mut written = HeaderMap::new();
            receipt.write(&mut written);
            assert_eq!(Receipt::from_headers(&written), Ok(receipt));
            for header in [Header::Owed, Header::Remaining] {
                assert_eq!(map.get(header.name()), written.get(header.name()));
            }
        }
        Err(error) => check_refusal(&map, &error, &[Header::Owed, Header::Remaining]),
    }
    credential.is_ok() || receipt.is_ok()
}

/// A refusal blames a header of the set it was reading, in the state it names.
fn check_refusal(map: &HeaderMap, error: &HeaderError, read: &[Header]) {
    let _ = (error.to_string(), error.code());
    let count = |h: Header| map.get_all(h.name()).iter().count();
    match *error {
        HeaderError::NoCredential => assert!(read.iter().all(|h| count(*h) == 0)),
        HeaderError::Missing(h) => assert_eq!(count(h), 0),
        HeaderError::Duplicate(h) => assert!(count(h) > 1),
        _ => {
            let header = error.header().expect("every other refusal names a header");
            assert!(read.contains(&header));
            assert_eq!(count(header), 1);
        }
    }
}

/// Serialises `value` compactly and pretty, and checks both parse back equal.
fn json_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let compact = serde_json::to_vec(value).expect("a parsed document serialises");
    assert_eq!(
        &serde_json::from_slice::<T>(&compact).expect("re-parses"),
        value
    );
    let pretty = serde_json::to_vec_pretty(value).expect("a parsed document serialises");
    assert_eq!(
        &serde_json::from_slice::<T>(&pretty).expect("re-parses"),
        value
    );
}

/// The manifest a client discovers at `/.well-known/amp.json`.
pub fn manifest(data: &[u8]) -> bool {
    let Ok(manifest) = serde_json::from_slice::<Manifest>(data) else {
        return false;
    };
    json_round_trip(&manifest);
    true
}

/// The error body of every refused request, as a client reads it.
pub fn error_body(data: &[u8]) -> bool {
    let Ok(body) = serde_json::from_slice::<ErrorBody>(data) else {
        return false;
    };
    json_round_trip(&body);
    assert_eq!(body.error.as_str().parse::<ErrorCode>(), Ok(body.error));
    assert_eq!(body.status(), body.error.status());
    true
}

/// The answer to `POST /.well-known/amp/close`, as a client reads it.
pub fn close_answer(data: &[u8]) -> bool {
    let Ok(answer) = serde_json::from_slice::<CloseAnswer>(data) else {
        return false;
    };
    json_round_trip(&answer);
    true
}

/// The body an agent posts to a sponsoring service: what decodes is a
/// transaction of at most a packet that re-encodes to the same request.
pub fn sponsor_request(data: &[u8]) -> bool {
    let Ok(request) = serde_json::from_slice::<SponsorRequest>(data) else {
        return false;
    };
    json_round_trip(&request);
    let Some(transaction) = request.decode() else {
        return false;
    };
    let again = SponsorRequest::new(&transaction);
    assert_eq!(
        again, request,
        "a decoded transaction re-encodes to its bytes"
    );
    assert!(bincode_len(&transaction) <= amp_sdk::transactions::MAX_TRANSACTION_SIZE);
    true
}

fn bincode_len(transaction: &solana_transaction::Transaction) -> usize {
    amp_sdk::transactions::transaction_size(transaction)
}

/// A delegated lane as a funder hands it to a sub-agent (any message).
pub fn grant(data: &[u8]) -> bool {
    let Ok(grant) = serde_json::from_slice::<Grant>(data) else {
        return false;
    };
    json_round_trip(&grant);
    true
}

/// The agent's lane file: what parses is rewritten as the client writes it
/// (pretty JSON) and reads back equal.
pub fn lane_file(data: &[u8]) -> bool {
    let path = Path::new("lanes.json");
    let Ok(snapshot) = Snapshot::from_json(path, data) else {
        return false;
    };
    let written = serde_json::to_vec_pretty(&snapshot).expect("the lane file serialises");
    assert_eq!(
        Snapshot::from_json(path, &written).expect("re-parses"),
        snapshot
    );
    true
}

/// The server's TOML configuration (`amp serve --config`,
/// `Paywall::from_file`): a parsed file is written back as TOML and parses
/// equal; its cluster and PostgreSQL store URL parse without panicking.
pub fn server_config(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(config) = FileConfig::from_toml(text) else {
        return false;
    };
    let written = to_toml(&config);
    assert_eq!(
        FileConfig::from_toml(&written).expect("re-parses"),
        config,
        "{written}"
    );
    if let Ok(cluster) = config.cluster.parse::<Cluster>() {
        assert_eq!(cluster.to_string().parse::<Cluster>(), Ok(cluster));
    }
    if let Some(url) = config.store.to_str().filter(|s| amp_sdk::store::is_url(s)) {
        let _ = amp_sdk::store::postgres::parse_url(url);
    }
    true
}

/// The TOML text of a configuration: the service's keys beside the deployment's.
fn to_toml(config: &FileConfig) -> String {
    let mut table = toml::Table::try_from(&config.service).expect("the service serialises");
    let path = |p: &Path| toml::Value::String(p.to_str().expect("read from TOML text").into());
    table.insert("wallet".into(), path(&config.wallet));
    table.insert("cluster".into(), config.cluster.clone().into());
    table.insert("store".into(), path(&config.store));
    table.insert(
        "durability".into(),
        toml::Value::try_from(config.durability).expect("durability serialises"),
    );
    toml::to_string(&table).expect("a table serialises")
}

/// Solana CLI keypair files: what parses writes back to the same key, and
/// the Solana CLI's own reader accepts it too.
pub fn keypair(data: &[u8]) -> bool {
    let Ok(keypair) = amp_sdk::keypair::from_json(data) else {
        return false;
    };
    let written = amp_sdk::keypair::to_json(&keypair);
    let again = amp_sdk::keypair::from_json(written.as_bytes()).expect("re-parses");
    assert_eq!(again.to_bytes(), keypair.to_bytes());
    let theirs = solana_keypair::read_keypair(&mut &data[..]).expect("the CLI reads it too");
    assert_eq!(theirs.to_bytes(), keypair.to_bytes());
    true
}
