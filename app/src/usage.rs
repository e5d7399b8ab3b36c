//! What an upstream reports it used, for `amp serve`'s `per_token` routes:
//! an `AMP-Units` header, the `usage` of an OpenAI- or Anthropic-shaped JSON
//! body, or the usage a Server-Sent Events stream reports as it flows.
//!
//! Streams are followed event by event with a maintained SSE parser
//! (`eventsource-stream`) and passed on re-serialised, event for event:
//! - OpenAI-compatible: a chunk's `usage` (`total_tokens`, or prompt +
//!   completion); the proxy asks for it (`stream_options.include_usage`)
//!   when the client did not, and then drops the usage-only chunk from what
//!   the client sees;
//! - Anthropic-compatible: `message_start`'s `message.usage` and each
//!   `message_delta`'s `usage` (output tokens so far).
//!
//! Both formats state usage late (OpenAI in the last chunk, Anthropic's
//! output at the end), so the stream is also metered as it goes: each event
//! carrying content (an OpenAI delta with content or tool calls, an
//! Anthropic `content_block_delta`) counts one unit when it passes, a lower
//! bound of the tokens it holds; a stated total then adds what it exceeds
//! that count by. A stream that ends without ever stating usage is charged
//! one unit per data event: never silently free. The charge is reported to
//! the paywall as it grows; the paywall states it to the client, which pays
//! as it goes, and holds an event the lane cannot pay for yet. When no
//! credit comes, the paywall cuts the stream with the last event this
//! module gives it, in the stream's own format (an OpenAI `error` chunk and
//! `[DONE]`, an Anthropic `error` event), and the upstream connection is
//! dropped.

use std::pin::Pin;
use std::task::{Context, Poll};

use amp_sdk::manifest::ModelPrices;
use amp_sdk::server::Payment;
use bytes::Bytes;
use eventsource_stream::{Event, EventStream, Eventsource};
use futures_util::Stream;
use http::header::{HeaderMap, HeaderName};
use serde_json::Value;

/// The response header through which an upstream reports the units a
/// `per_token` request used.
pub const UNITS_HEADER: HeaderName = HeaderName::from_static("amp-units");

/// The units an `AMP-Units` header reports.
pub fn header_units(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(UNITS_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// The tokens a `usage` object states, as (input, output): prompt and
/// completion (OpenAI), input and output (Anthropic); a bare `total_tokens`
/// counts as output.
pub fn split_of(usage: &Value) -> Option<(u64, u64)> {
    let count = |names: [&str; 2]| {
        names
            .iter()
            .find_map(|n| usage.get(*n).and_then(Value::as_u64))
    };
    match (
        count(["prompt_tokens", "input_tokens"]),
        count(["completion_tokens", "output_tokens"]),
    ) {
        (None, None) => usage
            .get("total_tokens")
            .and_then(Value::as_u64)
            .map(|total| (0, total)),
        (input, output) => Some((input.unwrap_or(0), output.unwrap_or(0))),
    }
}

/// The tokens the `usage` of a JSON body states, as (input, output).
pub fn usage_of(body: &[u8]) -> Option<(u64, u64)> {
    let json: Value = serde_json::from_slice(body).ok()?;
    split_of(json.get("usage")?)
}

/// The tokens of an OpenAI- or Anthropic-shaped JSON body, in total.
pub fn usage_tokens(body: &[u8]) -> Option<u64> {
    usage_of(body).map(|(input, output)| input.saturating_add(output))
}

/// The `model` a JSON request body names.
pub fn model_of(body: &[u8]) -> Option<String> {
    let json: Value = serde_json::from_slice(body).ok()?;
    json.get("model")?.as_str().map(str::to_owned)
}

/// How a request's tokens are charged: as units at the route's rate, or as
/// an amount from input and output prices (the route's, for its model).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenMeter {
    /// Every token is a unit at the route's `rate`.
    Units,
    /// Input and output tokens at their own prices.
    Priced(ModelPrices),
}

impl TokenMeter {
    /// What `input` and `output` tokens come to, in what [`report`](Self::report) takes.
    pub fn charge(&self, input: u64, output: u64) -> u64 {
        match self {
            TokenMeter::Units => input.saturating_add(output),
            TokenMeter::Priced(prices) => prices.cost(input, output),
        }
    }

    /// Reports `charge` (an increase of [`charge`](Self::charge)) to the payment.
    pub fn report(&self, payment: &Payment, charge: u64) {
        match self {
            TokenMeter::Units => payment.report(charge),
            TokenMeter::Priced(_) => payment.report_amount(charge),
        }
    }
}

/// Asks an OpenAI streaming request (to a `.../completions` path) for its
/// usage: sets `stream_options.include_usage` when `"stream": true` and the
/// client did not. Returns the new body; the usage chunk is then the
/// proxy's, to be dropped from what the client sees. `None` when nothing
/// changes (other APIs, such as Anthropic's, report usage by themselves and
/// would refuse the field).
pub fn ask_for_usage(path: &str, body: &[u8]) -> Option<Vec<u8>> {
    if !path
        .split('?')
        .next()
        .unwrap_or("")
        .ends_with("/completions")
    {
        return None;
    }
    let mut json: Value = serde_json::from_slice(body).ok()?;
    let object = json.as_object_mut()?;
    if object.get("stream").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    let options = object
        .entry("stream_options")
        .or_insert_with(|| Value::Object(Default::default()));
    let options = options.as_object_mut()?;
    if options.get("include_usage").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    options.insert("include_usage".into(), Value::Bool(true));
    serde_json::to_vec(&json).ok()
}

/// Follows the usage a stream's events report.
#[derive(Debug, Default)]
pub struct StreamUsage {
    /// Input tokens stated so far.
    input: u64,
    /// Output tokens stated so far.
    output: u64,
    /// Content events passed: output tokens at least.
    content: u64,
    /// Whether any event stated usage.
    seen: bool,
    /// Data events passed, for the fallback charge.
    events: u64,
    /// Whether the stream speaks Anthropic's event types (for the cut).
    anthropic: bool,
    /// Whether the stream ended.
    ended: bool,
}

impl StreamUsage {
    /// Reads one event; returns whether it is a usage-only OpenAI chunk.
    pub fn read(&mut self, event: &Event) -> bool {
        if event.data.is_empty() || event.data == "[DONE]" {
            return false;
        }
        self.events += 1;
        let Ok(json) = serde_json::from_str::<Value>(&event.data) else {
            return false;
        };
        let kind = json.get("type").and_then(Value::as_str);
        self.anthropic |=
            kind.is_some_and(|k| k.starts_with("message_") || k.starts_with("content_block"));
        if carries_content(&json) {
            self.content += 1;
            return false;
        }
        match kind {
            Some("message_start") => {
                if let Some(usage) = json.get("message").and_then(|m| m.get("usage")) {
                    let (input, output) = split_of(usage).unwrap_or_default();
                    self.stated(input, output);
                }
            }
            Some("message_delta") => {
                let output = json
                    .get("usage")
                    .and_then(|u| u.get("output_tokens"))
                    .and_then(Value::as_u64);
                if let Some(output) = output {
                    self.stated(self.input, output);
                }
            }
            _ => {
                if let Some((input, output)) = json
                    .get("usage")
                    .filter(|u| !u.is_null())
                    .and_then(split_of)
                {
                    self.stated(input, output);
                }
            }
        }
        json.get("choices")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
            && json.get("usage").is_some_and(|u| !u.is_null())
    }

    fn stated(&mut self, input: u64, output: u64) {
        self.seen = true;
        self.input = self.input.max(input);
        self.output = self.output.max(output);
    }

    /// The stream has ended: a stream that stated no usage counts its data events.
    pub fn end(&mut self) {
        self.ended = true;
    }

    /// The (input, output) tokens to charge so far: what was stated, content
    /// events as output at least, and at the end of a stream that stated
    /// nothing, one token per data event.
    pub fn totals(&self) -> (u64, u64) {
        let mut output = self.output.max(self.content);
        if self.ended && !self.seen {
            output = output.max(self.events);
        }
        (self.input, output)
    }

    /// Whether the charge at the end is the per-event fallback.
    pub fn unreported(&self) -> bool {
        !self.seen
    }

    /// The last event of a stream cut because the allowance is used up, in
    /// the stream's own format.
    pub fn cut_event(&self) -> Bytes {
        let message = "the payment's allowance is used up: the stream was cut here \
                       (pay more credit, or raise the budget)";
        if self.anthropic {
            let data = serde_json::json!({
                "type": "error",
                "error": {"type": "amp_payment", "message": message},
            });
            Bytes::from(format!("event: error\ndata: {data}\n\n"))
        } else {
            let data = serde_json::json!({
                "error": {"message": message, "type": "amp_payment", "code": "AMP_UNDERFUNDED"},
            });
            Bytes::from(format!("data: {data}\n\ndata: [DONE]\n\n"))
        }
    }
}

/// Whether an event carries generated content: an OpenAI delta with content
/// or tool calls, an Anthropic `content_block_delta`.
fn carries_content(json: &Value) -> bool {
    if json.get("type").and_then(Value::as_str) == Some("content_block_delta") {
        return true;
    }
    json.get("choices")
        .and_then(Value::as_array)
        .is_some_and(|choices| {
            choices.iter().any(|choice| {
                let delta = &choice["delta"];
                delta["content"].as_str().is_some_and(|c| !c.is_empty())
                    || delta["tool_calls"]
                        .as_array()
                        .is_some_and(|t| !t.is_empty())
            })
        })
}

/// The event as it goes on the wire.
pub fn encode(event: &Event) -> Bytes {
    let mut out = String::new();
    if !event.event.is_empty() && event.event != "message" {
        out.push_str("event: ");
        out.push_str(&event.event);
        out.push('\n');
    }
    if !event.id.is_empty() {
        out.push_str("id: ");
        out.push_str(&event.id);
        out.push('\n');
    }
    if let Some(retry) = event.retry {
        out.push_str(&format!("retry: {}\n", retry.as_millis()));
    }
    for line in event.data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

/// An upstream SSE body, metered as it passes: the charge its events come
/// to is reported to the request's [`Payment`] as it grows.
pub struct MeteredEvents<S: Stream> {
    events: EventStream<S>,
    usage: StreamUsage,
    meter: TokenMeter,
    /// What was reported so far.
    charged: u64,
    payment: Payment,
    /// Drop usage-only chunks: the proxy asked for them, not the client.
    strip_usage: bool,
    /// The format the paywall's cut event was last given in (Anthropic's?).
    cut_format: Option<bool>,
    done: bool,
}

impl<S: Stream> MeteredEvents<S> {
    pub fn new(body: S, payment: Payment, meter: TokenMeter, strip_usage: bool) -> Self
    where
        S: Stream<Item = Result<Bytes, reqwest::Error>>,
    {
        Self {
            events: body.eventsource(),
            usage: StreamUsage::default(),
            meter,
            charged: 0,
            payment,
            strip_usage,
            cut_format: None,
            done: false,
        }
    }

    /// Reports what the charge grew by.
    fn report(&mut self) {
        let (input, output) = self.usage.totals();
        let charge = self.meter.charge(input, output);
        if charge > self.charged {
            self.meter.report(&self.payment, charge - self.charged);
            self.charged = charge;
        }
    }

    /// Gives the paywall the event to end with if it cuts the stream, once
    /// the stream's format is known (or changes).
    fn offer_cut_event(&mut self) {
        if self.cut_format != Some(self.usage.anthropic) {
            self.cut_format = Some(self.usage.anthropic);
            self.payment.set_cut_event(self.usage.cut_event());
        }
    }

    fn end(&mut self) {
        self.done = true;
        self.usage.end();
        let before = self.charged;
        self.report();
        if self.usage.unreported() && self.charged > before {
            tracing::warn!(
                charged = self.charged - before,
                "the stream reported no usage: charged one token per event"
            );
        }
    }
}

impl<S> Stream for MeteredEvents<S>
where
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Unpin,
{
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match futures_util::ready!(Pin::new(&mut this.events).poll_next(cx)) {
                Some(Ok(event)) => {
                    let usage_only = this.usage.read(&event);
                    this.report();
                    this.offer_cut_event();
                    if usage_only && this.strip_usage {
                        continue;
                    }
                    return Poll::Ready(Some(Ok(encode(&event))));
                }
                Some(Err(error)) => {
                    this.end();
                    return Poll::Ready(Some(Err(std::io::Error::other(error.to_string()))));
                }
                None => {
                    this.end();
                    return Poll::Ready(None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, data: &str) -> Event {
        Event {
            event: kind.into(),
            data: data.into(),
            id: String::new(),
            retry: None,
        }
    }

    #[test]
    fn openai_usage_comes_in_its_own_chunk() {
        let mut usage = StreamUsage::default();
        let chunk = r#"{"choices":[{"delta":{"content":"Hi"}}],"usage":null}"#;
        assert!(!usage.read(&event("", chunk)));
        assert_eq!(usage.totals(), (0, 1));
        let role = r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#;
        usage.read(&event("", role));
        assert_eq!(usage.totals(), (0, 1));
        let last = r#"{"choices":[],"usage":{"prompt_tokens":30,"completion_tokens":12,"total_tokens":42}}"#;
        assert!(usage.read(&event("", last)));
        usage.read(&event("", "[DONE]"));
        usage.end();
        assert_eq!(usage.totals(), (30, 12));
    }

    #[test]
    fn anthropic_usage_grows_with_each_message_delta() {
        let mut usage = StreamUsage::default();
        let start =
            r#"{"type":"message_start","message":{"usage":{"input_tokens":25,"output_tokens":1}}}"#;
        usage.read(&event("message_start", start));
        assert_eq!(usage.totals(), (25, 1));
        let delta = r#"{"type":"content_block_delta","delta":{"text":"Hi"}}"#;
        for _ in 0..3 {
            usage.read(&event("content_block_delta", delta));
        }
        assert_eq!(usage.totals(), (25, 3));
        let end = r#"{"type":"message_delta","usage":{"output_tokens":15}}"#;
        usage.read(&event("message_delta", end));
        assert_eq!(usage.totals(), (25, 15));
        assert!(usage.cut_event().starts_with(b"event: error\ndata: {"));
    }

    #[test]
    fn a_stream_without_usage_is_charged_per_event() {
        let mut usage = StreamUsage::default();
        for _ in 0..3 {
            usage.read(&event("", r#"{"choices":[{"delta":{"content":"x"}}]}"#));
        }
        usage.read(&event(
            "",
            r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
        ));
        usage.read(&event("", r#"{"n":1}"#));
        usage.read(&event("", "[DONE]"));
        assert_eq!(usage.totals(), (0, 3));
        usage.end();
        assert!(usage.unreported());
        assert_eq!(usage.totals(), (0, 5));
        let cut = usage.cut_event();
        assert!(cut.starts_with(b"data: {\"error\""));
        assert!(cut.ends_with(b"data: [DONE]\n\n"));
    }

    #[test]
    fn tokens_are_units_or_priced_by_kind() {
        assert_eq!(TokenMeter::Units.charge(30, 12), 42);
        let priced = TokenMeter::Priced(ModelPrices {
            input: 1,
            output: 3,
        });
        assert_eq!(priced.charge(30, 12), 66);
        let huge = TokenMeter::Priced(ModelPrices {
            input: u64::MAX,
            output: 1,
        });
        assert_eq!(huge.charge(2, 1), u64::MAX);
    }

    #[test]
    fn usage_is_asked_for_only_where_it_is_missing() {
        let chat = "/v1/chat/completions";
        let body = ask_for_usage(chat, br#"{"model":"m","messages":[],"stream":true}"#).unwrap();
        let json: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["stream_options"]["include_usage"], true);
        assert_eq!(json["model"], "m");
        assert!(ask_for_usage(chat, br#"{"model":"m","messages":[],"stream":false}"#).is_none());
        assert!(ask_for_usage(
            chat,
            br#"{"messages":[],"stream":true,"stream_options":{"include_usage":true}}"#
        )
        .is_none());
        assert!(ask_for_usage(chat, b"not json").is_none());
        assert!(ask_for_usage("/v1/completions?x=1", br#"{"prompt":"p","stream":true}"#).is_some());
        // Anthropic's messages API reports usage by itself.
        assert!(ask_for_usage("/v1/messages", br#"{"messages":[],"stream":true}"#).is_none());
    }

    #[test]
    fn events_are_encoded_as_the_wire_has_them() {
        assert_eq!(&encode(&event("", "{\"a\":1}"))[..], b"data: {\"a\":1}\n\n");
        assert_eq!(
            &encode(&event("message_stop", "x\ny"))[..],
            b"event: message_stop\ndata: x\ndata: y\n\n"
        );
    }

    #[test]
    fn json_bodies_state_their_usage_and_model() {
        assert_eq!(usage_of(br#"{"usage":{"total_tokens":42}}"#), Some((0, 42)));
        assert_eq!(
            usage_of(br#"{"usage":{"input_tokens":25,"output_tokens":15}}"#),
            Some((25, 15))
        );
        assert_eq!(
            usage_of(br#"{"usage":{"prompt_tokens":30,"completion_tokens":12,"total_tokens":42}}"#),
            Some((30, 12))
        );
        assert_eq!(
            usage_tokens(br#"{"usage":{"prompt_tokens":30,"completion_tokens":12}}"#),
            Some(42)
        );
        assert_eq!(usage_of(br#"{"usage":{}}"#), None);
        assert_eq!(usage_of(b"[]"), None);
        assert_eq!(
            model_of(br#"{"model":"gpt-x","messages":[]}"#).as_deref(),
            Some("gpt-x")
        );
        assert_eq!(model_of(br#"{"model":7}"#), None);
    }
}
