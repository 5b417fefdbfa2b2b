//! Hand-built run records for the verdict's tests: a front proxy `front-envoy#1` with a
//! cluster `service1` over two sample-app pods, and helpers to vary it.

use std::collections::BTreeMap;
use std::time::Duration;

use super::decode;
use super::expect::Expectation;
use super::record::{AppCounters, FaultLog, PhaseSpan, RunRecord, Snapshot};
use crate::config::decode::{Decoder, Field, Mode};
use crate::config::node::parse;
use crate::scrape::sample::{ClusterSample, HostSample};
use crate::scrape::ProxySample;
use crate::traffic::report::{LoadReport, Outcome, PhaseReport, Tally};

pub const POD1: &str = "10.0.0.1:8000";
pub const POD2: &str = "10.0.0.2:8000";

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Outcomes, and a latency in ms for every answered request.
pub fn tally(outcomes: &[(Outcome, u64)], latency_ms: u64) -> Tally {
    let mut t = Tally::default();
    for (o, n) in outcomes {
        t.counts.add(*o, *n);
        if matches!(o, Outcome::Status(_) | Outcome::Grpc(_)) {
            for _ in 0..*n {
                t.latency.record(Duration::from_millis(latency_ms));
            }
        }
    }
    t
}

pub fn ok(n: u64) -> (Outcome, u64) {
    (Outcome::Status(200), n)
}

/// One phase per `(name, start s, duration s, [(route, tally)])`; its tallies are spread
/// evenly over its seconds (a remainder goes to its first second).
/// A phase of [`load`]: name, start s, duration s, tallies by route.
pub type PhaseRow<'a> = (&'a str, u64, u64, Vec<(&'a str, Tally)>);

pub fn load(phases: &[PhaseRow]) -> LoadReport {
    let total_secs = phases.iter().map(|p| p.1 + p.2).max().unwrap_or(0) as usize;
    let mut seconds: Vec<BTreeMap<String, Tally>> = vec![BTreeMap::new(); total_secs];
    let mut sent = 0;
    for (_, start, dur, requests) in phases {
        for (route, t) in requests {
            sent += t.counts.total();
            for (o, n) in &t.counts.0 {
                for i in 0..*dur {
                    let share = n / dur + if i == 0 { n % dur } else { 0 };
                    let slot = seconds[(start + i) as usize]
                        .entry(route.to_string())
                        .or_default();
                    let latency = t.latency.quantile(0.5).unwrap_or_default();
                    slot.merge(&tally(&[(*o, share)], latency.as_millis() as u64));
                }
            }
        }
    }
    LoadReport {
        phases: phases
            .iter()
            .map(|(name, start, dur, requests)| PhaseReport {
                name: name.to_string(),
                start: Duration::from_secs(*start),
                duration: Duration::from_secs(*dur),
                scheduled: requests.iter().map(|(_, t)| t.counts.total()).sum(),
                requests: requests
                    .iter()
                    .map(|(r, t)| (r.to_string(), t.clone()))
                    .collect(),
            })
            .collect(),
        seconds,
        sent,
        interrupted: false,
    }
}

pub fn host(address: &str, rq_total: u64, flags: &[&str]) -> HostSample {
    HostSample {
        address: address.into(),
        rq_total,
        rq_error: 0,
        rq_active: 0,
        healthy: flags.is_empty(),
        flags: flags.iter().map(|f| f.to_string()).collect(),
    }
}

pub fn proxy(stats: &[(&str, u64)], clusters: Vec<(&str, Vec<HostSample>)>) -> ProxySample {
    ProxySample {
        stats: stats.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        quantiles: Default::default(),
        clusters: clusters
            .into_iter()
            .map(|(name, hosts)| ClusterSample {
                name: name.into(),
                hosts,
            })
            .collect(),
    }
}

pub fn snapshot(at: f64, proxies: Vec<(&str, ProxySample)>, apps: &[(&str, u64)]) -> Snapshot {
    Snapshot {
        at: secs(at),
        proxies: proxies
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        apps: apps
            .iter()
            .map(|(k, n)| {
                (
                    k.to_string(),
                    AppCounters {
                        requests_total: *n,
                        ..Default::default()
                    },
                )
            })
            .collect(),
    }
}

/// The front proxy after `n1`/`n2` requests to the pods (all 2xx, no retries).
pub fn front(n1: u64, n2: u64) -> ProxySample {
    front_with(n1, n2, &[])
}

pub fn front_with(n1: u64, n2: u64, extra: &[(&str, u64)]) -> ProxySample {
    let total = n1 + n2;
    let mut stats = vec![
        ("http.ingress_http.downstream_rq_total", total),
        ("http.ingress_http.downstream_rq_2xx", total),
        ("http.admin.downstream_rq_total", 7),
        ("cluster.service1.upstream_rq_total", total),
    ];
    for (k, v) in extra {
        match stats.iter_mut().find(|(name, _)| name == k) {
            Some(s) => s.1 = *v,
            None => stats.push((k, *v)),
        }
    }
    proxy(
        &stats,
        vec![("service1", vec![host(POD1, n1, &[]), host(POD2, n2, &[])])],
    )
}

/// A clean 10 s run of `2 × per_pod` requests, all 200, evenly spread, with snapshots at 0,
/// 5 and 10.5 s.
pub fn clean_run(per_pod: u64) -> RunRecord {
    let n = per_pod * 2;
    RunRecord {
        scenario: "front-proxy".into(),
        runtime: "local".into(),
        phases: vec![PhaseSpan {
            name: "steady".into(),
            start: secs(0.0),
            end: secs(10.0),
        }],
        load: Some(load(&[(
            "steady",
            0,
            10,
            vec![("/service/1", tally(&[ok(n)], 5))],
        )])),
        snapshots: vec![
            snapshot(
                0.0,
                vec![("front-envoy#1", front(0, 0))],
                &[("service1#1", 0), ("service1#2", 0)],
            ),
            snapshot(
                5.0,
                vec![("front-envoy#1", front(per_pod / 2, per_pod / 2))],
                &[("service1#1", per_pod / 2), ("service1#2", per_pod / 2)],
            ),
            snapshot(
                10.5,
                vec![("front-envoy#1", front(per_pod, per_pod))],
                &[("service1#1", per_pod), ("service1#2", per_pod)],
            ),
        ],
        faults: Vec::new(),
        endpoints: [
            (POD1.to_string(), "service1#1".to_string()),
            (POD2.to_string(), "service1#2".to_string()),
        ]
        .into_iter()
        .collect(),
        target_proxy: Some("front-envoy#1".into()),
        interrupted: false,
    }
}

pub fn fault(at: f64, reverted: Option<f64>, text: &str, pod: Option<&str>) -> FaultLog {
    FaultLog {
        at: secs(at),
        reverted: reverted.map(secs),
        text: text.into(),
        pod: pod.map(str::to_string),
        error: None,
    }
}

/// Decodes `expect:` entries (one per line, without the `- `); panics on any diagnostic.
pub fn expect(entries: &[&str]) -> Vec<Expectation> {
    let yaml: String = std::iter::once("expect:\n".to_string())
        .chain(entries.iter().map(|e| format!("  - {e}\n")))
        .collect();
    let doc = parse(&yaml).expect("valid YAML");
    let root = Field::root(&doc);
    let (k, v) = &doc.as_map().expect("a mapping")[0];
    let mut d = Decoder::new(".".into(), Mode::Bootstrap);
    let out = decode::expectations(&mut d, &root.child(k, v));
    let diags = d.finish();
    assert!(diags.is_empty(), "{diags:#?}");
    out
}
