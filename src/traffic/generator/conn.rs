//! Connections to the target over hyper's client connection API, and one exchange on them:
//! send a request, read the whole response, name its outcome.

use std::io;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::traffic::report::Outcome;

pub type Body = Full<Bytes>;

/// Why an exchange ended without a complete response.
pub enum Broken {
    /// The connection could not take the request; nothing was written, so it may be sent
    /// again on a new connection without being counted twice.
    NotSent(Box<Request<Body>>),
    /// The connection or stream closed or reset before a complete response (body included).
    Reset,
}

/// Resolves `target` (host:port; a literal address needs no DNS) and connects to the first
/// address that answers.
pub async fn open_tcp(target: &str) -> io::Result<TcpStream> {
    let mut last = None;
    for addr in tokio::net::lookup_host(target).await? {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                // Requests are small and latency is the point: no Nagle delay.
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, format!("{target} has no address"))
    }))
}

/// An HTTP/1.1 keep-alive connection: one request at a time.
pub struct Http1 {
    sender: http1::SendRequest<Body>,
    driver: JoinHandle<()>,
}

impl Http1 {
    pub async fn connect(target: &str) -> io::Result<Http1> {
        let stream = open_tcp(target).await?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(io::Error::other)?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Http1 { sender, driver })
    }

    /// Whether the connection can take a request now (false: the peer closed it).
    pub async fn ready(&mut self) -> bool {
        // Usually ready already: skip the await.
        self.sender.is_ready() || self.sender.ready().await.is_ok()
    }

    pub async fn exchange(&mut self, req: Request<Body>, grpc: bool) -> Result<Outcome, Broken> {
        match self.sender.try_send_request(req).await {
            Ok(response) => read_response(response, grpc).await,
            Err(mut e) => Err(match e.take_message() {
                Some(req) => Broken::NotSent(Box::new(req)),
                None => Broken::Reset,
            }),
        }
    }
}

impl Drop for Http1 {
    fn drop(&mut self) {
        // A connection given up on (timeout, reset) may still be waiting on the peer.
        self.driver.abort();
    }
}

/// An HTTP/2 prior-knowledge connection: streams multiplexed, requests sent from cloned
/// senders.
pub struct Http2 {
    sender: http2::SendRequest<Body>,
    driver: JoinHandle<()>,
}

impl Http2 {
    pub async fn connect(target: &str) -> io::Result<Http2> {
        let stream = open_tcp(target).await?;
        let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(io::Error::other)?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Http2 { sender, driver })
    }

    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    pub fn sender(&self) -> http2::SendRequest<Body> {
        self.sender.clone()
    }
}

impl Drop for Http2 {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// One request on an HTTP/2 connection (`sender` from [`Http2::sender`]).
pub async fn exchange_h2(
    mut sender: http2::SendRequest<Body>,
    req: Request<Body>,
    grpc: bool,
) -> Result<Outcome, Broken> {
    match sender.send_request(req).await {
        Ok(response) => read_response(response, grpc).await,
        Err(_) => Err(Broken::Reset),
    }
}

/// Reads the body to its end (a response is complete only then) and keeps the trailers, where
/// gRPC puts its status.
async fn read_response(response: Response<Incoming>, grpc: bool) -> Result<Outcome, Broken> {
    let (head, mut body) = response.into_parts();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Broken::Reset)?;
        if let Ok(t) = frame.into_trailers() {
            trailers = Some(t);
        }
    }
    let status = head.status.as_u16();
    Ok(if grpc {
        super::grpc::outcome(status, &head.headers, trailers.as_ref())
    } else {
        Outcome::Status(status)
    })
}
