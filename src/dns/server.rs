//! A tiny authoritative DNS server answering meshsim's service aliases.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;

use super::Records;

/// Largest UDP response we send (RFC 1035 §4.2.1). EDNS buffer sizes offered
/// by clients are deliberately ignored: 512 bytes bounds the amplification a
/// spoofed query can cause, and anything larger goes over TCP, which needs a
/// handshake and so cannot be aimed at a third party.
pub(super) const MAX_UDP_RESPONSE: usize = 512;
/// Largest DNS message a TCP frame can carry (two-byte length prefix).
const MAX_TCP_MESSAGE: usize = u16::MAX as usize;
/// Receive buffer for UDP queries; a legitimate query is far smaller, and a
/// datagram cut short by it simply fails to decode and is dropped.
const UDP_RECV_BUFFER: usize = 4096;
/// Concurrent TCP clients; more are refused so a misbehaving client cannot
/// exhaust file descriptors of the simulator.
const MAX_TCP_CONNECTIONS: usize = 64;
/// A TCP client idle this long is disconnected (RFC 7766 suggests seconds).
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline for reading the rest of a message or writing a response over TCP.
const TCP_IO_TIMEOUT: Duration = Duration::from_secs(5);
/// When binding port 0, how often to retry if the UDP port picked by the OS is
/// taken for TCP.
const BIND_ATTEMPTS: usize = 16;

/// The embedded authoritative server.
///
/// It serves exactly the names in its [`Records`]: A and AAAA queries get one
/// record per address, with the authoritative (AA) bit set and the TTL given
/// at [`bind`](Self::bind). It answers:
///
/// * known name, A/AAAA/ANY → NOERROR with the matching records (possibly none:
///   a name with no address of the asked type is NODATA, NOERROR + empty answer);
/// * known name, any other type (MX, TXT, SRV, ...) → NOERROR with an empty
///   answer. The name *exists*, it just has no such record, and that is the
///   answer resolvers expect: NOTIMP would make glibc or hickory treat the
///   server as broken and fail over or give up on the whole lookup;
/// * unknown name → NXDOMAIN;
/// * opcodes other than QUERY → NOTIMP (that is what NOTIMP is for);
/// * a class other than IN → REFUSED (we are authoritative for nothing else);
/// * not exactly one question → FORMERR.
///
/// Negative answers carry no SOA record, so (RFC 2308 §5) they are not cached:
/// a service that appears is visible on the next query.
///
/// Packets that do not decode, and packets that are responses, get no reply at
/// all: replying to garbage could be used to bounce traffic, and replying to
/// responses could make two servers talk to each other forever. UDP responses
/// never exceed 512 bytes; a larger answer is sent as an empty response with
/// TC set and the client retries over TCP, on the same port.
pub struct DnsServer {
    udp: UdpSocket,
    tcp: TcpListener,
    local_addr: SocketAddr,
    records: Records,
    ttl: u32,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("local_addr", &self.local_addr)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Which transport a query came over: it decides the response size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    fn max_response(self) -> usize {
        match self {
            Transport::Udp => MAX_UDP_RESPONSE,
            Transport::Tcp => MAX_TCP_MESSAGE,
        }
    }
}

impl DnsServer {
    /// Binds UDP and TCP on the same address.
    ///
    /// With port 0 the OS picks the UDP port and TCP binds the same one; if that
    /// TCP port happens to be taken, both are released and another port is
    /// tried, so callers (and tests) can always use `127.0.0.1:0`.
    pub async fn bind(addr: SocketAddr, records: Records, ttl: u32) -> io::Result<DnsServer> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let udp = UdpSocket::bind(addr).await?;
            let local_addr = udp.local_addr()?;
            match TcpListener::bind(local_addr).await {
                Ok(tcp) => {
                    tracing::info!(%local_addr, ttl, "embedded DNS server bound (udp+tcp)");
                    return Ok(DnsServer {
                        udp,
                        tcp,
                        local_addr,
                        records,
                        ttl,
                    });
                }
                Err(e)
                    if addr.port() == 0
                        && e.kind() == io::ErrorKind::AddrInUse
                        && attempt < BIND_ATTEMPTS =>
                {
                    continue
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The bound address (UDP and TCP share it); use it after binding port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then closes both sockets and every
    /// open TCP connection before returning.
    ///
    /// The caller owns the shutdown signal (a `oneshot`, a `CancellationToken`,
    /// `ctrl_c()`...), as in mini-redis, so the server needs no knowledge of
    /// meshsim's lifecycle.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let DnsServer {
            udp,
            tcp,
            local_addr,
            records,
            ttl,
        } = self;
        tokio::pin!(shutdown);
        let mut connections = JoinSet::new();
        let mut buf = vec![0u8; UDP_RECV_BUFFER];

        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                received = udp.recv_from(&mut buf) => match received {
                    Ok((len, peer)) => {
                        if let Some(response) = respond(&buf[..len], &records, ttl, Transport::Udp) {
                            if let Err(e) = udp.send_to(&response, peer).await {
                                tracing::debug!(%peer, error = %e, "dns: udp send failed");
                            }
                        }
                    }
                    // Per-datagram errors (e.g. an ICMP error reported on the
                    // socket) do not make the socket unusable.
                    Err(e) => tracing::debug!(error = %e, "dns: udp receive failed"),
                },
                accepted = tcp.accept() => match accepted {
                    Ok((stream, peer)) => {
                        if connections.len() >= MAX_TCP_CONNECTIONS {
                            tracing::warn!(%peer, "dns: too many tcp clients, dropping connection");
                            drop(stream);
                        } else {
                            connections.spawn(serve_tcp(stream, peer, records.clone(), ttl));
                        }
                    }
                    Err(e) => {
                        // Typically EMFILE; back off briefly instead of spinning.
                        tracing::warn!(error = %e, "dns: tcp accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                // Reap finished connections so the limit counts live ones only.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }

        connections.shutdown().await;
        tracing::info!(%local_addr, "embedded DNS server stopped");
    }
}

/// Serves DNS-over-TCP framing (RFC 1035 §4.2.2, RFC 7766): any number of
/// length-prefixed queries on one connection, answered in order. A malformed
/// message closes the connection, since the stream can no longer be trusted.
async fn serve_tcp(mut stream: TcpStream, peer: SocketAddr, records: Records, ttl: u32) {
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => return,
        }
        let len = usize::from(u16::from_be_bytes(len));
        let mut query = vec![0u8; len];
        match tokio::time::timeout(TCP_IO_TIMEOUT, stream.read_exact(&mut query)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => return,
        }
        let Some(response) = respond(&query, &records, ttl, Transport::Tcp) else {
            tracing::debug!(%peer, "dns: malformed tcp message, closing connection");
            return;
        };
        // `respond` caps TCP responses at u16::MAX bytes.
        let mut frame = Vec::with_capacity(2 + response.len());
        frame.extend_from_slice(&(response.len() as u16).to_be_bytes());
        frame.extend_from_slice(&response);
        match tokio::time::timeout(TCP_IO_TIMEOUT, stream.write_all(&frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return,
        }
    }
}

/// The wire response to one wire query, or `None` when the packet gets no reply.
///
/// Pure function of the packet and the table, so every rule can be unit-tested
/// without sockets. Never panics on any input.
pub(super) fn respond(
    packet: &[u8],
    records: &Records,
    ttl: u32,
    transport: Transport,
) -> Option<Vec<u8>> {
    // Header is 12 bytes; the QR bit (top bit of byte 2) marks a response.
    if packet.len() < 12 || packet[2] & 0x80 != 0 {
        return None;
    }
    let query = match Message::from_vec(packet) {
        Ok(query) => query,
        Err(e) => {
            tracing::trace!(error = %e, "dns: dropping undecodable packet");
            return None;
        }
    };
    if query.metadata.message_type != MessageType::Query {
        return None;
    }

    let mut response = Message::response(query.metadata.id, query.metadata.op_code);
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.checking_disabled = query.metadata.checking_disabled;
    response.metadata.authoritative = true;

    if query.metadata.op_code != OpCode::Query {
        response.metadata.authoritative = false;
        response.metadata.response_code = ResponseCode::NotImp;
        return encode(&response, transport);
    }
    let [question] = query.queries.as_slice() else {
        response.metadata.authoritative = false;
        response.metadata.response_code = ResponseCode::FormErr;
        return encode(&response, transport);
    };
    response.add_query(question.clone());

    if question.query_class() != DNSClass::IN {
        response.metadata.authoritative = false;
        response.metadata.response_code = ResponseCode::Refused;
        return encode(&response, transport);
    }

    let Some(addrs) = records.lookup(question.name()) else {
        response.metadata.response_code = ResponseCode::NXDomain;
        return encode(&response, transport);
    };

    let qtype = question.query_type();
    // Answer records use the question's own name (same case, and it lets the
    // encoder compress every owner name to a 2-byte pointer).
    let owner = question.name().clone();
    for addr in addrs {
        let rdata = match (qtype, addr) {
            (RecordType::A | RecordType::ANY, IpAddr::V4(v4)) => RData::A(A(v4)),
            (RecordType::AAAA | RecordType::ANY, IpAddr::V6(v6)) => RData::AAAA(AAAA(v6)),
            _ => continue,
        };
        response.add_answer(Record::from_rdata(owner.clone(), ttl, rdata));
    }
    encode(&response, transport)
}

/// Encodes `response`, replacing it with an empty TC=1 response if it exceeds
/// the transport's limit. The client then retries over TCP (from UDP) or gives
/// up (a >64 KiB answer over TCP; thousands of replicas, not a real case).
fn encode(response: &Message, transport: Transport) -> Option<Vec<u8>> {
    let bytes = match response.to_vec() {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(error = %e, "dns: cannot encode response");
            return None;
        }
    };
    if bytes.len() <= transport.max_response() {
        return Some(bytes);
    }
    let mut truncated = Message::response(response.metadata.id, response.metadata.op_code);
    truncated.metadata = response.metadata;
    truncated.metadata.truncation = true;
    truncated.add_queries(response.queries.iter().cloned());
    truncated.to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;
    use std::str::FromStr;

    fn query(name: &str, qtype: RecordType) -> Message {
        let mut msg = Message::query();
        msg.metadata.recursion_desired = true;
        msg.add_query(Query::query(Name::from_str(name).unwrap(), qtype));
        msg
    }

    fn ask(records: &Records, msg: &Message, transport: Transport) -> Message {
        let wire = msg.to_vec().unwrap();
        let resp = respond(&wire, records, 600, transport).expect("a response");
        Message::from_vec(&resp).unwrap()
    }

    fn table() -> Records {
        let records = Records::new();
        records.set(
            "web",
            vec![
                "127.0.0.2".parse().unwrap(),
                "127.0.0.3".parse().unwrap(),
                "fd00::2".parse().unwrap(),
            ],
        );
        records
    }

    #[test]
    fn answers_a_and_aaaa_authoritatively() {
        let records = table();
        let q = query("WEB.", RecordType::A);
        let r = ask(&records, &q, Transport::Udp);
        assert_eq!(r.metadata.id, q.metadata.id);
        assert_eq!(r.metadata.message_type, MessageType::Response);
        assert!(r.metadata.authoritative && r.metadata.recursion_desired);
        assert!(!r.metadata.recursion_available && !r.metadata.truncation);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert_eq!(r.queries, q.queries, "question echoed with its case");
        assert_eq!(r.answers.len(), 2);
        assert!(r
            .answers
            .iter()
            .all(|rec| rec.ttl == 600 && rec.name == *q.queries[0].name()));

        let r = ask(&records, &query("web.", RecordType::AAAA), Transport::Udp);
        assert_eq!(r.answers.len(), 1);
        assert_eq!(
            r.answers[0].data,
            RData::AAAA(AAAA("fd00::2".parse().unwrap()))
        );

        let r = ask(&records, &query("web.", RecordType::ANY), Transport::Udp);
        assert_eq!(r.answers.len(), 3);
    }

    #[test]
    fn nodata_nxdomain_and_other_types() {
        let records = table();
        records.set("v4", vec!["127.0.0.9".parse().unwrap()]);
        let r = ask(&records, &query("v4.", RecordType::AAAA), Transport::Udp);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.answers.is_empty() && r.metadata.authoritative);

        let r = ask(&records, &query("web.", RecordType::MX), Transport::Udp);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.answers.is_empty());

        let r = ask(&records, &query("nope.", RecordType::A), Transport::Udp);
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert!(r.answers.is_empty() && r.authorities.is_empty() && r.metadata.authoritative);

        let r = ask(&records, &query("nope.", RecordType::TXT), Transport::Udp);
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    }

    #[test]
    fn other_opcodes_classes_and_question_counts() {
        let records = table();
        let mut q = query("web.", RecordType::A);
        q.metadata.op_code = OpCode::Status;
        assert_eq!(
            ask(&records, &q, Transport::Udp).metadata.response_code,
            ResponseCode::NotImp
        );

        let mut q = query("web.", RecordType::A);
        q.queries[0].set_query_class(DNSClass::CH);
        assert_eq!(
            ask(&records, &q, Transport::Udp).metadata.response_code,
            ResponseCode::Refused
        );

        let mut q = query("web.", RecordType::A);
        q.queries.clear();
        assert_eq!(
            ask(&records, &q, Transport::Udp).metadata.response_code,
            ResponseCode::FormErr
        );

        let mut q = query("web.", RecordType::A);
        q.add_query(Query::query(
            Name::from_str("web.").unwrap(),
            RecordType::AAAA,
        ));
        let r = ask(&records, &q, Transport::Udp);
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        assert!(r.queries.is_empty() && r.answers.is_empty());
    }

    #[test]
    fn large_answers_truncate_on_udp_but_not_tcp() {
        let records = Records::new();
        let many: Vec<IpAddr> = (1..=60).map(|i| IpAddr::from([127, 0, 1, i])).collect();
        records.set("many", many);
        let q = query("many.", RecordType::A);
        let wire = q.to_vec().unwrap();

        let udp = respond(&wire, &records, 600, Transport::Udp).unwrap();
        assert!(udp.len() <= MAX_UDP_RESPONSE);
        let udp = Message::from_vec(&udp).unwrap();
        assert!(udp.metadata.truncation && udp.answers.is_empty());
        assert_eq!(udp.queries, q.queries);

        let tcp =
            Message::from_vec(&respond(&wire, &records, 600, Transport::Tcp).unwrap()).unwrap();
        assert!(!tcp.metadata.truncation);
        assert_eq!(tcp.answers.len(), 60);
    }

    #[test]
    fn responses_and_garbage_get_no_reply() {
        let records = table();
        let mut resp = query("web.", RecordType::A);
        resp.metadata.message_type = MessageType::Response;
        assert!(respond(&resp.to_vec().unwrap(), &records, 1, Transport::Udp).is_none());

        let valid = query("web.", RecordType::A).to_vec().unwrap();
        let mut garbage: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![0xff; 11],
            valid[..valid.len() - 1].to_vec(),
        ];
        // Header claiming 50 questions, then a label length pointing past the end.
        garbage.push(vec![
            0x12, 0x34, 0x01, 0x00, 0x00, 50, 0, 0, 0, 0, 0, 0, 63, b'a',
        ]);
        // Compression pointer loop.
        garbage.push(vec![
            0x12, 0x34, 0x01, 0x00, 0x00, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1,
        ]);
        // Pseudo-random bytes from a fixed LCG: deterministic, no rand dependency.
        let mut x: u32 = 0x2545_f491;
        for len in [13usize, 64, 300, 512, 4096] {
            let bytes = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (x >> 16) as u8 & 0x7f // keep QR clear so decoding is attempted
                })
                .collect();
            garbage.push(bytes);
        }
        for packet in &garbage {
            if let Some(reply) = respond(packet, &records, 1, Transport::Udp) {
                // A packet that happens to decode may be answered, but never amplified.
                assert!(reply.len() <= MAX_UDP_RESPONSE);
            }
        }
        for packet in &garbage[..6] {
            assert!(
                respond(packet, &records, 1, Transport::Udp).is_none(),
                "{packet:?}"
            );
        }

        // A well-formed header with no question is a query we can interpret
        // enough to refuse: FORMERR, header only, never larger than the query.
        let empty_query = [0x12, 0x34, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0];
        let reply = respond(&empty_query, &records, 1, Transport::Udp).unwrap();
        assert!(reply.len() <= empty_query.len());
        let reply = Message::from_vec(&reply).unwrap();
        assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
        assert_eq!(reply.metadata.id, 0x1234);
    }
}
