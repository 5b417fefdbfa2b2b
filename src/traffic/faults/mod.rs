//! Fault steps: what a scenario's `faults:` list does to the mesh while traffic runs, and when.
//!
//! ```yaml
//! faults:
//!   - {at: 8s, kill: service1#1}                          # SIGKILL; `for: 5s` restarts it after
//!   - {at: steady, stop: service1#1, for: 5s}             # at a phase's start; SIGTERM, restarted after
//!   - {at: steady+2s, pause: service1#2, for: 3s}         # docker pause / SIGSTOP
//!   - {at: 5s, restart: service1#2}
//!   - {at: 5s, scale: service1, replicas: 3}              # `for:` scales back
//!   - {at: 5s, disconnect: service1#1, for: 5s}           # off the network, then back
//!   - {at: 5s, proxy: front-envoy, abort: 10%, status: 503, for: 10s}   # admin /runtime_modify
//!   - {at: 5s, proxy: front-envoy, delay: 100ms, percent: 50%}
//!   - {at: shift, reload: front-envoy, config: front-envoy-50-50.yaml}  # hot reload
//!   - {at: 5s, app: service1#1, status: 503, percent: 30%, delay: 100ms}  # a sample app's own faults
//! ```
//!
//! A step names a pod (`service1#2`) or a whole service (every replica). Whatever can be undone
//! is undone after its `for:`, and at the end of the run in any case (also on Ctrl-C).

pub mod decode;
pub mod schedule;

use std::path::PathBuf;
use std::time::Duration;

use crate::config::node::Span;

#[derive(Debug, Clone, PartialEq)]
pub struct FaultStep {
    pub at: When,
    /// Where `at:`'s value is written, for an error about the phase it names.
    pub at_span: Span,
    /// `for:`: undone this long after it was done.
    pub lasts: Option<Duration>,
    pub action: FaultAction,
    pub span: Span,
}

/// When a step happens, from the start of traffic.
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    After(Duration),
    /// `steady` or `steady+2s`: that long after the phase starts.
    Phase {
        name: String,
        plus: Duration,
    },
}

/// A pod (`service1#2`) or every replica of a service (`service1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub service: String,
    pub replica: Option<u32>,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.replica {
            Some(r) => write!(f, "{}#{r}", self.service),
            None => f.write_str(&self.service),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    Kill(Target),
    Stop(Target),
    Pause(Target),
    Restart(Target),
    Disconnect(Target),
    Scale {
        service: String,
        replicas: u32,
    },
    /// The proxy's fault filter, through the admin runtime (`fault.http.*` keys).
    Proxy {
        target: Target,
        abort_percent: Option<f64>,
        abort_status: Option<u16>,
        delay: Option<Duration>,
        delay_percent: Option<f64>,
    },
    /// Replace a proxy service's config (every replica), which it hot-reloads.
    Reload {
        service: String,
        config: PathBuf,
        written: String,
    },
    /// A sample app's own error rate and latency (`/meshsim/fault`).
    App {
        target: Target,
        status: Option<u16>,
        percent: f64,
        delay: Option<Duration>,
    },
}

impl FaultAction {
    /// How reports say it: `kill service1#1`, `proxy front-envoy abort 10% (503)`.
    pub fn describe(&self) -> String {
        match self {
            FaultAction::Kill(t) => format!("kill {t}"),
            FaultAction::Stop(t) => format!("stop {t}"),
            FaultAction::Pause(t) => format!("pause {t}"),
            FaultAction::Restart(t) => format!("restart {t}"),
            FaultAction::Disconnect(t) => format!("disconnect {t}"),
            FaultAction::Scale { service, replicas } => format!("scale {service} to {replicas}"),
            FaultAction::Proxy {
                target,
                abort_percent,
                abort_status,
                delay,
                delay_percent,
            } => {
                let mut parts = vec![format!("proxy {target}")];
                if let Some(p) = abort_percent {
                    parts.push(format!("abort {p}%"));
                }
                if let Some(s) = abort_status {
                    parts.push(format!("status {s}"));
                }
                if let Some(d) = delay {
                    parts.push(format!(
                        "delay {} on {}%",
                        crate::config::decode::scalars::format_duration(*d),
                        delay_percent.unwrap_or(100.0)
                    ));
                }
                parts.join(" ")
            }
            FaultAction::Reload {
                service, written, ..
            } => format!("reload {service} with {written}"),
            FaultAction::App {
                target,
                status,
                percent,
                delay,
            } => {
                let mut parts = vec![format!("app {target}")];
                if let Some(s) = status {
                    parts.push(format!("answers {s} to {percent}%"));
                }
                if let Some(d) = delay {
                    parts.push(format!(
                        "delay {}",
                        crate::config::decode::scalars::format_duration(*d)
                    ));
                }
                parts.join(" ")
            }
        }
    }

    /// The pod or service the step acts on, for the steps that take either.
    pub fn target(&self) -> Option<&Target> {
        match self {
            FaultAction::Kill(t)
            | FaultAction::Stop(t)
            | FaultAction::Pause(t)
            | FaultAction::Restart(t)
            | FaultAction::Disconnect(t)
            | FaultAction::Proxy { target: t, .. }
            | FaultAction::App { target: t, .. } => Some(t),
            FaultAction::Scale { .. } | FaultAction::Reload { .. } => None,
        }
    }

    /// The service the step acts on.
    pub fn service(&self) -> &str {
        match self {
            FaultAction::Scale { service, .. } | FaultAction::Reload { service, .. } => service,
            _ => {
                &self
                    .target()
                    .expect("every other step has a target")
                    .service
            }
        }
    }

    /// The pod it hits, when it is one pod.
    pub fn pod(&self) -> Option<String> {
        self.target()
            .filter(|t| t.replica.is_some())
            .map(Target::to_string)
    }
}
