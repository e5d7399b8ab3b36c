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

/// The entry of `path` in a map keyed by route patterns: an exact pattern,
/// else the longest `prefix*`.
fn matching<'a, T>(routes: &'a BTreeMap<String, T>, path: &str) -> Option<&'a T> {
    if let Some(value) = routes.get(path) {
        return Some(value);
    }
    routes
        .iter()
        .filter_map(|(pattern, value)| {
            let prefix = pattern.strip_suffix('*')?;
            path.starts_with(prefix).then_some((prefix.len(), value))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, value)| value)
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
    fn routes_exact_then_longest_prefix_then_default() {
        let pricing = Pricing {
            default: price(PricingMode::PerCall, 10),
            routes: BTreeMap::from([
                ("/v1/chat".into(), price(PricingMode::PerToken, 2)),
                ("/v1/*".into(), price(PricingMode::PerCall, 5)),
                ("/v1/files/*".into(), price(PricingMode::PerByte, 1)),
            ]),
            tokens: Default::default(),
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
