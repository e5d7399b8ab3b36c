//! How the client reacts to a service's AMP refusal: decided here once, for
//! a paid request and for a credential posted on its own (credit, close),
//! so both retry the same seq races and re-sign for the same `required`.
//!
//! The decision is pure (the refusal, the lane's terms, the retries left);
//! the caller then does what it says (`AmpClient::fix` in `signing`).

use crate::manifest::{ErrorBody, ErrorCode, Manifest};

/// What to do about one refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reaction {
    /// Sign again on the same lane, after the fix.
    Retry(Fix),
    /// The lane is gone (closing, closed or unknown to the service): learn
    /// why, and pay through another lane.
    Reopen,
    /// Final: hand the refusal back to the caller.
    GiveUp,
}

/// What must change before signing again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fix {
    /// Nothing but a fresh seq (a seq race).
    FreshSeq,
    /// Sign at least `required`: what is owed plus this request.
    Cover(u64),
    /// The lane is below the service's minimum deposit: fund it up to this limit.
    RaiseLimit(u64),
    /// The amount is above what the lane can pay as the service sees it:
    /// read the lane's limit again (it may have been topped up).
    RefreshLimit,
}

/// A decision: what the refusal teaches and what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    /// What the lane owes at least, per the service, to record before anything else.
    pub owed: Option<u64>,
    pub reaction: Reaction,
}

/// The retries one request (or one posted credential) has left, and what
/// it may do to its lane.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RefusalPolicy {
    seq_retries: u32,
    retries: u32,
    /// Whether the caller may fund, re-read or replace its lane. A paid
    /// request may; a credential posted on the side may not (a stream's
    /// payment or a close must not open or top up a lane by itself).
    repairs: bool,
}

impl RefusalPolicy {
    /// For a paid request: the policy's seq retries, and two repairs (a
    /// lane may need both a top-up and a new amount).
    pub(crate) fn for_request(seq_retries: u32) -> Self {
        Self {
            seq_retries,
            retries: 2,
            repairs: true,
        }
    }

    /// For a credential posted on its own: seq retries, and one re-signing.
    pub(crate) fn for_posted(seq_retries: u32) -> Self {
        Self {
            seq_retries,
            retries: 1,
            repairs: false,
        }
    }

    /// Decides how to react to `refusal` on a lane whose service's terms
    /// allow a request to cost up to `slack` beyond what is owed (see
    /// [`slack`]); `can_reopen` says whether the lane is the agent's own
    /// and it has a wallet to open another.
    pub(crate) fn decide(&mut self, refusal: &ErrorBody, slack: u64, can_reopen: bool) -> Decision {
        let reaction = self.react(refusal, slack, can_reopen);
        // A paid request learns every figure of what is owed, since its next
        // credential must cover it. A posted credential learns it only when
        // re-signing for it: a stream's meter accounts for the service's
        // figure itself (`stream::State::absorb_raise`).
        let learns = self.repairs || matches!(reaction, Reaction::Retry(Fix::Cover(_)));
        Decision {
            owed: refusal.owed.filter(|_| learns),
            reaction,
        }
    }

    fn react(&mut self, refusal: &ErrorBody, slack: u64, can_reopen: bool) -> Reaction {
        match refusal.error {
            ErrorCode::InvalidSeq if self.seq_retries > 0 => {
                self.seq_retries -= 1;
                Reaction::Retry(Fix::FreshSeq)
            }
            ErrorCode::Underfunded if self.retries > 0 => {
                let fix = match (refusal.required, refusal.owed) {
                    (Some(required), Some(owed)) if plausible(required, owed, slack) => {
                        Fix::Cover(required)
                    }
                    (Some(required), None) if self.repairs => Fix::RaiseLimit(required),
                    (None, _) if self.repairs => Fix::RefreshLimit,
                    // A `required` beyond any price (a misconfigured
                    // service) is not signed.
                    _ => return Reaction::GiveUp,
                };
                self.retries -= 1;
                Reaction::Retry(fix)
            }
            ErrorCode::NoChannel | ErrorCode::Closed
                if self.retries > 0 && self.repairs && can_reopen =>
            {
                self.retries -= 1;
                Reaction::Reopen
            }
            _ => Reaction::GiveUp,
        }
    }
}

/// The most one request can add to what a lane owes under `manifest`: its
/// highest price, or the credit a metered response may use.
pub(crate) fn slack(manifest: &Manifest) -> u64 {
    let pricing = &manifest.pricing;
    pricing
        .routes
        .values()
        .map(|p| p.rate)
        .fold(pricing.default.rate, u64::max)
        .max(manifest.credit)
}

/// Whether a service's `required` is what a request can cost beyond what
/// it says is owed.
fn plausible(required: u64, owed: u64, slack: u64) -> bool {
    required <= owed.saturating_add(slack)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Price, Pricing, PricingMode};
    use anchor_lang::prelude::Pubkey;

    fn refusal(error: ErrorCode, required: Option<u64>, owed: Option<u64>) -> ErrorBody {
        let mut body = ErrorBody::new(error, "test");
        body.required = required;
        body.owed = owed;
        body
    }

    fn retry(fix: Fix, owed: Option<u64>) -> Decision {
        Decision {
            owed,
            reaction: Reaction::Retry(fix),
        }
    }

    #[test]
    fn seq_races_are_retried_as_often_as_the_policy_says() {
        for mut policy in [RefusalPolicy::for_request(2), RefusalPolicy::for_posted(2)] {
            let race = refusal(ErrorCode::InvalidSeq, None, None);
            assert_eq!(policy.decide(&race, 10, true), retry(Fix::FreshSeq, None));
            assert_eq!(policy.decide(&race, 10, true), retry(Fix::FreshSeq, None));
            assert_eq!(policy.decide(&race, 10, true).reaction, Reaction::GiveUp);
        }
    }

    #[test]
    fn a_plausible_required_is_covered_by_both() {
        let underfunded = refusal(ErrorCode::Underfunded, Some(110), Some(100));
        let mut request = RefusalPolicy::for_request(0);
        let mut posted = RefusalPolicy::for_posted(0);
        assert_eq!(
            request.decide(&underfunded, 10, true),
            retry(Fix::Cover(110), Some(100))
        );
        assert_eq!(
            posted.decide(&underfunded, 10, false),
            retry(Fix::Cover(110), Some(100))
        );
        // A posted credential re-signs once, a request twice.
        assert_eq!(
            posted.decide(&underfunded, 10, false),
            Decision {
                owed: None,
                reaction: Reaction::GiveUp
            }
        );
        assert_eq!(
            request.decide(&underfunded, 10, true),
            retry(Fix::Cover(110), Some(100))
        );
        assert_eq!(
            request.decide(&underfunded, 10, true).reaction,
            Reaction::GiveUp
        );
    }

    #[test]
    fn a_required_beyond_any_price_is_not_signed() {
        let greedy = refusal(ErrorCode::Underfunded, Some(111), Some(100));
        let mut request = RefusalPolicy::for_request(1);
        // The request still learns what is owed; it just does not pay more.
        assert_eq!(
            request.decide(&greedy, 10, true),
            Decision {
                owed: Some(100),
                reaction: Reaction::GiveUp
            }
        );
        let mut posted = RefusalPolicy::for_posted(1);
        assert_eq!(posted.decide(&greedy, 10, false).owed, None);
    }

    #[test]
    fn only_a_request_funds_rereads_or_replaces_its_lane() {
        let below_minimum = refusal(ErrorCode::Underfunded, Some(500), None);
        let over_limit = refusal(ErrorCode::Underfunded, None, Some(40));
        let gone = refusal(ErrorCode::Closed, None, None);
        let mut request = RefusalPolicy::for_request(1);
        assert_eq!(
            request.decide(&below_minimum, 10, true),
            retry(Fix::RaiseLimit(500), None)
        );
        assert_eq!(
            request.decide(&over_limit, 10, true),
            retry(Fix::RefreshLimit, Some(40))
        );
        assert_eq!(request.decide(&gone, 10, true).reaction, Reaction::GiveUp);
        let mut request = RefusalPolicy::for_request(1);
        assert_eq!(request.decide(&gone, 10, false).reaction, Reaction::GiveUp);
        assert_eq!(request.decide(&gone, 10, true).reaction, Reaction::Reopen);
        let unknown = refusal(ErrorCode::NoChannel, None, None);
        assert_eq!(
            request.decide(&unknown, 10, true).reaction,
            Reaction::Reopen
        );
        let mut posted = RefusalPolicy::for_posted(1);
        for body in [below_minimum, over_limit, gone] {
            assert_eq!(posted.decide(&body, 10, true).reaction, Reaction::GiveUp);
        }
    }

    #[test]
    fn other_refusals_are_final() {
        let mut request = RefusalPolicy::for_request(5);
        for code in [
            ErrorCode::Malformed,
            ErrorCode::WrongChannel,
            ErrorCode::InvalidSig,
            ErrorCode::Expired,
            ErrorCode::RateExceeded,
            ErrorCode::Unavailable,
        ] {
            let body = refusal(code, Some(1), Some(1));
            assert_eq!(request.decide(&body, 10, true).reaction, Reaction::GiveUp);
        }
    }

    #[test]
    fn slack_is_the_highest_price_or_the_credit() {
        let key = Pubkey::new_from_array([1; 32]);
        let price = |rate| Price {
            mode: PricingMode::PerCall,
            rate,
        };
        let mut manifest = Manifest {
            amp_version: "1".into(),
            network: "solana:localnet".into(),
            program_id: amp_channel::ID,
            recipient: key,
            mints: vec![],
            min_deposit: 0,
            min_grace_period: 60,
            credit: 0,
            pricing: Pricing {
                default: price(5),
                routes: [("/a".to_owned(), price(7)), ("/b".to_owned(), price(3))]
                    .into_iter()
                    .collect(),
                tokens: Default::default(),
                methods: Default::default(),
            },
            sponsor: None,
            session: None,
        };
        assert_eq!(slack(&manifest), 7);
        manifest.credit = 50;
        assert_eq!(slack(&manifest), 50);
    }
}
