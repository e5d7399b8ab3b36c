//! The demo's paid API: an LLM-shaped completion route priced per token, a
//! per-call route and a stream priced per second, and which route each of
//! the agent's calls goes to.

use std::time::Duration;

use amp_sdk::manifest::{Price, PricingMode};
use amp_sdk::server::Payment;
use axum::body::Body;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use bytes::Bytes;
use http::{header, HeaderValue};

use super::DemoOptions;

/// The demo API's routes and prices.
pub const CHAT_ROUTE: &str = "/v1/chat/completions";
pub const WEATHER_ROUTE: &str = "/v1/weather";
pub const STREAM_ROUTE: &str = "/v1/stream";
/// 2 base units (0.000002 USDC) per token.
pub const CHAT_PRICE: Price = Price {
    mode: PricingMode::PerToken,
    rate: 2,
};
/// 100 base units (0.0001 USDC) per call.
pub const WEATHER_PRICE: Price = Price {
    mode: PricingMode::PerCall,
    rate: 100,
};
/// 1,000 base units (0.001 USDC) per second of stream.
pub const STREAM_PRICE: Price = Price {
    mode: PricingMode::PerSecond,
    rate: 1_000,
};

/// Which route call `i` goes to: one in ten streams, the rest alternate
/// between the completion and the per-call route.
pub fn route_of(i: u32) -> &'static str {
    if i % 10 == 9 {
        STREAM_ROUTE
    } else if i.is_multiple_of(2) {
        CHAT_ROUTE
    } else {
        WEATHER_ROUTE
    }
}

pub(super) fn price_of(route: &str) -> Price {
    match route {
        CHAT_ROUTE => CHAT_PRICE,
        STREAM_ROUTE => STREAM_PRICE,
        _ => WEATHER_PRICE,
    }
}

/// The demo API. Handlers see who paid as an `Extension<Payment>`.
pub(super) fn api(options: &DemoOptions) -> Router {
    let (chunks, interval) = (options.stream_chunks, options.stream_interval);
    Router::new()
        .route(CHAT_ROUTE, post(chat))
        .route(WEATHER_ROUTE, get(weather))
        .route(
            STREAM_ROUTE,
            get(move || async move { stream(chunks, interval) }),
        )
}

/// An LLM-shaped completion, charged per token it "generates".
async fn chat(Extension(payment): Extension<Payment>, prompt: String) -> Response {
    let prompt_tokens = prompt.split_whitespace().count() as u64;
    // A deterministic answer length between 16 and 47 tokens.
    let mut completion_tokens = 16 + payment.seq % 32;
    if let Some(max) = payment.max_units() {
        completion_tokens = completion_tokens.min(max.saturating_sub(prompt_tokens));
    }
    let total = prompt_tokens + completion_tokens;
    payment.report(total);
    let content = vec!["token"; completion_tokens as usize].join(" ");
    let body = serde_json::json!({
        "id": format!("cmpl-{}", payment.seq),
        "object": "chat.completion",
        "model": "demo-1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": total},
    });
    json(body.to_string())
}

/// A per-call answer.
async fn weather() -> Response {
    json(r#"{"city":"Lisbon","temperature_c":21,"sky":"clear"}"#.to_owned())
}

/// A stream charged by the second (the meter counts milliseconds).
fn stream(chunks: u32, interval: Duration) -> Response {
    let ticks = futures_util::stream::unfold(0u32, move |i| async move {
        if i == chunks {
            return None;
        }
        tokio::time::sleep(interval).await;
        let line = Bytes::from(format!("tick {i}\n"));
        Some((Ok::<_, std::io::Error>(line), i + 1))
    });
    let mut response = Response::new(Body::from_stream(ticks));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

fn json(body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_call_in_ten_streams() {
        let routes: Vec<_> = (0..10).map(route_of).collect();
        assert_eq!(routes.iter().filter(|r| **r == STREAM_ROUTE).count(), 1);
        assert_eq!(routes.iter().filter(|r| **r == CHAT_ROUTE).count(), 5);
        assert_eq!(routes.iter().filter(|r| **r == WEATHER_ROUTE).count(), 4);
    }
}
