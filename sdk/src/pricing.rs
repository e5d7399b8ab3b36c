//! What a price charges, one rule for both sides of the wire: which route's
//! price a path pays, what usage costs, and how much usage an amount buys.
//!
//! The payer and the payee apply the same rule and differ only in rounding:
//! an agent rounds down, so what it signs during a stream never runs ahead
//! of what the server meters; the server rounds up, so it is never paid
//! less than what it served.

use std::collections::BTreeMap;

use crate::manifest::{Price, Pricing, PricingMode, TokenPrices};

/// Which way a fractional cost (a `per_second` price counts milliseconds) goes.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// The payer's rounding: never sign ahead of the meter.
    Down,
    /// The payee's rounding: never be paid less than what was served.
    Up,
}

/// The price of `path` among the routes: an exact route, else the longest
/// `prefix*` route; `None` when no route matches (the default applies).
pub fn route_price(pricing: &Pricing, path: &str) -> Option<Price> {
    matching(&pricing.routes, path).copied()
}

/// The input and output token prices of `path`'s route, when it has them.
pub fn token_prices<'a>(pricing: &'a Pricing, path: &str) -> Option<&'a TokenPrices> {
    matching(&pricing.tokens, path)
}

/// The JSON-RPC method prices of `path`'s route, when it is priced by method.
pub fn method_prices<'a>(pricing: &'a Pricing, path: &str) -> Option<&'a BTreeMap<String, Price>> {
    matching(&pricing.methods, path)
}

/// What a JSON-RPC request body pays under `methods`: the price of its
/// message's method; `None` (free) for a method not listed, a body that is
/// no JSON-RPC message, or a message without a method (a response). A batch
/// pays the sum of its priced members' rates, in the mode of the first.
pub fn message_price(methods: &BTreeMap<String, Price>, body: &[u8]) -> Option<Price> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let messages = match &json {
        serde_json::Value::Array(messages) => messages.as_slice(),
        message => std::slice::from_ref(message),
    };
    let mut priced = messages.iter().filter_map(|message| {
        let method = message.get("method")?.as_str()?;
        methods.get(method)
    });
    let first = *priced.next()?;
    Some(priced.fold(first, |total, price| Price {
        mode: total.mode,
        rate: total.rate.saturating_add(price.rate),
    }))
}

/// What a request to `path` with `body` pays, as a client sees it: on a
/// JSON-RPC route the price of the message's method (`None`: free), else
/// the route's price or the default.
pub fn request_price(pricing: &Pricing, path: &str, body: &[u8]) -> Option<Price> {
    match method_prices(pricing, path) {
        Some(methods) => message_price(methods, body),
        None => Some(price_for(pricing, path)),
    }
}

/// The entry of `path` in a map keyed by route patterns: an exact pattern,
/// else the longest `prefix*`.
fn matching<'a, T>(routes: &'a BTreeMap<String, T>, path: &str) -> Option<&'a T> {
    matching_route(routes, path).map(|(_, value)| value)
}

/// The route pattern `path` matches in `routes` (exact, then the longest
/// prefix), and its value.
fn matching_route<'a, T>(routes: &'a BTreeMap<String, T>, path: &str) -> Option<(&'a str, &'a T)> {
    if let Some((pattern, value)) = routes.get_key_value(path) {
        return Some((pattern.as_str(), value));
    }
    routes
        .iter()
        .filter_map(|(pattern, value)| {
            let prefix = pattern.strip_suffix('*')?;
            path.starts_with(prefix)
                .then_some((prefix.len(), (pattern.as_str(), value)))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, found)| found)
}

/// The pattern of the priced route (or JSON-RPC route) `path` falls under,
/// `None` when only the default price applies: a name for the route with
/// as few values as the configuration has routes (the operator metrics'
/// label).
pub fn route_pattern<'a>(pricing: &'a Pricing, path: &str) -> Option<&'a str> {
    matching_route(&pricing.methods, path)
        .map(|(pattern, _)| pattern)
        .or_else(|| matching_route(&pricing.routes, path).map(|(pattern, _)| pattern))
}

/// The price of `path`: its route's, else the default.
pub fn price_for(pricing: &Pricing, path: &str) -> Price {
    route_price(pricing, path).unwrap_or(pricing.default)
}

/// Whether the price is known before the response (`per_call`).
pub fn is_upfront(price: &Price) -> bool {
    price.mode == PricingMode::PerCall
}

/// What `units` cost at `price` (milliseconds for `per_second`, bytes for
/// `per_byte`, reported units for `per_token`), saturating.
pub fn cost(price: &Price, units: u64, rounding: Rounding) -> u64 {
    let rate = u128::from(price.rate);
    let units = u128::from(units);
    let cost = match (price.mode, rounding) {
        (PricingMode::PerSecond, Rounding::Down) => rate * units / 1_000,
        (PricingMode::PerSecond, Rounding::Up) => (rate * units).div_ceil(1_000),
        _ => rate * units,
    };
    u64::try_from(cost).unwrap_or(u64::MAX)
}

/// The most units `amount` pays for at `price` (milliseconds for
/// `per_second`); `None` when the rate is 0 (no limit).
pub fn units_for(price: &Price, amount: u64) -> Option<u64> {
    if price.rate == 0 {
        return None;
    }
    let amount = u128::from(amount);
    let units = match price.mode {
        PricingMode::PerSecond => amount * 1_000,
        _ => amount,
    } / u128::from(price.rate);
    Some(u64::try_from(units).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn price(mode: PricingMode, rate: u64) -> Price {
        Price { mode, rate }
    }

    #[test]
    fn json_rpc_messages_pay_by_method() {
        let methods = BTreeMap::from([
            ("tools/call".to_owned(), price(PricingMode::PerCall, 500)),
            ("prompts/get".to_owned(), price(PricingMode::PerCall, 20)),
        ]);
        let call = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add"}}"#;
        assert_eq!(message_price(&methods, call).unwrap().rate, 500);
        for free in [
            &br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#[..],
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            br#"{"jsonrpc":"2.0","id":2,"result":{}}"#,
            br#"{"jsonrpc":"2.0","id":2,"method":7}"#,
            b"",
            b"not json",
        ] {
            assert_eq!(message_price(&methods, free), None);
        }
        let batch = br#"[{"id":1,"method":"tools/call"},{"id":2,"method":"tools/list"},
            {"id":3,"method":"prompts/get"},{"id":4,"method":"tools/call"}]"#;
        assert_eq!(message_price(&methods, batch).unwrap().rate, 1_020);
        let pricing = Pricing {
            default: price(PricingMode::PerCall, 1),
            routes: BTreeMap::new(),
            tokens: Default::default(),
            methods: BTreeMap::from([("/mcp".to_owned(), methods)]),
        };
        assert!(method_prices(&pricing, "/mcp").is_some());
        assert!(method_prices(&pricing, "/mcp/x").is_none());
    }

    #[test]
    fn routes_exact_then_longest_prefix_then_default() {
        let pricing = Pricing {
            default: price(PricingMode::PerCall, 10),
            routes: BTreeMap::from([
                ("/v1/chat".into(), price(PricingMode::PerToken, 2)),
                ("/v1/*".into(), price(PricingMode::PerCall, 5)),
                ("/v1/files/*".into(), price(PricingMode::PerByte, 1)),
            ]),
            tokens: Default::default(),
            methods: Default::default(),
        };
        assert_eq!(price_for(&pricing, "/v1/chat").rate, 2);
        assert_eq!(price_for(&pricing, "/v1/other").rate, 5);
        assert_eq!(
            price_for(&pricing, "/v1/files/a").mode,
            PricingMode::PerByte
        );
        assert_eq!(route_price(&pricing, "/elsewhere"), None);
        assert_eq!(price_for(&pricing, "/elsewhere").rate, 10);
    }

    #[test]
    fn payers_round_down_payees_up() {
        let per_second = price(PricingMode::PerSecond, 3);
        assert_eq!(cost(&per_second, 1, Rounding::Up), 1);
        assert_eq!(cost(&per_second, 1, Rounding::Down), 0);
        assert_eq!(cost(&per_second, 999, Rounding::Down), 2);
        assert_eq!(cost(&per_second, 1_000, Rounding::Up), 3);
        assert_eq!(cost(&per_second, 1_000, Rounding::Down), 3);
        assert_eq!(cost(&per_second, 1_001, Rounding::Up), 4);
        let per_byte = price(PricingMode::PerByte, u64::MAX);
        assert_eq!(cost(&per_byte, 2, Rounding::Up), u64::MAX);
        assert_eq!(cost(&per_byte, 2, Rounding::Down), u64::MAX);
    }

    #[test]
    fn units_an_amount_buys() {
        assert_eq!(units_for(&price(PricingMode::PerByte, 2), 7), Some(3));
        assert_eq!(units_for(&price(PricingMode::PerSecond, 3), 3), Some(1_000));
        assert_eq!(units_for(&price(PricingMode::PerToken, 0), 3), None);
    }
}
