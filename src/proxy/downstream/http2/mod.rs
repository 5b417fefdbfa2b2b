//! HTTP/2 downstream (h2c prior knowledge, or h2 over TLS) on the proxy's own codec
//! ([`http2_wire`]): one task per connection reads the client's frames, runs each stream's HCM
//! future, and writes the answers, as Envoy keeps a connection on one worker.
//!
//! What a client sees is what the h2 crate's server (and hyper's before it) showed: the same
//! SETTINGS and limits ([`hardening`]), connection headers stripped from responses, a `date`
//! header, `content-length` from a body of known size, a reset stream cancelling its request
//! (and a closed connection all of them), 431 for a header list over the listener's budget,
//! keep-alive PINGs on idle connections, GOAWAY on drain.

mod handler_slot;
mod incoming;
mod keep_alive;
mod outgoing;
mod recv_body;
mod request_head;
mod window_stall;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::future::{AbortHandle, Abortable};
use futures_util::stream::{FuturesUnordered, StreamExt};
use h2::Reason;
use http::{HeaderMap, Response};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{causes, ConnError, Connection};
use crate::proxy::body::Body;
use crate::proxy::hardening;
use crate::proxy::hardening::watchdog::StreamGuard;
use crate::proxy::http2_wire::frame::{self, setting, Head, Kind};
use crate::proxy::http2_wire::hpack;
use crate::proxy::turn_end::{wake_at_turn_end, Cpu};

use handler_slot::HandlerSlot;
use keep_alive::KeepAlive;
use recv_body::{ConnSignal, RecvShared};
use window_stall::WindowStalls;

// hyper's server defaults, which our HTTP/2 listeners have always had: windows larger than the
// spec's 64 KiB so one stream can fill a fast link, and a bounded send buffer.
const CONNECTION_WINDOW: u32 = 1024 * 1024;
const STREAM_WINDOW: u32 = 1024 * 1024;
const MAX_FRAME_SIZE: u32 = frame::DEFAULT_MAX_FRAME_SIZE;
/// Past this much unwritten output, bodies are not read on and control frames the client
/// provokes (PING and SETTINGS acknowledgements) count as a flood.
const MAX_SEND_BUFFER: usize = 400 * 1024;
/// The HPACK table the client may use (the protocol's default).
const HEADER_TABLE_SIZE: usize = 4096;
/// Read per turn of the connection's task before letting other connections run.
const READ_BUDGET: usize = 64 * 1024;
/// DATA frames with nothing in them and no END_STREAM, per connection, before it is cut off
/// (h2's limit on the "empty frames" flood, RUSTSEC-2026-0258).
const MAX_EMPTY_DATA_FRAMES: u32 = 1024;
/// DATA payloads at least this large go to their body as a slice of the read buffer; smaller
/// ones are copied, so a queued byte never pins a whole buffer.
const SHARED_DATA_MIN: u32 = 1024;
/// Answered header maps a connection keeps for its next requests (the streams a client like
/// h2load keeps open at once, 10 by default, stay within it).
const MAX_RECYCLED_HEADER_MAPS: usize = 16;
/// Blocks of answered streams a connection keeps for its next streams' HCM futures (see
/// `handler_slot`): h2load's 10 streams in flight, a browser's page load. Each is several
/// kilobytes, and an idle connection gives them back (see `poll_connection`).
const MAX_SPARE_HANDLER_SLOTS: usize = 10;
/// Our keep-alive PING's payload.
const PING_PAYLOAD: [u8; 8] = *b"meshsim\0";

/// The client broke the protocol (or flooded it): the connection was closed with a GOAWAY
/// carrying `reason`.
#[derive(Debug, thiserror::Error)]
#[error("HTTP/2 connection error {reason:?}: {what}")]
pub struct ProtocolError {
    pub reason: Reason,
    pub what: &'static str,
}

/// The peer did not answer a keep-alive PING in time: the connection is presumed dead.
#[derive(Debug, thiserror::Error)]
#[error(
    "HTTP/2 keep-alive PING unanswered within {:?}",
    hardening::H2_KEEP_ALIVE_TIMEOUT
)]
struct KeepAliveTimedOut;

/// Serves HTTP/2 on `io` (whose first bytes are the client's preface) until the connection
/// closes, or, once the listener drains, until its streams are answered. A stream whose answer
/// waits for window `stream_idle_timeout` is reset (see [`WindowStalls`]).
pub async fn serve<IO>(
    conn: &Connection,
    io: IO,
    stream_idle_timeout: Option<Duration>,
) -> Result<(), ConnError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut server = Server::new(conn, io, stream_idle_timeout);
    std::future::poll_fn(|cx| server.poll(cx)).await
}

type Handling<'c> = Abortable<Answer<'c>>;

/// One stream's request in the HCM; once answered, the answer with its stream, and the block
/// the request ran in, for the connection's next stream.
struct Answer<'c> {
    id: u32,
    /// Told when the HCM answered; dropped unanswered if the client resets the stream first
    /// (the premature-reset guard counts those).
    guard: Option<StreamGuard>,
    /// Taken once answered.
    handling: Option<HandlerSlot<'c>>,
}

impl<'c> Future for Answer<'c> {
    type Output = (u32, Response<Body>, HandlerSlot<'c>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(handling) = self.handling.as_mut() else {
            panic!("an HTTP/2 stream's answer polled after it completed");
        };
        let response = std::task::ready!(handling.as_mut().poll_answer(cx));
        if let Some(guard) = self.guard.take() {
            guard.answered();
        }
        let slot = self.handling.take().expect("checked above");
        Poll::Ready((self.id, response, slot))
    }
}

struct Server<'c, IO> {
    conn: &'c Connection,
    io: IO,
    read_buf: BytesMut,
    write_buf: BytesMut,
    decoder: hpack::Decoder,
    preface_seen: bool,
    settings_seen: bool,
    /// The client's SETTINGS_INITIAL_WINDOW_SIZE and SETTINGS_MAX_FRAME_SIZE.
    peer_initial_window: u32,
    peer_max_frame_size: u32,
    /// What we may still send on the connection, and what the client may.
    send_window: i64,
    recv_window: i64,
    /// Received bytes to give back as connection window at the end of this turn.
    credit: u32,
    streams: Vec<Stream>,
    /// The highest stream the client opened.
    last_stream_id: u32,
    /// A header block waiting for its CONTINUATION frames.
    continuation: Option<Continuation>,
    handling: FuturesUnordered<Handling<'c>>,
    /// Blocks of answered streams, for the next streams' HCM futures.
    spare_slots: Vec<HandlerSlot<'c>>,
    /// Header maps of answers sent, cleared, for requests to come.
    header_maps: Vec<HeaderMap>,
    signal: Arc<ConnSignal>,
    /// A body stopped on the send buffer's limit (not on its data or window).
    buffer_full: bool,
    /// Reading stopped on the send buffer's limit.
    read_paused: bool,
    /// The next header block opens with an HPACK table size update (to 0), once ever.
    table_size_update: bool,
    table_size_zeroed: bool,
    /// Stream errors we sent: a client provoking them by the thousand is cut off (h2's
    /// `max_local_error_reset_streams`, after CVE-2025-8671).
    local_resets: usize,
    empty_data_frames: u32,
    keep_alive: KeepAlive,
    window_stalls: WindowStalls,
    drained: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// We sent a GOAWAY (the listener drains): no new streams, close when the last ends.
    going_away: bool,
    /// The client sent a GOAWAY: likewise.
    peer_going_away: bool,
    at_turn_end: bool,
}

/// One open stream.
struct Stream {
    id: u32,
    /// What we may still send on the stream, and what the client may.
    send_window: i64,
    recv_window: i64,
    /// The request body still being received, while the HCM holds it.
    recv: Option<Arc<RecvShared>>,
    /// `content-length`, and the DATA bytes received against it.
    expected_length: Option<u64>,
    received: u64,
    /// Cancels the HCM's work, until it answered.
    abort: Option<AbortHandle>,
    /// The response body being sent, with a chunk waiting for window.
    body: Option<Body>,
    waiting: Option<(Bytes, bool)>,
    remote_closed: bool,
    local_closed: bool,
}

struct Continuation {
    stream: u32,
    end_stream: bool,
    block: BytesMut,
    frames: u32,
}

impl<'c, IO> Server<'c, IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    fn new(conn: &'c Connection, io: IO, stream_idle_timeout: Option<Duration>) -> Self {
        let mut write_buf = BytesMut::with_capacity(16 * 1024);
        frame::put_settings(
            &mut write_buf,
            &[
                (
                    setting::MAX_CONCURRENT_STREAMS,
                    hardening::H2_MAX_CONCURRENT_STREAMS,
                ),
                (setting::INITIAL_WINDOW_SIZE, STREAM_WINDOW),
                (setting::MAX_FRAME_SIZE, MAX_FRAME_SIZE),
                (setting::MAX_HEADER_LIST_SIZE, conn.max_header_list_size),
            ],
        );
        frame::put_window_update(&mut write_buf, 0, CONNECTION_WINDOW - frame::DEFAULT_WINDOW);
        Server {
            conn,
            io,
            read_buf: BytesMut::with_capacity(16 * 1024),
            write_buf,
            decoder: hpack::Decoder::new(HEADER_TABLE_SIZE),
            preface_seen: false,
            settings_seen: false,
            peer_initial_window: frame::DEFAULT_WINDOW,
            peer_max_frame_size: frame::DEFAULT_MAX_FRAME_SIZE,
            send_window: i64::from(frame::DEFAULT_WINDOW),
            recv_window: i64::from(CONNECTION_WINDOW),
            credit: 0,
            streams: Vec::new(),
            last_stream_id: 0,
            continuation: None,
            handling: FuturesUnordered::new(),
            spare_slots: Vec::new(),
            header_maps: Vec::new(),
            signal: Arc::default(),
            buffer_full: false,
            read_paused: false,
            table_size_update: false,
            table_size_zeroed: false,
            local_resets: 0,
            empty_data_frames: 0,
            keep_alive: KeepAlive::new(),
            window_stalls: WindowStalls::new(stream_idle_timeout),
            drained: Box::pin(conn.drained()),
            going_away: false,
            peer_going_away: false,
            at_turn_end: false,
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnError>> {
        // Streams first: what they answer, the connection writes below.
        while let Poll::Ready(Some(done)) = self.handling.poll_next_unpin(cx) {
            if let Ok((id, response, slot)) = done {
                self.start_response(id, response);
                if self.spare_slots.len() < MAX_SPARE_HANDLER_SLOTS {
                    self.spare_slots.push(slot);
                }
            }
        }
        // The connection itself (reading frames, writing what the streams answered) waits for
        // the end of the worker's turn, so that the answers of all connections go out
        // together (see `turn_end`).
        if !self.at_turn_end {
            self.at_turn_end = true;
            wake_at_turn_end(cx, Cpu::Keep);
            return Poll::Pending;
        }
        self.at_turn_end = false;
        match self.poll_connection(cx) {
            Ok(poll) => poll.map(Ok),
            Err(error) => {
                // Best effort: the GOAWAY that says why goes out if the socket takes it now.
                let _ = self.poll_flush(cx);
                Poll::Ready(Err(error))
            }
        }
    }

    fn poll_connection(&mut self, cx: &mut Context<'_>) -> Result<Poll<()>, ConnError> {
        self.signal.register(cx.waker());
        if !self.going_away && self.drained.as_mut().poll(cx).is_ready() {
            self.going_away = true;
            frame::put_goaway(&mut self.write_buf, self.last_stream_id, Reason::NO_ERROR);
        }
        if self.keep_alive.poll_timed_out(cx, &mut self.write_buf) {
            return Err(KeepAliveTimedOut.into());
        }
        if self.keep_alive.idle() && !self.spare_slots.is_empty() {
            // Nothing read for the keep-alive interval: the blocks are not about to be used.
            self.spare_slots = Vec::new();
        }
        let streams_before = self.last_stream_id;
        let closed = self.poll_read(cx)?;
        if closed {
            // The client went away: streams still in flight lost their client with it.
            return Ok(Poll::Ready(()));
        }
        if self.signal.take() {
            self.collect_credits();
        }
        if self.credit > 0 {
            frame::put_window_update(&mut self.write_buf, 0, self.credit);
            self.recv_window += i64::from(self.credit);
            self.credit = 0;
        }
        loop {
            self.poll_bodies(cx);
            let flushed = self.poll_flush(cx)?;
            // Bodies stopped at the send buffer's limit go on once it drained.
            if !(flushed && self.buffer_full) {
                break;
            }
        }
        self.reset_window_stalled(cx)?;
        // Reading stopped while the send buffer was full (the client was not reading what
        // it asked for): once it drained, read on.
        if self.read_paused && self.write_buf.len() < MAX_SEND_BUFFER {
            cx.waker().wake_by_ref();
        }
        if (self.going_away || self.peer_going_away)
            && self.streams.is_empty()
            && self.write_buf.is_empty()
        {
            return Ok(Poll::Ready(()));
        }
        // New streams start on this task's next turn, once the other connections ready now
        // have read theirs (as hyper's spawned stream tasks did): upstream requests then go
        // out together, and an upstream woken by the first finds the rest waiting.
        if self.last_stream_id != streams_before {
            cx.waker().wake_by_ref();
        }
        Ok(Poll::Pending)
    }

    /// Reads and handles frames until the socket has nothing more (or this turn's budget is
    /// spent). True when the client closed the connection.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Result<bool, ConnError> {
        let mut budget = READ_BUDGET;
        loop {
            self.handle_frames()?;
            // A client that sends faster than it reads what it provokes (refusals, resets,
            // PING acknowledgements) is read no further until it catches up, as h2 waits for
            // its write buffer before reading.
            self.read_paused = self.write_buf.len() >= MAX_SEND_BUFFER;
            if self.read_paused {
                return Ok(false);
            }
            if budget == 0 {
                cx.waker().wake_by_ref();
                return Ok(false);
            }
            if self.read_buf.capacity() - self.read_buf.len() < 4096 {
                self.read_buf.reserve(16 * 1024);
            }
            let n =
                match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read_buf)
                {
                    Poll::Ready(Ok(n)) => n,
                    Poll::Ready(Err(error)) => return Err(error.into()),
                    Poll::Pending => return Ok(false),
                };
            if n == 0 {
                return Ok(true);
            }
            budget = budget.saturating_sub(n);
            self.keep_alive.activity = true;
        }
    }

    /// Handles every complete frame in the read buffer.
    fn handle_frames(&mut self) -> Result<(), ConnError> {
        if !self.preface_seen {
            if self.read_buf.len() < frame::PREFACE.len() {
                return Ok(());
            }
            if &self.read_buf[..frame::PREFACE.len()] != frame::PREFACE {
                return Err(protocol_error(Reason::PROTOCOL_ERROR, "bad preface"));
            }
            self.read_buf.advance(frame::PREFACE.len());
            self.preface_seen = true;
        }
        // Frames are handled where they lie in the read buffer, which the handlers never touch:
        // only a large DATA payload is split off (and then shared, not copied), so the buffer's
        // allocation is reused from read to read instead of pinned by each frame.
        let mut buf = std::mem::take(&mut self.read_buf);
        let handled = self.handle_frames_in(&mut buf);
        self.read_buf = buf;
        handled
    }

    fn handle_frames_in(&mut self, buf: &mut BytesMut) -> Result<(), ConnError> {
        while buf.len() >= frame::HEAD_LEN {
            let head = Head::parse(buf);
            if head.length > MAX_FRAME_SIZE {
                return Err(self.conn_error(
                    Reason::FRAME_SIZE_ERROR,
                    "frame over SETTINGS_MAX_FRAME_SIZE",
                ));
            }
            let total = frame::HEAD_LEN + head.length as usize;
            if buf.len() < total {
                buf.reserve(total - buf.len());
                break;
            }
            if !self.settings_seen && head.kind != Kind::Settings {
                return Err(self.conn_error(Reason::PROTOCOL_ERROR, "first frame not SETTINGS"));
            }
            self.check_continuation(&head)?;
            if head.kind == Kind::Data {
                let payload = if head.length >= SHARED_DATA_MIN {
                    let mut frame = buf.split_to(total);
                    frame.split_off(frame::HEAD_LEN).freeze()
                } else {
                    let payload = Bytes::copy_from_slice(&buf[frame::HEAD_LEN..total]);
                    buf.advance(total);
                    payload
                };
                self.on_data(head, payload)?;
            } else {
                self.handle_frame(head, &buf[frame::HEAD_LEN..total])?;
                buf.advance(total);
            }
        }
        Ok(())
    }

    /// Writes out the send buffer; true when it is empty.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Result<bool, ConnError> {
        while !self.write_buf.is_empty() {
            match Pin::new(&mut self.io).poll_write(cx, &self.write_buf) {
                Poll::Ready(Ok(0)) => {
                    return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into())
                }
                Poll::Ready(Ok(n)) => self.write_buf.advance(n),
                Poll::Ready(Err(error)) => return Err(error.into()),
                Poll::Pending => return Ok(false),
            }
        }
        // Keep the buffer's allocation: `split_to` left it at the end of its capacity.
        self.write_buf.clear();
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Ready(Err(error)) => Err(error.into()),
            _ => Ok(true),
        }
    }

    /// Sends RST_STREAM for a stream error and closes the stream; too many of them and the
    /// client is cut off.
    fn reset_stream(&mut self, id: u32, reason: Reason) -> Result<(), ConnError> {
        frame::put_rst_stream(&mut self.write_buf, id, reason);
        if let Some(at) = self.find(id) {
            let stream = self.streams.swap_remove(at);
            self.close(stream, reason);
        }
        self.local_resets += 1;
        self.check_local_resets()
    }

    /// Resets the streams whose answers have waited for window for the stream idle timeout
    /// (see [`WindowStalls`]), counted in `downstream_rq_idle_timeout`.
    fn reset_window_stalled(&mut self, cx: &mut Context<'_>) -> Result<(), ConnError> {
        let streams = &self.streams;
        let due = self.window_stalls.poll_due(cx, |id| {
            streams.iter().any(|s| s.id == id && s.waiting.is_some())
        });
        for id in due {
            tracing::debug!(
                stream = id,
                "resetting a stream the client gave no window for"
            );
            self.conn.hcm.stats().downstream_rq_idle_timeout.inc();
            self.reset_stream(id, Reason::CANCEL)?;
        }
        Ok(())
    }

    fn check_local_resets(&mut self) -> Result<(), ConnError> {
        if self.local_resets > hardening::H2_MAX_LOCAL_ERROR_RESET_STREAMS {
            return Err(self.conn_error(Reason::ENHANCE_YOUR_CALM, "too many stream errors"));
        }
        Ok(())
    }

    /// Ends a stream that was removed from the table: its HCM work is cancelled, its
    /// request body reader learns of the reset, its response body is dropped.
    fn close(&mut self, stream: Stream, reason: Reason) {
        if let Some(abort) = stream.abort {
            abort.abort();
        }
        if let Some(recv) = stream.recv {
            recv.reset(reason);
            // What the client sent for it and nobody will take back otherwise.
            self.credit = self.credit.saturating_add(recv.detach());
        }
    }

    /// Removes the stream at `at` once both sides are done; true if it was removed.
    fn finish_if_closed(&mut self, at: usize) -> bool {
        let stream = &self.streams[at];
        if !(stream.remote_closed && stream.local_closed) {
            return false;
        }
        let stream = self.streams.swap_remove(at);
        self.close(stream, Reason::NO_ERROR);
        true
    }

    fn find(&self, id: u32) -> Option<usize> {
        self.streams.iter().position(|s| s.id == id)
    }

    /// A connection error: GOAWAY with `reason`, and the error that ends the connection.
    fn conn_error(&mut self, reason: Reason, what: &'static str) -> ConnError {
        frame::put_goaway(&mut self.write_buf, self.last_stream_id, reason);
        protocol_error(reason, what)
    }
}

impl<IO> Drop for Server<'_, IO> {
    fn drop(&mut self) {
        // Bodies still being read elsewhere (an upstream's task) must not wait for data that
        // will never come.
        for stream in &self.streams {
            if let Some(recv) = &stream.recv {
                recv.reset(Reason::CANCEL);
            }
        }
    }
}

fn protocol_error(reason: Reason, what: &'static str) -> ConnError {
    ProtocolError { reason, what }.into()
}
