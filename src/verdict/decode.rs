//! A scenario's `expect:` list → [`Expectation`]s, with every mistake reported against its
//! position and a `help:` showing a correct entry. Names that live elsewhere in the scenario
//! (phases, routes, services) are collected as [`Reference`]s and checked by
//! [`check_references`] once the whole scenario is known.

use super::expect::*;
use super::grammar::{self, Problem, Unit};
use crate::config::decode::{scalars, Decoder, Field};
use crate::config::diagnostics::did_you_mean;
use crate::config::node::{Key, Node, Span, Value};

/// Every key an `expect:` entry may have.
const KEYS: &[&str] = &[
    "phase",
    "window",
    "route",
    "success_rate",
    "p50",
    "p90",
    "p95",
    "p99",
    "p99.9",
    "rate",
    "status",
    "cluster",
    "split",
    "ejected",
    "unhealthy",
    "within",
    "retries",
    "route_split",
    "clusters",
    "proxy",
    "stat",
    "value",
    "accounting",
];

/// Latency keys and their percentile.
const PERCENTILES: &[(&str, f64)] = &[
    ("p50", 50.0),
    ("p90", 90.0),
    ("p95", 95.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
];

/// A correct entry for each kind of mistake, shown in `help:`.
const EXAMPLES: &str = "e.g. `- {phase: steady, success_rate: \">= 99%\", p99: \"< 50ms\"}`, `- {cluster: front-envoy/service1, split: \"even ±10%\"}` or `- {accounting: exact}`; see docs/expectations.md";

/// Decodes `expect:`: a list of mappings, each giving a scope and one or more checks.
pub fn expectations(d: &mut Decoder, f: &Field) -> Vec<Expectation> {
    if !matches!(f.node.value, Value::Seq(_) | Value::Null) {
        d.error_at_value(
            f,
            format!("`expect` must be a list, found a {}", f.node.kind()),
            Some(format!(
                "write one `- {{…}}` line per expectation, {EXAMPLES}"
            )),
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    for item in d.seq(f) {
        out.extend(entry(d, &item));
    }
    out
}

/// One `- {…}` entry: its keys by name.
struct Entry<'n> {
    field: Field<'n>,
    entries: &'n [(Key, Node)],
}

impl<'n> Entry<'n> {
    fn get(&self, key: &str) -> Option<Field<'n>> {
        debug_assert!(KEYS.contains(&key), "`{key}` is not an expect key");
        self.entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(k, v)| self.field.child(k, v))
    }
}

/// What every expectation of one entry shares: the scope, and its part of the text.
struct Shared {
    scope: Scope,
    /// `phase: steady` / `window: 5s..15s`, as written.
    scope_text: Vec<(String, String)>,
    refs: Vec<Reference>,
}

fn entry(d: &mut Decoder, f: &Field) -> Vec<Expectation> {
    let Value::Map(entries) = &f.node.value else {
        d.error_at_value(
            f,
            format!(
                "an expectation must be a mapping, found a {}",
                f.node.kind()
            ),
            Some(EXAMPLES.to_string()),
        );
        return Vec::new();
    };
    let e = Entry {
        field: f.clone(),
        entries,
    };
    let mut unknown_keys = false;
    for (k, v) in entries {
        if !KEYS.contains(&k.name.as_str()) {
            unknown_keys = true;
            let field = f.child(k, v);
            let help = match did_you_mean(&k.name, KEYS) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("the keys are: {}; {EXAMPLES}", KEYS.join(", ")),
            };
            d.error_help(
                &field,
                format!("unknown key `{}` in an expectation", k.name),
                help,
            );
        }
    }
    let Some(shared) = scope(d, &e) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    generator_checks(d, &e, &shared, &mut out);
    cluster_checks(d, &e, &shared, &mut out);
    cluster_split(d, &e, &shared, &mut out);
    stat_check(d, &e, &shared, &mut out);
    accounting(d, &e, &shared, &mut out);
    let checks_anything = [
        "success_rate",
        "p50",
        "p90",
        "p95",
        "p99",
        "p99.9",
        "rate",
        "status",
        "cluster",
        "route_split",
        "proxy",
        "accounting",
    ]
    .iter()
    .any(|k| e.get(k).is_some());
    // A misspelt check key is already reported; "checks nothing" would only repeat it.
    if !checks_anything && !unknown_keys {
        d.error_at_value(
            f,
            "this expectation checks nothing",
            Some(EXAMPLES.to_string()),
        );
    }
    out
}

fn report(d: &mut Decoder, f: &Field, p: Problem) {
    d.error_at_value(f, format!("`{}`: {}", f.name(), p.message), Some(p.help));
}

fn text(d: &mut Decoder, f: &Field) -> Option<String> {
    let s = scalars::string(d, f)?;
    if s.trim().is_empty() {
        d.error_at_value(
            f,
            format!("`{}` is empty", f.name()),
            Some(EXAMPLES.to_string()),
        );
        return None;
    }
    Some(s.trim().to_string())
}

fn scope(d: &mut Decoder, e: &Entry) -> Option<Shared> {
    let mut shared = Shared {
        scope: Scope::Run,
        scope_text: Vec::new(),
        refs: Vec::new(),
    };
    match (e.get("phase"), e.get("window")) {
        (Some(_), Some(w)) => {
            d.error_help(
                &w,
                "an expectation has either `phase` or `window`, not both",
                "a window is counted from the start of traffic, not of the phase: keep one",
            );
            return None;
        }
        (Some(p), None) => {
            let name = text(d, &p)?;
            shared.refs.push(Reference {
                kind: RefKind::Phase,
                name: name.clone(),
                span: p.value_span(),
            });
            shared.scope_text.push(("phase".into(), name.clone()));
            shared.scope = Scope::Phase(name);
        }
        (None, Some(w)) => {
            let written = text(d, &w)?;
            match grammar::window(&written) {
                Ok((from, to)) => {
                    shared.scope_text.push(("window".into(), written));
                    shared.scope = Scope::Window { from, to };
                }
                Err(p) => {
                    report(d, &w, p);
                    return None;
                }
            }
        }
        (None, None) => {}
    }
    Some(shared)
}

fn expectation(
    shared: &Shared,
    span: Span,
    mut parts: Vec<(String, String)>,
    check: Check,
    refs: Vec<Reference>,
) -> Expectation {
    let mut all = shared.scope_text.clone();
    all.append(&mut parts);
    let mut all_refs = shared.refs.clone();
    all_refs.extend(refs);
    Expectation {
        text: flow(&all),
        span,
        scope: shared.scope.clone(),
        check,
        refs: all_refs,
    }
}

/// `{phase: steady, p99: "< 50ms"}`: the entry's keys as a one-line YAML flow mapping.
fn flow(parts: &[(String, String)]) -> String {
    let items: Vec<String> = parts
        .iter()
        .map(|(k, v)| format!("{k}: {}", yaml_scalar(v)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

fn yaml_scalar(v: &str) -> String {
    // Nested flow values (`{503: "== 0"}`, `[a, b]`) are already YAML.
    let nested =
        (v.starts_with('{') && v.ends_with('}')) || (v.starts_with('[') && v.ends_with(']'));
    let plain = v
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '#'));
    if nested || (plain && !v.is_empty()) {
        v.to_string()
    } else {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn threshold(d: &mut Decoder, f: &Field, units: &[Unit]) -> Option<(Threshold, String)> {
    let written = text(d, f)?;
    match grammar::threshold(&written, units) {
        Ok(t) => Some((t, written)),
        Err(p) => {
            report(d, f, p);
            None
        }
    }
}

/// `success_rate`, `p50`…`p99.9`, `rate`, `status`, optionally for one `route`.
fn generator_checks(d: &mut Decoder, e: &Entry, shared: &Shared, out: &mut Vec<Expectation>) {
    let route_field = e.get("route");
    let route = route_field.as_ref().and_then(|r| text(d, r));
    let mut route_parts = Vec::new();
    let mut route_refs = Vec::new();
    if let (Some(r), Some(f)) = (&route, &route_field) {
        route_parts.push(("route".to_string(), r.clone()));
        route_refs.push(Reference {
            kind: RefKind::Route,
            name: r.clone(),
            span: f.value_span(),
        });
    }
    let mut any = false;
    let mut push = |key: &str, written: String, span: Span, check: Check| {
        let mut parts = route_parts.clone();
        parts.push((key.to_string(), written));
        out.push(expectation(shared, span, parts, check, route_refs.clone()));
    };
    if let Some(f) = e.get("success_rate") {
        any = true;
        if let Some((threshold, w)) = threshold(d, &f, &[Unit::Percent]) {
            let route = route.clone();
            push(
                "success_rate",
                w,
                f.span,
                Check::SuccessRate { route, threshold },
            );
        }
    }
    for (key, percentile) in PERCENTILES {
        if let Some(f) = e.get(key) {
            any = true;
            if let Some((threshold, w)) = threshold(d, &f, &[Unit::Duration]) {
                let check = Check::Latency {
                    route: route.clone(),
                    percentile: *percentile,
                    threshold,
                };
                push(key, w, f.span, check);
            }
        }
    }
    if let Some(f) = e.get("rate") {
        any = true;
        if let Some((threshold, w)) = threshold(d, &f, &[Unit::Rate]) {
            let route = route.clone();
            push("rate", w, f.span, Check::Rate { route, threshold });
        }
    }
    if let Some(f) = e.get("status") {
        any = true;
        match f.node.as_map() {
            Some(entries) if !entries.is_empty() => {
                for (k, v) in entries {
                    let item = f.child(k, v);
                    let status = match grammar::status_key(&k.name) {
                        Ok(s) => s,
                        Err(p) => {
                            d.error_help(&item, format!("`status`: {}", p.message), p.help);
                            continue;
                        }
                    };
                    if let Some((threshold, w)) = threshold(d, &item, &[Unit::Count, Unit::Percent])
                    {
                        let written = format!("{{{}: {}}}", k.name, yaml_scalar(&w));
                        let check = Check::Status {
                            route: route.clone(),
                            status,
                            threshold,
                        };
                        push("status", written, item.span, check);
                    }
                }
            }
            _ => d.error_at_value(
                &f,
                "`status` must map statuses to thresholds",
                Some("e.g. `status: {503: \"== 0\", 5xx: \"< 1%\", timeout: \"== 0\"}`".into()),
            ),
        }
    }
    if let (Some(r), false) = (&route_field, any) {
        d.error_help(
            r,
            "`route` applies to success_rate, p50…p99.9, rate and status, and none is given",
            "e.g. `- {route: /service/1, success_rate: \">= 99%\"}`",
        );
    }
}

/// `front-envoy/service1`.
fn cluster_ref(d: &mut Decoder, f: &Field) -> Option<(ClusterRef, String)> {
    let written = text(d, f)?;
    match written.split_once('/') {
        Some((service, cluster)) if !service.is_empty() && !cluster.is_empty() => Some((
            ClusterRef {
                service: service.to_string(),
                cluster: cluster.to_string(),
            },
            written,
        )),
        _ => {
            d.error_at_value(
                f,
                format!("`cluster: {written}` does not name a proxy and a cluster"),
                Some("write `PROXY_SERVICE/CLUSTER`, e.g. `cluster: front-envoy/service1`".into()),
            );
            None
        }
    }
}

fn split(d: &mut Decoder, f: &Field) -> Option<(Split, String)> {
    let written = text(d, f)?;
    match grammar::split(&written) {
        Ok(s) => Some((s, written)),
        Err(p) => {
            report(d, f, p);
            None
        }
    }
}

/// A pod such as `service1#2`.
fn pod(d: &mut Decoder, f: &Field) -> Option<String> {
    let written = text(d, f)?;
    match written.split_once('#') {
        Some((s, n)) if !s.is_empty() && n.parse::<u32>().is_ok_and(|n| n > 0) => Some(written),
        _ => {
            d.error_at_value(
                f,
                format!("`{}: {written}` is not a pod", f.name()),
                Some(format!(
                    "name the pod as SERVICE#REPLICA, e.g. `{}: service1#2`",
                    f.name()
                )),
            );
            None
        }
    }
}

/// `cluster:` with `split`, `ejected`/`unhealthy` + `within`, `retries`.
fn cluster_checks(d: &mut Decoder, e: &Entry, shared: &Shared, out: &mut Vec<Expectation>) {
    let flags = [
        ("ejected", HealthFlag::Ejected),
        ("unhealthy", HealthFlag::Unhealthy),
    ];
    let within_field = e.get("within");
    let has_flag = flags.iter().any(|(k, _)| e.get(k).is_some());
    if let (Some(w), false) = (&within_field, has_flag) {
        d.error_help(
            w,
            "`within` applies to `ejected` and `unhealthy` only",
            "e.g. `- {cluster: front-envoy/service1, ejected: service1#2, within: 10s}`",
        );
    }
    let Some(cf) = e.get("cluster") else {
        for key in ["ejected", "unhealthy", "retries"] {
            if let Some(f) = e.get(key) {
                d.error_help(
                    &f,
                    format!("`{key}` needs `cluster:` (the proxy service and its cluster)"),
                    format!("e.g. `- {{cluster: front-envoy/service1, {key}: …}}`"),
                );
            }
        }
        if let (Some(f), None) = (e.get("split"), e.get("route_split")) {
            d.error_help(
                &f,
                "`split` needs `cluster:` (across its endpoints) or `route_split:` with `clusters:`",
                "e.g. `- {cluster: front-envoy/service1, split: \"even ±10%\"}`",
            );
        }
        return;
    };
    let Some((cluster, cluster_text)) = cluster_ref(d, &cf) else {
        return;
    };
    if e.get("route_split").is_some() {
        d.error_help(
            &cf,
            "`cluster` and `route_split` are separate expectations",
            "split `- {cluster: …, split: …}` and `- {route_split: …, clusters: […], split: …}` into two entries",
        );
        return;
    }
    let refs = vec![Reference {
        kind: RefKind::Service,
        name: cluster.service.clone(),
        span: cf.value_span(),
    }];
    let base = vec![("cluster".to_string(), cluster_text)];
    let mut any = false;
    if let Some(f) = e.get("split") {
        any = true;
        if let Some((split, w)) = split(d, &f) {
            let mut parts = base.clone();
            parts.push(("split".into(), w));
            let check = Check::EndpointSplit {
                cluster: cluster.clone(),
                split,
            };
            out.push(expectation(shared, f.span, parts, check, refs.clone()));
        }
    }
    // `within` is shared by both flags: read once, so a bad value is reported once.
    let flagged = flags.iter().any(|(key, _)| e.get(key).is_some());
    let within = match &within_field {
        Some(w) if flagged => text(d, w).and_then(|t| {
            let parsed = grammar::duration(&t);
            if parsed.is_none() {
                d.error_at_value(
                    w,
                    format!("`within: {t}` is not a duration"),
                    Some("e.g. `within: 10s` (or `500ms`)".into()),
                );
            }
            parsed.map(|p| (p, t))
        }),
        _ => None,
    };
    for (key, flag) in flags {
        let Some(f) = e.get(key) else { continue };
        any = true;
        if within_field.is_none() {
            d.error_help(
                &f,
                format!("`{key}` needs `within:` (how soon after the fault)"),
                format!(
                    "e.g. `- {{cluster: front-envoy/service1, {key}: service1#2, within: 10s}}`"
                ),
            );
        }
        let (Some(pod), Some((within, within_text))) = (pod(d, &f), within.clone()) else {
            continue;
        };
        let mut parts = base.clone();
        parts.push((key.to_string(), pod.clone()));
        parts.push(("within".into(), within_text));
        let mut pod_refs = refs.clone();
        pod_refs.push(Reference {
            kind: RefKind::Service,
            name: pod.split('#').next().unwrap_or(&pod).to_string(),
            span: f.value_span(),
        });
        let check = Check::Flagged {
            cluster: cluster.clone(),
            pod,
            flag,
            within,
        };
        out.push(expectation(shared, f.span, parts, check, pod_refs));
    }
    if let Some(f) = e.get("retries") {
        any = true;
        if let Some((threshold, w)) = threshold(d, &f, &[Unit::Count]) {
            let mut parts = base.clone();
            parts.push(("retries".into(), w));
            let check = Check::Retries {
                cluster: cluster.clone(),
                threshold,
            };
            out.push(expectation(shared, f.span, parts, check, refs.clone()));
        }
    }
    if !any {
        d.error_help(
            &cf,
            "`cluster` without a check",
            "add one of `split`, `ejected` + `within`, `unhealthy` + `within`, `retries`, e.g. `split: \"even ±10%\"`",
        );
    }
}

/// `route_split: PROXY_SERVICE, clusters: [a, b], split: "80/20 ±3%"`.
fn cluster_split(d: &mut Decoder, e: &Entry, shared: &Shared, out: &mut Vec<Expectation>) {
    let example =
        "e.g. `- {route_split: front-envoy, clusters: [service1, service2], split: \"80/20 ±3%\"}`";
    let Some(rf) = e.get("route_split") else {
        if let Some(c) = e.get("clusters") {
            d.error_help(&c, "`clusters` belongs with `route_split:`", example);
        }
        return;
    };
    let Some(service) = text(d, &rf) else { return };
    let clusters = match e.get("clusters") {
        Some(c) => {
            let names = scalars::strings(d, &c);
            if names.len() < 2 {
                d.error_help(&c, "`clusters` must list at least two clusters", example);
                return;
            }
            names
        }
        None => {
            d.error_help(
                &rf,
                "`route_split` needs `clusters:` (the weighted clusters, in order)",
                example,
            );
            return;
        }
    };
    let Some(sf) = e.get("split") else {
        d.error_help(&rf, "`route_split` needs `split:`", example);
        return;
    };
    let Some((split, written)) = split(d, &sf) else {
        return;
    };
    if let Split::Weights { weights, .. } = &split {
        if weights.len() != clusters.len() {
            d.error_help(
                &sf,
                format!("{} weights for {} clusters", weights.len(), clusters.len()),
                "give one weight per cluster, in the order of `clusters`",
            );
            return;
        }
    }
    let parts = vec![
        ("route_split".to_string(), service.clone()),
        ("clusters".to_string(), format!("[{}]", clusters.join(", "))),
        ("split".to_string(), written),
    ];
    let refs = vec![Reference {
        kind: RefKind::Service,
        name: service.clone(),
        span: rf.value_span(),
    }];
    let check = Check::ClusterSplit {
        service,
        clusters,
        split,
    };
    out.push(expectation(shared, rf.span, parts, check, refs));
}

/// `proxy: front-envoy, stat: cluster.service1.upstream_rq_pending_overflow, value: "> 0"`.
fn stat_check(d: &mut Decoder, e: &Entry, shared: &Shared, out: &mut Vec<Expectation>) {
    let example = "e.g. `- {proxy: front-envoy, stat: cluster.service1.upstream_rq_pending_overflow, value: \"> 0\"}`";
    let (proxy, stat, value) = (e.get("proxy"), e.get("stat"), e.get("value"));
    let Some(pf) = proxy else {
        for f in [stat, value].into_iter().flatten() {
            d.error_help(&f, format!("`{}` needs `proxy:`", f.name()), example);
        }
        return;
    };
    let (Some(sf), Some(vf)) = (stat, value) else {
        d.error_help(&pf, "`proxy` needs `stat:` and `value:`", example);
        return;
    };
    let (Some(service), Some(stat)) = (text(d, &pf), text(d, &sf)) else {
        return;
    };
    let Some((threshold, written)) = threshold(d, &vf, &[Unit::Count]) else {
        return;
    };
    let parts = vec![
        ("proxy".to_string(), service.clone()),
        ("stat".to_string(), stat.clone()),
        ("value".to_string(), written),
    ];
    let refs = vec![Reference {
        kind: RefKind::Service,
        name: service.clone(),
        span: pf.value_span(),
    }];
    let check = Check::Stat {
        service,
        stat,
        threshold,
    };
    out.push(expectation(shared, sf.span, parts, check, refs));
}

fn accounting(d: &mut Decoder, e: &Entry, shared: &Shared, out: &mut Vec<Expectation>) {
    let Some(f) = e.get("accounting") else { return };
    let Some(mode) = text(d, &f) else { return };
    if mode != "exact" {
        d.error_at_value(
            &f,
            format!("unknown accounting mode `{mode}`"),
            Some("write `- {accounting: exact}`".into()),
        );
        return;
    }
    if shared.scope != Scope::Run {
        d.error_help(
            &f,
            "accounting covers the whole run; it takes no `phase` or `window`",
            "write it as its own entry: `- {accounting: exact}`",
        );
        return;
    }
    let parts = vec![("accounting".to_string(), mode)];
    out.push(expectation(
        shared,
        f.span,
        parts,
        Check::Accounting,
        Vec::new(),
    ));
}

/// Checks the names expectations use against the scenario: its phases, its request templates'
/// names (routes) and its services. Returns (where, message, help) per unknown name.
pub fn check_references(
    expectations: &[Expectation],
    phases: &[&str],
    routes: &[&str],
    services: &[&str],
) -> Vec<(Span, String, String)> {
    let mut out = Vec::new();
    let mut seen: Vec<(Span, &str)> = Vec::new();
    for r in expectations.iter().flat_map(|e| &e.refs) {
        // An entry with several checks shares its references: report each once.
        if seen.contains(&(r.span, r.name.as_str())) {
            continue;
        }
        seen.push((r.span, r.name.as_str()));
        let (what, known) = match r.kind {
            RefKind::Phase => ("phase", phases),
            RefKind::Route => ("route (request name)", routes),
            RefKind::Service => ("service", services),
        };
        if known.contains(&r.name.as_str()) {
            continue;
        }
        let help = match did_you_mean(&r.name, known) {
            Some(s) => format!("did you mean `{s}`?"),
            None if known.is_empty() => match r.kind {
                RefKind::Phase | RefKind::Route => {
                    "the scenario has no `traffic:` phases to refer to".to_string()
                }
                RefKind::Service => "the scenario has no services".to_string(),
            },
            None => format!("the scenario's {what}s: {}", known.join(", ")),
        };
        out.push((r.span, format!("no {what} `{}`", r.name), help));
    }
    out
}

/// How long after its clock starts an `ejected`/`unhealthy` check waits, for tests.
#[cfg(test)]
pub(crate) fn within_of(e: &Expectation) -> Option<std::time::Duration> {
    match e.check {
        Check::Flagged { within, .. } => Some(within),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::config::decode::Mode;
    use crate::config::diagnostics::Diagnostic;
    use crate::config::node::parse;
    use crate::traffic::report::Outcome;

    fn decode(yaml: &str) -> (Vec<Expectation>, Vec<Diagnostic>) {
        let doc = parse(yaml).unwrap();
        let root = Field::root(&doc);
        let (k, v) = &doc.as_map().unwrap()[0];
        let f = root.child(k, v);
        let mut d = Decoder::new(PathBuf::from("."), Mode::Bootstrap);
        let out = expectations(&mut d, &f);
        (out, d.finish())
    }

    fn ok(yaml: &str) -> Vec<Expectation> {
        let (out, diags) = decode(yaml);
        assert!(diags.is_empty(), "{diags:#?}");
        out
    }

    /// The one error of a bad document: (line, col, message, help).
    fn error(yaml: &str) -> (usize, usize, String, String) {
        let (_, diags) = decode(yaml);
        assert_eq!(diags.len(), 1, "{diags:#?}");
        let d = &diags[0];
        assert!(d.is_error());
        (
            d.span.line,
            d.span.col,
            d.message.clone(),
            d.help.clone().unwrap_or_default(),
        )
    }

    #[test]
    fn one_entry_with_several_checks_is_several_expectations() {
        let e = ok("expect:\n  - {phase: steady, success_rate: \">= 99%\", p99: \"< 50ms\", p50: \"< 10ms\"}\n");
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].text, "{phase: steady, success_rate: \">= 99%\"}");
        assert_eq!(e[1].text, "{phase: steady, p50: \"< 10ms\"}");
        assert_eq!(e[0].scope, Scope::Phase("steady".into()));
        assert_eq!((e[2].span.line, e[2].span.col), (2, 45));
        match &e[2].check {
            Check::Latency {
                percentile,
                threshold,
                route: None,
            } => {
                assert_eq!(*percentile, 99.0);
                assert_eq!(threshold.to_string(), "< 50ms");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_check_kind() {
        let e = ok(r#"expect:
  - {phase: steady, route: /service/1, success_rate: ">= 99.5%"}
  - {window: 5s..15s, rate: ">= 190/s"}
  - {phase: steady, status: {503: "== 0", 5xx: "< 1%", 2xx: ">= 1000", timeout: "== 0"}}
  - {cluster: front-envoy/service1, split: "even ±10%"}
  - {route_split: front-envoy, clusters: [service1, service2], split: "80/20 ±3%"}
  - {cluster: front-envoy/service1, ejected: "service1#2", within: 10s}
  - {cluster: front-envoy/service1, unhealthy: "service1#2", within: 500ms}
  - {cluster: front-envoy/service1, retries: "> 0"}
  - {proxy: front-envoy, stat: cluster.service1.upstream_rq_pending_overflow, value: "> 0"}
  - {accounting: exact}
"#);
        assert_eq!(e.len(), 13);
        assert_eq!(
            e[0].check,
            Check::SuccessRate {
                route: Some("/service/1".into()),
                threshold: Threshold {
                    op: Op::Ge,
                    value: Quantity::Percent(99.5)
                }
            }
        );
        assert_eq!(
            e[0].text,
            "{phase: steady, route: /service/1, success_rate: \">= 99.5%\"}"
        );
        assert_eq!(
            e[1].scope,
            Scope::Window {
                from: Duration::from_secs(5),
                to: Duration::from_secs(15)
            }
        );
        assert_eq!(
            e[2].check,
            Check::Status {
                route: None,
                status: StatusKey::Outcome(Outcome::Status(503)),
                threshold: Threshold {
                    op: Op::Eq,
                    value: Quantity::Count(0)
                }
            }
        );
        assert_eq!(e[3].text, "{phase: steady, status: {5xx: \"< 1%\"}}");
        assert_eq!(e[5].text, "{phase: steady, status: {timeout: \"== 0\"}}");
        assert_eq!(
            e[6].check,
            Check::EndpointSplit {
                cluster: ClusterRef {
                    service: "front-envoy".into(),
                    cluster: "service1".into()
                },
                split: Split::Even { tolerance: 10.0 }
            }
        );
        assert_eq!(
            e[7].check,
            Check::ClusterSplit {
                service: "front-envoy".into(),
                clusters: vec!["service1".into(), "service2".into()],
                split: Split::Weights {
                    weights: vec![80.0, 20.0],
                    tolerance: 3.0
                }
            }
        );
        assert!(
            matches!(&e[8].check, Check::Flagged { flag: HealthFlag::Ejected, pod, .. } if pod == "service1#2")
        );
        assert_eq!(within_of(&e[8]), Some(Duration::from_secs(10)));
        assert_eq!(within_of(&e[9]), Some(Duration::from_millis(500)));
        assert_eq!(
            e[8].text,
            "{cluster: front-envoy/service1, ejected: service1#2, within: 10s}"
        );
        assert!(matches!(e[10].check, Check::Retries { .. }));
        assert!(
            matches!(&e[11].check, Check::Stat { stat, .. } if stat == "cluster.service1.upstream_rq_pending_overflow")
        );
        assert_eq!(e[12].check, Check::Accounting);
        assert_eq!(e[12].scope, Scope::Run);
    }

    #[test]
    fn mistakes_point_at_the_value_and_show_a_fix() {
        let (line, col, msg, help) =
            error("expect:\n  - {phase: steady, success_rate: \"=> 99%\"}\n");
        assert_eq!((line, col), (2, 35));
        assert_eq!(
            msg,
            "`success_rate`: `=> 99%` does not start with a comparison (<, <=, >, >=, ==, !=)"
        );
        assert!(help.starts_with("equality is `==`"), "{help}");

        let (_, _, msg, help) = error("expect:\n  - {success_rate: \">= 99\"}\n");
        assert_eq!(msg, "`success_rate`: `99` is a plain count, but this check compares a percentage such as `99.5%`");
        assert_eq!(help, "a percentage needs `%`: `>= 99%`");

        let (_, _, msg, help) = error("expect:\n  - {status: {6xx: \"== 0\"}}\n");
        assert_eq!(msg, "`status`: unknown status class `6xx`");
        assert!(help.contains("`5xx`"), "{help}");

        let (line, col, msg, help) =
            error("expect:\n  - {within: 10s, retries: \"> 0\", cluster: a/b}\n");
        assert_eq!((line, col), (2, 6));
        assert_eq!(msg, "`within` applies to `ejected` and `unhealthy` only");
        assert!(help.contains("ejected: service1#2, within: 10s"));

        let (line, col, msg, help) =
            error("expect:\n  - {phase: steady, sucess_rate: \">= 99%\"}\n");
        assert_eq!((line, col), (2, 21));
        assert_eq!(msg, "unknown key `sucess_rate` in an expectation");
        assert_eq!(help, "did you mean `success_rate`?");

        let (_, _, msg, _) =
            error("expect:\n  - {cluster: front-envoy/service1, ejected: service1#2}\n");
        assert_eq!(msg, "`ejected` needs `within:` (how soon after the fault)");

        // One `within` serves both flags: a bad value is one error, not one per flag.
        let (_, _, msg, _) = error(
            "expect:\n  - {cluster: front-envoy/service1, ejected: service1#2, unhealthy: service1#2, within: soon}\n",
        );
        assert_eq!(msg, "`within: soon` is not a duration");

        let (_, _, msg, help) = error("expect:\n  - {cluster: service1, split: \"even ±10%\"}\n");
        assert_eq!(
            msg,
            "`cluster: service1` does not name a proxy and a cluster"
        );
        assert!(help.contains("front-envoy/service1"));

        let (_, _, msg, _) =
            error("expect:\n  - {route_split: fe, clusters: [a, b], split: \"60/30/10 ±3%\"}\n");
        assert_eq!(msg, "3 weights for 2 clusters");

        let (_, _, msg, _) =
            error("expect:\n  - {phase: steady, window: 1s..2s, rate: \">= 1/s\"}\n");
        assert_eq!(
            msg,
            "an expectation has either `phase` or `window`, not both"
        );

        let (_, _, msg, _) = error("expect:\n  - {phase: steady, accounting: exact}\n");
        assert!(msg.starts_with("accounting covers the whole run"));

        let (_, _, msg, _) = error("expect:\n  - {phase: steady}\n");
        assert_eq!(msg, "this expectation checks nothing");

        let (_, _, msg, _) = error("expect:\n  - {route: /a, cluster: fe/a, retries: \"> 0\"}\n");
        assert!(msg.starts_with("`route` applies to success_rate"));

        let (_, _, msg, _) = error("expect: {accounting: exact}\n");
        assert_eq!(msg, "`expect` must be a list, found a mapping");

        let (_, _, msg, _) = error("expect:\n  - {cluster: fe/a, retries: \"> 5%\"}\n");
        assert!(
            msg.contains("is a percentage, but this check compares a count"),
            "{msg}"
        );

        let (_, _, msg, _) =
            error("expect:\n  - {cluster: fe/a, unhealthy: service1, within: 5s}\n");
        assert_eq!(msg, "`unhealthy: service1` is not a pod");
    }

    #[test]
    fn every_mistake_of_a_file_is_reported() {
        let (out, diags) = decode(
            "expect:\n  - {p99: \"< 50\", rate: \">= 10\"}\n  - {phase: x, success_rate: \">= 99%\"}\n",
        );
        assert_eq!(diags.len(), 2, "{diags:#?}");
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn references_are_checked_against_the_scenario() {
        let e = ok(r#"expect:
  - {phase: stedy, route: /service/3, success_rate: ">= 99%", p99: "< 1s"}
  - {cluster: front-envoy/service1, ejected: "service9#1", within: 10s}
  - {phase: steady, rate: ">= 1/s"}
"#);
        let problems = check_references(
            &e,
            &["steady", "burst"],
            &["/service/1", "/service/2"],
            &["front-envoy", "service1", "service2"],
        );
        let messages: Vec<(usize, &str, &str)> = problems
            .iter()
            .map(|(s, m, h)| (s.line, m.as_str(), h.as_str()))
            .collect();
        assert_eq!(
            messages,
            [
                (2, "no phase `stedy`", "did you mean `steady`?"),
                (
                    2,
                    "no route (request name) `/service/3`",
                    "did you mean `/service/1`?"
                ),
                (3, "no service `service9`", "did you mean `service1`?"),
            ]
        );
    }
}
