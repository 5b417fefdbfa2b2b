//! Command-line flags (each also readable from an environment variable, the flag wins)
//! and the per-kind defaults derived from them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use http::Uri;

use crate::faults::{parse_duration, StatusFault};

/// Which sample app to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Envoy's front-proxy Flask app: /service/N, /trace/N, /echo, fault knobs.
    Http,
    /// gRPC backend serving gateway.AliveService and gateway.UserService.
    Grpc,
    /// REST gateway translating GET /alive and GET /user into gRPC calls.
    Gateway,
}

impl Kind {
    /// The name used in log lines and as the default `service_name` of the non-http kinds.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Grpc => "grpc",
            Kind::Gateway => "gateway",
        }
    }
}

/// Flags of `meshsim service` (and of the standalone `sample-service` binary).
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// Which sample app to run.
    #[arg(long, value_enum)]
    pub kind: Kind,

    /// Address to listen on: HOST:PORT, :PORT or PORT [default: 0.0.0.0:8080 for http and
    /// grpc, 0.0.0.0:3000 for gateway].
    #[arg(long, env = "LISTEN", value_name = "ADDR", value_parser = parse_listen)]
    pub listen: Option<SocketAddr>,

    /// Local-runtime mode: this pod's own loopback address. Listening on 0.0.0.0 or
    /// 127.0.0.1 binds it instead, and outgoing URLs to localhost/127.0.0.1 are dialled
    /// at it (so localhost:PORT reaches the pod's own sidecar).
    #[arg(long, env = "MESHSIM_POD_IP", value_name = "IP")]
    pub pod_ip: Option<IpAddr>,

    /// Hostname to report [default: the OS hostname].
    #[arg(long, env = "MESHSIM_HOSTNAME", value_name = "NAME")]
    pub hostname: Option<String>,

    /// http: the N that /service/N and /trace/N answer to [default: 1]. The other kinds
    /// only report it in /meshsim/stats [default: the kind's name].
    #[arg(long, env = "SERVICE_NAME", value_name = "N")]
    pub service_name: Option<String>,

    /// http: URL that /trace/N calls first, forwarding the tracing headers.
    #[arg(long, env = "TRACE_NEXT_HOP", value_name = "URL", value_parser = parse_http_url)]
    pub next_hop: Option<Uri>,

    /// gateway: the gRPC server (h2c) to call [default: http://localhost:8080, the
    /// gateway pod's sidecar egress listener].
    #[arg(long, env = "GRPC_UPSTREAM", value_name = "URL", value_parser = parse_http_url)]
    pub upstream: Option<Uri>,

    /// http: delay every request by this long (e.g. 50ms, 1s, 1.5s).
    #[arg(long, env = "FAULT_DELAY", value_name = "DUR", value_parser = parse_duration)]
    pub fault_delay: Option<Duration>,

    /// http: answer every request with this status, optionally only with a probability
    /// in percent: 503 or 503:10.
    #[arg(long, env = "FAULT_STATUS", value_name = "SPEC", value_parser = StatusFault::parse)]
    pub fault_status: Option<StatusFault>,

    /// Serve HTTPS (h2 and http/1.1 by ALPN) with this PEM certificate chain; needs
    /// --tls-key.
    #[arg(long, env = "TLS_CERT", value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(long, env = "TLS_KEY", value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

impl ServiceArgs {
    /// All flags at their defaults for `kind`: what tests and embedders start from.
    pub fn new(kind: Kind) -> Self {
        ServiceArgs {
            kind,
            listen: None,
            pod_ip: None,
            hostname: None,
            service_name: None,
            next_hop: None,
            upstream: None,
            fault_delay: None,
            fault_status: None,
            tls_cert: None,
            tls_key: None,
        }
    }

    /// The address to bind: the flag (or its per-kind default), with 0.0.0.0 and
    /// 127.0.0.1 replaced by the pod IP in local-runtime mode, because there every pod
    /// shares the host's network and must stay on its own loopback address.
    pub fn bind_addr(&self) -> SocketAddr {
        let default_port = match self.kind {
            Kind::Http | Kind::Grpc => 8080,
            Kind::Gateway => 3000,
        };
        let addr = self
            .listen
            .unwrap_or_else(|| SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), default_port));
        match self.pod_ip {
            Some(pod_ip) if is_wildcard_or_localhost(addr.ip()) => {
                SocketAddr::new(pod_ip, addr.port())
            }
            _ => addr,
        }
    }

    /// The name reported by /meshsim/stats and, for http, matched by /service/N.
    pub fn effective_service_name(&self) -> String {
        match self.service_name.as_deref().filter(|s| !s.is_empty()) {
            Some(name) => name.to_owned(),
            None if self.kind == Kind::Http => "1".to_owned(),
            None => self.kind.as_str().to_owned(),
        }
    }

    /// The gateway's gRPC upstream.
    pub fn effective_upstream(&self) -> Uri {
        self.upstream
            .clone()
            .unwrap_or_else(|| Uri::from_static("http://localhost:8080"))
    }
}

/// Only the two addresses a pod would use to mean "here" are remapped; an explicit other
/// address is taken as meant.
fn is_wildcard_or_localhost(ip: IpAddr) -> bool {
    ip == IpAddr::V4(Ipv4Addr::UNSPECIFIED) || ip == IpAddr::V4(Ipv4Addr::LOCALHOST)
}

/// `HOST:PORT`, `[V6]:PORT`, `:PORT` or `PORT` (the last two on 0.0.0.0), because
/// container env files commonly give just a port.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let port_only = s.strip_prefix(':').unwrap_or(s);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port));
    }
    s.parse::<SocketAddr>()
        .map_err(|_| format!("invalid listen address {s:?}: expected HOST:PORT, :PORT or PORT"))
}

/// An absolute `http://` URL with a host. Plain HTTP only: the apps talk to their sidecar
/// or to each other on the pod network, never over TLS.
pub fn parse_http_url(s: &str) -> Result<Uri, String> {
    let uri: Uri = s.parse().map_err(|e| format!("invalid URL {s:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => return Err(format!("unsupported scheme {other:?} in {s:?}: only http")),
        None => return Err(format!("URL {s:?} needs a scheme, e.g. http://{s}")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("URL {s:?} has no host"));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_forms() {
        assert_eq!(
            parse_listen("8080").unwrap(),
            "0.0.0.0:8080".parse().unwrap()
        );
        assert_eq!(
            parse_listen(":3000").unwrap(),
            "0.0.0.0:3000".parse().unwrap()
        );
        assert_eq!(
            parse_listen("127.0.0.1:9").unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        assert_eq!(parse_listen("[::1]:9").unwrap(), "[::1]:9".parse().unwrap());
        assert!(parse_listen("nope").is_err());
    }

    #[test]
    fn per_kind_defaults() {
        assert_eq!(
            ServiceArgs::new(Kind::Http).bind_addr(),
            "0.0.0.0:8080".parse().unwrap()
        );
        assert_eq!(
            ServiceArgs::new(Kind::Gateway).bind_addr(),
            "0.0.0.0:3000".parse().unwrap()
        );
        assert_eq!(ServiceArgs::new(Kind::Http).effective_service_name(), "1");
        assert_eq!(
            ServiceArgs::new(Kind::Grpc).effective_service_name(),
            "grpc"
        );
        assert_eq!(
            ServiceArgs::new(Kind::Gateway).effective_upstream(),
            Uri::from_static("http://localhost:8080")
        );
    }

    #[test]
    fn pod_ip_replaces_only_wildcard_and_localhost() {
        let mut args = ServiceArgs::new(Kind::Http);
        args.pod_ip = Some("127.0.7.3".parse().unwrap());
        assert_eq!(args.bind_addr(), "127.0.7.3:8080".parse().unwrap());
        args.listen = Some("127.0.0.1:9000".parse().unwrap());
        assert_eq!(args.bind_addr(), "127.0.7.3:9000".parse().unwrap());
        args.listen = Some("127.0.0.9:9000".parse().unwrap());
        assert_eq!(args.bind_addr(), "127.0.0.9:9000".parse().unwrap());
    }

    #[test]
    fn urls_must_be_http_with_host() {
        assert!(parse_http_url("http://localhost:9000/trace/2").is_ok());
        assert!(parse_http_url("https://x").is_err());
        assert!(parse_http_url("localhost:9000").is_err());
        assert!(parse_http_url("/trace/2").is_err());
    }
}
