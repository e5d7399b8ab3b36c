//! What the paywall adds to a request, measured around it: an outer
//! middleware times the whole request, an inner one (behind the paywall)
//! the handler, and the difference is the paywall's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amp_sdk::server::Payment;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;

/// Percentiles of a duration sample, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub p50_us: u64,
    pub p99_us: u64,
    pub samples: u32,
}

impl Percentiles {
    pub(super) fn of(mut samples: Vec<Duration>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            // Nearest rank.
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            u64::try_from(samples[rank - 1].as_micros()).unwrap_or(u64::MAX)
        };
        Self {
            p50_us: at(0.50),
            p99_us: at(0.99),
            samples: u32::try_from(samples.len()).unwrap_or(u32::MAX),
        }
    }
}

/// Per-request timing: the outer middleware measures the whole request, the
/// inner one (behind the paywall) the handler; the difference is what the
/// paywall added.
#[derive(Default)]
pub(super) struct Timings {
    overheads: Mutex<Vec<Duration>>,
}

impl Timings {
    pub(super) fn samples(&self) -> Vec<Duration> {
        self.overheads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Set by the inner middleware: nanoseconds the handler took, for a paid request.
#[derive(Clone, Default)]
struct HandlerTime(Arc<AtomicU64>);

pub(super) async fn time_request(
    axum::extract::State(timings): axum::extract::State<Arc<Timings>>,
    mut request: Request,
    next: Next,
) -> Response {
    let handler = HandlerTime::default();
    request.extensions_mut().insert(handler.clone());
    let started = Instant::now();
    let response = next.run(request).await;
    let total = started.elapsed();
    let inner = handler.0.load(Ordering::Acquire);
    if inner > 0 {
        let overhead = total.saturating_sub(Duration::from_nanos(inner));
        timings
            .overheads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(overhead);
    }
    response
}

pub(super) async fn mark_handler(request: Request, next: Next) -> Response {
    let paid = request.extensions().get::<Payment>().is_some();
    let handler = request.extensions().get::<HandlerTime>().cloned();
    let started = Instant::now();
    let response = next.run(request).await;
    if let (true, Some(handler)) = (paid, handler) {
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        handler.0.store(nanos.max(1), Ordering::Release);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let samples = (1..=100).map(Duration::from_micros).collect();
        let p = Percentiles::of(samples);
        assert_eq!((p.p50_us, p.p99_us, p.samples), (50, 99, 100));
        assert_eq!(Percentiles::of(vec![]), Percentiles::default());
        let one = Percentiles::of(vec![Duration::from_micros(7)]);
        assert_eq!((one.p50_us, one.p99_us), (7, 7));
    }
}
