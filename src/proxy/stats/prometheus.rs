//! Admin `/stats/prometheus` in Envoy's text exposition format (`prometheus_stats.cc`).
//!
//! Stats are grouped into families by tag-extracted name (one `# TYPE` line each, no blank
//! lines between families), in the order counters, gauges, optional text readouts, histograms.
//! Envoy sorts families and the stats inside them with its symbol table, which compares names
//! dot-separated token by token; that differs from plain string order (`a.b` < `a-b`), so the
//! same comparison is used here.

use std::fmt::Write as _;

use super::bins::DEFAULT_BUCKETS;
use super::number_format::{format_g, push_u64};
use super::store::{StatMeta, Store};
use super::tags::Tag;
use super::RenderOptions;

/// Replaces everything outside `[a-zA-Z0-9_]`, as Envoy's `sanitizeName` does.
fn sanitize_name(name: &str, out: &mut String) {
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
}

/// Escapes `\`, newline and `"` in label values (Envoy's `sanitizeValue`).
fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// `PrometheusStatsFormatter::metricName` without custom namespaces.
pub(super) fn metric_name(tag_extracted_name: &str) -> String {
    let mut out = String::with_capacity(tag_extracted_name.len() + 6);
    out.push_str("envoy_");
    sanitize_name(tag_extracted_name, &mut out);
    out
}

/// `PrometheusStatsFormatter::formattedTags`.
pub(super) fn format_labels(tags: &[Tag]) -> String {
    let mut out = String::new();
    for (i, tag) in tags.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        sanitize_name(&tag.name, &mut out);
        out.push_str("=\"");
        escape_label_value(&tag.value, &mut out);
        out.push('"');
    }
    out
}

/// Ranks `.` below every other byte, which turns a plain byte comparison into Envoy's
/// `SymbolTable::lessThan` token-wise order (stat names never contain control bytes).
fn symbol_byte(b: u8) -> u8 {
    if b == b'.' {
        1
    } else {
        b
    }
}

/// A key whose byte order is Envoy's Prometheus order: family (tag-extracted name) first, then
/// the full name, both compared token by token. Built once at registration so a scrape sorts
/// with plain `memcmp`s.
pub(super) fn sort_key(tag_extracted_name: &str, name: &str) -> Box<[u8]> {
    let mut key = Vec::with_capacity(tag_extracted_name.len() + name.len() + 1);
    key.extend(tag_extracted_name.bytes().map(symbol_byte));
    key.push(0);
    key.extend(name.bytes().map(symbol_byte));
    key.into_boxed_slice()
}

/// Sorts by family, then by full name within the family, as Envoy's `outputStatType` does.
fn sort_families<T>(stats: &mut [(&StatMeta, T)]) {
    stats.sort_unstable_by(|(a, _), (b, _)| a.prom_sort_key.cmp(&b.prom_sort_key));
}

/// Writes `# TYPE` once per family; `stats` must already be sorted by family.
fn write_families<T>(
    out: &mut String,
    stats: &[(&StatMeta, T)],
    kind: &str,
    mut write_stat: impl FnMut(&mut String, &StatMeta, &T),
) {
    let mut current: Option<&str> = None;
    for (meta, value) in stats {
        if current != Some(meta.tag_extracted_name.as_str()) {
            current = Some(&meta.tag_extracted_name);
            let _ = writeln!(out, "# TYPE {} {}", meta.prom_name, kind);
        }
        write_stat(out, meta, value);
    }
}

pub(super) fn render(store: &Store, options: &RenderOptions) -> String {
    let mut out = String::with_capacity(128 * 1024);

    {
        let counters = store.counters();
        let mut stats: Vec<(&StatMeta, u64)> = counters
            .values()
            .filter(|c| options.shows(c.name(), c.used()))
            .map(|c| (&c.0.meta, c.value()))
            .collect();
        sort_families(&mut stats);
        write_families(&mut out, &stats, "counter", write_numeric);
    }
    {
        let gauges = store.gauges();
        let mut stats: Vec<(&StatMeta, u64)> = gauges
            .values()
            .filter(|g| options.shows(g.name(), g.used()))
            .map(|g| (&g.0.meta, g.value()))
            .collect();
        sort_families(&mut stats);
        write_families(&mut out, &stats, "gauge", write_numeric);
    }
    if options.prometheus_text_readouts {
        let readouts = store.text_readouts();
        let mut stats: Vec<(&StatMeta, String)> = readouts
            .values()
            .filter(|t| options.shows(t.name(), t.used()))
            .map(|t| (&t.0.meta, t.value()))
            .collect();
        sort_families(&mut stats);
        // Prometheus has no string type, so Envoy exposes the text as a label on a 0 gauge.
        write_families(&mut out, &stats, "gauge", |out, meta, value| {
            out.push_str(&meta.prom_name);
            out.push('{');
            out.push_str(&meta.prom_labels);
            if !meta.prom_labels.is_empty() {
                out.push(',');
            }
            out.push_str("text_value=\"");
            escape_label_value(value, out);
            out.push_str("\"} 0\n");
        });
    }
    {
        let histograms = store.histograms();
        let mut stats: Vec<(&StatMeta, ())> = histograms
            .values()
            .filter(|h| options.shows(h.name(), h.0.used()))
            .map(|h| (&h.0.meta, ()))
            .collect();
        sort_families(&mut stats);
        let by_name = &*histograms;
        write_families(&mut out, &stats, "histogram", |out, meta, ()| {
            if let Some(h) = by_name.get(&meta.name) {
                write_histogram(out, meta, &h.0.lock_state().cumulative);
            }
        });
    }
    out
}

fn write_numeric(out: &mut String, meta: &StatMeta, value: &u64) {
    out.push_str(&meta.prom_name);
    out.push('{');
    out.push_str(&meta.prom_labels);
    out.push_str("} ");
    push_u64(out, *value);
    out.push('\n');
}

/// Bucket bounds as `{:.32g}` prints them; they never change, so format them once.
fn bucket_labels() -> &'static [String; 19] {
    static LABELS: std::sync::OnceLock<[String; 19]> = std::sync::OnceLock::new();
    LABELS.get_or_init(|| DEFAULT_BUCKETS.map(|b| format_g(b, 32)))
}

fn write_histogram(out: &mut String, meta: &StatMeta, stats: &super::HistogramStatistics) {
    let name = &meta.prom_name;
    let labels = &meta.prom_labels;
    let bucket_prefix = |out: &mut String| {
        out.push_str(name);
        out.push_str("_bucket{");
        out.push_str(labels);
        if !labels.is_empty() {
            out.push(',');
        }
        out.push_str("le=\"");
    };
    for (le, count) in bucket_labels().iter().zip(stats.buckets.iter()) {
        bucket_prefix(out);
        out.push_str(le);
        out.push_str("\"} ");
        push_u64(out, *count);
        out.push('\n');
    }
    let count = stats.sample_count;
    bucket_prefix(out);
    out.push_str("+Inf\"} ");
    push_u64(out, count);
    out.push('\n');
    let sum = format_g(stats.sample_sum, 32);
    let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
    let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
}

#[cfg(test)]
mod tests {
    use super::super::{HistogramCompat, RenderOptions, Store, TagProducer};
    use super::*;
    use std::cmp::Ordering;

    fn symbol_order(a: &str, b: &str) -> Ordering {
        a.bytes().map(symbol_byte).cmp(b.bytes().map(symbol_byte))
    }
    use regex::Regex;

    fn prom(store: &Store) -> String {
        store.render_prometheus(&RenderOptions::default())
    }

    #[test]
    fn counters_are_grouped_by_tag_extracted_name() {
        let store = Store::new();
        store.counter("cluster.service1.upstream_rq_200").add(7);
        store.counter("cluster.service2.upstream_rq_200").add(1);
        store.counter("cluster.service1.upstream_rq_503").add(2);
        store.counter("cluster.service1.upstream_rq_2xx").add(7);
        store.counter("cluster.service1.upstream_rq_total").add(7);
        store
            .counter("http.ingress_http.downstream_rq_total")
            .add(9);
        store
            .counter("listener.0.0.0.0_8080.downstream_cx_total")
            .add(3);
        store
            .counter("listener.0.0.0.0_8080.http.ingress_http.downstream_rq_2xx")
            .add(4);
        store.counter("listener.admin.downstream_cx_total").add(1);
        assert_eq!(
            prom(&store),
            "\
# TYPE envoy_cluster_upstream_rq counter
envoy_cluster_upstream_rq{envoy_response_code=\"200\",envoy_cluster_name=\"service1\"} 7
envoy_cluster_upstream_rq{envoy_response_code=\"503\",envoy_cluster_name=\"service1\"} 2
envoy_cluster_upstream_rq{envoy_response_code=\"200\",envoy_cluster_name=\"service2\"} 1
# TYPE envoy_cluster_upstream_rq_total counter
envoy_cluster_upstream_rq_total{envoy_cluster_name=\"service1\"} 7
# TYPE envoy_cluster_upstream_rq_xx counter
envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"2\",envoy_cluster_name=\"service1\"} 7
# TYPE envoy_http_downstream_rq_total counter
envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix=\"ingress_http\"} 9
# TYPE envoy_listener_admin_downstream_cx_total counter
envoy_listener_admin_downstream_cx_total{} 1
# TYPE envoy_listener_downstream_cx_total counter
envoy_listener_downstream_cx_total{envoy_listener_address=\"0.0.0.0_8080\"} 3
# TYPE envoy_listener_http_downstream_rq_xx counter
envoy_listener_http_downstream_rq_xx{envoy_response_code_class=\"2\",envoy_http_conn_manager_prefix=\"ingress_http\",envoy_listener_address=\"0.0.0.0_8080\"} 4
"
        );
    }

    /// Envoy's prometheus_stats_test.cc histogram, values {50, 20, 30, 70, 100, 5000, 200}.
    fn envoy_test_histogram(store: &Store) {
        let h = store.histogram("cluster.service1.upstream_rq_time");
        for v in [50, 20, 30, 70, 100, 5000, 200] {
            h.record(v);
        }
    }

    fn expected_histogram(counts: [u64; 19], sum: &str) -> String {
        let mut out = String::from("# TYPE envoy_cluster_upstream_rq_time histogram\n");
        for (le, n) in super::bucket_labels().iter().zip(counts) {
            out.push_str(&format!(
                "envoy_cluster_upstream_rq_time_bucket{{envoy_cluster_name=\"service1\",le=\"{le}\"}} {n}\n"
            ));
        }
        out.push_str(&format!(
            "envoy_cluster_upstream_rq_time_bucket{{envoy_cluster_name=\"service1\",le=\"+Inf\"}} 7\n\
envoy_cluster_upstream_rq_time_sum{{envoy_cluster_name=\"service1\"}} {sum}\n\
envoy_cluster_upstream_rq_time_count{{envoy_cluster_name=\"service1\"}} 7\n"
        ));
        out
    }

    #[test]
    fn histogram_matches_released_envoy_test_output() {
        let store = Store::new();
        store.gauge("cluster.service1.upstream_cx_active").set(2);
        envoy_test_histogram(&store);
        store.histogram("cluster.service2.upstream_rq_time");
        store.flush();
        let expected = "\
# TYPE envoy_cluster_upstream_cx_active gauge
envoy_cluster_upstream_cx_active{envoy_cluster_name=\"service1\"} 2
# TYPE envoy_cluster_upstream_rq_time histogram
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"service1\",le=\"0.5\"} 0
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"service1\",le=\"1\"} 0
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"service1\",le=\"5\"} 0
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"service1\",le=\"10\"} 0
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"service1\",le=\"25\"} 1
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"service1\",le=\"50\"} 2
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"service1\",le=\"100\"} 4
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"service1\",le=\"250\"} 6
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"service1\",le=\"500\"} 6
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"service1\",le=\"1000\"} 6
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"service1\",le=\"2500\"} 6
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"service1\",le=\"5000\"} 6
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"service1\",le=\"10000\"} 7
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"service1\",le=\"30000\"} 7
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"service1\",le=\"60000\"} 7
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"service1\",le=\"300000\"} 7
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"service1\",le=\"600000\"} 7
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"service1\",le=\"1800000\"} 7
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"service1\",le=\"3600000\"} 7
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"service1\",le=\"+Inf\"} 7
envoy_cluster_upstream_rq_time_sum{envoy_cluster_name=\"service1\"} 5532
envoy_cluster_upstream_rq_time_count{envoy_cluster_name=\"service1\"} 7
";
        let service2_zero: String = super::bucket_labels()
            .iter()
            .map(|le| {
                format!(
                    "envoy_cluster_upstream_rq_time_bucket{{envoy_cluster_name=\"service2\",le=\"{le}\"}} 0\n"
                )
            })
            .collect();
        let full = format!(
            "{expected}{service2_zero}\
envoy_cluster_upstream_rq_time_bucket{{envoy_cluster_name=\"service2\",le=\"+Inf\"}} 0
envoy_cluster_upstream_rq_time_sum{{envoy_cluster_name=\"service2\"}} 0
envoy_cluster_upstream_rq_time_count{{envoy_cluster_name=\"service2\"}} 0
"
        );
        assert_eq!(prom(&store), full);

        // used_only drops the never-flushed service2 histogram.
        let used = store.render_prometheus(&RenderOptions {
            used_only: true,
            ..Default::default()
        });
        assert_eq!(used, expected);
    }

    #[test]
    fn histogram_matches_envoy_main_test_output() {
        let store = Store::with_config(TagProducer::envoy_defaults(), HistogramCompat::Main);
        envoy_test_histogram(&store);
        store.flush();
        assert_eq!(
            prom(&store),
            expected_histogram(
                [0, 0, 0, 0, 1, 3, 5, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7],
                "5531.1160155998386471765115857124"
            )
        );
        let released = Store::new();
        envoy_test_histogram(&released);
        released.flush();
        assert_eq!(
            prom(&released),
            expected_histogram(
                [0, 0, 0, 0, 1, 2, 4, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7],
                "5532"
            )
        );
    }

    #[test]
    fn untagged_histogram_has_bare_le() {
        let store = Store::new();
        store.histogram("histogram1").record(1);
        store.flush();
        let out = prom(&store);
        assert!(out.starts_with(
            "# TYPE envoy_histogram1 histogram\nenvoy_histogram1_bucket{le=\"0.5\"} 0\n"
        ));
        assert!(out.contains("envoy_histogram1_bucket{le=\"5\"} 1\n"));
        assert!(out.contains("envoy_histogram1_sum{} 1.0500000000000000444089209850063\n"));
        assert!(out.ends_with("envoy_histogram1_count{} 1\n"));
    }

    #[test]
    fn text_readouts_are_opt_in_gauges() {
        let store = Store::new();
        store
            .text_readout("cluster.c1.version_text")
            .set("a\"b\\c\nd".to_string());
        store
            .text_readout("control_plane.identifier")
            .set("CP-1".to_string());
        assert_eq!(prom(&store), "");
        let out = store.render_prometheus(&RenderOptions {
            prometheus_text_readouts: true,
            ..Default::default()
        });
        assert_eq!(
            out,
            "\
# TYPE envoy_cluster_version_text gauge
envoy_cluster_version_text{envoy_cluster_name=\"c1\",text_value=\"a\\\"b\\\\c\\nd\"} 0
# TYPE envoy_control_plane_identifier gauge
envoy_control_plane_identifier{text_value=\"CP-1\"} 0
"
        );
    }

    #[test]
    fn filter_uses_full_name_and_order_is_token_wise() {
        let store = Store::new();
        store.counter("a-b").inc();
        store.counter("a.b").inc();
        store.counter("cluster.x.upstream_rq_total").inc();
        store.counter("cluster.y.upstream_rq_total").inc();
        store.gauge("server.live").set(1);
        assert_eq!(
            prom(&store),
            "\
# TYPE envoy_a_b counter
envoy_a_b{} 1
# TYPE envoy_a_b counter
envoy_a_b{} 1
# TYPE envoy_cluster_upstream_rq_total counter
envoy_cluster_upstream_rq_total{envoy_cluster_name=\"x\"} 1
envoy_cluster_upstream_rq_total{envoy_cluster_name=\"y\"} 1
# TYPE envoy_server_live gauge
envoy_server_live{} 1
"
        );
        let filtered = store.render_prometheus(&RenderOptions {
            filter: Some(Regex::new(r"cluster\.y\.").unwrap()),
            ..Default::default()
        });
        assert_eq!(
            filtered,
            "# TYPE envoy_cluster_upstream_rq_total counter\n\
envoy_cluster_upstream_rq_total{envoy_cluster_name=\"y\"} 1\n"
        );
        for (a, b) in [
            ("a.b", "a-b"),
            ("a.b", "a.b.c"),
            ("a.x", "ab.y"),
            ("a", "a.b"),
            ("a.b-c.d", "a.b.c"),
            ("x.a_b", "x.a.b"),
        ] {
            let tokens = a.split('.').cmp(b.split('.'));
            assert_eq!(symbol_order(a, b), tokens, "{a} vs {b}");
            assert_eq!(symbol_order(b, a), tokens.reverse(), "{b} vs {a}");
        }
        // Family first, then full name, even when a family name is a prefix of another.
        assert!(sort_key("a", "a.z") < sort_key("a.b", "a.b.a"));
        assert!(sort_key("a", "a.z") < sort_key("ab", "ab.a"));
        assert!(sort_key("c.x", "c.1.x") < sort_key("c.x", "c.2.x"));
        assert_eq!(symbol_order("a.b", "a-b"), Ordering::Less);
    }

    #[test]
    fn extractor_examples_render_as_envoy_metrics() {
        let store = Store::new();
        for name in [
            "vhost.vh1.vcluster.vc1.upstream_rq_200",
            "listener_manager.worker_0.dispatcher.loop_duration_us",
            "listener.0.0.0.0_8080.worker_1.downstream_cx_active",
            "http.ingress_http.fault.svc_a.aborts_injected",
            "ingress_rl.http_local_rate_limit.rate_limited",
            "cluster.service1.circuit_breakers.default.cx_open",
        ] {
            store.counter(name).inc();
        }
        assert_eq!(
            prom(&store),
            "\
# TYPE envoy_cluster_circuit_breakers_default_cx_open counter
envoy_cluster_circuit_breakers_default_cx_open{envoy_cluster_name=\"service1\"} 1
# TYPE envoy_http_fault_aborts_injected counter
envoy_http_fault_aborts_injected{envoy_fault_downstream_cluster=\"svc_a\",envoy_http_conn_manager_prefix=\"ingress_http\"} 1
# TYPE envoy_http_local_rate_limit_rate_limited counter
envoy_http_local_rate_limit_rate_limited{envoy_local_http_ratelimit_prefix=\"ingress_rl\"} 1
# TYPE envoy_listener_worker_downstream_cx_active counter
envoy_listener_worker_downstream_cx_active{envoy_worker_id=\"1\",envoy_listener_address=\"0.0.0.0_8080\"} 1
# TYPE envoy_listener_manager_worker_dispatcher_loop_duration_us counter
envoy_listener_manager_worker_dispatcher_loop_duration_us{envoy_worker_id=\"0\"} 1
# TYPE envoy_vhost_vcluster_upstream_rq counter
envoy_vhost_vcluster_upstream_rq{envoy_response_code=\"200\",envoy_virtual_cluster=\"vc1\",envoy_virtual_host=\"vh1\"} 1
"
        );
    }

    #[test]
    fn label_escaping() {
        let tags = [Tag {
            name: "a.tag-name".to_string(),
            value: "val\"ue with\\ some\n issues".to_string(),
        }];
        assert_eq!(
            format_labels(&tags),
            r#"a_tag_name="val\"ue with\\ some\n issues""#
        );
        assert_eq!(
            metric_name("An.artist.plays-violin@019street"),
            "envoy_An_artist_plays_violin_019street"
        );
    }
}
