//! Admin `/stats` in Envoy's plain-text format (`StatsTextRender` driven by `StatsRequest`).
//!
//! Envoy emits three phases, each sorted by full name: text readouts, then counters and gauges
//! interleaved, then histograms.

use std::fmt::Write as _;

use super::bins::DEFAULT_BUCKETS;
use super::histogram::HistogramInner;
use super::number_format::{format_g, push_u64, write_fmt_shortest};
use super::store::{Counter, Gauge, Store};
use super::{HistogramBucketsMode, RenderOptions};

/// `P0`, `P25`, ... exactly as `fmt::format("P{:g}", 100 * q)` prints them.
const QUANTILE_LABELS: [&str; 10] = [
    "P0", "P25", "P50", "P75", "P90", "P95", "P99", "P99.5", "P99.9", "P100",
];

pub(super) fn render(store: &Store, options: &RenderOptions) -> String {
    let mut out = String::with_capacity(64 * 1024);

    for readout in store.text_readouts().values() {
        let meta = &readout.0.meta;
        if options.shows(&meta.name, readout.used()) {
            let _ = writeln!(out, "{}: \"{}\"", meta.name, readout.value());
        }
    }

    let counters = store.counters();
    let gauges = store.gauges();
    for stat in merge_by_name(counters.values(), gauges.values()) {
        let (name, used, value) = match stat {
            Numeric::Counter(c) => (&c.0.meta.name, c.used(), c.value()),
            Numeric::Gauge(g) => (&g.0.meta.name, g.used(), g.value()),
        };
        if options.shows(name, used) {
            out.push_str(name);
            out.push_str(": ");
            push_u64(&mut out, value);
            out.push('\n');
        }
    }
    drop((counters, gauges));

    for histogram in store.histograms().values() {
        let inner = &*histogram.0;
        if options.shows(&inner.meta.name, inner.used()) {
            write_histogram(&mut out, inner, options.histogram_buckets);
        }
    }
    out
}

pub(super) enum Numeric<'a> {
    Counter(&'a Counter),
    Gauge(&'a Gauge),
}

/// Interleaves two name-sorted lists. Envoy keys both types into one map, so on a name clash
/// the gauge (inserted second) replaces the counter.
pub(super) fn merge_by_name<'a>(
    counters: impl Iterator<Item = &'a Counter>,
    gauges: impl Iterator<Item = &'a Gauge>,
) -> impl Iterator<Item = Numeric<'a>> {
    let mut counters = counters.peekable();
    let mut gauges = gauges.peekable();
    std::iter::from_fn(move || match (counters.peek(), gauges.peek()) {
        (Some(c), Some(g)) => match c.name().cmp(g.name()) {
            std::cmp::Ordering::Less => counters.next().map(Numeric::Counter),
            std::cmp::Ordering::Greater => gauges.next().map(Numeric::Gauge),
            std::cmp::Ordering::Equal => {
                counters.next();
                gauges.next().map(Numeric::Gauge)
            }
        },
        (Some(_), None) => counters.next().map(Numeric::Counter),
        (None, _) => gauges.next().map(Numeric::Gauge),
    })
}

fn write_histogram(out: &mut String, inner: &HistogramInner, mode: HistogramBucketsMode) {
    let name = &inner.meta.name;
    if !inner.used() {
        let _ = writeln!(out, "{name}: No recorded values");
        return;
    }
    let state = inner.lock_state();
    out.push_str(name);
    out.push_str(": ");
    match mode {
        HistogramBucketsMode::Summary => {
            for (i, label) in QUANTILE_LABELS.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(label);
                out.push('(');
                write_fmt_shortest(out, state.interval.quantiles[i]);
                out.push(',');
                write_fmt_shortest(out, state.cumulative.quantiles[i]);
                out.push(')');
            }
        }
        HistogramBucketsMode::Cumulative => {
            for (i, bound) in DEFAULT_BUCKETS.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                let _ = write!(
                    out,
                    "B{}({},{})",
                    format_g(*bound, 6),
                    state.interval.buckets[i],
                    state.cumulative.buckets[i]
                );
            }
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::super::{HistogramBucketsMode, RenderOptions, Store};
    use regex::Regex;

    fn sample_store() -> Store {
        let store = Store::new();
        store.counter("cluster.service1.upstream_rq_total").add(7);
        store.counter("cluster.service2.upstream_rq_total");
        store.gauge("cluster.service1.upstream_cx_active").set(2);
        store
            .text_readout("control_plane.identifier")
            .set("cp-1".to_string());
        let h = store.histogram("cluster.service1.upstream_rq_time");
        for v in [1, 1, 1, 2, 2, 2, 2] {
            h.record(v);
        }
        store.histogram("cluster.service2.upstream_rq_time");
        store.flush();
        store
    }

    #[test]
    fn text_matches_envoy_layout() {
        let out = sample_store().render_text(&RenderOptions::default());
        let expected = "\
control_plane.identifier: \"cp-1\"
cluster.service1.upstream_cx_active: 2
cluster.service1.upstream_rq_total: 7
cluster.service2.upstream_rq_total: 0
cluster.service1.upstream_rq_time: P0(1,1) P25(1.0583333333333333,1.0583333333333333) \
P50(2.0125,2.0125) P75(2.05625,2.05625) P90(2.0825,2.0825) P95(2.09125,2.09125) \
P99(2.09825,2.09825) P99.5(2.099125,2.099125) P99.9(2.099825,2.099825) P100(2.1,2.1)
cluster.service2.upstream_rq_time: No recorded values
";
        assert_eq!(out, expected);
    }

    #[test]
    fn empty_interval_prints_nan() {
        let store = sample_store();
        store.flush();
        let out = store.render_text(&RenderOptions {
            filter: Some(Regex::new("service1.upstream_rq_time").unwrap()),
            ..Default::default()
        });
        assert_eq!(
            out,
            "cluster.service1.upstream_rq_time: P0(nan,1) P25(nan,1.0583333333333333) \
P50(nan,2.0125) P75(nan,2.05625) P90(nan,2.0825) P95(nan,2.09125) P99(nan,2.09825) \
P99.5(nan,2.099125) P99.9(nan,2.099825) P100(nan,2.1)\n"
        );
    }

    #[test]
    fn envoy_admin_test_histogram() {
        // Envoy's AdminStatsTest: record 200, merge, record 100, merge.
        let store = Store::new();
        let h1 = store.histogram("h1");
        let h2 = store.histogram("h2");
        h1.record(200);
        h2.record(100);
        store.flush();
        h1.record(100);
        store.flush();
        assert_eq!(
            store.render_text(&RenderOptions::default()),
            "h1: P0(100,100) P25(102.5,105) P50(105,110) P75(107.5,205) P90(109,208) \
P95(109.5,209) P99(109.9,209.8) P99.5(109.95,209.9) P99.9(109.99,209.98) P100(110,210)\n\
h2: P0(nan,100) P25(nan,102.5) P50(nan,105) P75(nan,107.5) P90(nan,109) P95(nan,109.5) \
P99(nan,109.9) P99.5(nan,109.95) P99.9(nan,109.99) P100(nan,110)\n"
        );
    }

    #[test]
    fn filter_and_used_only() {
        let store = sample_store();
        let used = store.render_text(&RenderOptions {
            used_only: true,
            ..Default::default()
        });
        assert!(!used.contains("service2"), "{used}");
        assert!(used.contains("cluster.service1.upstream_rq_total: 7\n"));
        assert!(used.contains("control_plane.identifier"));

        let filtered = store.render_text(&RenderOptions {
            filter: Some(Regex::new(r"rq_total$").unwrap()),
            ..Default::default()
        });
        assert_eq!(
            filtered,
            "cluster.service1.upstream_rq_total: 7\ncluster.service2.upstream_rq_total: 0\n"
        );

        let both = store.render_text(&RenderOptions {
            filter: Some(Regex::new("upstream").unwrap()),
            used_only: true,
            ..Default::default()
        });
        assert!(both.starts_with("cluster.service1.upstream_cx_active: 2\n"));
        assert!(!both.contains("service2"));
    }

    #[test]
    fn reset_counters_shows_zero() {
        let store = sample_store();
        store.reset_counters();
        let out = store.render_text(&RenderOptions {
            filter: Some(Regex::new("service1.upstream_(rq_total|cx_active)").unwrap()),
            ..Default::default()
        });
        assert_eq!(
            out,
            "cluster.service1.upstream_cx_active: 2\ncluster.service1.upstream_rq_total: 0\n"
        );
    }

    #[test]
    fn cumulative_buckets() {
        let store = Store::new();
        let h = store.histogram("h");
        for v in [0, 1, 3, 7, 30, 700, 4_000_000] {
            h.record(v);
        }
        store.flush();
        h.record(12);
        store.flush();
        let out = store.render_text(&RenderOptions {
            histogram_buckets: HistogramBucketsMode::Cumulative,
            ..Default::default()
        });
        assert_eq!(
            out,
            "h: B0.5(0,1) B1(0,1) B5(0,3) B10(0,4) B25(1,5) B50(1,6) B100(1,6) B250(1,6) \
B500(1,6) B1000(1,7) B2500(1,7) B5000(1,7) B10000(1,7) B30000(1,7) B60000(1,7) \
B300000(1,7) B600000(1,7) B1.8e+06(1,7) B3.6e+06(1,7)\n"
        );
    }

    #[test]
    fn gauge_wins_a_name_clash_like_envoy() {
        let store = Store::new();
        store.counter("same").add(1);
        store.gauge("same").set(5);
        assert_eq!(store.render_text(&RenderOptions::default()), "same: 5\n");
    }
}
