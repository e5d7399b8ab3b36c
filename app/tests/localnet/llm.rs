//! An LLM paid from TypeScript: the official `openai` npm client, knowing
//! nothing of AMP, points its base URL at `amp proxy` (an agent holding no
//! SOL), which pays `amp serve` (sponsoring its channel) in front of an
//! OpenAI-shaped upstream. A completion as JSON and a streamed one are each
//! charged exactly input × input price + output × output price for their
//! model; a service outside the proxy's allow-list is an API error the
//! client shows; a streamed completion longer than a second proxy's small
//! budget is paid as it streams, then cut with an API error the client
//! shows. After the cooperative closes the service holds exactly the
//! charges on-chain.

use std::time::Duration;

use serde_json::Value;

use super::openai;
use super::outbound::start_proxy;
use super::service::{close_lanes, prices, Serve};
use super::support::Localnet;
use super::typescript::{node_script, script};

/// Input and output prices of the default model and of "big".
const PRICES: &str = r#"
[pricing.routes."/v1/chat/completions"]
mode = "per_token"
rate = "2"

[pricing.tokens."/v1/chat/completions"]
input = "1"
output = "3"

[pricing.tokens."/v1/chat/completions".models.big]
input = "10"
output = "30"

[pricing.tokens."/v1/chat/completions".models.long]
input = "1"
output = "1000"

[sponsor]
"#;

/// 30 prompt and 12 completion tokens, at 1 and 3 (model "m"), then at 10
/// and 30 (model "big").
const PLAIN: u64 = 30 + 12 * 3;
const STREAMED: u64 = 30 * 10 + 12 * 30;
/// The small proxy's budget, all of it deposited: 100 chunks of "long" at 1,000.
const SMALL_BUDGET: u64 = 100_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_client_pays_for_completions_through_amp_proxy() {
    let Some(openai_js) = script("openai") else {
        return;
    };
    let node = Localnet::start(&[]).await;
    node.fund_with("agent.json", "100", "0").await;
    let service = node.fund("service.json", "0").await;
    let upstream = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = openai::router(openai::Asked::default());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        address
    };
    let config = node.path("prices.toml");
    // Token prices are known after the response: the credit bounds what a
    // completion may cost beyond what the agent signed before it.
    let top =
        prices(&node, "vouchers.sqlite").replacen("free = ", "credit = \"10000\"\nfree = ", 1);
    std::fs::write(&config, top + PRICES).unwrap();
    let serve = Serve::start(&node, upstream, config).await;

    let (mut proxy, base) = start_proxy(&node, &serve.url, "5", "lanes.json").await;
    let (mut small, small_base) = start_proxy(&node, &serve.url, "0.1", "small.json").await;

    let summary = node_script(
        &openai_js,
        &[
            ("AMP_OPENAI_BASE_URL", format!("{base}/{}/v1", serve.url)),
            (
                "AMP_REFUSED_BASE_URL",
                format!("{base}/https://example.com/v1"),
            ),
            (
                "AMP_LONG_BASE_URL",
                format!("{small_base}/{}/v1", serve.url),
            ),
        ],
    )
    .await;
    assert_eq!(summary["plain"]["content"], "Hello!", "{summary}");
    assert_eq!(summary["plain"]["usage"]["total_tokens"], 42, "{summary}");
    assert_eq!(summary["streamed"]["text"], "Hello!", "{summary}");
    // The usage chunk was amp serve's to ask for, not the client's: hidden.
    assert_eq!(summary["streamed"]["usage"], Value::Null, "{summary}");
    assert_eq!(summary["refused"]["status"], 403, "{summary}");
    assert!(
        summary["refused"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("AMP_PROXY_NOT_ALLOWED")),
        "{summary}"
    );

    // The long completion, paid as it streamed until the small budget could
    // pay no more: cut there, with the reason as an API error.
    assert_eq!(summary["long"]["chunks"], 100, "{summary}");
    assert!(
        summary["long"]["error"]
            .as_str()
            .is_some_and(|m| m.contains("allowance is used up")),
        "{summary}"
    );

    for proxy in [&mut proxy, &mut small] {
        proxy.signal(libc::SIGINT);
        assert!(proxy.wait_exit(Duration::from_secs(30)).await.success());
    }
    let closed = close_lanes(&node, "agent.json", &serve.url, "lanes.json").await;
    assert_eq!(
        closed["settled"].as_str(),
        Some((PLAIN + STREAMED).to_string().as_str()),
        "{closed}"
    );
    let closed = close_lanes(&node, "agent.json", &serve.url, "small.json").await;
    assert_eq!(
        closed["settled"].as_str(),
        Some(SMALL_BUDGET.to_string().as_str()),
        "{closed}"
    );
    serve.stop().await;
    assert_eq!(node.tokens(&service).await, PLAIN + STREAMED + SMALL_BUDGET);
}
