//! `http.<stat_prefix>.` stats and the per-listener copy
//! `listener.<addr>.http.<stat_prefix>.`, created eagerly as Envoy does.

use crate::proxy::stats::{Counter, Gauge, Histogram, Store};

pub struct HcmStats {
    pub downstream_cx_total: Counter,
    pub downstream_cx_active: Gauge,
    pub downstream_cx_http1_total: Counter,
    pub downstream_cx_http2_total: Counter,
    pub downstream_cx_http1_active: Gauge,
    pub downstream_cx_http2_active: Gauge,
    pub downstream_cx_destroy: Counter,
    pub downstream_cx_protocol_error: Counter,
    pub downstream_cx_length_ms: Histogram,
    pub downstream_rq_total: Counter,
    pub downstream_rq_http1_total: Counter,
    pub downstream_rq_http2_total: Counter,
    pub downstream_rq_active: Gauge,
    pub downstream_rq_completed: Counter,
    /// downstream_rq_1xx … downstream_rq_5xx
    pub downstream_rq_class: [Counter; 5],
    pub downstream_rq_time: Histogram,
    pub downstream_rq_rx_reset: Counter,
    pub downstream_rq_tx_reset: Counter,
    pub downstream_rq_ws_on_non_ws_route: Counter,
    pub downstream_rq_timeout: Counter,
    pub downstream_cx_idle_timeout: Counter,
    pub downstream_rq_idle_timeout: Counter,
    /// Connections closed because a request head did not arrive within
    /// `request_headers_timeout`.
    pub downstream_rq_header_timeout: Counter,
    /// Connections aborted by the premature-reset guard (HTTP/2 Rapid Reset).
    pub downstream_rq_too_many_premature_resets: Counter,
    pub no_route: Counter,
    pub no_cluster: Counter,
    pub rq_direct_response: Counter,
    pub rq_redirect: Counter,
    pub rq_total: Counter,
    pub listener: ListenerHttpStats,
}

/// `listener.<addr>.http.<prefix>.downstream_rq_<N>xx` and `downstream_rq_completed`.
pub struct ListenerHttpStats {
    pub downstream_rq_class: [Counter; 5],
    pub downstream_rq_completed: Counter,
}

fn classes(store: &Store, prefix: &str) -> [Counter; 5] {
    [1, 2, 3, 4, 5].map(|c| store.counter(&format!("{prefix}downstream_rq_{c}xx")))
}

impl HcmStats {
    pub fn new(store: &Store, stat_prefix: &str, listener_stat_addr: &str) -> Self {
        let p = format!("http.{stat_prefix}.");
        let c = |n: &str| store.counter(&format!("{p}{n}"));
        let g = |n: &str| store.gauge(&format!("{p}{n}"));
        let h = |n: &str| store.histogram(&format!("{p}{n}"));
        let lp = format!("listener.{listener_stat_addr}.http.{stat_prefix}.");
        HcmStats {
            downstream_cx_total: c("downstream_cx_total"),
            downstream_cx_active: g("downstream_cx_active"),
            downstream_cx_http1_total: c("downstream_cx_http1_total"),
            downstream_cx_http2_total: c("downstream_cx_http2_total"),
            downstream_cx_http1_active: g("downstream_cx_http1_active"),
            downstream_cx_http2_active: g("downstream_cx_http2_active"),
            downstream_cx_destroy: c("downstream_cx_destroy"),
            downstream_cx_protocol_error: c("downstream_cx_protocol_error"),
            downstream_cx_length_ms: h("downstream_cx_length_ms"),
            downstream_rq_total: c("downstream_rq_total"),
            downstream_rq_http1_total: c("downstream_rq_http1_total"),
            downstream_rq_http2_total: c("downstream_rq_http2_total"),
            downstream_rq_active: g("downstream_rq_active"),
            downstream_rq_completed: c("downstream_rq_completed"),
            downstream_rq_class: classes(store, &p),
            downstream_rq_time: h("downstream_rq_time"),
            downstream_rq_rx_reset: c("downstream_rq_rx_reset"),
            downstream_rq_tx_reset: c("downstream_rq_tx_reset"),
            downstream_rq_ws_on_non_ws_route: c("downstream_rq_ws_on_non_ws_route"),
            downstream_rq_timeout: c("downstream_rq_timeout"),
            downstream_cx_idle_timeout: c("downstream_cx_idle_timeout"),
            downstream_rq_idle_timeout: c("downstream_rq_idle_timeout"),
            downstream_rq_header_timeout: c("downstream_rq_header_timeout"),
            downstream_rq_too_many_premature_resets: c("downstream_rq_too_many_premature_resets"),
            no_route: c("no_route"),
            no_cluster: c("no_cluster"),
            rq_direct_response: c("rq_direct_response"),
            rq_redirect: c("rq_redirect"),
            rq_total: c("rq_total"),
            listener: ListenerHttpStats {
                downstream_rq_class: classes(store, &lp),
                downstream_rq_completed: store.counter(&format!("{lp}downstream_rq_completed")),
            },
        }
    }

    /// Counts a response code class at both scopes when the response headers go out.
    pub fn record_response_class(&self, code: u16) {
        if let Some(i) = (code / 100)
            .checked_sub(1)
            .map(usize::from)
            .filter(|i| *i < 5)
        {
            self.downstream_rq_class[i].inc();
            self.listener.downstream_rq_class[i].inc();
        }
    }
}
