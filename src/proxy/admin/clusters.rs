//! `/clusters`: Envoy's `::`-separated text and the `envoy.admin.v3.Clusters` JSON.

use std::fmt::Write;
use std::net::SocketAddr;

use serde_json::{json, Value};

use crate::config::model::Thresholds;
use crate::proxy::cluster::host::{Health, Host};
use crate::proxy::cluster::{Cluster, ClusterManager};

/// A priority's circuit-breaker thresholds, in Envoy's order.
fn thresholds(t: &Thresholds) -> [(&'static str, u32); 4] {
    [
        ("max_connections", t.max_connections),
        ("max_pending_requests", t.max_pending_requests),
        ("max_requests", t.max_requests),
        ("max_retries", t.max_retries),
    ]
}

pub fn text(clusters: &ClusterManager) -> String {
    let mut out = String::new();
    for cluster in clusters.iter() {
        write_cluster(&mut out, cluster);
    }
    out
}

fn write_cluster(out: &mut String, cluster: &Cluster) {
    let name = &cluster.core.config.name;
    let _ = writeln!(
        out,
        "{name}::observability_name::{}",
        cluster.core.config.stat_name()
    );
    let breakers = &cluster.core.config.circuit_breakers;
    for (priority, limits) in [
        ("default_priority", &breakers.default),
        ("high_priority", &breakers.high),
    ] {
        for (threshold, value) in thresholds(limits) {
            let _ = writeln!(out, "{name}::{priority}::{threshold}::{value}");
        }
    }
    let _ = writeln!(out, "{name}::added_via_api::false");
    for host in cluster.core.hosts.load().hosts.iter() {
        let addr = host.address;
        for (stat, value) in host.stats.snapshot() {
            let _ = writeln!(out, "{name}::{addr}::{stat}::{value}");
        }
        let _ = writeln!(out, "{name}::{addr}::hostname::{}", host.hostname);
        let _ = writeln!(out, "{name}::{addr}::health_flags::{}", host.health_flags());
        let _ = writeln!(out, "{name}::{addr}::weight::{}", host.weight);
        let _ = writeln!(out, "{name}::{addr}::region::");
        let _ = writeln!(out, "{name}::{addr}::zone::");
        let _ = writeln!(out, "{name}::{addr}::sub_zone::");
        let _ = writeln!(out, "{name}::{addr}::canary::false");
        let _ = writeln!(out, "{name}::{addr}::priority::{}", host.priority);
        let _ = writeln!(out, "{name}::{addr}::success_rate::-1");
        let _ = writeln!(out, "{name}::{addr}::local_origin_success_rate::-1");
    }
}

/// Proto3 JSON as Envoy prints it: uint64 values are strings, zero values are omitted, gauges
/// carry `"type": "GAUGE"`.
pub fn json(clusters: &ClusterManager) -> String {
    let statuses: Vec<Value> = clusters.iter().map(cluster_json).collect();
    serde_json::to_string_pretty(&json!({ "cluster_statuses": statuses }))
        .expect("JSON values always serialise")
}

fn cluster_json(cluster: &Cluster) -> Value {
    let config = &cluster.core.config;
    let breakers = &config.circuit_breakers;
    let thresholds_json = |priority: Option<&str>, limits: &Thresholds| {
        let mut t = serde_json::Map::new();
        if let Some(p) = priority {
            t.insert("priority".into(), json!(p));
        }
        for (name, value) in thresholds(limits) {
            t.insert(name.into(), json!(value));
        }
        Value::Object(t)
    };
    let hosts: Vec<Value> = cluster
        .core
        .hosts
        .load()
        .hosts
        .iter()
        .map(|host| {
            let mut stats = Vec::new();
            let snapshot = host.stats.snapshot();
            // Counters first, then gauges, each in Envoy's order.
            for (name, value) in snapshot.iter().filter(|(n, _)| !is_gauge(n)) {
                stats.push(stat_json(name, *value, false));
            }
            for (name, value) in snapshot.iter().filter(|(n, _)| is_gauge(n)) {
                stats.push(stat_json(name, *value, true));
            }
            let mut h = json!({
                "address": address_json(host.address),
                "stats": stats,
                "health_status": health_status(host),
                "weight": host.weight,
                "locality": {},
            });
            if !host.hostname.is_empty() {
                h["hostname"] = json!(host.hostname);
            }
            if host.priority != 0 {
                h["priority"] = json!(host.priority);
            }
            h
        })
        .collect();
    json!({
        "name": config.name,
        "observability_name": config.stat_name(),
        "circuit_breakers": {"thresholds": [
            thresholds_json(None, &breakers.default),
            thresholds_json(Some("HIGH"), &breakers.high),
        ]},
        "host_statuses": hosts,
    })
}

/// Envoy's `HostHealthStatus`: the failure flags that are set, and the EDS status (always
/// HEALTHY: meshsim has no EDS).
fn health_status(host: &Host) -> Value {
    let mut status = serde_json::Map::new();
    if host.health() & Health::FAILED_ACTIVE_HC != 0 {
        status.insert("failed_active_health_check".into(), json!(true));
    }
    if host.health() & Health::FAILED_OUTLIER_CHECK != 0 {
        status.insert("failed_outlier_check".into(), json!(true));
    }
    status.insert("eds_health_status".into(), json!("HEALTHY"));
    Value::Object(status)
}

fn is_gauge(name: &str) -> bool {
    matches!(name, "cx_active" | "rq_active")
}

fn stat_json(name: &str, value: u64, gauge: bool) -> Value {
    let mut s = serde_json::Map::new();
    if gauge {
        s.insert("type".into(), json!("GAUGE"));
    }
    s.insert("name".into(), json!(name));
    if value != 0 {
        s.insert("value".into(), json!(value.to_string()));
    }
    Value::Object(s)
}

pub fn address_json(addr: SocketAddr) -> Value {
    json!({"socket_address": {"address": addr.ip().to_string(), "port_value": addr.port()}})
}
