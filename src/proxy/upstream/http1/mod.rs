//! meshsim's own HTTP/1.1 client for upstream requests, driven inside the request's task.
//!
//! hyper's client gives every connection a task of its own and hands each request to it over
//! a channel, the response back over a oneshot, and the body over another channel: about a
//! third of the proxy's instructions per request went there (callgrind, README Benchmark).
//! Here the request's own task writes the request and reads the response, and the response
//! body reads straight from the connection, which it owns until the body ends; then the
//! connection goes back to its host's pool (see [`super::pool`]).
//!
//! What it speaks is what hyper's client spoke for meshsim: request bodies framed by
//! `Content-Length` or chunked (see [`encode`]); responses delimited by length, chunks (with
//! extensions and trailers) or close, interim 1xx responses skipped, `101` handing the
//! connection over (see [`decode`]); an answer that comes before the request body has been
//! sent ends the upload, and that connection is not reused.

mod body;
mod decode;
mod encode;

use std::cell::Cell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use http::{Method, Request, Response};
use http_body::Body as _;
use tokio::io::AsyncWrite;

pub use body::Http1Body;
use decode::{ResponseFraming, ResponseHead};
use encode::BodyFraming;

use super::connector::Tracked;
use crate::proxy::body::{Body, BoxError};
use crate::proxy::cluster::{ClusterCore, Host};
use crate::proxy::http1_wire;

thread_local! {
    /// A request buffer whose request has gone out, empty, for the next request this worker
    /// sends: most requests are written at once, so one buffer serves them all, where a new
    /// one for each cost an allocation per request. (Kept out of [`Http1Connection`], which
    /// moves whole between the pool, the exchange and the response body: a bigger one is
    /// copied with `memcpy` instead of a few moves.)
    static SPARE_WRITE_BUF: Cell<BytesMut> = Cell::new(BytesMut::new());
}

/// The largest spare request buffer kept: a request head and a small body fit. One that grew
/// for a large body is freed, not held by the worker for good.
const SPARE_WRITE_BUF_MAX: usize = 16 * 1024;

/// An open HTTP/1.1 connection to an upstream host, with what has been read from it and not
/// yet consumed.
pub struct Http1Connection {
    io: Tracked,
    read_buf: BytesMut,
    /// Requests it has carried (for `max_requests_per_connection`).
    pub served: u32,
}

impl Http1Connection {
    pub fn new(io: Tracked) -> Self {
        Http1Connection {
            io,
            read_buf: BytesMut::new(),
            served: 0,
        }
    }

    /// For an idle connection: whether the upstream has closed it (or sent bytes nobody asked
    /// for). If not, `cx`'s waker is woken when that changes.
    pub fn poll_ended(&mut self, cx: &mut Context<'_>) -> bool {
        !self.read_buf.is_empty() || self.io.poll_idle_ended(cx)
    }

    /// Reads more into the buffer; `Ok(0)` is the end of the stream.
    fn poll_read_more(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        http1_wire::make_read_room(&mut self.read_buf);
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read_buf)
    }
}

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Not one byte was written (a pooled connection the upstream had closed): the request
    /// can go on another connection.
    #[error("connection closed before the request was sent: {1}")]
    Unsent(Box<Request<Body>>, io::Error),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("connection closed before a response")]
    Closed,
    #[error(transparent)]
    Decode(#[from] decode::DecodeError),
    #[error("request body: {0}")]
    RequestBody(BoxError),
}

/// The connection an upgraded (`101`) response hands over, with any bytes of the new
/// protocol already read. (Request extensions must be `Clone`; it is taken out once.)
#[derive(Clone)]
pub struct UpgradedUpstream(Arc<Mutex<Option<Http1Connection>>>);

impl UpgradedUpstream {
    /// The connection and the bytes read past the `101` head.
    pub fn take(&self) -> Option<(Tracked, BytesMut)> {
        let conn = self.0.lock().ok()?.take()?;
        Some((conn.io, conn.read_buf))
    }
}

/// Sends `req` (a URI of path and query, `Host` among its headers) on `conn` and reads the
/// response head. The response body reads from the connection; once it has ended, the
/// connection goes back to `host`'s pool if it can carry another request.
pub async fn send(
    conn: Http1Connection,
    req: Request<Body>,
    core: &Arc<ClusterCore>,
    host: &Arc<Host>,
) -> Result<Response<Http1Body>, SendError> {
    let (mut parts, body) = req.into_parts();
    let framing = encode::body_framing(
        &parts.method,
        &mut parts.headers,
        body.is_end_stream(),
        body.size_hint().exact(),
    );
    let mut out = SPARE_WRITE_BUF.take();
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    encode::write_head(&mut out, &parts.method, target, &parts.headers);
    let method = parts.method.clone();
    let mut exchange = Exchange {
        conn: Some(conn),
        out,
        written: 0,
        anything_written: false,
        request: Some((parts, body)),
        framing,
        body_sent: 0,
        body_done: framing == BodyFraming::Length(0),
        write_failed: None,
        method,
        recycled: None,
    };
    let answered = poll_fn(|cx| exchange.poll(cx)).await?;
    Ok(answered.into_response(core, host))
}

/// One request on one connection, until its response head has been read.
struct Exchange {
    conn: Option<Http1Connection>,
    /// Bytes to write, from `written` on.
    out: BytesMut,
    written: usize,
    anything_written: bool,
    /// The request until all of it has been written (its head kept so an unsent request can be
    /// handed back); `None` once it is out.
    request: Option<(http::request::Parts, Body)>,
    framing: BodyFraming,
    body_sent: u64,
    body_done: bool,
    /// Writing failed after part of the request went out; the upstream may still answer.
    write_failed: Option<io::Error>,
    method: Method,
    /// The request's header map once it has been sent, for the response's headers.
    recycled: Option<http::HeaderMap>,
}

/// A response head, and the connection its body is to be read from.
struct Answered {
    head: ResponseHead,
    conn: Http1Connection,
    /// Whether the whole request went out before the answer came.
    request_complete: bool,
}

impl Exchange {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<Answered, SendError>> {
        if self.request.is_some() && self.write_failed.is_none() {
            match self.poll_write_request(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(SendError::Io(e))) if self.anything_written => {
                    // The upstream may have answered and closed (a 413 before the upload
                    // ended): read what it said before giving up.
                    self.write_failed = Some(e);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        let conn = self.conn.as_mut().expect("polled after the answer");
        loop {
            // Nothing to parse before the first bytes come: the request has only just gone
            // out when this is first polled, and it is polled again when they are readable.
            if !conn.read_buf.is_empty() {
                let parsed =
                    decode::parse_response(&mut conn.read_buf, &self.method, &mut self.recycled)?;
                if let Some(head) = parsed {
                    let mut conn = self.conn.take().expect("checked above");
                    conn.served += 1;
                    return Poll::Ready(Ok(Answered {
                        head,
                        conn,
                        request_complete: self.request.is_none(),
                    }));
                }
            }
            match ready!(conn.poll_read_more(cx)) {
                Ok(0) => {
                    return Poll::Ready(Err(match self.write_failed.take() {
                        Some(e) => SendError::Io(e),
                        None => SendError::Closed,
                    }))
                }
                Ok(_) => {}
                Err(e) => return Poll::Ready(Err(SendError::Io(e))),
            }
        }
    }

    /// Writes the head, then the body as it comes. Ready(Ok) once all of it is out.
    fn poll_write_request(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        let conn = self.conn.as_mut().expect("polled after the answer");
        loop {
            while self.written < self.out.len() {
                match Pin::new(&mut conn.io).poll_write(cx, &self.out[self.written..]) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into()))
                    }
                    Poll::Ready(Ok(n)) => {
                        self.written += n;
                        self.anything_written = true;
                    }
                    Poll::Ready(Err(e)) if !self.anything_written => {
                        let (parts, body) = self.request.take().expect("sent once");
                        let request = Request::from_parts(parts, body);
                        return Poll::Ready(Err(SendError::Unsent(Box::new(request), e)));
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                    Poll::Pending => return Poll::Pending,
                }
            }
            self.out.clear();
            self.written = 0;
            // A TLS stream may hold written bytes back until flushed.
            ready!(Pin::new(&mut conn.io).poll_flush(cx))?;
            if self.body_done {
                if let Some((parts, _)) = self.request.take() {
                    http1_wire::recycle(&mut self.recycled, parts.headers);
                }
                if self.out.capacity() <= SPARE_WRITE_BUF_MAX {
                    SPARE_WRITE_BUF.set(std::mem::take(&mut self.out));
                }
                return Poll::Ready(Ok(()));
            }
            let (_, body) = self.request.as_mut().expect("sent once");
            match ready!(Pin::new(body).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        self.body_sent += data.len() as u64;
                        match self.framing {
                            BodyFraming::Length(n) if self.body_sent > n => {
                                return Poll::Ready(Err(SendError::RequestBody(
                                    "request body longer than its content-length".into(),
                                )))
                            }
                            BodyFraming::Length(_) => self.out.extend_from_slice(&data),
                            BodyFraming::Chunked => http1_wire::write_chunk(&mut self.out, &data),
                        }
                    }
                    Err(frame) => {
                        if self.framing == BodyFraming::Chunked {
                            http1_wire::write_last_chunk(&mut self.out, frame.trailers_ref());
                        }
                        self.body_done = true;
                    }
                },
                None => {
                    match self.framing {
                        BodyFraming::Chunked => http1_wire::write_last_chunk(&mut self.out, None),
                        BodyFraming::Length(n) if self.body_sent < n => {
                            return Poll::Ready(Err(SendError::RequestBody(
                                "request body shorter than its content-length".into(),
                            )))
                        }
                        BodyFraming::Length(_) => {}
                    }
                    self.body_done = true;
                }
                Some(Err(e)) => return Poll::Ready(Err(SendError::RequestBody(e))),
            }
        }
    }
}

impl Answered {
    fn into_response(self, core: &Arc<ClusterCore>, host: &Arc<Host>) -> Response<Http1Body> {
        let Answered {
            head,
            conn,
            request_complete,
        } = self;
        let ResponseHead {
            mut parts,
            framing,
            keep_alive,
        } = head;
        let body = match framing {
            ResponseFraming::Upgrade => {
                let upgraded = UpgradedUpstream(Arc::new(Mutex::new(Some(conn))));
                parts.extensions.insert(upgraded);
                Http1Body::empty()
            }
            framing => {
                let home = (keep_alive && request_complete).then(|| (core.clone(), host.clone()));
                Http1Body::new(conn, framing, home)
            }
        };
        Response::from_parts(parts, body)
    }
}
