//! The committed corpus, replayed through every target on stable Rust (so
//! `cargo test --workspace`, and CI, run each fuzz target deterministically
//! without nightly), and the generator of its seeds.
//!
//! Seeds are real documents made by the SDK's own writers (a signed
//! credential, the SPEC's manifest, a lane file, the example configuration,
//! a keypair file) plus hostile variants. A seed named `ok-*` must parse and
//! `bad-*` must not; files with other names are inputs the fuzzer found
//! (`cargo fuzz cmin`) and only have to pass. Regenerate the seeds after
//! changing them here:
//!
//! ```sh
//! AMP_WRITE_SEEDS=1 cargo test -p amp-fuzz --test corpus
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use amp_channel::voucher::ed25519::{instruction_data, MESSAGE_OFFSET, OFFSETS_START};
use amp_sdk::client::{GrantedLane, LaneRecord, LaneStatus, Snapshot};
use amp_sdk::headers::{Credential, Receipt};
use amp_sdk::manifest::CloseAnswer;
use amp_sdk::manifest::{ErrorBody, ErrorCode, Manifest, MintInfo, Price, Pricing, PricingMode};
use amp_sdk::sponsor::{SponsorRequest, Sponsorship};
use amp_sdk::voucher::{SignedVoucher, Voucher, VoucherSigner};
use anchor_lang::prelude::Pubkey;
use ed25519_dalek::SigningKey;
use http::HeaderMap;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

#[test]
fn every_corpus_file_passes_its_target() {
    let root = corpus_dir();
    for (name, target) in amp_fuzz::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        let (mut accepted, mut refused) = (0, 0);
        for file in &files {
            let data = std::fs::read(file).unwrap();
            let file_name = file.file_name().unwrap().to_string_lossy();
            let parsed = std::panic::catch_unwind(|| target(&data))
                .unwrap_or_else(|_| panic!("{name}: {} panicked", file.display()));
            if file_name.starts_with("ok-") {
                assert!(parsed, "{name}: {file_name} was refused");
            } else if file_name.starts_with("bad-") {
                assert!(!parsed, "{name}: {file_name} was accepted");
            }
            if parsed {
                accepted += 1;
            } else {
                refused += 1;
            }
        }
        assert!(
            accepted > 0 && refused > 0,
            "{name}: the corpus must reach both paths ({accepted} accepted, {refused} refused)"
        );
    }
    // No folder without a target (a renamed target would leave it unreplayed).
    for entry in std::fs::read_dir(&root).unwrap() {
        let name = entry.unwrap().file_name();
        let name = name.to_string_lossy();
        assert!(
            amp_fuzz::TARGETS.iter().any(|(t, _)| *t == name),
            "corpus/{name} has no target"
        );
    }
}

/// The committed seeds are what [`seeds`] makes; with `AMP_WRITE_SEEDS=1`
/// they are (re)written instead.
#[test]
fn seeds_are_committed() {
    let write = std::env::var_os("AMP_WRITE_SEEDS").is_some();
    for (path, bytes) in seeds() {
        let file = corpus_dir().join(&path);
        if write {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, &bytes).unwrap();
        } else {
            let committed = std::fs::read(&file).unwrap_or_default();
            assert!(
                committed == bytes,
                "fuzz/corpus/{path} is not what the generator makes; run \
                 AMP_WRITE_SEEDS=1 cargo test -p amp-fuzz --test corpus"
            );
        }
    }
}

fn key(byte: u8) -> Pubkey {
    Pubkey::new_from_array([byte; 32])
}

fn signer() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn sample_voucher() -> Voucher {
    Voucher {
        lane: key(3),
        generation: 281_474_976,
        seq: 42,
        cumulative: 1_500_000,
        expires_at: 0,
    }
}

/// SPEC section 5's manifest example, read from the SPEC itself, with its
/// `<base58>` placeholders as they are (refused) or filled in.
fn spec_manifest() -> (String, String) {
    let spec = include_str!("../../docs/SPEC.md");
    let start = spec
        .find("```json\n{\n  \"amp_version\"")
        .expect("the SPEC's manifest")
        + 8;
    let end = start + spec[start..].find("```").unwrap();
    let verbatim = spec[start..end].to_owned();
    let filled = verbatim.replace("<base58>", &amp_channel::ID.to_string());
    (verbatim, filled)
}

fn manifest() -> Manifest {
    serde_json::from_str(&spec_manifest().1).unwrap()
}

/// A manifest as a server with several routes and mints publishes it.
fn rich_manifest() -> Manifest {
    let mut routes = BTreeMap::new();
    for (path, mode, rate) in [
        ("/v1/chat/completions", PricingMode::PerToken, 2),
        ("/v1/stream/*", PricingMode::PerSecond, 1_000),
        ("/v1/files/*", PricingMode::PerByte, 1),
        ("/v1/ünïcode", PricingMode::PerCall, u64::MAX),
    ] {
        routes.insert(path.to_owned(), Price { mode, rate });
    }
    Manifest {
        amp_version: "1".into(),
        network: "solana:localnet".into(),
        program_id: amp_channel::ID,
        recipient: key(9),
        mints: vec![
            MintInfo {
                mint: key(4),
                decimals: 6,
                symbol: Some("USDC".into()),
            },
            MintInfo {
                mint: Pubkey::default(),
                decimals: 0,
                symbol: None,
            },
        ],
        min_deposit: 0,
        min_grace_period: u32::MAX,
        credit: u64::MAX,
        pricing: Pricing {
            default: Price {
                mode: PricingMode::PerCall,
                rate: 0,
            },
            routes,
            tokens: [(
                "/v1/chat/completions".to_owned(),
                amp_sdk::manifest::TokenPrices {
                    input: 1,
                    output: 4,
                    models: [(
                        "gpt-4o".to_owned(),
                        amp_sdk::manifest::ModelPrices {
                            input: 3,
                            output: u64::MAX,
                        },
                    )]
                    .into(),
                },
            )]
            .into(),
            methods: [(
                "/mcp".to_owned(),
                [(
                    "tools/call".to_owned(),
                    Price {
                        mode: PricingMode::PerCall,
                        rate: u64::MAX,
                    },
                )]
                .into(),
            )]
            .into(),
        },
        session: Some(amp_sdk::manifest::SessionTerms { ttl: 3_600 }),
        sponsor: Some(Sponsorship {
            payer: key(9),
            mints: vec![key(4)],
            min_deposit: 1,
            max_deposit: u64::MAX,
            min_grace_period: 60,
            max_grace_period: 2_592_000,
            max_compute_unit_price: 100_000,
            max_compute_unit_limit: 200_000,
            top_up: true,
        }),
    }
}

fn lane_record(lane: u8, status: LaneStatus) -> LaneRecord {
    LaneRecord {
        service: "https://api.example.com".into(),
        lane: key(lane),
        funder: key(1),
        recipient: key(9),
        mint: key(4),
        token_program: token_program(),
        nonce: 0x1234_5678_9abc_def0,
        delegate: None,
        payer: None,
        generation: 310_000_123,
        limit: 5_000_000,
        deposited: 5_000_000,
        grace_period: 3_600,
        status,
        opening_since: 0,
        seq: 1_100,
        signed: 1_230_400,
        owed: 1_230_000,
        granted: Vec::new(),
        manifest: manifest(),
    }
}

fn headers_text(map: &HeaderMap) -> Vec<u8> {
    let mut text = Vec::new();
    for (name, value) in map {
        text.extend_from_slice(name.as_str().as_bytes());
        text.extend_from_slice(b": ");
        text.extend_from_slice(value.as_bytes());
        text.push(b'\n');
    }
    text
}

/// Every seed: its path under `corpus/`, and its bytes.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let mut add = |target: &str, name: &str, bytes: Vec<u8>| {
        seeds.push((format!("{target}/{name}"), bytes));
    };

    // voucher: the 68 bytes a signer signs.
    let bytes = sample_voucher().to_bytes();
    add("voucher", "ok-voucher", bytes.to_vec());
    let edges = Voucher {
        lane: key(0xff),
        generation: u64::MAX,
        seq: u64::MAX,
        cumulative: u64::MAX,
        expires_at: i64::MIN,
    };
    add("voucher", "ok-edges", edges.to_bytes().to_vec());
    add("voucher", "bad-empty", Vec::new());
    add("voucher", "bad-short", bytes[..67].to_vec());
    add("voucher", "bad-long", [&bytes[..], &[0]].concat());
    add("voucher", "bad-magic", [&b"AMP2"[..], &bytes[4..]].concat());

    // ed25519_instruction: what the SDK puts before settle and close.
    let signed = SignedVoucher::sign(&signer(), sample_voucher());
    let data = signed.ed25519_instruction(&signer().voucher_pubkey()).data;
    add("ed25519_instruction", "ok-sdk", data.clone());
    let set = |field: usize, value: u16| {
        let mut d = data.clone();
        let at = OFFSETS_START + 2 * field;
        d[at..at + 2].copy_from_slice(&value.to_le_bytes());
        d
    };
    add("ed25519_instruction", "bad-message-offset", set(4, 0));
    add("ed25519_instruction", "bad-other-instruction", set(1, 0));
    add("ed25519_instruction", "bad-message-length", set(5, 67));
    let mut two = data.clone();
    two[0] = 2;
    add("ed25519_instruction", "bad-two-signatures", two);
    add(
        "ed25519_instruction",
        "bad-header-only",
        data[..16].to_vec(),
    );
    add(
        "ed25519_instruction",
        "bad-trailing",
        [&data[..], &[0]].concat(),
    );
    let mut magic = sample_voucher().to_bytes();
    magic[3] = b'2';
    let wrong = instruction_data(&signer().voucher_pubkey(), &signed.signature, &magic);
    assert_eq!(wrong[MESSAGE_OFFSET + 3], b'2');
    add("ed25519_instruction", "bad-voucher-magic", wrong.to_vec());

    // decimal: header values and JSON amounts.
    for (name, text) in [
        ("ok-zero", "0"),
        ("ok-u64-max", "18446744073709551615"),
        ("ok-i64-min", "-9223372036854775808"),
        ("ok-negative", "-5"),
        ("ok-json", r#"{"a":"18446744073709551615","b":"7"}"#),
        ("ok-json-escape", r#"{"a":"\u0031","b":null}"#),
        ("bad-leading-zero", "007"),
        ("bad-minus-zero", "-0"),
        ("bad-plus", "+5"),
        ("bad-u64-overflow", "18446744073709551616"),
        ("bad-i64-overflow", "-9223372036854775809"),
        ("bad-space", " 5"),
        ("bad-exponent", "1e3"),
        ("bad-json-number", r#"{"a":5}"#),
        ("bad-json-leading-zero", r#"{"a":"05"}"#),
    ] {
        add("decimal", name, text.into());
    }

    // headers: credentials as the client writes them, receipts as the server does.
    let mut map = HeaderMap::new();
    Credential::from(signed).write(&mut map);
    let credential = headers_text(&map);
    add("headers", "ok-credential", credential.clone());
    let mut expiring = HeaderMap::new();
    let mut v = sample_voucher();
    v.expires_at = i64::MIN;
    Credential::sign(&signer(), &v).write(&mut expiring);
    Receipt {
        owed: 1_230_000,
        remaining: u64::MAX,
    }
    .write(&mut expiring);
    add(
        "headers",
        "ok-credential-expiry-receipt",
        headers_text(&expiring),
    );
    let text = String::from_utf8(credential.clone()).unwrap();
    add(
        "headers",
        "ok-spec-case-crlf",
        text.replace("amp-channel", "AMP-Channel")
            .replace("amp-sig", "AMP-Sig")
            .replace('\n', "\r\n")
            .into(),
    );
    add(
        "headers",
        "ok-expires-zero",
        format!("{text}amp-expires: 0\n").into(),
    );
    add(
        "headers",
        "ok-receipt",
        "amp-owed: 0\namp-remaining: 18446744073709551615\n".into(),
    );
    add(
        "headers",
        "bad-no-credential",
        "content-type: application/json\n".into(),
    );
    add("headers", "bad-expires-only", "amp-expires: 5\n".into());
    add(
        "headers",
        "bad-duplicate-seq",
        format!("{text}amp-seq: 43\n").into(),
    );
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap()
            .to_owned()
    };
    for (name, from, to) in [
        ("bad-missing-sig", line("amp-sig"), String::new()),
        (
            "bad-seq-leading-zero",
            line("amp-seq"),
            "amp-seq: 042".into(),
        ),
        (
            "bad-amount-negative",
            line("amp-amount"),
            "amp-amount: -1".into(),
        ),
        (
            "bad-seq-too-long",
            line("amp-seq"),
            format!("amp-seq: {}", "9".repeat(21)),
        ),
        (
            "bad-channel-not-base58",
            line("amp-channel"),
            "amp-channel: 0OIl".into(),
        ),
        (
            "bad-channel-wrong-length",
            line("amp-channel"),
            format!("amp-channel: {}", "1".repeat(35)),
        ),
        ("bad-sig-space", line("amp-sig"), "amp-sig: 1 2".into()),
        (
            "bad-sig-is-a-lane",
            line("amp-sig"),
            format!("amp-sig: {}", key(9)),
        ),
    ] {
        add("headers", name, text.replace(&from, &to).into());
    }
    add(
        "headers",
        "bad-receipt-overflow",
        "amp-owed: 18446744073709551616\namp-remaining: 1\n".into(),
    );

    // manifest: the SPEC's example, and one with every kind of field.
    let (verbatim, filled) = spec_manifest();
    add("manifest", "ok-spec", filled.clone().into());
    add(
        "manifest",
        "ok-rich",
        serde_json::to_vec_pretty(&rich_manifest()).unwrap(),
    );
    add("manifest", "bad-spec-placeholders", verbatim.into());
    add(
        "manifest",
        "bad-number-amount",
        filled.replace(r#""1000000""#, "1000000").into(),
    );
    add(
        "manifest",
        "bad-mode",
        filled.replace("per_call", "PerCall").into(),
    );
    add(
        "manifest",
        "bad-truncated",
        filled[..filled.len() / 2].into(),
    );

    // error_body: what a refused request answers.
    let underfunded = ErrorBody::new(ErrorCode::Underfunded, "amount too low")
        .with_required(1_200)
        .with_owed(1_100)
        .with_manifest(manifest());
    add(
        "error_body",
        "ok-402-manifest",
        serde_json::to_vec(&underfunded).unwrap(),
    );
    for code in ErrorCode::ALL {
        let body = ErrorBody::new(code, format!("{code} \"quoted\" \u{1F980}"));
        add(
            "error_body",
            &format!("ok-{}", code.as_str().to_ascii_lowercase()),
            serde_json::to_vec(&body).unwrap(),
        );
    }
    add(
        "error_body",
        "bad-lowercase-code",
        br#"{"error":"amp_malformed","message":"x"}"#.to_vec(),
    );
    add(
        "error_body",
        "bad-number-required",
        br#"{"error":"AMP_UNDERFUNDED","message":"x","required":1200}"#.to_vec(),
    );

    // sponsor_request: what an agent posts to a sponsoring service.
    let funder = solana_keypair::Keypair::new_from_array([6; 32]);
    let sponsorship = rich_manifest().sponsor.unwrap();
    let args = amp_channel::instructions::OpenArgs {
        recipient: sponsorship.payer,
        nonce: 7,
        deposit: 1_000_000,
        grace_period: 3_600,
        expires_at: 0,
        authorized_signer: None,
    };
    let (_, open) = amp_sdk::sponsor::open_transaction(
        &funder,
        &sponsorship,
        key(4),
        key(3),
        args,
        &amp_sdk::fees::compute_budget_instructions(60_000, 1_000),
        solana_hash::Hash::new_from_array([8; 32]),
    )
    .unwrap();
    let request = SponsorRequest::new(&open);
    add(
        "sponsor_request",
        "ok-open",
        serde_json::to_vec(&request).unwrap(),
    );
    let mut trailing = request.transaction.clone();
    trailing.push_str("AAAA");
    add(
        "sponsor_request",
        "bad-trailing-bytes",
        serde_json::to_vec(&SponsorRequest {
            transaction: trailing,
        })
        .unwrap(),
    );
    add(
        "sponsor_request",
        "bad-not-base64",
        br#"{"transaction":"not base64!"}"#.to_vec(),
    );
    add(
        "sponsor_request",
        "bad-missing-field",
        br#"{"tx":"AAAA"}"#.to_vec(),
    );

    // close_answer: what a server answers to a cooperative close.
    add(
        "close_answer",
        "ok-server",
        format!(
            r#"{{"lane":"{}","closed":true,"settled":"1230000","signature":"{}"}}"#,
            key(3),
            bs58_signature()
        )
        .into(),
    );
    add(
        "close_answer",
        "ok-no-signature",
        serde_json::to_vec(&CloseAnswer {
            lane: key(4),
            closed: false,
            settled: 0,
            signature: String::new(),
        })
        .unwrap(),
    );
    add(
        "close_answer",
        "bad-number-settled",
        br#"{"lane":"11111111111111111111111111111111","closed":true,"settled":1230000}"#.to_vec(),
    );
    add(
        "close_answer",
        "bad-missing-closed",
        br#"{"settled":"5"}"#.to_vec(),
    );

    // grant: a delegated lane handed to a sub-agent.
    let grant = amp_sdk::client::Grant {
        service: "https://api.example.com".into(),
        funder: key(1),
        recipient: key(9),
        mint: key(4),
        token_program: token_program(),
        nonce: 77,
        delegation: key(5),
        delegate: signer().voucher_pubkey(),
        generation: 310_000_999,
        cap: 1_500_000,
        grace_period: 86_400,
        manifest: manifest(),
    };
    let grant_json = serde_json::to_string_pretty(&grant).unwrap();
    add("grant", "ok-grant", grant_json.clone().into());
    add(
        "grant",
        "bad-cap-number",
        grant_json
            .replace(r#""cap": "1500000""#, r#""cap": 1500000"#)
            .into(),
    );
    add(
        "grant",
        "bad-delegate",
        grant_json
            .replace(&signer().voucher_pubkey().to_string(), "not-a-key")
            .into(),
    );

    // lane_file: the client's own writer (pretty JSON, see client/book.rs).
    let mut delegated = lane_record(6, LaneStatus::Open);
    delegated.delegate = Some(signer().voucher_pubkey());
    let mut funder = lane_record(
        3,
        LaneStatus::Closing {
            refundable_at: 1_767_225_600,
        },
    );
    funder.granted = vec![GrantedLane {
        delegate: key(8),
        cap: 250_000,
    }];
    let snapshot = Snapshot {
        version: 1,
        retired: 4_200,
        lanes: vec![lane_record(2, LaneStatus::Opening), funder, delegated],
    };
    let lanes = serde_json::to_string_pretty(&snapshot).unwrap();
    add("lane_file", "ok-lanes", lanes.clone().into());
    add(
        "lane_file",
        "ok-empty",
        br#"{"version":1,"retired":"0","lanes":[]}"#.to_vec(),
    );
    add(
        "lane_file",
        "bad-version",
        lanes
            .replacen(r#""version": 1"#, r#""version": 9"#, 1)
            .into(),
    );
    add(
        "lane_file",
        "bad-state",
        lanes
            .replacen(r#""state": "open""#, r#""state": "gone""#, 1)
            .into(),
    );
    add(
        "lane_file",
        "bad-truncated",
        lanes[..lanes.len() - 2].into(),
    );

    // server_config: the shipped example, the module documentation's, hostile edits.
    let example = include_str!("../../app/prices.example.toml");
    add("server_config", "ok-prices-example", example.into());
    let doc: String = include_str!("../../sdk/src/server/config.rs")
        .lines()
        .skip_while(|l| !l.starts_with("//! ```toml"))
        .skip(1)
        .take_while(|l| !l.starts_with("//! ```"))
        .map(|l| format!("{}\n", l.trim_start_matches("//!").trim_start()))
        .collect();
    add("server_config", "ok-module-doc", doc.into());
    add(
        "server_config",
        "ok-every-key",
        br#"wallet = "/etc/amp/id.json"
cluster = "https://rpc.example.com:8899/?api-key=x"
store = "postgres://amp:secret@db.internal:5432/amp?amp_pool_size=16&amp_lease=0.5&sslmode=disable"
durability = "normal"
network = "solana:mainnet-beta"
min_deposit = "0"
min_grace_period = 60
credit = "18446744073709551615"
free = ["/health", "/docs/*"]
refresh = 0.25
voucher_margin = 0
max_lookups = 1
status_route = false
rate_limit = { per_second = 2.5, burst = 0 }

[[mints]]
mint = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"

[[mints]]
mint = "So11111111111111111111111111111111111111112"
symbol = "wSOL"

[pricing.default]
mode = "per_byte"
rate = "1"

[settle]
enabled = false
threshold = "1"
interval = 1e3
tick = 0.001
expiry_margin = 300
retry_min = 1
retry_max = 300
on_shutdown = false
shutdown_timeout = 30
"#
        .to_vec(),
    );
    // A regression: whole seconds beyond 2^53 were written back as an f64,
    // which read back one second off.
    add(
        "server_config",
        "ok-seconds-beyond-f64",
        example
            .replacen("interval = 3600", "interval = 9007199254740993", 1)
            .into(),
    );
    for (name, from, to) in [
        ("bad-typo", "credit =", "credits ="),
        ("bad-number-rate", r#"rate = "100""#, "rate = 100"),
        ("bad-negative-interval", "interval = 3600", "interval = -1"),
        ("bad-route", r#""/v1/chat/completions""#, r#""v1/chat""#),
        (
            "bad-mint",
            "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
            "not-a-key",
        ),
        (
            "bad-durability",
            r#"durability = "full""#,
            r#"durability = "fsync""#,
        ),
    ] {
        assert!(example.contains(from), "{from}");
        add("server_config", name, example.replacen(from, to, 1).into());
    }

    // keypair: the Solana CLI's format, compact and as a person might write it.
    let keypair = solana_keypair::Keypair::new_from_array([42; 32]);
    let json = amp_sdk::keypair::to_json(&keypair);
    add("keypair", "ok-cli", json.clone().into());
    add(
        "keypair",
        "ok-pretty",
        serde_json::to_vec_pretty(&keypair.to_bytes()[..]).unwrap(),
    );
    let mut mismatched = keypair.to_bytes();
    mismatched[63] ^= 1;
    add(
        "keypair",
        "bad-mismatch",
        serde_json::to_vec(&mismatched[..]).unwrap(),
    );
    add(
        "keypair",
        "bad-secret-only",
        serde_json::to_vec(&keypair.to_bytes()[..32]).unwrap(),
    );
    add(
        "keypair",
        "bad-byte-300",
        json.replacen("42", "300", 1).into(),
    );
    add("keypair", "bad-object", br#"{"secret":[1,2,3]}"#.to_vec());
    seeds
}

fn token_program() -> Pubkey {
    "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
        .parse()
        .unwrap()
}

fn bs58_signature() -> String {
    solana_signature::Signature::from([5u8; 64]).to_string()
}
