//! A JSON-RPC route (an MCP server's endpoint) priced by method: the
//! paywall reads the posted message, charges `tools/call`, lets every other
//! method through free without a credential, adds a batch up, passes the
//! body on whole, and refuses a body too large to read.

use amp_sdk::manifest::{ErrorCode, Manifest, MANIFEST_PATH};
use amp_sdk::server::MAX_RPC_BODY;
use http::{HeaderMap, StatusCode};

use crate::support::server::{send, Reply, Scene};
use crate::support::PER_CALL;

const TOOL_CALL: u64 = 7;

async fn scene() -> Scene {
    Scene::with(|b| {
        b.method(
            "/rpc",
            "tools/call",
            amp_sdk::manifest::Price {
                rate: TOOL_CALL,
                ..PER_CALL
            },
        )
    })
    .await
}

async fn post(s: &Scene, body: impl Into<String>, headers: HeaderMap) -> Reply {
    let request = s.client.post(s.server.url("/rpc")).body(body.into());
    send(&s.client, request, headers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_are_paid_and_the_rest_of_the_protocol_is_free() {
    let s = scene().await;
    let manifest: Manifest = s.server.get_json(&s.client, MANIFEST_PATH).await;
    assert_eq!(
        manifest.pricing.methods["/rpc"]["tools/call"].rate,
        TOOL_CALL
    );

    // The session's set-up and listings pass without a credential, whole.
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#;
    for body in [
        initialize,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":9,"result":{}}"#,
    ] {
        let reply = post(&s, body, HeaderMap::new()).await;
        reply.ok();
        assert_eq!(reply.text(), format!("free; {} bytes", body.len()));
    }

    // A tool call needs a credential covering its price.
    let call = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add"}}"#;
    let unpaid = post(&s, call, HeaderMap::new()).await;
    assert_eq!(
        unpaid.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        unpaid.text()
    );
    post(&s, call, s.credential(1, TOOL_CALL - 1))
        .await
        .expect(ErrorCode::Underfunded);
    let paid = post(&s, call, s.credential(2, TOOL_CALL)).await;
    paid.ok();
    assert_eq!(
        paid.text(),
        format!("paid {TOOL_CALL}; {} bytes", call.len())
    );
    assert_eq!(paid.receipt().owed, TOOL_CALL);

    // A batch pays its priced members added up.
    let batch = format!("[{call},{initialize},{call}]");
    let paid = post(&s, batch.clone(), s.credential(3, 3 * TOOL_CALL)).await;
    paid.ok();
    assert_eq!(paid.receipt().owed, 3 * TOOL_CALL);
    assert_eq!(
        paid.text(),
        format!("paid {}; {} bytes", 3 * TOOL_CALL, batch.len())
    );

    // A body too large to read for its method is refused, not served free.
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{{"pad":"{}"}}}}"#,
        "x".repeat(MAX_RPC_BODY)
    );
    post(&s, huge, s.credential(4, 4 * TOOL_CALL))
        .await
        .expect(ErrorCode::Malformed);
}
