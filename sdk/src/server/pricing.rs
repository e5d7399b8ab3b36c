//! Which price a request path pays, and what a metered request costs once
//! its usage is known.

use std::collections::{HashMap, HashSet};

use crate::manifest::{Price, Pricing, PricingMode};

/// Route patterns: an exact path, or a prefix ending in `*` (`/v1/*`); the
/// exact path wins, then the longest prefix.
#[derive(Clone, Debug, Default)]
struct Routes<T> {
    exact: HashMap<String, T>,
    /// Longest prefix first.
    prefixes: Vec<(String, T)>,
}

impl<T: Copy> Routes<T> {
    fn new(entries: impl IntoIterator<Item = (String, T)>) -> Self {
        let mut routes = Self {
            exact: HashMap::new(),
            prefixes: Vec::new(),
        };
        for (pattern, value) in entries {
            match pattern.strip_suffix('*') {
                Some(prefix) => routes.prefixes.push((prefix.to_owned(), value)),
                None => {
                    routes.exact.insert(pattern, value);
                }
            }
        }
        routes
            .prefixes
            .sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        routes
    }

    fn get(&self, path: &str) -> Option<T> {
        self.exact.get(path).copied().or_else(|| {
            self.prefixes
                .iter()
                .find(|(prefix, _)| path.starts_with(prefix.as_str()))
                .map(|(_, value)| *value)
        })
    }
}

/// The price of every path: the manifest's routes, its default, and the
/// paths served free.
#[derive(Clone, Debug)]
pub(crate) struct PriceTable {
    default: Price,
    routes: Routes<Price>,
    free: Routes<()>,
    /// Exact free paths, kept apart so a priced route can never be shadowed
    /// by a broader free prefix.
    free_exact: HashSet<String>,
}

impl PriceTable {
    pub(crate) fn new(pricing: &Pricing, free: &[String]) -> Self {
        Self {
            default: pricing.default,
            routes: Routes::new(pricing.routes.iter().map(|(k, v)| (k.clone(), *v))),
            free: Routes::new(free.iter().map(|p| (p.clone(), ()))),
            free_exact: free.iter().filter(|p| !p.ends_with('*')).cloned().collect(),
        }
    }

    /// The price of `path`; `None` when it is served free.
    pub(crate) fn price(&self, path: &str) -> Option<Price> {
        if self.free_exact.contains(path) {
            return None;
        }
        if let Some(price) = self.routes.get(path) {
            return Some(price);
        }
        if self.free.get(path).is_some() {
            return None;
        }
        Some(self.default)
    }
}

/// Whether the price is known before the handler runs.
pub(crate) fn is_upfront(price: &Price) -> bool {
    price.mode == PricingMode::PerCall
}

/// What `units` cost at `price`, capped at `allowance`. A `per_second`
/// price counts units in milliseconds and rounds the charge up.
pub(crate) fn charge(price: &Price, units: u64, allowance: u64) -> u64 {
    let rate = u128::from(price.rate);
    let units = u128::from(units);
    let cost = match price.mode {
        PricingMode::PerSecond => (rate * units).div_ceil(1_000),
        _ => rate * units,
    };
    u64::try_from(cost).unwrap_or(u64::MAX).min(allowance)
}

/// The most units `allowance` pays for at `price` (milliseconds for
/// `per_second`); `None` when the rate is 0 (no limit).
pub(crate) fn max_units(price: &Price, allowance: u64) -> Option<u64> {
    if price.rate == 0 {
        return None;
    }
    let per = match price.mode {
        PricingMode::PerSecond => u128::from(allowance) * 1_000,
        _ => u128::from(allowance),
    };
    Some(u64::try_from(per / u128::from(price.rate)).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn price(mode: PricingMode, rate: u64) -> Price {
        Price { mode, rate }
    }

    #[test]
    fn routes_exact_then_longest_prefix_then_free_then_default() {
        let pricing = Pricing {
            default: price(PricingMode::PerCall, 10),
            routes: BTreeMap::from([
                ("/v1/chat".into(), price(PricingMode::PerToken, 2)),
                ("/v1/*".into(), price(PricingMode::PerCall, 5)),
                ("/v1/files/*".into(), price(PricingMode::PerByte, 1)),
            ]),
        };
        let table = PriceTable::new(&pricing, &["/health".into(), "/public/*".into()]);
        assert_eq!(table.price("/v1/chat").unwrap().rate, 2);
        assert_eq!(table.price("/v1/other").unwrap().rate, 5);
        assert_eq!(
            table.price("/v1/files/a").unwrap().mode,
            PricingMode::PerByte
        );
        assert_eq!(table.price("/health"), None);
        assert_eq!(table.price("/public/x"), None);
        assert_eq!(table.price("/anything").unwrap().rate, 10);
    }

    #[test]
    fn charges_round_up_and_cap() {
        let per_second = price(PricingMode::PerSecond, 3);
        assert_eq!(charge(&per_second, 1, u64::MAX), 1);
        assert_eq!(charge(&per_second, 1_000, u64::MAX), 3);
        assert_eq!(charge(&per_second, 1_001, u64::MAX), 4);
        let per_byte = price(PricingMode::PerByte, u64::MAX);
        assert_eq!(charge(&per_byte, 2, u64::MAX), u64::MAX);
        assert_eq!(charge(&per_byte, 2, 7), 7);
        assert_eq!(max_units(&price(PricingMode::PerByte, 2), 7), Some(3));
        assert_eq!(max_units(&per_second, 3), Some(1_000));
        assert_eq!(max_units(&price(PricingMode::PerToken, 0), 3), None);
    }
}
