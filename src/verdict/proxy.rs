//! Checks on what the proxies counted: counter deltas between the snapshot at-or-before a
//! window's start and the one at-or-after its end, summed over a proxy service's pods, and the
//! per-endpoint view of `/clusters` (shares, health flags).

use std::collections::BTreeMap;
use std::time::Duration;

use super::evaluate::Measured;
use super::expect::{
    format_at, format_latency, trim_number, ClusterRef, HealthFlag, Split, Threshold,
};
use super::generator::percent;
use super::record::RunRecord;
use super::window::Interval;
use crate::config::diagnostics::did_you_mean;
use crate::scrape::ProxySample;

/// One proxy pod's samples that bracket a window: the last at-or-before its start, those
/// inside, and the first at-or-after its end.
pub struct Series<'r> {
    pub pod: String,
    pub samples: Vec<(Duration, &'r ProxySample)>,
    /// No sample at or before the start: the pod came up later, its counters start at zero.
    pub born_inside: bool,
    /// No sample at or after the end: the pod was last seen inside the window (killed).
    pub ended_early: bool,
}

/// The pods of `service` that any snapshot has: `front-envoy#1`…, or `service1#1`… for the
/// sidecars of `service1`.
pub fn pods(record: &RunRecord, service: &str) -> Vec<String> {
    let mut pods: Vec<String> = record
        .snapshots
        .iter()
        .flat_map(|s| s.proxies.keys())
        .filter(|k| k.split('#').next() == Some(service))
        .cloned()
        .collect();
    pods.sort_by_key(|p| pod_order(p));
    pods.dedup();
    pods
}

/// Sorts `service1#2` before `service1#10`.
pub fn pod_order(pod: &str) -> (String, u64, String) {
    match pod.split_once('#') {
        Some((s, n)) => (s.to_string(), n.parse().unwrap_or(u64::MAX), n.to_string()),
        None => (pod.to_string(), 0, String::new()),
    }
}

pub fn series<'r>(
    record: &'r RunRecord,
    pod: &str,
    from: Duration,
    to: Duration,
) -> Option<Series<'r>> {
    let all: Vec<(Duration, &ProxySample)> = record
        .snapshots
        .iter()
        .filter_map(|s| s.proxies.get(pod).map(|p| (s.at, p)))
        .collect();
    let start = all.iter().rposition(|(at, _)| *at <= from);
    let end = all.iter().position(|(at, _)| *at >= to);
    let first = start.unwrap_or_else(|| {
        all.iter()
            .position(|(at, _)| *at > from)
            .unwrap_or(all.len())
    });
    let last = end.unwrap_or(all.len().checked_sub(1)?);
    if first > last || first >= all.len() {
        return None;
    }
    Some(Series {
        pod: pod.to_string(),
        samples: all[first..=last].to_vec(),
        born_inside: start.is_none(),
        ended_early: end.is_none(),
    })
}

/// The increase of a counter over the series. `value` is None where the sample lacks it
/// (an endpoint not listed then). A decrease means the proxy restarted: an error, as the
/// delta would be meaningless.
/// How many requests a proxy's cluster sent one host over a series (`/clusters` rq_total).
pub fn host_rq_total(s: &Series, cluster: &str, address: &str) -> Result<u64, String> {
    delta(s, &format!("{cluster} {address} rq_total"), |p| {
        p.clusters
            .iter()
            .find(|c| c.name == cluster)?
            .hosts
            .iter()
            .find(|h| h.address == address)
            .map(|h| h.rq_total)
    })
}

pub fn delta(
    s: &Series,
    what: &str,
    value: impl Fn(&ProxySample) -> Option<u64>,
) -> Result<u64, String> {
    let mut base = None;
    let mut last: Option<(Duration, u64)> = None;
    for (i, (at, sample)) in s.samples.iter().enumerate() {
        let Some(v) = value(sample) else { continue };
        if let Some((then, before)) = last {
            if v < before {
                return Err(format!(
                    "{} restarted between {} and {}: {what} went down from {before} to {v}",
                    s.pod,
                    format_at(then),
                    format_at(*at)
                ));
            }
        }
        if base.is_none() {
            // Something first listed after the window's start (a new pod or endpoint) counted
            // every request of its own from zero.
            base = Some(if s.born_inside || i > 0 { 0 } else { v });
        }
        last = Some((*at, v));
    }
    Ok(match (base, last) {
        (Some(b), Some((_, l))) => l - b,
        _ => 0,
    })
}

/// The series of every pod of a service over an interval; Err when no pod was ever scraped.
fn all_series<'r>(
    record: &'r RunRecord,
    service: &str,
    interval: &Interval,
) -> Result<Vec<Series<'r>>, String> {
    let pods = pods(record, service);
    if pods.is_empty() {
        let known: Vec<String> = record
            .snapshots
            .iter()
            .flat_map(|s| s.proxies.keys().cloned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        return Err(format!(
            "no snapshot has a proxy of service `{service}` (proxies scraped: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ));
    }
    let series: Vec<Series> = pods
        .iter()
        .filter_map(|p| series(record, p, interval.from, interval.to))
        .collect();
    if series.is_empty() {
        return Err(format!(
            "no snapshot of {} brackets {} (scraped at {})",
            pods.join(", "),
            interval.label,
            scrape_times(record, &pods[0])
        ));
    }
    Ok(series)
}

fn scrape_times(record: &RunRecord, pod: &str) -> String {
    let times: Vec<String> = record
        .snapshots
        .iter()
        .filter(|s| s.proxies.contains_key(pod))
        .map(|s| format_at(s.at))
        .collect();
    match times.len() {
        0 => "never".into(),
        n if n > 4 => format!("{}…{}, {n} times", times[0], times[n - 1]),
        _ => times.join(", "),
    }
}

/// Notes about pods whose counts do not span the whole window.
fn series_notes(series: &[Series]) -> Vec<String> {
    let mut notes = Vec::new();
    for s in series {
        if s.born_inside {
            notes.push(format!(
                "{} first scraped at {} (counted from zero)",
                s.pod,
                format_at(s.samples[0].0)
            ));
        }
        if s.ended_early {
            let last = s.samples.last().map(|(at, _)| *at).unwrap_or_default();
            notes.push(format!("{} last scraped at {}", s.pod, format_at(last)));
        }
    }
    notes
}

fn has_cluster(series: &[Series], cluster: &str) -> bool {
    series.iter().any(|s| {
        s.samples
            .iter()
            .any(|(_, p)| p.cluster_names().iter().any(|c| c == cluster))
    })
}

fn no_cluster(series: &[Series], service: &str, cluster: &str) -> String {
    let mut names: Vec<String> = series
        .iter()
        .flat_map(|s| s.samples.iter().flat_map(|(_, p)| p.cluster_names()))
        .collect();
    names.sort();
    names.dedup();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let hint = match did_you_mean(cluster, &refs) {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    };
    format!(
        "{service} has no cluster `{cluster}` (its clusters: {}){hint}",
        names.join(", ")
    )
}

/// Sum over the service's pods of a counter's delta.
fn counter_sum(series: &[Series], stat: &str) -> Result<u64, String> {
    let mut total = 0;
    for s in series {
        total += delta(s, stat, |p| Some(p.stat(stat)))?;
    }
    Ok(total)
}

/// The service's requests to each endpoint of a cluster, by pod (`record.endpoints`).
pub fn endpoint_counts(
    record: &RunRecord,
    series: &[Series],
    cluster: &str,
) -> Result<BTreeMap<String, u64>, String> {
    let mut by_pod: BTreeMap<String, u64> = BTreeMap::new();
    for s in series {
        let mut addresses: Vec<&str> = s
            .samples
            .iter()
            .flat_map(|(_, p)| p.clusters.iter().filter(|c| c.name == cluster))
            .flat_map(|c| c.hosts.iter().map(|h| h.address.as_str()))
            .collect();
        addresses.sort();
        addresses.dedup();
        for address in addresses {
            let n = host_rq_total(s, cluster, address)?;
            let pod = record
                .endpoints
                .get(address)
                .cloned()
                .unwrap_or_else(|| address.to_string());
            *by_pod.entry(pod).or_default() += n;
        }
    }
    Ok(by_pod)
}

pub fn endpoint_split(
    record: &RunRecord,
    interval: &Interval,
    cluster: &ClusterRef,
    split: &Split,
) -> Result<Measured, String> {
    let series = all_series(record, &cluster.service, interval)?;
    if !series.iter().any(|s| {
        s.samples
            .iter()
            .any(|(_, p)| p.clusters.iter().any(|c| c.name == cluster.cluster))
    }) {
        return Err(no_cluster(&series, &cluster.service, &cluster.cluster));
    }
    let counts = endpoint_counts(record, &series, &cluster.cluster)?;
    let mut parts: Vec<(String, u64)> = counts.into_iter().collect();
    parts.sort_by_key(|(p, _)| pod_order(p));
    judge_split(&parts, split, "endpoints", &series_notes(&series))
}

pub fn cluster_split(
    record: &RunRecord,
    interval: &Interval,
    service: &str,
    clusters: &[String],
    split: &Split,
) -> Result<Measured, String> {
    let series = all_series(record, service, interval)?;
    let mut parts = Vec::new();
    for c in clusters {
        if !has_cluster(&series, c) {
            return Err(no_cluster(&series, service, c));
        }
        parts.push((
            c.clone(),
            counter_sum(&series, &format!("cluster.{c}.upstream_rq_total"))?,
        ));
    }
    judge_split(&parts, split, "clusters", &series_notes(&series))
}

/// Shares of `parts` against a split: `even ±10%` = each within fair × (1 ± 10%); `80/20
/// ±3%` = each within its weight ± 3 percentage points.
pub fn judge_split(
    parts: &[(String, u64)],
    split: &Split,
    what: &str,
    notes: &[String],
) -> Result<Measured, String> {
    let total: u64 = parts.iter().map(|(_, n)| n).sum();
    if parts.is_empty() {
        return Err(format!("no {what} were listed"));
    }
    if total == 0 {
        return Err(format!(
            "no requests reached the {what} ({}) in this window",
            parts
                .iter()
                .map(|(p, _)| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let names = || {
        parts
            .iter()
            .map(|(p, _)| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let targets: Vec<(f64, f64)> = match split {
        Split::Even { tolerance } => {
            let fair = 100.0 / parts.len() as f64;
            let slack = fair * tolerance / 100.0;
            vec![(fair - slack, fair + slack); parts.len()]
        }
        Split::Weights { weights, tolerance } => {
            if weights.len() != parts.len() {
                return Ok(Measured::new(
                    false,
                    format!("{} {what}, {} weights", parts.len(), weights.len()),
                )
                .with_detail(format!(
                    "the split gives {} weights but there are {} {what} ({}); give one weight per {}, in this order",
                    weights.len(),
                    parts.len(),
                    names(),
                    what.trim_end_matches('s')
                )));
            }
            weights
                .iter()
                .map(|w| (w - tolerance, w + tolerance))
                .collect()
        }
    };
    let shares: Vec<f64> = parts
        .iter()
        .map(|(_, n)| *n as f64 * 100.0 / total as f64)
        .collect();
    let mut lines = vec![parts
        .iter()
        .zip(&shares)
        .map(|((p, n), s)| format!("{p} {} ({n})", percent(*s)))
        .collect::<Vec<_>>()
        .join(" · ")];
    let mut passed = true;
    for (((p, _), share), (lo, hi)) in parts.iter().zip(&shares).zip(&targets) {
        if *share < *lo - 1e-9 || *share > *hi + 1e-9 {
            passed = false;
            lines.push(format!(
                "{p} {} is outside {}–{}",
                percent(*share),
                trim_number(lo.max(0.0)),
                trim_number(hi.min(100.0)) + "%"
            ));
        }
    }
    lines.extend(notes.iter().cloned());
    let value = format!(
        "{} (n={total})",
        shares
            .iter()
            .map(|s| percent(*s))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    Ok(Measured::new(passed, value).with_detail(lines.join("\n")))
}

/// Whether a host's flags show what the check looks for. Flags are Envoy's words, with or
/// without the leading `/` of the text format.
fn shows(flag: HealthFlag, healthy: bool, flags: &[String]) -> bool {
    let names = flags.iter().map(|f| f.trim_start_matches('/'));
    match flag {
        HealthFlag::Ejected => names.clone().any(|f| f == "failed_outlier_check"),
        // Anything but outlier detection: active health checking (`failed_active_hc`,
        // `failed_active_health_check`) or an EDS status.
        HealthFlag::Unhealthy => !healthy && names.clone().any(|f| f != "failed_outlier_check"),
    }
}

pub fn flagged(
    record: &RunRecord,
    interval: &Interval,
    cluster: &ClusterRef,
    pod: &str,
    flag: HealthFlag,
    within: Duration,
) -> Result<Measured, String> {
    let word = match flag {
        HealthFlag::Ejected => "ejected",
        HealthFlag::Unhealthy => "unhealthy",
    };
    let addresses: Vec<&str> = record
        .endpoints
        .iter()
        .filter(|(_, p)| p.as_str() == pod)
        .map(|(a, _)| a.as_str())
        .collect();
    if addresses.is_empty() {
        return Err(format!("the run knows no endpoint address of {pod}"));
    }
    // The clock starts at the fault that hit the pod, else at the scope's start.
    let fault = record.faults.iter().find(|f| {
        f.pod.as_deref() == Some(pod)
            && f.error.is_none()
            && f.at >= interval.from
            && f.at <= interval.to
    });
    let (start, since) = match fault {
        Some(f) => (f.at, format!("{} at {}", f.text, format_at(f.at))),
        None => (
            interval.from,
            format!("the start of the window ({})", format_at(interval.from)),
        ),
    };
    let deadline = start + within;
    let pods = pods(record, &cluster.service);
    if pods.is_empty() {
        return Err(format!(
            "no snapshot has a proxy of service `{}`",
            cluster.service
        ));
    }
    let mut last_seen: Option<(Duration, String)> = None;
    let mut cluster_seen = false;
    let mut ejections_before: BTreeMap<&str, u64> = BTreeMap::new();
    let ejections = format!(
        "cluster.{}.outlier_detection.ejections_enforced_total",
        cluster.cluster
    );
    let mut scraped = false;
    for snap in record
        .snapshots
        .iter()
        .filter(|s| s.at >= start && s.at <= deadline)
    {
        for proxy_pod in &pods {
            let Some(sample) = snap.proxies.get(proxy_pod) else {
                continue;
            };
            scraped = true;
            let Some(c) = sample.clusters.iter().find(|c| c.name == cluster.cluster) else {
                continue;
            };
            cluster_seen = true;
            let host = c
                .hosts
                .iter()
                .find(|h| addresses.contains(&h.address.as_str()));
            if let Some(h) = host {
                let state = if h.flags.is_empty() {
                    "healthy".to_string()
                } else {
                    h.flags.join(",")
                };
                if shows(flag, h.healthy, &h.flags) {
                    let after = snap.at - start;
                    return Ok(Measured::new(
                        true,
                        format!("{word} after {}", format_latency(after)),
                    )
                    .with_detail(format!(
                        "{proxy_pod} listed {pod} ({}) as {} at {}, {} after {since}",
                        h.address,
                        state,
                        format_at(snap.at),
                        format_latency(after)
                    )));
                }
                last_seen = Some((snap.at, state));
            }
            // An ejected endpoint that was also removed from the cluster (a killed pod that
            // DNS dropped) cannot show its flag: the cluster's ejection counter rising while it
            // is not listed is the evidence then.
            if flag == HealthFlag::Ejected {
                let now = sample.stat(&ejections);
                let before = *ejections_before.entry(proxy_pod).or_insert(now);
                if now > before && host.is_none() {
                    return Ok(Measured::new(
                        true,
                        format!("{word} after ≤ {}", format_latency(snap.at - start)),
                    )
                    .with_detail(format!(
                        "{ejections} +{} on {proxy_pod} by {}, when {pod} was no longer listed",
                        now - before,
                        format_at(snap.at)
                    )));
                }
            }
        }
    }
    if !scraped {
        return Err(format!(
            "no snapshot of {} between {} and {}",
            pods.join(", "),
            format_at(start),
            format_at(deadline)
        ));
    }
    if !cluster_seen {
        return Err(format!(
            "{} lists no cluster `{}` between {} and {}",
            cluster.service,
            cluster.cluster,
            format_at(start),
            format_at(deadline)
        ));
    }
    let detail = match last_seen {
        Some((at, state)) => format!(
            "clock from {since}; {pod} last listed at {} as {state}",
            format_at(at)
        ),
        None => format!("clock from {since}; {pod} was not listed in {cluster} then"),
    };
    Ok(Measured::new(false, format!("not {word} by {}", format_at(deadline))).with_detail(detail))
}

pub fn retries(
    record: &RunRecord,
    interval: &Interval,
    cluster: &ClusterRef,
    threshold: &Threshold,
) -> Result<Measured, String> {
    let series = all_series(record, &cluster.service, interval)?;
    if !has_cluster(&series, &cluster.cluster) {
        return Err(no_cluster(&series, &cluster.service, &cluster.cluster));
    }
    let c = &cluster.cluster;
    let retries = counter_sum(&series, &format!("cluster.{c}.upstream_rq_retry"))?;
    let mut detail = Vec::new();
    for what in ["retry_success", "retry_overflow", "retry_limit_exceeded"] {
        let n = counter_sum(&series, &format!("cluster.{c}.upstream_rq_{what}"))?;
        detail.push(format!("upstream_rq_{what} +{n}"));
    }
    let mut lines = vec![detail.join(", ")];
    lines.extend(series_notes(&series));
    Ok(
        Measured::new(threshold.holds(retries as f64), retries.to_string())
            .with_detail(lines.join("\n")),
    )
}

pub fn stat(
    record: &RunRecord,
    interval: &Interval,
    service: &str,
    stat: &str,
    threshold: &Threshold,
) -> Result<Measured, String> {
    let series = all_series(record, service, interval)?;
    let known = series
        .iter()
        .any(|s| s.samples.iter().any(|(_, p)| p.stats.contains_key(stat)));
    if !known {
        let mut names: Vec<&str> = series
            .iter()
            .flat_map(|s| {
                s.samples
                    .iter()
                    .flat_map(|(_, p)| p.stats.keys().map(String::as_str))
            })
            .collect();
        names.sort();
        names.dedup();
        let hint = match did_you_mean(stat, &names) {
            Some(s) => format!("; did you mean `{s}`?"),
            None => String::new(),
        };
        return Err(format!("{service} never reported a stat `{stat}`{hint}"));
    }
    let n = counter_sum(&series, stat)?;
    let notes = series_notes(&series);
    let m = Measured::new(threshold.holds(n as f64), format!("+{n}"));
    Ok(if notes.is_empty() {
        m
    } else {
        m.with_detail(notes.join("\n"))
    })
}
