//! The HTTP/1.1 fast path: one task per connection reads each request head, runs the HCM on
//! it while watching for the client going away, and writes the response, head and body
//! together when the body is already there. No dispatcher, channel or task per request.
//!
//! It serves requests without a body (most of what a mesh carries: GETs, HEADs, DELETEs).
//! A request it does not serve stops it at that request's boundary, with the bytes read so
//! far, and hyper serves the connection from there ([`super::Connection::serve`]).

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;

use bytes::BytesMut;
use http::Response;
use http_body::Body as _;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::request::{self, Head};
use super::response::{self, BodyEncoding, BodySize};
use super::{ConnError, Connection, HeaderTimeout};
use crate::proxy::body::Body;
use crate::proxy::hardening::watchdog::StreamGuard;
use crate::proxy::http1_wire;
use crate::proxy::turn_end::{turn_end, Cpu};

/// Response bytes gathered before they are written even though the body has more ready.
const WRITE_BATCH: usize = 64 * 1024;

/// How the fast path left a connection.
pub enum Served {
    /// Closed (by either side, or after `Connection: close`).
    Closed,
    /// The next request is hyper's; what has been read of it is in the buffer.
    HandOver,
}

/// Serves requests on `io` until the connection closes or a request needs hyper.
pub async fn serve<IO>(
    conn: &Connection,
    io: &mut IO,
    buf: &mut BytesMut,
) -> Result<Served, ConnError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut out = BytesMut::new();
    // The header map of the last response, cleared, for the next request's headers.
    let mut recycled = None;
    // The listener's drain signal, watched while waiting for a request: an idle connection
    // closes at once; one with a request in flight answers it with `connection: close`.
    let mut drained = pin!(conn.drained());
    loop {
        let next = read_request(conn, io, buf, &mut recycled, drained.as_mut()).await?;
        let (request, facts) = match next {
            Next::Request(request, facts) => (request, facts),
            Next::HandOver => return Ok(Served::HandOver),
            Next::Closed => return Ok(Served::Closed),
        };
        crate::proxy::listener::note_protocol(&conn.protocol, request.version(), conn.hcm.stats());
        let stream = StreamGuard::new(conn.watch.clone());
        // Built in place in this task's future: no box, no copy of the HCM's large future.
        let handling = pin!(conn.hcm.handle(request, conn.info));
        let Some(response) = answer_or_client_gone(handling, io, buf, conn.max_head_bytes()).await
        else {
            // The client went away first: dropping the HCM's future cancels the request.
            return Ok(Served::Closed);
        };
        stream.answered();
        // The drain signal only ever turns on, so "changed" is "draining": an atomic load,
        // where reading the value would take the channel's lock on every request.
        let draining = !matches!(conn.drain.has_changed(), Ok(false));
        let keep_alive = facts.keep_alive && !draining;
        // The answer goes out with the others of this turn (see `turn_end`).
        turn_end(Cpu::YieldIfDue).await;
        if !write_response(io, &mut out, &mut recycled, response, &facts, keep_alive).await? {
            let _ = io.shutdown().await;
            return Ok(Served::Closed);
        }
    }
}

/// What the connection holds next.
// Returned once per request and taken apart at once: boxing the request would cost an
// allocation per request for nothing.
#[allow(clippy::large_enum_variant)]
enum Next {
    Request(http::Request<Body>, request::RequestFacts),
    /// A request for hyper (in the buffer).
    HandOver,
    /// The connection closed, or the listener drained, while no request was in progress.
    Closed,
}

/// Reads until a whole request head is in `buf`.
async fn read_request<IO>(
    conn: &Connection,
    io: &mut IO,
    buf: &mut BytesMut,
    recycled: &mut Option<http::HeaderMap>,
    mut drained: Pin<&mut impl Future<Output = ()>>,
) -> Result<Next, ConnError>
where
    IO: AsyncRead + Unpin,
{
    // Armed when part of a head has arrived: the rest must follow within
    // `request_headers_timeout` (the wait for the first request is the watchdog's).
    let mut head_timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        match request::parse(buf, conn.max_headers, conn.max_head_bytes(), recycled) {
            Head::Request(request, facts) => return Ok(Next::Request(request, facts)),
            Head::HandOver => return Ok(Next::HandOver),
            // hyper refuses it (431).
            Head::Partial if buf.len() > conn.max_head_bytes() => return Ok(Next::HandOver),
            Head::Partial => {}
        }
        if !buf.is_empty() && head_timer.is_none() {
            head_timer = conn
                .headers_timeout
                .map(|t| Box::pin(tokio::time::sleep(t)));
        }
        let idle = buf.is_empty();
        // The read first: the drain signal and the head's timer are asked only when there is
        // nothing to read, not again on the wake-up that brings the request (a watch channel's
        // poll per request saved). A request already sent is served even if the listener
        // drains meanwhile; its answer closes the connection.
        let read = poll_fn(|cx| {
            http1_wire::make_read_room(buf);
            if let Poll::Ready(read) = tokio_util::io::poll_read_buf(Pin::new(&mut *io), cx, buf) {
                return Poll::Ready(Ok(read));
            }
            if idle && drained.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(None));
            }
            if let Some(timer) = head_timer.as_mut() {
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(Some(HeaderTimeout)));
                }
            }
            Poll::Pending
        })
        .await;
        match read {
            Ok(Ok(0)) | Ok(Err(_)) | Err(None) => return Ok(Next::Closed),
            Ok(Ok(_)) => {}
            Err(Some(timeout)) => return Err(timeout.into()),
        }
    }
}

/// Runs the HCM until it answers, reading ahead meanwhile (a pipelined request, or the end
/// of the stream). `None`: the client closed its side first.
async fn answer_or_client_gone<IO>(
    mut handling: Pin<&mut impl Future<Output = Response<Body>>>,
    io: &mut IO,
    buf: &mut BytesMut,
    read_limit: usize,
) -> Option<Response<Body>>
where
    IO: AsyncRead + Unpin,
{
    poll_fn(|cx| {
        if let Poll::Ready(response) = handling.as_mut().poll(cx) {
            return Poll::Ready(Some(response));
        }
        // Past the limit nothing more is read until this request is answered.
        while buf.len() < read_limit {
            http1_wire::make_read_room(buf);
            match tokio_util::io::poll_read_buf(Pin::new(&mut *io), cx, buf) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(None),
                Poll::Ready(Ok(_)) => {}
                Poll::Pending => break,
            }
        }
        Poll::Pending
    })
    .await
}

/// Writes `response`; the head and whatever of the body is ready go in one write. Returns
/// whether the connection may carry another request.
async fn write_response<IO>(
    io: &mut IO,
    out: &mut BytesMut,
    recycled: &mut Option<http::HeaderMap>,
    response: Response<Body>,
    facts: &request::RequestFacts,
    mut keep_alive: bool,
) -> Result<bool, ConnError>
where
    IO: AsyncWrite + Unpin,
{
    let (mut parts, mut body) = response.into_parts();
    let size = if body.is_end_stream() {
        BodySize::Empty
    } else {
        match body.size_hint().exact() {
            Some(n) => BodySize::Exact(n),
            None => BodySize::Unknown,
        }
    };
    out.clear();
    let encoding = response::write_head(out, &mut parts, facts, size, &mut keep_alive);
    http1_wire::recycle(recycled, parts.headers);
    let mut left = match encoding {
        BodyEncoding::Length(n) => Some(n),
        BodyEncoding::Chunked(_) => None,
    };
    let complete = loop {
        if left == Some(0) || body.is_end_stream() {
            break left.is_none_or(|n| n == 0);
        }
        // What the body has ready is gathered; before waiting for more, what there is goes out.
        let ready = poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await;
        let frame = match ready {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                flush(io, out).await?;
                poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            }
        };
        let Some(frame) = frame else {
            break left.is_none_or(|n| n == 0);
        };
        let frame = match frame {
            Ok(frame) => frame,
            // The upstream broke off mid-body: so does this response.
            Err(_) => return Ok(false),
        };
        match frame.into_data() {
            Ok(data) => match &mut left {
                Some(n) => {
                    let take = data.len().min(*n as usize);
                    out.extend_from_slice(&data[..take]);
                    *n -= take as u64;
                }
                None => http1_wire::write_chunk(out, &data),
            },
            Err(frame) => {
                if let (BodyEncoding::Chunked(allowed), Some(trailers)) =
                    (&encoding, frame.trailers_ref())
                {
                    let mut sent = http::HeaderMap::new();
                    for (name, value) in trailers {
                        if allowed.contains(name) {
                            sent.append(name.clone(), value.clone());
                        }
                    }
                    http1_wire::write_last_chunk(out, Some(&sent));
                    flush(io, out).await?;
                    return Ok(keep_alive);
                }
            }
        }
        if out.len() >= WRITE_BATCH {
            flush(io, out).await?;
        }
    };
    if left.is_none() {
        http1_wire::write_last_chunk(out, None);
    }
    drop(body);
    flush(io, out).await?;
    Ok(keep_alive && complete)
}

async fn flush<IO: AsyncWrite + Unpin>(io: &mut IO, out: &mut BytesMut) -> std::io::Result<()> {
    if !out.is_empty() {
        io.write_all(out).await?;
        out.clear();
    }
    io.flush().await
}
