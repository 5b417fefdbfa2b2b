//! A scenario's `traffic:` block → [`Traffic`]: the target service and a [`LoadPlan`], decoded
//! with the scenario decoder's machinery (every problem with its position, a did-you-mean for
//! unknown keys, a `help:` with the fix, and nothing stops at the first error).
//!
//! ```yaml
//! traffic:
//!   target: front-envoy:8080       # service:container-port (required)
//!   protocol: http1                # http1 (default) | h2c | grpc
//!   connections: 16                # default 16 (1–10000)
//!   timeout: 5s                    # default 5s; a request with no complete response by then
//!   requests:                      # the default mix for every phase
//!     - {path: /service/1}         # method GET, weight 1, name = path
//!     - {name: s2, weight: 3, method: POST, path: /service/2, headers: {host: example.com}, body: "hi"}
//!   phases:                        # run one after the other (required, at least one)
//!     - {name: warmup, duration: 2s, rate: 50/s}
//!     - {name: steady, duration: 20s, rate: 200/s, requests: [{path: /service/1}]}  # own mix
//!     - {name: ramp, duration: 10s, rate: 10/s..200/s}                              # linear ramp
//! ```
//!
//! Rates are `200/s`, `200` (per second) or `12000/m`; a ramp is `FROM..TO` in those units
//! (either end may be 0, not both). Durations are written as in Envoy configs (`2s`, `0.5s`).
//! Within a phase every request needs its own name (the name groups results and is what
//! expectations call `route:`); it defaults to the path. For gRPC the path is
//! `/package.Service/Method`, the body the request message's bytes (empty: the default message)
//! and the method is always POST.
//!
//! The plan's `target` is the service's name and port as written (how it is reached inside the
//! scenario's network); whoever runs the plan from the host rewrites it to the published port.

use std::time::Duration;

use crate::config::decode::{scalars, Decoder, Field, Message};
use crate::config::diagnostics::did_you_mean;
use crate::config::node::{Span, Value};
use crate::traffic::plan::{LoadPlan, PhasePlan, Protocol, Rate, RequestTemplate, MAX_CONNECTIONS};

/// The decoded `traffic:` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Traffic {
    pub target_service: String,
    pub target_port: u16,
    /// The `target` value, for errors found later (no such service, port not served…).
    pub target_span: Span,
    pub plan: LoadPlan,
}

const TRAFFIC: Message = Message {
    name: "Traffic",
    fields: &[
        "target",
        "protocol",
        "connections",
        "timeout",
        "requests",
        "phases",
    ],
    ignored: &[],
};

const PHASE: Message = Message {
    name: "Phase",
    fields: &["name", "duration", "rate", "requests"],
    ignored: &[],
};

const REQUEST: Message = Message {
    name: "Request",
    fields: &["name", "weight", "method", "path", "headers", "body"],
    ignored: &[],
};

const PROTOCOLS: &[&str] = &["http1", "h2c", "grpc"];
pub const DEFAULT_CONNECTIONS: u32 = 16;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

pub fn traffic(d: &mut Decoder, f: &Field) -> Option<Traffic> {
    let o = d.obj(f, &TRAFFIC)?;
    // Every field is decoded even after a failure, so one run reports every problem.
    let mut ok = true;
    let target = match o.get("target") {
        Some(t) => target(d, &t),
        None => {
            d.missing_help(
                &o,
                "target",
                "name the service and container port to load, e.g. `target: front-envoy:8080`",
            );
            None
        }
    };
    let protocol = match o.get("protocol") {
        Some(p) => protocol(d, &p),
        None => Some(Protocol::Http1),
    };
    let connections = match o.get("connections") {
        Some(c) => match scalars::uint(d, &c, u64::from(MAX_CONNECTIONS)) {
            Some(0) => {
                d.error_help(
                    &c,
                    "`connections` must be at least 1",
                    format!("HTTP/1.1 sends one request at a time per connection; the default is {DEFAULT_CONNECTIONS}"),
                );
                None
            }
            n => n.map(|n| n as u32),
        },
        None => Some(DEFAULT_CONNECTIONS),
    };
    let timeout = match o.get("timeout") {
        Some(t) => positive_duration(d, &t, "e.g. `timeout: 5s`"),
        None => Some(DEFAULT_TIMEOUT),
    };
    let default_mix = o.get("requests").map(|r| mix(d, &r));
    if default_mix.as_ref().is_some_and(|m| m.is_none()) {
        ok = false;
    }
    let default_mix = default_mix.flatten();
    let phases = match o.get("phases") {
        Some(p) => phases(d, &p, default_mix.as_deref()),
        None => {
            d.missing_help(
                &o,
                "phases",
                "give at least one phase: `phases: [{name: steady, duration: 10s, rate: 100/s}]`",
            );
            None
        }
    };
    let ((target_service, target_port, target_span, target), protocol, connections, timeout) =
        (target?, protocol?, connections?, timeout?);
    let phases = phases?;
    if !ok {
        return None;
    }
    Some(Traffic {
        target_service,
        target_port,
        target_span,
        plan: LoadPlan {
            target,
            protocol,
            connections,
            timeout,
            phases,
        },
    })
}

/// `service:port` → (service, port, span, the text).
fn target(d: &mut Decoder, f: &Field) -> Option<(String, u16, Span, String)> {
    let text = scalars::string(d, f)?;
    let text = text.trim();
    let help = "write the service's name and the container port it serves, e.g. `front-envoy:8080`";
    let Some((service, port)) = text.rsplit_once(':') else {
        d.error_at_value(f, format!("target `{text}` has no port"), Some(help.into()));
        return None;
    };
    if service.is_empty() {
        d.error_at_value(
            f,
            format!("target `{text}` has no service name"),
            Some(help.into()),
        );
        return None;
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Some((service.to_string(), p, f.value_span(), text.to_string())),
        _ => {
            d.error_at_value(
                f,
                format!("target `{text}`: `{port}` is not a port (1–65535)"),
                Some(help.into()),
            );
            None
        }
    }
}

fn protocol(d: &mut Decoder, f: &Field) -> Option<Protocol> {
    let text = scalars::string(d, f)?;
    let other = text.trim();
    match Protocol::from_name(other) {
        Some(p) => Some(p),
        None => {
            let help = match did_you_mean(&other.to_ascii_lowercase(), PROTOCOLS) {
                Some(p) => format!("did you mean `{p}`? (valid: http1, h2c, grpc)"),
                None => {
                    "valid: http1 (HTTP/1.1), h2c (HTTP/2 cleartext), grpc (unary calls over h2c)"
                        .into()
                }
            };
            d.error_at_value(f, format!("unknown protocol `{other}`"), Some(help));
            None
        }
    }
}

/// A duration as people write them in a scenario: `5s`, `1.5s`, `300ms`, `2m`.
pub(crate) fn human_duration(d: &mut Decoder, f: &Field) -> Option<Duration> {
    let text = scalars::string(d, f)?;
    match sample_services::parse_duration(&text) {
        Ok(v) => Some(v),
        Err(_) => {
            d.error_at_value(
                f,
                format!("`{}: {text}` is not a duration", f.name()),
                Some("write a number and a unit: `5s`, `1.5s`, `300ms`, `2m`".into()),
            );
            None
        }
    }
}

/// A [`human_duration`] above zero.
pub(crate) fn positive_duration(d: &mut Decoder, f: &Field, example: &str) -> Option<Duration> {
    let v = human_duration(d, f)?;
    if v.is_zero() {
        d.error_help(
            f,
            format!("`{}` must be more than 0", f.name()),
            example.to_string(),
        );
        return None;
    }
    Some(v)
}

fn phases(
    d: &mut Decoder,
    f: &Field,
    default_mix: Option<&[RequestTemplate]>,
) -> Option<Vec<PhasePlan>> {
    let items = d.seq(f);
    if items.is_empty() {
        d.error_at_value(
            f,
            "`phases` is empty: there is nothing to send",
            Some("give at least one phase: `- {name: steady, duration: 10s, rate: 100/s}`".into()),
        );
        return None;
    }
    let mut ok = true;
    let mut out: Vec<PhasePlan> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for item in &items {
        let phase = phase(d, item, default_mix);
        match phase {
            Some(p) if names.contains(&p.name) => {
                d.error_help(
                    item,
                    format!("two phases are named `{}`", p.name),
                    "give each phase its own name: expectations refer to phases by name",
                );
                ok = false;
            }
            Some(p) => {
                names.push(p.name.clone());
                out.push(p);
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn phase(d: &mut Decoder, f: &Field, default_mix: Option<&[RequestTemplate]>) -> Option<PhasePlan> {
    let o = d.obj(f, &PHASE)?;
    let name = match o.get("name") {
        Some(n) => scalars::string(d, &n).and_then(|name| {
            if name.trim().is_empty() {
                d.error_at_value(
                    &n,
                    "the phase's `name` is empty",
                    Some("e.g. `name: steady`".into()),
                );
                None
            } else {
                Some(name.trim().to_string())
            }
        }),
        None => {
            d.missing_help(
                &o,
                "name",
                "name the phase, e.g. `name: steady`; expectations refer to it",
            );
            None
        }
    };
    let duration = match o.get("duration") {
        Some(t) => positive_duration(d, &t, "e.g. `duration: 10s`"),
        None => {
            d.missing_help(
                &o,
                "duration",
                "say how long the phase sends, e.g. `duration: 10s`",
            );
            None
        }
    };
    let rate = match o.get("rate") {
        Some(r) => rate(d, &r),
        None => {
            d.missing_help(
                &o,
                "rate",
                "say how fast, e.g. `rate: 100/s` or a ramp `10/s..200/s`",
            );
            None
        }
    };
    let requests = match o.get("requests") {
        Some(r) => mix(d, &r),
        None => match default_mix {
            Some(m) => Some(m.to_vec()),
            None => {
                d.error_help(
                    f,
                    format!(
                        "phase `{}` has no requests",
                        name.as_deref().unwrap_or("?")
                    ),
                    "give the default mix as `requests:` under `traffic:`, or this phase its own `requests:`",
                );
                None
            }
        },
    };
    Some(PhasePlan {
        name: name?,
        duration: duration?,
        rate: rate?,
        requests: requests?,
    })
}

/// `200/s`, `200`, `12000/m`, or a ramp `10/s..200/s`.
fn rate(d: &mut Decoder, f: &Field) -> Option<Rate> {
    let text = match &f.node.value {
        Value::Scalar { text, .. } => text.trim().to_string(),
        _ => {
            d.error_at_value(
                f,
                format!(
                    "`rate` must be a rate such as `100/s`, found a {}",
                    f.node.kind()
                ),
                None,
            );
            return None;
        }
    };
    let help = "write `100/s`, `100` (per second), `6000/m`, or a ramp `10/s..200/s`";
    let result = match text.split_once("..") {
        Some((from, to)) => per_second(from).and_then(|from| {
            let to = per_second(to)?;
            if from == 0.0 && to == 0.0 {
                Err("a ramp from 0 to 0 sends nothing".to_string())
            } else {
                Ok(Rate::Ramp { from, to })
            }
        }),
        None => per_second(&text).and_then(|r| {
            if r == 0.0 {
                Err("a rate of 0 sends nothing".to_string())
            } else {
                Ok(Rate::Constant(r))
            }
        }),
    };
    match result {
        Ok(rate) => Some(rate),
        Err(why) => {
            d.error_at_value(f, format!("bad rate `{text}`: {why}"), Some(help.into()));
            None
        }
    }
}

/// One rate in requests per second: `N`, `N/s` or `N/m`, N ≥ 0.
fn per_second(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (number, seconds_per_unit) = match text.split_once('/') {
        None => (text, 1.0),
        Some((n, "s")) => (n, 1.0),
        Some((n, "m")) => (n, 60.0),
        Some((_, unit)) => return Err(format!("`/{unit}` is not a unit (use /s or /m)")),
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n / seconds_per_unit),
        _ => Err(format!(
            "`{}` is not a number of requests (0 or more)",
            number.trim()
        )),
    }
}

/// A weighted list of requests; None when any is bad (each reported), or names repeat.
fn mix(d: &mut Decoder, f: &Field) -> Option<Vec<RequestTemplate>> {
    let items = d.seq(f);
    if items.is_empty() {
        d.error_at_value(
            f,
            "`requests` is empty",
            Some("list at least one request, e.g. `- {path: /}`".into()),
        );
        return None;
    }
    let mut ok = true;
    let mut out: Vec<RequestTemplate> = Vec::new();
    for item in &items {
        match request(d, item) {
            Some(t) if out.iter().any(|o| o.name == t.name) => {
                d.error_help(
                    item,
                    format!("two requests in this list are named `{}`", t.name),
                    "results are grouped by name (the path unless `name:` is given): give one of them a distinct `name:`",
                );
                ok = false;
            }
            Some(t) => out.push(t),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn request(d: &mut Decoder, f: &Field) -> Option<RequestTemplate> {
    let o = d.obj(f, &REQUEST)?;
    let mut ok = true;
    let path = match o.get("path") {
        Some(p) => scalars::string(d, &p).and_then(|path| {
            if path.starts_with('/') && path.parse::<http::uri::PathAndQuery>().is_ok() {
                Some(path)
            } else {
                d.error_at_value(
                    &p,
                    format!("`{path}` is not a request path"),
                    Some(format!(
                        "a path starts with `/` and has no spaces, e.g. `/{}`",
                        path.trim_start_matches('/').replace(' ', "%20")
                    )),
                );
                None
            }
        }),
        None => {
            d.missing_help(&o, "path", "say what to request, e.g. `path: /service/1`");
            None
        }
    };
    let name = o.get("name").and_then(|n| {
        let name = scalars::string(d, &n)?;
        if name.trim().is_empty() {
            d.error_at_value(
                &n,
                "`name` is empty",
                Some("leave it out to use the path".into()),
            );
            ok = false;
            return None;
        }
        Some(name)
    });
    let weight = match o.get("weight") {
        Some(w) => match scalars::uint(d, &w, u64::from(u32::MAX)) {
            Some(0) => {
                d.error_help(
                    &w,
                    "`weight` must be at least 1",
                    "remove the request from the mix instead",
                );
                None
            }
            n => n.map(|n| n as u32),
        },
        None => Some(1),
    };
    let method = match o.get("method") {
        Some(m) => scalars::string(d, &m).and_then(|method| {
            let method = method.trim().to_string();
            if !method.is_empty() && http::Method::from_bytes(method.as_bytes()).is_ok() {
                Some(method)
            } else {
                d.error_at_value(
                    &m,
                    format!("`{method}` is not an HTTP method"),
                    Some(
                        "e.g. GET, POST, PUT, DELETE (a token: letters, digits, no spaces)".into(),
                    ),
                );
                None
            }
        }),
        None => Some("GET".to_string()),
    };
    let headers = match o.get("headers") {
        Some(h) => headers(d, &h),
        None => Some(Vec::new()),
    };
    let body = o.get("body").and_then(|b| {
        let body = scalars::string(d, &b);
        if body.is_none() {
            ok = false;
        }
        body
    });
    let path = path?;
    let (weight, method, headers) = (weight?, method?, headers?);
    if !ok {
        return None;
    }
    Some(RequestTemplate {
        name: name.unwrap_or_else(|| path.clone()),
        weight,
        method,
        path,
        headers,
        body,
    })
}

/// `headers: {name: value}`; names are lower-cased (HTTP/2 requires it, HTTP/1.1 ignores case).
fn headers(d: &mut Decoder, f: &Field) -> Option<Vec<(String, String)>> {
    let Some(entries) = f.node.as_map() else {
        d.error_at_value(
            f,
            format!(
                "`headers` must be a mapping of names to values, found a {}",
                f.node.kind()
            ),
            Some("e.g. `headers: {host: example.com, x-user: alice}`".into()),
        );
        return None;
    };
    let mut ok = true;
    let mut out = Vec::new();
    for (key, node) in entries {
        let field = f.child(key, node);
        let name = key.name.to_ascii_lowercase();
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            d.error_help(
                &field,
                format!("`{}` is not a header name", key.name),
                "header names are tokens: letters, digits and `-`",
            );
            ok = false;
            continue;
        }
        let Some(value) = scalars::string(d, &field) else {
            ok = false;
            continue;
        };
        if http::HeaderValue::from_str(&value).is_err() {
            d.error_at_value(
                &field,
                format!(
                    "the value of header `{}` has characters a header cannot carry",
                    key.name
                ),
                Some("use visible ASCII characters and spaces".into()),
            );
            ok = false;
            continue;
        }
        out.push((name, value));
    }
    ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::decode::Mode;
    use crate::config::diagnostics::Diagnostic;
    use crate::config::node::parse;

    /// Decodes the `traffic:` key of `yaml`; the diagnostics as (line, col, message, help).
    fn decode(yaml: &str) -> (Option<Traffic>, Vec<Diagnostic>) {
        let doc = parse(yaml).expect("valid YAML");
        let root = Field::root(&doc);
        let (key, node) = &doc.as_map().unwrap()[0];
        let f = root.child(key, node);
        let mut d = Decoder::new(PathBuf::from("."), Mode::Bootstrap);
        let t = traffic(&mut d, &f);
        (t, d.finish())
    }

    fn errors(yaml: &str) -> Vec<(usize, usize, String, Option<String>)> {
        let (t, diags) = decode(yaml);
        assert!(t.is_none(), "decoded despite errors: {t:?}");
        diags
            .into_iter()
            .map(|d| (d.span.line, d.span.col, d.message, d.help))
            .collect()
    }

    const GOOD: &str = r#"traffic:
  target: front-envoy:8080
  protocol: h2c
  connections: 32
  timeout: 0.5s
  requests:
    - {path: /service/1}
    - {name: s2, weight: 3, method: POST, path: /service/2, headers: {Host: example.com, x-a: b}, body: "hello"}
  phases:
    - {name: warmup, duration: 2s, rate: 50/s}
    - {name: steady, duration: 20s, rate: 12000/m, requests: [{path: /service/1}]}
    - {name: ramp, duration: 10s, rate: 10/s..200}
"#;

    #[test]
    fn the_documented_example_decodes() {
        let (t, diags) = decode(GOOD);
        assert!(diags.is_empty(), "{diags:#?}");
        let t = t.unwrap();
        assert_eq!(
            (t.target_service.as_str(), t.target_port),
            ("front-envoy", 8080)
        );
        assert_eq!((t.target_span.line, t.target_span.col), (2, 11));
        let p = &t.plan;
        assert_eq!(p.target, "front-envoy:8080");
        assert_eq!(p.protocol, Protocol::H2c);
        assert_eq!(p.connections, 32);
        assert_eq!(p.timeout, Duration::from_millis(500));
        let names: Vec<&str> = p.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["warmup", "steady", "ramp"]);
        assert_eq!(p.phases[0].rate, Rate::Constant(50.0));
        assert_eq!(p.phases[1].rate, Rate::Constant(200.0));
        assert_eq!(
            p.phases[2].rate,
            Rate::Ramp {
                from: 10.0,
                to: 200.0
            }
        );
        assert_eq!(p.phases[0].duration, Duration::from_secs(2));
        // The default mix, with defaults filled in.
        let mix = &p.phases[0].requests;
        assert_eq!(
            mix[0],
            RequestTemplate {
                name: "/service/1".into(),
                weight: 1,
                method: "GET".into(),
                path: "/service/1".into(),
                headers: vec![],
                body: None,
            }
        );
        assert_eq!(mix[1].name, "s2");
        assert_eq!(mix[1].weight, 3);
        assert_eq!(mix[1].method, "POST");
        assert_eq!(
            mix[1].headers,
            [
                ("host".to_string(), "example.com".to_string()),
                ("x-a".into(), "b".into())
            ]
        );
        assert_eq!(mix[1].body.as_deref(), Some("hello"));
        assert_eq!(p.phases[2].requests, *mix);
        // The phase's own mix replaces the default.
        assert_eq!(p.phases[1].requests.len(), 1);
    }

    #[test]
    fn defaults_apply() {
        let (t, diags) = decode("traffic:\n  target: web:80\n  phases: [{name: p, duration: 1s, rate: 5, requests: [{path: /}]}]\n");
        assert!(diags.is_empty(), "{diags:#?}");
        let p = t.unwrap().plan;
        assert_eq!(p.protocol, Protocol::Http1);
        assert_eq!(p.connections, DEFAULT_CONNECTIONS);
        assert_eq!(p.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn unknown_keys_get_a_did_you_mean_and_every_error_is_reported() {
        let e = errors(
            "traffic:\n  target: web:80\n  conections: 4\n  phases:\n    - {name: p, duraton: 1s, rate: 5, requests: [{path: /, wieght: 2}]}\n",
        );
        let messages: Vec<(&str, Option<&str>)> =
            e.iter().map(|e| (e.2.as_str(), e.3.as_deref())).collect();
        assert!(
            messages.contains(&(
                "unknown field `conections` in Traffic",
                Some("did you mean `connections`?")
            )),
            "{e:#?}"
        );
        assert!(
            messages.contains(&(
                "unknown field `duraton` in Phase",
                Some("did you mean `duration`?")
            )),
            "{e:#?}"
        );
        assert!(
            messages.contains(&(
                "unknown field `wieght` in Request",
                Some("did you mean `weight`?")
            )),
            "{e:#?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.0 == "missing required field `duration` in Phase"),
            "{e:#?}"
        );
        assert_eq!((e[0].0, e[0].1), (3, 3));
    }

    #[test]
    fn each_bad_value_is_named_with_a_fix() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "target: web",
                "target `web` has no port",
                "e.g. `front-envoy:8080`",
            ),
            ("target: web:0", "`0` is not a port", "container port"),
            ("target: :80", "has no service name", "container port"),
            (
                "protocol: http2",
                "unknown protocol `http2`",
                "did you mean `http1`?",
            ),
            (
                "connections: 0",
                "`connections` must be at least 1",
                "default is 16",
            ),
            ("connections: 20000", "more than the maximum 10000", ""),
            (
                "timeout: 0s",
                "`timeout` must be more than 0",
                "timeout: 5s",
            ),
            (
                "timeout: 300 ms",
                "`timeout: 300 ms` is not a duration",
                "`300ms`",
            ),
        ];
        for (line, message, help) in cases {
            let key = line.split(':').next().unwrap();
            let yaml = if key == "target" {
                format!("traffic:\n  {line}\n  phases: [{{name: p, duration: 1s, rate: 1, requests: [{{path: /}}]}}]\n")
            } else {
                format!("traffic:\n  target: web:80\n  {line}\n  phases: [{{name: p, duration: 1s, rate: 1, requests: [{{path: /}}]}}]\n")
            };
            let e = errors(&yaml);
            assert_eq!(e.len(), 1, "{line}: {e:#?}");
            assert!(e[0].2.contains(message), "{line}: {:?}", e[0].2);
            assert!(
                e[0].3.as_deref().unwrap_or("").contains(help),
                "{line}: {:?}",
                e[0].3
            );
            assert_eq!(e[0].0, if key == "target" { 2 } else { 3 }, "{line}: line");
        }
    }

    #[test]
    fn bad_phases_and_requests_are_named_with_a_fix() {
        let phase = |p: &str| format!("traffic:\n  target: web:80\n  phases:\n    - {p}\n");
        let cases: Vec<(String, &str, &str)> = vec![
            ("traffic:\n  target: web:80\n  phases: []\n".into(), "`phases` is empty", "at least one phase"),
            ("traffic:\n  target: web:80\n".into(), "missing required field `phases` in Traffic", "at least one phase"),
            ("traffic:\n  phases: [{name: p, duration: 1s, rate: 1, requests: [{path: /}]}]\n".into(), "missing required field `target`", "front-envoy:8080"),
            (phase("{name: p, duration: 0s, rate: 1, requests: [{path: /}]}"), "`duration` must be more than 0", "duration: 10s"),
            (phase("{name: p, duration: 1s, rate: 0, requests: [{path: /}]}"), "a rate of 0 sends nothing", "100/s"),
            (phase("{name: p, duration: 1s, rate: 0..0/s, requests: [{path: /}]}"), "a ramp from 0 to 0", "10/s..200/s"),
            (phase("{name: p, duration: 1s, rate: 5/h, requests: [{path: /}]}"), "`/h` is not a unit", "6000/m"),
            (phase("{name: p, duration: 1s, rate: fast, requests: [{path: /}]}"), "`fast` is not a number", "100/s"),
            (phase("{name: p, duration: 1s, rate: 1}"), "phase `p` has no requests", "default mix"),
            (phase("{duration: 1s, rate: 1, requests: [{path: /}]}"), "missing required field `name` in Phase", "name: steady"),
            (phase("{name: p, duration: 1s, rate: 1, requests: []}"), "`requests` is empty", "path: /"),
            (phase("{name: p, duration: 1s, rate: 1, requests: [{path: x}]}"), "`x` is not a request path", "`/x`"),
            (phase("{name: p, duration: 1s, rate: 1, requests: [{method: GET}]}"), "missing required field `path` in Request", "path: /service/1"),
            (phase("{name: p, duration: 1s, rate: 1, requests: [{path: /, weight: 0}]}"), "`weight` must be at least 1", "remove the request"),
            (phase("{name: p, duration: 1s, rate: 1, requests: [{path: /, method: \"GE T\"}]}"), "`GE T` is not an HTTP method", "GET, POST"),
            (phase("{name: p, duration: 1s, rate: 1, requests: [{path: /, headers: {\"bad header\": x}}]}"), "`bad header` is not a header name", "tokens"),
            (phase("{name: p, duration: 1s, rate: 1, requests: [{path: /, headers: [x]}]}"), "`headers` must be a mapping", "host: example.com"),
            (phase("{name: p, duration: 1s, rate: 1, requests: [{path: /a}, {path: /a, weight: 2}]}"), "two requests in this list are named `/a`", "distinct `name:`"),
        ];
        for (yaml, message, help) in &cases {
            let e = errors(yaml);
            assert_eq!(e.len(), 1, "{yaml}: {e:#?}");
            assert!(e[0].2.contains(message), "{yaml}: {:?}", e[0].2);
            assert!(
                e[0].3.as_deref().unwrap_or("").contains(help),
                "{yaml}: {:?}",
                e[0].3
            );
        }
    }

    #[test]
    fn duplicate_phase_names_point_at_the_second() {
        let e = errors(
            "traffic:\n  target: web:80\n  requests: [{path: /}]\n  phases:\n    - {name: p, duration: 1s, rate: 1}\n    - {name: p, duration: 1s, rate: 1}\n",
        );
        assert_eq!(e.len(), 1, "{e:#?}");
        assert_eq!(e[0].2, "two phases are named `p`");
        assert_eq!(e[0].0, 6);
        assert!(e[0].3.as_deref().unwrap().contains("its own name"));
    }
}
