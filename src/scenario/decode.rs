//! Scenario YAML → [`Scenario`], with every problem reported compiler-style (the same machinery
//! as Envoy configs: unknown keys get a did-you-mean, nothing stops at the first error).

use std::path::Path;

use crate::config::decode::scalars;
use crate::config::decode::{Decoder, Field, Message, Obj};
use crate::config::diagnostics::did_you_mean;
use crate::config::node::Value;

use super::model::*;

const SCENARIO: Message = Message {
    name: "Scenario",
    fields: &[
        "name",
        "description",
        "services",
        "traffic",
        "faults",
        "expect",
    ],
    ignored: &[],
};

const SERVICE: Message = Message {
    name: "Service",
    fields: &["replicas", "app", "sidecar", "proxy", "publish"],
    ignored: &[],
};

const APP: Message = Message {
    name: "App",
    fields: &["sample", "image", "command", "env", "port", "args", "tls"],
    ignored: &[],
};

const PROXY: Message = Message {
    name: "Proxy",
    fields: &["config", "args"],
    ignored: &[],
};

/// The most replicas one service may ask for: a laptop runs them all.
const MAX_REPLICAS: u64 = 64;

pub fn scenario(d: &mut Decoder, root: &Field, path: &Path) -> Option<Scenario> {
    let o = d.obj(root, &SCENARIO)?;
    let name = match o.get("name") {
        Some(f) => scalars::string(d, &f).filter(|n| check_dns_name(d, &f, n, "scenario name")),
        None => {
            d.missing_help(
                &o,
                "name",
                "name the scenario, e.g. `name: front-proxy`; it labels containers and runs",
            );
            None
        }
    };
    let description = o.get("description").and_then(|f| scalars::string(d, &f));
    let traffic = o
        .get("traffic")
        .and_then(|f| crate::traffic::decode::traffic(d, &f));
    let faults = o
        .get("faults")
        .map(|f| crate::traffic::faults::decode::faults(d, &f))
        .unwrap_or_default();
    let expect = o
        .get("expect")
        .map(|f| crate::verdict::decode::expectations(d, &f))
        .unwrap_or_default();
    let services = match o.get("services") {
        Some(f) => services(d, &f, path),
        None => {
            d.missing_help(
                &o,
                "services",
                "list what to run: `services: {web: {app: {sample: http}}}`",
            );
            Vec::new()
        }
    };
    let name = name?;
    Some(Scenario {
        name,
        description,
        path: path.to_path_buf(),
        services,
        traffic,
        faults,
        expect,
    })
}

fn services(d: &mut Decoder, f: &Field, path: &Path) -> Vec<Service> {
    let Some(entries) = f.node.as_map() else {
        d.error_at_value(
            f,
            format!(
                "`services` must be a mapping of service names, found a {}",
                f.node.kind()
            ),
            Some("write `services:` then one indented `name:` per service".into()),
        );
        return Vec::new();
    };
    if entries.is_empty() {
        d.error_at_value(f, "`services` is empty; there is nothing to run", None);
    }
    let mut out = Vec::new();
    for (key, node) in entries {
        let field = f.child(key, node);
        let name_ok = check_dns_name(d, &field, &key.name, "service name");
        if let Some(service) = service(d, &field, &key.name, path) {
            if name_ok {
                out.push(service);
            }
        }
    }
    out
}

fn service(d: &mut Decoder, f: &Field, name: &str, path: &Path) -> Option<Service> {
    let o = d.obj(f, &SERVICE)?;
    let replicas = match o.get("replicas") {
        Some(r) => match scalars::uint(d, &r, MAX_REPLICAS) {
            Some(0) => {
                d.error_help(
                    &r,
                    "`replicas` must be at least 1",
                    "remove the service instead",
                );
                1
            }
            Some(n) => n as u32,
            None => 1,
        },
        None => 1,
    };
    let app = o.get("app").and_then(|a| app(d, &a));
    let sidecar = o.get("sidecar").and_then(|s| proxy(d, &s, path));
    let standalone = o.get("proxy").and_then(|p| proxy(d, &p, path));
    let publish = o
        .get("publish")
        .map(|p| {
            d.seq(&p)
                .iter()
                .filter_map(|item| publish(d, item))
                .collect()
        })
        .unwrap_or_default();

    let body = match (o.has("app"), o.has("proxy")) {
        (true, true) => {
            let second = o.get("proxy").expect("has proxy");
            d.error_help(
                &second,
                format!("service `{name}` has both `app` and `proxy`"),
                "a proxy next to an app is a `sidecar:`; a standalone proxy is its own service",
            );
            return None;
        }
        (false, false) => {
            d.missing_help(
                &o,
                "app",
                "give the service an `app:` (`{sample: http}` or `{image: …}`) or make it a standalone `proxy: {config: …}`",
            );
            return None;
        }
        (false, true) => {
            if let Some(s) = o.get("sidecar") {
                d.error_help(
                    &s,
                    "a standalone proxy cannot have a sidecar",
                    "remove `sidecar:`, or replace `proxy:` by an `app:`",
                );
            }
            ServiceBody::Proxy(standalone?)
        }
        (true, false) => ServiceBody::App {
            app: app?,
            sidecar: if o.has("sidecar") {
                Some(sidecar?)
            } else {
                None
            },
        },
    };
    Some(Service {
        name: name.to_string(),
        replicas,
        body,
        publish,
        span: f.span,
    })
}

fn app(d: &mut Decoder, f: &Field) -> Option<App> {
    let o = d.obj(f, &APP)?;
    let source = match (o.get("sample"), o.get("image")) {
        (Some(s), Some(_)) => {
            d.oneof_conflict(&o.get("image").expect("image"), "sample");
            let _ = s;
            return None;
        }
        (Some(s), None) => {
            if let Some(c) = o.get("command") {
                d.error_help(
                    &c,
                    "`command` applies to `image:` apps only",
                    "pass sample flags with `args:`",
                );
            }
            let kind = scalars::string(d, &s)?;
            match SampleKind::parse(&kind) {
                Some(k) => AppSource::Sample(k),
                None => {
                    let help = match did_you_mean(&kind, SampleKind::NAMES) {
                        Some(k) => format!("did you mean `{k}`?"),
                        None => format!("the samples are: {}", SampleKind::NAMES.join(", ")),
                    };
                    d.error_at_value(&s, format!("unknown sample `{kind}`"), Some(help));
                    return None;
                }
            }
        }
        (None, Some(i)) => {
            let image = scalars::string(d, &i)?;
            if image.trim().is_empty() {
                d.error_at_value(
                    &i,
                    "`image` is empty",
                    Some("name a local image, e.g. `myorg/app:dev`".into()),
                );
                return None;
            }
            let command = o.get("command").map(|c| command(d, &c));
            AppSource::Image { image, command }
        }
        (None, None) => {
            d.missing_help(
                &o,
                "sample",
                "say what runs: `sample: http` (or grpc, gateway), or `image: org/app:tag`",
            );
            return None;
        }
    };
    let env = o.get("env").map(|e| env(d, &e)).unwrap_or_default();
    let port = o.get("port").and_then(|p| scalars::port(d, &p));
    let args = o
        .get("args")
        .map(|a| scalars::strings(d, &a))
        .unwrap_or_default();
    let tls = o
        .get("tls")
        .and_then(|t| scalars::bool(d, &t))
        .unwrap_or(false);
    Some(App {
        source,
        env,
        port,
        args,
        tls,
    })
}

/// `command: "python app.py"` (split on spaces, as compose does for a string) or a list.
fn command(d: &mut Decoder, f: &Field) -> Vec<String> {
    match &f.node.value {
        Value::Scalar { text, .. } => text.split_whitespace().map(str::to_string).collect(),
        _ => scalars::strings(d, f),
    }
}

/// `env: {KEY: value}` or compose's list form `env: ["KEY=value"]`.
fn env(d: &mut Decoder, f: &Field) -> Vec<(String, String)> {
    match &f.node.value {
        Value::Map(entries) => entries
            .iter()
            .filter_map(|(k, v)| {
                let field = f.child(k, v);
                let value = match &v.value {
                    Value::Scalar { text, .. } => text.clone(),
                    Value::Null => String::new(),
                    _ => {
                        d.error_at_value(
                            &field,
                            format!("env `{}` must be a string", k.name),
                            None,
                        );
                        return None;
                    }
                };
                Some((k.name.clone(), value))
            })
            .collect(),
        _ => d
            .seq(f)
            .iter()
            .filter_map(|item| {
                let text = scalars::string(d, item)?;
                match text.split_once('=') {
                    Some((k, v)) if !k.is_empty() => Some((k.to_string(), v.to_string())),
                    _ => {
                        d.error_at_value(
                            item,
                            format!("env entry `{text}` is not KEY=value"),
                            None,
                        );
                        None
                    }
                }
            })
            .collect(),
    }
}

fn proxy(d: &mut Decoder, f: &Field, path: &Path) -> Option<Proxy> {
    // `sidecar: envoy/service.yaml` is short for `sidecar: {config: envoy/service.yaml}`.
    let (config_field, args) = if matches!(f.node.value, Value::Scalar { .. }) {
        (f.clone(), Vec::new())
    } else {
        let o: Obj = d.obj(f, &PROXY)?;
        let args = o
            .get("args")
            .map(|a| scalars::strings(d, &a))
            .unwrap_or_default();
        match o.get("config") {
            Some(c) => (c, args),
            None => {
                d.missing_help(
                    &o,
                    "config",
                    "point at the proxy's Envoy config, relative to the scenario file",
                );
                return None;
            }
        }
    };
    let written = scalars::string(d, &config_field)?;
    if written.trim().is_empty() {
        d.error_at_value(&config_field, "`config` is empty", None);
        return None;
    }
    let base = path.parent().unwrap_or(Path::new("."));
    Some(Proxy {
        config: base.join(&written),
        config_written: written,
        config_span: config_field.value_span(),
        config_path: config_field.path.clone(),
        args,
    })
}

/// `8080`, `"18080:8080"`, `"0:8080"`; only 127.0.0.1 is ever used on the host.
fn publish(d: &mut Decoder, f: &Field) -> Option<Publish> {
    let text = scalars::string(d, f)?;
    let bad = |d: &mut Decoder, why: &str| {
        d.error_at_value(
            f,
            format!("bad publish entry `{text}`: {why}"),
            Some("write `PORT` (same port on 127.0.0.1), `HOST_PORT:PORT`, or `0:PORT` for any free host port".into()),
        );
    };
    let text_trim = text.trim();
    let (host, container) = match text_trim.rsplit_once(':') {
        Some((h, c)) => (Some(h), c),
        None => (None, text_trim),
    };
    if host.is_some_and(|h| h.contains(':') || h.contains('.')) {
        bad(
            d,
            "host addresses cannot be chosen; ports are always published on 127.0.0.1",
        );
        return None;
    }
    let container_port = match container.parse::<u16>() {
        Ok(p) if p > 0 => p,
        _ => {
            bad(d, "the container port must be 1–65535");
            return None;
        }
    };
    let host_port = match host {
        None => Some(container_port),
        Some(h) => match h.parse::<u16>() {
            Ok(0) => None,
            Ok(p) => Some(p),
            Err(_) => {
                bad(d, "the host port must be 0–65535");
                return None;
            }
        },
    };
    Some(Publish {
        host_port,
        container_port,
        span: f.value_span(),
    })
}

/// Names become DNS aliases and container names: a DNS label.
fn check_dns_name(d: &mut Decoder, f: &Field, name: &str, what: &str) -> bool {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        let suggestion: String = name
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .trim_matches('-')
            .to_string();
        d.error_help(
            f,
            format!("{what} `{name}` is not a DNS label"),
            format!(
                "use lowercase letters, digits and `-` (at most 63), e.g. `{}`; it becomes a DNS name",
                if suggestion.is_empty() { "web" } else { &suggestion }
            ),
        );
    }
    ok
}
