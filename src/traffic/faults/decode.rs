//! `faults:` → [`FaultStep`]s, every mistake reported with its place and a fix. References to
//! the rest of the scenario (services, phases, proxies' filters) are checked by
//! [`check`](super::super::super::scenario) once the whole file is decoded.

use std::time::Duration;

use crate::config::decode::scalars;
use crate::config::decode::{Decoder, Field, Message, Obj};

use super::{FaultAction, FaultStep, Target, When};
use crate::traffic::decode::positive_duration;

const FAULT: Message = Message {
    name: "Fault",
    fields: &[
        "at",
        "for",
        "kill",
        "stop",
        "pause",
        "restart",
        "disconnect",
        "scale",
        "replicas",
        "proxy",
        "abort",
        "status",
        "delay",
        "percent",
        "reload",
        "config",
        "app",
    ],
    ignored: &[],
};

/// The keys that say what a step does; exactly one per step.
const ACTIONS: &[&str] = &[
    "kill",
    "stop",
    "pause",
    "restart",
    "disconnect",
    "scale",
    "proxy",
    "reload",
    "app",
];

const EXAMPLE: &str =
    "for example `- {at: 8s, kill: service1#1}` or `- {at: steady, pause: service2#1, for: 3s}`";

pub fn faults(d: &mut Decoder, f: &Field) -> Vec<FaultStep> {
    if !matches!(f.node.value, crate::config::node::Value::Seq(_)) {
        d.error_at_value(
            f,
            format!(
                "`faults` must be a list of steps, found a {}",
                f.node.kind()
            ),
            Some(EXAMPLE.into()),
        );
        return Vec::new();
    }
    d.seq(f).iter().filter_map(|item| step(d, item)).collect()
}

fn step(d: &mut Decoder, f: &Field) -> Option<FaultStep> {
    let o = d.obj(f, &FAULT)?;
    let present: Vec<&str> = ACTIONS.iter().copied().filter(|k| o.has(k)).collect();
    let Some(&kind) = present.first() else {
        d.error_help(
            f,
            "a fault step needs what to do: one of kill, stop, pause, restart, disconnect, scale, proxy, reload, app",
            EXAMPLE,
        );
        return None;
    };
    for extra in &present[1..] {
        d.oneof_conflict(&o.get(extra).expect("present"), kind);
    }
    let at = match o.get("at") {
        Some(a) => when(d, &a).map(|w| (w, a.value_span())),
        None => {
            d.missing_help(&o, "at", "say when: `at: 8s` (from the start of traffic), `at: steady` (a phase's start) or `at: steady+2s`");
            None
        }
    };
    let lasts = o
        .get("for")
        .and_then(|l| positive_duration(d, &l, "for example `for: 5s`"));
    let action = action(d, &o, kind)?;
    // Only what can be undone can last.
    if let (Some(_), FaultAction::Restart(_)) = (&lasts, &action) {
        d.error_help(
            &o.get("for").expect("for"),
            "`for` makes no sense with `restart` (there is nothing to undo)",
            "remove `for:`",
        );
    }
    let (at, at_span) = at?;
    Some(FaultStep {
        at,
        at_span,
        lasts,
        action,
        span: f.span,
    })
}

/// Keys that only some actions take.
fn allowed_with(kind: &str) -> &'static [&'static str] {
    match kind {
        "scale" => &["replicas"],
        "proxy" => &["abort", "status", "delay", "percent"],
        "app" => &["status", "delay", "percent"],
        "reload" => &["config"],
        _ => &[],
    }
}

fn action(d: &mut Decoder, o: &Obj, kind: &str) -> Option<FaultAction> {
    for key in ["replicas", "abort", "status", "delay", "percent", "config"] {
        if let Some(f) = o.get(key) {
            if !allowed_with(kind).contains(&key) {
                d.error_help(
                    &f,
                    format!("`{key}` does not go with `{kind}`"),
                    match key {
                        "replicas" => "`replicas` goes with `scale`: `{at: 5s, scale: service1, replicas: 3}`",
                        "config" => "`config` goes with `reload`: `{at: 5s, reload: front-envoy, config: new.yaml}`",
                        _ => "`abort`/`status`/`delay`/`percent` go with `proxy` or `app`: `{at: 5s, proxy: front-envoy, abort: 10%}`",
                    },
                );
            }
        }
    }
    let f = o.get(kind).expect("present");
    match kind {
        "kill" => target(d, &f).map(FaultAction::Kill),
        "stop" => target(d, &f).map(FaultAction::Stop),
        "pause" => target(d, &f).map(FaultAction::Pause),
        "restart" => target(d, &f).map(FaultAction::Restart),
        "disconnect" => target(d, &f).map(FaultAction::Disconnect),
        "scale" => {
            let service = service_name(d, &f)?;
            let replicas = match o.get("replicas") {
                Some(r) => match scalars::uint(d, &r, 64)? {
                    0 => {
                        d.error_help(
                            &r,
                            "`replicas` must be at least 1",
                            "to take every replica away, `stop: SERVICE`",
                        );
                        return None;
                    }
                    n => n as u32,
                },
                None => {
                    d.missing_help(
                        o,
                        "replicas",
                        "say how many: `{at: 5s, scale: service1, replicas: 3}`",
                    );
                    return None;
                }
            };
            Some(FaultAction::Scale { service, replicas })
        }
        "proxy" => {
            let target = target(d, &f)?;
            let abort_percent = o.get("abort").and_then(|a| percent(d, &a));
            let abort_status = o.get("status").and_then(|s| status(d, &s));
            let delay = o
                .get("delay")
                .and_then(|v| positive_duration(d, &v, "for example `delay: 100ms`"));
            let delay_percent = o.get("percent").and_then(|p| percent(d, &p));
            if abort_percent.is_none() && delay.is_none() && !o.has("abort") && !o.has("delay") {
                d.error_help(
                    &f,
                    "a proxy fault needs `abort:` (a percent of requests) or `delay:` (a duration)",
                    "for example `{at: 5s, proxy: front-envoy, abort: 10%, status: 503}` or `{at: 5s, proxy: front-envoy, delay: 100ms, percent: 50%}`",
                );
                return None;
            }
            if let (Some(p), None) = (o.get("percent"), o.get("delay")) {
                d.error_help(
                    &p,
                    "`percent` is the share of requests delayed; it needs `delay:`",
                    "the share aborted is `abort: 10%`",
                );
            }
            if let (Some(s), None) = (o.get("status"), o.get("abort")) {
                d.error_help(
                    &s,
                    "`status` is the status of aborted requests; it needs `abort:`",
                    "add `abort: 10%`",
                );
            }
            Some(FaultAction::Proxy {
                target,
                abort_percent,
                abort_status,
                delay,
                delay_percent,
            })
        }
        "reload" => {
            let service = service_name(d, &f)?;
            let Some(c) = o.get("config") else {
                d.missing_help(o, "config", "name the new config, relative to the scenario: `{at: 5s, reload: front-envoy, config: front-envoy-50-50.yaml}`");
                return None;
            };
            let written = scalars::string(d, &c)?;
            if written.is_empty() {
                d.error_help(&c, "`config` is empty", "name the new Envoy config file");
                return None;
            }
            let config = d.base_dir.join(&written);
            if !config.is_file() {
                d.error_help(
                    &c,
                    format!("no such file: {}", config.display()),
                    "paths are relative to the scenario file's directory",
                );
                return None;
            }
            Some(FaultAction::Reload {
                service,
                config,
                written,
            })
        }
        "app" => {
            let target = target(d, &f)?;
            let status = o.get("status").and_then(|s| status(d, &s));
            let delay = o
                .get("delay")
                .and_then(|v| positive_duration(d, &v, "for example `delay: 100ms`"));
            let percent = o
                .get("percent")
                .and_then(|p| percent(d, &p))
                .unwrap_or(100.0);
            if status.is_none() && delay.is_none() && !o.has("status") && !o.has("delay") {
                d.error_help(
                    &f,
                    "an app fault needs `status:` (answered to `percent:` of requests) or `delay:`",
                    "for example `{at: 5s, app: service1#1, status: 503, percent: 30%}`",
                );
                return None;
            }
            Some(FaultAction::App {
                target,
                status,
                percent,
                delay,
            })
        }
        _ => unreachable!("one of ACTIONS"),
    }
}

/// `service1#2` or `service1`.
fn target(d: &mut Decoder, f: &Field) -> Option<Target> {
    let text = scalars::string(d, f)?;
    let help = "name a pod as `service#replica` (`service1#2`), or a service for all its replicas";
    match text.rsplit_once('#') {
        Some((service, replica)) => match replica.parse::<u32>() {
            Ok(r) if r >= 1 && !service.is_empty() => Some(Target {
                service: service.to_string(),
                replica: Some(r),
            }),
            _ => {
                d.error_at_value(f, format!("`{text}` is not a pod"), Some(help.into()));
                None
            }
        },
        None if !text.is_empty() => Some(Target {
            service: text,
            replica: None,
        }),
        None => {
            d.error_at_value(f, format!("`{}` is empty", f.name()), Some(help.into()));
            None
        }
    }
}

fn service_name(d: &mut Decoder, f: &Field) -> Option<String> {
    let t = target(d, f)?;
    if t.replica.is_some() {
        d.error_at_value(
            f,
            format!("`{}` acts on a whole service, not one pod", f.name()),
            Some(format!("write `{}`", t.service)),
        );
        return None;
    }
    Some(t.service)
}

/// `8s`, `steady`, `steady+2s`.
fn when(d: &mut Decoder, f: &Field) -> Option<When> {
    let text = scalars::string(d, f)?;
    let text = text.trim();
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        return match sample_services::parse_duration(text) {
            Ok(at) => Some(When::After(at)),
            Err(_) => {
                d.error_at_value(
                    f,
                    format!("`at: {text}` is not a time"),
                    Some("write a duration from the start of traffic (`8s`, `1500ms`) or a phase name (`steady`, `steady+2s`)".into()),
                );
                None
            }
        };
    }
    let (name, plus) = match text.split_once('+') {
        Some((name, plus)) => match sample_services::parse_duration(plus.trim()) {
            Ok(p) => (name.trim(), p),
            Err(_) => {
                d.error_at_value(
                    f,
                    format!("`{}` after `+` is not a duration", plus.trim()),
                    Some(format!("for example `{}+2s`", name.trim())),
                );
                return None;
            }
        },
        None => (text, Duration::ZERO),
    };
    if name.is_empty() {
        d.error_at_value(
            f,
            "`at` is empty",
            Some("write `8s` or a phase name".into()),
        );
        return None;
    }
    Some(When::Phase {
        name: name.to_string(),
        plus,
    })
}

/// `10%` (or a bare number, read as a percent).
fn percent(d: &mut Decoder, f: &Field) -> Option<f64> {
    let text = scalars::string(d, f)?;
    let n = text.trim().trim_end_matches('%').trim().parse::<f64>().ok();
    match n {
        Some(p) if (0.0..=100.0).contains(&p) => Some(p),
        _ => {
            d.error_at_value(
                f,
                format!("`{}: {text}` is not a percent", f.name()),
                Some("write a share of requests between 0% and 100%, e.g. `10%`".into()),
            );
            None
        }
    }
}

fn status(d: &mut Decoder, f: &Field) -> Option<u16> {
    let code = scalars::uint(d, f, 599)?;
    if code < 200 {
        d.error_at_value(
            f,
            format!("status {code} cannot be answered"),
            Some("use a final status 200–599, e.g. 503".into()),
        );
        return None;
    }
    Some(code as u16)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::config::decode::Mode;
    use crate::config::node::parse;

    /// Decodes the `faults:` key of `yaml`: the steps, and the diagnostics as
    /// (line, message, help).
    fn decode(yaml: &str) -> (Vec<FaultStep>, Vec<(usize, String, String)>) {
        let doc = parse(yaml).expect("valid YAML");
        let root = Field::root(&doc);
        let (key, node) = &doc.as_map().unwrap()[0];
        let f = root.child(key, node);
        let mut d = Decoder::new(PathBuf::from("."), Mode::Bootstrap);
        let steps = faults(&mut d, &f);
        let diags = d
            .finish()
            .into_iter()
            .map(|d| (d.span.line, d.message, d.help.unwrap_or_default()))
            .collect();
        (steps, diags)
    }

    fn pod(service: &str, replica: u32) -> Target {
        Target {
            service: service.into(),
            replica: Some(replica),
        }
    }

    #[test]
    fn every_kind_of_step_decodes() {
        let (steps, diags) = decode(
            "faults:
  - {at: 8s, kill: service1#1}
  - {at: steady+2s, pause: service1#2, for: 1500ms}
  - {at: 5s, scale: service1, replicas: 3, for: 4s}
  - {at: 5s, proxy: front, abort: 10%, status: 503}
  - {at: 5s, proxy: front, delay: 100ms, percent: 50%}
  - {at: 5s, app: service2, status: 503, percent: 30}
",
        );
        assert!(diags.is_empty(), "{diags:#?}");
        assert_eq!(steps.len(), 6);
        assert_eq!(steps[0].at, When::After(Duration::from_secs(8)));
        assert_eq!(steps[0].action, FaultAction::Kill(pod("service1", 1)));
        assert_eq!(
            steps[1].at,
            When::Phase {
                name: "steady".into(),
                plus: Duration::from_secs(2)
            }
        );
        assert_eq!(steps[1].lasts, Some(Duration::from_millis(1500)));
        assert_eq!(
            steps[2].action,
            FaultAction::Scale {
                service: "service1".into(),
                replicas: 3
            }
        );
        assert_eq!(
            steps[3].action.describe(),
            "proxy front abort 10% status 503"
        );
        assert_eq!(
            steps[4].action.describe(),
            "proxy front delay 0.100s on 50%"
        );
        assert_eq!(
            steps[5].action,
            FaultAction::App {
                target: Target {
                    service: "service2".into(),
                    replica: None
                },
                status: Some(503),
                percent: 30.0,
                delay: None
            }
        );
    }

    #[test]
    fn each_mistake_is_named_with_a_fix() {
        let cases = [
            ("{at: 8s}", "needs what to do", "kill: service1#1"),
            ("{kill: a#1}", "missing required field `at`", "at: 8s"),
            (
                "{at: 8s, kill: a#1, stop: a#2}",
                "cannot be combined with `kill`",
                "alternatives",
            ),
            (
                "{at: soon+x, kill: a#1}",
                "after `+` is not a duration",
                "soon+2s",
            ),
            ("{at: 8 s, kill: a#1}", "is not a time", "steady+2s"),
            (
                "{at: 8s, kill: a#x}",
                "`a#x` is not a pod",
                "service#replica",
            ),
            (
                "{at: 8s, restart: a#1, for: 2s}",
                "makes no sense with `restart`",
                "remove `for:`",
            ),
            (
                "{at: 8s, kill: a#1, replicas: 2}",
                "does not go with `kill`",
                "goes with `scale`",
            ),
            (
                "{at: 8s, scale: a#1, replicas: 2}",
                "acts on a whole service",
                "write `a`",
            ),
            (
                "{at: 8s, scale: a}",
                "missing required field `replicas`",
                "replicas: 3",
            ),
            ("{at: 8s, proxy: front}", "needs `abort:`", "abort: 10%"),
            (
                "{at: 8s, proxy: front, abort: 120%}",
                "is not a percent",
                "between 0% and 100%",
            ),
            (
                "{at: 8s, proxy: front, abort: 5%, status: 99}",
                "cannot be answered",
                "200–599",
            ),
            (
                "{at: 8s, app: a#1, delay: 0s}",
                "must be more than 0",
                "delay: 100ms",
            ),
            (
                "{at: 8s, reload: front, config: nope.yaml}",
                "no such file",
                "relative to the scenario",
            ),
        ];
        for (step, message, help) in cases {
            let (_, diags) = decode(&format!("faults:\n  - {step}\n"));
            assert_eq!(diags.len(), 1, "{step}: {diags:#?}");
            assert!(diags[0].1.contains(message), "{step}: {:?}", diags[0].1);
            assert!(diags[0].2.contains(help), "{step}: {:?}", diags[0].2);
        }
        let (_, diags) = decode("faults: {at: 8s, kill: a#1}\n");
        assert!(diags[0].1.contains("must be a list"), "{diags:?}");
    }
}
