//! What the client sends: each frame type's rules (RFC 9113 §6), request heads and bodies
//! handed to the HCM, and the flow-control window given back as bodies are read.

use bytes::{Bytes, BytesMut};
use futures_util::future::{AbortHandle, Abortable};
use h2::Reason;
use http::HeaderMap;
use tokio::io::{AsyncRead, AsyncWrite};

use super::handler_slot;
use super::recv_body::{RecvBody, RecvShared};
use super::request_head::{self, Decoded};
use super::ConnError;
use super::{
    Answer, Continuation, Server, Stream, HEADER_TABLE_SIZE, MAX_EMPTY_DATA_FRAMES, MAX_FRAME_SIZE,
    MAX_SEND_BUFFER, PING_PAYLOAD, STREAM_WINDOW,
};
use crate::proxy::body;
use crate::proxy::hardening;
use crate::proxy::hardening::watchdog::StreamGuard;
use crate::proxy::http2_wire::frame::{self, flags, setting, Head, Kind};
use crate::proxy::http2_wire::hpack;

impl<'c, IO> Server<'c, IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    /// A header block waiting for CONTINUATION frames admits nothing else (RFC 9113 §6.10).
    pub(super) fn check_continuation(&mut self, head: &Head) -> Result<(), ConnError> {
        if let Some(partial) = &self.continuation {
            if head.kind != Kind::Continuation || head.stream != partial.stream {
                return Err(self.conn_error(Reason::PROTOCOL_ERROR, "header block interrupted"));
            }
        }
        Ok(())
    }

    /// Handles a frame other than DATA, which goes to `on_data` with its payload as `Bytes`.
    pub(super) fn handle_frame(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        match head.kind {
            Kind::Data => {
                debug_assert!(false, "DATA is handled by on_data");
                Ok(())
            }
            Kind::Headers => self.on_headers(head, payload),
            Kind::Continuation => self.on_continuation(head, payload),
            Kind::Priority => {
                if head.stream == 0 {
                    return Err(self.conn_error(Reason::PROTOCOL_ERROR, "PRIORITY on stream 0"));
                }
                if payload.len() != 5 {
                    self.reset_stream(head.stream, Reason::FRAME_SIZE_ERROR)?;
                }
                Ok(())
            }
            Kind::RstStream => self.on_rst_stream(head, payload),
            Kind::Settings => self.on_settings(head, payload),
            Kind::PushPromise => {
                Err(self.conn_error(Reason::PROTOCOL_ERROR, "PUSH_PROMISE from a client"))
            }
            Kind::Ping => self.on_ping(head, payload),
            Kind::GoAway => {
                if head.stream != 0 {
                    return Err(self.conn_error(Reason::PROTOCOL_ERROR, "GOAWAY on a stream"));
                }
                if payload.len() < 8 {
                    return Err(self.conn_error(Reason::FRAME_SIZE_ERROR, "GOAWAY under 8 octets"));
                }
                self.peer_going_away = true;
                Ok(())
            }
            Kind::WindowUpdate => self.on_window_update(head, payload),
            Kind::Unknown(_) => Ok(()),
        }
    }

    fn on_settings(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        if head.stream != 0 {
            return Err(self.conn_error(Reason::PROTOCOL_ERROR, "SETTINGS on a stream"));
        }
        if head.has(flags::ACK) {
            if !payload.is_empty() {
                return Err(
                    self.conn_error(Reason::FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
                );
            }
            return Ok(());
        }
        let params = match frame::settings(payload) {
            Ok(params) => params,
            Err(reason) => return Err(self.conn_error(reason, "invalid SETTINGS")),
        };
        self.settings_seen = true;
        for (id, value) in params {
            match id {
                setting::INITIAL_WINDOW_SIZE => {
                    let delta = i64::from(value) - i64::from(self.peer_initial_window);
                    self.peer_initial_window = value;
                    let mut overflow = false;
                    for stream in &mut self.streams {
                        stream.send_window += delta;
                        overflow |= stream.send_window > i64::from(frame::MAX_WINDOW);
                    }
                    if overflow {
                        return Err(self
                            .conn_error(Reason::FLOW_CONTROL_ERROR, "stream window over 2^31-1"));
                    }
                }
                setting::MAX_FRAME_SIZE => self.peer_max_frame_size = value,
                // Our encoder keeps no table, but a client that shrinks its decoder's table
                // expects the change acknowledged at the start of our next block
                // (RFC 7541 §4.2): one update to 0, after which no size can be too large.
                setting::HEADER_TABLE_SIZE if (value as usize) < HEADER_TABLE_SIZE => {
                    self.table_size_update |= !self.table_size_zeroed;
                }
                // The encoder keeps no table, the server pushes nothing, and response header
                // lists are the upstream's business: the rest needs nothing from us.
                _ => {}
            }
        }
        self.queue_control(frame::put_settings_ack)
    }

    fn on_ping(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        if head.stream != 0 {
            return Err(self.conn_error(Reason::PROTOCOL_ERROR, "PING on a stream"));
        }
        let Ok(data) = <[u8; 8]>::try_from(payload) else {
            return Err(self.conn_error(Reason::FRAME_SIZE_ERROR, "PING not 8 octets"));
        };
        if head.has(flags::ACK) {
            if data == PING_PAYLOAD {
                self.keep_alive.pong();
            }
            return Ok(());
        }
        self.queue_control(|buf| frame::put_ping(buf, true, data))
    }

    /// Queues a control frame the client asked for; a client asking faster than it reads the
    /// answers is flooding (Envoy's outbound control frame limit, CVE-2019-9512/9515).
    fn queue_control(&mut self, put: impl FnOnce(&mut BytesMut)) -> Result<(), ConnError> {
        if self.write_buf.len() > MAX_SEND_BUFFER {
            return Err(self.conn_error(Reason::ENHANCE_YOUR_CALM, "control frame flood"));
        }
        put(&mut self.write_buf);
        Ok(())
    }

    fn on_window_update(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        let Some(increment) = frame::window_increment(payload) else {
            return Err(self.conn_error(Reason::FRAME_SIZE_ERROR, "WINDOW_UPDATE not 4 octets"));
        };
        if head.stream == 0 {
            if increment == 0 {
                return Err(self.conn_error(Reason::PROTOCOL_ERROR, "WINDOW_UPDATE of 0"));
            }
            self.send_window += i64::from(increment);
            if self.send_window > i64::from(frame::MAX_WINDOW) {
                return Err(
                    self.conn_error(Reason::FLOW_CONTROL_ERROR, "connection window over 2^31-1")
                );
            }
            return Ok(());
        }
        let Some(at) = self.find(head.stream) else {
            if head.stream > self.last_stream_id {
                return Err(
                    self.conn_error(Reason::PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream")
                );
            }
            // A stream we closed: the client had not heard yet.
            return Ok(());
        };
        if increment == 0 {
            return self.reset_stream(head.stream, Reason::PROTOCOL_ERROR);
        }
        let stream = &mut self.streams[at];
        stream.send_window += i64::from(increment);
        if stream.send_window > i64::from(frame::MAX_WINDOW) {
            return self.reset_stream(head.stream, Reason::FLOW_CONTROL_ERROR);
        }
        Ok(())
    }

    fn on_rst_stream(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        if head.stream == 0 {
            return Err(self.conn_error(Reason::PROTOCOL_ERROR, "RST_STREAM on stream 0"));
        }
        let Some(reason) =
            frame::error_code(Kind::RstStream, payload).filter(|_| payload.len() == 4)
        else {
            return Err(self.conn_error(Reason::FRAME_SIZE_ERROR, "RST_STREAM not 4 octets"));
        };
        match self.find(head.stream) {
            Some(at) => {
                let stream = self.streams.swap_remove(at);
                self.close(stream, reason);
            }
            None if head.stream > self.last_stream_id => {
                return Err(self.conn_error(Reason::PROTOCOL_ERROR, "RST_STREAM on an idle stream"));
            }
            None => {}
        }
        Ok(())
    }

    pub(super) fn on_data(&mut self, head: Head, payload: Bytes) -> Result<(), ConnError> {
        if head.stream == 0 {
            return Err(self.conn_error(Reason::PROTOCOL_ERROR, "DATA on stream 0"));
        }
        let flow_len = payload.len() as u32;
        if i64::from(flow_len) > self.recv_window {
            return Err(self.conn_error(
                Reason::FLOW_CONTROL_ERROR,
                "DATA over the connection window",
            ));
        }
        self.recv_window -= i64::from(flow_len);
        let (start, end) = match frame::unpadded(&head, &payload) {
            Ok(range) => range,
            Err(reason) => return Err(self.conn_error(reason, "bad DATA padding")),
        };
        let data = payload.slice(start..end);
        // Padding is never read by anyone: its window comes back at once.
        let padding = flow_len - data.len() as u32;
        self.credit += padding;
        let end_stream = head.has(flags::END_STREAM);
        if data.is_empty() && !end_stream {
            self.empty_data_frames += 1;
            if self.empty_data_frames > MAX_EMPTY_DATA_FRAMES {
                return Err(self.conn_error(Reason::ENHANCE_YOUR_CALM, "empty DATA flood"));
            }
        }
        let Some(at) = self.find(head.stream) else {
            self.credit += data.len() as u32;
            if head.stream > self.last_stream_id {
                return Err(self.conn_error(Reason::PROTOCOL_ERROR, "DATA on an idle stream"));
            }
            // A stream we closed (reset, refused, or answered early): what the client sent
            // before it heard is ignored (RFC 9113 §5.1), its window given back.
            return Ok(());
        };
        let stream = &mut self.streams[at];
        if stream.remote_closed {
            self.credit += data.len() as u32;
            return self.reset_stream(head.stream, Reason::STREAM_CLOSED);
        }
        if i64::from(flow_len) > stream.recv_window {
            self.credit += data.len() as u32;
            return self.reset_stream(head.stream, Reason::FLOW_CONTROL_ERROR);
        }
        stream.recv_window -= i64::from(flow_len);
        if padding > 0 && !end_stream {
            // The client counted the padding against the stream too.
            stream.recv_window += i64::from(padding);
            frame::put_window_update(&mut self.write_buf, stream.id, padding);
        }
        stream.received += data.len() as u64;
        // A body longer or shorter than its content-length is malformed (RFC 9113 §8.1.1).
        let length_broken = stream.expected_length.is_some_and(|expected| {
            stream.received > expected || (end_stream && stream.received != expected)
        });
        if length_broken {
            self.credit += data.len() as u32;
            return self.reset_stream(head.stream, Reason::PROTOCOL_ERROR);
        }
        stream.remote_closed = end_stream;
        let len = data.len() as u32;
        // A small piece is copied out of the frame: queued as a slice, it would keep the whole
        // read buffer it came in alive, and a client could pin kilobytes per byte of window.
        // (Payloads under `SHARED_DATA_MIN` were copied out of the read buffer already.)
        let data = if data.len() < payload.len() / 2 {
            Bytes::copy_from_slice(&data)
        } else {
            data
        };
        let filed = match &stream.recv {
            Some(recv) => recv.push_data(data, end_stream),
            None => false,
        };
        if !filed {
            // Nobody will read it: its window, and what the body had left unread, come back
            // at once.
            if let Some(recv) = stream.recv.take() {
                self.credit = self.credit.saturating_add(recv.detach());
            }
            self.credit += len;
        }
        if end_stream {
            self.finish_if_closed(at);
        }
        Ok(())
    }

    fn on_headers(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        if head.stream == 0 {
            return Err(self.conn_error(Reason::PROTOCOL_ERROR, "HEADERS on stream 0"));
        }
        let (start, end) = match frame::headers_fragment(&head, payload) {
            Ok(range) => range,
            Err(reason) => return Err(self.conn_error(reason, "bad HEADERS padding or priority")),
        };
        let end_stream = head.has(flags::END_STREAM);
        if head.has(flags::END_HEADERS) {
            return self.on_header_block(head.stream, end_stream, &payload[start..end]);
        }
        self.continuation = Some(Continuation {
            stream: head.stream,
            end_stream,
            block: BytesMut::from(&payload[start..end]),
            frames: 1,
        });
        Ok(())
    }

    fn on_continuation(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        // A block may be as large as four header lists (what h2 tolerated before closing the
        // connection), in frames of at least a kilobyte on average: past either, a flood
        // (CVE-2024-27316 and kin) is cut off.
        let max_block = 4 * self.conn.max_header_list_size as usize + MAX_FRAME_SIZE as usize;
        let max_frames = (max_block / 1024) as u32 + 4;
        let Some(partial) = self.continuation.as_mut() else {
            return Err(self.conn_error(Reason::PROTOCOL_ERROR, "CONTINUATION without HEADERS"));
        };
        partial.block.extend_from_slice(payload);
        partial.frames += 1;
        if partial.block.len() > max_block || partial.frames > max_frames {
            return Err(self.conn_error(Reason::ENHANCE_YOUR_CALM, "too many CONTINUATION frames"));
        }
        if !head.has(flags::END_HEADERS) {
            return Ok(());
        }
        let Some(partial) = self.continuation.take() else {
            return Ok(());
        };
        self.on_header_block(partial.stream, partial.end_stream, &partial.block)
    }

    /// A complete header block: a request's head, or its trailers.
    fn on_header_block(
        &mut self,
        id: u32,
        end_stream: bool,
        block: &[u8],
    ) -> Result<(), ConnError> {
        let max_list = self.conn.max_header_list_size as usize;
        if let Some(at) = self.find(id) {
            let decoded = self.decode(block, max_list, true)?;
            let stream = &mut self.streams[at];
            if stream.remote_closed {
                return self.reset_stream(id, Reason::STREAM_CLOSED);
            }
            let Decoded::Trailers(trailers) = decoded else {
                return self.reset_stream(id, Reason::PROTOCOL_ERROR);
            };
            if !end_stream {
                return self.reset_stream(id, Reason::PROTOCOL_ERROR);
            }
            if stream
                .expected_length
                .is_some_and(|expected| expected != stream.received)
            {
                return self.reset_stream(id, Reason::PROTOCOL_ERROR);
            }
            stream.remote_closed = true;
            if let Some(recv) = &stream.recv {
                recv.push_trailers(trailers);
            }
            self.finish_if_closed(at);
            return Ok(());
        }
        let decoded = self.decode(block, max_list, false)?;
        if id <= self.last_stream_id {
            // Trailers for a stream we closed before the client heard: decoded (for the HPACK
            // table) and ignored (RFC 9113 §5.1).
            return Ok(());
        }
        if id.is_multiple_of(2) {
            return Err(self.conn_error(Reason::PROTOCOL_ERROR, "client stream with an even id"));
        }
        self.last_stream_id = id;
        if self.going_away || self.peer_going_away {
            frame::put_rst_stream(&mut self.write_buf, id, Reason::REFUSED_STREAM);
            return Ok(());
        }
        if self.streams.len() >= hardening::H2_MAX_CONCURRENT_STREAMS as usize {
            frame::put_rst_stream(&mut self.write_buf, id, Reason::REFUSED_STREAM);
            return Ok(());
        }
        let head = match decoded {
            Decoded::Request(head) => head,
            Decoded::TooLarge => {
                // As h2 did: a 431 the client can show, and nothing of the request read on.
                self.header_block(id, true, |dst| {
                    hpack::encode_response(
                        http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        &HeaderMap::new(),
                        dst,
                    )
                });
                if !end_stream {
                    frame::put_rst_stream(&mut self.write_buf, id, Reason::REFUSED_STREAM);
                }
                return Ok(());
            }
            Decoded::Malformed | Decoded::Trailers(_) => {
                self.local_resets += 1;
                frame::put_rst_stream(&mut self.write_buf, id, Reason::PROTOCOL_ERROR);
                return self.check_local_resets();
            }
        };
        if end_stream && head.content_length.is_some_and(|n| n != 0) {
            // A body announced and none sent: malformed (RFC 9113 §8.1.1), and a request
            // smuggling vector if passed on to an HTTP/1 upstream.
            self.local_resets += 1;
            frame::put_rst_stream(&mut self.write_buf, id, Reason::PROTOCOL_ERROR);
            return self.check_local_resets();
        }
        self.start_stream(id, end_stream, head);
        Ok(())
    }

    fn decode(
        &mut self,
        block: &[u8],
        max_list: usize,
        trailers: bool,
    ) -> Result<Decoded, ConnError> {
        // A request's headers go into the map of an earlier answer on this connection (see
        // `start_response`); trailers are rare and get a map of their own.
        let headers = match trailers {
            false => self.header_maps.pop().unwrap_or_default(),
            true => HeaderMap::new(),
        };
        match request_head::decode(&mut self.decoder, block, max_list, trailers, headers) {
            Ok(decoded) => Ok(decoded),
            Err(_) => Err(self.conn_error(Reason::COMPRESSION_ERROR, "undecodable header block")),
        }
    }

    /// Hands a new request to the HCM.
    fn start_stream(&mut self, id: u32, end_stream: bool, head: request_head::RequestHead) {
        let conn = self.conn;
        crate::proxy::listener::note_protocol(
            &conn.protocol,
            http::Version::HTTP_2,
            conn.hcm.stats(),
        );
        let expected_length = head.content_length;
        let (recv, body) = if end_stream {
            (None, body::empty())
        } else {
            let shared = RecvShared::new(self.signal.clone());
            let body = body::boxed(RecvBody::new(shared.clone(), expected_length));
            (Some(shared), body)
        };
        let request = head.into_request(body);
        // The HCM's future is made where it will run, unpolled: it is several kilobytes, and
        // wrapped in an async block before boxing it was copied twice over (memcpy was a
        // third of the h2c profile).
        let mut handling = self.spare_slots.pop().unwrap_or_else(|| {
            handler_slot::new(move |request| conn.hcm.handle(request, conn.info))
        });
        handling.as_mut().start(request);
        let answer = Answer {
            id,
            guard: Some(StreamGuard::new(conn.watch.clone())),
            handling: Some(handling),
        };
        let (abort, registration) = AbortHandle::new_pair();
        self.handling.push(Abortable::new(answer, registration));
        self.streams.push(Stream {
            id,
            send_window: i64::from(self.peer_initial_window),
            recv_window: i64::from(STREAM_WINDOW),
            recv,
            expected_length,
            received: 0,
            abort: Some(abort),
            body: None,
            waiting: None,
            remote_closed: end_stream,
            local_closed: false,
        });
    }

    /// Gives back the window request bodies have consumed, and forgets dropped ones.
    pub(super) fn collect_credits(&mut self) {
        for stream in &mut self.streams {
            let Some(recv) = &stream.recv else {
                continue;
            };
            match recv.take_consumed() {
                Some(0) => {}
                Some(bytes) => {
                    self.credit += bytes;
                    if !stream.remote_closed {
                        stream.recv_window += i64::from(bytes);
                        frame::put_window_update(&mut self.write_buf, stream.id, bytes);
                    }
                }
                None => {
                    if let Some(recv) = stream.recv.take() {
                        self.credit = self.credit.saturating_add(recv.detach());
                    }
                }
            }
        }
    }
}
