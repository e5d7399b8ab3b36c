//! The demo's report: calls by route, transactions by kind and their fees,
//! rent, and the comparison with one transaction per request.

use std::fmt;

use amp_sdk::manifest::Price;
use anchor_lang::prelude::Pubkey;
use serde::Serialize;

use super::metered::{TxKind, TxRecord};
use super::timing::Percentiles;
use crate::amount::format_tokens;

/// Calls and charges of one route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteReport {
    pub route: &'static str,
    pub price: Price,
    pub calls: u32,
}

/// Transactions of one kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TxSummary {
    pub kind: TxKind,
    pub count: u32,
    /// Vouchers these transactions settled.
    pub vouchers: u32,
    /// Lamports.
    pub fees: u64,
}

/// What the demo did and what it cost.
#[derive(Clone, Debug, Serialize)]
pub struct DemoReport {
    pub calls: u32,
    pub routes: Vec<RouteReport>,
    /// Wall time of the calls, the settlement and the close.
    pub elapsed_ms: u64,
    #[serde(serialize_with = "crate::output::display")]
    pub mint: Pubkey,
    pub decimals: u8,
    #[serde(serialize_with = "crate::output::display")]
    pub channel: Pubkey,
    #[serde(with = "amp_sdk::decimal::u64_string")]
    pub deposit: u64,
    /// Tokens the service received.
    #[serde(with = "amp_sdk::decimal::u64_string")]
    pub paid: u64,
    /// Tokens returned to the agent at close.
    #[serde(with = "amp_sdk::decimal::u64_string")]
    pub refunded: u64,
    /// The agent's tokens before and after.
    #[serde(with = "amp_sdk::decimal::u64_string")]
    pub agent_tokens_before: u64,
    #[serde(with = "amp_sdk::decimal::u64_string")]
    pub agent_tokens_after: u64,
    /// The service's tokens after.
    #[serde(with = "amp_sdk::decimal::u64_string")]
    pub service_tokens: u64,
    /// Every transaction the channel's life took, by kind.
    pub transactions: Vec<TxSummary>,
    pub transaction_count: u32,
    /// Of those, the ones that failed (a fee is still paid).
    pub failed_transactions: u32,
    /// Lamports of fees for all of them.
    pub fees: u64,
    /// Lamports the agent fronted for the Channel and Vault accounts...
    pub rent_paid: u64,
    /// ...and got back when the channel closed.
    pub rent_reclaimed: u64,
    /// The fee of one SPL token transfer transaction, measured on the same bank.
    pub transfer_fee: u64,
    /// `calls × transfer_fee`: paying every request with its own transaction.
    pub per_request_fees: u64,
    /// Time the paywall adds to a paid request (credential parsed and
    /// verified, lane checked, voucher persisted), measured around the handler.
    pub payment_overhead: Percentiles,
    /// A paid request/response call (streams excluded) as the agent sees
    /// it, request to last byte, on loopback.
    pub call_latency: Percentiles,
}

impl DemoReport {
    /// How many of the demo's transactions' fees one-transaction-per-request would pay.
    pub fn fee_ratio(&self) -> f64 {
        if self.fees == 0 {
            return 0.0;
        }
        self.per_request_fees as f64 / self.fees as f64
    }

    pub fn count(&self, kind: TxKind) -> u32 {
        self.transactions
            .iter()
            .filter(|t| t.kind == kind)
            .map(|t| t.count)
            .sum()
    }
}

pub(super) fn summarise(records: &[TxRecord]) -> (Vec<TxSummary>, u64) {
    let mut summaries: Vec<TxSummary> = Vec::new();
    for record in records {
        match summaries.iter_mut().find(|s| s.kind == record.kind) {
            Some(summary) => {
                summary.count += 1;
                summary.vouchers += record.vouchers;
                summary.fees += record.fee;
            }
            None => summaries.push(TxSummary {
                kind: record.kind,
                count: 1,
                vouchers: record.vouchers,
                fees: record.fee,
            }),
        }
    }
    summaries.sort_by_key(|s| s.kind);
    let fees = records.iter().map(|r| r.fee).sum();
    (summaries, fees)
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let usdc = |units| format!("{} USDC", format_tokens(units, self.decimals));
        let sol = |lamports: u64| {
            format!(
                "{} lamports ({} SOL)",
                group(lamports),
                format_tokens(lamports, 9)
            )
        };
        let routes: Vec<String> = self
            .routes
            .iter()
            .map(|r| format!("{} {} ({})", r.calls, r.route, r.price.mode))
            .collect();
        let txs: Vec<String> = self
            .transactions
            .iter()
            .map(|t| {
                if t.vouchers > 0 {
                    let noun = if t.vouchers == 1 {
                        "voucher"
                    } else {
                        "vouchers"
                    };
                    format!("{} {} ({} {noun})", t.count, t.kind.name(), t.vouchers)
                } else {
                    format!("{} {}", t.count, t.kind.name())
                }
            })
            .collect();
        writeln!(
            f,
            "AMP demo: {} paid calls on an embedded Solana bank, no network",
            group(u64::from(self.calls))
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "  calls              {} in {:.1} s: {}",
            group(u64::from(self.calls)),
            self.elapsed_ms as f64 / 1_000.0,
            routes.join(", ")
        )?;
        writeln!(
            f,
            "  paid               {} to the service, from a deposit of {}; {} refunded at close",
            usdc(self.paid),
            usdc(self.deposit),
            usdc(self.refunded)
        )?;
        writeln!(
            f,
            "  on-chain           {} transactions: {}",
            self.transaction_count,
            txs.join(", ")
        )?;
        if self.failed_transactions > 0 {
            writeln!(
                f,
                "                     ({} of them failed)",
                self.failed_transactions
            )?;
        }
        writeln!(f, "  fees               {}", sol(self.fees))?;
        writeln!(
            f,
            "  rent               {} lamports fronted at open, {} reclaimed at close",
            group(self.rent_paid),
            group(self.rent_reclaimed)
        )?;
        writeln!(
            f,
            "  one tx per call    {} × {} lamports (one token transfer) = {}: {:.0}× the fees above",
            group(u64::from(self.calls)),
            group(self.transfer_fee),
            sol(self.per_request_fees),
            self.fee_ratio()
        )?;
        writeln!(
            f,
            "  payment overhead   p50 {} · p99 {} per call (paywall: verify, check lane, persist voucher)",
            micros(self.payment_overhead.p50_us),
            micros(self.payment_overhead.p99_us)
        )?;
        write!(
            f,
            "  call latency       p50 {} · p99 {} (agent to API and back on loopback; streams excluded)",
            micros(self.call_latency.p50_us),
            micros(self.call_latency.p99_us)
        )
    }
}

/// `1234567` as `1,234,567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn micros(us: u64) -> String {
    if us >= 1_000 {
        format!("{:.1} ms", us as f64 / 1_000.0)
    } else {
        format!("{us} µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_digits() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_000), "1,000");
        assert_eq!(group(4_322_160), "4,322,160");
    }
}
