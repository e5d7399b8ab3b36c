//! Faults on demand, for tests of retry, re-broadcast and expiry: all off
//! unless asked for (`amp localnet --fault-...`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Which faults to inject, and how often.
#[derive(Clone, Debug, Default)]
pub struct FaultConfig {
    /// Share of `sendTransaction` calls answered with a signature but never
    /// landed (0.0 to 1.0).
    pub drop_sends: f64,
    /// Land every sent transaction this long after it was sent (its
    /// blockhash may expire meanwhile).
    pub confirm_delay: Option<Duration>,
    /// Share of HTTP calls answered `503 Service Unavailable`.
    pub error_rate: f64,
    /// Share of HTTP calls held for `stall_for` before being answered.
    pub stall_rate: f64,
    /// How long a stalled call is held.
    pub stall_for: Duration,
    /// How long a pause (SIGUSR1, or [`Faults::pause`]) or a blackhole
    /// (SIGUSR2, or [`Faults::blackhole`]) lasts.
    pub pause_for: Duration,
    /// Seed for the fault draws (runs are repeatable).
    pub seed: u64,
}

pub struct Faults {
    config: FaultConfig,
    rng: Mutex<u64>,
    paused_until: Mutex<Option<Instant>>,
    blackhole_until: Mutex<Option<Instant>>,
}

impl Faults {
    pub fn new(config: FaultConfig) -> Self {
        let seed = config.seed | 1;
        Self {
            config,
            rng: Mutex::new(seed),
            paused_until: Mutex::new(None),
            blackhole_until: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// Draws with probability `share` (xorshift64*: repeatable, no dependency).
    fn draw(&self, share: f64) -> bool {
        if share <= 0.0 {
            return false;
        }
        let mut state = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        let value = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        (value as f64 / (1u64 << 53) as f64) < share
    }

    /// Whether to drop this `sendTransaction` (always, inside a blackhole).
    pub fn drop_send(&self) -> bool {
        let blackhole = self
            .blackhole_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|until| Instant::now() < until);
        blackhole || self.draw(self.config.drop_sends)
    }

    /// Drops every sent transaction for the configured time while slots go
    /// on, so that what is sent meanwhile expires with its blockhash.
    pub fn blackhole(&self) {
        let until = Instant::now() + self.config.pause_for;
        *self
            .blackhole_until
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(until);
        tracing::warn!(
            seconds = self.config.pause_for.as_secs_f64(),
            "localnet fault: dropping every sent transaction"
        );
    }

    pub fn confirm_delay(&self) -> Option<Duration> {
        self.config.confirm_delay
    }

    pub fn fail_call(&self) -> bool {
        self.draw(self.config.error_rate)
    }

    pub fn stall(&self) -> Option<Duration> {
        self.draw(self.config.stall_rate)
            .then_some(self.config.stall_for)
    }

    /// Stops answering and producing slots for the configured pause.
    pub fn pause(&self) {
        let until = Instant::now() + self.config.pause_for;
        *self.paused_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(until);
        tracing::warn!(
            seconds = self.config.pause_for.as_secs_f64(),
            "localnet fault: pausing the node"
        );
    }

    /// Whether the node is paused now.
    pub fn paused(&self) -> bool {
        self.paused_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|until| Instant::now() < until)
    }

    pub async fn wait_while_paused(&self) {
        loop {
            let until = *self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
            match until {
                Some(until) if Instant::now() < until => {
                    tokio::time::sleep_until(until.into()).await;
                }
                _ => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_follow_the_share_and_none_is_never() {
        let faults = Faults::new(FaultConfig {
            drop_sends: 0.3,
            seed: 7,
            ..FaultConfig::default()
        });
        let hits = (0..10_000).filter(|_| faults.drop_send()).count();
        assert!((2_700..3_300).contains(&hits), "{hits}");
        assert!(!(0..1000).any(|_| faults.fail_call()));
    }
}
