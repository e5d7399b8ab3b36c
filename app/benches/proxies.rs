//! What the two proxies add to an LLM call: an OpenAI-shaped upstream on
//! loopback, called
//!
//! 1. alone (a plain HTTP client, unpaid),
//! 2. through `amp serve` (the SDK agent paying, the paywall metering
//!    tokens), and
//! 3. through `amp proxy` and `amp serve` (a plain HTTP client, as the
//!    `openai` library is, pointed at the outbound proxy),
//!
//! for a JSON completion (latency per request) and a streamed one of
//! [`CHUNKS`] content chunks (time to first token, and time per chunk over
//! the whole stream). Everything runs in this process on loopback, in one
//! run, so the figures compare; the added latency is printed as a
//! difference and a ratio against the upstream alone.
//!
//! `cargo bench -p amp-cli --bench proxies`

use std::sync::Arc;
use std::time::{Duration, Instant};

use amp_cli::outbound::{self, Allow, Outbound};
use amp_sdk::client::{AmpClient, Policy};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::post;
use axum::Router;

/// The in-process `amp serve` scene of the CLI tests.
#[path = "../tests/cli/served.rs"]
#[allow(dead_code)] // the bench opens no channel by hand
mod served;
use served::{serve, Served};

/// Content chunks of a streamed completion.
const CHUNKS: usize = 64;
/// Requests measured per row (after [`WARM_UP`] unmeasured ones).
const REQUESTS: usize = 300;
const WARM_UP: usize = 30;

const ANSWER: &str = r#"{"id":"cmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"}}],"usage":{"prompt_tokens":30,"completion_tokens":12,"total_tokens":42}}"#;

/// The upstream: JSON, or [`CHUNKS`] content chunks, the usage chunk when
/// asked for, and `[DONE]`, each written as its own frame.
fn upstream() -> Router {
    Router::new().route(
        "/v1/chat/completions",
        post(|body: axum::body::Bytes| async move {
            let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let mut headers = HeaderMap::new();
            if request["stream"] != true {
                headers.insert("content-type", HeaderValue::from_static("application/json"));
                return (headers, Body::from(ANSWER));
            }
            headers.insert(
                "content-type",
                HeaderValue::from_static("text/event-stream"),
            );
            let mut events: Vec<String> = (0..CHUNKS)
                .map(|n| {
                    format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"t{n}\"}}}}],\"usage\":null}}\n\n")
                })
                .collect();
            if request["stream_options"]["include_usage"] == true {
                events.push(format!("data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":30,\"completion_tokens\":{CHUNKS},\"total_tokens\":{}}}}}\n\n", 30 + CHUNKS));
            }
            events.push("data: [DONE]\n\n".into());
            let frames = futures_util::stream::iter(events.into_iter().map(Ok::<_, std::io::Error>));
            (headers, Body::from_stream(frames))
        }),
    )
}

fn prices(mint: &str) -> String {
    format!(
        r#"
wallet = "service.json"
cluster = "localnet"
store = "vouchers.sqlite"
durability = "normal"
credit = "100000"

[[mints]]
mint = "{mint}"

[pricing.default]
mode = "per_call"
rate = "100"

[pricing.routes."/v1/chat/completions"]
mode = "per_token"
rate = "1"

[pricing.tokens."/v1/chat/completions"]
input = "1"
output = "3"
"#
    )
}

/// One call's timings.
struct Call {
    /// Until the whole body was read.
    total: Duration,
    /// Until the first content chunk arrived (streams).
    first_token: Option<Duration>,
}

/// How a row sends a completion request.
enum Sender<'a> {
    Plain(&'a reqwest::Client),
    Agent(&'a AmpClient),
}

impl Sender<'_> {
    async fn call(&self, url: &str, stream: bool) -> Call {
        let body = if stream {
            r#"{"model":"m","messages":[{"role":"user","content":"Hi"}],"stream":true}"#
        } else {
            r#"{"model":"m","messages":[{"role":"user","content":"Hi"}]}"#
        };
        let started = Instant::now();
        let mut first_token = None;
        let mut note = |piece: &[u8]| {
            if first_token.is_none() && piece.windows(9).any(|w| w == b"\"content\"") {
                first_token = Some(started.elapsed());
            }
        };
        match self {
            Sender::Plain(http) => {
                let mut response = http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success(), "{}", response.status());
                while let Some(piece) = response.chunk().await.unwrap() {
                    note(&piece);
                }
            }
            Sender::Agent(client) => {
                let request = client
                    .http()
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body);
                let mut response = client.send(request).await.unwrap();
                assert!(response.status().is_success(), "{}", response.status());
                while let Some(piece) = response.chunk().await.unwrap() {
                    note(&piece);
                }
            }
        }
        Call {
            total: started.elapsed(),
            first_token,
        }
    }
}

/// Median and 99th percentile.
fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

struct Row {
    name: &'static str,
    request: (Duration, Duration),
    first_token: (Duration, Duration),
    stream: (Duration, Duration),
}

async fn measure(name: &'static str, sender: Sender<'_>, url: &str) -> Row {
    for _ in 0..WARM_UP {
        sender.call(url, false).await;
        sender.call(url, true).await;
    }
    let mut request = Vec::with_capacity(REQUESTS);
    let mut first_token = Vec::with_capacity(REQUESTS);
    let mut stream = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        request.push(sender.call(url, false).await.total);
        let call = sender.call(url, true).await;
        first_token.push(call.first_token.expect("the stream carried content"));
        stream.push(call.total);
    }
    Row {
        name,
        request: percentiles(request),
        first_token: percentiles(first_token),
        stream: percentiles(stream),
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // amp serve in front of the upstream, both on loopback.
    let served = Served::start(prices, upstream()).await;
    let agent_client = |lanes: &str| {
        let mut policy = Policy::new(served.mint, 9_000_000);
        policy.deposit = Some(4_000_000);
        policy.durability = amp_sdk::client::Durability::Normal;
        AmpClient::builder(served.dir.path().join(lanes), policy)
            .chain(Arc::clone(&served.chain))
            .wallet(served.agent.insecure_clone())
    };
    let sdk_agent = agent_client("sdk-lanes.json").build().await.unwrap();
    let outbound_agent = agent_client("proxy-lanes.json").build().await.unwrap();
    let outbound = format!(
        "http://{}",
        serve(outbound::router(Arc::new(Outbound::new(
            outbound_agent,
            Allow::Any,
        ))))
        .await
    );
    // The same upstream on its own, for the row without proxies.
    let api = format!("http://{}", serve(upstream()).await);
    let served_url = &served.base;

    let http = reqwest::Client::new();
    let path = "/v1/chat/completions";
    let alone = measure(
        "upstream alone",
        Sender::Plain(&http),
        &format!("{api}{path}"),
    )
    .await;
    let paid = measure(
        "amp serve (SDK agent)",
        Sender::Agent(&sdk_agent),
        &format!("{served_url}{path}"),
    )
    .await;
    let both = measure(
        "amp proxy + amp serve",
        Sender::Plain(&http),
        &format!("{outbound}/{served_url}{path}"),
    )
    .await;

    println!(
        "LLM calls on loopback, {REQUESTS} of each (after {WARM_UP} to warm up); \
         a streamed completion is {CHUNKS} content chunks"
    );
    println!(
        "{:<24} {:>22} {:>22} {:>22} {:>14}",
        "", "JSON p50 / p99 µs", "first token p50 / p99", "whole stream p50 / p99", "per chunk µs"
    );
    for row in [&alone, &paid, &both] {
        println!(
            "{:<24} {:>10.0} / {:>9.0} {:>10.0} / {:>9.0} {:>10.0} / {:>9.0} {:>14.1}",
            row.name,
            micros(row.request.0),
            micros(row.request.1),
            micros(row.first_token.0),
            micros(row.first_token.1),
            micros(row.stream.0),
            micros(row.stream.1),
            micros(row.stream.0) / CHUNKS as f64,
        );
    }
    for row in [&paid, &both] {
        let added = |through: Duration, base: Duration| micros(through) - micros(base);
        println!(
            "{}: adds {:.0} µs a JSON call ({:.2}× the upstream alone), {:.0} µs to the first \
             token ({:.2}×), {:.1} µs a streamed chunk ({:.2}× the whole stream)",
            row.name,
            added(row.request.0, alone.request.0),
            micros(row.request.0) / micros(alone.request.0),
            added(row.first_token.0, alone.first_token.0),
            micros(row.first_token.0) / micros(alone.first_token.0),
            added(row.stream.0, alone.stream.0) / CHUNKS as f64,
            micros(row.stream.0) / micros(alone.stream.0),
        );
    }
    served.paywall.shutdown().await.unwrap();
}
