//! Hostile credentials: whatever a client puts in the AMP headers, the
//! answer is a 4xx JSON error body — never a 500, never a panic — and the
//! server keeps serving honest clients.

use crate::support::server::*;
use amp_sdk::headers::Header;
use amp_sdk::manifest::{ErrorCode, CLOSE_PATH};
use http::{HeaderMap, HeaderValue};

/// Values no header may carry, with why.
fn hostile_values() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("huge", vec![b'1'; 64 * 1024]),
        ("just too long", vec![b'2'; 89]),
        ("non-UTF-8", b"\xff\xfe\xfd".to_vec()),
        ("UTF-8 but not ASCII", "é€".as_bytes().to_vec()),
        ("wrong base58 alphabet", b"0OIl".to_vec()),
        ("negative", b"-1".to_vec()),
        ("minus zero", b"-0".to_vec()),
        ("overflow u64", b"18446744073709551616".to_vec()),
        ("overflow i64", b"-9223372036854775809".to_vec()),
        ("leading zeros", b"007".to_vec()),
        ("plus sign", b"+5".to_vec()),
        ("exponent", b"1e3".to_vec()),
        ("hex", b"0x10".to_vec()),
        ("inner space", b"1 2".to_vec()),
        ("empty", b"".to_vec()),
        ("tab inside", b"1\t2".to_vec()),
        ("base58 of 33 bytes", bs58_of(33)),
        ("base58 of 63 bytes", bs58_of(63)),
    ]
}

fn bs58_of(len: usize) -> Vec<u8> {
    bs58::encode(vec![7u8; len]).into_string().into_bytes()
}

/// Asserts a client error with the SPEC's body.
fn assert_refused(reply: &Reply, what: &str) -> ErrorCode {
    assert!(
        reply.status.is_client_error(),
        "{what}: {} {}",
        reply.status,
        reply.text()
    );
    reply.error().error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_header_is_a_json_4xx() {
    let s = Scene::new().await;
    let mut cases = 0;
    for header in Header::CREDENTIAL {
        for (why, value) in hostile_values() {
            let value = HeaderValue::from_bytes(&value).unwrap();
            for path in ["/v1/call", CLOSE_PATH] {
                let mut headers = s.credential(1, 10);
                headers.insert(header.name(), value.clone());
                let reply = if path == CLOSE_PATH {
                    s.close(headers).await
                } else {
                    s.get(path, headers).await
                };
                let what = format!("{header} {why} on {path}");
                let code = assert_refused(&reply, &what);
                // Only AMP-Expires may be negative; the signature did not
                // cover this expiry.
                let expected = if header == Header::Expires && why == "negative" {
                    ErrorCode::InvalidSig
                } else {
                    ErrorCode::Malformed
                };
                assert_eq!(code, expected, "{what}");
                cases += 1;
            }
        }
        // The header twice.
        let mut headers = s.credential(1, 10);
        let value = headers
            .get(header.name())
            .cloned()
            .unwrap_or(HeaderValue::from(5));
        headers.append(header.name(), value.clone());
        headers.append(header.name(), value);
        let reply = s.get("/v1/call", headers).await;
        assert_eq!(assert_refused(&reply, "duplicate"), ErrorCode::Malformed);
    }
    assert!(cases > 150);
    // Nothing was charged, and an honest client is served.
    let reply = s.get("/v1/call", s.credential(1, 10)).await;
    assert_eq!(reply.ok().receipt().owed, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_in_random_headers() {
    let s = Scene::new().await;
    // A fixed xorshift: the same cases every run, bounded in number.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut sent = 0;
    while sent < 300 {
        let len = (next() % 120) as usize;
        let value: Vec<u8> = (0..len).map(|_| (next() % 256) as u8).collect();
        let Ok(value) = HeaderValue::from_bytes(&value) else {
            continue; // Not sendable over HTTP at all.
        };
        let mut headers = if next() % 4 == 0 {
            HeaderMap::new()
        } else {
            s.credential(1 + next() % 3, 10)
        };
        let header = Header::CREDENTIAL[(next() % 5) as usize];
        headers.insert(header.name(), value);
        let reply = s.get("/v1/call", headers).await;
        if reply.status.is_success() {
            // Only possible when the garbage left a valid credential intact.
            continue;
        }
        assert_refused(&reply, &format!("random {header}"));
        sent += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_well_formed_forgery_is_401() {
    let s = Scene::new().await;
    let mut headers = s.credential(1, 10);
    headers.insert("amp-sig", HeaderValue::from_bytes(&bs58_of(64)).unwrap());
    s.get("/v1/call", headers)
        .await
        .expect(ErrorCode::InvalidSig);
    // An address that is no lane at all: another program's account, a mint.
    let mut headers = s.credential(1, 10);
    let mint = bs58::encode(s.h.mint.to_bytes()).into_string();
    headers.insert("amp-channel", HeaderValue::from_str(&mint).unwrap());
    s.get("/v1/call", headers)
        .await
        .expect(ErrorCode::NoChannel);
}
