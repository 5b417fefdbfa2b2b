//! A latency histogram from the quantiles a proxy reports (Envoy computes P0, P25, P50, P75,
//! P90, P95, P99, P99.5, P99.9 and P100 of each histogram). Between two known quantiles the
//! requests are spread evenly, so the share of requests in a latency bucket is the difference
//! of the interpolated distribution at its edges: an estimate, but from real data, and it works
//! on real Envoy's `/stats` too.

/// One bar: requests between `from` and `to` ms, as a part of all (0–1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub from: f64,
    pub to: f64,
    pub share: f64,
}

/// `points` are (quantile 0–100, ms) ascending. Log-spaced buckets when the range spans more
/// than a factor of 4, else even ones.
pub fn buckets(points: &[(f64, f64)], count: usize) -> Vec<Bucket> {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Vec::new();
    };
    let (low, high) = (first.1, last.1);
    if count == 0 || high.partial_cmp(&low) != Some(std::cmp::Ordering::Greater) {
        return match count {
            0 => Vec::new(),
            // Every request took the same time: one full bar.
            _ => vec![Bucket {
                from: low,
                to: high,
                share: 1.0,
            }],
        };
    }
    let logarithmic = low > 0.0 && high / low > 4.0;
    let edge = |i: usize| {
        let t = i as f64 / count as f64;
        if logarithmic {
            low * (high / low).powf(t)
        } else {
            low + (high - low) * t
        }
    };
    (0..count)
        .map(|i| {
            let (from, to) = (edge(i), edge(i + 1));
            // The outer edges are inclusive: P0 belongs to the first bucket, P100 to the last
            // (many requests can share the fastest time exactly).
            let upper = if i + 1 == count {
                100.0
            } else {
                cdf(points, to)
            };
            let lower = if i == 0 { 0.0 } else { cdf(points, from) };
            Bucket {
                from,
                to,
                share: ((upper - lower) / 100.0).clamp(0.0, 1.0),
            }
        })
        .collect()
}

/// The percentage of requests at or below `x` ms.
fn cdf(points: &[(f64, f64)], x: f64) -> f64 {
    let mut q = 0.0;
    for pair in points.windows(2) {
        let ((q0, m0), (q1, m1)) = (pair[0], pair[1]);
        if x >= m1 {
            q = q1;
        } else if x > m0 {
            q = q0 + (x - m0) / (m1 - m0) * (q1 - q0);
            break;
        } else {
            if x >= m0 {
                q = q.max(q0);
            }
            break;
        }
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENVOY: [f64; 10] = [0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 100.0];

    fn points(ms: [f64; 10]) -> Vec<(f64, f64)> {
        ENVOY.iter().copied().zip(ms).collect()
    }

    #[test]
    fn shares_add_up_and_follow_the_quantiles() {
        // Half the requests within 1-2 ms, the rest up to 10 ms.
        let p = points([1.0, 1.5, 2.0, 4.0, 6.0, 8.0, 9.0, 9.5, 9.9, 10.0]);
        let b = buckets(&p, 4);
        let total: f64 = b.iter().map(|b| b.share).sum();
        assert!((total - 1.0).abs() < 1e-9, "{b:?}");
        assert!(b[0].share > b[3].share, "most requests are fast: {b:?}");
        assert!(b.iter().all(|b| b.to > b.from));
    }

    #[test]
    fn many_requests_at_the_fastest_time_are_counted() {
        // Half the requests took 0 ms (Envoy's histogram floor), the rest up to 2 ms.
        let p = points([0.0, 0.0, 0.0, 1.0, 1.1, 1.2, 1.5, 1.8, 2.0, 2.1]);
        let total: f64 = buckets(&p, 8).iter().map(|b| b.share).sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
    }

    #[test]
    fn one_latency_is_one_bar_and_nothing_is_nothing() {
        assert_eq!(buckets(&points([3.0; 10]), 8).len(), 1);
        assert!(buckets(&[], 8).is_empty());
    }
}
