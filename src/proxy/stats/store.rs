//! The stat registry and the counter, gauge and text-readout handles.
//!
//! Lookup by name takes a lock, so callers resolve their stats once (config load, first use) and
//! keep the returned handles; every handle operation on the data path is a plain atomic.
//! Tag extraction and the Prometheus name and labels are worked out once per stat, the first
//! time they are needed, so a scrape never re-runs a regex and an idle proxy never runs one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard};

use super::bins::HistogramCompat;
use super::histogram::Histogram;
use super::tags::{Tag, TagProducer};
use super::{prometheus, render_json, render_text, RenderOptions};

/// Everything about a stat's name that the renderers need, the derived part computed once on
/// first use.
pub(super) struct StatMeta {
    pub(super) name: String,
    /// Tags and Prometheus names, worked out the first time something asks (a `/stats/prometheus`
    /// scrape, a sink): an idle proxy never runs the tag regexes at all.
    derived: OnceLock<Derived>,
    producer: Arc<LazyProducer>,
}

/// What Envoy's tag extraction makes of a stat name.
pub(super) struct Derived {
    pub(super) tag_extracted_name: String,
    pub(super) tags: Vec<Tag>,
    /// `envoy_` + the sanitized tag-extracted name.
    pub(super) prom_name: String,
    /// `name="value",...` without braces, already escaped.
    pub(super) prom_labels: String,
    /// Byte order of this key is Envoy's Prometheus output order.
    pub(super) prom_sort_key: Box<[u8]>,
}

/// The tag extractors, compiled (about thirty regexes) only when first needed.
pub(super) struct LazyProducer(OnceLock<TagProducer>);

impl LazyProducer {
    fn get(&self) -> &TagProducer {
        self.0.get_or_init(TagProducer::envoy_defaults)
    }
}

impl StatMeta {
    fn new(producer: &Arc<LazyProducer>, name: &str) -> Self {
        StatMeta {
            name: name.to_string(),
            derived: OnceLock::new(),
            producer: producer.clone(),
        }
    }

    fn derived(&self) -> &Derived {
        self.derived.get_or_init(|| {
            let extracted = self.producer.get().produce(&self.name);
            Derived {
                prom_name: prometheus::metric_name(&extracted.tag_extracted_name),
                prom_labels: prometheus::format_labels(&extracted.tags),
                prom_sort_key: prometheus::sort_key(&extracted.tag_extracted_name, &self.name),
                tag_extracted_name: extracted.tag_extracted_name,
                tags: extracted.tags,
            }
        })
    }
}

impl std::ops::Deref for StatMeta {
    type Target = Derived;

    fn deref(&self) -> &Derived {
        self.derived()
    }
}

/// Name accessors shared by every handle type, for sinks that want Envoy's dimensions.
macro_rules! name_accessors {
    ($handle:ty) => {
        impl $handle {
            /// The full Envoy stat name, as registered.
            pub fn name(&self) -> &str {
                &self.0.meta.name
            }

            /// The name with Envoy's default tags cut out, e.g. `cluster.upstream_rq`.
            pub fn tag_extracted_name(&self) -> &str {
                &self.0.meta.tag_extracted_name
            }

            /// The tags cut out of the name, in Envoy's (and Prometheus' label) order.
            pub fn tags(&self) -> &[Tag] {
                &self.0.meta.tags
            }
        }
    };
}

name_accessors!(Counter);
name_accessors!(Gauge);
name_accessors!(TextReadout);
name_accessors!(Histogram);

/// Marks a stat used without paying for a write once it already is.
#[inline]
fn mark_used(flag: &AtomicBool) {
    if !flag.load(Ordering::Relaxed) {
        flag.store(true, Ordering::Relaxed);
    }
}

pub(super) struct CounterInner {
    pub(super) meta: StatMeta,
    value: AtomicU64,
    used: AtomicBool,
}

/// A monotonically increasing count (reset only by `/reset_counters`).
#[derive(Clone)]
pub struct Counter(pub(super) Arc<CounterInner>);

impl Counter {
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    #[inline]
    pub fn add(&self, n: u64) {
        self.0.value.fetch_add(n, Ordering::Relaxed);
        mark_used(&self.0.used);
    }

    #[inline]
    pub fn value(&self) -> u64 {
        self.0.value.load(Ordering::Relaxed)
    }

    /// Whether the counter was ever incremented (Envoy's `usedonly`).
    pub fn used(&self) -> bool {
        self.0.used.load(Ordering::Relaxed)
    }
}

pub(super) struct GaugeInner {
    pub(super) meta: StatMeta,
    value: AtomicU64,
    used: AtomicBool,
}

/// A value that goes up and down, such as active connections.
#[derive(Clone)]
pub struct Gauge(pub(super) Arc<GaugeInner>);

impl Gauge {
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Saturates at 0: an unbalanced decrement must not turn into a huge unsigned value.
    #[inline]
    pub fn dec(&self) {
        self.sub(1);
    }

    #[inline]
    pub fn add(&self, n: u64) {
        self.0.value.fetch_add(n, Ordering::Relaxed);
        mark_used(&self.0.used);
    }

    /// Saturates at 0, like [`Gauge::dec`].
    #[inline]
    pub fn sub(&self, n: u64) {
        // The closure never returns None, so this cannot fail.
        let _ = self
            .0
            .value
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(n))
            });
        mark_used(&self.0.used);
    }

    #[inline]
    pub fn set(&self, v: u64) {
        self.0.value.store(v, Ordering::Relaxed);
        mark_used(&self.0.used);
    }

    #[inline]
    pub fn value(&self) -> u64 {
        self.0.value.load(Ordering::Relaxed)
    }

    pub fn used(&self) -> bool {
        self.0.used.load(Ordering::Relaxed)
    }
}

pub(super) struct TextReadoutInner {
    pub(super) meta: StatMeta,
    value: Mutex<String>,
    used: AtomicBool,
}

/// A string-valued stat (e.g. the control plane identifier); only ever set on cold paths.
#[derive(Clone)]
pub struct TextReadout(pub(super) Arc<TextReadoutInner>);

impl TextReadout {
    pub fn set(&self, value: String) {
        *self.0.value.lock().unwrap_or_else(|e| e.into_inner()) = value;
        mark_used(&self.0.used);
    }

    pub fn value(&self) -> String {
        self.0
            .value
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn used(&self) -> bool {
        self.0.used.load(Ordering::Relaxed)
    }
}

type Registry<T> = RwLock<BTreeMap<String, T>>;

struct StoreInner {
    tag_producer: Arc<LazyProducer>,
    histogram_compat: HistogramCompat,
    // BTreeMaps keep stats in the byte order `/stats` and `/stats?format=json` print them in.
    counters: Registry<Counter>,
    gauges: Registry<Gauge>,
    histograms: Registry<Histogram>,
    text_readouts: Registry<TextReadout>,
}

/// The process-wide stats registry, cloned into every component that registers stats; all
/// clones share one registry.
#[derive(Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

fn read<T>(lock: &Registry<T>) -> RwLockReadGuard<'_, BTreeMap<String, T>> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

impl Store {
    /// A store using Envoy's default tag extractors and released Envoy's histogram math.
    pub fn new() -> Self {
        Store {
            inner: Arc::new(StoreInner {
                tag_producer: Arc::new(LazyProducer(OnceLock::new())),
                histogram_compat: HistogramCompat::default(),
                counters: Default::default(),
                gauges: Default::default(),
                histograms: Default::default(),
                text_readouts: Default::default(),
            }),
        }
    }

    /// A store whose Prometheus `_sum`/`_bucket` values follow the chosen Envoy generation.
    pub fn with_config(tag_producer: TagProducer, histogram_compat: HistogramCompat) -> Self {
        let lazy = LazyProducer(OnceLock::new());
        let _ = lazy.0.set(tag_producer);
        Store {
            inner: Arc::new(StoreInner {
                tag_producer: Arc::new(lazy),
                histogram_compat,
                counters: Default::default(),
                gauges: Default::default(),
                histograms: Default::default(),
                text_readouts: Default::default(),
            }),
        }
    }

    fn get_or_create<T: Clone>(
        &self,
        registry: &Registry<T>,
        name: &str,
        make: impl FnOnce(StatMeta) -> T,
    ) -> T {
        if let Some(stat) = read(registry).get(name) {
            return stat.clone();
        }
        let meta = StatMeta::new(&self.inner.tag_producer, name);
        let mut map = registry.write().unwrap_or_else(|e| e.into_inner());
        map.entry(name.to_string())
            .or_insert_with(|| make(meta))
            .clone()
    }

    /// Get-or-create by full Envoy name, taken verbatim (the caller builds names such as
    /// `listener.0.0.0.0_8080.downstream_cx_total`). Takes the registry lock and, the first
    /// time, runs tag extraction, so resolve once and keep the handle.
    pub fn counter(&self, name: &str) -> Counter {
        self.get_or_create(&self.inner.counters, name, |meta| {
            Counter(Arc::new(CounterInner {
                meta,
                value: AtomicU64::new(0),
                used: AtomicBool::new(false),
            }))
        })
    }

    /// Get-or-create; same cost model as [`Store::counter`].
    pub fn gauge(&self, name: &str) -> Gauge {
        self.get_or_create(&self.inner.gauges, name, |meta| {
            Gauge(Arc::new(GaugeInner {
                meta,
                value: AtomicU64::new(0),
                used: AtomicBool::new(false),
            }))
        })
    }

    /// Get-or-create; same cost model as [`Store::counter`]. Values are recorded in the
    /// histogram's own unit (milliseconds for Envoy's latency histograms).
    pub fn histogram(&self, name: &str) -> Histogram {
        let compat = self.inner.histogram_compat;
        self.get_or_create(&self.inner.histograms, name, |meta| {
            Histogram::new(meta, compat)
        })
    }

    /// Get-or-create; same cost model as [`Store::counter`].
    pub fn text_readout(&self, name: &str) -> TextReadout {
        self.get_or_create(&self.inner.text_readouts, name, |meta| {
            TextReadout(Arc::new(TextReadoutInner {
                meta,
                value: Mutex::new(String::new()),
                used: AtomicBool::new(false),
            }))
        })
    }

    /// Admin `/reset_counters`: zeroes counters only. As in Envoy, they stay "used", and gauges
    /// and histograms are untouched.
    pub fn reset_counters(&self) {
        for counter in read(&self.inner.counters).values() {
            counter.0.value.store(0, Ordering::Relaxed);
        }
    }

    /// Closes the current histogram interval. Histograms only show new samples after a flush
    /// (as in Envoy), so the proxy calls this every `stats_flush_interval`; an admin handler
    /// wanting Envoy's `flush_on_admin` behaviour can call it before rendering.
    pub fn flush(&self) {
        for histogram in read(&self.inner.histograms).values() {
            histogram.0.flush();
        }
    }

    /// Admin `/stats`. Renderers hold the registry read lock while they run (a few ms for
    /// thousands of stats), which only delays registrations, never the data path.
    pub fn render_text(&self, options: &RenderOptions) -> String {
        render_text::render(self, options)
    }

    /// Admin `/stats?format=json`; see [`Store::render_text`] for locking.
    pub fn render_json(&self, options: &RenderOptions) -> String {
        render_json::render(self, options)
    }

    /// Admin `/stats/prometheus`; see [`Store::render_text`] for locking.
    pub fn render_prometheus(&self, options: &RenderOptions) -> String {
        prometheus::render(self, options)
    }

    pub(super) fn counters(&self) -> RwLockReadGuard<'_, BTreeMap<String, Counter>> {
        read(&self.inner.counters)
    }

    pub(super) fn gauges(&self) -> RwLockReadGuard<'_, BTreeMap<String, Gauge>> {
        read(&self.inner.gauges)
    }

    pub(super) fn histograms(&self) -> RwLockReadGuard<'_, BTreeMap<String, Histogram>> {
        read(&self.inner.histograms)
    }

    pub(super) fn text_readouts(&self) -> RwLockReadGuard<'_, BTreeMap<String, TextReadout>> {
        read(&self.inner.text_readouts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_share_state_by_name() {
        let store = Store::new();
        let a = store.counter("cluster.a.upstream_rq_total");
        let b = store.clone().counter("cluster.a.upstream_rq_total");
        a.inc();
        b.add(4);
        assert_eq!(a.value(), 5);
        assert_eq!(store.counters().len(), 1);
        // Same name, different type: separate stats, as in Envoy.
        store.gauge("cluster.a.upstream_rq_total").set(9);
        assert_eq!(a.value(), 5);
    }

    #[test]
    fn used_flags_follow_envoy() {
        let store = Store::new();
        let c = store.counter("c");
        let g = store.gauge("g");
        let t = store.text_readout("t");
        assert!(!c.used() && !g.used() && !t.used());
        c.add(0);
        g.set(0);
        t.set(String::new());
        assert!(c.used() && g.used() && t.used());
    }

    #[test]
    fn gauge_saturates_at_zero() {
        let store = Store::new();
        let g = store.gauge("cluster.a.upstream_cx_active");
        g.inc();
        g.dec();
        g.dec();
        assert_eq!(g.value(), 0);
        g.add(10);
        g.sub(3);
        assert_eq!(g.value(), 7);
        g.sub(100);
        assert_eq!(g.value(), 0);
    }

    #[test]
    fn reset_counters_leaves_gauges_and_histograms() {
        let store = Store::new();
        let c = store.counter("c");
        let g = store.gauge("g");
        let h = store.histogram("h");
        c.add(7);
        g.set(3);
        h.record(5);
        store.flush();
        store.reset_counters();
        assert_eq!(c.value(), 0);
        assert!(c.used());
        assert_eq!(g.value(), 3);
        assert_eq!(h.cumulative_statistics().sample_count, 1);
    }

    #[test]
    fn concurrent_increments_are_exact() {
        let store = Store::new();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    // Each thread resolves its own handle, exercising get-or-create races too.
                    let c = store.counter("http.ingress_http.downstream_rq_total");
                    let g = store.gauge("http.ingress_http.downstream_rq_active");
                    for _ in 0..100_000 {
                        c.inc();
                        g.inc();
                        g.dec();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(
            store
                .counter("http.ingress_http.downstream_rq_total")
                .value(),
            800_000
        );
        assert_eq!(
            store
                .gauge("http.ingress_http.downstream_rq_active")
                .value(),
            0
        );
    }

    #[test]
    fn registration_caches_tag_extraction() {
        let store = Store::new();
        let c = store.counter("cluster.service1.upstream_rq_200");
        assert_eq!(c.tag_extracted_name(), "cluster.upstream_rq");
        assert_eq!(c.tags().len(), 2);
        assert_eq!(c.0.meta.prom_name, "envoy_cluster_upstream_rq");
        assert_eq!(
            c.0.meta.prom_labels,
            r#"envoy_response_code="200",envoy_cluster_name="service1""#
        );
    }

    #[test]
    fn store_and_handles_are_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Store>();
        assert_send_sync::<Counter>();
        assert_send_sync::<Gauge>();
        assert_send_sync::<Histogram>();
        assert_send_sync::<TextReadout>();
    }
}
