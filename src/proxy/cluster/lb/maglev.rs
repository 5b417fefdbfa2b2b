//! `MAGLEV`, bit-compatible with Envoy's `maglev_lb.cc` (paper: Eisenbud et al., "Maglev: A
//! Fast and Reliable Software Network Load Balancer", NSDI 2016, §3.4, pseudocode listing 1).
//!
//! Same hosts and keys → the same table as Envoy → the same host for a given request hash.
//!
//! Construction (`MaglevTable::constructMaglevTableInternal` + `OriginalMaglevTable`):
//! 1. Normalise weights to sum to 1 and take the maximum.
//! 2. Sort hosts by hash key, so the table does not depend on the order in which the control
//!    plane or DNS listed the hosts.
//! 3. Per host: `offset = xxHash64(key, seed 0) % M`, `skip = xxHash64(key, seed 1) % (M - 1) +
//!    1`. Since `M` is prime, `offset + j·skip (mod M)` visits every slot: the host's preference
//!    list.
//! 4. Round-robin over the hosts in iterations `1, 2, …`; a host takes a turn only when
//!    `iteration · weight >= target`, after which `target += max_weight`. The heaviest host
//!    claims a slot every iteration, one with a third of its weight every third. On its turn a
//!    host takes the next still-empty slot of its preference list. Stop when the table is full.
//!
//! Lookup is `table[hash % M]`. On a host-selection retry Envoy flips the hash with
//! `hash ^= ~0 - attempt + 1`; so do we.
//!
//! The table stores `u32` host indices (Envoy's "compact" variant stores bit-packed indices; the
//! result is the same table). Bounded load (`hash_balance_factor`) is not implemented.

use xxhash_rust::xxh64::xxh64;

use super::{effective_weight, Endpoint, DEFAULT_MAGLEV_TABLE_SIZE, MAX_MAGLEV_TABLE_SIZE};

#[derive(Debug)]
pub(super) struct Maglev {
    table: Box<[u32]>,
}

/// Per-host state while filling the table (Envoy's `TableBuildEntry`).
struct BuildEntry {
    host: u32,
    skip: u64,
    weight: f64,
    target_weight: f64,
    /// Current position in the preference list, `(offset + next·skip) % M` kept incrementally
    /// so the product never overflows.
    position: u64,
}

/// Envoy's `Primes::isPrime`: trial division, fine for table sizes up to ~5M.
pub(super) fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n < 4 {
        return true;
    }
    if n.is_multiple_of(2) {
        return false;
    }
    let mut d = 3;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

/// Coerces an invalid table size (see [`super::LoadBalancer::new`]): 0 becomes the default,
/// anything else the next prime, capped at Envoy's maximum (itself prime).
fn coerce_table_size(size: u64) -> u64 {
    if size == 0 {
        return DEFAULT_MAGLEV_TABLE_SIZE;
    }
    let mut m = size.clamp(2, MAX_MAGLEV_TABLE_SIZE);
    while !is_prime(m) {
        m += 1;
    }
    m
}

impl Maglev {
    pub(super) fn new<E: Endpoint>(hosts: &[E], table_size: u64) -> Self {
        debug_assert!(!hosts.is_empty());
        let m = coerce_table_size(table_size);

        // normalizeHostWeights(): weight * 1.0 / sum, tracking the maximum (starting at 0.0).
        let sum: u64 = hosts.iter().map(|h| u64::from(effective_weight(h))).sum();
        let normalized: Vec<f64> = hosts
            .iter()
            .map(|h| f64::from(effective_weight(h)) * 1.0 / sum as f64)
            .collect();
        let max_normalized = normalized.iter().copied().fold(0.0f64, f64::max);

        // Stable order: by key (Envoy sorts (key, host pointer, weight) tuples; equal keys are
        // broken by pointer there, by input index here).
        let mut order: Vec<usize> = (0..hosts.len()).collect();
        order.sort_by(|&a, &b| hosts[a].hash_key().cmp(hosts[b].hash_key()).then(a.cmp(&b)));

        let mut entries: Vec<BuildEntry> = order
            .iter()
            .map(|&i| {
                let key = hosts[i].hash_key().as_bytes();
                BuildEntry {
                    host: i as u32,
                    skip: xxh64(key, 1) % (m - 1) + 1,
                    weight: normalized[i],
                    target_weight: 0.0,
                    position: xxh64(key, 0) % m,
                }
            })
            .collect();

        const EMPTY: u32 = u32::MAX;
        let mut table = vec![EMPTY; m as usize];
        let mut filled: u64 = 0;
        let mut iteration: u64 = 1;
        while filled < m {
            for entry in entries.iter_mut() {
                if filled >= m {
                    break;
                }
                if (iteration as f64) * entry.weight < entry.target_weight {
                    continue;
                }
                entry.target_weight += max_normalized;
                while table[entry.position as usize] != EMPTY {
                    entry.position = (entry.position + entry.skip) % m;
                }
                table[entry.position as usize] = entry.host;
                entry.position = (entry.position + entry.skip) % m;
                filled += 1;
            }
            iteration += 1;
        }

        Maglev {
            table: table.into_boxed_slice(),
        }
    }

    pub(super) fn pick(&self, mut hash: u64, attempt: u32) -> Option<usize> {
        if self.table.is_empty() {
            return None;
        }
        if attempt > 0 {
            // Envoy: hash ^= ~0ULL - attempt + 1, i.e. xor with -attempt: flips most bits, so
            // successive retries land far apart in the table.
            hash ^= u64::from(attempt).wrapping_neg();
        }
        Some(self.table[(hash % self.table.len() as u64) as usize] as usize)
    }

    #[cfg(test)]
    fn table(&self) -> &[u32] {
        &self.table
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{hash_str, LoadBalancer, PickContext, Policy};
    use super::*;

    fn counts(t: &Maglev, n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for &h in t.table() {
            c[h as usize] += 1;
        }
        c
    }

    /// Golden table from Envoy's `MaglevLoadBalancerTest.Basic` (table size 7).
    #[test]
    fn matches_envoy_basic_table() {
        let hosts = hosts(6, 90);
        let t = Maglev::new(&hosts, 7);
        assert_eq!(t.table(), &[2, 4, 0, 1, 5, 0, 3]);
        let c = counts(&t, 6);
        assert_eq!(c.iter().min(), Some(&1));
        assert_eq!(c.iter().max(), Some(&2));
        let lb = LoadBalancer::new(&Policy::Maglev { table_size: 7 }, &hosts);
        for i in 0..21u64 {
            assert_eq!(
                lb.pick(&hosts, &PickContext::with_hash(i)),
                Some([2, 4, 0, 1, 5, 0, 3][(i % 7) as usize])
            );
        }
    }

    /// Envoy's `BasicWithHostName`: hostnames "90".."95" as keys.
    #[test]
    fn matches_envoy_hostname_table() {
        let hosts: Vec<TestHost> = (90..96).map(|p| TestHost::new(p.to_string(), 1)).collect();
        assert_eq!(Maglev::new(&hosts, 7).table(), &[2, 5, 0, 3, 4, 1, 0]);
    }

    /// Envoy's `Weighted`: weights 1 and 2, table size 17, 6 and 11 entries.
    #[test]
    fn matches_envoy_weighted_table() {
        let hosts = vec![
            TestHost::new("127.0.0.1:90", 1),
            TestHost::new("127.0.0.1:91", 2),
        ];
        let t = Maglev::new(&hosts, 17);
        assert_eq!(
            t.table(),
            &[1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 0, 1]
        );
        assert_eq!(counts(&t, 2), vec![6, 11]);
    }

    /// Envoy's `BasicStability`: host order does not matter.
    #[test]
    fn input_order_does_not_change_assignment() {
        let hosts = hosts(6, 90);
        let shuffled: Vec<TestHost> = [3, 0, 5, 1, 4, 2]
            .iter()
            .map(|&i| TestHost::new(hosts[i].key.clone(), 1))
            .collect();
        let a = Maglev::new(&hosts, 65537);
        let b = Maglev::new(&shuffled, 65537);
        for h in 0..5000u64 {
            let x = hash_str(&h.to_string());
            let ha = &hosts[a.pick(x, 0).unwrap()].key;
            let hb = &shuffled[b.pick(x, 0).unwrap()].key;
            assert_eq!(ha, hb);
        }
    }

    /// Envoy's `BasicWithRetryHostPredicate`: hash 10 → host 1; attempt 1 → host 0; attempt 2 →
    /// host 5.
    #[test]
    fn retry_attempts_match_envoy() {
        let hosts = hosts(6, 90);
        let t = Maglev::new(&hosts, 7);
        assert_eq!(t.pick(10, 0), Some(1));
        assert_eq!(t.pick(10, 1), Some(0));
        assert_eq!(t.pick(10, 2), Some(5));
    }

    #[test]
    fn default_table_is_balanced() {
        let hosts = hosts(3, 80);
        let t = Maglev::new(&hosts, DEFAULT_MAGLEV_TABLE_SIZE);
        let c = counts(&t, 3);
        // Unweighted Maglev fills round-robin: entry counts differ by at most 1.
        assert!(
            c.iter().max().unwrap() - c.iter().min().unwrap() <= 1,
            "{c:?}"
        );
    }

    #[test]
    fn weights_are_respected() {
        let hosts = weighted(&[1, 2, 3, 4]);
        let t = Maglev::new(&hosts, DEFAULT_MAGLEV_TABLE_SIZE);
        let c = counts(&t, 4);
        for (i, &x) in c.iter().enumerate() {
            let share = x as f64 / DEFAULT_MAGLEV_TABLE_SIZE as f64;
            let want = (i + 1) as f64 / 10.0;
            assert!((share - want).abs() < 0.002, "{c:?}");
        }
    }

    #[test]
    fn deterministic_same_key_same_host() {
        let hosts = hosts(5, 8080);
        let a = LoadBalancer::new(&Policy::maglev(), &hosts);
        let b = LoadBalancer::new(&Policy::maglev(), &hosts);
        for i in 0..2000 {
            let ctx = PickContext::with_hash(hash_str(&format!("session-{i}")));
            assert_eq!(a.pick(&hosts, &ctx), b.pick(&hosts, &ctx));
        }
    }

    #[test]
    fn adding_a_fourth_host_moves_few_keys() {
        let three = hosts(3, 80);
        let four = hosts(4, 80);
        let lb3 = LoadBalancer::new(&Policy::maglev(), &three);
        let lb4 = LoadBalancer::new(&Policy::maglev(), &four);
        let n = 20_000;
        let mut moved = 0;
        let mut moved_to_new = 0;
        for i in 0..n {
            let ctx = PickContext::with_hash(hash_str(&format!("key-{i}")));
            let (a, b) = (lb3.pick(&three, &ctx), lb4.pick(&four, &ctx));
            if a != b {
                moved += 1;
                if b == Some(3) {
                    moved_to_new += 1;
                }
            }
        }
        let frac = moved as f64 / n as f64;
        // Ideal is 1/4; Maglev trades a little extra disruption for perfect balance.
        assert!(frac < 0.35, "moved {frac}");
        assert!(
            moved_to_new as f64 / moved as f64 > 0.8,
            "most moves go to the new host"
        );
    }

    #[test]
    fn primes_and_coercion() {
        assert!(is_prime(7) && is_prime(65537) && is_prime(5_000_011) && is_prime(2));
        assert!(!is_prime(0) && !is_prime(1) && !is_prime(8) && !is_prime(65535));
        assert_eq!(coerce_table_size(8), 11);
        assert_eq!(coerce_table_size(0), DEFAULT_MAGLEV_TABLE_SIZE);
        assert_eq!(coerce_table_size(u64::MAX), MAX_MAGLEV_TABLE_SIZE);
    }

    #[test]
    fn more_hosts_than_slots_still_fills_table() {
        let hosts = hosts(20, 1000);
        let t = Maglev::new(&hosts, 7);
        assert!(t.table().iter().all(|&h| (h as usize) < 20));
    }
}
