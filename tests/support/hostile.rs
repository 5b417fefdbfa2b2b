//! Pieces for the hostile-traffic tests: an upstream that records every request head it gets,
//! a raw HTTP/2 frame codec (HPACK literals only, so no table is needed), and a panic counter
//! that notices panics inside the proxy (tokio swallows panics of spawned tasks).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

/// An upstream that records each request head when it arrives. `/hold…` paths are never
/// answered (for cancellation and stream-limit tests); everything else gets `200 ok` once the
/// body has been read.
pub struct Recorder {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Option<oneshot::Sender<()>>,
}

impl Recorder {
    pub async fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stopped) = oneshot::channel::<()>();
        let log = seen.clone();
        tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let (stream, _) = tokio::select! {
                    a = listener.accept() => match a { Ok(p) => p, Err(_) => continue },
                    _ = &mut stopped => break,
                };
                let log = log.clone();
                let service = service_fn(move |req: Request<Incoming>| {
                    let log = log.clone();
                    async move {
                        let path = req
                            .uri()
                            .path_and_query()
                            .map_or("/", |p| p.as_str())
                            .to_string();
                        log.lock().unwrap().push(Seen {
                            method: req.method().to_string(),
                            path: path.clone(),
                            headers: req
                                .headers()
                                .iter()
                                .map(|(k, v)| {
                                    (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into())
                                })
                                .collect(),
                        });
                        if path.starts_with("/hold") {
                            std::future::pending::<()>().await;
                        }
                        let _ = req.into_body().collect().await;
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    }
                });
                conns.spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while conns.try_join_next().is_some() {}
            }
            conns.abort_all();
        });
        Recorder {
            addr,
            seen,
            stop: Some(stop),
        }
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

static PANICS: AtomicU64 = AtomicU64::new(0);
static HOOK: Once = Once::new();

/// Installs (once) a panic hook counting panics raised outside the test code itself, i.e. in
/// the proxy or the libraries under it.
pub fn count_proxy_panics() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_tests = info
                .location()
                .is_some_and(|l| l.file().starts_with("tests/"));
            if !in_tests {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

pub fn proxy_panics() -> u64 {
    PANICS.load(Ordering::SeqCst)
}

/// Reads until EOF, an error, or `idle` passes without a byte; true when the peer closed.
pub async fn read_until_closed(
    stream: &mut (impl AsyncRead + Unpin),
    out: &mut Vec<u8>,
    idle: Duration,
) -> bool {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout(idle, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return false,
        }
    }
}

/// Raw HTTP/2 frames, written by hand so tests can send what no well-behaved client would.
pub mod h2 {
    pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const CONTINUATION: u8 = 0x9;

    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;

    pub const CANCEL: u32 = 0x8;
    pub const REFUSED_STREAM: u32 = 0x7;

    pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = Vec::with_capacity(9 + payload.len());
        f.extend_from_slice(&len.to_be_bytes()[1..]);
        f.push(kind);
        f.push(flags);
        f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// HPACK integer with an `n`-bit prefix (RFC 7541 §5.1), first byte's high bits = `high`.
    fn integer(out: &mut Vec<u8>, high: u8, n: u32, mut value: usize) {
        let max = (1usize << n) - 1;
        if value < max {
            out.push(high | value as u8);
            return;
        }
        out.push(high | max as u8);
        value -= max;
        while value >= 128 {
            out.push((value % 128 + 128) as u8);
            value /= 128;
        }
        out.push(value as u8);
    }

    /// A header block of "literal header field without indexing — new name" entries, so the
    /// decoder's dynamic table is never touched.
    pub fn block(headers: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in headers {
            out.push(0x00);
            integer(&mut out, 0, 7, name.len());
            out.extend_from_slice(name.as_bytes());
            integer(&mut out, 0, 7, value.len());
            out.extend_from_slice(value.as_bytes());
        }
        out
    }

    pub fn get(path: &str) -> Vec<u8> {
        block(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "hostile.test"),
        ])
    }

    pub fn rst(stream: u32, code: u32) -> Vec<u8> {
        frame(RST_STREAM, 0, stream, &code.to_be_bytes())
    }

    /// One frame as received.
    #[derive(Debug, Clone)]
    pub struct Frame {
        pub kind: u8,
        pub flags: u8,
        pub stream: u32,
        pub payload: Vec<u8>,
    }

    impl Frame {
        /// The error code of a RST_STREAM or GOAWAY.
        pub fn error_code(&self) -> Option<u32> {
            let at = match self.kind {
                RST_STREAM => 0,
                GOAWAY => 4,
                _ => return None,
            };
            let b = self.payload.get(at..at + 4)?;
            Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        }
    }

    /// Splits complete frames off the front of `buf`.
    pub fn parse(buf: &mut Vec<u8>) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            if buf.len() < 9 {
                return frames;
            }
            let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
            if buf.len() < 9 + len {
                return frames;
            }
            let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
            frames.push(Frame {
                kind: buf[3],
                flags: buf[4],
                stream,
                payload: buf[9..9 + len].to_vec(),
            });
            buf.drain(..9 + len);
        }
    }
}
