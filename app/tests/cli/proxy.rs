//! `amp serve` in front of a real upstream axum server on loopback: the
//! paywall charges per call, per token (from a header or from an
//! OpenAI-shaped `usage`), lets free paths through, and settles; paid
//! requests go through `amp pay`'s own function.

use std::sync::Arc;

use amp_cli::commands::lanes::{self, CloseLaneReport};
use amp_cli::commands::{self, AgentPayRequest, DelegateRequest, PayRequest};

use crate::served::{serve, Served};
use amp_cli::proxy::{self, Upstream};
use amp_sdk::manifest::{ErrorBody, ErrorCode};
use amp_sdk::server::FileConfig;
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::{get, post};
use axum::Router;
use http::Method;
use solana_keypair::Keypair;
use solana_signer::Signer;

const CHAT_ANSWER: &str = r#"{"id":"cmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi!"}}],"usage":{"prompt_tokens":30,"completion_tokens":12,"total_tokens":42}}"#;

/// The API being monetised: it knows nothing of AMP.
fn upstream_api() -> Router {
    Router::new()
        .route(
            "/v1/hello",
            get(|headers: HeaderMap| async move {
                let lane = headers
                    .get("x-amp-lane")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
                    .to_owned();
                let credential = headers.contains_key("amp-sig");
                format!("hello; paid by {lane}; credential forwarded: {credential}")
            }),
        )
        .route(
            "/v1/chat/completions",
            post(|| async {
                let mut headers = HeaderMap::new();
                headers.insert("content-type", HeaderValue::from_static("application/json"));
                (headers, CHAT_ANSWER)
            }),
        )
        .route(
            "/v1/units",
            get(|| async {
                let mut headers = HeaderMap::new();
                headers.insert("amp-units", HeaderValue::from_static("5"));
                (headers, "five units")
            }),
        )
        .route("/health", get(|| async { "ok" }))
}

fn prices(mint: &str) -> String {
    format!(
        r#"
wallet = "service.json"
cluster = "localnet"
store = "vouchers.sqlite"
credit = "1000"
free = ["/health"]

[[mints]]
mint = "{mint}"
symbol = "USDC"

[pricing.default]
mode = "per_call"
rate = "100"

[pricing.routes."/v1/chat/completions"]
mode = "per_token"
rate = "2"

[pricing.routes."/v1/units"]
mode = "per_token"
rate = "3"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charges_for_an_existing_api() {
    let served = Served::start(prices, upstream_api()).await;
    let (bank, agent, service, http, base) = (
        &served.bank,
        &served.agent,
        &served.service,
        &served.http,
        &served.base,
    );
    let (chain, paywall) = (&served.chain, &served.paywall);

    // Unpaid: 402 with the manifest; free paths pass.
    let unpaid = http.get(format!("{base}/v1/hello")).send().await.unwrap();
    assert_eq!(unpaid.status(), 402);
    let body: ErrorBody = unpaid.json().await.unwrap();
    assert_eq!(body.error, ErrorCode::NoChannel);
    assert_eq!(body.manifest.unwrap().recipient, service.pubkey());
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");

    let channel = served.open("5").await;
    let pay = |method: Method, path: &str, body: Option<&str>| PayRequest {
        url: format!("{base}{path}"),
        method,
        headers: vec![],
        body: body.map(|b| b.as_bytes().to_vec()),
        lane: channel,
        max: None,
    };

    // Per call: the upstream sees which lane paid, never the credential.
    let hello = commands::pay(bank, agent, http, pay(Method::GET, "/v1/hello", None))
        .await
        .unwrap();
    assert_eq!(hello.status, 200);
    assert_eq!(
        hello.body,
        format!("hello; paid by {channel}; credential forwarded: false")
    );
    assert_eq!(hello.owed, Some(100));
    assert_eq!(hello.signed, 100);

    // Per token, from an OpenAI-shaped body: 42 tokens at 2.
    let chat = commands::pay(
        bank,
        agent,
        http,
        pay(
            Method::POST,
            "/v1/chat/completions",
            Some(r#"{"model":"any","messages":[{"role":"user","content":"Hi"}]}"#),
        ),
    )
    .await
    .unwrap();
    assert_eq!(chat.status, 200);
    assert_eq!(chat.body, CHAT_ANSWER);
    assert_eq!(chat.owed, Some(100 + 84));

    // Per token, from the AMP-Units header (which the client does not see).
    let units = commands::pay(bank, agent, http, pay(Method::GET, "/v1/units", None))
        .await
        .unwrap();
    assert_eq!(units.body, "five units");
    assert!(!units.headers.contains_key("amp-units"));
    assert_eq!(units.owed, Some(184 + 15));
    assert_eq!(
        units.signed, 184,
        "signed what was owed before this request"
    );

    // A budget below the price is refused before anything is signed for it.
    let mut capped = pay(Method::GET, "/v1/hello", None);
    capped.max = Some(amp_cli::amount::Amount::Base(50));
    let refused = commands::pay(bank, agent, http, capped).await;
    assert!(refused.is_err(), "{refused:?}");

    // A sub-agent pays from a delegation of the channel (`amp delegate`,
    // then `amp pay --channel DELEGATION` with the sub-agent's keypair).
    let sub_agent = Keypair::new();
    let delegation = commands::delegate(
        bank,
        agent,
        DelegateRequest {
            channel,
            delegate: sub_agent.pubkey(),
            cap: "0.5".parse().unwrap(),
            expires_at: 0,
        },
    )
    .await
    .unwrap()
    .delegation;
    for owed in [100, 200] {
        let request = PayRequest {
            lane: delegation,
            ..pay(Method::GET, "/v1/hello", None)
        };
        let paid = commands::pay(bank, &sub_agent, http, request)
            .await
            .unwrap();
        assert_eq!(
            paid.body,
            format!("hello; paid by {delegation}; credential forwarded: false")
        );
        assert_eq!(paid.owed, Some(owed));
    }
    // The funder's key cannot sign for the delegate's lane.
    let request = PayRequest {
        lane: delegation,
        ..pay(Method::GET, "/v1/hello", None)
    };
    let refused = commands::pay(bank, agent, http, request).await;
    assert!(refused.is_err(), "{refused:?}");

    // The settler pays the recipient the best voucher of each lane.
    let status = paywall.settle_now().await;
    assert_eq!(status.amount_settled, 184 + 200, "{status:?}");
    let shown = commands::show(bank, &channel).await.unwrap();
    assert_eq!(shown.channel.settled, 184);
    let shown = commands::show(bank, &delegation).await.unwrap();
    assert_eq!(shown.delegation.map(|d| d.settled), Some(200));

    // As an agent with a lane file: the SDK's client discovers the service,
    // opens its own channel within the budget, and pays.
    let lanes = served.dir.path().join("agent").join("lanes.json");
    let agent_request = |path: &str| AgentPayRequest {
        url: format!("{base}{path}"),
        method: Method::GET,
        headers: vec![],
        body: None,
        lanes: lanes.clone(),
        mint: None,
        budget: "2".parse().unwrap(),
        deposit: Some("1".parse().unwrap()),
        sponsoring: Default::default(),
        max_prices: Default::default(),
        spend: Default::default(),
    };
    // A ceiling below the service's price (100 base units a call): refused
    // before any channel is opened, the lane file left without a lane.
    let mut capped = agent_request("/v1/hello");
    capped.max_prices.max_per_call = Some("0.000099".parse().unwrap());
    capped.lanes = served.dir.path().join("capped").join("lanes.json");
    let refused = commands::pay_agent(bank.clone(), agent, http, capped.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("the default costs 100 per call, above the policy's 99"),
        "{refused}"
    );
    let listed = lanes::list(Arc::clone(chain), agent, capped.lanes.clone())
        .await
        .unwrap();
    assert!(listed.lanes.is_empty());
    let first = commands::pay_agent(bank.clone(), agent, http, agent_request("/v1/hello"))
        .await
        .unwrap();
    assert_eq!(first.status, 200);
    assert_ne!(first.lane, channel);
    assert_eq!(first.owed, Some(100));
    assert_eq!(
        first.body,
        format!("hello; paid by {}; credential forwarded: false", first.lane)
    );
    // The next run finds the lane in the file and pays from it.
    let second = commands::pay_agent(bank.clone(), agent, http, agent_request("/v1/hello"))
        .await
        .unwrap();
    assert_eq!(second.lane, first.lane);
    assert_eq!(second.owed, Some(200));
    assert!(second.seq > first.seq);
    let opened = commands::show(bank, &first.lane).await.unwrap();
    assert_eq!(opened.channel.deposited, 1_000_000);
    assert_eq!(opened.channel.funder, agent.pubkey());

    // `amp lanes`: the file lists the lane; closing it goes through the
    // service, which settles what is owed and refunds the rest at once.
    let listed = lanes::list(Arc::clone(chain), agent, lanes.clone())
        .await
        .unwrap();
    assert_eq!(listed.lanes.len(), 1);
    assert_eq!(&listed.lanes[0].service, base);
    assert_eq!(listed.lanes[0].lane, first.lane);
    let closed = lanes::close(
        Arc::clone(chain),
        agent,
        lanes.clone(),
        base,
        &"2".parse().unwrap(),
    )
    .await
    .unwrap();
    assert!(
        matches!(&closed, CloseLaneReport::Closed { settled: 200, .. }),
        "{closed:?}"
    );
    assert!(commands::show(bank, &first.lane).await.is_err());
    let again = lanes::close(
        Arc::clone(chain),
        agent,
        lanes.clone(),
        base,
        &"2".parse().unwrap(),
    )
    .await;
    assert!(again.is_err(), "{again:?}");
    served.paywall.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_bad_gateway() {
    // Bind and drop: nothing listens there any more.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let upstream = Upstream::new(format!("http://127.0.0.1:{port}").parse().unwrap()).unwrap();
    let address = serve(proxy::router(upstream)).await;
    let response = reqwest::get(format!("http://{address}/anything"))
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "UPSTREAM_UNAVAILABLE");

    assert!(Upstream::new("ftp://example.com".parse().unwrap()).is_err());
}

#[test]
fn reads_usage_from_openai_shaped_bodies() {
    assert_eq!(
        amp_cli::usage::usage_tokens(CHAT_ANSWER.as_bytes()),
        Some(42)
    );
    assert_eq!(
        amp_cli::usage::usage_tokens(br#"{"usage":{"input_tokens":3,"output_tokens":4}}"#),
        Some(7)
    );
    assert_eq!(amp_cli::usage::usage_tokens(b"{}"), None);
    assert_eq!(amp_cli::usage::usage_tokens(b"not json"), None);
}

#[test]
fn the_example_price_file_parses() {
    let text = include_str!("../../prices.example.toml");
    let file = FileConfig::from_toml(text).unwrap();
    assert_eq!(file.cluster, "devnet");
    assert_eq!(file.service.pricing.default.rate, 100);
    assert_eq!(file.service.pricing.routes.len(), 2);
    assert_eq!(file.service.free.len(), 2);
}
