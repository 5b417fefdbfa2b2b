//! The plan checked once and turned into ready request parts, so sending a request is a few
//! reference-count bumps and one header-map copy, never parsing.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST, TE};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::Full;

use crate::traffic::plan::{LoadPlan, Protocol, Rate, RequestTemplate, MAX_CONNECTIONS};

use super::GeneratorError;

/// One template, ready to send.
#[derive(Debug, Clone)]
pub struct Prepared {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Prepared {
    pub fn request(&self) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// Checks what the generator relies on (the scenario decoder checks the same with spans; a
/// plan handed to `meshsim load` as JSON is checked here) and prepares every template:
/// `[phase][template]`.
pub fn prepare(plan: &LoadPlan) -> Result<Vec<Vec<Prepared>>, GeneratorError> {
    let bad = |field: String, problem: String| GeneratorError::InvalidPlan { field, problem };
    let (host, port) = plan.target.rsplit_once(':').ok_or_else(|| {
        bad(
            "target".into(),
            format!("`{}` is not host:port (e.g. `127.0.0.1:8080`)", plan.target),
        )
    })?;
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(bad(
            "target".into(),
            format!(
                "`{}` is not host:port with a port of 1–65535 (e.g. `127.0.0.1:8080`)",
                plan.target
            ),
        ));
    }
    if plan.connections == 0 || plan.connections > MAX_CONNECTIONS {
        return Err(bad(
            "connections".into(),
            format!(
                "{} is out of range: use 1–{MAX_CONNECTIONS}",
                plan.connections
            ),
        ));
    }
    if plan.timeout.is_zero() {
        return Err(bad(
            "timeout".into(),
            "must be more than 0 (milliseconds in JSON, e.g. 5000)".into(),
        ));
    }
    if plan.phases.is_empty() {
        return Err(bad(
            "phases".into(),
            "is empty: give at least one phase with a duration and a rate".into(),
        ));
    }
    plan.phases
        .iter()
        .enumerate()
        .map(|(p, phase)| {
            let at = |field: &str| format!("phases[{p}].{field}");
            if phase.duration.is_zero() {
                return Err(bad(at("duration"), "must be more than 0".into()));
            }
            check_rate(phase.rate).map_err(|problem| bad(at("rate"), problem))?;
            if phase.requests.is_empty() {
                return Err(bad(
                    at("requests"),
                    "is empty: give at least one request, e.g. {\"path\": \"/\"}".into(),
                ));
            }
            phase
                .requests
                .iter()
                .enumerate()
                .map(|(t, template)| {
                    let field = |f: &str| at(&format!("requests[{t}].{f}"));
                    if phase.requests[..t].iter().any(|o| o.name == template.name) {
                        return Err(bad(
                            field("name"),
                            format!(
                                "`{}` names two requests of this phase; give each its own name",
                                template.name
                            ),
                        ));
                    }
                    if template.weight == 0 {
                        return Err(bad(field("weight"), "must be at least 1".into()));
                    }
                    prepare_one(plan, template).map_err(|(f, problem)| bad(field(f), problem))
                })
                .collect()
        })
        .collect()
}

fn check_rate(rate: Rate) -> Result<(), String> {
    let ok = |r: f64| r.is_finite() && r >= 0.0;
    match rate {
        Rate::Constant(r) if ok(r) && r > 0.0 => Ok(()),
        Rate::Constant(r) => Err(format!("{r} is not a rate: use more than 0 per second")),
        Rate::Ramp { from, to } if ok(from) && ok(to) && (from > 0.0 || to > 0.0) => Ok(()),
        Rate::Ramp { from, to } => Err(format!(
            "ramp {from}..{to}: both ends must be 0 or more per second, and not both 0"
        )),
    }
}

/// `Err((field, problem))` names the template's field at fault.
fn prepare_one(
    plan: &LoadPlan,
    template: &RequestTemplate,
) -> Result<Prepared, (&'static str, String)> {
    let grpc = plan.protocol == Protocol::Grpc;
    let method = if grpc {
        // A gRPC call is a POST whatever the template says.
        Method::POST
    } else {
        Method::from_bytes(template.method.as_bytes()).map_err(|_| {
            (
                "method",
                format!("`{}` is not an HTTP method token", template.method),
            )
        })?
    };
    if !template.path.starts_with('/') {
        return Err(("path", format!("`{}` must start with `/`", template.path)));
    }
    let mut headers = HeaderMap::new();
    let mut authority = plan.target.clone();
    for (name, value) in &template.headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ("headers", format!("`{name}` is not a header name")))?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            (
                "headers",
                format!("the value of `{name}` is not a header value"),
            )
        })?;
        if header == HOST {
            authority = value
                .to_str()
                .map_err(|_| ("headers", "`host` must be ASCII".to_string()))?
                .to_string();
            continue;
        }
        headers.append(header, value);
    }
    let uri = match plan.protocol {
        // Origin form and a Host header, as every HTTP/1.1 client sends.
        Protocol::Http1 => {
            headers.insert(
                HOST,
                HeaderValue::from_str(&authority)
                    .map_err(|_| ("headers", format!("`{authority}` is not a valid host")))?,
            );
            template.path.parse::<Uri>()
        }
        // HTTP/2 carries the host as `:authority`, taken from an absolute URI.
        Protocol::H2c | Protocol::Grpc => format!("http://{authority}{}", template.path).parse(),
    }
    .map_err(|_| {
        (
            "path",
            format!("`{}` is not a valid request path", template.path),
        )
    })?;
    let body = template.body.as_deref().unwrap_or("").as_bytes();
    let body = if grpc {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(TE, HeaderValue::from_static("trailers"));
        super::grpc::frame(body)
    } else {
        Bytes::copy_from_slice(body)
    };
    Ok(Prepared {
        method,
        uri,
        headers,
        body,
    })
}
