//! Test helpers: run an app on a real socket, and talk to it over HTTP/1.1 or h2c.

#![allow(dead_code)] // each test binary uses its own subset

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sample_services::{Kind, ServiceArgs, ServiceError};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// An app serving on a real socket until [`Running::stop`] (or the test's end).
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServiceError>>,
}

impl Running {
    /// Stop it and wait until it has stopped.
    pub async fn stop(mut self) {
        let _ = self.stop.take().expect("stopped once").send(());
        (&mut self.task)
            .await
            .expect("serve task panicked")
            .expect("serve failed");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Args for `kind` with a fixed hostname, so the texts are predictable.
pub fn args(kind: Kind, hostname: &str) -> ServiceArgs {
    let mut args = ServiceArgs::new(kind);
    args.hostname = Some(hostname.to_owned());
    args
}

/// Serve on a fresh port of 127.0.0.1.
pub async fn start(args: ServiceArgs) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    start_on(args, listener).await
}

pub async fn start_on(args: ServiceArgs, listener: TcpListener) -> Running {
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(sample_services::serve(args, listener, async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        task,
    }
}

/// An address nothing listens on (bound, then released).
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .unwrap()
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, Method::GET, path, &[], "").await
}

pub async fn post(addr: SocketAddr, path: &str) -> Reply {
    request(addr, Method::POST, path, &[], "").await
}

/// One HTTP/1.1 request on its own connection.
pub async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    into_reply(response).await
}

/// One GET over h2c with prior knowledge, as an Envoy cluster with
/// http2_protocol_options sends it.
pub async fn get_h2(addr: SocketAddr, path: &str) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = Request::get(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    into_reply(response).await
}

async fn into_reply(response: http::Response<hyper::body::Incoming>) -> Reply {
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}
