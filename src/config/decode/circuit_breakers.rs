//! `Cluster.circuit_breakers`: per-priority thresholds on connections, pending requests,
//! requests and concurrent retries.

use super::super::model::{CircuitBreakers, Thresholds};
use super::scalars;
use super::{Decoder, Field, Message};

const CIRCUIT_BREAKERS: Message = Message {
    name: "CircuitBreakers",
    fields: &["thresholds"],
    ignored: &["per_host_thresholds"],
};

const THRESHOLDS: Message = Message {
    name: "CircuitBreakers.Thresholds",
    fields: &[
        "priority",
        "max_connections",
        "max_pending_requests",
        "max_requests",
        "max_retries",
    ],
    ignored: &["retry_budget", "track_remaining", "max_connection_pools"],
};

pub fn circuit_breakers(d: &mut Decoder, f: &Field) -> CircuitBreakers {
    let mut breakers = CircuitBreakers::default();
    let Some(o) = d.obj(f, &CIRCUIT_BREAKERS) else {
        return breakers;
    };
    let Some(list) = o.get("thresholds") else {
        return breakers;
    };
    for item in d.seq(&list) {
        let Some(t) = d.obj(&item, &THRESHOLDS) else {
            continue;
        };
        let high = match t.get("priority") {
            Some(p) => {
                scalars::enum_name(d, &p, "RoutingPriority", &["DEFAULT", "HIGH"]) == Some("HIGH")
            }
            None => false,
        };
        let into = if high {
            &mut breakers.high
        } else {
            &mut breakers.default
        };
        let defaults = Thresholds::default();
        let mut read = |key: &str, default: u32| {
            t.get(key)
                .and_then(|v| scalars::u32(d, &v))
                .unwrap_or(default)
        };
        *into = Thresholds {
            max_connections: read("max_connections", defaults.max_connections),
            max_pending_requests: read("max_pending_requests", defaults.max_pending_requests),
            max_requests: read("max_requests", defaults.max_requests),
            max_retries: read("max_retries", defaults.max_retries),
        };
    }
    breakers
}
