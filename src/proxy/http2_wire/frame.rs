//! HTTP/2 frames (RFC 9113 §4 and §6) as the proxy's server reads and writes them: the 9-octet
//! frame header, the frame types and flags, SETTINGS parameters, the payload rules of each type,
//! and writers that append whole frames to a connection's output buffer.
//!
//! Error codes are `h2::Reason`, the type the upstream side (the h2 crate) reports resets with,
//! so a reason can pass from one side to the other unchanged.

use bytes::{BufMut, BytesMut};
use h2::Reason;

/// What a client sends first on an HTTP/2 connection (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The frame header's length.
pub const HEAD_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE's initial value, and the least a peer may set.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;
/// The largest SETTINGS_MAX_FRAME_SIZE a peer may set.
pub const MAX_MAX_FRAME_SIZE: u32 = (1 << 24) - 1;
/// A flow-control window's initial size (RFC 9113 §6.9.2).
pub const DEFAULT_WINDOW: u32 = 65_535;
/// The largest flow-control window (2^31 - 1).
pub const MAX_WINDOW: u32 = (1 << 31) - 1;

/// Frame types (RFC 9113 §6). Unknown types are ignored by receivers (§4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Data,
    Headers,
    Priority,
    RstStream,
    Settings,
    PushPromise,
    Ping,
    GoAway,
    WindowUpdate,
    Continuation,
    Unknown(u8),
}

impl Kind {
    fn from_u8(b: u8) -> Kind {
        match b {
            0x0 => Kind::Data,
            0x1 => Kind::Headers,
            0x2 => Kind::Priority,
            0x3 => Kind::RstStream,
            0x4 => Kind::Settings,
            0x5 => Kind::PushPromise,
            0x6 => Kind::Ping,
            0x7 => Kind::GoAway,
            0x8 => Kind::WindowUpdate,
            0x9 => Kind::Continuation,
            other => Kind::Unknown(other),
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Kind::Data => 0x0,
            Kind::Headers => 0x1,
            Kind::Priority => 0x2,
            Kind::RstStream => 0x3,
            Kind::Settings => 0x4,
            Kind::PushPromise => 0x5,
            Kind::Ping => 0x6,
            Kind::GoAway => 0x7,
            Kind::WindowUpdate => 0x8,
            Kind::Continuation => 0x9,
            Kind::Unknown(other) => other,
        }
    }
}

/// Frame flags (RFC 9113 §6); which apply depends on the type.
pub mod flags {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// A frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// The payload's length.
    pub length: u32,
    pub kind: Kind,
    pub flags: u8,
    /// The stream identifier (the reserved high bit cleared, as §4.1 asks of receivers).
    pub stream: u32,
}

impl Head {
    /// Parses the first [`HEAD_LEN`] octets of `bytes`, which must hold at least that many.
    pub fn parse(bytes: &[u8]) -> Head {
        Head {
            length: u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]),
            kind: Kind::from_u8(bytes[3]),
            flags: bytes[4],
            stream: u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & MAX_WINDOW,
        }
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// SETTINGS parameters (RFC 9113 §6.5.2).
pub mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
    /// RFC 8441's extended CONNECT.
    pub const ENABLE_CONNECT_PROTOCOL: u16 = 0x8;
}

/// A SETTINGS payload's parameters, checked as §6.5.2 requires: a payload that is not a
/// multiple of 6 octets is FRAME_SIZE_ERROR; an ENABLE_PUSH other than 0 or 1, or a window
/// above 2^31 - 1, or a frame size outside its range, is a connection error. Unknown
/// parameters are skipped.
pub fn settings(payload: &[u8]) -> Result<Vec<(u16, u32)>, Reason> {
    if !payload.len().is_multiple_of(6) {
        return Err(Reason::FRAME_SIZE_ERROR);
    }
    let mut out = Vec::with_capacity(payload.len() / 6);
    for p in payload.chunks_exact(6) {
        let id = u16::from_be_bytes([p[0], p[1]]);
        let value = u32::from_be_bytes([p[2], p[3], p[4], p[5]]);
        match id {
            setting::ENABLE_PUSH if value > 1 => return Err(Reason::PROTOCOL_ERROR),
            setting::INITIAL_WINDOW_SIZE if value > MAX_WINDOW => {
                return Err(Reason::FLOW_CONTROL_ERROR)
            }
            setting::MAX_FRAME_SIZE
                if !(DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&value) =>
            {
                return Err(Reason::PROTOCOL_ERROR)
            }
            _ => out.push((id, value)),
        }
    }
    Ok(out)
}

/// A DATA or HEADERS payload without its padding (§6.1): PADDED's first octet is the pad length,
/// which must leave the payload something (else PROTOCOL_ERROR).
pub fn unpadded(head: &Head, payload: &[u8]) -> Result<(usize, usize), Reason> {
    if !head.has(flags::PADDED) {
        return Ok((0, payload.len()));
    }
    let Some((&pad, rest)) = payload.split_first() else {
        return Err(Reason::PROTOCOL_ERROR);
    };
    if usize::from(pad) > rest.len() {
        return Err(Reason::PROTOCOL_ERROR);
    }
    Ok((1, payload.len() - usize::from(pad)))
}

/// The header block fragment of a HEADERS payload: after padding and the PRIORITY fields.
/// Returns its range in `payload`.
pub fn headers_fragment(head: &Head, payload: &[u8]) -> Result<(usize, usize), Reason> {
    let (mut start, end) = unpadded(head, payload)?;
    if head.has(flags::PRIORITY) {
        start += 5;
        if start > end {
            return Err(Reason::FRAME_SIZE_ERROR);
        }
    }
    Ok((start, end))
}

/// A 4-octet error code payload (RST_STREAM), or the code of a GOAWAY (after its last stream
/// identifier). `None` when the payload is too short.
pub fn error_code(kind: Kind, payload: &[u8]) -> Option<Reason> {
    let at = if kind == Kind::GoAway { 4 } else { 0 };
    let b = payload.get(at..at + 4)?;
    Some(Reason::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
}

/// A WINDOW_UPDATE's increment (31 bits); `None` when the payload is not 4 octets.
pub fn window_increment(payload: &[u8]) -> Option<u32> {
    let b: [u8; 4] = payload.try_into().ok()?;
    Some(u32::from_be_bytes(b) & MAX_WINDOW)
}

/// Appends a frame header.
pub fn put_head(dst: &mut BytesMut, length: usize, kind: Kind, flags: u8, stream: u32) {
    debug_assert!(length <= MAX_MAX_FRAME_SIZE as usize);
    let len = (length as u32).to_be_bytes();
    dst.put_slice(&[len[1], len[2], len[3], kind.to_u8(), flags]);
    dst.put_u32(stream & MAX_WINDOW);
}

/// Appends a SETTINGS frame with `params`.
pub fn put_settings(dst: &mut BytesMut, params: &[(u16, u32)]) {
    put_head(dst, params.len() * 6, Kind::Settings, 0, 0);
    for &(id, value) in params {
        dst.put_u16(id);
        dst.put_u32(value);
    }
}

pub fn put_settings_ack(dst: &mut BytesMut) {
    put_head(dst, 0, Kind::Settings, flags::ACK, 0);
}

pub fn put_ping(dst: &mut BytesMut, ack: bool, payload: [u8; 8]) {
    put_head(dst, 8, Kind::Ping, if ack { flags::ACK } else { 0 }, 0);
    dst.put_slice(&payload);
}

pub fn put_window_update(dst: &mut BytesMut, stream: u32, increment: u32) {
    put_head(dst, 4, Kind::WindowUpdate, 0, stream);
    dst.put_u32(increment & MAX_WINDOW);
}

pub fn put_rst_stream(dst: &mut BytesMut, stream: u32, reason: Reason) {
    put_head(dst, 4, Kind::RstStream, 0, stream);
    dst.put_u32(reason.into());
}

pub fn put_goaway(dst: &mut BytesMut, last_stream: u32, reason: Reason) {
    put_head(dst, 8, Kind::GoAway, 0, 0);
    dst.put_u32(last_stream & MAX_WINDOW);
    dst.put_u32(reason.into());
}

/// Appends one DATA frame carrying all of `data` (the caller keeps it within the peer's
/// SETTINGS_MAX_FRAME_SIZE and the flow-control windows).
pub fn put_data(dst: &mut BytesMut, stream: u32, end_stream: bool, data: &[u8]) {
    let flags = if end_stream { flags::END_STREAM } else { 0 };
    put_head(dst, data.len(), Kind::Data, flags, stream);
    dst.put_slice(data);
}

/// Appends a header block as HEADERS, plus CONTINUATION frames when it is larger than
/// `max_frame_size`. `encode` writes the block; it is encoded straight into `dst` behind a
/// frame header patched afterwards, so the common block that fits one frame is never copied.
pub fn put_header_block(
    dst: &mut BytesMut,
    stream: u32,
    end_stream: bool,
    max_frame_size: u32,
    encode: impl FnOnce(&mut BytesMut),
) {
    let start = dst.len();
    put_head(dst, 0, Kind::Headers, 0, stream);
    encode(dst);
    let block_len = dst.len() - start - HEAD_LEN;
    let max = max_frame_size as usize;
    let end_flag = if end_stream { flags::END_STREAM } else { 0 };
    if block_len <= max {
        patch_head(&mut dst[start..], block_len, end_flag | flags::END_HEADERS);
        return;
    }
    // Rare: a block larger than a frame. Take it out and lay it out again in pieces.
    let block = dst.split_off(start + HEAD_LEN);
    patch_head(&mut dst[start..], max, end_flag);
    dst.put_slice(&block[..max]);
    let mut rest = &block[max..];
    while !rest.is_empty() {
        let n = rest.len().min(max);
        let last = n == rest.len();
        let flags = if last { flags::END_HEADERS } else { 0 };
        put_head(dst, n, Kind::Continuation, flags, stream);
        dst.put_slice(&rest[..n]);
        rest = &rest[n..];
    }
}

fn patch_head(head: &mut [u8], length: usize, flags: u8) {
    let len = (length as u32).to_be_bytes();
    head[..3].copy_from_slice(&len[1..]);
    head[4] = flags;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_round_trips_and_the_reserved_bit_is_ignored() {
        let mut b = BytesMut::new();
        put_head(&mut b, 0x01_02_03, Kind::Headers, flags::END_HEADERS, 7);
        assert_eq!(&b[..], &[1, 2, 3, 1, 4, 0, 0, 0, 7]);
        let head = Head::parse(&b);
        assert_eq!(
            head,
            Head {
                length: 0x01_02_03,
                kind: Kind::Headers,
                flags: flags::END_HEADERS,
                stream: 7
            }
        );
        b[5] |= 0x80;
        assert_eq!(Head::parse(&b).stream, 7);
        assert_eq!(
            Head::parse(&[0, 0, 0, 0xee, 0, 0, 0, 0, 0]).kind,
            Kind::Unknown(0xee)
        );
    }

    #[test]
    fn settings_are_checked_as_the_rfc_asks() {
        let mut b = BytesMut::new();
        put_settings(
            &mut b,
            &[(setting::INITIAL_WINDOW_SIZE, 1 << 20), (0xff, 1)],
        );
        assert_eq!(
            settings(&b[HEAD_LEN..]),
            Ok(vec![(setting::INITIAL_WINDOW_SIZE, 1 << 20), (0xff, 1)])
        );
        assert_eq!(settings(&[0; 5]), Err(Reason::FRAME_SIZE_ERROR));
        assert_eq!(settings(&[0, 2, 0, 0, 0, 2]), Err(Reason::PROTOCOL_ERROR));
        assert_eq!(
            settings(&[0, 4, 0x80, 0, 0, 0]),
            Err(Reason::FLOW_CONTROL_ERROR)
        );
        assert_eq!(
            settings(&[0, 5, 0, 0, 0x3f, 0xff]),
            Err(Reason::PROTOCOL_ERROR)
        );
        assert_eq!(settings(&[0, 5, 1, 0, 0, 0]), Err(Reason::PROTOCOL_ERROR));
    }

    #[test]
    fn padding_and_priority_are_stripped_and_checked() {
        let head = |flags| Head {
            length: 0,
            kind: Kind::Headers,
            flags,
            stream: 1,
        };
        let payload = [2, 9, 9, 9, 0, 0];
        assert_eq!(unpadded(&head(flags::PADDED), &payload), Ok((1, 4)));
        assert_eq!(unpadded(&head(0), &payload), Ok((0, 6)));
        assert_eq!(
            unpadded(&head(flags::PADDED), &[6, 0, 0, 0, 0, 0]),
            Err(Reason::PROTOCOL_ERROR)
        );
        assert_eq!(
            unpadded(&head(flags::PADDED), &[]),
            Err(Reason::PROTOCOL_ERROR)
        );
        let with_priority = [0, 0, 0, 1, 16, 0x82];
        assert_eq!(
            headers_fragment(&head(flags::PRIORITY), &with_priority),
            Ok((5, 6))
        );
        assert_eq!(
            headers_fragment(&head(flags::PRIORITY), &[0, 0, 0]),
            Err(Reason::FRAME_SIZE_ERROR)
        );
    }

    #[test]
    fn a_block_larger_than_a_frame_goes_out_as_continuations() {
        let mut b = BytesMut::new();
        put_header_block(&mut b, 3, true, 16_384, |dst| dst.put_slice(&[0x88]));
        assert_eq!(&b[..], &[0, 0, 1, 1, 0x5, 0, 0, 0, 3, 0x88]);

        let block: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        let mut b = BytesMut::new();
        put_header_block(&mut b, 5, false, 16_384, |dst| dst.put_slice(&block));
        let mut frames = Vec::new();
        let mut at = 0;
        while at < b.len() {
            let head = Head::parse(&b[at..]);
            frames.push((head.kind, head.flags, head.length));
            at += HEAD_LEN + head.length as usize;
        }
        assert_eq!(
            frames,
            [
                (Kind::Headers, 0, 16_384),
                (Kind::Continuation, 0, 16_384),
                (Kind::Continuation, flags::END_HEADERS, 40_000 - 2 * 16_384),
            ]
        );
        let joined: Vec<u8> = [9..9 + 16_384, 16_402..16_402 + 16_384, 32_795..b.len()]
            .into_iter()
            .flat_map(|r| b[r].to_vec())
            .collect();
        assert_eq!(joined, block);
    }

    #[test]
    fn control_frames_have_their_fixed_layouts() {
        let mut b = BytesMut::new();
        put_goaway(&mut b, 9, Reason::ENHANCE_YOUR_CALM);
        assert_eq!(
            &b[..],
            &[0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0xb]
        );
        assert_eq!(
            error_code(Kind::GoAway, &b[HEAD_LEN..]),
            Some(Reason::ENHANCE_YOUR_CALM)
        );
        let mut b = BytesMut::new();
        put_window_update(&mut b, 1, 1 << 20);
        assert_eq!(window_increment(&b[HEAD_LEN..]), Some(1 << 20));
        assert_eq!(window_increment(&[0; 3]), None);
    }
}
