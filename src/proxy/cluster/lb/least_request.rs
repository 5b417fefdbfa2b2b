//! `LEAST_REQUEST`.
//!
//! Envoy (`least_request_lb.cc`, `least_request_lb.h`) has two modes:
//!
//! * **All weights equal**: "power of N choices" — sample `choice_count` hosts uniformly at
//!   random (with replacement) and keep the one with the fewest active requests; on a tie the
//!   earlier sample stays. O(1), and nearly as good as a full scan. Reproduced as is.
//! * **Weights differ**: an EDF scheduler whose weights are recomputed each time a host is
//!   picked and re-inserted: `weight / (active_requests + 1)^active_request_bias`. In steady
//!   state a host therefore receives traffic in proportion to that effective weight: more
//!   weight → proportionally more, more in-flight requests → less. Envoy's scheduler is mutable
//!   per-worker state; we cannot mutate on a lock-free shared hot path, so we draw each pick
//!   **at random with probability exactly proportional to the current effective weight** —
//!   the same long-run proportions, using the live gauges at pick time instead of at the
//!   host's previous pick (so it reacts to load changes faster than Envoy, never slower).
//!
//!   The draw is done without allocation: first up to [`REJECTION_TRIES`] rounds of rejection
//!   sampling (propose a host ∝ static weight from the precomputed weighted table in O(1),
//!   accept with probability `(active + 1)^-bias`), which is O(1) while hosts are lightly
//!   loaded; if every proposal is rejected, an exact O(n) scan over the effective weights. Both
//!   stages sample from exactly the target distribution, so their mixture does too. Small host
//!   sets (<= [`SCAN_THRESHOLD`]) go straight to the scan, which is cheaper there.
//!
//!   With `active_request_bias == 0` the effective weight is the static weight and Envoy's EDF
//!   degenerates to weighted round robin; we then use the round robin schedule itself.
//!
//! Not reproduced: Envoy's newer runtime flag that forces the weighted path whenever
//! `active_request_bias` is explicitly configured (our [`super::Policy`] cannot tell explicit
//! from default), `FULL_SCAN` selection, counting pending requests, and slow start.

use super::round_robin::{RoundRobin, WeightedSchedule};
use super::{below, effective_weight, unit_f64, weights_are_equal, Endpoint, RandomSource};

/// Host sets up to this size skip rejection sampling and scan directly.
const SCAN_THRESHOLD: usize = 16;
/// Rejection-sampling rounds before falling back to the exact scan.
const REJECTION_TRIES: u32 = 8;

#[derive(Debug)]
pub(super) struct LeastRequest {
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    /// Equal weights: Envoy's N-choices.
    PowerOfChoices { choice_count: u32 },
    /// Unequal weights, bias 0: static-weight EDF, i.e. weighted round robin.
    Static(RoundRobin),
    /// Unequal weights, bias > 0: probability ∝ weight / (active + 1)^bias.
    Dynamic {
        bias: f64,
        /// O(1) proposal ∝ static weight for the rejection stage.
        proposal: WeightedSchedule,
    },
}

impl LeastRequest {
    /// `choice_count` below 1 is coerced to 1; a negative, NaN or infinite bias to 1.0 (Envoy
    /// logs and uses 1.0 for an invalid runtime value). `rr_start` seeds the bias-0 schedule's
    /// cursor.
    pub(super) fn new<E: Endpoint>(
        hosts: &[E],
        choice_count: u32,
        active_request_bias: f64,
        rr_start: u64,
    ) -> Self {
        debug_assert!(!hosts.is_empty());
        let bias = if active_request_bias.is_nan()
            || active_request_bias < 0.0
            || active_request_bias.is_infinite()
        {
            1.0
        } else {
            active_request_bias
        };
        let mode = if weights_are_equal(hosts) {
            Mode::PowerOfChoices {
                choice_count: choice_count.max(1),
            }
        } else if bias == 0.0 {
            Mode::Static(RoundRobin::new(hosts, rr_start))
        } else {
            let weights: Vec<u32> = hosts.iter().map(effective_weight).collect();
            Mode::Dynamic {
                bias,
                proposal: WeightedSchedule::new(&weights),
            }
        };
        LeastRequest { mode }
    }

    pub(super) fn pick<E: Endpoint, R: RandomSource + ?Sized>(
        &self,
        hosts: &[E],
        rng: &mut R,
    ) -> usize {
        match &self.mode {
            Mode::PowerOfChoices { choice_count } => pick_n_choices(hosts, *choice_count, rng),
            Mode::Static(rr) => rr.pick(),
            Mode::Dynamic { bias, proposal } => pick_weighted(hosts, *bias, proposal, rng),
        }
    }
}

/// Envoy's `unweightedHostPickNChoices`: sample with replacement, strictly fewer active
/// requests wins, ties keep the earlier sample.
fn pick_n_choices<E: Endpoint, R: RandomSource + ?Sized>(
    hosts: &[E],
    choice_count: u32,
    rng: &mut R,
) -> usize {
    let n = hosts.len() as u64;
    let mut best = below(rng, n) as usize;
    let mut best_active = hosts[best].active_requests();
    for _ in 1..choice_count {
        let candidate = below(rng, n) as usize;
        let active = hosts[candidate].active_requests();
        if active < best_active {
            best = candidate;
            best_active = active;
        }
    }
    best
}

/// `(active + 1)^-bias`, the load penalty factor in `(0, 1]`. Envoy avoids overflowing `+1` at
/// `u64::MAX`; saturating does the same.
#[inline]
fn load_factor(active: u64, bias: f64) -> f64 {
    let denom = active.saturating_add(1) as f64;
    if bias == 1.0 {
        1.0 / denom
    } else {
        denom.powf(-bias)
    }
}

/// Draws a host with probability ∝ `weight / (active + 1)^bias`.
fn pick_weighted<E: Endpoint, R: RandomSource + ?Sized>(
    hosts: &[E],
    bias: f64,
    proposal: &WeightedSchedule,
    rng: &mut R,
) -> usize {
    if hosts.len() > SCAN_THRESHOLD {
        for _ in 0..REJECTION_TRIES {
            let i = proposal.sample(rng);
            let active = hosts[i].active_requests();
            let accept = if bias == 1.0 {
                // P = 1/(active+1) exactly, in integers.
                below(rng, active.saturating_add(1)) == 0
            } else {
                unit_f64(rng) < load_factor(active, bias)
            };
            if accept {
                return i;
            }
        }
    }
    scan_weighted(hosts, bias, rng)
}

/// Exact weighted draw over all hosts in two passes, without allocating. The gauges may move
/// between the passes; if that leaves the threshold unreached we return the last host, a bias
/// of at most one pick in a race window.
fn scan_weighted<E: Endpoint, R: RandomSource + ?Sized>(
    hosts: &[E],
    bias: f64,
    rng: &mut R,
) -> usize {
    let effective = |h: &E| f64::from(effective_weight(h)) * load_factor(h.active_requests(), bias);
    let total: f64 = hosts.iter().map(effective).sum();
    let mut threshold = unit_f64(rng) * total;
    for (i, h) in hosts.iter().enumerate() {
        let e = effective(h);
        if threshold < e {
            return i;
        }
        threshold -= e;
    }
    hosts.len() - 1
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{LoadBalancer, PickContext, Policy};
    use super::*;

    fn counts(
        lb: &LoadBalancer,
        hosts: &[TestHost],
        n: usize,
        r: &mut fastrand::Rng,
    ) -> Vec<usize> {
        let mut c = vec![0; hosts.len()];
        for _ in 0..n {
            c[lb.pick_with_rng(hosts, &PickContext::NONE, r).unwrap()] += 1;
        }
        c
    }

    #[test]
    fn p2c_prefers_idle_host() {
        let hosts = hosts(2, 80);
        hosts[0].set_active(50);
        let lb = LoadBalancer::new(&Policy::least_request(), &hosts);
        let c = counts(&lb, &hosts, 10_000, &mut rng(11));
        // The loaded host only wins when both samples land on it: P = 1/4.
        // Binomial(10000, .25): sd ~ 43, so [2200, 2800] is ~7 sd wide each way.
        assert!((2200..=2800).contains(&c[0]), "{c:?}");
        assert_eq!(c[0] + c[1], 10_000);
    }

    #[test]
    fn p2c_with_many_hosts_avoids_the_single_loaded_one() {
        let hosts = hosts(10, 80);
        hosts[3].set_active(100);
        let lb = LoadBalancer::new(&Policy::least_request(), &hosts);
        let c = counts(&lb, &hosts, 20_000, &mut rng(5));
        // Host 3 is picked only if both draws hit it: 1/100 of picks (~200, sd ~14).
        assert!(c[3] < 320, "{c:?}");
        for (i, &x) in c.iter().enumerate() {
            if i != 3 {
                // ~ (20000 - 200) / 9 = 2200 each.
                assert!((1900..2500).contains(&x), "host {i}: {c:?}");
            }
        }
    }

    #[test]
    fn p2c_ties_pick_uniformly() {
        let hosts = hosts(4, 80);
        let lb = LoadBalancer::new(&Policy::least_request(), &hosts);
        let c = counts(&lb, &hosts, 40_000, &mut rng(9));
        for &x in &c {
            assert!((9_300..10_700).contains(&x), "{c:?}");
        }
    }

    #[test]
    fn larger_choice_count_is_stricter() {
        let hosts = hosts(4, 80);
        hosts[0].set_active(5);
        hosts[1].set_active(5);
        hosts[2].set_active(5);
        let lb = LoadBalancer::new(
            &Policy::LeastRequest {
                choice_count: 8,
                active_request_bias: 1.0,
            },
            &hosts,
        );
        let c = counts(&lb, &hosts, 10_000, &mut rng(2));
        // Idle host 3 is missed only if all 8 samples avoid it: (3/4)^8 ~ 10%.
        assert!(c[3] > 8_500, "{c:?}");
    }

    #[test]
    fn weighted_idle_hosts_follow_weights() {
        let hosts = weighted(&[3, 1]);
        let lb = LoadBalancer::new(&Policy::least_request(), &hosts);
        let c = counts(&lb, &hosts, 40_000, &mut rng(1));
        let share = c[0] as f64 / 40_000.0;
        // sd ~ 0.0022
        assert!((share - 0.75).abs() < 0.015, "{share}");
    }

    #[test]
    fn weighted_loaded_host_gets_less() {
        // Weights 2:1:1, host 0 has 3 in flight: effective 2/4 : 1 : 1 => 0.2 : 0.4 : 0.4.
        let hosts = weighted(&[2, 1, 1]);
        hosts[0].set_active(3);
        let lb = LoadBalancer::new(&Policy::least_request(), &hosts);
        let n = 50_000;
        let c = counts(&lb, &hosts, n, &mut rng(4));
        let s: Vec<f64> = c.iter().map(|&x| x as f64 / n as f64).collect();
        assert!((s[0] - 0.2).abs() < 0.012, "{s:?}");
        assert!((s[1] - 0.4).abs() < 0.015, "{s:?}");
        assert!((s[2] - 0.4).abs() < 0.015, "{s:?}");
    }

    #[test]
    fn weighted_bias_exponent_is_applied() {
        // Bias 2: effective 4/(1+1)^2 = 1 vs 1/(0+1)^2 = 1 => 50/50.
        let hosts = weighted(&[4, 1]);
        hosts[0].set_active(1);
        let lb = LoadBalancer::new(
            &Policy::LeastRequest {
                choice_count: 2,
                active_request_bias: 2.0,
            },
            &hosts,
        );
        let n = 40_000;
        let c = counts(&lb, &hosts, n, &mut rng(8));
        let share = c[0] as f64 / n as f64;
        assert!((share - 0.5).abs() < 0.015, "{share}");
    }

    #[test]
    fn weighted_large_host_set_uses_rejection_and_stays_exact() {
        // 40 hosts (> SCAN_THRESHOLD): weights alternate 1/3; every 4th host heavily loaded.
        let weights: Vec<u32> = (0..40).map(|i| if i % 2 == 0 { 1 } else { 3 }).collect();
        let hosts = weighted(&weights);
        for (i, h) in hosts.iter().enumerate() {
            if i % 4 == 1 {
                h.set_active(9); // weight 3 / 10
            }
        }
        let expected: Vec<f64> = hosts
            .iter()
            .map(|h| f64::from(h.weight) / (h.active_requests() as f64 + 1.0))
            .collect();
        let total: f64 = expected.iter().sum();
        let lb = LoadBalancer::new(&Policy::least_request(), &hosts);
        let n = 200_000;
        let c = counts(&lb, &hosts, n, &mut rng(21));
        // Compare per weight/load class, which pools enough picks for tight bounds.
        for class in 0..4 {
            let got: usize = (0..40).filter(|i| i % 4 == class).map(|i| c[i]).sum();
            let want: f64 = (0..40)
                .filter(|i| i % 4 == class)
                .map(|i| expected[i])
                .sum::<f64>()
                / total;
            let share = got as f64 / n as f64;
            assert!(
                (share - want).abs() < 0.01,
                "class {class}: {share} vs {want}"
            );
        }
    }

    #[test]
    fn all_heavily_loaded_falls_back_to_scan_and_still_balances() {
        // Everything loaded: rejection mostly fails, the scan must keep weight proportions.
        let weights: Vec<u32> = (0..32).map(|i| if i < 16 { 1 } else { 3 }).collect();
        let hosts = weighted(&weights);
        for h in &hosts {
            h.set_active(1000);
        }
        let lb = LoadBalancer::new(&Policy::least_request(), &hosts);
        let n = 40_000;
        let c = counts(&lb, &hosts, n, &mut rng(13));
        let heavy: usize = c[16..].iter().sum();
        let share = heavy as f64 / n as f64;
        assert!((share - 0.75).abs() < 0.015, "{share}");
    }

    #[test]
    fn bias_zero_is_weighted_round_robin() {
        let hosts = weighted(&[3, 1]);
        hosts[0].set_active(1000); // ignored with bias 0
        let lb = LoadBalancer::new(
            &Policy::LeastRequest {
                choice_count: 2,
                active_request_bias: 0.0,
            },
            &hosts,
        );
        let seq: Vec<usize> = (0..400)
            .map(|_| lb.pick(&hosts, &PickContext::NONE).unwrap())
            .collect();
        assert_eq!(seq.iter().filter(|&&i| i == 0).count(), 300);
    }

    #[test]
    fn load_factor_values() {
        assert_eq!(load_factor(0, 1.0), 1.0);
        assert_eq!(load_factor(3, 1.0), 0.25);
        assert_eq!(load_factor(3, 0.5), 0.5);
        assert!(load_factor(u64::MAX, 1.0) > 0.0);
    }
}
