//! What the service has fronted and how fast: the limits of sponsored
//! opening, kept as pure bookkeeping with the time passed in, so that every
//! rule is tested without a clock.
//!
//! Exposure is rent fronted for channels not known to be closed. An entry
//! leaves when the service sees its channel gone (its own cooperative close,
//! or a check against the chain before a limit refuses), so the book errs on
//! the side of refusing.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use anchor_lang::prelude::Pubkey;
use serde::Serialize;
use solana_signature::Signature;

use crate::manifest::ErrorCode;

/// The window of the opens-per-minute limits.
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// How long a posted transaction is remembered: longer than a blockhash
/// lives (150 slots, about a minute), after which it cannot land anyway.
const REPLAY_WINDOW: Duration = Duration::from_secs(180);

/// The operator's limits, in lamports and opens per minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    pub funder_opens_per_minute: u32,
    pub opens_per_minute: u32,
    pub funder_exposure: u64,
    pub exposure: u64,
}

/// A channel whose rent the service fronted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fronted {
    funder: Pubkey,
    lamports: u64,
}

/// The service's sponsorship as its status reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SponsorStatus {
    /// Sponsored opens that landed.
    pub opened: u64,
    /// Sponsored top-ups that landed.
    pub topped_up: u64,
    /// Requests refused (every code).
    pub refused: u64,
    /// Channels whose rent is still out.
    pub channels: u64,
    /// Lamports of rent fronted and not yet returned (at most: a channel
    /// closed by someone else counts until the service notices).
    pub exposure: u64,
    /// The cap on that exposure.
    pub exposure_cap: u64,
    /// Lamports paid in fees for sponsored transactions (spent, not returned).
    pub fees: u64,
}

/// The bookkeeping itself.
#[derive(Debug)]
pub(crate) struct Book {
    limits: Limits,
    fronted: HashMap<Pubkey, Fronted>,
    /// Opens admitted in the last minute, oldest first.
    opens: VecDeque<(Instant, Pubkey)>,
    /// Funder signatures of transactions already taken, with when.
    seen: HashMap<Signature, Instant>,
    status: SponsorStatus,
}

/// Which limit would be passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Over {
    FunderRate,
    FunderExposure,
    Rate,
    Exposure,
}

impl Over {
    pub(crate) fn code(self) -> ErrorCode {
        match self {
            Over::FunderRate => ErrorCode::SponsorFunderRate,
            Over::FunderExposure => ErrorCode::SponsorFunderExposure,
            Over::Rate => ErrorCode::SponsorRate,
            Over::Exposure => ErrorCode::SponsorExposure,
        }
    }
}

impl Book {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            fronted: HashMap::new(),
            opens: VecDeque::new(),
            seen: HashMap::new(),
            status: SponsorStatus {
                exposure_cap: limits.exposure,
                ..SponsorStatus::default()
            },
        }
    }

    fn forget_old(&mut self, now: Instant) {
        while let Some((at, _)) = self.opens.front() {
            if now.saturating_duration_since(*at) < RATE_WINDOW {
                break;
            }
            self.opens.pop_front();
        }
        self.seen
            .retain(|_, at| now.saturating_duration_since(*at) < REPLAY_WINDOW);
    }

    /// Whether this transaction (by its funder's signature) was taken before.
    pub(crate) fn is_replay(&mut self, signature: &Signature, now: Instant) -> bool {
        self.forget_old(now);
        self.seen.contains_key(signature)
    }

    /// Rent fronted for `funder`'s channels.
    pub(crate) fn funder_exposure(&self, funder: &Pubkey) -> u64 {
        self.fronted
            .values()
            .filter(|f| f.funder == *funder)
            .fold(0, |sum, f| sum.saturating_add(f.lamports))
    }

    pub(crate) fn exposure(&self) -> u64 {
        self.fronted
            .values()
            .fold(0, |sum, f| sum.saturating_add(f.lamports))
    }

    /// Channels the book counts for `funder` (all with `None`), to check
    /// against the chain before refusing on exposure.
    pub(crate) fn channels_of(&self, funder: Option<&Pubkey>) -> Vec<Pubkey> {
        self.fronted
            .iter()
            .filter(|(_, f)| funder.is_none_or(|funder| f.funder == *funder))
            .map(|(channel, _)| *channel)
            .collect()
    }

    /// The first limit an open by `funder` fronting `rent` would pass.
    pub(crate) fn over(&mut self, funder: &Pubkey, rent: u64, now: Instant) -> Option<Over> {
        self.forget_old(now);
        let by_funder = self.opens.iter().filter(|(_, f)| f == funder).count();
        if by_funder >= self.limits.funder_opens_per_minute as usize {
            return Some(Over::FunderRate);
        }
        if self.funder_exposure(funder).saturating_add(rent) > self.limits.funder_exposure {
            return Some(Over::FunderExposure);
        }
        if self.opens.len() >= self.limits.opens_per_minute as usize {
            return Some(Over::Rate);
        }
        if self.exposure().saturating_add(rent) > self.limits.exposure {
            return Some(Over::Exposure);
        }
        None
    }

    /// Takes an open: counts it against the rate, remembers the transaction
    /// and fronts `rent` (an estimate until [`landed`](Self::landed) says).
    pub(crate) fn take_open(
        &mut self,
        signature: Signature,
        funder: Pubkey,
        channel: Pubkey,
        rent: u64,
        now: Instant,
    ) {
        self.opens.push_back((now, funder));
        self.seen.insert(signature, now);
        self.fronted.insert(
            channel,
            Fronted {
                funder,
                lamports: rent,
            },
        );
    }

    /// A channel found on-chain at start whose rent the service fronted.
    pub(crate) fn fronted_before(&mut self, channel: Pubkey, funder: Pubkey, rent: u64) {
        self.fronted.insert(
            channel,
            Fronted {
                funder,
                lamports: rent,
            },
        );
    }

    /// Takes a top-up (a fee, no rent): counts it against the rates and
    /// remembers the transaction.
    pub(crate) fn take_top_up(&mut self, signature: Signature, funder: Pubkey, now: Instant) {
        self.opens.push_back((now, funder));
        self.seen.insert(signature, now);
    }

    /// The open of `channel` landed, fronting exactly `rent`, for `fee`.
    pub(crate) fn landed(&mut self, channel: &Pubkey, rent: u64, fee: u64) {
        if let Some(entry) = self.fronted.get_mut(channel) {
            entry.lamports = rent;
        }
        self.status.opened += 1;
        self.status.fees = self.status.fees.saturating_add(fee);
    }

    pub(crate) fn topped_up(&mut self, fee: u64) {
        self.status.topped_up += 1;
        self.status.fees = self.status.fees.saturating_add(fee);
    }

    /// The open of `channel` failed for sure: nothing was fronted.
    pub(crate) fn failed(&mut self, channel: &Pubkey) {
        self.fronted.remove(channel);
    }

    /// `channel` is closed: its rent is back.
    pub(crate) fn closed(&mut self, channel: &Pubkey) {
        self.fronted.remove(channel);
    }

    pub(crate) fn refused(&mut self) {
        self.status.refused += 1;
    }

    pub(crate) fn status(&self) -> SponsorStatus {
        SponsorStatus {
            channels: self.fronted.len() as u64,
            exposure: self.exposure(),
            ..self.status.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        funder_opens_per_minute: 2,
        opens_per_minute: 3,
        funder_exposure: 100,
        exposure: 250,
    };

    fn key(n: u8) -> Pubkey {
        Pubkey::new_from_array([n; 32])
    }

    fn sig(n: u8) -> Signature {
        Signature::from([n; 64])
    }

    #[test]
    fn opens_per_minute_per_funder_and_in_total() {
        let t0 = Instant::now();
        let mut book = Book::new(Limits {
            funder_exposure: u64::MAX,
            exposure: u64::MAX,
            ..LIMITS
        });
        book.take_open(sig(1), key(1), key(101), 1, t0);
        book.take_open(sig(2), key(1), key(102), 1, t0);
        assert_eq!(book.over(&key(1), 1, t0), Some(Over::FunderRate));
        assert_eq!(book.over(&key(2), 1, t0), None);
        book.take_open(sig(3), key(2), key(103), 1, t0);
        assert_eq!(book.over(&key(3), 1, t0), Some(Over::Rate));
        // A minute later the window is empty again.
        let later = t0 + RATE_WINDOW;
        assert_eq!(book.over(&key(1), 1, later), None);
        assert_eq!(book.over(&key(3), 1, later), None);
    }

    #[test]
    fn exposure_per_funder_and_in_total_until_channels_close() {
        let t0 = Instant::now();
        let mut book = Book::new(Limits {
            funder_opens_per_minute: u32::MAX,
            opens_per_minute: u32::MAX,
            ..LIMITS
        });
        book.take_open(sig(1), key(1), key(101), 60, t0);
        assert_eq!(book.over(&key(1), 40, t0), None);
        assert_eq!(book.over(&key(1), 41, t0), Some(Over::FunderExposure));
        book.take_open(sig(2), key(2), key(102), 100, t0);
        book.take_open(sig(3), key(3), key(103), 90, t0);
        assert_eq!(book.exposure(), 250);
        assert_eq!(book.over(&key(4), 1, t0), Some(Over::Exposure));
        assert_eq!(book.channels_of(Some(&key(2))), vec![key(102)]);
        assert_eq!(book.channels_of(None).len(), 3);
        book.closed(&key(102));
        assert_eq!(book.over(&key(4), 100, t0), None);
        // The estimate becomes the real rent when the open lands.
        book.landed(&key(101), 50, 5_000);
        assert_eq!(book.funder_exposure(&key(1)), 50);
        book.failed(&key(103));
        let status = book.status();
        assert_eq!(
            (status.channels, status.exposure, status.fees),
            (1, 50, 5_000)
        );
        assert_eq!((status.opened, status.exposure_cap), (1, 250));
    }

    #[test]
    fn a_transaction_is_taken_once_while_it_could_land() {
        let t0 = Instant::now();
        let mut book = Book::new(LIMITS);
        assert!(!book.is_replay(&sig(1), t0));
        book.take_open(sig(1), key(1), key(101), 1, t0);
        book.take_top_up(sig(2), key(2), t0);
        assert!(book.is_replay(&sig(1), t0 + Duration::from_secs(179)));
        assert!(book.is_replay(&sig(2), t0 + Duration::from_secs(1)));
        assert!(!book.is_replay(&sig(1), t0 + REPLAY_WINDOW));
    }
}
