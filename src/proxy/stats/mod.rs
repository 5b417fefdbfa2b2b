//! Envoy-compatible stats: the store the data path records into, and the admin renderers
//! (`/stats`, `/stats?format=json`, `/stats/prometheus`) whose output existing Envoy tooling
//! parses byte for byte.
//!
//! Typical use: resolve handles once (`store.counter("cluster.foo.upstream_rq_total")`), bump
//! them on the data path, call [`Store::flush`] every `stats_flush_interval` so histograms close
//! their interval, and call a `render_*` method from the admin handlers.

mod bins;
mod histogram;
mod number_format;
mod prometheus;
mod render_json;
mod render_text;
mod store;
pub mod tags;

#[cfg(test)]
mod perf_tests;

use regex::Regex;

pub use bins::HistogramCompat;
pub use histogram::{default_buckets, supported_quantiles, Histogram, HistogramStatistics};
pub use store::{Counter, Gauge, Store, TextReadout};
pub use tags::{Tag, TagProducer};

/// How histograms are shown (Envoy's `histogram_buckets` query parameter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HistogramBucketsMode {
    /// Quantile summary, Envoy's default.
    #[default]
    Summary,
    /// `histogram_buckets=cumulative`: counts at or below each default bucket bound.
    Cumulative,
}

/// The admin query parameters shared by all formats.
#[derive(Clone, Debug, Default)]
pub struct RenderOptions {
    /// `filter=`: keep stats whose full name the regex matches anywhere.
    pub filter: Option<Regex>,
    /// `usedonly`: hide stats never written to (histograms: never flushed with samples).
    pub used_only: bool,
    /// `histogram_buckets=` for the text and JSON formats.
    pub histogram_buckets: HistogramBucketsMode,
    /// `text_readouts` for Prometheus: export text readouts as gauges with a `text_value` label.
    pub prometheus_text_readouts: bool,
}

impl RenderOptions {
    /// Envoy's `StatsParams::shouldShowMetric`.
    fn shows(&self, name: &str, used: bool) -> bool {
        (!self.used_only || used) && self.filter.as_ref().is_none_or(|re| re.is_match(name))
    }
}
