//! One scrape of one proxy's admin API, parsed: the counters and gauges of
//! `/stats?format=json`, the latency quantiles of its histograms, and the per-endpoint view of
//! `/clusters?format=json`. Works on Envoy's own output too (the formats are Envoy's).

use std::collections::HashMap;

use serde_json::Value;

/// Latency quantiles in milliseconds, from a histogram's `interval` values (the last flush
/// interval, as Envoy's `/stats` reports them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quantiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    /// Every quantile the proxy computed, as (quantile 0–100, ms), ascending: enough to draw
    /// the latency distribution (Envoy computes P0, P25, P50 … P99.9, P100).
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HostSample {
    /// `ip:port`.
    pub address: String,
    pub rq_total: u64,
    pub rq_error: u64,
    pub rq_active: u64,
    pub healthy: bool,
    /// Why it is not healthy, in Envoy's words: `failed_outlier_check`,
    /// `failed_active_health_check`, an EDS status other than HEALTHY…
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSample {
    pub name: String,
    pub hosts: Vec<HostSample>,
}

/// Everything one scrape learned about one proxy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxySample {
    /// Counters and gauges by full stat name.
    pub stats: HashMap<String, u64>,
    /// Histograms by full stat name.
    pub quantiles: HashMap<String, Quantiles>,
    pub clusters: Vec<ClusterSample>,
}

impl ProxySample {
    pub fn stat(&self, name: &str) -> u64 {
        self.stats.get(name).copied().unwrap_or(0)
    }

    /// Clusters as `/clusters` lists them, plus any with `cluster.<name>.` stats.
    pub fn cluster_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.clusters.iter().map(|c| c.name.clone()).collect();
        for key in self.stats.keys() {
            if let Some(rest) = key.strip_prefix("cluster.") {
                if let Some(name) = rest.strip_suffix(".upstream_rq_total") {
                    if !names.iter().any(|n| n == name) {
                        names.push(name.to_string());
                    }
                }
            }
        }
        names.sort();
        names
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("unexpected admin output: {0}")]
pub struct FormatError(pub(crate) String);

/// `/stats?format=json`: `{"stats":[{"name","value"}…, {"histograms":{…}}]}`.
pub fn parse_stats(text: &str, into: &mut ProxySample) -> Result<(), FormatError> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| FormatError(format!("/stats?format=json: {e}")))?;
    let entries = doc["stats"]
        .as_array()
        .ok_or_else(|| FormatError("/stats?format=json has no `stats` list".into()))?;
    for entry in entries {
        if let (Some(name), Some(value)) = (entry["name"].as_str(), entry["value"].as_u64()) {
            into.stats.insert(name.to_string(), value);
            continue;
        }
        let Some(histograms) = entry.get("histograms") else {
            continue;
        };
        let supported: Vec<f64> = histograms["supported_quantiles"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        let at = |q: f64| supported.iter().position(|s| (*s - q).abs() < 1e-9);
        for computed in histograms["computed_quantiles"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let Some(name) = computed["name"].as_str() else {
                continue;
            };
            let values = computed["values"].as_array().cloned().unwrap_or_default();
            let value = |q: f64| {
                at(q)
                    .and_then(|i| values.get(i))
                    .and_then(|v| v["interval"].as_f64())
            };
            let points = supported
                .iter()
                .zip(&values)
                .filter_map(|(q, v)| Some((*q, v["interval"].as_f64()?)))
                .collect();
            into.quantiles.insert(
                name.to_string(),
                Quantiles {
                    p50: value(50.0),
                    p95: value(95.0),
                    p99: value(99.0),
                    points,
                },
            );
        }
    }
    Ok(())
}

/// `/clusters?format=json`: per cluster, per host, the request counters (strings, absent when
/// zero) and the health status.
pub fn parse_clusters(text: &str, into: &mut ProxySample) -> Result<(), FormatError> {
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| FormatError(format!("/clusters?format=json: {e}")))?;
    for cluster in doc["cluster_statuses"].as_array().into_iter().flatten() {
        let Some(name) = cluster["name"].as_str() else {
            continue;
        };
        let hosts = cluster["host_statuses"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|host| {
                let socket = &host["address"]["socket_address"];
                let stat = |wanted: &str| {
                    host["stats"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|s| s["name"] == wanted)
                        .and_then(|s| match &s["value"] {
                            Value::String(v) => v.parse().ok(),
                            v => v.as_u64(),
                        })
                        .unwrap_or(0)
                };
                let health = &host["health_status"];
                let mut flags: Vec<String> = health
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, v)| k.starts_with("failed_") && v.as_bool() == Some(true))
                    .map(|(k, _)| k.clone())
                    .collect();
                if let Some(eds) = health["eds_health_status"]
                    .as_str()
                    .filter(|s| *s != "HEALTHY")
                {
                    flags.push(eds.to_ascii_lowercase());
                }
                let healthy = flags.is_empty();
                HostSample {
                    address: format!(
                        "{}:{}",
                        socket["address"].as_str().unwrap_or("?"),
                        socket["port_value"].as_u64().unwrap_or(0)
                    ),
                    rq_total: stat("rq_total"),
                    rq_error: stat("rq_error"),
                    rq_active: stat("rq_active"),
                    healthy,
                    flags,
                }
            })
            .collect();
        into.clusters.push(ClusterSample {
            name: name.to_string(),
            hosts,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_counters_quantiles_and_hosts() {
        let mut s = ProxySample::default();
        parse_stats(
            r#"{"stats":[{"name":"cluster.a.upstream_rq_total","value":20},
                {"histograms":{"supported_quantiles":[0,25,50,75,90,95,99,99.5,99.9,100],
                 "computed_quantiles":[{"name":"cluster.a.upstream_rq_time","values":[
                  {"interval":1,"cumulative":1},{"interval":1,"cumulative":1},{"interval":2,"cumulative":2},
                  {"interval":2,"cumulative":2},{"interval":3,"cumulative":3},{"interval":4,"cumulative":4},
                  {"interval":6,"cumulative":6},{"interval":6,"cumulative":6},{"interval":7,"cumulative":7},
                  {"interval":7,"cumulative":7}]}]}}]}"#,
            &mut s,
        )
        .unwrap();
        parse_clusters(
            r#"{"cluster_statuses":[{"name":"a","host_statuses":[
                {"address":{"socket_address":{"address":"10.0.0.2","port_value":80}},
                 "stats":[{"name":"rq_total","value":"12"},{"name":"rq_error"}],
                 "health_status":{"eds_health_status":"HEALTHY"}},
                {"address":{"socket_address":{"address":"10.0.0.3","port_value":80}},
                 "stats":[{"name":"rq_total","value":"8"},{"name":"rq_error","value":"1"}],
                 "health_status":{"failed_outlier_check":true,"eds_health_status":"HEALTHY"}}]}]}"#,
            &mut s,
        )
        .unwrap();
        assert_eq!(s.stat("cluster.a.upstream_rq_total"), 20);
        assert_eq!(
            s.quantiles["cluster.a.upstream_rq_time"],
            Quantiles {
                p50: Some(2.0),
                p95: Some(4.0),
                p99: Some(6.0),
                points: vec![
                    (0.0, 1.0),
                    (25.0, 1.0),
                    (50.0, 2.0),
                    (75.0, 2.0),
                    (90.0, 3.0),
                    (95.0, 4.0),
                    (99.0, 6.0),
                    (99.5, 6.0),
                    (99.9, 7.0),
                    (100.0, 7.0)
                ]
            }
        );
        let hosts = &s.clusters[0].hosts;
        assert_eq!(
            (
                hosts[0].address.as_str(),
                hosts[0].rq_total,
                hosts[0].healthy
            ),
            ("10.0.0.2:80", 12, true)
        );
        assert_eq!((hosts[1].rq_error, hosts[1].healthy), (1, false));
        assert_eq!(hosts[1].flags, ["failed_outlier_check"]);
        assert_eq!(s.cluster_names(), ["a"]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut s = ProxySample::default();
        assert!(parse_stats("<html>", &mut s).is_err());
        assert!(parse_stats("{}", &mut s).is_err());
        assert!(parse_clusters("{}", &mut s).is_ok());
    }
}
