//! `amp serve` metering streamed LLM responses on a `per_token` route: the
//! usage an OpenAI-compatible stream reports in its last chunk (asked for
//! by the proxy when the client did not, and then hidden from it), the
//! usage an Anthropic-compatible stream reports in `message_start` and
//! `message_delta`, the per-event fallback of a stream that reports none,
//! and the cut of a stream longer than the allowance. Each charge is read
//! back from the next request's `AMP-Owed`.

use std::sync::Arc;

use amp_cli::commands::{self, PayRequest};
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
            post(|| async {
                sse((0..LONG)
                    .map(|n| format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"t{n}\"}}}}]}}\n\n"))
                    .collect())
            }),
        )
        .route("/v1/ping", get(|| async { "pong" }))
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
    assert!(chat.body.ends_with("data: [DONE]\n\n"), "{}", chat.body);
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
    // 500 chunks of one token at least): cut after what is paid for, with
    // an error chunk in OpenAI's format, and charged the whole allowance.
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
    assert_eq!(owed_before_ping().await, owed + 1_000);
    served.paywall.shutdown().await.unwrap();
}
