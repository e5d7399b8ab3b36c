//! Paid MCP tools from the official MCP TypeScript SDK: an MCP server over
//! streamable HTTP behind `amp serve`, which prices `tools/call` and lets
//! every other JSON-RPC method through free, and the SDK's client pointed
//! at `amp proxy`. Each tool call is charged once, nothing else is; when the
//! proxy's budget is spent, or when a proxy's price ceiling is below the
//! tool's price, the client gets an error it can show. After the
//! cooperative close the service holds exactly the calls' price on-chain.

use std::time::Duration;

use super::outbound::{start_proxy, start_proxy_with};
use super::service::{close_lanes, prices, Serve};
use super::support::{free_port, Localnet};
use super::typescript::{node_script, script};

/// The price of a tool call, in base units (the test mint has 6 decimals).
const TOOL_CALL: u64 = 40_000;

const PRICES: &str = r#"
# An MCP server: tool calls are paid, the rest of the protocol is free.
[pricing.methods."/mcp"."tools/call"]
mode = "per_call"
rate = "40000"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_client_pays_for_tool_calls_through_amp_proxy() {
    let Some(mcp_js) = script("mcp") else {
        return;
    };
    let node = Localnet::start(&[]).await;
    node.fund_with("agent.json", "100", "1").await;
    let service = node.fund("service.json", "0").await;
    // The script starts the MCP server on this port; amp serve only needs it
    // once requests come.
    let mcp_port = free_port();
    let config = node.path("prices.toml");
    std::fs::write(&config, prices(&node, "vouchers.sqlite") + PRICES).unwrap();
    let serve = Serve::start(&node, ([127, 0, 0, 1], mcp_port).into(), config).await;

    // A budget of five tool calls (all of it deposited).
    let (mut proxy, base) = start_proxy(&node, &serve.url, "0.2", "lanes.json").await;
    // An agent that pays at most 0.01 a call.
    let (mut capped, capped_base) = start_proxy_with(
        &node,
        &serve.url,
        "0.2",
        "capped.json",
        &["--max-per-call", "0.01"],
    )
    .await;
    let calls = 3;
    let summary = node_script(
        &mcp_js,
        &[
            ("AMP_MCP_PORT", mcp_port.to_string()),
            ("AMP_MCP_URL", format!("{base}/{}/mcp", serve.url)),
            ("AMP_MCP_CALLS", calls.to_string()),
            (
                "AMP_MCP_CAPPED_URL",
                format!("{capped_base}/{}/mcp", serve.url),
            ),
        ],
    )
    .await;
    assert_eq!(summary["tools"], serde_json::json!(["add"]), "{summary}");
    assert_eq!(
        summary["sums"],
        serde_json::json!(["1", "2", "3"]),
        "{summary}"
    );
    // Two more calls fit the budget; the next is refused before it is sent,
    // and the MCP client shows why.
    assert_eq!(summary["refused"]["after"], 2, "{summary}");
    let message = summary["refused"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("budget"), "{summary}");
    // A price above the agent's ceiling: refused before any channel is
    // opened, and the MCP client says why.
    let capped_message = summary["capped"].as_str().unwrap_or_default();
    assert!(
        capped_message
            .contains("tools/call on /mcp costs 40000 per call, above the policy's 10000"),
        "{summary}"
    );

    for proxy in [&mut proxy, &mut capped] {
        proxy.signal(libc::SIGINT);
        assert!(proxy.wait_exit(Duration::from_secs(30)).await.success());
    }
    let paid = (calls + 2) * TOOL_CALL;
    let closed = close_lanes(&node, "agent.json", &serve.url, "lanes.json").await;
    assert_eq!(
        closed["settled"].as_str(),
        Some(paid.to_string().as_str()),
        "{closed}"
    );
    serve.stop().await;
    assert_eq!(node.tokens(&service).await, paid);
}
