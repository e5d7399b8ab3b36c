//! Transaction fees as a Solana wallet sets them: a compute-unit limit from
//! a simulation of the transaction (with a margin, so the leader schedules
//! it as small as it is) and a compute-unit price from what recently landed
//! beside the accounts it writes (a percentile, never above a cap).
//!
//! The choices are pure functions of a [`FeePolicy`], a fee history and the
//! units a simulation consumed, so they are tested without a chain; the
//! [`Chain`](crate::chain::Chain) implementations fetch the inputs
//! ([`Chain::compute_budget`](crate::chain::Chain::compute_budget)).
//!
//! A fixed price above the cap is refused ([`FeePolicy::validate`]) rather
//! than quietly lowered: an operator who names a price gets that price or an
//! error, never a third amount. [`compute_unit_price`] still caps it, so the
//! cap holds even for a policy that was never validated.

use anchor_lang::prelude::Pubkey;
use serde::{Deserialize, Serialize};
use solana_compute_budget_interface::ComputeBudgetInstruction;
use solana_instruction::Instruction;

/// The most compute units one transaction may use (the runtime's limit).
pub const MAX_COMPUTE_UNIT_LIMIT: u32 = 1_400_000;

/// The smallest limit set: simulation and execution may differ a little
/// (another account state, another branch), and a tiny limit saves nothing.
pub const MIN_COMPUTE_UNIT_LIMIT: u32 = 10_000;

/// The default cap, in micro-lamports per compute unit: 0.1 lamport a unit,
/// 20,000 lamports (0.00002 SOL) for a 200,000-unit transaction, above what
/// most slots ask and far below what a fee spike would take.
pub const DEFAULT_MAX_COMPUTE_UNIT_PRICE: u64 = 100_000;

/// The default percentile of recent fees paid: above most, below the spikes.
pub const DEFAULT_PERCENTILE: u8 = 75;

/// The default margin over the units a simulation consumed, in percent.
pub const DEFAULT_COMPUTE_UNIT_MARGIN: u32 = 20;

/// Largest number of accounts `getRecentPrioritizationFees` takes.
pub const MAX_FEE_ACCOUNTS: usize = 128;

/// How a transaction's compute budget is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeePolicy {
    /// A fixed price in micro-lamports per compute unit (the Solana CLI's
    /// `--with-compute-unit-price`) instead of one read from recent fees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_unit_price: Option<u64>,
    /// The highest price ever set, in micro-lamports per compute unit.
    pub max_compute_unit_price: u64,
    /// Which percentile of the recent per-slot fees to pay (0 to 100).
    pub percentile: u8,
    /// Compute units added to what a simulation consumed, in percent.
    pub compute_unit_margin: u32,
}

impl Default for FeePolicy {
    fn default() -> Self {
        Self {
            compute_unit_price: None,
            max_compute_unit_price: DEFAULT_MAX_COMPUTE_UNIT_PRICE,
            percentile: DEFAULT_PERCENTILE,
            compute_unit_margin: DEFAULT_COMPUTE_UNIT_MARGIN,
        }
    }
}

/// A [`FeePolicy`] that contradicts itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FeePolicyError {
    /// The fixed price is over the cap; raise the cap or lower the price.
    #[error("compute unit price {price} is over the maximum of {max} micro-lamports (raise --max-compute-unit-price)")]
    PriceOverCap {
        /// The fixed price asked for.
        price: u64,
        /// The cap it exceeds.
        max: u64,
    },
    /// A percentile is at most 100.
    #[error("fee percentile {0} is over 100")]
    Percentile(u8),
}

impl FeePolicy {
    /// A policy that pays `price` micro-lamports per unit, whatever recent fees were.
    pub fn fixed(price: u64) -> Self {
        Self {
            compute_unit_price: Some(price),
            max_compute_unit_price: price.max(DEFAULT_MAX_COMPUTE_UNIT_PRICE),
            ..Self::default()
        }
    }

    /// Refuses a fixed price over the cap and a percentile over 100.
    pub fn validate(&self) -> Result<(), FeePolicyError> {
        if let Some(price) = self.compute_unit_price {
            if price > self.max_compute_unit_price {
                return Err(FeePolicyError::PriceOverCap {
                    price,
                    max: self.max_compute_unit_price,
                });
            }
        }
        if self.percentile > 100 {
            return Err(FeePolicyError::Percentile(self.percentile));
        }
        Ok(())
    }
}

/// The price to pay, in micro-lamports per compute unit: the fixed one when
/// the policy has it, else the policy's percentile of `history` (recent
/// per-slot prioritization fees, in any order; none means 0), and never
/// more than the cap.
pub fn compute_unit_price(policy: &FeePolicy, history: &[u64]) -> u64 {
    let price = match policy.compute_unit_price {
        Some(price) => price,
        None => percentile(history, policy.percentile),
    };
    price.min(policy.max_compute_unit_price)
}

/// The nearest-rank percentile of `values` (0 for none): the smallest value
/// that at least `percentile`% of them do not exceed.
fn percentile(values: &[u64], percentile: u8) -> u64 {
    if values.is_empty() {
        return 0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    let rank = (usize::from(percentile.min(100)) * n).div_ceil(100);
    sorted[rank.saturating_sub(1).min(n - 1)]
}

/// The compute-unit limit for a transaction whose simulation consumed
/// `units_consumed`: `margin` percent more, at least
/// [`MIN_COMPUTE_UNIT_LIMIT`], at most [`MAX_COMPUTE_UNIT_LIMIT`].
pub fn compute_unit_limit(units_consumed: u64, margin: u32) -> u32 {
    let with_margin = (u128::from(units_consumed) * (100 + u128::from(margin))).div_ceil(100);
    let limit = u32::try_from(with_margin).unwrap_or(u32::MAX);
    limit.clamp(MIN_COMPUTE_UNIT_LIMIT, MAX_COMPUTE_UNIT_LIMIT)
}

/// `[SetComputeUnitLimit(limit), SetComputeUnitPrice(price)]`, to put first
/// in a transaction.
pub fn compute_budget_instructions(limit: u32, price: u64) -> [Instruction; 2] {
    [
        ComputeBudgetInstruction::set_compute_unit_limit(limit),
        ComputeBudgetInstruction::set_compute_unit_price(price),
    ]
}

/// Instructions the same size as any [`compute_budget_instructions`]: for
/// measuring a transaction before its budget is known (packing).
pub fn compute_budget_placeholder() -> [Instruction; 2] {
    compute_budget_instructions(MAX_COMPUTE_UNIT_LIMIT, u64::MAX)
}

/// Whether `instruction` belongs to the ComputeBudget program.
pub fn is_compute_budget(instruction: &Instruction) -> bool {
    solana_compute_budget_interface::check_id(&instruction.program_id)
}

/// Whether the caller already set a compute budget: then it is left as it is.
pub fn has_compute_budget(instructions: &[Instruction]) -> bool {
    instructions.iter().any(is_compute_budget)
}

/// The accounts `instructions` write, each once, in order of appearance and
/// at most [`MAX_FEE_ACCOUNTS`]: the ones whose recent fees tell what
/// landing beside them costs.
pub fn writable_accounts(instructions: &[Instruction]) -> Vec<Pubkey> {
    let mut accounts: Vec<Pubkey> = Vec::new();
    for meta in instructions.iter().flat_map(|ix| &ix.accounts) {
        if meta.is_writable && !accounts.contains(&meta.pubkey) {
            accounts.push(meta.pubkey);
            if accounts.len() == MAX_FEE_ACCOUNTS {
                break;
            }
        }
    }
    accounts
}

/// The price, in micro-lamports per unit, a `SetComputeUnitPrice`
/// instruction sets; `None` for any other instruction.
pub fn price_of(instruction: &Instruction) -> Option<u64> {
    is_compute_budget(instruction)
        .then(|| price_in(&instruction.data))
        .flatten()
}

/// The price a ComputeBudget instruction's data sets, if it is a
/// `SetComputeUnitPrice` of exactly the right length.
pub fn price_in(data: &[u8]) -> Option<u64> {
    match data.split_first() {
        Some((3, value)) => Some(u64::from_le_bytes(value.try_into().ok()?)),
        _ => None,
    }
}

/// The limit a `SetComputeUnitLimit` instruction sets; `None` for any
/// other instruction.
pub fn limit_of(instruction: &Instruction) -> Option<u32> {
    is_compute_budget(instruction)
        .then(|| limit_in(&instruction.data))
        .flatten()
}

/// The limit a ComputeBudget instruction's data sets, if it is a
/// `SetComputeUnitLimit` of exactly the right length.
pub fn limit_in(data: &[u8]) -> Option<u32> {
    match data.split_first() {
        Some((2, value)) => Some(u32::from_le_bytes(value.try_into().ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use solana_instruction::AccountMeta;

    use super::*;

    fn policy(percentile: u8, max: u64) -> FeePolicy {
        FeePolicy {
            percentile,
            max_compute_unit_price: max,
            ..FeePolicy::default()
        }
    }

    #[test]
    fn the_percentile_of_recent_fees() {
        let history: Vec<u64> = (1..=100).collect();
        assert_eq!(compute_unit_price(&policy(75, u64::MAX), &history), 75);
        assert_eq!(compute_unit_price(&policy(50, u64::MAX), &history), 50);
        assert_eq!(compute_unit_price(&policy(100, u64::MAX), &history), 100);
        assert_eq!(compute_unit_price(&policy(0, u64::MAX), &history), 1);
        // Order does not matter.
        let reversed: Vec<u64> = history.iter().rev().copied().collect();
        assert_eq!(compute_unit_price(&policy(75, u64::MAX), &reversed), 75);
        // Four slots: the 75th percentile is the third smallest.
        assert_eq!(
            compute_unit_price(&policy(75, u64::MAX), &[400, 100, 300, 200]),
            300
        );
        assert_eq!(compute_unit_price(&policy(75, u64::MAX), &[7]), 7);
    }

    #[test]
    fn nothing_recent_costs_nothing() {
        let default = FeePolicy::default();
        assert_eq!(compute_unit_price(&default, &[]), 0);
        assert_eq!(compute_unit_price(&default, &[0; 150]), 0);
        // Mostly idle slots: the percentile stays at 0.
        let mut history = vec![0; 150];
        history[3] = 5_000;
        assert_eq!(compute_unit_price(&default, &history), 0);
    }

    #[test]
    fn outliers_do_not_set_the_price() {
        let mut history = vec![1_000; 150];
        history[10] = 50_000_000;
        history[90] = 9_000_000;
        assert_eq!(compute_unit_price(&FeePolicy::default(), &history), 1_000);
        // Unless one asks for the top.
        assert_eq!(
            compute_unit_price(&policy(100, u64::MAX), &history),
            50_000_000
        );
    }

    #[test]
    fn the_cap_holds() {
        let history = vec![2_000_000; 10];
        assert_eq!(
            compute_unit_price(&FeePolicy::default(), &history),
            DEFAULT_MAX_COMPUTE_UNIT_PRICE
        );
        assert_eq!(compute_unit_price(&policy(75, 0), &history), 0);
    }

    #[test]
    fn a_fixed_price_wins_and_is_checked_against_the_cap() {
        let fixed = FeePolicy {
            compute_unit_price: Some(5_000),
            ..FeePolicy::default()
        };
        assert_eq!(compute_unit_price(&fixed, &[]), 5_000);
        assert_eq!(compute_unit_price(&fixed, &[90_000; 20]), 5_000);
        assert_eq!(fixed.validate(), Ok(()));

        let over = FeePolicy {
            compute_unit_price: Some(200_000),
            ..FeePolicy::default()
        };
        assert_eq!(
            over.validate(),
            Err(FeePolicyError::PriceOverCap {
                price: 200_000,
                max: DEFAULT_MAX_COMPUTE_UNIT_PRICE
            })
        );
        // Unvalidated, it is still capped.
        assert_eq!(
            compute_unit_price(&over, &[]),
            DEFAULT_MAX_COMPUTE_UNIT_PRICE
        );
        // `fixed` raises the default cap to the price it names.
        assert_eq!(FeePolicy::fixed(200_000).validate(), Ok(()));
        assert_eq!(compute_unit_price(&FeePolicy::fixed(200_000), &[]), 200_000);
        assert_eq!(
            policy(101, 1).validate(),
            Err(FeePolicyError::Percentile(101))
        );
    }

    #[test]
    fn the_limit_has_a_margin_a_floor_and_a_ceiling() {
        assert_eq!(compute_unit_limit(100_000, 20), 120_000);
        assert_eq!(compute_unit_limit(100_000, 0), 100_000);
        assert_eq!(compute_unit_limit(33_333, 10), 36_667, "rounded up");
        assert_eq!(compute_unit_limit(0, 20), MIN_COMPUTE_UNIT_LIMIT);
        assert_eq!(compute_unit_limit(1_300_000, 20), MAX_COMPUTE_UNIT_LIMIT);
        assert_eq!(
            compute_unit_limit(u64::MAX, u32::MAX),
            MAX_COMPUTE_UNIT_LIMIT
        );
    }

    #[test]
    fn compute_budget_instructions_match_the_runtime_layout() {
        let [limit, price] = compute_budget_instructions(257, 1_000_000);
        let program: Pubkey = "ComputeBudget111111111111111111111111111111"
            .parse()
            .unwrap();
        assert_eq!((limit.program_id, price.program_id), (program, program));
        assert!(limit.accounts.is_empty() && price.accounts.is_empty());
        assert_eq!(limit.data, [2, 1, 1, 0, 0]);
        assert_eq!(price.data, [3, 0x40, 0x42, 0x0f, 0, 0, 0, 0, 0]);
        assert_eq!(limit_of(&limit), Some(257));
        assert_eq!(price_of(&price), Some(1_000_000));
        assert_eq!((limit_of(&price), price_of(&limit)), (None, None));
        assert!(has_compute_budget(std::slice::from_ref(&limit)));
        let other = Instruction::new_with_bytes(Pubkey::new_unique(), &[3; 9], vec![]);
        assert!(!has_compute_budget(std::slice::from_ref(&other)));
        assert_eq!(price_of(&other), None);
        // The placeholder is as large as any budget.
        let placeholder = compute_budget_placeholder();
        assert_eq!(placeholder[0].data.len(), limit.data.len());
        assert_eq!(placeholder[1].data.len(), price.data.len());
    }

    #[test]
    fn fees_are_read_for_the_written_accounts() {
        let (a, b, c) = (
            Pubkey::new_unique(),
            Pubkey::new_unique(),
            Pubkey::new_unique(),
        );
        let program = Pubkey::new_unique();
        let instructions = [
            Instruction::new_with_bytes(
                program,
                &[],
                vec![
                    AccountMeta::new(a, true),
                    AccountMeta::new_readonly(b, false),
                ],
            ),
            Instruction::new_with_bytes(
                program,
                &[],
                vec![AccountMeta::new(c, false), AccountMeta::new(a, false)],
            ),
        ];
        assert_eq!(writable_accounts(&instructions), [a, c]);
        let many: Vec<Instruction> = (0..200)
            .map(|_| {
                Instruction::new_with_bytes(
                    program,
                    &[],
                    vec![AccountMeta::new(Pubkey::new_unique(), false)],
                )
            })
            .collect();
        assert_eq!(writable_accounts(&many).len(), MAX_FEE_ACCOUNTS);
    }

    #[test]
    fn the_policy_reads_from_toml_with_defaults() {
        let policy: FeePolicy = toml::from_str("compute_unit_price = 1000").unwrap();
        assert_eq!(policy.compute_unit_price, Some(1_000));
        assert_eq!(
            policy.max_compute_unit_price,
            DEFAULT_MAX_COMPUTE_UNIT_PRICE
        );
        assert_eq!(policy.percentile, DEFAULT_PERCENTILE);
        assert!(toml::from_str::<FeePolicy>("compute_unit_prize = 1").is_err());
    }

    proptest! {
        #[test]
        fn the_cap_is_never_exceeded(
            history in proptest::collection::vec(any::<u64>(), 0..300),
            fixed in proptest::option::of(any::<u64>()),
            max in any::<u64>(),
            percentile in 0u8..=255,
        ) {
            let policy = FeePolicy {
                compute_unit_price: fixed,
                max_compute_unit_price: max,
                percentile,
                ..FeePolicy::default()
            };
            let price = compute_unit_price(&policy, &history);
            prop_assert!(price <= max);
            match fixed {
                Some(fixed) => prop_assert_eq!(price, fixed.min(max)),
                None if history.is_empty() => prop_assert_eq!(price, 0),
                None => {
                    // Always one of the fees seen (or the cap), within their range.
                    let low = *history.iter().min().unwrap();
                    let high = *history.iter().max().unwrap();
                    prop_assert!(price == max || history.contains(&price));
                    prop_assert!(price <= high && (price >= low || price == max));
                }
            }
        }

        #[test]
        fn the_limit_covers_what_was_consumed(units in 0u64..=1_400_000, margin in 0u32..=100) {
            let limit = compute_unit_limit(units, margin);
            prop_assert!(u64::from(limit) >= units.min(u64::from(MAX_COMPUTE_UNIT_LIMIT)));
            prop_assert!((MIN_COMPUTE_UNIT_LIMIT..=MAX_COMPUTE_UNIT_LIMIT).contains(&limit));
        }
    }
}
