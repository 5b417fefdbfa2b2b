//! `RING_HASH` (ketama consistent hashing), bit-compatible with Envoy's `ring_hash_lb.cc`.
//!
//! Same host set and keys → the same ring as Envoy → the same host for the same request hash, so
//! a fleet mixing Envoy and meshsim (or migrating between them) keeps session affinity.
//!
//! Construction (Envoy's `Ring::Ring`):
//! 1. Normalise weights to sum to 1 (`w / Σw` in `f64`).
//! 2. `scale = min(ceil(min_w · min_ring) / min_w, max_ring)`: enough entries that the
//!    lightest host gets a whole number, capped at the maximum. The ring has `ceil(scale)`
//!    entries.
//! 3. Walk the hosts in order keeping running `f64` sums `current` and `target += scale · w`;
//!    while `current < target` add an entry `xxHash64("<hash_key>_<i>", seed 0)` for `i = 0,
//!    1, …`. Running sums let fractional shares carry over between hosts.
//! 4. Sort by hash.
//!
//! The `f64` operations are performed in the same order as Envoy's C++, so rounding (and thus
//! the entry count per host) is identical. Envoy's optional MurmurHash2 ring and bounded-load
//! (`hash_balance_factor`) are not implemented.
//!
//! Lookup is a port of ketama's binary search: the first entry whose hash is `>= h`, wrapping to
//! entry 0 past the end. On a host-selection retry (`attempt > 0`) Envoy steps `attempt` entries
//! clockwise; so do we.

use std::fmt::Write as _;

use xxhash_rust::xxh64::xxh64;

use super::{effective_weight, Endpoint, MAX_RING_SIZE_LIMIT};

/// The ring as two parallel arrays: the sorted hashes are what the binary search touches, so
/// keeping them dense (8 bytes each) halves cache misses compared with `(hash, host)` pairs.
#[derive(Debug)]
pub(super) struct RingHash {
    hashes: Box<[u64]>,
    hosts: Box<[u32]>,
}

impl RingHash {
    /// Sizes are coerced like [`super::LoadBalancer::new`] documents: both capped at 8M, the
    /// minimum lowered to the maximum, and both at least 1 (Envoy would build an empty ring for
    /// a 0 minimum and then fail every request).
    pub(super) fn new<E: Endpoint>(hosts: &[E], min_ring_size: u64, max_ring_size: u64) -> Self {
        debug_assert!(!hosts.is_empty());
        let max_ring_size = max_ring_size.clamp(1, MAX_RING_SIZE_LIMIT);
        let min_ring_size = min_ring_size.clamp(1, max_ring_size);

        // normalizeHostWeights(): weight * 1.0 / sum, tracking the minimum (starting at 1.0).
        let sum: u64 = hosts.iter().map(|h| u64::from(effective_weight(h))).sum();
        let normalized: Vec<f64> = hosts
            .iter()
            .map(|h| f64::from(effective_weight(h)) * 1.0 / sum as f64)
            .collect();
        let min_normalized = normalized.iter().copied().fold(1.0f64, f64::min);

        let scale = f64::min(
            (min_normalized * min_ring_size as f64).ceil() / min_normalized,
            max_ring_size as f64,
        );
        let ring_size = scale.ceil() as usize;

        let mut entries: Vec<(u64, u32)> = Vec::with_capacity(ring_size + hosts.len());
        let mut key_buf = String::new();
        let mut current_hashes = 0.0f64;
        let mut target_hashes = 0.0f64;
        for (index, (host, weight)) in hosts.iter().zip(&normalized).enumerate() {
            key_buf.clear();
            key_buf.push_str(host.hash_key());
            key_buf.push('_');
            let prefix_len = key_buf.len();

            target_hashes += scale * weight;
            let mut i: u64 = 0;
            while current_hashes < target_hashes {
                key_buf.truncate(prefix_len);
                write!(key_buf, "{i}").expect("writing to a String cannot fail");
                entries.push((xxh64(key_buf.as_bytes(), 0), index as u32));
                i += 1;
                current_hashes += 1.0;
            }
        }

        // Envoy sorts by hash only (std::sort, unspecified order among equal hashes); breaking
        // ties by host index keeps our ring deterministic. Equal 64-bit hashes are a non-issue in
        // practice.
        entries.sort_unstable();
        let (hashes, hosts): (Vec<u64>, Vec<u32>) = entries.into_iter().unzip();
        RingHash {
            hashes: hashes.into_boxed_slice(),
            hosts: hosts.into_boxed_slice(),
        }
    }

    /// Host for request hash `h`; `None` only for an empty ring.
    pub(super) fn pick(&self, h: u64, attempt: u32) -> Option<usize> {
        let len = self.hashes.len();
        if len == 0 {
            return None;
        }
        let mut pos = ketama_search(&self.hashes, h);
        if attempt > 0 {
            pos = (pos + attempt as usize) % len;
        }
        Some(self.hosts[pos] as usize)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.hashes.len()
    }

    #[cfg(test)]
    fn entries(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.hashes.iter().copied().zip(self.hosts.iter().copied())
    }
}

/// Ketama's `ketama_get_server` search as Envoy ports it: index of the first entry with hash
/// `>= h`, or 0 when `h` is past the last entry. Signed indices are part of the algorithm
/// (`highp` can reach -1).
fn ketama_search(ring: &[u64], h: u64) -> usize {
    let len = ring.len() as i64;
    let mut lowp: i64 = 0;
    let mut highp: i64 = len;
    loop {
        let midp = (lowp + highp) / 2;
        if midp == len {
            return 0;
        }
        let midval = ring[midp as usize];
        let midval1 = if midp == 0 {
            0
        } else {
            ring[midp as usize - 1]
        };
        if h <= midval && h > midval1 {
            return midp as usize;
        }
        if midval < h {
            lowp = midp + 1;
        } else {
            highp = midp - 1;
        }
        if lowp > highp {
            return 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{hash_str, LoadBalancer, PickContext, Policy, DEFAULT_MAX_RING_SIZE};
    use super::*;

    fn ring(hosts: &[TestHost], min: u64) -> RingHash {
        RingHash::new(hosts, min, DEFAULT_MAX_RING_SIZE)
    }

    /// Golden ring from Envoy's `RingHashLoadBalancerTest.Basic`.
    #[test]
    fn matches_envoy_basic_ring() {
        let hosts = hosts(6, 90);
        let r = ring(&hosts, 12);
        assert_eq!(r.len(), 12);
        // (position, port) exactly as listed in Envoy's test.
        let expected: [(u64, u32); 12] = [
            (833437586790550860, 94),
            (928266305478181108, 92),
            (1033482794131418490, 90),
            (3551244743356806947, 95),
            (3851675632748031481, 93),
            (5583722120771150861, 91),
            (6311230543546372928, 91),
            (7700377290971790572, 93),
            (13144177310400110813, 95),
            (13444792449719432967, 92),
            (15516499411664133160, 94),
            (16117243373044804889, 90),
        ];
        let got: Vec<(u64, u32)> = r.entries().map(|(h, i)| (h, i + 90)).collect();
        assert_eq!(got, expected);

        let lb = LoadBalancer::new(
            &Policy::RingHash {
                minimum_ring_size: 12,
                maximum_ring_size: DEFAULT_MAX_RING_SIZE,
            },
            &hosts,
        );
        let pick = |h: u64| lb.pick(&hosts, &PickContext::with_hash(h)).unwrap();
        assert_eq!(pick(0), 4);
        assert_eq!(pick(u64::MAX), 4);
        assert_eq!(pick(3551244743356806947), 5);
        assert_eq!(pick(3551244743356806948), 3);
        assert_eq!(pick(16117243373044804880), 0);
    }

    /// Golden ring from Envoy's `BasicWithDoundedLoad` (hostnames "90".."95" as hash keys; the
    /// bounded-load wrapper does not change the ring).
    #[test]
    fn matches_envoy_hostname_ring() {
        let hosts: Vec<TestHost> = (90..96).map(|p| TestHost::new(p.to_string(), 1)).collect();
        let r = ring(&hosts, 12);
        let expected: [(u64, u32); 12] = [
            (1975508444536362413, 95),
            (2376063919839173711, 95),
            (2386806903309390596, 93),
            (6749904478991551885, 94),
            (6803900775736438537, 93),
            (7225015537174310577, 92),
            (8787465352164086522, 90),
            (11282020843382717940, 92),
            (13723418369486627818, 91),
            (13776502110861797421, 90),
            (14338313586354474791, 91),
            (15364271037087512980, 94),
        ];
        let got: Vec<(u64, u32)> = r.entries().map(|(h, i)| (h, i + 90)).collect();
        assert_eq!(got, expected);
        assert_eq!(r.pick(7225015537174310577, 0), Some(2));
        assert_eq!(r.pick(6803900775736438537, 0), Some(3));
    }

    #[test]
    fn retry_attempt_walks_the_ring() {
        let hosts = hosts(6, 90);
        let r = ring(&hosts, 12);
        // Hash 0 lands on entry 0 (:94); attempts 1 and 2 take entries 1 (:92) and 2 (:90).
        assert_eq!(r.pick(0, 0), Some(4));
        assert_eq!(r.pick(0, 1), Some(2));
        assert_eq!(r.pick(0, 2), Some(0));
        assert_eq!(r.pick(0, 12), Some(4));
    }

    #[test]
    fn ketama_search_is_lower_bound_with_wrap() {
        let ring: Vec<u64> = (0..1000u64)
            .map(|i| xxh64(&i.to_le_bytes(), 0))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut probes: Vec<u64> = vec![0, 1, u64::MAX, ring[0], ring[999], ring[500] + 1];
        probes.extend((0..5000u64).map(|i| xxh64(&i.to_be_bytes(), 7)));
        for h in probes {
            let want = ring.partition_point(|&x| x < h) % ring.len();
            assert_eq!(ketama_search(&ring, h), want, "h={h}");
        }
        assert_eq!(ketama_search(&[5], 5), 0);
        assert_eq!(ketama_search(&[5], 6), 0);
    }

    #[test]
    fn default_ring_size_and_entries_per_host() {
        let hosts = hosts(3, 80);
        let r = RingHash::new(&hosts, 1024, DEFAULT_MAX_RING_SIZE);
        // scale = ceil(1024/3)*3 = 1026 => 342 entries each.
        assert_eq!(r.len(), 1026);
        for h in 0..3u32 {
            assert_eq!(r.entries().filter(|&(_, i)| i == h).count(), 342);
        }
        // Max ring size caps the ring.
        let capped = RingHash::new(&hosts, 1024, 100);
        assert_eq!(capped.len(), 100);
    }

    #[test]
    fn deterministic_same_key_same_host() {
        let hosts = hosts(5, 8080);
        let a = LoadBalancer::new(&Policy::ring_hash(), &hosts);
        let b = LoadBalancer::new(&Policy::ring_hash(), &hosts);
        for i in 0..2000 {
            let ctx = PickContext::with_hash(hash_str(&format!("session-{i}")));
            let first = a.pick(&hosts, &ctx);
            assert_eq!(first, a.pick(&hosts, &ctx));
            assert_eq!(first, b.pick(&hosts, &ctx));
        }
    }

    /// Fraction of the 64-bit hash space each host owns (exact, from arc lengths).
    fn ownership(r: &RingHash, n: usize) -> Vec<f64> {
        let mut own = vec![0f64; n];
        let entries: Vec<(u64, u32)> = r.entries().collect();
        let mut prev = 0u64;
        for &(h, host) in &entries {
            own[host as usize] += (h - prev) as f64;
            prev = h;
        }
        // Wrap-around arc belongs to entry 0.
        own[entries[0].1 as usize] += (u64::MAX - prev) as f64;
        let total: f64 = own.iter().sum();
        own.iter().map(|o| o / total).collect()
    }

    #[test]
    fn weights_scale_entries_and_traffic() {
        let hosts = weighted(&[1, 2, 3]);
        let r = RingHash::new(&hosts, 1024, DEFAULT_MAX_RING_SIZE);
        // min weight 1/6: scale = ceil(1024/6)*6 = 1026 → 171, 342, 513 entries.
        let per_host: Vec<usize> = (0..3u32)
            .map(|h| r.entries().filter(|&(_, i)| i == h).count())
            .collect();
        assert_eq!(per_host, vec![171, 342, 513]);
        let own = ownership(&r, 3);
        for (o, want) in own.iter().zip([1.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0]) {
            assert!((o - want).abs() < 0.04, "{own:?}");
        }
    }

    #[test]
    fn adding_a_fourth_host_moves_few_keys() {
        let three = hosts(3, 80);
        let four = hosts(4, 80);
        let lb3 = LoadBalancer::new(&Policy::ring_hash(), &three);
        let lb4 = LoadBalancer::new(&Policy::ring_hash(), &four);
        let n = 20_000;
        let mut moved = 0;
        for i in 0..n {
            let ctx = PickContext::with_hash(hash_str(&format!("key-{i}")));
            if lb3.pick(&three, &ctx) != lb4.pick(&four, &ctx) {
                moved += 1;
            }
        }
        let frac = moved as f64 / n as f64;
        // Ideal is 1/4. Envoy's ring also shrinks from 342 to 256 entries per host when the
        // minimum-weight host share changes, which moves a few more keys.
        assert!(frac < 0.40, "moved {frac}");
        assert!(frac > 0.15, "new host got almost nothing: {frac}");
    }
}
