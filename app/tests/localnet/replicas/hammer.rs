//! Hammering: pre-signed credentials, each sent to several replicas at once.

use super::*;

/// What one request came back with.
#[derive(Clone, Debug)]
pub(super) struct Outcome {
    pub(super) lane: usize,
    pub(super) seq: u64,
    pub(super) replica: usize,
    pub(super) status: StatusCode,
    /// `AMP-Owed` of an accepted request (or the `owed` of a refusal).
    pub(super) owed: Option<u64>,
    /// The error code of a refused one.
    pub(super) code: Option<ErrorCode>,
}

/// Credentials `first..first + count` of each lane, each covering its seq × PRICE.
pub(super) fn credentials(
    signer: &Keypair,
    lanes: &[Lane],
    first: u64,
    count: u64,
) -> Vec<Vec<HeaderMap>> {
    lanes
        .iter()
        .map(|lane| {
            (first..first + count)
                .map(|seq| {
                    let mut headers = HeaderMap::new();
                    Credential::sign(signer, &lane.voucher(seq, seq * PRICE)).write(&mut headers);
                    headers
                })
                .collect()
        })
        .collect()
}

type Reply = (StatusCode, Option<u64>, Option<ErrorCode>);

/// Status, `AMP-Owed` (or the error body's `owed`) and error code; `Err`
/// when the replica did not answer.
pub(super) async fn try_pay(
    client: &reqwest::Client,
    url: &str,
    headers: HeaderMap,
) -> Result<Reply, reqwest::Error> {
    let response = client.get(url).headers(headers).send().await?;
    let status = response.status();
    let receipt = Receipt::from_headers(response.headers())
        .ok()
        .map(|r| r.owed);
    let body = response.bytes().await?;
    if status == StatusCode::OK {
        assert_eq!(&body[..], b"hello from upstream");
        return Ok((status, receipt, None));
    }
    let error = serde_json::from_slice::<ErrorBody>(&body).ok();
    Ok((
        status,
        error.as_ref().and_then(|e| e.owed),
        error.map(|e| e.error),
    ))
}

pub(super) async fn pay(client: &reqwest::Client, url: &str, headers: HeaderMap) -> Reply {
    try_pay(client, url, headers)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// `workers` clients per lane take the lane's credentials in order; each
/// credential goes to `fanout` replicas of `urls` at once (rotating).
pub(super) async fn hammer(
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
                    let sends: Vec<_> = (0..fanout)
                        .map(|k| (index + lane + k) % urls.len())
                        .map(|replica| {
                            let (client, url, headers) =
                                (client.clone(), urls[replica].clone(), headers.clone());
                            tokio::spawn(
                                async move { (replica, pay(&client, &url, headers).await) },
                            )
                        })
                        .collect();
                    for send in sends {
                        let (replica, (status, owed, code)) = send.await.unwrap();
                        outcomes.lock().unwrap().push(Outcome {
                            lane,
                            seq,
                            replica,
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
        tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .expect("a hammering within 2 minutes")
            .unwrap();
    }
    Arc::try_unwrap(outcomes).unwrap().into_inner().unwrap()
}

/// Sends each lane's credentials in order, one at a time, to `primary`
/// until it stops answering, then to `fallback`, as a client would that
/// retries elsewhere: a credential the dead replica accepted just before
/// dying is then refused as already seen (409), whose `owed` says what it
/// was charged; it counts as accepted (by replica 0). Returns the outcomes
/// and how many credentials were retried.
pub(super) async fn hammer_failover(
    client: &reqwest::Client,
    primary: String,
    fallback: String,
    work: Vec<Vec<HeaderMap>>,
    first: u64,
) -> (Vec<Outcome>, usize) {
    let dead = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (lane, credentials) in work.into_iter().enumerate() {
        let (client, primary, fallback, dead) = (
            client.clone(),
            primary.clone(),
            fallback.clone(),
            Arc::clone(&dead),
        );
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let mut retried = 0;
            for (index, headers) in credentials.into_iter().enumerate() {
                // Paced, so that the traffic outlasts a settlement or two.
                tokio::time::sleep(Duration::from_millis(15)).await;
                let seq = first + index as u64;
                let outcome = |replica, (status, owed, code): Reply| Outcome {
                    lane,
                    seq,
                    replica,
                    status,
                    owed,
                    code,
                };
                if !dead.load(Ordering::Relaxed) {
                    match try_pay(&client, &primary, headers.clone()).await {
                        Ok(reply) => {
                            outcomes.push(outcome(0, reply));
                            continue;
                        }
                        Err(_) => dead.store(true, Ordering::Relaxed),
                    }
                    // No answer: did the dead replica accept it first?
                    retried += 1;
                    let reply = pay(&client, &fallback, headers).await;
                    if reply.0 == StatusCode::CONFLICT {
                        outcomes.push(outcome(0, (StatusCode::OK, reply.1, None)));
                    } else {
                        outcomes.push(outcome(1, reply));
                    }
                    continue;
                }
                outcomes.push(outcome(1, pay(&client, &fallback, headers).await));
            }
            (outcomes, retried)
        }));
    }
    let mut all = Vec::new();
    let mut retried = 0;
    for task in tasks {
        let (outcomes, r) = task.await.unwrap();
        all.extend(outcomes);
        retried += r;
    }
    (all, retried)
}

/// What a hammering left on a lane.
#[derive(Clone, Copy, Debug)]
pub(super) struct Accepted {
    /// Requests accepted (each charged PRICE).
    pub(super) count: u64,
    /// The highest seq accepted: its voucher, which signs seq × PRICE, is
    /// the best one, and what settling the lane pays in all.
    pub(super) max_seq: u64,
}

impl Accepted {
    pub(super) fn signed(&self) -> u64 {
        self.max_seq * PRICE
    }
}

/// Checks a hammering: per lane, no seq accepted twice, the receipts of the
/// accepted requests are exactly PRICE, 2·PRICE, … (each saw all the
/// others), starting above `owed_before[lane]`, and every refusal is a seq
/// already overtaken.
pub(super) fn check_exact(outcomes: &[Outcome], owed_before: &[u64]) -> Vec<Accepted> {
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
