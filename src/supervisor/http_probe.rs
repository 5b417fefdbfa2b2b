//! The little HTTP the supervisor speaks: GET an admin page, or see whether an app answers at
//! all. Only ever aimed at 127.0.0.0/8 (published ports and local pods).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("{0}")]
    Http(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the connection was closed without an answer")]
    Silent,
}

/// `GET path` over HTTP/1.1 → (status, body).
pub async fn get(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String), ProbeError> {
    request(addr, http::Method::GET, path, timeout).await
}

/// `METHOD path` over HTTP/1.1, without a body → (status, body): a sample app's control
/// endpoints (`POST`/`DELETE /meshsim/fault`) as well as admin pages.
pub async fn request(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String), ProbeError> {
    tokio::time::timeout(timeout, request_inner(addr, method, path))
        .await
        .map_err(|_| ProbeError::Timeout(timeout))?
}

async fn request_inner(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
) -> Result<(u16, String), ProbeError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(ProbeError::Connect)?;
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| ProbeError::Http(e.to_string()))?;
    tokio::spawn(conn);
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())
        .map_err(|e| ProbeError::Http(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| ProbeError::Http(e.to_string()))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| ProbeError::Http(e.to_string()))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Does anything answer on `addr`? Sends an HTTP/1.1 request and waits for the first byte
/// back, whatever it is (an HTTP/2-only gRPC server answers with a GOAWAY frame). A bare TCP
/// connect is not enough: Docker's port proxy accepts connections even when nothing in the
/// container listens yet, and closes them without a byte.
pub async fn answers(addr: SocketAddr, timeout: Duration) -> Result<(), ProbeError> {
    let attempt = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(ProbeError::Connect)?;
        stream
            // Sample apps leave /meshsim/* out of their request counters, so readiness does not
            // skew what they report having served.
            .write_all(
                b"GET /meshsim/probe HTTP/1.1\r\nHost: meshsim-probe\r\nConnection: close\r\n\r\n",
            )
            .await
            .map_err(ProbeError::Connect)?;
        let mut byte = [0u8; 1];
        match stream.read(&mut byte).await {
            Ok(1..) => Ok(()),
            Ok(0) => Err(ProbeError::Silent),
            Err(e) => Err(ProbeError::Connect(e)),
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| ProbeError::Timeout(timeout))?
}
