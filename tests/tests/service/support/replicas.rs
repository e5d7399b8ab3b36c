//! The harness of the replica test (`server_replicas.rs`): paying through
//! several replicas at once and checking that each seq was accepted once
//! with exact owed amounts.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use amp_sdk::headers::Receipt;
use amp_sdk::manifest::{ErrorBody, ErrorCode};
use amp_tests::*;
use http::{HeaderMap, StatusCode};
use solana_keypair::Keypair;

use crate::support::server::credential_headers;

/// Every paid request here costs this much (`per_call`).
pub const PRICE: u64 = 10;

// Hammering: pre-signed credentials, each sent to several replicas at once.

/// What one request came back with.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub lane: usize,
    pub seq: u64,
    pub status: StatusCode,
    /// `AMP-Owed` of an accepted request.
    pub owed: Option<u64>,
    /// The error code of a refused one.
    pub code: Option<ErrorCode>,
}

/// Credentials `first..first + count` of each lane, each covering its seq × PRICE.
pub fn credentials(
    signer: &Keypair,
    lanes: &[Lane],
    first: u64,
    count: u64,
) -> Vec<Vec<HeaderMap>> {
    lanes
        .iter()
        .map(|lane| {
            (first..first + count)
                .map(|seq| credential_headers(signer, &lane.voucher(seq, seq * PRICE)))
                .collect()
        })
        .collect()
}

/// Status, `AMP-Owed` (or the error body's `owed`) and error code.
pub async fn pay(
    client: &reqwest::Client,
    url: &str,
    headers: HeaderMap,
) -> (StatusCode, Option<u64>, Option<ErrorCode>) {
    let response = client
        .get(url)
        .headers(headers)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status();
    let receipt = Receipt::from_headers(response.headers())
        .ok()
        .map(|r| r.owed);
    let body = response
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    if status == StatusCode::OK {
        return (status, receipt, None);
    }
    let error = serde_json::from_slice::<ErrorBody>(&body).ok();
    (
        status,
        error.as_ref().and_then(|e| e.owed),
        error.map(|e| e.error),
    )
}

/// `workers` clients per lane take the lane's credentials in order; each
/// credential goes to `fanout` replicas of `urls` at once (rotating).
pub async fn hammer(
    client: &reqwest::Client,
    urls: &[String],
    fanout: usize,
    work: Vec<Vec<HeaderMap>>,
    first: u64,
    workers: usize,
) -> Vec<Outcome> {
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let urls = Arc::new(urls.to_vec());
    let mut tasks = Vec::new();
    for (lane, credentials) in work.into_iter().enumerate() {
        let credentials = Arc::new(credentials);
        let next = Arc::new(AtomicUsize::new(0));
        for _ in 0..workers {
            let (client, urls, outcomes) =
                (client.clone(), Arc::clone(&urls), Arc::clone(&outcomes));
            let (credentials, next) = (Arc::clone(&credentials), Arc::clone(&next));
            tasks.push(tokio::spawn(async move {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(headers) = credentials.get(index) else {
                        return;
                    };
                    let seq = first + index as u64;
                    let targets: Vec<usize> = (0..fanout)
                        .map(|k| (index + lane + k) % urls.len())
                        .collect();
                    let sends: Vec<_> = targets
                        .iter()
                        .map(|&replica| {
                            let (client, url, headers) =
                                (client.clone(), urls[replica].clone(), headers.clone());
                            tokio::spawn(async move { pay(&client, &url, headers).await })
                        })
                        .collect();
                    for send in sends {
                        let (status, owed, code) = send.await.unwrap();
                        outcomes.lock().unwrap().push(Outcome {
                            lane,
                            seq,
                            status,
                            owed,
                            code,
                        });
                    }
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    Arc::try_unwrap(outcomes).unwrap().into_inner().unwrap()
}

/// What a hammering left on a lane.
#[derive(Clone, Copy, Debug)]
pub struct Accepted {
    /// Requests accepted (each charged PRICE).
    pub count: u64,
    /// The highest seq accepted: its voucher, which signs seq × PRICE, is
    /// the best one, and what settling the lane pays in all.
    pub max_seq: u64,
}

impl Accepted {
    pub fn signed(&self) -> u64 {
        self.max_seq * PRICE
    }
}

/// Checks a hammering: per lane, no seq accepted twice, the receipts of the
/// accepted requests are exactly PRICE, 2·PRICE, … (each saw all the
/// others), starting above `owed_before[lane]`, and every refusal is a seq
/// already overtaken.
pub fn check_exact(outcomes: &[Outcome], owed_before: &[u64]) -> Vec<Accepted> {
    let mut accepted = Vec::new();
    for (lane, before) in owed_before.iter().enumerate() {
        let mine: Vec<&Outcome> = outcomes.iter().filter(|o| o.lane == lane).collect();
        let ok: Vec<&&Outcome> = mine.iter().filter(|o| o.status == StatusCode::OK).collect();
        let seqs: HashSet<u64> = ok.iter().map(|o| o.seq).collect();
        assert_eq!(
            seqs.len(),
            ok.len(),
            "lane {lane}: a seq was accepted twice"
        );
        let mut owed: Vec<u64> = ok.iter().map(|o| o.owed.unwrap()).collect();
        owed.sort_unstable();
        let expected: Vec<u64> = (1..=ok.len() as u64).map(|n| before + n * PRICE).collect();
        assert_eq!(owed, expected, "lane {lane}: owed is not exact");
        for refused in mine.iter().filter(|o| o.status != StatusCode::OK) {
            assert_eq!(
                (refused.status, refused.code),
                (StatusCode::CONFLICT, Some(ErrorCode::InvalidSeq)),
                "lane {lane}: {refused:?}"
            );
        }
        assert!(!ok.is_empty(), "lane {lane}: nothing accepted");
        accepted.push(Accepted {
            count: ok.len() as u64,
            max_seq: seqs.iter().copied().max().unwrap(),
        });
    }
    accepted
}
