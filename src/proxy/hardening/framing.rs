//! Request framing checks hyper cannot make: it drops a `Content-Length` that comes with
//! `Transfer-Encoding` and merges duplicate `Content-Length`s before the proxy sees the
//! request, where Envoy answers 400 and closes — the ambiguity request smuggling lives on. This
//! wrapper follows the HTTP/1 byte stream as it is read (each request head, then its body by
//! length or by chunks), and on such a head answers `400 Bad Request` itself and ends the
//! connection, so hyper never parses it. An HTTP/2 connection (its preface), an upgrade or
//! CONNECT, or anything it cannot follow turns it off: hyper's own parser stays the judge.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const REJECT: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nBad Request";

/// Heads longer than this are hyper's to refuse (431); the wrapper stops following.
const MAX_HEAD: usize = 128 * 1024;

#[derive(Debug, Clone, PartialEq)]
enum State {
    /// Nothing read yet: HTTP/2 or HTTP/1?
    Start,
    /// Inside a request head (the bytes so far).
    Head(Vec<u8>),
    /// A body of known length: bytes left.
    Body(u64),
    /// A chunked body: the size line so far.
    ChunkSize(Vec<u8>),
    /// Chunk data left, then its CRLF (2 bytes).
    ChunkData(u64),
    /// Trailers after the last chunk: the current line so far; an empty line ends them.
    Trailers(Vec<u8>),
    /// Not following (HTTP/2, upgrade, something unparsable).
    Off,
    /// A smuggling-shaped head: answering 400 (bytes of the answer written so far).
    Rejecting(usize),
    Done,
}

/// What a complete request head says about its body.
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Both Content-Length and Transfer-Encoding, or Content-Length twice.
    Ambiguous,
    /// An upgrade or CONNECT: the rest is not HTTP.
    Tunnel,
    /// Something hyper will judge (no valid length…).
    Unknown,
}

fn framing(head: &[u8]) -> Framing {
    let mut lines = head.split(|b| *b == b'\n');
    let request_line = lines.next().unwrap_or(b"");
    if request_line.starts_with(b"CONNECT ") {
        return Framing::Tunnel;
    }
    let (mut lengths, mut te, mut chunked, mut upgrade) = (Vec::new(), false, false, false);
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (line[..colon].trim_ascii(), line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            lengths.push(value);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te = true;
            chunked |= value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade = true;
        }
    }
    if (te && !lengths.is_empty()) || lengths.len() > 1 {
        return Framing::Ambiguous;
    }
    if upgrade {
        return Framing::Tunnel;
    }
    if te {
        return if chunked {
            Framing::Chunked
        } else {
            Framing::Unknown
        };
    }
    match lengths.first() {
        None => Framing::None,
        Some(v) if !v.is_empty() && v.iter().all(u8::is_ascii_digit) => {
            match std::str::from_utf8(v)
                .ok()
                .and_then(|t| t.parse::<u64>().ok())
            {
                Some(n) => Framing::Length(n),
                None => Framing::Unknown,
            }
        }
        Some(_) => Framing::Unknown,
    }
}

/// Where a head ends (`\r\n\r\n`, or a bare `\n\n`), as an index just past it, looking
/// only from `from` (a head that arrives a byte at a time is scanned once, not once per byte).
fn head_end(head: &[u8], from: usize) -> Option<usize> {
    (from.saturating_sub(3)..head.len()).find_map(|i| {
        if head[i..].starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if head[i..].starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}

pub struct Framed<IO> {
    inner: IO,
    state: State,
}

impl<IO> Framed<IO> {
    pub fn new(inner: IO) -> Self {
        Framed {
            inner,
            state: State::Start,
        }
    }

    /// Follows `data`; returns how many of its bytes may go to hyper (all, unless a head
    /// must be refused: then the bytes before that head).
    fn follow(&mut self, data: &[u8]) -> usize {
        let mut i = 0;
        while i < data.len() {
            match &mut self.state {
                State::Start => {
                    self.state = if data.starts_with(b"PRI ") {
                        State::Off
                    } else {
                        State::Head(Vec::new())
                    };
                }
                State::Head(head) => {
                    let start = head.len();
                    // The common case: a whole head in this read, judged in place (no copy).
                    let whole = if start == 0 {
                        head_end(&data[i..], 0).map(|end| (end, framing(&data[i..i + end])))
                    } else {
                        None
                    };
                    let (consumed, judged) = match whole {
                        Some(found) => found,
                        None => {
                            head.extend_from_slice(&data[i..]);
                            match head_end(head, start) {
                                None => {
                                    if head.len() > MAX_HEAD {
                                        self.state = State::Off;
                                    }
                                    i = data.len();
                                    continue;
                                }
                                Some(end) => (end - start, framing(&std::mem::take(head)[..end])),
                            }
                        }
                    };
                    self.state = match judged {
                        Framing::None | Framing::Length(0) => State::Head(Vec::new()),
                        Framing::Length(n) => State::Body(n),
                        Framing::Chunked => State::ChunkSize(Vec::new()),
                        Framing::Tunnel | Framing::Unknown => State::Off,
                        Framing::Ambiguous => {
                            self.state = State::Rejecting(0);
                            // Hide the whole head from hyper; the bytes before it (earlier
                            // requests in this read) still go. A head begun in an earlier
                            // read hides all of this one.
                            return if start == 0 { i } else { 0 };
                        }
                    };
                    i += consumed;
                }
                State::Body(left) => {
                    let take = (*left).min((data.len() - i) as u64);
                    *left -= take;
                    i += take as usize;
                    if *left == 0 {
                        self.state = State::Head(Vec::new());
                    }
                }
                State::ChunkSize(line) => {
                    let b = data[i];
                    i += 1;
                    if b != b'\n' {
                        line.push(b);
                        if line.len() > 1024 {
                            self.state = State::Off;
                        }
                        continue;
                    }
                    let text = String::from_utf8_lossy(line);
                    let size = text
                        .trim_end_matches('\r')
                        .split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    self.state = match u64::from_str_radix(&size, 16) {
                        Ok(0) => State::Trailers(Vec::new()),
                        Ok(n) => match n.checked_add(2) {
                            Some(total) => State::ChunkData(total),
                            None => State::Off,
                        },
                        Err(_) => State::Off,
                    };
                }
                State::ChunkData(left) => {
                    let take = (*left).min((data.len() - i) as u64);
                    *left -= take;
                    i += take as usize;
                    if *left == 0 {
                        self.state = State::ChunkSize(Vec::new());
                    }
                }
                State::Trailers(line) => {
                    let b = data[i];
                    i += 1;
                    if b != b'\n' {
                        line.push(b);
                        if line.len() > MAX_HEAD {
                            self.state = State::Off;
                        }
                        continue;
                    }
                    let empty = line.iter().all(|c| *c == b'\r');
                    self.state = if empty {
                        State::Head(Vec::new())
                    } else {
                        State::Trailers(Vec::new())
                    };
                }
                State::Off | State::Rejecting(_) | State::Done => return data.len(),
            }
        }
        data.len()
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for Framed<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match this.state {
                State::Done => return Poll::Ready(Ok(())),
                State::Rejecting(written) => {
                    match Pin::new(&mut this.inner).poll_write(cx, &REJECT[written..]) {
                        Poll::Ready(Ok(n)) if n > 0 && written + n < REJECT.len() => {
                            this.state = State::Rejecting(written + n);
                        }
                        Poll::Ready(Ok(_)) | Poll::Ready(Err(_)) => {
                            let _ = Pin::new(&mut this.inner).poll_flush(cx);
                            this.state = State::Done;
                            tracing::debug!("refused a request with an ambiguous length (Content-Length with Transfer-Encoding, or twice)");
                            // End of stream for hyper: the connection closes.
                            return Poll::Ready(Ok(()));
                        }
                        Poll::Pending => return Poll::Pending,
                    }
                }
                State::Off => return Pin::new(&mut this.inner).poll_read(cx, buf),
                _ => {
                    let before = buf.filled().len();
                    match Pin::new(&mut this.inner).poll_read(cx, buf) {
                        Poll::Ready(Ok(())) => {
                            let fresh = buf.filled().len() - before;
                            let keep = this.follow(&buf.filled()[before..]);
                            if keep < fresh {
                                buf.set_filled(before + keep);
                                if keep == 0 {
                                    // Nothing for hyper in this read: answer the 400 now.
                                    continue;
                                }
                            }
                            return Poll::Ready(Ok(()));
                        }
                        other => return other,
                    }
                }
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Framed<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follow(chunks: &[&[u8]]) -> (Vec<usize>, State) {
        let mut f = Framed::new(());
        let kept = chunks.iter().map(|c| f.follow(c)).collect();
        (kept, f.state)
    }

    #[test]
    fn plain_bodies_and_pipelined_requests_pass() {
        let chunks: [&[u8]; 3] = [
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel",
            b"loGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST /3 HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ];
        let (kept, state) = follow(&chunks);
        assert_eq!(kept, chunks.map(<[u8]>::len), "every byte goes to hyper");
        assert_eq!(state, State::Head(Vec::new()));
    }

    #[test]
    fn an_ambiguous_length_is_hidden_from_hyper_after_what_came_before() {
        let first = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".as_slice();
        let smuggler =
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        let data = [first, smuggler.as_slice()].concat();
        let (kept, state) = follow(&[&data]);
        assert_eq!(kept, [first.len()]);
        assert_eq!(state, State::Rejecting(0));
        let (_, state) =
            follow(&[b"POST / HTTP/1.1\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\na"]);
        assert_eq!(state, State::Rejecting(0));
    }

    #[test]
    fn a_head_trickled_a_byte_at_a_time_is_still_judged() {
        let head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n";
        let bytes: Vec<&[u8]> = head.chunks(1).collect();
        let (kept, state) = follow(&bytes);
        assert_eq!(state, State::Rejecting(0));
        assert_eq!(
            kept.last(),
            Some(&0),
            "the byte that completes it is withheld"
        );
    }

    #[test]
    fn http2_and_upgrades_turn_it_off() {
        assert_eq!(follow(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]).1, State::Off);
        let (_, state) = follow(&[
            b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nxx",
        ]);
        assert_eq!(state, State::Off);
    }
}
