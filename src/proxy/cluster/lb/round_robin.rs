//! `ROUND_ROBIN`.
//!
//! Envoy (`round_robin_lb.h`, `EdfLoadBalancerBase` in `load_balancer_impl.cc`) has two modes:
//!
//! * **All weights equal**: a per-worker index that starts at a random `seed_` and is
//!   incremented on every pick, `hosts[index++ % n]`. We do the same with one shared atomic
//!   cursor, also started at a random offset so that proxies (and rebuilt balancers) do not all
//!   hit host 0 first and move in lock step.
//! * **Weights differ**: an EDF scheduler (`edf_scheduler.h`). Each host has a deadline
//!   `current_time + 1/weight`; the earliest deadline is picked and re-inserted; ties go to the
//!   entry inserted first. With static weights this sequence is periodic: within one period of
//!   `Σweights` picks (after dividing by the weights' gcd) every host appears exactly `weight`
//!   times. Envoy recomputes it per pick with a heap behind a per-worker mutable scheduler; we
//!   instead **precompute one period** of exactly that EDF order at build time (exact rational
//!   deadlines instead of floats, so no drift) and walk it with the atomic cursor. The hot path
//!   is then one `fetch_add` plus an array read, with Envoy's proportions and interleaving.
//!
//! Huge weights would make the period huge, so it is capped at [`MAX_SCHEDULE_LEN`] entries by
//! scaling weights down proportionally (each host keeps at least one slot). That keeps memory
//! bounded (256 KiB) at the cost of a relative error of about `n / MAX_SCHEDULE_LEN` in the
//! proportions, which only arises for weight sums above 65536.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{below, effective_weight, weights_are_equal, Endpoint, RandomSource};

/// Cap on the length of a precomputed weighted schedule (one EDF period).
pub(super) const MAX_SCHEDULE_LEN: u64 = 1 << 16;

/// Round robin over one host set.
#[derive(Debug)]
pub(super) struct RoundRobin {
    /// Shared rotation cursor. Relaxed is enough: we need each `fetch_add` to return a distinct
    /// value (atomicity), not ordering with other memory.
    cursor: AtomicU64,
    host_count: u64,
    /// `None` when all weights are equal (plain rotation, like Envoy skipping EDF creation).
    schedule: Option<WeightedSchedule>,
}

impl RoundRobin {
    /// `start` is the random initial cursor (Envoy's `seed_`).
    pub(super) fn new<E: Endpoint>(hosts: &[E], start: u64) -> Self {
        debug_assert!(!hosts.is_empty());
        let schedule = if weights_are_equal(hosts) {
            None
        } else {
            let weights: Vec<u32> = hosts.iter().map(effective_weight).collect();
            Some(WeightedSchedule::new(&weights))
        };
        RoundRobin {
            cursor: AtomicU64::new(start),
            host_count: hosts.len() as u64,
            schedule,
        }
    }

    #[inline]
    pub(super) fn pick(&self) -> usize {
        let c = self.cursor.fetch_add(1, Ordering::Relaxed);
        match &self.schedule {
            None => (c % self.host_count) as usize,
            Some(s) => s.at(c),
        }
    }
}

/// One period of the EDF order for a set of static weights, as host indices.
///
/// Also used by the least-request balancer, both as its static-weight schedule (bias 0) and as a
/// constant-time "pick a host with probability ∝ weight" table.
#[derive(Debug)]
pub(super) struct WeightedSchedule {
    slots: Box<[u32]>,
}

impl WeightedSchedule {
    pub(super) fn new(weights: &[u32]) -> Self {
        let reduced = reduce_weights(weights, MAX_SCHEDULE_LEN);
        WeightedSchedule {
            slots: edf_period(&reduced).into_boxed_slice(),
        }
    }

    /// Host at cursor position `i` (wrapping around the period).
    #[inline]
    pub(super) fn at(&self, i: u64) -> usize {
        self.slots[(i % self.slots.len() as u64) as usize] as usize
    }

    /// A host drawn with probability proportional to its (possibly scaled) weight.
    #[inline]
    pub(super) fn sample<R: RandomSource + ?Sized>(&self, rng: &mut R) -> usize {
        self.slots[below(rng, self.slots.len() as u64) as usize] as usize
    }

    #[cfg(test)]
    pub(super) fn slots(&self) -> &[u32] {
        &self.slots
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Smallest integer weights with the same ratios (divide by the gcd); if their sum still exceeds
/// `cap`, scale them to sum to about `cap`, rounding to nearest and keeping every host >= 1.
fn reduce_weights(weights: &[u32], cap: u64) -> Vec<u64> {
    let g = weights
        .iter()
        .fold(0u64, |g, &w| gcd(g, u64::from(w.max(1))));
    let mut out: Vec<u64> = weights.iter().map(|&w| u64::from(w.max(1)) / g).collect();
    let total: u64 = out.iter().sum();
    if total > cap {
        for w in &mut out {
            let scaled =
                (u128::from(*w) * u128::from(cap) + u128::from(total / 2)) / u128::from(total);
            *w = (scaled as u64).max(1);
        }
        let g = out.iter().fold(0u64, |g, &w| gcd(g, w));
        for w in &mut out {
            *w /= g;
        }
    }
    out
}

/// Heap entry of the EDF simulation: host `host`'s next deadline is `next / weight`.
#[derive(Debug, Eq, PartialEq)]
struct EdfEntry {
    next: u64,
    weight: u64,
    /// FIFO tie breaker, Envoy's `order_offset_`.
    order: u64,
    host: u32,
}

impl Ord for EdfEntry {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        // Exact comparison of next/weight (cross-multiplied; both factors < 2^64 fit in u128).
        let lhs = u128::from(self.next) * u128::from(other.weight);
        let rhs = u128::from(other.next) * u128::from(self.weight);
        // BinaryHeap is a max-heap: reverse so the earliest deadline, then the earliest
        // insertion, is on top.
        lhs.cmp(&rhs).then(self.order.cmp(&other.order)).reverse()
    }
}

impl PartialOrd for EdfEntry {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

/// Runs the EDF scheduler for exactly one period (`Σweights` picks). Deadlines of host `i` are
/// `k / w_i` for `k = 1, 2, …`; the first `Σw` picks are exactly those with deadline <= 1, i.e.
/// each host `w_i` times.
fn edf_period(weights: &[u64]) -> Vec<u32> {
    let total: u64 = weights.iter().sum();
    let mut heap: BinaryHeap<EdfEntry> = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| EdfEntry {
            next: 1,
            weight: w,
            order: i as u64,
            host: i as u32,
        })
        .collect();
    let mut out = Vec::with_capacity(total as usize);
    // Every re-insertion gets the next FIFO order number, after the initial ones.
    for order in (weights.len() as u64..).take(total as usize) {
        let mut e = heap.pop().expect("heap never empties");
        out.push(e.host);
        e.next += 1;
        e.order = order;
        heap.push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{LoadBalancer, PickContext, Policy};
    use super::*;

    fn picks(lb: &LoadBalancer, hosts: &[TestHost], n: usize) -> Vec<usize> {
        (0..n)
            .map(|_| lb.pick(hosts, &PickContext::NONE).unwrap())
            .collect()
    }

    #[test]
    fn equal_weights_rotate_strictly() {
        let hosts = hosts(3, 80);
        let lb = LoadBalancer::new(&Policy::RoundRobin, &hosts);
        let seq = picks(&lb, &hosts, 3000);
        // Strict rotation: each pick is the previous one plus one, modulo 3.
        for w in seq.windows(2) {
            assert_eq!(w[1], (w[0] + 1) % 3, "not a strict rotation");
        }
        let mut counts = [0; 3];
        for &i in &seq {
            counts[i] += 1;
        }
        assert_eq!(counts, [1000, 1000, 1000]);
    }

    #[test]
    fn equal_weights_ignore_magnitude() {
        // Equal non-1 weights are still the unweighted fast path.
        let hosts = weighted(&[5, 5, 5, 5]);
        let lb = LoadBalancer::new(&Policy::RoundRobin, &hosts);
        let seq = picks(&lb, &hosts, 40);
        for w in seq.windows(2) {
            assert_eq!(w[1], (w[0] + 1) % 4);
        }
    }

    #[test]
    fn starting_offset_is_random() {
        let hosts = hosts(8, 80);
        let mut firsts = std::collections::HashSet::new();
        for seed in 0..32 {
            let lb = LoadBalancer::new_with_rng(&Policy::RoundRobin, &hosts, &mut rng(seed));
            firsts.insert(lb.pick(&hosts, &PickContext::NONE).unwrap());
        }
        // 32 independent uniform starts over 8 hosts: P(<= 3 distinct) is about 1e-12.
        assert!(firsts.len() > 3, "starts not spread: {firsts:?}");
    }

    #[test]
    fn weighted_90_10_proportions_and_interleaving() {
        let hosts = weighted(&[90, 10]);
        let lb = LoadBalancer::new(&Policy::RoundRobin, &hosts);
        let seq = picks(&lb, &hosts, 10_000);
        let heavy = seq.iter().filter(|&&i| i == 0).count();
        let share = heavy as f64 / seq.len() as f64;
        assert!((share - 0.9).abs() < 0.01, "heavy share {share}");
        // Period is 10 after gcd reduction, so 10k picks are exact.
        assert_eq!(heavy, 9000);

        // EDF with 9:1 puts the light host once per 10 picks: the heavy host never runs more
        // than 9 in a row, even across period boundaries. (A naive expansion would give 9 then
        // 1; a bad scheduler could give 18.)
        let mut run = 0;
        let mut max_run = 0;
        for &i in &seq {
            if i == 0 {
                run += 1;
                max_run = max_run.max(run);
            } else {
                run = 0;
            }
        }
        assert!(max_run <= 9, "heavy host ran {max_run} times in a row");
        // And the light host is never picked twice in a row.
        assert!(seq.windows(2).all(|w| !(w[0] == 1 && w[1] == 1)));
    }

    #[test]
    fn schedule_matches_envoy_edf_order() {
        // Envoy EdfScheduler with weights 1,2,3 (deadline = now + 1/w, FIFO ties):
        // deadlines h0: 1, 2..; h1: .5, 1, 1.5..; h2: .33, .67, 1, 1.33..
        // order: h2(.33) h1(.5) h2(.67) then three ties at 1.0 broken by insertion order:
        // h0 (inserted first, offset 0), h1 (re-inserted at offset 4), h2 (offset 5).
        let s = WeightedSchedule::new(&[1, 2, 3]);
        assert_eq!(s.slots(), &[2, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn schedule_counts_equal_weights_and_gaps_are_bounded() {
        let weights = [5u32, 3, 2, 7, 1];
        let s = WeightedSchedule::new(&weights);
        let total: u32 = weights.iter().sum();
        assert_eq!(s.slots().len() as u32, total);
        for (h, &w) in weights.iter().enumerate() {
            let positions: Vec<usize> = (0..2 * total as usize)
                .filter(|&i| s.at(i as u64) == h)
                .collect();
            assert_eq!(positions.len() as u32, 2 * w, "host {h}");
            let ideal = (total as f64 / w as f64).ceil() as usize;
            for g in positions.windows(2) {
                assert!(
                    g[1] - g[0] < ideal + weights.len(),
                    "host {h} gap {} ideal {ideal}",
                    g[1] - g[0]
                );
            }
        }
    }

    #[test]
    fn gcd_reduces_period() {
        let s = WeightedSchedule::new(&[100, 200, 300]);
        assert_eq!(s.slots().len(), 6);
    }

    #[test]
    fn huge_weights_are_scaled_but_keep_proportions() {
        let weights = [3_000_000u32, 1_000_000, 1, 999_983];
        let s = WeightedSchedule::new(&weights);
        let len = s.slots().len();
        assert!(
            len as u64 <= MAX_SCHEDULE_LEN + weights.len() as u64,
            "len {len}"
        );
        let total: f64 = weights.iter().map(|&w| w as f64).sum();
        for (h, &w) in weights.iter().enumerate() {
            let count = s.slots().iter().filter(|&&x| x as usize == h).count();
            assert!(count >= 1, "every host keeps a slot");
            if w > 1000 {
                let share = count as f64 / len as f64;
                let want = w as f64 / total;
                assert!((share - want).abs() < 0.001, "host {h}: {share} vs {want}");
            }
        }
    }

    #[test]
    fn sample_is_weight_proportional() {
        let s = WeightedSchedule::new(&[1, 3]);
        let mut r = rng(3);
        let n = 40_000;
        let heavy = (0..n).filter(|_| s.sample(&mut r) == 1).count();
        let share = heavy as f64 / n as f64;
        // sd = sqrt(.75*.25/40000) ~ 0.0022; 0.015 is ~7 sd.
        assert!((share - 0.75).abs() < 0.015, "{share}");
    }
}
