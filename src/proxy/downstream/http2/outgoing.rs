//! What the server sends: each answer's head as soon as the HCM has it, then its body as
//! DATA frames, as the client's flow-control windows and the send buffer allow.

use std::pin::Pin;
use std::task::{Context, Poll};

use h2::Reason;
use http::header::{CONTENT_LENGTH, DATE};
use http::{HeaderMap, HeaderValue, Response};
use http_body::Body as _;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{causes, Server, MAX_RECYCLED_HEADER_MAPS, MAX_SEND_BUFFER};
use crate::proxy::body::Body;
use crate::proxy::headers::strip_hop_by_hop;
use crate::proxy::http2_wire::frame;
use crate::proxy::http2_wire::hpack;

impl<'c, IO> Server<'c, IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    /// The HCM answered stream `id`: its head goes out now, its body as windows allow.
    pub(super) fn start_response(&mut self, id: u32, response: Response<Body>) {
        let Some(at) = self.find(id) else {
            return;
        };
        let (mut parts, body) = response.into_parts();
        // Connection-specific headers are illegal in HTTP/2 (RFC 9113 §8.2.2): the
        // hop-by-hop rule every hop applies, once more after the route's response mutations.
        strip_hop_by_hop(&mut parts.headers, false);
        if !parts.headers.contains_key(DATE) {
            parts
                .headers
                .insert(DATE, crate::proxy::downstream::response::date_value());
        }
        let end_stream = body.is_end_stream();
        if !end_stream && !parts.headers.contains_key(CONTENT_LENGTH) {
            if let Some(length) = body.size_hint().exact() {
                parts
                    .headers
                    .insert(CONTENT_LENGTH, HeaderValue::from(length));
            }
        }
        self.header_block(id, end_stream, |dst| {
            hpack::encode_response(parts.status, &parts.headers, dst)
        });
        self.recycle_header_map(parts.headers);
        let stream = &mut self.streams[at];
        stream.abort = None;
        if end_stream {
            self.answered(at, false);
        } else {
            stream.body = Some(body);
        }
    }

    /// Keeps an encoded answer's header map, cleared, for a later request's headers: it went
    /// upstream as a request's and came back as the response's, so it already fits a message
    /// with the proxy's additions. (A new map for every h2c request was allocated as it filled:
    /// two allocations per request, which glibc serves slowly with hundreds of streams in
    /// flight.)
    fn recycle_header_map(&mut self, mut map: HeaderMap) {
        if self.header_maps.len() < MAX_RECYCLED_HEADER_MAPS {
            map.clear();
            self.header_maps.push(map);
        }
    }

    /// Stream `at`'s answer is complete (or `failed`, reset already). The rest of a request
    /// still coming is not wanted (RFC 9113 §8.1): the stream is reset and closed.
    fn answered(&mut self, at: usize, failed: bool) {
        let stream = &mut self.streams[at];
        stream.local_closed = true;
        if stream.remote_closed && !failed {
            self.finish_if_closed(at);
            return;
        }
        if !failed {
            frame::put_rst_stream(&mut self.write_buf, stream.id, Reason::NO_ERROR);
        }
        let stream = self.streams.swap_remove(at);
        self.close(stream, Reason::NO_ERROR);
    }

    /// Writes a header block for stream `id`, opened by a table size update when the client
    /// shrank its table (see `on_settings`).
    pub(super) fn header_block(
        &mut self,
        id: u32,
        end_stream: bool,
        encode: impl FnOnce(&mut bytes::BytesMut),
    ) {
        let size_update = std::mem::take(&mut self.table_size_update);
        self.table_size_zeroed |= size_update;
        frame::put_header_block(
            &mut self.write_buf,
            id,
            end_stream,
            self.peer_max_frame_size,
            |dst| {
                if size_update {
                    hpack::encode_table_size_update(0, dst);
                }
                encode(dst)
            },
        );
    }

    /// Sends what the response bodies have, as flow control and the send buffer allow. Sets
    /// `buffer_full` when a body stopped only because the send buffer is full.
    pub(super) fn poll_bodies(&mut self, cx: &mut Context<'_>) {
        self.buffer_full = false;
        let mut at = 0;
        while at < self.streams.len() {
            if self.streams[at].body.is_none() {
                at += 1;
                continue;
            }
            match self.send_body(cx, at) {
                Sent::Waiting => at += 1,
                Sent::BufferFull => {
                    self.buffer_full = true;
                    return;
                }
                Sent::Done { failed } => {
                    self.streams[at].body = None;
                    let len = self.streams.len();
                    self.answered(at, failed);
                    // A removed stream's place went to the last one: look at it next.
                    if self.streams.len() == len {
                        at += 1;
                    }
                }
            }
        }
    }

    /// Sends from one stream's body until it waits, ends or fails.
    fn send_body(&mut self, cx: &mut Context<'_>, at: usize) -> Sent {
        let max_frame = self.peer_max_frame_size as i64;
        let stream = &mut self.streams[at];
        loop {
            if self.write_buf.len() >= MAX_SEND_BUFFER {
                return Sent::BufferFull;
            }
            if let Some((mut chunk, last)) = stream.waiting.take() {
                let window = stream.send_window.min(self.send_window).min(max_frame);
                if window <= 0 {
                    // WINDOW_UPDATE wakes the connection, which looks again.
                    stream.waiting = Some((chunk, last));
                    self.window_stalls.note(stream.id);
                    return Sent::Waiting;
                }
                self.window_stalls.clear(stream.id);
                let n = (window as usize).min(chunk.len());
                let piece = chunk.split_to(n);
                let end = last && chunk.is_empty();
                frame::put_data(&mut self.write_buf, stream.id, end, &piece);
                stream.send_window -= n as i64;
                self.send_window -= n as i64;
                if !chunk.is_empty() {
                    stream.waiting = Some((chunk, last));
                } else if last {
                    return Sent::Done { failed: false };
                }
                continue;
            }
            let Some(body) = stream.body.as_mut() else {
                return Sent::Done { failed: false };
            };
            match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Pending => return Sent::Waiting,
                Poll::Ready(None) => {
                    frame::put_data(&mut self.write_buf, stream.id, true, &[]);
                    return Sent::Done { failed: false };
                }
                Poll::Ready(Some(Err(error))) => {
                    tracing::debug!(%error, "response body failed; resetting the stream");
                    let reason = reset_reason(error.as_ref());
                    frame::put_rst_stream(&mut self.write_buf, stream.id, reason);
                    return Sent::Done { failed: true };
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(chunk) => {
                        let last = body.is_end_stream();
                        if !chunk.is_empty() {
                            stream.waiting = Some((chunk, last));
                        } else if last {
                            frame::put_data(&mut self.write_buf, stream.id, true, &[]);
                            return Sent::Done { failed: false };
                        }
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            let id = stream.id;
                            self.header_block(id, true, |dst| {
                                hpack::encode_trailers(&trailers, dst)
                            });
                            return Sent::Done { failed: false };
                        }
                    }
                },
            }
        }
    }
}

/// How far one body got.
enum Sent {
    /// On its body, or on flow-control window: either wakes the connection.
    Waiting,
    /// On the send buffer: the connection flushes, then sends on.
    BufferFull,
    /// Ended (or `failed`: its stream was reset).
    Done { failed: bool },
}

/// The reason a stream is reset with when its body fails: an HTTP/2 reason found in the
/// error's chain (an upstream's reset, say), else `INTERNAL_ERROR`.
fn reset_reason(error: &(dyn std::error::Error + 'static)) -> Reason {
    causes::<h2::Error>(error)
        .find_map(h2::Error::reason)
        .unwrap_or(Reason::INTERNAL_ERROR)
}
