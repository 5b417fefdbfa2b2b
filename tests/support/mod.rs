//! Shared pieces of the integration tests: real upstream servers on 127.0.0.x, the real proxy
//! started in-process from a YAML config, and HTTP/1.1 and h2c clients.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use meshsim::proxy::{Server, ServerOptions};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// An upstream that answers every request with a JSON echo of what it received, and counts them.
/// `GET /status/<code>` answers with that status; `/grpc/*` answers with gRPC trailers;
/// an `Upgrade: websocket` request gets 101 and an echo of every byte afterwards.
pub struct Upstream {
    pub addr: SocketAddr,
    pub name: String,
    pub requests: Arc<AtomicU64>,
    stop: Option<oneshot::Sender<()>>,
}

impl Upstream {
    pub async fn start(name: &str) -> Upstream {
        Self::start_on(name, "127.0.0.1:0".parse().unwrap()).await
    }

    pub async fn start_on(name: &str, addr: SocketAddr) -> Upstream {
        Self::start_with(name, addr, None).await
    }

    /// The same echo over TLS (h2 and http/1.1 by ALPN), with a certificate for `names` from a
    /// fresh CA; the proxy only verifies it when its config names a trusted CA.
    pub async fn start_tls_on(name: &str, addr: SocketAddr, names: &[&str]) -> Upstream {
        use rustls::pki_types::pem::PemObject;
        let issued = meshsim::certs::Ca::new("test CA")
            .unwrap()
            .issue(names)
            .unwrap();
        let certs = rustls::pki_types::CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key =
            rustls::pki_types::PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Self::start_with(
            name,
            addr,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
        .await
    }

    async fn start_with(
        name: &str,
        addr: SocketAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Upstream {
        let listener = TcpListener::bind(addr).await.expect("bind upstream");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicU64::new(0));
        let (stop, mut stopped) = oneshot::channel();
        let (name_owned, counter) = (name.to_string(), requests.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    accepted = listener.accept() => match accepted { Ok(p) => p, Err(_) => continue },
                    _ = &mut stopped => return,
                };
                let (name, counter) = (name_owned.clone(), counter.clone());
                let service = service_fn(move |req| {
                    let (name, counter) = (name.clone(), counter.clone());
                    async move { Ok::<_, Infallible>(echo(name, counter, addr, req).await) }
                });
                let tls = tls.clone();
                tokio::spawn(async move {
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = builder
                                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        Upstream {
            addr,
            name: name.to_string(),
            requests,
            stop: Some(stop),
        }
    }

    pub fn count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

type EchoBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn echo(
    name: String,
    counter: Arc<AtomicU64>,
    local: SocketAddr,
    mut req: Request<Incoming>,
) -> Response<EchoBody> {
    counter.fetch_add(1, Ordering::Relaxed);
    let path = req.uri().path().to_string();
    if req
        .headers()
        .get("upgrade")
        .is_some_and(|v| v == "websocket")
    {
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let (mut r, mut w) = tokio::io::split(&mut io);
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        return Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(Full::new(Bytes::new()).boxed())
            .unwrap();
    }
    let headers: serde_json::Map<String, serde_json::Value> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").into()))
        .collect();
    let version = format!("{:?}", req.version());
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if let Some(code) = path.strip_prefix("/status/") {
        let status = StatusCode::from_u16(code.parse().unwrap_or(500)).unwrap();
        return Response::builder()
            .status(status)
            .header("x-upstream", name)
            .body(Full::new(Bytes::from(format!("status {code}"))).boxed())
            .unwrap();
    }
    if path.starts_with("/grpc/") {
        // A unary gRPC reply: one length-prefixed message, then trailers.
        let message = b"\x00\x00\x00\x00\x02hi";
        let trailers = {
            let mut t = http::HeaderMap::new();
            t.insert("grpc-status", "0".parse().unwrap());
            t.insert("grpc-message", "ok".parse().unwrap());
            t
        };
        let body = http_body_util::StreamBody::new(futures_stream(vec![
            hyper::body::Frame::data(Bytes::from_static(message)),
            hyper::body::Frame::trailers(trailers),
        ]));
        return Response::builder()
            .header("content-type", "application/grpc")
            .body(body.boxed())
            .unwrap();
    }
    let json = serde_json::json!({
        "upstream": name,
        "local": local.to_string(),
        "method": method,
        "uri": uri,
        "path": path,
        "version": version,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    Response::builder()
        .header("content-type", "application/json")
        .header("x-upstream", name)
        .header("connection", "keep-alive")
        .header("keep-alive", "timeout=5")
        .body(Full::new(Bytes::from(json.to_string())).boxed())
        .unwrap()
}

fn futures_stream(
    frames: Vec<hyper::body::Frame<Bytes>>,
) -> impl futures_core::Stream<Item = Result<hyper::body::Frame<Bytes>, Infallible>> + Send {
    tokio_stream_from(frames.into_iter().map(Ok).collect())
}

fn tokio_stream_from<T: Send + Unpin + 'static>(
    items: Vec<T>,
) -> impl futures_core::Stream<Item = T> + Send {
    struct Iter<T>(std::collections::VecDeque<T>);
    impl<T> futures_core::Stream for Iter<T>
    where
        T: Unpin,
    {
        type Item = T;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<T>> {
            std::task::Poll::Ready(self.0.pop_front())
        }
    }
    Iter(items.into())
}

/// The real proxy, started in-process from a config, stopped when dropped.
pub struct Proxy {
    pub listeners: Vec<(String, SocketAddr)>,
    pub admin: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

pub struct ProxyBuilder {
    yaml: String,
    options: ServerOptions,
}

impl ProxyBuilder {
    pub fn pod_ip(mut self, ip: IpAddr) -> Self {
        self.options.pod_ip = Some(ip);
        self
    }

    pub fn dns(mut self, addr: SocketAddr) -> Self {
        self.options.dns_resolver = Some(addr);
        self
    }

    pub fn service_cluster(mut self, c: &str) -> Self {
        self.options.service_cluster = Some(c.into());
        self
    }

    pub async fn start(self) -> Proxy {
        let loaded = meshsim::config::load_str("test.yaml", &self.yaml, Path::new("."))
            .unwrap_or_else(|e| panic!("test config does not load:\n{e}"));
        let server = Server::start(loaded.bootstrap, self.options)
            .await
            .unwrap_or_else(|e| panic!("proxy does not start: {e}"));
        let listeners = server.listener_addrs().to_vec();
        let admin = server.admin_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Proxy {
            listeners,
            admin,
            stop: Some(stop),
            done: Some(done),
        }
    }
}

impl Proxy {
    pub fn builder(yaml: impl Into<String>) -> ProxyBuilder {
        ProxyBuilder {
            yaml: yaml.into(),
            options: ServerOptions {
                concurrency: 1,
                log_level: "info".into(),
                drain_time: Duration::from_millis(200),
                mode: "Serve".into(),
                ..ServerOptions::default()
            },
        }
    }

    pub async fn start(yaml: impl Into<String>) -> Proxy {
        Self::builder(yaml).start().await
    }

    pub fn listener(&self, name: &str) -> SocketAddr {
        self.listeners
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no listener {name}: {:?}", self.listeners))
            .1
    }

    pub fn first_listener(&self) -> SocketAddr {
        self.listeners[0].1
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.first_listener(), path)
    }

    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        let url = format!("http://{}{}", self.admin.expect("admin configured"), path);
        let r = http1().get(url.parse().unwrap()).await.expect("admin GET");
        let status = r.status().as_u16();
        (status, body_string(r).await)
    }

    pub async fn admin_post(&self, path: &str) -> (u16, String) {
        let url = format!("http://{}{}", self.admin.expect("admin configured"), path);
        let req = Request::post(url).body(Full::new(Bytes::new())).unwrap();
        let r = http1().request(req).await.expect("admin POST");
        let status = r.status().as_u16();
        (status, body_string(r).await)
    }

    /// The value of one stat from `/stats`, or None when absent.
    pub async fn stat(&self, name: &str) -> Option<String> {
        let (_, body) = self.admin_get("/stats").await;
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
    }

    pub async fn counter(&self, name: &str) -> u64 {
        self.stat(name)
            .await
            .unwrap_or_else(|| panic!("no stat {name}"))
            .parse()
            .unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), done).await;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub type TestClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub fn http1() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

pub fn h2c() -> TestClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// An h2c client that advertises the protocol's default 64 KiB windows, so every large body
/// the proxy sends it waits on WINDOW_UPDATEs.
pub fn h2c_small_windows() -> TestClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .http2_initial_stream_window_size(65_535)
        .http2_initial_connection_window_size(65_535)
        .http2_adaptive_window(false)
        .build_http()
}

pub async fn get(client: &TestClient, url: &str) -> Response<Incoming> {
    client
        .get(url.parse().unwrap())
        .await
        .expect("request failed")
}

pub async fn get_with(
    client: &TestClient,
    url: &str,
    headers: &[(&str, &str)],
) -> Response<Incoming> {
    let mut b = Request::get(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    client
        .request(b.body(Full::new(Bytes::new())).unwrap())
        .await
        .expect("request failed")
}

pub async fn body_string(r: Response<Incoming>) -> String {
    let bytes = r.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

pub async fn body_json(r: Response<Incoming>) -> serde_json::Value {
    let text = body_string(r).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A v3 bootstrap with one listener on 127.0.0.1:0 whose routes and clusters are given as YAML
/// fragments (indented to sit under `virtual_hosts[0].routes` and `clusters`).
pub fn v3_config(routes: &str, clusters: &str, extra_hcm: &str) -> String {
    v3_config_with_filters(routes, clusters, extra_hcm, "")
}

/// [`v3_config`] with HTTP filters (YAML list items, indented under `http_filters`) before the
/// router.
pub fn v3_config_with_filters(
    routes: &str,
    clusters: &str,
    extra_hcm: &str,
    filters: &str,
) -> String {
    format!(
        r#"
stats_flush_interval: 0.1s
static_resources:
  listeners:
  - name: ingress
    address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
{extra_hcm}
          route_config:
            name: local_route
            virtual_hosts:
            - name: backend
              domains: ["*"]
              routes:
{routes}
          http_filters:
{filters}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
{clusters}
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}
"#
    )
}

/// A STATIC cluster over the given upstream addresses (indented for `v3_config`).
pub fn static_cluster(name: &str, addrs: &[SocketAddr], extra: &str) -> String {
    let endpoints: String = addrs
        .iter()
        .map(|a| {
            format!(
                "        - endpoint: {{address: {{socket_address: {{address: {}, port_value: {}}}}}}}\n",
                a.ip(),
                a.port()
            )
        })
        .collect();
    format!(
        "  - name: {name}\n    connect_timeout: 0.5s\n    type: STATIC\n{extra}    load_assignment:\n      cluster_name: {name}\n      endpoints:\n      - lb_endpoints:\n{endpoints}"
    )
}

/// Polls `check` until it returns true or `timeout` passes (for things that settle
/// asynchronously, such as DNS refreshes and completion stats).
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The lines of a file (an access log), once it has at least `n` (or after 3 s, whatever it
/// has).
pub async fn file_lines(path: &Path, n: usize) -> Vec<String> {
    let mut lines = Vec::new();
    eventually(Duration::from_secs(3), || {
        lines = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        let enough = lines.len() >= n;
        async move { enough }
    })
    .await;
    lines
}

/// An upstream that accepts connections and never answers (for timeouts and cancellations).
/// Abort the handle to stop it.
pub async fn silent_upstream() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    (addr, hold)
}

/// A proxy routing every path to one STATIC cluster `up` over `addrs`, with optional extra
/// cluster and HCM YAML (indented as for `v3_config`).
pub async fn proxy_to(addrs: &[SocketAddr], cluster_extra: &str, hcm_extra: &str) -> Proxy {
    Proxy::start(v3_config(
        "              - match: {prefix: \"/\"}\n                route: {cluster: up}\n",
        &static_cluster("up", addrs, cluster_extra),
        hcm_extra,
    ))
    .await
}

/// meshsim's embedded DNS server on 127.0.0.1:0 with an editable record table, answering with
/// Docker's TTL (600 s) so tests prove the proxy's resolver cache is off. Stops when dropped.
pub struct TestDns {
    pub addr: SocketAddr,
    pub records: meshsim::dns::Records,
    _stop: oneshot::Sender<()>,
}

impl TestDns {
    pub async fn start() -> TestDns {
        let records = meshsim::dns::Records::new();
        let server =
            meshsim::dns::DnsServer::bind("127.0.0.1:0".parse().unwrap(), records.clone(), 600)
                .await
                .unwrap();
        let addr = server.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        TestDns {
            addr,
            records,
            _stop: stop,
        }
    }
}

pub mod docker;
pub mod hostile;
pub mod live;
pub mod mesh;
pub mod scripted;
pub mod seed_checks;

/// An upstream that answers every request with a body of 1 GiB, written as fast as the proxy
/// takes it, until the connection fails.
pub async fn endless_upstream() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = [0u8; 4096];
                let _ = s.read(&mut head).await;
                let head = b"HTTP/1.1 200 OK\r\ncontent-length: 1073741824\r\n\r\n";
                let _ = s.write_all(head).await;
                let chunk = vec![b'x'; 64 * 1024];
                while s.write_all(&chunk).await.is_ok() {}
            });
        }
    });
    (addr, task)
}
