//! The admin API on Envoy's paths and formats, so scripts, healthchecks (`grep server.state`),
//! Prometheus scrapes and `meshsim top` work against meshsim and real Envoy alike.

mod clusters;
mod server_info;
mod stats;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::proxy::access_log::{AccessLogger, Protocol, StreamInfo};
use crate::proxy::body::{self, Body};
use crate::proxy::server::{ServerState, Shared};

pub use server_info::version_string;

/// One admin endpoint: path, help text, and whether it changes state (POST only).
struct Endpoint {
    path: &'static str,
    help: &'static str,
    mutates: bool,
}

const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        path: "/",
        help: "Admin home page",
        mutates: false,
    },
    Endpoint {
        path: "/certs",
        help: "print certs on machine",
        mutates: false,
    },
    Endpoint {
        path: "/clusters",
        help: "upstream cluster status",
        mutates: false,
    },
    Endpoint {
        path: "/config_dump",
        help: "dump current Envoy configs (experimental)",
        mutates: false,
    },
    Endpoint {
        path: "/drain_listeners",
        help: "drain listeners",
        mutates: true,
    },
    Endpoint {
        path: "/healthcheck/fail",
        help: "cause the server to fail health checks",
        mutates: true,
    },
    Endpoint {
        path: "/healthcheck/ok",
        help: "cause the server to pass health checks",
        mutates: true,
    },
    Endpoint {
        path: "/help",
        help: "print out list of admin commands",
        mutates: false,
    },
    Endpoint {
        path: "/hot_restart_version",
        help: "print the hot restart compatibility version",
        mutates: false,
    },
    Endpoint {
        path: "/listeners",
        help: "print listener info",
        mutates: false,
    },
    Endpoint {
        path: "/logging",
        help: "query/change logging levels",
        mutates: true,
    },
    Endpoint {
        path: "/memory",
        help: "print current allocation/heap usage",
        mutates: false,
    },
    Endpoint {
        path: "/quitquitquit",
        help: "exit the server",
        mutates: true,
    },
    Endpoint {
        path: "/ready",
        help: "print server state, return 200 if LIVE, otherwise return 503",
        mutates: false,
    },
    Endpoint {
        path: "/reopen_logs",
        help: "reopen access logs",
        mutates: true,
    },
    Endpoint {
        path: "/reset_counters",
        help: "reset all counters to zero",
        mutates: true,
    },
    Endpoint {
        path: "/runtime",
        help: "print runtime values",
        mutates: false,
    },
    Endpoint {
        path: "/runtime_modify",
        help: "Adds or modifies runtime values as passed in query parameters. To delete a previously added key, use an empty string as the value. Note that deletion only applies to overrides added via this endpoint; values loaded from disk can be modified via override but not deleted. E.g. ?key1=value1&key2=value2...",
        mutates: true,
    },
    Endpoint {
        path: "/server_info",
        help: "print server version/status information",
        mutates: false,
    },
    Endpoint {
        path: "/stats",
        help: "print server stats",
        mutates: false,
    },
    Endpoint {
        path: "/stats/prometheus",
        help: "print server stats in prometheus format",
        mutates: false,
    },
];

/// Serves the admin API until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    access_logs: Vec<AccessLogger>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let access_logs = Arc::new(access_logs);
    let builder = {
        let mut b = auto::Builder::new(TokioExecutor::new());
        b.http1().timer(TokioTimer::new());
        b
    };
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let local = listener.local_addr().ok();
        let (shared, logs) = (shared.clone(), access_logs.clone());
        let service = service_fn(move |req: Request<Incoming>| {
            let (shared, logs) = (shared.clone(), logs.clone());
            async move {
                let started = (Instant::now(), SystemTime::now());
                let info = RequestFacts::of(&req, remote, local);
                let response = handle(&shared, req).await;
                info.log(&logs, &response, started);
                Ok::<_, Infallible>(response)
            }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

/// What the admin access log needs from a request (admin requests are logged in Envoy's
/// default format, as `admin.access_log` asks).
struct RequestFacts {
    method: Method,
    path: String,
    version: http::Version,
    headers: http::HeaderMap,
    remote: SocketAddr,
    local: Option<SocketAddr>,
}

impl RequestFacts {
    fn of(req: &Request<Incoming>, remote: SocketAddr, local: Option<SocketAddr>) -> Self {
        RequestFacts {
            method: req.method().clone(),
            path: req
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            version: req.version(),
            headers: req.headers().clone(),
            remote,
            local,
        }
    }

    fn log(self, logs: &[AccessLogger], response: &Response<Body>, started: (Instant, SystemTime)) {
        if logs.is_empty() {
            return;
        }
        let authority = self
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string);
        let info = StreamInfo {
            start_time: started.1,
            protocol: if self.version == http::Version::HTTP_2 {
                Protocol::Http2
            } else {
                Protocol::Http11
            },
            request_headers: self.headers,
            method: self.method,
            path: self.path,
            authority,
            response_code: Some(response.status().as_u16()),
            response_headers: Some(response.headers().clone()),
            duration: Some(started.0.elapsed()),
            downstream_remote_address: Some(self.remote),
            downstream_local_address: self.local,
            ..StreamInfo::default()
        };
        for l in logs {
            l.log(&info);
        }
    }
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let Some(endpoint) = ENDPOINTS.iter().find(|e| e.path == path) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("invalid path. {}", help_text()),
        );
    };
    if endpoint.mutates && req.method() != Method::POST {
        tracing::error!(path = %path, method = %req.method(), "admin path mutates state, method rather than POST");
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Method {} not allowed, POST required.", req.method()),
        );
    }
    let params = parse_query(&query);
    match endpoint.path {
        "/" => html(index_html()),
        "/help" => text(StatusCode::OK, help_text()),
        "/stats" => stats::handle(shared, &params, None),
        "/stats/prometheus" => stats::handle(shared, &params, Some("prometheus")),
        "/clusters" => {
            if params.iter().any(|(k, v)| k == "format" && v == "json") {
                json(clusters::json(&shared.clusters.load()))
            } else {
                text(StatusCode::OK, clusters::text(&shared.clusters.load()))
            }
        }
        "/listeners" => {
            if params.iter().any(|(k, v)| k == "format" && v == "json") {
                json(server_info::listeners_json(shared))
            } else {
                text(StatusCode::OK, server_info::listeners_text(shared))
            }
        }
        "/config_dump" => json(server_info::pretty(&crate::config::config_dump(
            &shared.bootstrap.load(),
        ))),
        "/server_info" => json(server_info::server_info(shared)),
        "/runtime" => json(server_info::pretty(&shared.runtime.to_json())),
        "/runtime_modify" => {
            if params.is_empty() {
                return text(
                    StatusCode::BAD_REQUEST,
                    "usage: /runtime_modify?key1=value1&key2=value2&keyN=valueN\n".into(),
                );
            }
            match shared.runtime.modify(&params) {
                Ok(()) => ok(),
                Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
            }
        }
        "/ready" => {
            let state = shared.state();
            let status = if state == ServerState::Live {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            text(status, format!("{}\n", state.name()))
        }
        "/healthcheck/fail" => {
            shared.set_healthcheck_failed(true);
            ok()
        }
        "/healthcheck/ok" => {
            shared.set_healthcheck_failed(false);
            ok()
        }
        "/reset_counters" => {
            shared.store.reset_counters();
            ok()
        }
        "/drain_listeners" => {
            shared.drain_listeners();
            ok()
        }
        "/quitquitquit" => {
            shared.quit.notify_one();
            ok()
        }
        "/reopen_logs" => ok(),
        "/logging" => logging(&params),
        "/memory" => {
            shared.refresh_gauges();
            let rss = shared.store.gauge("server.memory_allocated").value();
            json(server_info::pretty(&serde_json::json!({
                "allocated": rss.to_string(),
                "heap_size": rss.to_string(),
                "pageheap_unmapped": "0",
                "pageheap_free": "0",
                "total_thread_cache": "0",
                "total_physical_bytes": rss.to_string(),
            })))
        }
        "/hot_restart_version" => text(StatusCode::OK, "disabled\n".into()),
        "/certs" => json("{\n \"certificates\": []\n}\n".into()),
        _ => text(
            StatusCode::NOT_FOUND,
            format!("invalid path. {}", help_text()),
        ),
    }
}

/// `/logging`: with no parameters lists the loggers; `?level=L` sets every logger;
/// `?<logger>=<level>` and `?paths=a:L1,b:L2` set named loggers. meshsim has one process-wide
/// level, so naming a logger sets that level for the process; names and levels are still
/// validated as Envoy does (400 with the usage text).
fn logging(params: &[(String, String)]) -> Response<Body> {
    const LEVELS: [&str; 7] = [
        "trace", "debug", "info", "warning", "error", "critical", "off",
    ];
    const LOGGERS: [&str; 8] = [
        "admin",
        "config",
        "connection",
        "dns",
        "http",
        "main",
        "router",
        "upstream",
    ];
    let mut requested: Vec<(&str, &str)> = Vec::new();
    for (key, value) in params {
        match key.as_str() {
            "level" => requested.push(("*", value)),
            "paths" => {
                for pair in value.split(',').filter(|p| !p.is_empty()) {
                    match pair.split_once(':') {
                        Some((logger, level)) => requested.push((logger, level)),
                        None => return text(StatusCode::BAD_REQUEST, logging_usage()),
                    }
                }
            }
            logger => requested.push((logger, value)),
        }
    }
    let valid = requested.iter().all(|(logger, level)| {
        (*logger == "*" || LOGGERS.contains(logger)) && LEVELS.contains(level)
    });
    if !valid {
        return text(StatusCode::BAD_REQUEST, logging_usage());
    }
    if let Some((_, level)) = requested.last() {
        crate::proxy::logging::set_level(level);
    }
    let level = crate::proxy::logging::current_level();
    let mut out = String::from("active loggers:\n");
    for l in LOGGERS {
        out.push_str(&format!("  {l}: {level}\n"));
    }
    text(StatusCode::OK, out)
}

fn logging_usage() -> String {
    "usage: /logging?<name>=<level> (change single level)\nusage: /logging?paths=name1:level1,name2:level2,... (change multiple levels)\nusage: /logging?level=<level> (change all levels)\nlevels: trace debug info warning error critical off\n".into()
}

fn help_text() -> String {
    let mut out = String::from("admin commands are:\n");
    for e in ENDPOINTS {
        out.push_str(&format!("  {}: {}\n", e.path, e.help));
    }
    out
}

fn index_html() -> String {
    let mut rows = String::new();
    for e in ENDPOINTS.iter().filter(|e| e.path != "/") {
        let link = if e.mutates {
            format!(
                "<form action='{p}' method='post'><button>{p}</button></form>",
                p = e.path
            )
        } else {
            format!("<a href='{p}'>{p}</a>", p = e.path)
        };
        rows.push_str(&format!("<tr><td>{link}</td><td>{}</td></tr>\n", e.help));
    }
    format!(
        "<!DOCTYPE html>\n<html><head><title>Envoy Admin</title></head><body>\n<h1>meshsim (Envoy-compatible) admin</h1>\n<table>\n<tr><th>Command</th><th>Description</th></tr>\n{rows}</table>\n</body></html>\n"
    )
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(status: StatusCode, content_type: &'static str, body_text: String) -> Response<Body> {
    let mut r = Response::new(body::full(body_text));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(
        "cache-control",
        HeaderValue::from_static("no-cache, max-age=0"),
    );
    r.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn text(status: StatusCode, body_text: String) -> Response<Body> {
    respond(status, "text/plain; charset=UTF-8", body_text)
}

fn json(body_text: String) -> Response<Body> {
    respond(StatusCode::OK, "application/json", body_text)
}

fn html(body_text: String) -> Response<Body> {
    respond(StatusCode::OK, "text/html; charset=UTF-8", body_text)
}

fn ok() -> Response<Body> {
    text(StatusCode::OK, "OK\n".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing_decodes_percent_escapes() {
        assert_eq!(
            parse_query("filter=cluster%5C.service1&usedonly"),
            vec![
                ("filter".to_string(), "cluster\\.service1".to_string()),
                ("usedonly".to_string(), String::new())
            ]
        );
    }

    #[test]
    fn malformed_escapes_never_panic() {
        assert_eq!(percent_decode("%a\u{e9}"), "%a\u{e9}");
        assert_eq!(
            percent_decode("%+1x%"),
            "% 1x%",
            "`+` is a space in a query string"
        );
        assert_eq!(percent_decode("%41%4a"), "AJ");
    }

    #[test]
    fn help_lists_every_endpoint() {
        let help = help_text();
        for e in ENDPOINTS {
            assert!(help.contains(&format!("  {}: {}", e.path, e.help)));
        }
    }
}
