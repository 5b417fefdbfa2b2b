//! What the load generator measured: every request it sent in exactly one outcome bucket,
//! and the latency of each answered one (from its *intended* send time) in an HDR histogram —
//! per phase and request, and per second of the schedule (for expectations over a window).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How one request ended. Exactly one per request sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// An HTTP response (for gRPC: a response whose grpc-status is 0, or a non-200 HTTP
    /// status).
    Status(u16),
    /// gRPC: HTTP 200 with a non-zero grpc-status.
    Grpc(u32),
    /// No connection could be made (refused, unreachable, DNS failed).
    ConnectError,
    /// No complete response within the plan's timeout.
    Timeout,
    /// The connection or stream was closed or reset before a complete response.
    Reset,
    /// Still in flight when the run was stopped (end of schedule grace, or Ctrl-C).
    Cancelled,
}

impl Outcome {
    /// 2xx (and gRPC OK).
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Status(s) if (200..300).contains(&s))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Status(s) => write!(f, "{s}"),
            Outcome::Grpc(c) => write!(f, "grpc:{c}"),
            Outcome::ConnectError => f.write_str("connect_error"),
            Outcome::Timeout => f.write_str("timeout"),
            Outcome::Reset => f.write_str("reset"),
            Outcome::Cancelled => f.write_str("cancelled"),
        }
    }
}

impl std::str::FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Outcome, String> {
        Ok(match s {
            "connect_error" => Outcome::ConnectError,
            "timeout" => Outcome::Timeout,
            "reset" => Outcome::Reset,
            "cancelled" => Outcome::Cancelled,
            _ => {
                if let Some(code) = s.strip_prefix("grpc:") {
                    Outcome::Grpc(code.parse().map_err(|_| format!("bad grpc code {s:?}"))?)
                } else {
                    Outcome::Status(s.parse().map_err(|_| format!("unknown outcome {s:?}"))?)
                }
            }
        })
    }
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Outcome, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Requests by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts(pub BTreeMap<Outcome, u64>);

impl Counts {
    pub fn add(&mut self, outcome: Outcome, n: u64) {
        *self.0.entry(outcome).or_default() += n;
    }

    pub fn merge(&mut self, other: &Counts) {
        for (o, n) in &other.0 {
            self.add(*o, *n);
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn get(&self, outcome: Outcome) -> u64 {
        self.0.get(&outcome).copied().unwrap_or(0)
    }

    pub fn successes(&self) -> u64 {
        self.0
            .iter()
            .filter(|(o, _)| o.is_success())
            .map(|(_, n)| n)
            .sum()
    }
}

/// Latencies in microseconds, up to an hour, 2 significant digits (1 % resolution): small
/// enough (~26 KiB) to keep one per request template per second of a run.
#[derive(Debug, Clone)]
pub struct Latency(pub Histogram<u64>);

impl Default for Latency {
    fn default() -> Latency {
        Latency(Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("valid bounds"))
    }
}

impl PartialEq for Latency {
    fn eq(&self, other: &Latency) -> bool {
        self.0 == other.0
    }
}

impl Latency {
    pub fn record(&mut self, d: Duration) {
        self.0.saturating_record((d.as_micros() as u64).max(1));
    }

    pub fn merge(&mut self, other: &Latency) {
        // Same bounds everywhere, so adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The latency at quantile `q` (0.0–1.0); None when nothing was recorded.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        (!self.0.is_empty()).then(|| Duration::from_micros(self.0.value_at_quantile(q)))
    }
}

/// As `[[microseconds, count], …]` of the recorded buckets: exact enough to rebuild the
/// histogram, small enough to pass through a container's output.
impl Serialize for Latency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let pairs: Vec<(u64, u64)> = self
            .0
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        pairs.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Latency, D::Error> {
        let pairs = Vec::<(u64, u64)>::deserialize(d)?;
        let mut l = Latency::default();
        for (v, n) in pairs {
            l.0.record_n(v.max(1), n)
                .map_err(serde::de::Error::custom)?;
        }
        Ok(l)
    }
}

/// Outcomes and the latency of the answered requests (status or gRPC outcomes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub counts: Counts,
    pub latency: Latency,
}

impl Tally {
    pub fn merge(&mut self, other: &Tally) {
        self.counts.merge(&other.counts);
        self.latency.merge(&other.latency);
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    pub name: String,
    /// From the start of traffic.
    #[serde(with = "super::plan::duration_ms")]
    pub start: Duration,
    #[serde(with = "super::plan::duration_ms")]
    pub duration: Duration,
    /// Requests the schedule called for in this phase.
    pub scheduled: u64,
    /// By request template name, in the plan's order.
    pub requests: Vec<(String, Tally)>,
}

impl PhaseReport {
    pub fn total(&self) -> Tally {
        let mut t = Tally::default();
        for (_, r) in &self.requests {
            t.merge(r);
        }
        t
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    pub phases: Vec<PhaseReport>,
    /// `seconds[i]`: the requests whose intended send time fell in second i of the schedule,
    /// by request template name.
    pub seconds: Vec<BTreeMap<String, Tally>>,
    /// Requests sent (each is in exactly one outcome bucket of its phase and of its second).
    pub sent: u64,
    /// Stopped before the schedule's end (Ctrl-C); what was in flight is `cancelled`.
    pub interrupted: bool,
}
