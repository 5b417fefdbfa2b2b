//! The scraper: every interval, each proxy's admin API (`/stats?format=json`,
//! `/clusters?format=json`) becomes a [`ProxySample`]; two samples give rates. A proxy that
//! stops answering is *stale* — shown as such, never as zero traffic. The plain summary lines
//! of `meshsim up` come from here; the terminal UI will read the same states.

pub mod rates;
pub mod routes;
pub mod sample;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::supervisor::http_probe;

pub use rates::{cluster_rates, hcm_rates, ClusterRate, HcmRate};
pub use routes::RouteTable;
pub use sample::ProxySample;

const SCRAPE_TIMEOUT: Duration = Duration::from_secs(1);

/// The routing table changes only on reload: read `/config_dump` once every this many scrapes.
const ROUTES_EVERY: u32 = 10;

/// A proxy to watch: its name (`front-envoy#1`) and where its admin API answers.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub admin: SocketAddr,
}

/// What is known about one proxy.
#[derive(Debug)]
pub struct ProxyState {
    pub target: Target,
    latest: Option<(Instant, ProxySample)>,
    previous: Option<(Instant, ProxySample)>,
    /// The last failure, since the last success.
    pub error: Option<String>,
    /// From `/config_dump`, refreshed every [`ROUTES_EVERY`] scrapes.
    pub routes: Option<RouteTable>,
    scrapes: u32,
}

impl ProxyState {
    pub fn new(target: Target) -> ProxyState {
        ProxyState {
            target,
            latest: None,
            previous: None,
            error: None,
            routes: None,
            scrapes: 0,
        }
    }

    /// Whether the next scrape should read the routing table too.
    fn wants_routes(&self) -> bool {
        self.routes.is_none() || self.scrapes.is_multiple_of(ROUTES_EVERY)
    }

    pub fn record(&mut self, at: Instant, result: Result<ProxySample, String>) {
        match result {
            Ok(sample) => {
                self.previous = self.latest.take();
                self.latest = Some((at, sample));
                self.error = None;
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Stale: the last scrape failed, or none succeeded within three intervals.
    pub fn is_stale(&self, now: Instant, interval: Duration) -> bool {
        self.error.is_some()
            || self
                .latest
                .as_ref()
                .is_none_or(|(at, _)| now.duration_since(*at) > interval * 3)
    }

    /// Rates over the last two successful scrapes.
    pub fn rates(&self) -> Option<Vec<ClusterRate>> {
        let ((t0, before), (t1, after)) = (self.previous.as_ref()?, self.latest.as_ref()?);
        Some(cluster_rates(before, after, t1.duration_since(*t0)))
    }

    /// Downstream rates per HTTP connection manager, over the last two successful scrapes.
    pub fn hcm_rates(&self) -> Option<Vec<HcmRate>> {
        let ((t0, before), (t1, after)) = (self.previous.as_ref()?, self.latest.as_ref()?);
        Some(hcm_rates(before, after, t1.duration_since(*t0)))
    }
}

/// Scrapes one proxy once.
pub async fn scrape(admin: SocketAddr) -> Result<ProxySample, String> {
    let mut sample = ProxySample::default();
    let (status, stats) = http_probe::get(admin, "/stats?format=json", SCRAPE_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("/stats answered {status}"));
    }
    sample::parse_stats(&stats, &mut sample).map_err(|e| e.to_string())?;
    let (status, clusters) = http_probe::get(admin, "/clusters?format=json", SCRAPE_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    if status == 200 {
        sample::parse_clusters(&clusters, &mut sample).map_err(|e| e.to_string())?;
    }
    Ok(sample)
}

/// Reads one proxy's routing table.
pub async fn scrape_routes(admin: SocketAddr) -> Result<RouteTable, String> {
    let (status, dump) = http_probe::get(admin, "/config_dump", SCRAPE_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("/config_dump answered {status}"));
    }
    routes::parse_config_dump(&dump).map_err(|e| e.to_string())
}

/// Scrapes every proxy, concurrently, into its state.
pub async fn scrape_all(states: &mut [ProxyState]) {
    scrape_all_with(states, false).await
}

/// [`scrape_all`], plus each proxy's routing table now and then when `with_routes`.
pub async fn scrape_all_with(states: &mut [ProxyState], with_routes: bool) {
    let results = futures_util::future::join_all(states.iter().map(|s| {
        let routes = with_routes && s.wants_routes();
        let admin = s.target.admin;
        async move {
            let sample = scrape(admin).await;
            let table = match (&sample, routes) {
                (Ok(_), true) => scrape_routes(admin).await.ok(),
                _ => None,
            };
            (sample, table)
        }
    }))
    .await;
    let now = Instant::now();
    for (state, (result, table)) in states.iter_mut().zip(results) {
        state.scrapes = state.scrapes.wrapping_add(1);
        if table.is_some() {
            state.routes = table;
        }
        state.record(now, result);
    }
}

/// The plain summary: one line per proxy cluster that saw traffic, one per stale proxy, or a
/// single "no traffic" line.
pub fn summary_lines(states: &[ProxyState], now: Instant, interval: Duration) -> Vec<String> {
    let mut lines = Vec::new();
    for state in states {
        let name = &state.target.name;
        if state.is_stale(now, interval) {
            let why = state.error.as_deref().unwrap_or("no answer yet");
            lines.push(format!("{name}  stale ({why})"));
            continue;
        }
        for rate in state.rates().unwrap_or_default() {
            if rate.rps == 0.0 && rate.active == 0 {
                continue;
            }
            let success = rate
                .success
                .map_or("-".to_string(), |s| format!("{:.1}%", s * 100.0));
            let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} ms"));
            let split: Vec<String> = rate
                .hosts
                .iter()
                .map(|h| format!("{:.0}%", h.share * 100.0))
                .collect();
            let healthy = rate.hosts.iter().filter(|h| h.healthy).count();
            lines.push(format!(
                "{name}  {}  {:.1} rps  {success} ok  p50 {}  p99 {}  split {} ({healthy}/{} healthy)",
                rate.cluster,
                rate.rps,
                ms(rate.latency.p50),
                ms(rate.latency.p99),
                if split.is_empty() { "-".to_string() } else { split.join("/") },
                rate.hosts.len()
            ));
        }
    }
    if lines.is_empty() {
        lines.push("no traffic".to_string());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            name: "front#1".into(),
            admin: "127.0.0.1:1".parse().unwrap(),
        }
    }

    #[test]
    fn a_failing_proxy_is_stale_not_idle() {
        let mut state = ProxyState::new(target());
        let t0 = Instant::now();
        state.record(t0, Ok(ProxySample::default()));
        assert!(!state.is_stale(t0, Duration::from_secs(1)));
        state.record(t0, Err("connection refused".into()));
        assert!(state.is_stale(t0, Duration::from_secs(1)));
        let lines = summary_lines(&[state], t0, Duration::from_secs(1));
        assert_eq!(lines, ["front#1  stale (connection refused)"]);
    }

    #[test]
    fn silence_for_three_intervals_is_stale() {
        let mut state = ProxyState::new(target());
        let t0 = Instant::now();
        state.record(t0, Ok(ProxySample::default()));
        assert!(state.is_stale(t0 + Duration::from_secs(4), Duration::from_secs(1)));
    }

    #[tokio::test]
    async fn an_unreachable_admin_is_an_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        assert!(scrape(addr).await.is_err());
    }
}
