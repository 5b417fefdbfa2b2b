//! Admin `/stats?format=json`, byte-compatible with Envoy's streaming `StatsJsonRender`.
//!
//! Scalars come first as `{"name":..,"value":..}` in the same phase order as the text format;
//! all histograms then share one trailing `{"histograms":...}` element. Doubles go through
//! `std::to_chars` semantics and NaN (an empty interval) becomes `null`.

use super::bins::{DEFAULT_BUCKETS, SUPPORTED_QUANTILES};
use super::histogram::HistogramInner;
use super::number_format::{push_u64, write_to_chars};
use super::render_text::{merge_by_name, Numeric};
use super::store::Store;
use super::{HistogramBucketsMode, RenderOptions};

/// JSON string escaping as Envoy's `Json::sanitize` (nlohmann) does it: short escapes where
/// JSON has them, `\u00xx` for other control characters, everything else verbatim.
pub(super) fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    // Stat names almost never need escaping; copy them in one go like Envoy's fast path.
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_number(out: &mut String, x: f64) {
    if x.is_nan() {
        out.push_str("null");
    } else {
        write_to_chars(out, x);
    }
}

/// Emits the `,` between array entries.
struct Separator(bool);

impl Separator {
    fn next(&mut self, out: &mut String) {
        if self.0 {
            out.push(',');
        }
        self.0 = true;
    }
}

pub(super) fn render(store: &Store, options: &RenderOptions) -> String {
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("{\"stats\":[");
    let mut stats = Separator(false);

    for readout in store.text_readouts().values() {
        let meta = &readout.0.meta;
        if options.shows(&meta.name, readout.used()) {
            stats.next(&mut out);
            out.push_str("{\"name\":");
            write_json_string(&mut out, &meta.name);
            out.push_str(",\"value\":");
            write_json_string(&mut out, &readout.value());
            out.push('}');
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
            stats.next(&mut out);
            out.push_str("{\"name\":");
            write_json_string(&mut out, name);
            out.push_str(",\"value\":");
            push_u64(&mut out, value);
            out.push('}');
        }
    }
    drop((counters, gauges));

    let mut histograms = Separator(false);
    for histogram in store.histograms().values() {
        let inner = &*histogram.0;
        if !options.shows(&inner.meta.name, inner.used()) {
            continue;
        }
        if !histograms.0 {
            stats.next(&mut out);
            write_histograms_preamble(&mut out, options.histogram_buckets);
        }
        histograms.next(&mut out);
        write_histogram(&mut out, inner, options.histogram_buckets);
    }
    if histograms.0 {
        out.push_str(match options.histogram_buckets {
            HistogramBucketsMode::Summary => "]}}",
            HistogramBucketsMode::Cumulative => "]}",
        });
    }
    out.push_str("]}");
    out
}

fn write_histograms_preamble(out: &mut String, mode: HistogramBucketsMode) {
    match mode {
        HistogramBucketsMode::Summary => {
            out.push_str("{\"histograms\":{\"supported_quantiles\":[");
            for (i, q) in SUPPORTED_QUANTILES.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_number(out, q * 100.0);
            }
            out.push_str("],\"computed_quantiles\":[");
        }
        HistogramBucketsMode::Cumulative => out.push_str("{\"histograms\":["),
    }
}

fn write_histogram(out: &mut String, inner: &HistogramInner, mode: HistogramBucketsMode) {
    let state = inner.lock_state();
    out.push_str("{\"name\":");
    write_json_string(out, &inner.meta.name);
    match mode {
        HistogramBucketsMode::Summary => {
            out.push_str(",\"values\":[");
            for i in 0..SUPPORTED_QUANTILES.len() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"cumulative\":");
                write_number(out, state.cumulative.quantiles[i]);
                out.push_str(",\"interval\":");
                write_number(out, state.interval.quantiles[i]);
                out.push('}');
            }
            out.push_str("]}");
        }
        HistogramBucketsMode::Cumulative => {
            out.push_str(",\"buckets\":[");
            for (i, bound) in DEFAULT_BUCKETS.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"upper_bound\":");
                write_number(out, *bound);
                out.push_str(",\"interval\":");
                push_u64(out, state.interval.buckets[i]);
                out.push_str(",\"cumulative\":");
                push_u64(out, state.cumulative.buckets[i]);
                out.push('}');
            }
            out.push_str("]}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{HistogramBucketsMode, RenderOptions, Store};
    use regex::Regex;

    fn envoy_admin_test_store() -> Store {
        // Envoy's AdminStatsTest.StatsAsJson: record 200 and 100, merge, record 100, merge.
        let store = Store::new();
        let h1 = store.histogram("h1");
        let h2 = store.histogram("h2");
        h1.record(200);
        h2.record(100);
        store.flush();
        h1.record(100);
        store.flush();
        store
    }

    #[test]
    fn histograms_match_envoy() {
        let store = envoy_admin_test_store();
        store.counter("cluster.a.upstream_rq_total").add(7);
        store.text_readout("version").set("1.2 \"q\"".to_string());
        let out = store.render_json(&RenderOptions::default());
        let expected = concat!(
            r#"{"stats":[{"name":"version","value":"1.2 \"q\""},"#,
            r#"{"name":"cluster.a.upstream_rq_total","value":7},"#,
            r#"{"histograms":{"supported_quantiles":[0,25,50,75,90,95,99,99.5,99.9,100],"#,
            r#""computed_quantiles":[{"name":"h1","values":["#,
            r#"{"cumulative":100,"interval":100},{"cumulative":105,"interval":102.5},"#,
            r#"{"cumulative":110,"interval":105},{"cumulative":205,"interval":107.5},"#,
            r#"{"cumulative":208,"interval":109},{"cumulative":209,"interval":109.5},"#,
            r#"{"cumulative":209.8,"interval":109.9},{"cumulative":209.9,"interval":109.95},"#,
            r#"{"cumulative":209.98,"interval":109.99},{"cumulative":210,"interval":110}]},"#,
            r#"{"name":"h2","values":["#,
            r#"{"cumulative":100,"interval":null},{"cumulative":102.5,"interval":null},"#,
            r#"{"cumulative":105,"interval":null},{"cumulative":107.5,"interval":null},"#,
            r#"{"cumulative":109,"interval":null},{"cumulative":109.5,"interval":null},"#,
            r#"{"cumulative":109.9,"interval":null},{"cumulative":109.95,"interval":null},"#,
            r#"{"cumulative":109.99,"interval":null},{"cumulative":110,"interval":null}]}]}}]}"#,
        );
        assert_eq!(out, expected);
        serde_json::from_str::<serde_json::Value>(&out).expect("valid JSON");
    }

    #[test]
    fn unused_histogram_is_all_null_and_hidden_by_used_only() {
        let store = Store::new();
        store.histogram("never");
        let out = store.render_json(&RenderOptions::default());
        let nulls = [r#"{"cumulative":null,"interval":null}"#; 10].join(",");
        assert_eq!(
            out,
            format!(
                "{}{}{}",
                r#"{"stats":[{"histograms":{"supported_quantiles":[0,25,50,75,90,95,99,99.5,99.9,100],"computed_quantiles":[{"name":"never","values":["#,
                nulls,
                "]}]}}]}"
            )
        );
        let used_only = store.render_json(&RenderOptions {
            used_only: true,
            ..Default::default()
        });
        assert_eq!(used_only, r#"{"stats":[]}"#);
    }

    #[test]
    fn filter_and_used_only_match_envoy() {
        // Envoy's UsedOnlyStatsAsJsonFilterString: only h1_matches survives.
        let store = Store::new();
        let h1 = store.histogram("h1_matches");
        store.histogram("h2_matches");
        let h3 = store.histogram("h3_not");
        h1.record(200);
        h3.record(200);
        store.flush();
        h1.record(100);
        h3.record(100);
        store.flush();
        store.counter("h1_counter_unused");
        let out = store.render_json(&RenderOptions {
            filter: Some(Regex::new("h[12]").unwrap()),
            used_only: true,
            ..Default::default()
        });
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        let stats = parsed["stats"].as_array().unwrap();
        assert_eq!(stats.len(), 1);
        let computed = stats[0]["histograms"]["computed_quantiles"]
            .as_array()
            .unwrap();
        assert_eq!(computed.len(), 1);
        assert_eq!(computed[0]["name"], "h1_matches");
    }

    #[test]
    fn scalars_only_and_escaping() {
        let store = Store::new();
        store.gauge("b\tgauge").set(3);
        store.counter("a\u{1}counter").inc();
        let out = store.render_json(&RenderOptions::default());
        assert_eq!(
            out,
            r#"{"stats":[{"name":"a\u0001counter","value":1},{"name":"b\tgauge","value":3}]}"#
        );
    }

    #[test]
    fn cumulative_buckets_mode() {
        let store = Store::new();
        store.histogram("h").record(7);
        store.flush();
        let out = store.render_json(&RenderOptions {
            histogram_buckets: HistogramBucketsMode::Cumulative,
            ..Default::default()
        });
        let bounds = [
            "0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000",
            "10000", "30000", "60000", "3e+05", "6e+05", "1800000", "3600000",
        ];
        let buckets: Vec<String> = bounds
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let n = u8::from(i >= 3);
                format!(r#"{{"upper_bound":{b},"interval":{n},"cumulative":{n}}}"#)
            })
            .collect();
        assert_eq!(
            out,
            format!(
                r#"{{"stats":[{{"histograms":[{{"name":"h","buckets":[{}]}}]}}]}}"#,
                buckets.join(",")
            )
        );
        serde_json::from_str::<serde_json::Value>(&out).expect("valid JSON");
    }
}
