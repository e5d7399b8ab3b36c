//! An OpenAI-shaped upstream for the tests, knowing nothing of AMP: chat
//! completions answered as JSON, or streamed (Server-Sent Events) when the
//! request says `"stream": true`, with exact usage (30 prompt and 12
//! completion tokens; the usage chunk only when asked for it).

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::post;
use axum::Router;
use serde_json::Value;

/// The router: `POST /v1/chat/completions`, recording in `asked` whether
/// each request asked for usage in its stream.
pub fn router(asked: Asked) -> Router {
    Router::new().route(
        "/v1/chat/completions",
        post(move |body: axum::body::Bytes| async move {
            openai_stream(asked, serde_json::from_slice(&body).unwrap_or_default())
        }),
    )
}

/// What the upstream saw of `stream_options.include_usage`, per request.
pub type Asked = Arc<Mutex<Vec<bool>>>;

pub fn sse(events: Vec<String>) -> (HeaderMap, Body) {
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    let chunks = events.into_iter().map(Ok::<_, std::io::Error>);
    (
        headers,
        Body::from_stream(futures_util::stream::iter(chunks)),
    )
}

/// Content chunks of a streamed completion of the model "long".
pub const LONG_COMPLETION: usize = 2_000;

/// An OpenAI-compatible chat completion, streamed: three content chunks,
/// the usage chunk when asked for it (30 + 12 tokens), then `[DONE]`; for
/// the model "long", [`LONG_COMPLETION`] chunks and no usage.
pub fn openai_stream(asked: Asked, request: Value) -> (HeaderMap, Body) {
    if request["stream"] != true {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let body = r#"{"choices":[{"message":{"content":"Hello!"}}],"usage":{"prompt_tokens":30,"completion_tokens":12,"total_tokens":42}}"#;
        return (headers, Body::from(body));
    }
    let include = request["stream_options"]["include_usage"] == true;
    asked.lock().unwrap().push(include);
    if request["model"] == "long" {
        // Far longer than a small budget pays for.
        let events = (0..LONG_COMPLETION).map(|n| {
            format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"t{n} \"}}}}],\"usage\":null}}\n\n")
        });
        return sse(events.chain(["data: [DONE]\n\n".to_owned()]).collect());
    }
    let mut events: Vec<String> = ["Hel", "lo", "!"]
        .iter()
        .map(|t| format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{t}\"}}}}],\"usage\":null}}\n\n"))
        .collect();
    if include {
        events.push("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":12,\"total_tokens\":42}}\n\n".into());
    }
    events.push("data: [DONE]\n\n".into());
    sse(events)
}
