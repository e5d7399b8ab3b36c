//! What a request costs, as the client reads the manifest: the route's
//! price, and what measured usage comes to.
//!
//! The client rounds usage down (whole seconds' worth of milliseconds, whole
//! bytes) so that what it signs during a stream never runs ahead of what
//! the server meters; the server's own count settles the remainder.

use crate::manifest::{Price, Pricing, PricingMode};

/// The price of `path`: an exact route, else the longest `prefix*` route,
/// else the default (the server's rule; free paths are not in the manifest).
pub(crate) fn price_for(pricing: &Pricing, path: &str) -> Price {
    if let Some(price) = pricing.routes.get(path) {
        return *price;
    }
    pricing
        .routes
        .iter()
        .filter_map(|(pattern, price)| {
            let prefix = pattern.strip_suffix('*')?;
            path.starts_with(prefix).then_some((prefix.len(), *price))
        })
        .max_by_key(|(len, _)| *len)
        .map_or(pricing.default, |(_, price)| price)
}

/// Whether the price is known before the response (`per_call`).
pub(crate) fn is_upfront(price: &Price) -> bool {
    price.mode == PricingMode::PerCall
}

/// Whether the client can measure the usage itself while it reads the
/// response (time or bytes), and so pay for it as it goes.
pub(crate) fn is_measurable(price: &Price) -> bool {
    matches!(price.mode, PricingMode::PerSecond | PricingMode::PerByte) && price.rate > 0
}

/// What `units` (milliseconds for `per_second`, bytes for `per_byte`) cost,
/// rounded down.
pub(crate) fn cost(price: &Price, units: u64) -> u64 {
    let rate = u128::from(price.rate);
    let units = u128::from(units);
    let cost = match price.mode {
        PricingMode::PerSecond => rate * units / 1_000,
        _ => rate * units,
    };
    u64::try_from(cost).unwrap_or(u64::MAX)
}

/// Milliseconds (`per_second`) or bytes (`per_byte`) that `amount` pays for.
pub(crate) fn units_for(price: &Price, amount: u64) -> u64 {
    if price.rate == 0 {
        return u64::MAX;
    }
    let amount = u128::from(amount);
    let units = match price.mode {
        PricingMode::PerSecond => amount * 1_000 / u128::from(price.rate),
        _ => amount / u128::from(price.rate),
    };
    u64::try_from(units).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn price(mode: PricingMode, rate: u64) -> Price {
        Price { mode, rate }
    }

    #[test]
    fn routes_like_the_server() {
        let pricing = Pricing {
            default: price(PricingMode::PerCall, 10),
            routes: BTreeMap::from([
                ("/v1/chat".into(), price(PricingMode::PerToken, 2)),
                ("/v1/*".into(), price(PricingMode::PerCall, 5)),
                ("/v1/files/*".into(), price(PricingMode::PerByte, 1)),
            ]),
        };
        assert_eq!(price_for(&pricing, "/v1/chat").rate, 2);
        assert_eq!(price_for(&pricing, "/v1/other").rate, 5);
        assert_eq!(
            price_for(&pricing, "/v1/files/a").mode,
            PricingMode::PerByte
        );
        assert_eq!(price_for(&pricing, "/elsewhere").rate, 10);
    }

    #[test]
    fn costs_round_down() {
        let per_second = price(PricingMode::PerSecond, 3);
        assert_eq!(cost(&per_second, 999), 2);
        assert_eq!(cost(&per_second, 1_000), 3);
        assert_eq!(units_for(&per_second, 3), 1_000);
        let per_byte = price(PricingMode::PerByte, u64::MAX);
        assert_eq!(cost(&per_byte, 2), u64::MAX);
        assert_eq!(units_for(&price(PricingMode::PerByte, 2), 7), 3);
        assert!(is_measurable(&per_second));
        assert!(!is_measurable(&price(PricingMode::PerToken, 1)));
    }
}
