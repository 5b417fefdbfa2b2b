//! When each request of a phase is due, and which template it uses.
//!
//! Open loop: the schedule is fixed before the run and never waits for answers. Request `i`
//! (0-based) of a phase is due when the integral of the rate since the phase's start reaches
//! `i`, so a constant rate `r` puts it at `i / r` and a linear ramp spreads the same number of
//! requests as the area under the ramp. A phase calls for every `i` whose due time falls inside
//! it: `ceil(area)` requests.

use std::time::Duration;

use crate::traffic::plan::Rate;

/// One phase's schedule, relative to the phase's start.
#[derive(Debug, Clone, Copy)]
pub struct PhaseSchedule {
    /// From the start of traffic.
    pub start: Duration,
    pub duration: Duration,
    rate: Rate,
    /// Requests the schedule calls for in this phase.
    pub count: u64,
}

impl PhaseSchedule {
    pub fn new(start: Duration, duration: Duration, rate: Rate) -> PhaseSchedule {
        PhaseSchedule {
            start,
            duration,
            rate,
            count: scheduled_count(rate, duration),
        }
    }

    /// When request `i` is due, from the start of traffic.
    pub fn due(&self, i: u64) -> Duration {
        self.start + self.offset(i)
    }

    /// When request `i` is due, from the phase's start: the `t` where the integral of the rate
    /// over `[0, t]` equals `i`.
    fn offset(&self, i: u64) -> Duration {
        if i == 0 {
            return Duration::ZERO;
        }
        let i = i as f64;
        let seconds = match self.rate {
            Rate::Constant(r) => i / r,
            Rate::Ramp { from, to } => {
                // ∫ rate = from·t + k·t², k = (to − from) / 2D. Solved in the form that stays
                // exact when k is 0 and never divides by zero for i > 0.
                let k = (to - from) / (2.0 * self.duration.as_secs_f64());
                2.0 * i / (from + (from * from + 4.0 * k * i).max(0.0).sqrt())
            }
        };
        // Rounding may land the last request a hair past the end; keep it in its phase.
        Duration::from_secs_f64(seconds).min(self.duration.saturating_sub(Duration::from_nanos(1)))
    }
}

/// How many requests a phase calls for: the integers `i ≥ 0` below the area under the rate.
pub fn scheduled_count(rate: Rate, duration: Duration) -> u64 {
    let area = match rate {
        Rate::Constant(r) => r * duration.as_secs_f64(),
        Rate::Ramp { from, to } => (from + to) / 2.0 * duration.as_secs_f64(),
    };
    if area.is_finite() && area > 0.0 {
        // A tolerance so that 200/s × 1 s is 200, not 201 after rounding in the product.
        (area - 1e-9).ceil().max(0.0) as u64
    } else {
        0
    }
}

/// Smooth weighted round robin (nginx's): deterministic, interleaved, and exact — every run of
/// `sum(weights)` picks contains template `k` exactly `weights[k]` times.
#[derive(Debug, Clone)]
pub struct Mix {
    weights: Vec<i64>,
    current: Vec<i64>,
    total: i64,
}

impl Mix {
    /// `weights` must be non-empty and each at least 1 (the plan is checked before this).
    pub fn new(weights: impl IntoIterator<Item = u32>) -> Mix {
        let weights: Vec<i64> = weights.into_iter().map(i64::from).collect();
        Mix {
            current: vec![0; weights.len()],
            total: weights.iter().sum(),
            weights,
        }
    }

    /// The template index of the next request.
    pub fn next_index(&mut self) -> usize {
        for (c, w) in self.current.iter_mut().zip(&self.weights) {
            *c += w;
        }
        // The largest current weight; ties go to the earlier template.
        let mut best = 0;
        for k in 1..self.current.len() {
            if self.current[k] > self.current[best] {
                best = k;
            }
        }
        self.current[best] -= self.total;
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn constant_rate_is_evenly_spaced_and_counts_exactly() {
        let p = PhaseSchedule::new(secs(2.0), secs(1.0), Rate::Constant(200.0));
        assert_eq!(p.count, 200);
        assert_eq!(p.due(0), secs(2.0));
        assert_eq!(p.due(1), secs(2.005));
        assert_eq!(p.due(199), secs(2.995));
        assert_eq!(scheduled_count(Rate::Constant(0.5), secs(3.0)), 2);
        assert_eq!(scheduled_count(Rate::Constant(3.0), secs(0.5)), 2);
    }

    #[test]
    fn a_ramp_sends_the_area_under_it_and_speeds_up() {
        // 10/s → 200/s over 10 s: (10 + 200) / 2 × 10 = 1050 requests.
        let p = PhaseSchedule::new(
            Duration::ZERO,
            secs(10.0),
            Rate::Ramp {
                from: 10.0,
                to: 200.0,
            },
        );
        assert_eq!(p.count, 1050);
        let gap = |i: u64| p.due(i + 1) - p.due(i);
        assert!(gap(0) > gap(1000), "{:?} vs {:?}", gap(0), gap(1000));
        // The first gap is close to 1/10 s, the last close to 1/200 s.
        assert!((gap(0).as_secs_f64() - 0.1).abs() < 0.01, "{:?}", gap(0));
        assert!(
            (gap(1048).as_secs_f64() - 0.005).abs() < 0.001,
            "{:?}",
            gap(1048)
        );
        assert!(p.due(1049) < secs(10.0));
        // Half the area is reached where the integral says: 10t + 9.5t² = 525.
        let t = p.due(525).as_secs_f64();
        assert!((10.0 * t + 9.5 * t * t - 525.0).abs() < 1e-6, "{t}");
    }

    #[test]
    fn ramps_down_and_from_zero_are_well_defined() {
        let down = PhaseSchedule::new(
            Duration::ZERO,
            secs(4.0),
            Rate::Ramp {
                from: 100.0,
                to: 0.0,
            },
        );
        assert_eq!(down.count, 200);
        let mut last = Duration::ZERO;
        for i in 1..down.count {
            let t = down.due(i);
            assert!(t > last && t < secs(4.0), "request {i} at {t:?}");
            last = t;
        }
        let up = PhaseSchedule::new(
            Duration::ZERO,
            secs(2.0),
            Rate::Ramp {
                from: 0.0,
                to: 10.0,
            },
        );
        assert_eq!(up.count, 10);
        assert_eq!(up.due(0), Duration::ZERO);
        // 2.5 t² = 5 → t = √2.
        assert!((up.due(5).as_secs_f64() - 2f64.sqrt()).abs() < 1e-9);
    }

    #[test]
    fn the_mix_is_exact_and_interleaved() {
        let mut mix = Mix::new([5, 2, 2, 1]);
        let picks: Vec<usize> = (0..200).map(|_| mix.next_index()).collect();
        let count = |k| picks.iter().filter(|&&p| p == k).count();
        assert_eq!([count(0), count(1), count(2), count(3)], [100, 40, 40, 20]);
        // Interleaved, not in blocks: the heaviest never runs more than twice in a row here.
        assert!(!picks.windows(3).any(|w| w == [0, 0, 0]), "{picks:?}");
        let mut single = Mix::new([7]);
        assert!((0..10).all(|_| single.next_index() == 0));
    }
}
