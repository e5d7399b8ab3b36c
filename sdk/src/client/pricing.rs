//! What a request costs, as the client reads the manifest: the shared rule
//! of [`crate::pricing`] with the payer's rounding (down), so that what it
//! signs during a stream never runs ahead of what the server meters; the
//! server's own count settles the remainder.

use crate::manifest::{Price, Pricing, PricingMode};
use crate::pricing::{self, Rounding};

/// The price of a request to `path` with `body` (free paths are not in the
/// manifest; free JSON-RPC methods are: `None`).
pub(crate) fn request_price(pricing: &Pricing, path: &str, body: &[u8]) -> Option<Price> {
    pricing::request_price(pricing, path, body)
}

/// Whether the price is known before the response (`per_call`).
pub(crate) fn is_upfront(price: &Price) -> bool {
    pricing::is_upfront(price)
}

/// Whether the client can measure the usage itself while it reads the
/// response (time or bytes), and so pay for it as it goes.
pub(crate) fn is_measurable(price: &Price) -> bool {
    matches!(price.mode, PricingMode::PerSecond | PricingMode::PerByte) && price.rate > 0
}

/// What `units` (milliseconds for `per_second`, bytes for `per_byte`) cost,
/// rounded down.
pub(crate) fn cost(price: &Price, units: u64) -> u64 {
    pricing::cost(price, units, Rounding::Down)
}

/// Milliseconds (`per_second`) or bytes (`per_byte`) that `amount` pays for.
pub(crate) fn units_for(price: &Price, amount: u64) -> u64 {
    pricing::units_for(price, amount).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(mode: PricingMode, rate: u64) -> Price {
        Price { mode, rate }
    }

    #[test]
    fn costs_round_down() {
        let per_second = price(PricingMode::PerSecond, 3);
        assert_eq!(cost(&per_second, 999), 2);
        assert_eq!(cost(&per_second, 1_000), 3);
        assert_eq!(units_for(&per_second, 3), 1_000);
        assert_eq!(units_for(&price(PricingMode::PerByte, 0), 3), u64::MAX);
        assert!(is_measurable(&per_second));
        assert!(!is_measurable(&price(PricingMode::PerToken, 1)));
    }
}
