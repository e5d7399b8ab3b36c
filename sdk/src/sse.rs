//! How a `per_token` Server-Sent Events stream tells the client what it has
//! charged so far, so that the client can pay as the stream goes
//! (docs/streaming.md, "per_token streams").
//!
//! Only the service can count tokens, so it states its count in the stream
//! itself, as SSE comments between two events:
//!
//! ```text
//! : amp-charged 1200
//! : amp-due 1260
//! ```
//!
//! `amp-charged` is what the events the client received so far were
//! charged, in the mint's base units; the client adds it to what its lane
//! owes and pays it with a credit credential (`POST /.well-known/amp/credit`).
//! `amp-due` says the next event costs more than the credit covers: the
//! stream waits for a credential of that much more than what is owed and is
//! cut if none comes. Every SSE client ignores comment lines, so both pass
//! unchanged through any client library.

use http::HeaderMap;

/// The prefix of a statement of what was charged.
const CHARGED: &[u8] = b": amp-charged ";

/// The prefix of a statement of what the next event needs.
const DUE: &[u8] = b": amp-due ";

/// Longest statement line: a prefix and a `u64`.
const MAX_LINE: usize = CHARGED.len() + 20;

/// The comment stating that the events sent so far were charged `charge`,
/// with the blank line that ends it.
pub fn statement(charge: u64) -> String {
    format!(": amp-charged {charge}\n\n")
}

/// The comment stating that the stream waits for credit until the request
/// can be charged `charge`.
pub fn due(charge: u64) -> String {
    format!(": amp-due {charge}\n\n")
}

/// Reads the statements of a stream received in pieces of any size.
#[derive(Debug, Default)]
pub struct Statements {
    /// The start of a line the last piece cut, kept only while it may still
    /// be a statement.
    partial: Vec<u8>,
    /// The line being skipped is not a statement.
    skipping: bool,
    /// The highest charge stated so far.
    charged: u64,
    /// The highest charge stated due so far.
    due: u64,
}

impl Statements {
    /// Reads the next piece of the stream; returns the highest charge
    /// stated so far.
    pub fn read(&mut self, mut piece: &[u8]) -> u64 {
        while !piece.is_empty() {
            let end = piece.iter().position(|&b| b == b'\n' || b == b'\r');
            let (line, rest) = match end {
                Some(end) => (&piece[..end], Some(&piece[end + 1..])),
                None => (piece, None),
            };
            if !self.skipping {
                self.partial.extend_from_slice(line);
                let maybe = |prefix: &[u8]| {
                    let known = self.partial.len().min(prefix.len());
                    self.partial[..known] == prefix[..known]
                };
                if !(maybe(CHARGED) || maybe(DUE)) || self.partial.len() > MAX_LINE {
                    self.partial.clear();
                    self.skipping = true;
                }
            }
            match rest {
                Some(rest) => {
                    self.line_ended();
                    piece = rest;
                }
                None => break,
            }
        }
        self.charged
    }

    fn line_ended(&mut self) {
        let number = |prefix: &[u8]| {
            let digits = self.partial.strip_prefix(prefix)?;
            std::str::from_utf8(digits).ok()?.parse::<u64>().ok()
        };
        if !self.skipping {
            if let Some(charge) = number(CHARGED) {
                self.charged = self.charged.max(charge);
            } else if let Some(charge) = number(DUE) {
                self.due = self.due.max(charge);
            }
        }
        self.partial.clear();
        self.skipping = false;
    }

    /// The highest charge stated so far.
    pub fn charged(&self) -> u64 {
        self.charged
    }

    /// The highest charge the stream said it waits for.
    pub fn due(&self) -> u64 {
        self.due
    }
}

/// Whether a response is an event stream (`text/event-stream`): only then
/// does a `per_token` response carry statements.
pub fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

/// Whether `data` ends an SSE event (a blank line), so that a comment may
/// follow it.
pub fn ends_event(data: &[u8]) -> bool {
    data.ends_with(b"\n\n") || data.ends_with(b"\r\n\r\n") || data.ends_with(b"\r\r")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_read_across_any_cut() {
        let stream = [
            &b"data: {\"a\":1}\n\n"[..],
            statement(120).as_bytes(),
            b"data: x\n\n",
            statement(90).as_bytes(),
            b": another comment\n\ndata: : amp-charged 7777\n\n",
            statement(300).as_bytes(),
            due(340).as_bytes(),
        ]
        .concat();
        for size in 1..stream.len() {
            let mut statements = Statements::default();
            let mut seen = 0;
            for piece in stream.chunks(size) {
                seen = statements.read(piece);
            }
            assert_eq!(seen, 300, "pieces of {size}");
            assert_eq!(statements.due(), 340, "pieces of {size}");
        }
        let mut crlf = Statements::default();
        assert_eq!(crlf.read(b": amp-charged 5\r\n\r\n"), 5);
    }

    #[test]
    fn what_is_not_a_statement_is_ignored() {
        let mut statements = Statements::default();
        let long = format!(": amp-charged {}\n\n", "9".repeat(40));
        for junk in [
            ": amp-charged\n\n",
            ": amp-charged -5\n\n",
            ": amp-charged 12x\n\n",
            long.as_str(),
            "x: amp-charged 3\n\n",
        ] {
            assert_eq!(statements.read(junk.as_bytes()), 0, "{junk}");
        }
        assert!(ends_event(b"data: x\n\n"));
        assert!(!ends_event(b"data: x\n"));
    }
}
