//! `RANDOM`.
//!
//! Envoy's `RandomLoadBalancer::peekOrChoose` (`random_lb.cc`) returns
//! `hosts_to_use[random() % hosts_to_use.size()]`: uniform over the hosts, **ignoring endpoint
//! weights** (weights still matter above it, for locality and priority selection). We do the
//! same, so a cluster behaves identically under meshsim and Envoy. For weight-proportional
//! random picks use `LEAST_REQUEST` with `active_request_bias: 0` and unequal weights (weighted
//! RR), or `RING_HASH` / `MAGLEV` without a hash policy (random hash into a weighted table).

use super::{below, RandomSource};

/// Stateless: all it needs is the host count.
#[derive(Debug)]
pub(super) struct RandomLb;

impl RandomLb {
    #[inline]
    pub(super) fn pick<R: RandomSource + ?Sized>(&self, host_count: usize, rng: &mut R) -> usize {
        below(rng, host_count as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{LoadBalancer, PickContext, Policy};

    /// Chi-square goodness of fit against the uniform distribution.
    fn chi_square(counts: &[usize], n: usize) -> f64 {
        let e = n as f64 / counts.len() as f64;
        counts.iter().map(|&c| (c as f64 - e).powi(2) / e).sum()
    }

    #[test]
    fn uniform_over_hosts() {
        let hosts = hosts(5, 80);
        let lb = LoadBalancer::new(&Policy::Random, &hosts);
        let mut r = rng(17);
        let n = 30_000;
        let mut c = vec![0usize; hosts.len()];
        for _ in 0..n {
            c[lb.pick_with_rng(&hosts, &PickContext::NONE, &mut r)
                .unwrap()] += 1;
        }
        for &x in &c {
            // Expected 6000, sd ~ 69: ±5% is > 4 sd.
            assert!((5700..6300).contains(&x), "{c:?}");
        }
        // 4 degrees of freedom: P(chi2 > 18.47) = 0.001.
        assert!(chi_square(&c, n) < 18.47, "{c:?}");
    }

    #[test]
    fn ignores_weights_like_envoy() {
        let hosts = weighted(&[9, 1]);
        let lb = LoadBalancer::new(&Policy::Random, &hosts);
        let mut r = rng(23);
        let n = 30_000;
        let heavy = (0..n)
            .filter(|_| lb.pick_with_rng(&hosts, &PickContext::NONE, &mut r) == Some(0))
            .count();
        let share = heavy as f64 / n as f64;
        assert!((share - 0.5).abs() < 0.02, "{share}");
    }

    #[test]
    fn thread_local_rng_also_uniform() {
        let hosts = hosts(3, 80);
        let lb = LoadBalancer::new(&Policy::Random, &hosts);
        let mut c = [0usize; 3];
        for _ in 0..30_000 {
            c[lb.pick(&hosts, &PickContext::NONE).unwrap()] += 1;
        }
        for &x in &c {
            // Unseeded, so bounds are ~10 sd wide: cannot flake in practice.
            assert!((9_200..10_800).contains(&x), "{c:?}");
        }
    }
}
