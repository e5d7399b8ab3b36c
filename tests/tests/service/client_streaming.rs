//! Metered streams: the agent pays as it reads, with fresh credentials on
//! the side, so the service's credit never runs dry; the bill ends within
//! one price unit of what was really used.

use std::time::Instant;

use crate::support::client::*;
use amp_sdk::client::CloseOutcome;
use amp_tests::*;

/// Reads a body to its end or its cut: the bytes received, and the error
/// that ended it, if one did.
async fn read_to_the_end(
    response: &mut amp_sdk::client::AmpResponse,
) -> (u64, Option<amp_sdk::client::ClientError>) {
    let mut received = 0u64;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => received += chunk.len() as u64,
            Ok(None) => return (received, None),
            Err(error) => return (received, Some(error)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byte_stream_far_beyond_the_credit_is_paid_as_it_goes() {
    let mut h = Harness::new(TokenKind::Token).await;
    let server = Server::start(&mut h, |b| b).await;
    let agent = Agent::new(&mut h).await;
    let client = agent.client(&h, policy(&h, 100_000, 20_000)).await;

    // 5,000 bytes at 1 a byte, with 400 of credit: twelve times the credit.
    let mut response = client
        .get(&server.url("/v1/stream/bytes?chunks=100&size=50&ms=1"))
        .await
        .unwrap();
    let mut received = 0;
    while let Some(chunk) = response.chunk().await.unwrap() {
        received += chunk.len() as u64;
    }
    assert_eq!(received, 5_000, "the stream was never cut");
    drop(response);

    // The lane's seq moved: credit credentials went out during the stream.
    let lane = client.lane(&server.origin()).unwrap();
    assert!(lane.seq > 5, "only {} credentials", lane.seq);
    assert_eq!(lane.record.owed, 5_000);

    let outcome = client.close(&server.origin()).await.unwrap();
    let CloseOutcome::Closed { settled, .. } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(
        settled,
        received * PER_BYTE.rate,
        "billed exactly what was received"
    );
    assert_eq!(h.tokens(&server.recipient.token).await, settled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_stream_is_billed_within_one_price_unit() {
    let mut h = Harness::new(TokenKind::Token).await;
    let server = Server::start(&mut h, |b| b).await;
    let agent = Agent::new(&mut h).await;
    let client = agent.client(&h, policy(&h, 100_000, 20_000)).await;

    // About 1.2 s at 1,000 a second, with 400 (0.4 s) of credit.
    let sent = Instant::now();
    let mut response = client
        .get(&server.url("/v1/stream/seconds?chunks=24&size=16&ms=50"))
        .await
        .unwrap();
    let headers = Instant::now();
    let mut chunks = 0;
    while response.chunk().await.unwrap().is_some() {
        chunks += 1;
    }
    let (inner, outer) = (headers.elapsed(), sent.elapsed());
    assert_eq!(chunks, 24, "the stream was never cut");
    drop(response);

    let outcome = client.close(&server.origin()).await.unwrap();
    let CloseOutcome::Closed { settled, .. } = outcome else {
        panic!("{outcome:?}");
    };
    // The truth lies between the time seen after the headers and the time
    // seen from sending; the bill must be within one price unit of it.
    let rate = PER_SECOND.rate;
    let low = inner.as_millis() as u64 * rate / 1_000;
    let high = outer.as_millis() as u64 * rate / 1_000;
    assert!(
        settled + rate >= low && settled <= high + rate,
        "billed {settled}, used between {low} and {high}"
    );
    assert_eq!(h.tokens(&server.recipient.token).await, settled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_stops_when_the_budget_does() {
    let mut h = Harness::new(TokenKind::Token).await;
    let server = Server::start(&mut h, |b| b).await;
    let agent = Agent::new(&mut h).await;
    let mut terms = policy(&h, 1_000, 20_000);
    terms.lease = 0;
    let client = agent.client(&h, terms).await;

    let mut response = client
        .get(&server.url("/v1/stream/bytes?chunks=100&size=50&ms=1"))
        .await
        .unwrap();
    let (received, error) = read_to_the_end(&mut response).await;
    drop(response);
    // The client signed at most its budget, and the service served no more
    // than that (the lane cannot pay more); the cut says why.
    assert!(client.budget().spent <= 1_000, "{:?}", client.budget());
    assert!(received <= 1_000, "received {received}");
    assert!(
        matches!(
            error,
            Some(amp_sdk::client::ClientError::BudgetExceeded { .. })
        ),
        "{error:?} received {received} {:?} {:?}",
        client.budget(),
        client.lane(&server.origin())
    );
    server.paywall.settle_now().await;
    assert!(h.tokens(&server.recipient.token).await <= 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_says_the_budget_is_why_even_before_the_payer_would_pay() {
    let mut h = Harness::new(TokenKind::Token).await;
    // A credit of 2,400 makes the client pay only once 1,200 is unpaid: more
    // than its whole budget, so its payer never runs before the service cuts
    // the body at the lane's limit.
    let server = Server::start(&mut h, |b| b.credit(2_400)).await;
    let agent = Agent::new(&mut h).await;
    let client = agent.client(&h, policy(&h, 1_000, 20_000)).await;

    let mut response = client
        .get(&server.url("/v1/stream/bytes?chunks=100&size=50&ms=1"))
        .await
        .unwrap();
    let (received, error) = read_to_the_end(&mut response).await;
    drop(response);
    assert_eq!(received, 1_000, "served up to the lane's limit");
    assert!(
        matches!(
            error,
            Some(amp_sdk::client::ClientError::BudgetExceeded { .. })
        ),
        "{error:?}"
    );
    // What was received is paid for, and nothing more.
    assert_eq!(client.budget().spent, 1_000, "{:?}", client.budget());
    server.paywall.settle_now().await;
    assert_eq!(h.tokens(&server.recipient.token).await, 1_000);
}
