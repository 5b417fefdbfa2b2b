//! Envoy's histogram arithmetic (libcircllhist), reproduced operation for operation.
//!
//! Envoy prints quantiles with shortest round-trip formatting and Prometheus sums with 32
//! significant digits, so "close enough" floating point is visibly wrong: every expression here
//! keeps the exact operand order of `circllhist.c` so the same IEEE doubles come out.
//!
//! A bin is addressed by a dense index so recording can be a single atomic increment:
//! index 0 is the zero bin, then 90 bins per decade (`val` 10..=99, exponent 0..=19), in
//! ascending value order, which is also circllhist's bin order for non-negative values.

/// Bins per decade: two significant decimal digits, 1.0 .. 9.9.
const BINS_PER_DECADE: usize = 90;
/// Decades 10^0 .. 10^19 cover every `u64`.
const DECADES: usize = 20;
/// Total number of bins, including the zero bin.
pub(super) const NUM_BINS: usize = 1 + BINS_PER_DECADE * DECADES;

/// circllhist indexes a literal table rather than calling `pow`, and `powi` is not guaranteed
/// to be correctly rounded, so the exact same literals are used here.
const POWER_OF_TEN: [f64; DECADES] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19,
];

/// The quantiles Envoy computes for every histogram (`HistogramStatisticsImpl`).
pub(super) const SUPPORTED_QUANTILES: [f64; 10] =
    [0.0, 0.25, 0.5, 0.75, 0.90, 0.95, 0.99, 0.995, 0.999, 1.0];

/// Envoy's `HistogramSettingsImpl::defaultBuckets()`, used for Prometheus and bucket views.
pub(super) const DEFAULT_BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// Maps a recorded value to its bin like `int_scale_to_hist_bucket(value, 0)`.
///
/// Envoy passes the `uint64_t` through an `int64_t`; values above `i64::MAX` would land in
/// negative bins there. Nobody records such latencies, so they simply get their own decade.
#[inline]
pub(super) fn bin_index(value: u64) -> usize {
    if value == 0 {
        return 0;
    }
    let (val, exp) = if value < 10 {
        (value * 10, 0usize)
    } else {
        let mut v = value;
        let mut exp = 1usize;
        while v >= 100 {
            v /= 10;
            exp += 1;
        }
        (v, exp)
    };
    1 + exp * BINS_PER_DECADE + (val as usize - 10)
}

/// Splits a non-zero bin index into circllhist's `(val, exp)` pair.
#[inline]
fn val_exp(index: usize) -> (u64, usize) {
    let i = index - 1;
    ((i % BINS_PER_DECADE) as u64 + 10, i / BINS_PER_DECADE)
}

/// Decade of a non-zero bin, used for the "touched decades" mask.
#[inline]
pub(super) fn decade_of(index: usize) -> usize {
    (index - 1) / BINS_PER_DECADE
}

/// Index range of all bins in a decade.
#[inline]
pub(super) fn decade_range(decade: usize) -> std::ops::Range<usize> {
    let start = 1 + decade * BINS_PER_DECADE;
    start..start + BINS_PER_DECADE
}

/// Number of decades, for the recording mask.
pub(super) const NUM_DECADES: usize = DECADES;

/// `hist_bucket_to_double`: the lower edge of the bin.
#[inline]
pub(super) fn bin_left(index: usize) -> f64 {
    if index == 0 {
        return 0.0;
    }
    let (val, exp) = val_exp(index);
    ((val as f64) / 10.0) * POWER_OF_TEN[exp]
}

/// `hist_bucket_to_double_bin_width`.
#[inline]
pub(super) fn bin_width(index: usize) -> f64 {
    if index == 0 {
        return 0.0;
    }
    let (_, exp) = val_exp(index);
    POWER_OF_TEN[exp] / 10.0
}

/// Which Envoy generation's bin approximations to reproduce for `_sum` and bucket counts.
///
/// Quantiles are identical in both; only the Prometheus `_sum`/`_bucket` values and the
/// `histogram_buckets=cumulative` views differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HistogramCompat {
    /// Every released Envoy up to at least the 1.3x series (libcircllhist as vendored there):
    /// a bucket counts whole bins whose *upper* edge is `<= le`, and `_sum` adds bin midpoints.
    /// Envoy's `prometheus_stats_test.cc` expects `le="50"} 2` and `_sum 5532` for the samples
    /// 50,20,30,70,100,5000,200.
    #[default]
    Released,
    /// Envoy main as of 2026: a bucket counts bins whose *lower* edge is `<= le` (a sample of
    /// 50 ms is in `le="50"`), and `_sum` adds the harmonic mean of each bin's edges. Its test
    /// expects `le="50"} 3` and `_sum 5531.1160155998386471765115857124` for the same samples.
    /// Reconstructed from those expectations, not from the implementing source.
    Main,
}

/// `hist_bucket_midpoint` as released Envoy's libcircllhist computes it.
#[inline]
fn bin_midpoint(index: usize) -> f64 {
    if index == 0 {
        return 0.0;
    }
    bin_left(index) + bin_width(index) / 2.0
}

/// The harmonic mean of a bin's edges, which is what Envoy main sums.
#[inline]
fn bin_harmonic_mean(index: usize) -> f64 {
    if index == 0 {
        return 0.0;
    }
    let lo = bin_left(index);
    let w = bin_width(index);
    2.0 * lo * (lo + w) / (2.0 * lo + w)
}

/// Sparse view of a histogram: `(bin index, count)` with ascending indexes and non-zero counts.
///
/// circllhist keeps cleared bins with a zero count around, but zero-count bins never change
/// the results of the functions below, so they are simply not stored.
pub(super) type SparseBins = [(u16, u64)];

/// `hist_sample_count`, saturating like the C code.
pub(super) fn sample_count(bins: &SparseBins) -> u64 {
    bins.iter().fold(0u64, |acc, &(_, c)| acc.saturating_add(c))
}

/// `hist_approx_sum`.
pub(super) fn approx_sum(bins: &SparseBins, compat: HistogramCompat) -> f64 {
    let representative = match compat {
        HistogramCompat::Released => bin_midpoint,
        HistogramCompat::Main => bin_harmonic_mean,
    };
    let mut sum = 0.0;
    for &(index, count) in bins {
        let value = representative(index as usize);
        let cardinality = count as f64;
        sum += value * cardinality;
    }
    sum
}

/// Samples counted in a bucket with bound `threshold`.
///
/// Released Envoy uses `hist_approx_count_below`, which only counts whole bins: a sample of
/// exactly 1 ms sits in `[1, 1.1)` and is *not* in `le="1"`.
pub(super) fn approx_count_below(
    bins: &SparseBins,
    threshold: f64,
    compat: HistogramCompat,
) -> u64 {
    let mut running = 0u64;
    for &(index, count) in bins {
        let index = index as usize;
        let edge = match compat {
            HistogramCompat::Released => bin_left(index) + bin_width(index),
            HistogramCompat::Main => bin_left(index),
        };
        if edge <= threshold {
            running += count;
        } else {
            break;
        }
    }
    running
}

/// `hist_approx_quantile` for the ascending quantiles in `q_in`; an empty histogram gives NaN,
/// which the renderers print as `nan` / `null`.
pub(super) fn approx_quantiles(bins: &SparseBins, q_in: &[f64], q_out: &mut [f64]) {
    debug_assert_eq!(q_in.len(), q_out.len());
    let mut total_cnt = 0.0f64;
    for &(_, count) in bins {
        total_cnt += count as f64;
    }
    if total_cnt == 0.0 {
        q_out.iter_mut().for_each(|q| *q = f64::NAN);
        return;
    }
    for (out, q) in q_out.iter_mut().zip(q_in) {
        *out = total_cnt * q;
    }

    // Mirrors the C locals; `track` is the C `TRACK_VARS` macro.
    let used = bins.len();
    let mut cur = Walk::default();
    let mut i_b = 0usize;
    while i_b < used {
        if bins[i_b].1 != 0 {
            cur.track(bins[i_b]);
            break;
        }
        i_b += 1;
    }

    for out in q_out.iter_mut() {
        while i_b + 1 < used && cur.upper_cnt < *out {
            i_b += 1;
            cur.track(bins[i_b]);
        }
        *out = if cur.lower_cnt == *out {
            cur.bucket_left
        } else if cur.upper_cnt == *out {
            cur.bucket_left + cur.bucket_width
        } else if cur.bucket_width == 0.0 {
            cur.bucket_left
        } else {
            cur.bucket_left
                + (*out - cur.lower_cnt) / (cur.upper_cnt - cur.lower_cnt) * cur.bucket_width
        };
    }
}

/// The running state of `hist_approx_quantile`'s bin walk.
#[derive(Default)]
struct Walk {
    bucket_width: f64,
    bucket_left: f64,
    lower_cnt: f64,
    upper_cnt: f64,
}

impl Walk {
    fn track(&mut self, (index, count): (u16, u64)) {
        self.bucket_width = bin_width(index as usize);
        self.bucket_left = bin_left(index as usize);
        self.lower_cnt = self.upper_cnt;
        self.upper_cnt = self.lower_cnt + count as f64;
    }
}

/// Adds `from` into `into`, both sparse and sorted (`hist_accumulate`).
pub(super) fn accumulate(into: &mut Vec<(u16, u64)>, from: &SparseBins) {
    if from.is_empty() {
        return;
    }
    let mut merged = Vec::with_capacity(into.len() + from.len());
    let (mut a, mut b) = (0, 0);
    while a < into.len() && b < from.len() {
        let (ia, ca) = into[a];
        let (ib, cb) = from[b];
        match ia.cmp(&ib) {
            std::cmp::Ordering::Less => {
                merged.push((ia, ca));
                a += 1;
            }
            std::cmp::Ordering::Greater => {
                merged.push((ib, cb));
                b += 1;
            }
            std::cmp::Ordering::Equal => {
                merged.push((ia, ca.saturating_add(cb)));
                a += 1;
                b += 1;
            }
        }
    }
    merged.extend_from_slice(&into[a..]);
    merged.extend_from_slice(&from[b..]);
    *into = merged;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sparse(values: &[(u64, u64)]) -> Vec<(u16, u64)> {
        let mut out: Vec<(u16, u64)> = Vec::new();
        for &(v, c) in values {
            accumulate(&mut out, &[(bin_index(v) as u16, c)]);
        }
        out
    }

    fn quantiles(values: &[(u64, u64)]) -> [f64; 10] {
        let mut out = [0.0; 10];
        approx_quantiles(&sparse(values), &SUPPORTED_QUANTILES, &mut out);
        out
    }

    #[test]
    fn bins_follow_two_significant_digits() {
        assert_eq!(bin_index(0), 0);
        assert_eq!(
            (bin_left(bin_index(1)), bin_width(bin_index(1))),
            (1.0, 0.1)
        );
        assert_eq!(bin_left(bin_index(9)), 9.0);
        assert_eq!(
            (bin_left(bin_index(10)), bin_width(bin_index(10))),
            (10.0, 1.0)
        );
        assert_eq!(bin_left(bin_index(99)), 99.0);
        assert_eq!(
            (bin_left(bin_index(150)), bin_width(bin_index(159))),
            (150.0, 10.0)
        );
        assert_eq!(bin_index(150), bin_index(159));
        assert_ne!(bin_index(159), bin_index(160));
        assert_eq!(bin_left(bin_index(123_456)), 120_000.0);
        assert_eq!(bin_index(u64::MAX), NUM_BINS - 1 - (99 - 18));
        // Indexes must be ascending in value, which circllhist's algorithms rely on.
        let mut last = -1.0;
        for i in 0..NUM_BINS {
            let left = bin_left(i);
            assert!(left > last, "bin {i} not ascending");
            last = left;
        }
    }

    #[test]
    fn quantiles_match_envoy_single_bin_output() {
        // Envoy admin output for a histogram whose samples all fell into [1, 1.1):
        // P0(nan,1) P25(nan,1.025) ... P99.5(nan,1.0995) P99.9(nan,1.0999) P100(nan,1.1)
        let q = quantiles(&[(1, 1)]);
        let expect = [
            1.0, 1.025, 1.05, 1.075, 1.09, 1.095, 1.099, 1.0995, 1.0999, 1.1,
        ];
        assert_eq!(q, expect);
    }

    #[test]
    fn quantiles_match_envoy_two_bin_test() {
        // From Envoy's admin stats test: samples 200 then 100 give these cumulative quantiles.
        let q = quantiles(&[(200, 1), (100, 1)]);
        let expect = [
            100.0, 105.0, 110.0, 205.0, 208.0, 209.0, 209.8, 209.9, 209.98, 210.0,
        ];
        assert_eq!(q, expect);
    }

    #[test]
    fn empty_histogram_quantiles_are_nan() {
        assert!(quantiles(&[]).iter().all(|q| q.is_nan()));
    }

    #[test]
    fn zero_bin_has_no_width() {
        let q = quantiles(&[(0, 3)]);
        assert!(q.iter().all(|&v| v == 0.0));
    }

    fn envoy_test_bins() -> Vec<(u16, u64)> {
        sparse(&[
            (50, 1),
            (20, 1),
            (30, 1),
            (70, 1),
            (100, 1),
            (5000, 1),
            (200, 1),
        ])
    }

    fn bucket_counts(bins: &SparseBins, compat: HistogramCompat) -> Vec<u64> {
        DEFAULT_BUCKETS
            .iter()
            .map(|&b| approx_count_below(bins, b, compat))
            .collect()
    }

    #[test]
    fn bucket_counts_match_envoy_tests() {
        // Both expectations are verbatim from Envoy's prometheus_stats_test.cc versions.
        let bins = envoy_test_bins();
        assert_eq!(
            bucket_counts(&bins, HistogramCompat::Released),
            [0, 0, 0, 0, 1, 2, 4, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7]
        );
        assert_eq!(
            bucket_counts(&bins, HistogramCompat::Main),
            [0, 0, 0, 0, 1, 3, 5, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7]
        );
        let big = sparse(&[(1, 100_000), (100, 1_000_000), (1000, 100_000_000)]);
        assert_eq!(
            bucket_counts(&big, HistogramCompat::Main),
            [
                0,
                100_000,
                100_000,
                100_000,
                100_000,
                100_000,
                1_100_000,
                1_100_000,
                1_100_000,
                101_100_000,
                101_100_000,
                101_100_000,
                101_100_000,
                101_100_000,
                101_100_000,
                101_100_000,
                101_100_000,
                101_100_000,
                101_100_000
            ]
        );
        let one = sparse(&[(1, 1)]);
        assert_eq!(approx_count_below(&one, 1.0, HistogramCompat::Released), 0);
        assert_eq!(approx_count_below(&one, 1.0, HistogramCompat::Main), 1);
        let zeros = sparse(&[(0, 2)]);
        assert_eq!(
            approx_count_below(&zeros, 0.5, HistogramCompat::Released),
            2
        );
        assert_eq!(approx_count_below(&zeros, 0.5, HistogramCompat::Main), 2);
    }

    #[test]
    fn sums_match_envoy_tests() {
        use super::super::number_format::format_g;
        let bins = envoy_test_bins();
        assert_eq!(
            format_g(approx_sum(&bins, HistogramCompat::Released), 32),
            "5532"
        );
        assert_eq!(
            format_g(approx_sum(&bins, HistogramCompat::Main), 32),
            "5531.1160155998386471765115857124"
        );
        let big = sparse(&[(1, 100_000), (100, 1_000_000), (1000, 100_000_000)]);
        assert_eq!(
            format_g(approx_sum(&big, HistogramCompat::Main), 32),
            "104866771428.571441650390625"
        );
        assert_eq!(sample_count(&big), 101_100_000);
    }

    #[test]
    fn accumulate_merges_sorted_bins() {
        let mut a = vec![(1u16, 2u64), (5, 1)];
        accumulate(&mut a, &[(0, 1), (5, 2), (9, 4)]);
        assert_eq!(a, vec![(0, 1), (1, 2), (5, 3), (9, 4)]);
    }
}
