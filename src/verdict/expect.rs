//! What a scenario's `expect:` list asks for, decoded: where to look ([`Scope`]) and what must
//! hold there ([`Check`]). One YAML entry may carry several checks (`success_rate` and `p99`
//! for the same phase); each becomes its own [`Expectation`], judged and reported alone.

use std::fmt;
use std::time::Duration;

use crate::config::node::Span;
use crate::traffic::report::Outcome;

#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// The check as written, on one line, for reports: `{phase: steady, p99: "< 50ms"}`.
    pub text: String,
    /// The key of the check (`p99`), so a report can name the line.
    pub span: Span,
    pub scope: Scope,
    pub check: Check,
    /// Names this expectation refers to elsewhere in the scenario, for
    /// [`super::decode::check_references`].
    pub refs: Vec<Reference>,
}

/// A name an expectation uses that must exist elsewhere in the scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub kind: RefKind,
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Phase,
    /// A request template name (the path unless the template is named).
    Route,
    /// A service of the scenario that runs a proxy (standalone or sidecar).
    Service,
}

/// The part of the run an expectation looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// From the start of traffic to the end of the last phase.
    Run,
    Phase(String),
    /// From the start of traffic; generator checks use whole seconds (`from` rounded down,
    /// `to` rounded up).
    Window {
        from: Duration,
        to: Duration,
    },
}

/// A proxy service's cluster: `front-envoy/service1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRef {
    /// A service of the scenario; its pods (`front-envoy#1`, or `service1#1` for a sidecar)
    /// are summed.
    pub service: String,
    pub cluster: String,
}

impl fmt::Display for ClusterRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.service, self.cluster)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// 2xx (and gRPC OK) among the requests that ended (cancelled ones excluded).
    SuccessRate {
        route: Option<String>,
        threshold: Threshold,
    },
    /// A latency percentile (50, 90, 95, 99, 99.9) of the answered requests.
    Latency {
        route: Option<String>,
        percentile: f64,
        threshold: Threshold,
    },
    /// Answered requests per second over the scope.
    Rate {
        route: Option<String>,
        threshold: Threshold,
    },
    /// Requests ending with a status, a status class or a non-HTTP outcome: a count, or (a
    /// percent threshold) a share of the requests sent.
    Status {
        route: Option<String>,
        status: StatusKey,
        threshold: Threshold,
    },
    /// How a cluster's requests spread over its endpoints (`/clusters` rq_total deltas).
    EndpointSplit { cluster: ClusterRef, split: Split },
    /// How a proxy's requests spread over clusters (`cluster.X.upstream_rq_total` deltas).
    ClusterSplit {
        service: String,
        clusters: Vec<String>,
        split: Split,
    },
    /// The pod's endpoint in that cluster is flagged within `within` of the fault that hit
    /// the pod (else of the scope's start).
    Flagged {
        cluster: ClusterRef,
        pod: String,
        flag: HealthFlag,
        within: Duration,
    },
    /// `cluster.X.upstream_rq_retry` delta.
    Retries {
        cluster: ClusterRef,
        threshold: Threshold,
    },
    /// Any counter's delta, summed over the service's pods.
    Stat {
        service: String,
        stat: String,
        threshold: Threshold,
    },
    /// Generator, front proxy and apps reconcile (whole run).
    Accounting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthFlag {
    /// Outlier detection ejected it (`failed_outlier_check`).
    Ejected,
    /// Active health checking (or EDS) marked it unhealthy.
    Unhealthy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StatusKey {
    /// `503`, `grpc:14`, `connect_error`, `timeout`, `reset`, `cancelled`.
    Outcome(Outcome),
    /// `5xx`: the HTTP statuses of that class (gRPC outcomes are HTTP 200: class 2).
    Class(u16),
}

impl StatusKey {
    pub fn matches(self, outcome: Outcome) -> bool {
        match self {
            StatusKey::Outcome(o) => o == outcome,
            StatusKey::Class(c) => match outcome {
                Outcome::Status(s) => s / 100 == c,
                Outcome::Grpc(_) => c == 2,
                _ => false,
            },
        }
    }
}

impl fmt::Display for StatusKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusKey::Outcome(o) => write!(f, "{o}"),
            StatusKey::Class(c) => write!(f, "{c}xx"),
        }
    }
}

/// A comparison with a value: `>= 99%`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub op: Op,
    pub value: Quantity,
}

impl Threshold {
    /// Whether `measured` (in the same unit as the threshold's value) satisfies it.
    pub fn holds(&self, measured: f64) -> bool {
        let v = self.value.number();
        match self.op {
            Op::Lt => measured < v,
            Op::Le => measured <= v,
            Op::Gt => measured > v,
            Op::Ge => measured >= v,
            // Percentages and rates are computed: compare them with a little slack.
            Op::Eq => (measured - v).abs() <= 1e-9 * v.abs().max(1.0),
            Op::Ne => (measured - v).abs() > 1e-9 * v.abs().max(1.0),
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op, self.value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quantity {
    /// 0–100.
    Percent(f64),
    Duration(Duration),
    /// Per second.
    Rate(f64),
    Count(u64),
}

impl Quantity {
    /// The number compared: percent 0–100, milliseconds, per second, or the count.
    pub fn number(&self) -> f64 {
        match *self {
            Quantity::Percent(p) => p,
            Quantity::Duration(d) => d.as_secs_f64() * 1000.0,
            Quantity::Rate(r) => r,
            Quantity::Count(n) => n as f64,
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Quantity::Percent(p) => write!(f, "{}%", trim_number(p)),
            Quantity::Duration(d) => f.write_str(&format_latency(d)),
            Quantity::Rate(r) => write!(f, "{}/s", trim_number(r)),
            Quantity::Count(n) => write!(f, "{n}"),
        }
    }
}

/// How traffic should spread: evenly, or by weights, within a tolerance.
#[derive(Debug, Clone, PartialEq)]
pub enum Split {
    /// Every share within `fair × (1 ± tolerance/100)`, fair = 100% / number of parts.
    Even { tolerance: f64 },
    /// Weights (normalised to percentages, in order); every share within ± `tolerance`
    /// percentage points of its weight's.
    Weights { weights: Vec<f64>, tolerance: f64 },
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Split::Even { tolerance } => write!(f, "even ±{}%", trim_number(*tolerance)),
            Split::Weights { weights, tolerance } => {
                let w: Vec<String> = weights.iter().map(|w| trim_number(*w)).collect();
                write!(f, "{} ±{}%", w.join("/"), trim_number(*tolerance))
            }
        }
    }
}

/// `99.5` → "99.5", `99.0` → "99", at most 3 decimals.
pub fn trim_number(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// A latency as people write them: `850us`, `12.5ms`, `1.2s`.
pub fn format_latency(d: Duration) -> String {
    let us = d.as_micros();
    if us < 1000 {
        format!("{us}us")
    } else if us < 1_000_000 {
        format!("{}ms", trim_number(us as f64 / 1000.0))
    } else {
        format!("{}s", trim_number(us as f64 / 1_000_000.0))
    }
}

/// A moment of the run: `12.3s`.
pub fn format_at(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}
