//! Voucher and credential costs, against a bare ed25519-dalek verification.
//!
//! The baseline is what any server must do per request with ed25519-dalek
//! alone: decompress the lane signer's 32-byte key (it comes from chain
//! state, so a server holds bytes, not a decompressed point) and run
//! `verify_strict` over the 68 voucher bytes. `credential_parse_verify`
//! does that plus reading five headers (two of them base58) and rebuilding
//! the voucher; the goal is at most 1.2 times the baseline.
//! `bare_dalek_verify_prepared_key` (key decompressed once, outside the loop)
//! is shown for reference only: no server can skip the decompression
//! without caching keys.
//!
//! Sessions (docs/SPEC.md, "Sessions") replace the verification by two
//! HMACs (`session_key_and_mac_verify`), and the agent's signature by one
//! (`agent session_credential / signed_credential`).
//!
//! After Criterion's runs, the ratio is measured again with the two
//! operations interleaved in short alternating batches, so that both see the
//! same machine, and printed: from the fastest decile of batches (those no
//! other process interrupted) and as the median of per-round ratios.

use std::hint::black_box;
use std::time::{Duration, Instant};

use amp_sdk::headers::Credential;
use amp_sdk::session::{self, Master, Session};
use amp_sdk::voucher::{self, SignedVoucher, Voucher, VoucherSigner, VOUCHER_LEN};
use anchor_lang::prelude::Pubkey;
use criterion::{criterion_group, Criterion};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use http::HeaderMap;

struct Fixture {
    key: SigningKey,
    signer: Pubkey,
    voucher: Voucher,
    signature: [u8; 64],
    message: [u8; VOUCHER_LEN],
    headers: HeaderMap,
}

fn fixture() -> Fixture {
    let key = SigningKey::from_bytes(&[0x5a; 32]);
    let voucher = Voucher {
        lane: Pubkey::new_from_array([0xc3; 32]),
        generation: 345_678_901,
        seq: 1_234_567,
        cumulative: 987_654_321_000,
        expires_at: 1_900_000_000,
    };
    let signed = SignedVoucher::sign(&key, voucher);
    let mut headers = HeaderMap::new();
    Credential::from(signed).write(&mut headers);
    Fixture {
        signer: key.voucher_pubkey(),
        key,
        voucher,
        signature: signed.signature,
        message: voucher.to_bytes(),
        headers,
    }
}

fn bare_verify(signer: &[u8; 32], message: &[u8; VOUCHER_LEN], signature: &[u8; 64]) {
    VerifyingKey::from_bytes(signer)
        .unwrap()
        .verify_strict(message, &Signature::from_bytes(signature))
        .unwrap();
}

fn parse_verify(headers: &HeaderMap, signer: &Pubkey, generation: u64) -> SignedVoucher {
    Credential::from_headers(headers)
        .unwrap()
        .verify(signer, generation)
        .unwrap()
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    let generation = f.voucher.generation;
    let mut g = c.benchmark_group("voucher");
    g.bench_function("sign", |b| {
        b.iter(|| SignedVoucher::sign(&f.key, black_box(f.voucher)))
    });
    g.bench_function("verify", |b| {
        b.iter(|| voucher::verify(black_box(&f.signer), black_box(&f.voucher), &f.signature))
    });
    g.bench_function("credential_build", |b| {
        b.iter(|| {
            let mut headers = HeaderMap::new();
            Credential::sign(&f.key, black_box(&f.voucher)).write(&mut headers);
            headers
        })
    });
    g.bench_function("credential_parse", |b| {
        b.iter(|| Credential::from_headers(black_box(&f.headers)).unwrap())
    });
    g.bench_function("credential_parse_verify", |b| {
        b.iter(|| parse_verify(black_box(&f.headers), black_box(&f.signer), generation))
    });
    g.bench_function("bare_dalek_verify", |b| {
        b.iter(|| {
            bare_verify(
                black_box(f.signer.as_array()),
                black_box(&f.message),
                &f.signature,
            )
        })
    });
    let prepared = VerifyingKey::from_bytes(f.signer.as_array()).unwrap();
    let signature = Signature::from_bytes(&f.signature);
    g.bench_function("bare_dalek_verify_prepared_key", |b| {
        b.iter(|| {
            black_box(&prepared)
                .verify_strict(black_box(&f.message), &signature)
                .unwrap()
        })
    });
    // A session request: derive the session's key, check the MAC.
    let (master, session, mac) = session_fixture(&f.voucher);
    let lane = f.voucher.lane;
    g.bench_function("session_key_and_mac_verify", |b| {
        b.iter(|| session_check(&master, &lane, generation, &session, &mac, &f.voucher))
    });
    g.finish();
}

/// A master secret, a session, and the MAC of `voucher`'s request in it.
fn session_fixture(voucher: &Voucher) -> (Master, Session, [u8; session::MAC_LEN]) {
    let master = Master::new([0x11; 32]);
    let session = Session {
        replica: session::replica_id("bench"),
        nonce: [0x22; 16],
        expires_at: 1_900_000_000,
    };
    let mac = master.key(&voucher.lane, voucher.generation, &session).mac(
        &voucher.lane,
        voucher.seq,
        voucher.cumulative,
    );
    (master, session, mac)
}

/// What a session request costs the server: the key derived again, the MAC
/// compared.
fn session_check(
    master: &Master,
    lane: &Pubkey,
    generation: u64,
    session: &Session,
    mac: &[u8],
    voucher: &Voucher,
) {
    let key = black_box(master).key(black_box(lane), generation, black_box(session));
    assert!(key.verify(lane, voucher.seq, voucher.cumulative, black_box(mac)));
}

/// What [`interleaved`] measured.
struct Comparison {
    /// Fastest-decile batch time of each: the batches no other process
    /// interrupted, hence the intrinsic cost.
    op_p10: Duration,
    baseline_p10: Duration,
    /// Median of the per-round ratios: a burst of load from elsewhere hits
    /// both halves of a round alike and mostly cancels out.
    median_ratio: f64,
}

/// Times `op` and `baseline` in short alternating batches.
fn interleaved(mut op: impl FnMut(), mut baseline: impl FnMut()) -> Comparison {
    const BATCH: u32 = 10;
    const ROUNDS: usize = 601;
    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..BATCH {
            f();
        }
        start.elapsed() / BATCH
    };
    let mut ops = Vec::with_capacity(ROUNDS);
    let mut baselines = Vec::with_capacity(ROUNDS);
    let mut ratios = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        // Alternate which goes first so neither always follows the other.
        let (a, b) = if round % 2 == 0 {
            let a = time(&mut op);
            (a, time(&mut baseline))
        } else {
            let b = time(&mut baseline);
            (time(&mut op), b)
        };
        ops.push(a);
        baselines.push(b);
        ratios.push(a.as_secs_f64() / b.as_secs_f64());
    }
    ops.sort();
    baselines.sort();
    ratios.sort_by(f64::total_cmp);
    Comparison {
        op_p10: ops[ROUNDS / 10],
        baseline_p10: baselines[ROUNDS / 10],
        median_ratio: ratios[ROUNDS / 2],
    }
}

fn report_ratio() {
    let f = fixture();
    let generation = f.voucher.generation;
    let c = interleaved(
        || {
            black_box(parse_verify(
                black_box(&f.headers),
                black_box(&f.signer),
                generation,
            ));
        },
        || {
            bare_verify(
                black_box(f.signer.as_array()),
                black_box(&f.message),
                &f.signature,
            )
        },
    );
    println!(
        "ratio credential_parse_verify / bare_dalek_verify: {:.3} (goal <= 1.2) \
         from fastest-decile batches {:?} / {:?}; median per-round ratio {:.3}",
        c.op_p10.as_secs_f64() / c.baseline_p10.as_secs_f64(),
        c.op_p10,
        c.baseline_p10,
        c.median_ratio,
    );
    // What a session saves on each request (docs/SPEC.md, "Sessions").
    let (master, session, mac) = session_fixture(&f.voucher);
    let lane = f.voucher.lane;
    let s = interleaved(
        || session_check(&master, &lane, generation, &session, &mac, &f.voucher),
        || {
            black_box(parse_verify(
                black_box(&f.headers),
                black_box(&f.signer),
                generation,
            ));
        },
    );
    println!(
        "ratio session_key_and_mac_verify / credential_parse_verify: {:.4} \
         from fastest-decile batches {:?} / {:?}; median per-round ratio {:.4}",
        s.op_p10.as_secs_f64() / s.baseline_p10.as_secs_f64(),
        s.op_p10,
        s.baseline_p10,
        s.median_ratio,
    );
    // The agent's side: what it does per request beyond the HTTP call, in a
    // session (a MAC, its headers) and out of one (a signature, its headers).
    let key = master.key(&lane, generation, &session);
    let v = f.voucher;
    let a = interleaved(
        || {
            let mut headers = HeaderMap::new();
            session::SessionCredential::new(black_box(&key), session, lane, v.seq, v.cumulative)
                .write(&mut headers);
            black_box(headers);
        },
        || {
            let mut headers = HeaderMap::new();
            Credential::sign(black_box(&f.key), black_box(&v)).write(&mut headers);
            black_box(headers);
        },
    );
    println!(
        "ratio agent session_credential / signed_credential: {:.4} \
         from fastest-decile batches {:?} / {:?}; median per-round ratio {:.4}",
        a.op_p10.as_secs_f64() / a.baseline_p10.as_secs_f64(),
        a.op_p10,
        a.baseline_p10,
        a.median_ratio,
    );
}

criterion_group!(voucher_benches, benches);

fn main() {
    voucher_benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo bench` passes --bench; `cargo test --benches` runs each benchmark
    // once as a smoke test and needs no ratio.
    if std::env::args().any(|arg| arg == "--bench") {
        report_ratio();
    }
}
