//! Envoy's premature-reset guard (envoyproxy/envoy#30055, after CVE-2023-44487 "Rapid Reset"):
//! a client that resets most of its streams before getting an answer makes the proxy do work
//! (routing, upstream requests) for nothing. Each closed stream is counted per connection; once
//! half of [`TOTAL_STREAM_COUNT`] streams — or half of all closed streams past that — were reset
//! early, the connection is aborted and `downstream_rq_too_many_premature_resets` counted.
//!
//! h2's `max_pending_accept_reset_streams` catches resets that arrive before a stream is even
//! accepted; this catches the slower variant where each stream reaches the HCM first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Envoy's runtime `overload.premature_reset_total_stream_count` default.
pub const TOTAL_STREAM_COUNT: u64 = 500;

/// Envoy's runtime `overload.premature_reset_min_stream_lifetime_seconds` default: a stream
/// reset unanswered within this long is premature.
pub const MIN_STREAM_LIFETIME: Duration = Duration::from_secs(1);

/// Closed and prematurely reset streams of one connection. Streams of an HTTP/2 connection run
/// as separate tasks, hence atomics.
#[derive(Debug, Default)]
pub struct PrematureResets {
    closed: AtomicU64,
    premature: AtomicU64,
}

impl PrematureResets {
    /// Records a closed stream; true when the connection should now be aborted.
    pub fn record(&self, answered: bool, lifetime: Duration) -> bool {
        let closed = self.closed.fetch_add(1, Ordering::Relaxed) + 1;
        let premature = if !answered && lifetime <= MIN_STREAM_LIFETIME {
            self.premature.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.premature.load(Ordering::Relaxed)
        };
        too_many(closed, premature)
    }
}

/// Envoy's `maybeDrainDueToPrematureResets`: before the limit, abort as soon as the limit can
/// no longer be met with fewer than half premature; after it, whenever half are premature.
fn too_many(closed: u64, premature: u64) -> bool {
    if premature == 0 {
        return false;
    }
    if closed < TOTAL_STREAM_COUNT {
        premature * 2 >= TOTAL_STREAM_COUNT
    } else {
        premature * 2 >= closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Duration = Duration::from_millis(5);

    #[test]
    fn answered_streams_never_abort() {
        let r = PrematureResets::default();
        assert!((0..10_000).all(|_| !r.record(true, QUICK)));
    }

    #[test]
    fn half_the_limit_of_early_resets_aborts_before_the_limit() {
        let r = PrematureResets::default();
        let verdicts: Vec<bool> = (0..TOTAL_STREAM_COUNT / 2)
            .map(|_| r.record(false, QUICK))
            .collect();
        assert!(verdicts[..verdicts.len() - 1].iter().all(|v| !v));
        assert!(verdicts[verdicts.len() - 1], "the 250th early reset aborts");
    }

    #[test]
    fn slow_resets_are_not_premature() {
        let r = PrematureResets::default();
        let slow = MIN_STREAM_LIFETIME + Duration::from_millis(1);
        assert!((0..2_000).all(|_| !r.record(false, slow)));
    }

    #[test]
    fn past_the_limit_the_ratio_decides() {
        let r = PrematureResets::default();
        // 600 good streams, then early resets: aborts when resets reach half of all closed.
        for _ in 0..600 {
            assert!(!r.record(true, QUICK));
        }
        let mut resets = 0;
        while !r.record(false, QUICK) {
            resets += 1;
            assert!(resets < 1_000, "never aborted");
        }
        assert_eq!(resets + 1, 600, "600 resets of 1200 closed streams");
        assert!(!too_many(1_000, 499) && too_many(1_000, 500));
    }
}
