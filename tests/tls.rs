//! TLS through the real proxy, in-process: a listener with a DownstreamTlsContext answers
//! HTTPS over HTTP/1.1 and HTTP/2 (by ALPN); clusters with an UpstreamTlsContext (v3
//! `transport_socket`, v2 `tls_context`) reach a TLS upstream, verify it against the trusted
//! CA when one is configured (a wrong CA is a 503 UF), send the configured SNI, and do not
//! verify at all without a validation context, as Envoy. Certificates come from rcgen
//! (`meshsim::certs`), made fresh for each test.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use meshsim::certs::{Ca, Issued};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use support::*;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A YAML double-quoted scalar holding `text` (JSON string syntax is valid YAML).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

/// A scratch directory for certificate files, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("meshsim-tls-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the TLS upstream saw of each connection's handshake.
#[derive(Debug, Clone, PartialEq)]
struct Handshake {
    sni: Option<String>,
    alpn: Option<String>,
}

/// An HTTPS upstream (h2 and http/1.1 by ALPN) that answers `<version> <path>` and records
/// every handshake.
struct TlsUpstream {
    addr: SocketAddr,
    handshakes: Arc<Mutex<Vec<Handshake>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsUpstream {
    async fn start(cert: &Issued) -> TlsUpstream {
        let certs = CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let seen = handshakes.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, seen) = (acceptor.clone(), seen.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let (_, conn) = tls.get_ref();
                    seen.lock().unwrap().push(Handshake {
                        sni: conn.server_name().map(str::to_string),
                        alpn: conn
                            .alpn_protocol()
                            .map(|p| String::from_utf8_lossy(p).into_owned()),
                    });
                    let service = service_fn(|req: Request<Incoming>| async move {
                        let text = format!("{:?} {}", req.version(), req.uri().path());
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(
                            text,
                        ))))
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        TlsUpstream {
            addr,
            handshakes,
            task,
        }
    }

    fn handshakes(&self) -> Vec<Handshake> {
        self.handshakes.lock().unwrap().clone()
    }
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// GET over TLS to `addr`, trusting `ca_pem`, offering `alpn`; HTTP/2 when the server picks
/// `h2`. → (version, status, body).
async fn https_get(
    addr: SocketAddr,
    ca_pem: &str,
    alpn: &[&str],
    path: &str,
) -> (Version, StatusCode, String) {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with the proxy");
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    let uri = format!("https://localhost:{}{path}", addr.port());
    let response = if h2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(TokioExecutor::new(), io)
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = Request::get(uri).body(Empty::new()).unwrap();
        sender.send_request(req).await.unwrap()
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(io)
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = Request::get(path)
            .header("host", format!("localhost:{}", addr.port()))
            .body(Empty::new())
            .unwrap();
        sender.send_request(req).await.unwrap()
    };
    let (version, status) = (response.version(), response.status());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (version, status, String::from_utf8_lossy(&body).into_owned())
}

/// `v3_config` with a DownstreamTlsContext on the listener's filter chain.
fn with_downstream_tls(config: String, tls: &str) -> String {
    let chain = "    filter_chains:\n    - filters:\n";
    assert!(config.contains(chain));
    config.replacen(
        chain,
        &format!(
            "    filter_chains:\n    - transport_socket:\n        name: envoy.transport_sockets.tls\n        typed_config:\n          \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext\n{tls}      filters:\n"
        ),
        1,
    )
}

fn route(prefix: &str, cluster: &str) -> String {
    format!("              - match: {{prefix: \"{prefix}\"}}\n                route: {{cluster: {cluster}}}\n")
}

#[tokio::test]
async fn downstream_tls_serves_http1_and_h2_by_alpn() {
    let dir = TempDir::new("downstream");
    let ca = Ca::new("downstream test CA").unwrap();
    let cert = ca.issue(&["localhost", "127.0.0.1"]).unwrap();
    // The chain from a file, the key inline: both DataSource forms.
    let chain_file = dir.write("proxy.crt", &cert.cert_pem);
    let tls = format!(
        "          common_tls_context:\n            alpn_protocols: [h2, http/1.1]\n            tls_certificates:\n            - certificate_chain: {{filename: {}}}\n              private_key: {{inline_string: {}}}\n",
        chain_file.display(),
        quoted(&cert.key_pem)
    );
    let up = Upstream::start("plain-backend").await;
    let config = with_downstream_tls(
        v3_config(&route("/", "up"), &static_cluster("up", &[up.addr], ""), ""),
        &tls,
    );
    let proxy = Proxy::start(config).await;
    let addr = proxy.first_listener();

    let (version, status, body) = https_get(addr, &ca.cert_pem(), &["http/1.1"], "/one").await;
    assert_eq!(
        (version, status),
        (Version::HTTP_11, StatusCode::OK),
        "{body}"
    );
    let echo: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["headers"]["x-forwarded-proto"], "https");

    let (version, status, body) = https_get(addr, &ca.cert_pem(), &["h2"], "/two").await;
    assert_eq!(
        (version, status),
        (Version::HTTP_2, StatusCode::OK),
        "{body}"
    );

    // Plain HTTP on the TLS port: no HTTP answer, and an ssl.connection_error.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        plain.read_to_end(&mut answer),
    )
    .await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plaintext must not be served"
    );

    let prefix = format!("listener.127.0.0.1_{}.ssl.", addr.port());
    assert_eq!(proxy.counter(&format!("{prefix}handshake")).await, 2);
    assert_eq!(proxy.counter(&format!("{prefix}versions.TLSv1.3")).await, 2);
    assert_eq!(proxy.counter(&format!("{prefix}no_certificate")).await, 2);
    assert!(
        eventually(std::time::Duration::from_secs(2), || async {
            proxy.counter(&format!("{prefix}connection_error")).await == 1
        })
        .await
    );
    assert_eq!(
        proxy
            .counter("http.ingress_http.downstream_rq_http2_total")
            .await,
        1
    );

    // /config_dump shows the context with the key redacted, as Envoy does.
    let (_, dump) = proxy.admin_get("/config_dump").await;
    assert!(dump.contains("DownstreamTlsContext"), "{dump}");
    assert!(dump.contains("[redacted]"), "{dump}");
    assert!(
        !dump.contains("PRIVATE KEY"),
        "the private key leaked:\n{dump}"
    );
    assert!(dump.contains(&chain_file.display().to_string()));
    proxy.stop().await;
}

const UPSTREAM_TLS: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";

fn upstream_tls(sni: Option<&str>, ca_pem: Option<&str>) -> String {
    let mut s = format!(
        "    transport_socket:\n      name: envoy.transport_sockets.tls\n      typed_config:\n        \"@type\": {UPSTREAM_TLS}\n"
    );
    if let Some(sni) = sni {
        s += &format!("        sni: {sni}\n");
    }
    if let Some(ca) = ca_pem {
        s += &format!(
            "        common_tls_context:\n          validation_context:\n            trusted_ca: {{inline_string: {}}}\n",
            quoted(ca)
        );
    }
    s
}

#[tokio::test]
async fn upstream_tls_verifies_the_trusted_ca_and_sends_sni() {
    let ca = Ca::new("upstream test CA").unwrap();
    let other_ca = Ca::new("somebody else's CA").unwrap();
    let backend = TlsUpstream::start(&ca.issue(&["backend.test"]).unwrap()).await;
    let h2_options = "    typed_extension_protocol_options:\n      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n        \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n        explicit_http_config: {http2_protocol_options: {}}\n";
    let clusters = [
        static_cluster(
            "verified",
            &[backend.addr],
            &upstream_tls(Some("backend.test"), Some(&ca.cert_pem())),
        ),
        static_cluster(
            "wrong_ca",
            &[backend.addr],
            &upstream_tls(Some("backend.test"), Some(&other_ca.cert_pem())),
        ),
        // Seed 001's form: v2 `tls_context` with only an SNI, so nothing is verified.
        static_cluster(
            "legacy",
            &[backend.addr],
            "    tls_context: { sni: www.google.com }\n",
        ),
        // A CA but no SNI: the chain is verified, the name is not compared (Envoy checks
        // names only with match_typed_subject_alt_names); HTTP/2 offers ALPN h2.
        static_cluster(
            "h2",
            &[backend.addr],
            &format!("{h2_options}{}", upstream_tls(None, Some(&ca.cert_pem()))),
        ),
    ]
    .concat();
    let routes = [
        route("/verified", "verified"),
        route("/wrong", "wrong_ca"),
        route("/legacy", "legacy"),
        route("/h2", "h2"),
    ]
    .concat();
    let proxy = Proxy::start(v3_config(&routes, &clusters, "")).await;

    let r = get(&http1(), &proxy.url("/verified")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body_string(r).await, "HTTP/1.1 /verified");
    assert_eq!(
        backend.handshakes().last().cloned(),
        Some(Handshake {
            sni: Some("backend.test".into()),
            alpn: Some("http/1.1".into())
        })
    );

    let r = get(&http1(), &proxy.url("/wrong")).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body_string(r).await,
        "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
    );
    assert!(proxy.counter("cluster.wrong_ca.ssl.connection_error").await >= 1);
    assert!(
        proxy
            .counter("cluster.wrong_ca.ssl.fail_verify_error")
            .await
            >= 1
    );
    assert!(
        proxy
            .counter("cluster.wrong_ca.upstream_cx_connect_fail")
            .await
            >= 1
    );

    let r = get(&http1(), &proxy.url("/legacy")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        backend.handshakes().last().unwrap().sni.as_deref(),
        Some("www.google.com")
    );

    let r = get(&http1(), &proxy.url("/h2")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body_string(r).await, "HTTP/2.0 /h2");
    assert_eq!(
        backend.handshakes().last().cloned(),
        Some(Handshake {
            sni: None,
            alpn: Some("h2".into())
        })
    );

    assert_eq!(proxy.counter("cluster.verified.ssl.handshake").await, 1);
    assert_eq!(proxy.counter("cluster.h2.ssl.handshake").await, 1);
    assert_eq!(proxy.counter("cluster.wrong_ca.ssl.handshake").await, 0);
    // The wrong CA's rejection appears in the access-log flag too (UF), via the response
    // flags the router sets for connect failures; the stats above are what scripts read.
    proxy.stop().await;
}

#[test]
fn certificates_load_from_files_and_bad_ones_are_config_errors() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let listener_tls = |chain: &str, key: &str| {
        with_downstream_tls(
            v3_config(&route("/", "up"), &static_cluster("up", &["127.0.0.1:1".parse().unwrap()], ""), ""),
            &format!(
                "          common_tls_context:\n            tls_certificates:\n            - certificate_chain: {{filename: {chain}}}\n              private_key: {{filename: {key}}}\n"
            ),
        )
    };
    let good = listener_tls("server.crt", "server.key");
    let loaded = meshsim::config::load_str("good.yaml", &good, &fixtures).unwrap();
    let tls = loaded.bootstrap.listeners[0].filter_chains[0]
        .tls
        .clone()
        .unwrap();
    assert_eq!(tls.common.certificates[0].0.origin, "server.crt");
    meshsim::proxy::tls::server::server_config(&tls).unwrap();

    let missing = listener_tls("nope.crt", "server.key");
    let err = meshsim::config::load_str("missing.yaml", &missing, &fixtures)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("data source file `nope.crt` does not exist"),
        "{err}"
    );
    assert!(
        err.contains("certificate_chain"),
        "the field is named: {err}"
    );

    let not_pem = listener_tls("not-a-cert.pem", "server.key");
    let err = meshsim::config::load_str("bad.yaml", &not_pem, &fixtures)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("certificate_chain (file `not-a-cert.pem`) holds no PEM certificate"),
        "{err}"
    );

    let wrong_key = listener_tls("server.crt", "ca.key");
    let err = meshsim::config::load_str("mismatch.yaml", &wrong_key, &fixtures)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`private_key` is not the key of the first certificate"),
        "{err}"
    );
}

#[tokio::test]
async fn health_checks_go_over_the_clusters_tls() {
    let ca = Ca::new("health test CA").unwrap();
    let backend = TlsUpstream::start(&ca.issue(&["backend.test"]).unwrap()).await;
    let check = "    health_checks: [{timeout: 1s, interval: 0.2s, no_traffic_interval: 0.2s, unhealthy_threshold: 1, healthy_threshold: 1, http_health_check: {path: /healthz}}]\n";
    let cluster = static_cluster(
        "secure",
        &[backend.addr],
        &format!(
            "{check}{}",
            upstream_tls(Some("backend.test"), Some(&ca.cert_pem()))
        ),
    );
    let p = Proxy::start(v3_config(&route("/", "secure"), &cluster, "")).await;
    let flags = format!("secure::{}::health_flags::healthy", backend.addr);
    assert!(
        eventually(std::time::Duration::from_secs(3), || async {
            p.admin_get("/clusters").await.1.contains(&flags)
        })
        .await,
        "a TLS upstream passes its HTTP health check over TLS:\n{}",
        p.admin_get("/clusters").await.1
    );
    assert!(p.counter("cluster.secure.health_check.success").await >= 1);
    assert!(!backend.handshakes().is_empty(), "the check shook hands");
    p.stop().await;
}
