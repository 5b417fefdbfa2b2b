//! Kind `http`: Envoy's front-proxy sample app (`/service/N`, `/trace/N`) plus the
//! Flask app of seed 003 (`/`, `/healthy_check`), an `/echo` for inspecting what the
//! mesh delivered, and fault knobs.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Serialize;

use crate::faults::{FaultControl, Faults};
use crate::next_hop::{trace_headers, NextHop};
use crate::server::{json, method_not_allowed, text, App, BoxBody, Common};

/// /echo reads the body into memory; a sample app has no business with more.
const MAX_ECHO_BODY: usize = 1024 * 1024;

pub struct HttpApp {
    pub common: Arc<Common>,
    pub next_hop: Option<NextHop>,
    /// The process-wide fault defaults (flags/env, then `/meshsim/fault`); requests may
    /// override them.
    pub faults: FaultControl,
}

impl App for HttpApp {
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<BoxBody> {
        let faults = match self.faults.current().for_request(request.uri().query()) {
            Ok(faults) => faults,
            Err(reason) => return text(StatusCode::BAD_REQUEST, format!("{reason}\n")),
        };
        // Delay first, then status: an injected error also arrives late, like a real
        // overloaded backend's.
        if let Some(delay) = faults.delay {
            tokio::time::sleep(delay).await;
        }
        if let Some(fault) = faults.status.filter(|f| f.fires()) {
            let code = fault.status.as_u16();
            return text(fault.status, format!("fault injected: status {code}\n"));
        }
        self.route(request).await
    }

    /// `/meshsim/fault`: `GET` shows the process-wide faults, `POST ?status=503:50&delay=20ms`
    /// sets them (from the flags' defaults), `DELETE` clears them back to the flags'.
    fn control(
        &self,
        method: &Method,
        rest: &str,
        query: Option<&str>,
    ) -> Option<Response<BoxBody>> {
        if rest != "fault" {
            return None;
        }
        let answer = |status: StatusCode, faults: Faults| {
            json(
                status,
                &FaultView {
                    status: faults.status.map(|f| f.status.as_u16()),
                    percent: faults.status.map(|f| f.percent),
                    delay_ms: faults.delay.map(|d| d.as_secs_f64() * 1000.0),
                },
            )
        };
        Some(match *method {
            Method::GET => answer(StatusCode::OK, self.faults.current()),
            Method::POST => match self.faults.set(query) {
                Ok(faults) => answer(StatusCode::OK, faults),
                Err(reason) => text(StatusCode::BAD_REQUEST, format!("{reason}\n")),
            },
            Method::DELETE => answer(StatusCode::OK, self.faults.clear()),
            _ => method_not_allowed("GET, POST, DELETE"),
        })
    }
}

/// What `/meshsim/fault` answers: the faults every request now starts from.
#[derive(Serialize)]
struct FaultView {
    status: Option<u16>,
    percent: Option<f64>,
    delay_ms: Option<f64>,
}

/// The GET routes (everything but /echo).
enum Route<'a> {
    Root,
    HealthyCheck,
    Service(&'a str),
    Trace(&'a str),
}

impl<'a> Route<'a> {
    fn parse(path: &'a str) -> Option<Route<'a>> {
        match path {
            "/" => Some(Route::Root),
            "/healthy_check" => Some(Route::HealthyCheck),
            _ => path
                .strip_prefix("/service/")
                .map(Route::Service)
                .or_else(|| path.strip_prefix("/trace/").map(Route::Trace)),
        }
    }
}

impl HttpApp {
    async fn route(&self, request: Request<Incoming>) -> Response<BoxBody> {
        let path = request.uri().path();
        if path == "/echo" || path.starts_with("/echo/") {
            return self.echo(request).await;
        }
        let Some(route) = Route::parse(path) else {
            return text(StatusCode::NOT_FOUND, "Not Found\n");
        };
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            return method_not_allowed("GET, HEAD");
        }
        let identity = &self.common.identity;
        match route {
            Route::Root => text(StatusCode::OK, "Hello, World!"),
            Route::HealthyCheck => text(
                StatusCode::OK,
                format!(
                    "I am fine! <service_name: {}, ip: {}>",
                    identity.hostname, identity.ip
                ),
            ),
            Route::Service(n) => self.service(n),
            Route::Trace(n) => {
                if let Some(not_here) = self.not_this_service(n) {
                    return not_here;
                }
                if let Some(next_hop) = &self.next_hop {
                    if let Err(e) = next_hop.call(trace_headers(request.headers())).await {
                        let reason = format!("next hop {} failed: {e}", next_hop.url);
                        // One line, whatever the error text held.
                        let reason = reason.replace(['\r', '\n'], " ");
                        return text(StatusCode::BAD_GATEWAY, format!("{reason}\n"));
                    }
                }
                self.service(n)
            }
        }
    }

    /// A 404 unless `n` names this service: in Envoy's front-proxy sample each service
    /// answers only its own number, which shows when the mesh routed to the wrong one.
    fn not_this_service(&self, n: &str) -> Option<Response<BoxBody>> {
        let name = &self.common.service_name;
        (n != name).then(|| {
            text(
                StatusCode::NOT_FOUND,
                format!("Not Found: this is service {name}, not service {n}\n"),
            )
        })
    }

    fn service(&self, n: &str) -> Response<BoxBody> {
        if let Some(not_here) = self.not_this_service(n) {
            return not_here;
        }
        let identity = &self.common.identity;
        // "resolvedhostname" is one word on purpose: the Flask original concatenates
        // 'resolved' 'hostname'.
        text(
            StatusCode::OK,
            format!(
                "Hello from behind Envoy (service {})! hostname: {} resolvedhostname: {}\n",
                self.common.service_name, identity.hostname, identity.ip
            ),
        )
    }

    async fn echo(&self, request: Request<Incoming>) -> Response<BoxBody> {
        let (parts, body) = request.into_parts();
        let body = match Limited::new(body, MAX_ECHO_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                let reason = format!("body larger than {MAX_ECHO_BODY} bytes\n");
                return text(StatusCode::PAYLOAD_TOO_LARGE, reason);
            }
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("reading body: {e}\n")),
        };

        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &parts.headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            headers
                .entry(name.as_str().to_owned())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert_with(|| value.into_owned());
        }
        // HTTP/2 carries the host as :authority, not a header; show it as `host` so an
        // echo looks the same whichever protocol the proxy used.
        if let Some(authority) = parts.uri.authority() {
            headers
                .entry("host".to_owned())
                .or_insert_with(|| authority.to_string());
        }

        let identity = &self.common.identity;
        let tls = parts.extensions.get::<crate::tls::TlsInfo>();
        json(
            StatusCode::OK,
            &Echo {
                tls: tls.map(|t| EchoTls {
                    sni: t.sni.as_deref(),
                    alpn: t.alpn.as_deref(),
                }),
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query: parts.uri.query().unwrap_or(""),
                headers,
                body: &String::from_utf8_lossy(&body),
                hostname: &identity.hostname,
                ip: identity.ip.to_string(),
                service_name: &self.common.service_name,
            },
        )
    }
}

#[derive(Serialize)]
struct Echo<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: BTreeMap<String, String>,
    body: &'a str,
    hostname: &'a str,
    ip: String,
    service_name: &'a str,
    /// Only on an HTTPS port: what the client's handshake asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<EchoTls<'a>>,
}

#[derive(Serialize)]
struct EchoTls<'a> {
    sni: Option<&'a str>,
    alpn: Option<&'a str>,
}
