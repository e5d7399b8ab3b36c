//! Which price a request path pays: the manifest's routes by the shared rule
//! ([`crate::pricing::route_price`]), the paths served free, the default;
//! or, on a JSON-RPC route, the prices of its methods.

use std::collections::{BTreeMap, HashSet};

use crate::manifest::{Price, Pricing};
use crate::pricing::{method_prices, route_pattern, route_price};

/// The price of every path: the manifest's routes, its default, and the
/// paths served free.
#[derive(Clone, Debug)]
pub(crate) struct PriceTable {
    pricing: Pricing,
    /// Exact free paths, kept apart so a priced route can never be shadowed
    /// by a broader free prefix.
    free_exact: HashSet<String>,
    free_prefixes: Vec<String>,
}

impl PriceTable {
    pub(crate) fn new(pricing: &Pricing, free: &[String]) -> Self {
        let (prefixes, exact): (Vec<&String>, Vec<&String>) =
            free.iter().partition(|p| p.ends_with('*'));
        Self {
            pricing: pricing.clone(),
            free_exact: exact.into_iter().cloned().collect(),
            free_prefixes: prefixes
                .into_iter()
                .map(|p| p.trim_end_matches('*').to_owned())
                .collect(),
        }
    }

    /// The JSON-RPC method prices of `path`, when its requests are priced by
    /// the method they post (an exact free path is free all the same).
    pub(crate) fn methods(&self, path: &str) -> Option<&BTreeMap<String, Price>> {
        if self.free_exact.contains(path) {
            return None;
        }
        method_prices(&self.pricing, path)
    }

    /// The route pattern `path` is priced by, or `default`: what the
    /// metrics count it under (never the path itself, which is unbounded).
    pub(crate) fn route<'a>(&'a self, path: &str) -> &'a str {
        route_pattern(&self.pricing, path).unwrap_or(super::metrics::DEFAULT_ROUTE_LABEL)
    }

    /// The price of `path`; `None` when it is served free. An exact free
    /// path wins, then a route, then a free prefix, then the default.
    pub(crate) fn price(&self, path: &str) -> Option<Price> {
        if self.free_exact.contains(path) {
            return None;
        }
        if let Some(price) = route_price(&self.pricing, path) {
            return Some(price);
        }
        if self
            .free_prefixes
            .iter()
            .any(|p| path.starts_with(p.as_str()))
        {
            return None;
        }
        Some(self.pricing.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::PricingMode;

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
                ("/public/paid".into(), price(PricingMode::PerCall, 7)),
            ]),
            tokens: Default::default(),
            methods: Default::default(),
        };
        let table = PriceTable::new(
            &pricing,
            &["/health".into(), "/public/*".into(), "/v1/free".into()],
        );
        assert_eq!(table.price("/v1/chat").unwrap().rate, 2);
        assert_eq!(table.price("/v1/other").unwrap().rate, 5);
        assert_eq!(
            table.price("/v1/files/a").unwrap().mode,
            PricingMode::PerByte
        );
        assert_eq!(table.price("/health"), None);
        assert_eq!(table.price("/public/x"), None);
        assert_eq!(table.price("/public/paid").unwrap().rate, 7);
        assert_eq!(table.price("/v1/free"), None);
        assert_eq!(table.price("/anything").unwrap().rate, 10);
        assert_eq!(table.route("/v1/chat"), "/v1/chat");
        assert_eq!(table.route("/v1/files/a"), "/v1/files/*");
        assert_eq!(table.route("/anything"), "default");
    }
}
