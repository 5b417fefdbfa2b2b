//! A scenario file, decoded: the services to run and how they are exposed.

use std::path::PathBuf;

use crate::config::node::Span;

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    /// The file, absolute; relative paths inside it are resolved against its directory.
    pub path: PathBuf,
    pub services: Vec<Service>,
    /// What `meshsim test` sends (`traffic:`), does (`faults:`) and checks (`expect:`);
    /// `meshsim up` ignores them.
    pub traffic: Option<crate::traffic::decode::Traffic>,
    pub faults: Vec<crate::traffic::faults::FaultStep>,
    pub expect: Vec<crate::verdict::expect::Expectation>,
}

impl Scenario {
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone)]
pub struct Service {
    /// Also its DNS alias: replicas share it, so a strict_dns cluster sees every replica.
    pub name: String,
    pub replicas: u32,
    pub body: ServiceBody,
    pub publish: Vec<Publish>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum ServiceBody {
    /// An app, optionally with a sidecar proxy sharing its network namespace.
    App { app: App, sidecar: Option<Proxy> },
    /// A standalone proxy (a front proxy, an edge proxy).
    Proxy(Proxy),
}

impl Service {
    /// The proxies of one replica, sidecar or standalone.
    pub fn proxy(&self) -> Option<&Proxy> {
        match &self.body {
            ServiceBody::App { sidecar, .. } => sidecar.as_ref(),
            ServiceBody::Proxy(p) => Some(p),
        }
    }
}

#[derive(Debug, Clone)]
pub struct App {
    pub source: AppSource,
    pub env: Vec<(String, String)>,
    /// The port it listens on inside the pod (readiness, counters). Samples have a default.
    pub port: Option<u16>,
    /// Extra arguments (samples: `meshsim service` flags).
    pub args: Vec<String>,
    /// `tls: true`: `meshsim up` generates a certificate for the service's DNS name, signed by
    /// the run's CA, and hands it over as `TLS_CERT`/`TLS_KEY` (files; a sample then serves
    /// HTTPS, h2 and http/1.1 by ALPN). Every container of such a run gets the CA as
    /// `MESHSIM_TLS_CA`.
    pub tls: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppSource {
    Sample(SampleKind),
    Image {
        image: String,
        command: Option<Vec<String>>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleKind {
    Http,
    Grpc,
    Gateway,
}

impl SampleKind {
    pub const NAMES: &'static [&'static str] = &["http", "grpc", "gateway"];

    pub fn parse(text: &str) -> Option<SampleKind> {
        match text {
            "http" => Some(SampleKind::Http),
            "grpc" => Some(SampleKind::Grpc),
            "gateway" => Some(SampleKind::Gateway),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SampleKind::Http => "http",
            SampleKind::Grpc => "grpc",
            SampleKind::Gateway => "gateway",
        }
    }

    /// The port the sample listens on unless told otherwise (`meshsim service` defaults).
    pub fn default_port(self) -> u16 {
        match self {
            SampleKind::Http | SampleKind::Grpc => 8080,
            SampleKind::Gateway => 3000,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Proxy {
    /// Absolute path of the Envoy config.
    pub config: PathBuf,
    /// As written in the scenario, for messages.
    pub config_written: String,
    /// Where `config:` is written, for cross-check errors.
    pub config_span: Span,
    pub config_path: String,
    /// Extra proxy flags (`--concurrency 1`, `--service-cluster x`…).
    pub args: Vec<String>,
}

/// `publish: [8080, "18080:8080", "0:8001"]`: a pod port reachable on 127.0.0.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish {
    /// `None` (written `0:PORT`): any free host port, shown by `meshsim ps`.
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub span: Span,
}
