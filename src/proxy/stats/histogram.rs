//! Histograms with Envoy's interval/cumulative semantics.
//!
//! Recording is one atomic increment into a dense array of interval bins, so the data path never
//! locks or allocates. Like Envoy's `ParentHistogramImpl::merge`, `flush` drains those bins into
//! an "interval" snapshot, folds it into the cumulative histogram and precomputes every number the
//! admin pages show; rendering then only reads the snapshot. A consequence inherited from Envoy:
//! samples are invisible to `/stats` until the next flush, and a histogram reads
//! `No recorded values` until it has been flushed with data at least once.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::bins::{
    self, HistogramCompat, DEFAULT_BUCKETS, NUM_BINS, NUM_DECADES, SUPPORTED_QUANTILES,
};
use super::store::StatMeta;

/// What Envoy's `HistogramStatisticsImpl` holds after a refresh.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramStatistics {
    /// One value per entry of [`supported_quantiles`]; NaN when there were no samples.
    pub quantiles: [f64; 10],
    /// Samples in whole bins at or below each of [`default_buckets`].
    pub buckets: [u64; 19],
    pub sample_count: u64,
    /// Envoy's bin-based approximation, not the exact sum of recorded values.
    pub sample_sum: f64,
}

impl HistogramStatistics {
    fn compute(bins: &bins::SparseBins, compat: HistogramCompat) -> Self {
        let mut quantiles = [0.0; 10];
        bins::approx_quantiles(bins, &SUPPORTED_QUANTILES, &mut quantiles);
        let mut buckets = [0u64; 19];
        for (out, &bound) in buckets.iter_mut().zip(DEFAULT_BUCKETS.iter()) {
            *out = bins::approx_count_below(bins, bound, compat);
        }
        HistogramStatistics {
            quantiles,
            buckets,
            sample_count: bins::sample_count(bins),
            sample_sum: bins::approx_sum(bins, compat),
        }
    }

    fn empty() -> Self {
        Self::compute(&[], HistogramCompat::default())
    }
}

/// The quantiles (as fractions) reported for every histogram.
pub fn supported_quantiles() -> &'static [f64; 10] {
    &SUPPORTED_QUANTILES
}

/// Envoy's default bucket bounds, in the histogram's unit (milliseconds).
pub fn default_buckets() -> &'static [f64; 19] {
    &DEFAULT_BUCKETS
}

/// Merged views, touched only by `flush` and the renderers.
pub(super) struct MergedState {
    cumulative_bins: Vec<(u16, u64)>,
    pub(super) interval: HistogramStatistics,
    pub(super) cumulative: HistogramStatistics,
}

pub(super) struct HistogramInner {
    pub(super) meta: StatMeta,
    compat: HistogramCompat,
    /// Interval counts by bin. `u32` keeps a histogram at ~7 KiB; a bin would need four
    /// billion samples between two flushes to wrap.
    bins: Box<[AtomicU32]>,
    /// One bit per decade (bit 0 is the zero bin) that may hold unflushed samples, so a flush
    /// only scans the handful of decades a latency histogram actually uses.
    touched: AtomicU32,
    /// Set on the first record; Envoy merges a histogram only once it has been used.
    recorded: AtomicBool,
    /// Envoy's `ParentHistogram::used()`: true once a flush has merged samples.
    merged: AtomicBool,
    state: Mutex<MergedState>,
}

/// A cheap handle to a registered histogram.
#[derive(Clone)]
pub struct Histogram(pub(super) Arc<HistogramInner>);

impl Histogram {
    pub(super) fn new(meta: StatMeta, compat: HistogramCompat) -> Self {
        Histogram(Arc::new(HistogramInner {
            meta,
            compat,
            bins: (0..NUM_BINS).map(|_| AtomicU32::new(0)).collect(),
            touched: AtomicU32::new(0),
            recorded: AtomicBool::new(false),
            merged: AtomicBool::new(false),
            state: Mutex::new(MergedState {
                cumulative_bins: Vec::new(),
                interval: HistogramStatistics::empty(),
                cumulative: HistogramStatistics::empty(),
            }),
        }))
    }

    /// Records one sample (milliseconds for latency histograms). Lock- and allocation-free.
    #[inline]
    pub fn record(&self, value: u64) {
        let inner = &*self.0;
        let index = bins::bin_index(value);
        // SeqCst pairs with the swaps in `flush`: a sample whose decade bit was already set (so
        // it skipped setting it) is guaranteed to be seen by the flush that clears the bit.
        inner.bins[index].fetch_add(1, Ordering::SeqCst);
        let bit = if index == 0 {
            1
        } else {
            2 << bins::decade_of(index)
        };
        if inner.touched.load(Ordering::SeqCst) & bit == 0 {
            inner.touched.fetch_or(bit, Ordering::SeqCst);
        }
        if !inner.recorded.load(Ordering::Relaxed) {
            // Release: a flush that sees the flag also sees the sample that set it.
            inner.recorded.store(true, Ordering::Release);
        }
    }

    /// Whether Envoy would consider the histogram used (merged with samples at least once).
    pub fn used(&self) -> bool {
        self.0.merged.load(Ordering::Acquire)
    }

    /// Statistics of the last closed interval (samples between the last two flushes).
    pub fn interval_statistics(&self) -> HistogramStatistics {
        self.0.lock_state().interval.clone()
    }

    /// Statistics of everything flushed since start.
    pub fn cumulative_statistics(&self) -> HistogramStatistics {
        self.0.lock_state().cumulative.clone()
    }
}

impl HistogramInner {
    pub(super) fn lock_state(&self) -> MutexGuard<'_, MergedState> {
        // A panic while holding the lock cannot leave the snapshot half-written in a way that
        // matters more than losing stats, so keep serving it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn used(&self) -> bool {
        self.merged.load(Ordering::Acquire)
    }

    /// Closes the current interval (Envoy's `ParentHistogramImpl::merge`).
    pub(super) fn flush(&self) {
        if !self.recorded.load(Ordering::Acquire) && !self.merged.load(Ordering::Relaxed) {
            return;
        }
        let mut state = self.lock_state();
        let touched = self.touched.swap(0, Ordering::SeqCst);
        let mut interval: Vec<(u16, u64)> = Vec::new();
        if touched & 1 != 0 {
            let c = self.bins[0].swap(0, Ordering::SeqCst);
            if c != 0 {
                interval.push((0, u64::from(c)));
            }
        }
        for decade in 0..NUM_DECADES {
            if touched & (2 << decade) == 0 {
                continue;
            }
            for index in bins::decade_range(decade) {
                let c = self.bins[index].swap(0, Ordering::SeqCst);
                if c != 0 {
                    interval.push((index as u16, u64::from(c)));
                }
            }
        }
        bins::accumulate(&mut state.cumulative_bins, &interval);
        state.interval = HistogramStatistics::compute(&interval, self.compat);
        state.cumulative = HistogramStatistics::compute(&state.cumulative_bins, self.compat);
        self.merged.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::super::store::Store;

    #[test]
    fn interval_and_cumulative_follow_flushes() {
        let store = Store::new();
        let h = store.histogram("h1");
        h.record(200);
        assert!(!h.used(), "samples only count once flushed, like Envoy");
        store.flush();
        h.record(100);
        store.flush();
        assert!(h.used());
        let interval = h.interval_statistics();
        let cumulative = h.cumulative_statistics();
        assert_eq!(
            interval.quantiles,
            [100.0, 102.5, 105.0, 107.5, 109.0, 109.5, 109.9, 109.95, 109.99, 110.0]
        );
        assert_eq!(
            cumulative.quantiles,
            [100.0, 105.0, 110.0, 205.0, 208.0, 209.0, 209.8, 209.9, 209.98, 210.0]
        );
        assert_eq!((interval.sample_count, cumulative.sample_count), (1, 2));

        // An interval without samples reports NaN but keeps the cumulative view.
        store.flush();
        let interval = h.interval_statistics();
        assert!(interval.quantiles.iter().all(|q| q.is_nan()));
        assert_eq!(interval.sample_count, 0);
        assert_eq!(h.cumulative_statistics(), cumulative);
    }

    #[test]
    fn flush_sees_every_decade_and_the_zero_bin() {
        let store = Store::new();
        let h = store.histogram("wide");
        let values = [0u64, 0, 1, 9, 10, 99, 12_345, 1 << 40, u64::MAX];
        for v in values {
            h.record(v);
        }
        store.flush();
        let c = h.cumulative_statistics();
        assert_eq!(c.sample_count, values.len() as u64);
        assert_eq!(c.quantiles[0], 0.0);
        assert_eq!(c.buckets[0], 2, "both zeros are below 0.5");
        // Nothing stays behind in the interval bins.
        store.flush();
        assert_eq!(h.interval_statistics().sample_count, 0);
        assert_eq!(h.cumulative_statistics().sample_count, values.len() as u64);
    }

    #[test]
    fn concurrent_records_are_all_flushed() {
        let store = Store::new();
        let h = store.histogram("concurrent");
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000u64 {
                        h.record((i * 7 + t) % 5_000);
                    }
                })
            })
            .collect();
        // Flush while writers are running: no sample may be lost or double counted.
        for _ in 0..50 {
            store.flush();
        }
        for t in threads {
            t.join().unwrap();
        }
        store.flush();
        assert_eq!(h.cumulative_statistics().sample_count, 80_000);
    }
}
