//! An upstream that misbehaves on purpose: each request's answer (status, delay, or a dropped
//! connection) is chosen by a script from the request's number, and every request is counted.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// What the upstream does with request number `n` (0-based) for a path.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// Wait, then answer 200.
    Slow(Duration),
    /// Close the connection without answering.
    Drop,
    /// Answer 200 with the first bytes of a body, then break the connection mid-body.
    ResetMidBody,
}

pub struct Scripted {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Scripted {
    /// `script(n, path)` decides; `n` counts every request, health checks included.
    pub async fn start(script: impl Fn(u64, &str) -> Answer + Send + Sync + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicU64::new(0));
        let script = Arc::new(script);
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (script, counter) = (script.clone(), counter.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let n = counter.fetch_add(1, Ordering::SeqCst);
                        let answer = script(n, req.uri().path());
                        async move {
                            match answer {
                                Answer::Status(code) => Ok(reply(code, &format!("answer {n}"))),
                                Answer::Slow(d) => {
                                    tokio::time::sleep(d).await;
                                    Ok(reply(200, &format!("slow answer {n}")))
                                }
                                Answer::ResetMidBody => Ok(broken()),
                                Answer::Drop => Err("dropped on purpose"),
                            }
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Scripted {
            addr,
            requests,
            task,
        }
    }

    pub fn count(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type ScriptBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

fn reply(code: u16, body: &str) -> Response<ScriptBody> {
    use http_body_util::BodyExt;
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .body(
            Full::new(Bytes::from(body.to_string()))
                .map_err(|never| match never {})
                .boxed(),
        )
        .unwrap()
}

/// A 200 that promises 100 bytes, sends 10, then fails: the connection breaks mid-body.
fn broken() -> Response<ScriptBody> {
    use http_body_util::BodyExt;
    // The failure waits a moment, so the head and the first bytes are on the wire first.
    let frames = futures_util::stream::unfold(0, |step| async move {
        match step {
            0 => Some((
                Ok(hyper::body::Frame::data(Bytes::from_static(b"0123456789"))),
                1,
            )),
            1 => {
                tokio::time::sleep(std::time::Duration::from_millis(150)).await;
                Some((Err(std::io::Error::other("broken on purpose")), 2))
            }
            _ => None,
        }
    });
    let body = http_body_util::StreamBody::new(frames);
    Response::builder()
        .header("content-length", "100")
        .body(body.boxed())
        .unwrap()
}
