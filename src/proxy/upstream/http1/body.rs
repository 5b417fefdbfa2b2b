//! A response body read straight from its upstream connection.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

use super::decode::{Chunk, ChunkedState, ResponseFraming};
use super::Http1Connection;
use crate::proxy::body::BoxError;
use crate::proxy::cluster::{ClusterCore, Host};
use crate::proxy::upstream::pool;

enum Remaining {
    Length(u64),
    Chunked(ChunkedState),
    UntilClose,
    Done,
}

/// Owns its connection until the last byte has been read; then gives it back to the host's
/// pool (if the exchange left it fit for another request) or closes it. Dropped before its
/// end (the client went away, a retry), it closes the connection, whose next bytes would be
/// the rest of this response.
pub struct Http1Body {
    conn: Option<Http1Connection>,
    remaining: Remaining,
    /// Where the connection goes when the body has ended; `None`: it is closed.
    home: Option<(Arc<ClusterCore>, Arc<Host>)>,
}

impl Http1Body {
    pub(super) fn new(
        conn: Http1Connection,
        framing: ResponseFraming,
        home: Option<(Arc<ClusterCore>, Arc<Host>)>,
    ) -> Self {
        let remaining = match framing {
            ResponseFraming::Length(n) => Remaining::Length(n),
            ResponseFraming::Chunked => Remaining::Chunked(ChunkedState::Size),
            ResponseFraming::UntilClose | ResponseFraming::Upgrade => Remaining::UntilClose,
        };
        let mut body = Http1Body {
            conn: Some(conn),
            remaining,
            home,
        };
        if matches!(body.remaining, Remaining::Length(0)) {
            // No body: the connection is free now.
            body.finish();
        }
        body
    }

    /// A body with nothing in it and no connection behind it.
    pub(super) fn empty() -> Self {
        Http1Body {
            conn: None,
            remaining: Remaining::Done,
            home: None,
        }
    }

    /// The body has been read to its end: the connection goes home, or is closed if it has
    /// unread bytes (the upstream sent more than the response) or cannot be reused.
    fn finish(&mut self) {
        self.remaining = Remaining::Done;
        let Some(conn) = self.conn.take() else { return };
        if let Some((core, host)) = self.home.take() {
            if conn.read_buf.is_empty() {
                pool::give_back_http1(&core, &host, conn);
            }
        }
    }

    fn fail(&mut self, error: impl Into<BoxError>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.remaining = Remaining::Done;
        self.conn = None;
        Poll::Ready(Some(Err(error.into())))
    }
}

impl http_body::Body for Http1Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            let buf = &mut conn.read_buf;
            match &mut this.remaining {
                Remaining::Done => return Poll::Ready(None),
                Remaining::Length(left) if !buf.is_empty() => {
                    let n = (buf.len() as u64).min(*left) as usize;
                    let data = buf.split_to(n).freeze();
                    *left -= n as u64;
                    if *left == 0 {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Remaining::UntilClose if !buf.is_empty() => {
                    let data = buf.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Remaining::Chunked(state) => match state.decode(buf) {
                    Ok(Chunk::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Ok(Chunk::End(trailers)) => {
                        this.finish();
                        return Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))));
                    }
                    Ok(Chunk::NeedMore) => {}
                    Err(e) => return this.fail(e),
                },
                Remaining::Length(_) | Remaining::UntilClose => {}
            }
            match ready!(conn.poll_read_more(cx)) {
                Ok(0) if matches!(this.remaining, Remaining::UntilClose) => {
                    this.remaining = Remaining::Done;
                    this.conn = None;
                    return Poll::Ready(None);
                }
                Ok(0) => return this.fail("connection closed before the response body ended"),
                Ok(_) => {}
                Err(e) => return this.fail(e),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.remaining, Remaining::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Remaining::Length(n) => SizeHint::with_exact(n),
            Remaining::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}
