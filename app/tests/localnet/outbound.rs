//! `amp proxy`, the outbound paying proxy, as a process: a plain HTTP client
//! (reqwest, knowing nothing of AMP) pays a service behind `amp serve` by
//! putting the service's URL in the proxy's path, or by using the proxy as
//! its HTTP proxy. Bodies pass both ways, a slow body streams back as it
//! comes, services outside `--allow` are refused before any network call,
//! and the budget is a hard stop. The agent holds no SOL: the service
//! sponsors its channel. Everything is then accounted for on-chain.

use std::time::{Duration, Instant};

use amp_sdk::manifest::MANIFEST_PATH;
use serde_json::Value;

use super::service::{close_lanes, prices, upstream, Serve, PRICE, TICK, TICKS};
use super::support::{free_port, Localnet, Process};

const USDC: u64 = 1_000_000;

/// `amp proxy` for `agent.json` paying `allow` within `budget` tokens.
pub async fn start_proxy(
    node: &Localnet,
    allow: &str,
    budget: &str,
    lanes: &str,
) -> (Process, String) {
    start_proxy_with(node, allow, budget, lanes, &[]).await
}

/// `amp proxy` as [`start_proxy`] starts it, with `more` arguments.
pub async fn start_proxy_with(
    node: &Localnet,
    allow: &str,
    budget: &str,
    lanes: &str,
    more: &[&str],
) -> (Process, String) {
    let listen = format!("127.0.0.1:{}", free_port());
    let mut command = node.amp();
    command.args([
        "--keypair",
        "agent.json",
        "proxy",
        "--listen",
        &listen,
        "--allow",
        allow,
        "--budget",
        budget,
        "--deposit",
        budget,
        "--lanes",
        lanes,
    ]);
    command.args(more);
    let mut process = Process::spawn("amp proxy", command);
    process
        .wait_for_line("amp proxy:", Duration::from_secs(60))
        .await;
    (process, format!("http://{listen}"))
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_http_client_pays_through_amp_proxy() {
    let node = Localnet::start(&[]).await;
    let agent = node.fund_with("agent.json", "100", "0").await;
    let service = node.fund("service.json", "0").await;
    let config = node.path("prices.toml");
    std::fs::write(&config, prices(&node, "vouchers.sqlite") + "\n[sponsor]\n").unwrap();
    let serve = Serve::start(&node, upstream().await, config).await;
    let (mut proxy, base) = start_proxy(&node, &serve.url, "5", "lanes.json").await;
    let http = http();
    let via = |path: &str| format!("{base}/{}{path}", serve.url);

    // The service's URL in the path, as an SDK's base URL puts it.
    for _ in 0..20 {
        let response = http.get(via("/v1/hello")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "hello from upstream");
    }
    let echoed = http
        .post(via("/v1/echo"))
        .body("a body for the service")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.status(), 200);
    assert_eq!(echoed.text().await.unwrap(), "a body for the service");
    // A free path passes without a payment.
    let health = http.get(via("/health")).send().await.unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");

    // A slow body arrives as the upstream sends it, not at its end.
    let started = Instant::now();
    let mut streamed = http.get(via("/v1/stream")).send().await.unwrap();
    assert_eq!(streamed.status(), 200);
    let mut arrivals = Vec::new();
    let mut body = String::new();
    while let Some(chunk) = streamed.chunk().await.unwrap() {
        arrivals.push(started.elapsed());
        body.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let expected: String = (0..TICKS).map(|n| format!("tick {n}\n")).collect();
    assert_eq!(body, expected);
    let spread = *arrivals.last().unwrap() - arrivals[0];
    assert!(
        spread >= TICK * (TICKS as u32 - 2),
        "the chunks came together ({arrivals:?}): the body was buffered"
    );

    // As an HTTP proxy, for a plain http:// service.
    let proxied = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(&base).unwrap())
        .build()
        .unwrap();
    let response = proxied
        .get(format!("{}/v1/hello", serve.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "hello from upstream");
    let paid_calls = 20 + 1 + 1 + 1;

    // Refused before any network call: another service, a path that names
    // none, a CONNECT tunnel.
    let elsewhere = http
        .get(format!("{base}/https://example.com/v1/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 403);
    assert_eq!(error_code(elsewhere).await, "AMP_PROXY_NOT_ALLOWED");
    let nameless = http.get(format!("{base}/v1/hello")).send().await.unwrap();
    assert_eq!(nameless.status(), 400);
    assert_eq!(error_code(nameless).await, "AMP_PROXY_TARGET");
    // The manifest is the service's, and costs nothing.
    let manifest: Value = http
        .get(via(MANIFEST_PATH))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        manifest["recipient"].as_str(),
        Some(service.to_string().as_str())
    );

    proxy.signal(libc::SIGINT);
    let status = proxy.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "{}", proxy.stderr());

    // A budget of 0.02 pays exactly 20 calls; the 21st is refused.
    let (mut tight, tight_base) = start_proxy(&node, &serve.url, "0.02", "tight-lanes.json").await;
    let mut paid = 0;
    let refused = loop {
        let response = http
            .get(format!("{tight_base}/{}/v1/hello", serve.url))
            .send()
            .await
            .unwrap();
        if response.status() != 200 {
            break response;
        }
        paid += 1;
        assert!(paid <= 20, "paid beyond the budget");
    };
    let status = refused.status();
    assert_eq!(paid, 20, "{status}: {}", refused.text().await.unwrap());
    assert_eq!(status, 402);
    assert_eq!(error_code(refused).await, "AMP_BUDGET_EXCEEDED");
    tight.signal(libc::SIGINT);
    assert!(tight.wait_exit(Duration::from_secs(30)).await.success());

    // Both lane files close cooperatively; on-chain, the agent paid exactly
    // its calls, and never held a lamport.
    for lanes in ["lanes.json", "tight-lanes.json"] {
        close_lanes(&node, "agent.json", &serve.url, lanes).await;
    }
    let spent = (paid_calls + paid) * PRICE;
    assert_eq!(node.tokens(&agent).await, 100 * USDC - spent);
    assert_eq!(node.client().get_balance(&agent).await.unwrap(), 0);
    serve.stop().await;
    assert_eq!(node.tokens(&service).await, spent);
}
