//! What the load generator is asked to do: a target, a protocol and phases of an open-loop
//! schedule. Decoded from a scenario's `traffic:` block, and handed as JSON to `meshsim load`
//! when the generator runs inside a container on the scenario's network.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadPlan {
    /// `host:port` to connect to: `127.0.0.1:18080` from the host, or `front-envoy:8080`
    /// inside the scenario's network (resolved by the generator).
    pub target: String,
    pub protocol: Protocol,
    /// HTTP/1.1: the most connections open at once (one request in flight on each);
    /// h2c/gRPC: connections the streams are spread over.
    pub connections: u32,
    /// A request with no response after this long ends as `timeout`.
    #[serde(with = "duration_ms")]
    pub timeout: Duration,
    pub phases: Vec<PhasePlan>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// HTTP/1.1 with keep-alive.
    Http1,
    /// HTTP/2 over cleartext, prior knowledge.
    H2c,
    /// gRPC unary calls over h2c: `path` is `/package.Service/Method`, the request message is
    /// the template's body (empty: the default message).
    Grpc,
}

/// Sane bounds for a laptop: more connections than this is a typo.
pub const MAX_CONNECTIONS: u32 = 10_000;

impl Protocol {
    /// The protocol a scenario or `meshsim load --protocol` names: `http1`, `h2c` or `grpc`.
    pub fn from_name(name: &str) -> Option<Protocol> {
        match name {
            "http1" => Some(Protocol::Http1),
            "h2c" => Some(Protocol::H2c),
            "grpc" => Some(Protocol::Grpc),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhasePlan {
    pub name: String,
    #[serde(with = "duration_ms")]
    pub duration: Duration,
    pub rate: Rate,
    /// The weighted mix sent in this phase (never empty).
    pub requests: Vec<RequestTemplate>,
}

/// Requests per second, intended (open loop: sends do not wait for answers).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rate {
    Constant(f64),
    /// Linear from `from` at the phase's start to `to` at its end.
    Ramp {
        from: f64,
        to: f64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestTemplate {
    /// How results are grouped and expectations say `route:`: the name written, else the
    /// path.
    pub name: String,
    pub weight: u32,
    pub method: String,
    pub path: String,
    /// Including `host` when set (HTTP/1.1 Host, h2 :authority).
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

impl LoadPlan {
    /// When each phase starts, from the start of traffic.
    pub fn phase_starts(&self) -> Vec<Duration> {
        let mut at = Duration::ZERO;
        self.phases
            .iter()
            .map(|p| {
                let start = at;
                at += p.duration;
                start
            })
            .collect()
    }

    pub fn total_duration(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }
}

/// Durations as whole milliseconds in JSON.
pub(crate) mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
