//! `amp serve` metering streamed LLM responses on a `per_token` route: the
//! usage an OpenAI-compatible stream reports in its last chunk (asked for
//! by the proxy when the client did not, and then hidden from it), the
//! usage an Anthropic-compatible stream reports in `message_start` and
//! `message_delta`, the per-event fallback of a stream that reports none,
//! and the cut of a stream longer than the allowance. Each charge is read
//! back from the next request's `AMP-Owed`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use amp_cli::commands::{self, PayRequest};
use amp_sdk::client::{AmpClient, ClientError, Policy};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::{get, post};
use axum::Router;
use http::Method;
use serde_json::Value;

use crate::served::Served;

#[path = "../common/openai.rs"]
mod openai;
use openai::{sse, Asked};

/// Content chunks of `/v1/long`, far more than the credit pays for.
const LONG: usize = 2_000;

/// An Anthropic-compatible message, streamed: 25 input tokens, 15 output.
fn anthropic_stream() -> (HeaderMap, Body) {
    sse(vec![
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n".into(),
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hi\"}}\n\n".into(),
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n".into(),
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".into(),
    ])
}

fn upstream_api(asked: Asked) -> Router {
    openai::router(asked)
        .route("/v1/messages", post(|| async { anthropic_stream() }))
        .route(
            "/v1/silent",
            post(|| async { sse((0..4).map(|n| format!("data: {{\"n\":{n}}}\n\n")).collect()) }),
        )
        .route(
            "/v1/long",
            post(|| async { sse((0..LONG).map(chunk).collect()) }),
        )
        .route("/v1/dies", post(|| async { dying_stream() }))
        .route("/v1/slow", post(|| async { slow_stream() }))
        .route("/v1/ping", get(|| async { "pong" }))
}

/// One OpenAI-shaped content chunk of one token.
fn chunk(n: usize) -> String {
    format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"t{n}\"}}}}]}}\n\n")
}

fn event_stream<S>(events: S) -> (HeaderMap, Body)
where
    S: futures_util::Stream<Item = Result<String, std::io::Error>> + Send + 'static,
{
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    (headers, Body::from_stream(events))
}

/// Chunks `/v1/dies` sends before its connection breaks.
const BEFORE_DYING: usize = 40;

/// A completion whose upstream breaks after [`BEFORE_DYING`] chunks, without
/// ever reporting usage.
fn dying_stream() -> (HeaderMap, Body) {
    let chunks = (0..BEFORE_DYING).map(|n| Ok(chunk(n)));
    let death = std::iter::once(Err(std::io::Error::other("the model server crashed")));
    event_stream(futures_util::stream::iter(chunks.chain(death)))
}

/// Chunks `/v1/slow` produced so far: it stops when nobody reads.
static PRODUCED: AtomicUsize = AtomicUsize::new(0);

/// A completion of [`LONG`] chunks, one every 2 ms.
fn slow_stream() -> (HeaderMap, Body) {
    let chunks = futures_util::stream::unfold(0, |n| async move {
        if n == LONG {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        PRODUCED.fetch_add(1, Ordering::SeqCst);
        Some((Ok(chunk(n)), n + 1))
    });
    event_stream(chunks)
}

fn prices(mint: &str) -> String {
    format!(
        r#"
wallet = "service.json"
cluster = "localnet"
store = "vouchers.sqlite"
credit = "1000"

[[mints]]
mint = "{mint}"

[pricing.default]
mode = "per_call"
rate = "100"

[pricing.routes."/v1/chat/completions"]
mode = "per_token"
rate = "2"

# Input and output tokens priced apart, and one model dearer.
[pricing.tokens."/v1/chat/completions"]
input = "1"
output = "3"

[pricing.tokens."/v1/chat/completions".models.big]
input = "10"
output = "30"

[pricing.routes."/v1/messages"]
mode = "per_token"
rate = "2"

[pricing.routes."/v1/silent"]
mode = "per_token"
rate = "2"

[pricing.routes."/v1/long"]
mode = "per_token"
rate = "2"

[pricing.routes."/v1/dies"]
mode = "per_token"
rate = "2"

[pricing.routes."/v1/slow"]
mode = "per_token"
rate = "2"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_completions_are_charged_the_usage_they_report() {
    let asked = Asked::default();
    let served = Served::start(prices, upstream_api(Arc::clone(&asked))).await;
    let (bank, agent, http, base) = (&served.bank, &served.agent, &served.http, &served.base);
    let channel = served.open("5").await;
    let pay = |method: Method, path: &str, body: Option<&str>| PayRequest {
        url: format!("{base}{path}"),
        method,
        headers: vec![(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body: body.map(|b| b.as_bytes().to_vec()),
        lane: channel,
        max: None,
    };
    // What the lane owes after everything before it: a per-call ping's
    // receipt, less the ping.
    let owed_before_ping = async || {
        let ping = commands::pay(bank, agent, http, pay(Method::GET, "/v1/ping", None))
            .await
            .unwrap();
        ping.owed.unwrap() - 100
    };
    let mut owed = owed_before_ping().await + 100;

    // The manifest states the token prices, so an agent can check them.
    let manifest: Value = http
        .get(format!("{base}/.well-known/amp.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tokens = &manifest["pricing"]["tokens"]["/v1/chat/completions"];
    assert_eq!(
        (&tokens["input"], &tokens["output"]),
        (&Value::from("1"), &Value::from("3"))
    );
    assert_eq!(tokens["models"]["big"]["output"], "30");

    // OpenAI, the client not asking for usage: the proxy asks, charges
    // 30 input tokens at 1 and 12 output tokens at 3, and hides the usage chunk.
    let request = r#"{"model":"m","messages":[{"role":"user","content":"Hi"}],"stream":true}"#;
    let chat = commands::pay(
        bank,
        agent,
        http,
        pay(Method::POST, "/v1/chat/completions", Some(request)),
    )
    .await
    .unwrap();
    assert_eq!(chat.status, 200);
    assert!(chat.body.contains("\"content\":\"Hel\""), "{}", chat.body);
    // The paywall states the charge at the end, in an SSE comment.
    assert!(
        chat.body.ends_with("data: [DONE]\n\n: amp-charged 66\n\n"),
        "{}",
        chat.body
    );
    assert!(!chat.body.contains("total_tokens"), "{}", chat.body);
    assert_eq!(*asked.lock().unwrap(), vec![true]);
    assert_eq!(owed_before_ping().await, owed + 66);
    owed += 66 + 100;

    // The client asking for usage itself sees it, and pays the same.
    let request =
        r#"{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}"#;
    let chat = commands::pay(
        bank,
        agent,
        http,
        pay(Method::POST, "/v1/chat/completions", Some(request)),
    )
    .await
    .unwrap();
    assert!(chat.body.contains("\"total_tokens\":42"), "{}", chat.body);
    assert_eq!(owed_before_ping().await, owed + 66);
    owed += 66 + 100;

    // The dearer model, streamed and not: 30 × 10 + 12 × 30.
    for stream in [true, false] {
        let request = format!(r#"{{"model":"big","messages":[],"stream":{stream}}}"#);
        let chat = commands::pay(
            bank,
            agent,
            http,
            pay(Method::POST, "/v1/chat/completions", Some(&request)),
        )
        .await
        .unwrap();
        assert_eq!(chat.status, 200, "{}", chat.body);
        assert_eq!(owed_before_ping().await, owed + 660, "stream: {stream}");
        owed += 660 + 100;
    }

    // Anthropic: 25 input and 15 output tokens at 2; the request is not
    // touched (its API would refuse stream_options).
    let request = r#"{"model":"c","max_tokens":64,"messages":[],"stream":true}"#;
    let message = commands::pay(
        bank,
        agent,
        http,
        pay(Method::POST, "/v1/messages", Some(request)),
    )
    .await
    .unwrap();
    assert!(
        message.body.contains("event: message_stop"),
        "{}",
        message.body
    );
    assert_eq!(owed_before_ping().await, owed + 80);
    owed += 80 + 100;

    // No usage at all: one unit per data event (4 at 2), never free.
    let silent = commands::pay(
        bank,
        agent,
        http,
        pay(Method::POST, "/v1/silent", Some("{}")),
    )
    .await
    .unwrap();
    assert_eq!(silent.body.matches("data: ").count(), 4);
    assert_eq!(owed_before_ping().await, owed + 8);
    owed += 8 + 100;

    // A stream longer than the allowance (the credit, 1,000, at 2 a token:
    // 500 chunks of one token at least), from a client that pays no credit:
    // the paywall states what is due, holds the next chunk for credit, then
    // cuts the stream with an error chunk in OpenAI's format; charged what
    // was delivered, the whole allowance.
    let long = commands::pay(bank, agent, http, pay(Method::POST, "/v1/long", Some("{}")))
        .await
        .unwrap();
    assert_eq!(
        long.body.matches("\"content\"").count(),
        500,
        "{}",
        &long.body[..200]
    );
    assert!(
        long.body.contains("\"code\":\"AMP_UNDERFUNDED\""),
        "{}",
        &long.body[long.body.len() - 300..]
    );
    assert!(long.body.ends_with("data: [DONE]\n\n"));
    assert!(long.body.contains(": amp-charged 500\n\n"));
    assert!(long.body.contains(": amp-due 1002\n\n"));
    assert!(long.body.contains(": amp-charged 1000\n\ndata: {\"error\""));
    assert_eq!(owed_before_ping().await, owed + 1_000);
    served.paywall.shutdown().await.unwrap();
}

/// An agent on the SDK (as `amp pay` and `amp proxy` are) reading `/v1/long`:
/// 2,000 one-token chunks at 2 against a credit of 1,000.
async fn read_long(client: &AmpClient, base: &str) -> String {
    let request = client
        .http()
        .post(format!("{base}/v1/long"))
        .header("content-type", "application/json")
        .body("{}");
    client.send(request).await.unwrap().text().await.unwrap()
}

/// What the service's receipt says the agent's lane owes after a per-call
/// ping, less the ping.
async fn owed_by(client: &AmpClient, base: &str) -> u64 {
    let ping = client.get(&format!("{base}/v1/ping")).await.unwrap();
    ping.receipt().unwrap().owed - 100
}

async fn agent(served: &Served, budget: u64) -> (AmpClient, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut policy = Policy::new(served.mint, budget);
    policy.deposit = Some(budget.min(5_000_000));
    let client = AmpClient::builder(dir.path().join("lanes.json"), policy)
        .chain(Arc::clone(&served.chain))
        .wallet(served.agent.insecure_clone())
        .build()
        .await
        .unwrap();
    (client, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_stream_is_paid_as_it_goes() {
    let served = Served::start(prices, upstream_api(Asked::default())).await;
    let base = &served.base;

    // The agent pays each statement of the charge with a credit credential:
    // the stream runs to its end, 4 times the credit, and is charged all of it.
    let (client, _lanes) = agent(&served, 10_000_000).await;
    let body = read_long(&client, base).await;
    assert_eq!(
        body.matches("\"content\"").count(),
        LONG,
        "{}",
        &body[..200]
    );
    assert!(!body.contains("AMP_UNDERFUNDED"));
    assert!(body.ends_with(": amp-charged 4000\n\n"));
    let lane = client.lane(base).unwrap().record;
    assert_eq!(lane.owed, 4_000, "the agent counts what the stream stated");
    assert_eq!(
        owed_by(&client, base).await,
        4_000,
        "and so does the service"
    );
    served.paywall.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_past_the_budget_is_cut_with_an_error_event() {
    let served = Served::start(prices, upstream_api(Asked::default())).await;
    let base = &served.base;

    // A budget of 1,500, all of it deposited: the agent pays the statements
    // while its budget lets it; the service serves what the lane can pay
    // (750 chunks at 2), says what the next chunk needs, and cuts the
    // stream with an error chunk in OpenAI's format.
    let (client, _lanes) = agent(&served, 1_500).await;
    let body = read_long(&client, base).await;
    let received = body.matches("\"content\"").count() as u64;
    assert_eq!(received, 750, "{}", &body[body.len() - 300..]);
    assert!(body.contains(": amp-due 1502\n\n"));
    assert!(
        body.ends_with("data: [DONE]\n\n") && body.contains("\"code\":\"AMP_UNDERFUNDED\""),
        "{}",
        &body[body.len() - 300..]
    );
    // The agent owes exactly what it received (the last statement, before
    // the error chunk, says what the service charged), and nothing more
    // can be paid.
    assert!(body.contains(": amp-charged 1500\n\ndata: {\"error\""));
    let lane = client.lane(base).unwrap().record;
    assert_eq!(lane.owed, received * 2);
    let refused = client.get(&format!("{base}/v1/ping")).await.unwrap_err();
    assert!(
        matches!(refused, ClientError::BudgetExceeded { .. }),
        "{refused:?}"
    );
    served.paywall.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_upstream_or_a_vanished_client_pays_what_was_delivered() {
    let served = Served::start(prices, upstream_api(Asked::default())).await;
    let base = &served.base;
    let (client, _lanes) = agent(&served, 10_000_000).await;

    // The upstream breaks after 40 chunks: the client gets what reached the
    // service before the break (the break may lose the last few), then an
    // error; charged those chunks only (the per-event fallback applies to
    // streams that end). The next request settles the agent's count with
    // the service's.
    let request = client
        .http()
        .post(format!("{base}/v1/dies"))
        .header("content-type", "application/json")
        .body("{}");
    let mut response = client.send(request).await.unwrap();
    let mut body = Vec::new();
    let broke = loop {
        match response.chunk().await {
            Ok(Some(piece)) => body.extend_from_slice(&piece),
            Ok(None) => break None,
            Err(error) => break Some(error),
        }
    };
    assert!(broke.is_some(), "the break reaches the reader");
    let body = String::from_utf8(body).unwrap();
    let delivered = body.matches("\"content\"").count() as u64;
    assert!(delivered > 0 && delivered <= BEFORE_DYING as u64, "{body}");
    let charge = delivered * 2;
    drop(response);
    assert_eq!(owed_by(&client, base).await, charge);
    assert_eq!(client.lane(base).unwrap().record.owed, charge + 100);

    // The client reads 100 chunks of a slow stream and goes away: the
    // upstream stops being read soon after, the service charges the chunks
    // it had sent (no more than the credit past what the client read), and
    // the agent's own count and the service's agree on the next request.
    let request = client
        .http()
        .post(format!("{base}/v1/slow"))
        .header("content-type", "application/json")
        .body("{}");
    let mut response = client.send(request).await.unwrap();
    let mut read = 0;
    while read < 100 {
        let piece = response.chunk().await.unwrap().unwrap();
        read += String::from_utf8_lossy(&piece)
            .matches("\"content\"")
            .count();
    }
    drop(response);
    let owed_before = charge + 100;
    let mut produced = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = PRODUCED.load(Ordering::SeqCst);
        if now == produced {
            break;
        }
        produced = now;
    }
    assert!(
        produced < LONG / 2,
        "the upstream kept streaming: {produced}"
    );
    let charged = owed_by(&client, base).await - owed_before;
    let read = read as u64;
    assert!(
        charged >= read * 2 && charged <= read * 2 + 1_000,
        "charged {charged} for {read} chunks read"
    );
    assert!(
        charged <= produced as u64 * 2,
        "charged {charged}, produced {produced}"
    );
    let lane = client.lane(base).unwrap().record;
    assert_eq!(
        lane.owed,
        owed_before + charged + 100,
        "nothing charged twice"
    );
    served.paywall.shutdown().await.unwrap();
}
