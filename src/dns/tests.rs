//! End-to-end tests: the real [`Resolver`] against the real [`DnsServer`] over
//! UDP and TCP on 127.0.0.1. Every test bounds itself in time and stops its server.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::server::MAX_UDP_RESPONSE;
use super::{DnsError, DnsServer, LookupFamily, Records, Resolver};

/// Upper bound for any single test; they normally take milliseconds.
const TEST_DEADLINE: Duration = Duration::from_secs(10);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| ip(s)).collect()
}

async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_DEADLINE, fut)
        .await
        .expect("test exceeded its deadline")
}

struct TestServer {
    addr: SocketAddr,
    records: Records,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl TestServer {
    async fn start(ttl: u32) -> TestServer {
        let records = Records::new();
        let server = DnsServer::bind("127.0.0.1:0".parse().unwrap(), records.clone(), ttl)
            .await
            .expect("bind dns server");
        let addr = server.local_addr();
        assert!(addr.ip().is_loopback() && addr.port() != 0);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            records,
            stop,
            task,
        }
    }

    fn resolver(&self) -> Resolver {
        Resolver::with_nameserver(self.addr).expect("resolver")
    }

    /// Stops the server and checks that `run` really returns on shutdown.
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(2), self.task)
            .await
            .expect("server did not stop")
            .expect("server task panicked");
    }
}

#[tokio::test]
async fn resolves_all_addresses_and_sees_updates_immediately() {
    within(async {
        // TTL 600 like Docker's embedded DNS: with hickory's cache on, the
        // second lookup below would return the first answer for ten minutes.
        let server = TestServer::start(600).await;
        let resolver = server.resolver();

        server
            .records
            .set("web", ips(&["127.0.0.12", "127.0.0.10", "127.0.0.11"]));
        let got = resolver.resolve("web", LookupFamily::V4Only).await.unwrap();
        assert_eq!(
            got,
            ips(&["127.0.0.10", "127.0.0.11", "127.0.0.12"]),
            "sorted, complete"
        );

        server
            .records
            .set("web", ips(&["127.0.0.11", "127.0.0.13"]));
        let got = resolver.resolve("web", LookupFamily::V4Only).await.unwrap();
        assert_eq!(got, ips(&["127.0.0.11", "127.0.0.13"]), "cache must be off");

        // A clone shares the (disabled) cache and the connections.
        let clone = resolver.clone();
        server.records.set("web", ips(&["127.0.0.14"]));
        assert_eq!(
            clone.resolve("WEB.", LookupFamily::V4Only).await.unwrap(),
            ips(&["127.0.0.14"])
        );

        server.records.remove("web");
        let err = resolver
            .resolve("web", LookupFamily::V4Only)
            .await
            .unwrap_err();
        assert_eq!(err, DnsError::NotFound { host: "web".into() });

        // ... and a name that appears is seen at once (negative answers uncached too).
        server.records.set("web", ips(&["127.0.0.15"]));
        assert_eq!(
            resolver.resolve("web", LookupFamily::V4Only).await.unwrap(),
            ips(&["127.0.0.15"])
        );

        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn nxdomain_is_a_distinct_not_found_error_naming_the_host() {
    within(async {
        let server = TestServer::start(600).await;
        let resolver = server.resolver();
        server.records.set("known.svc", ips(&["127.0.0.20"]));

        for family in [
            LookupFamily::V4Only,
            LookupFamily::V6Only,
            LookupFamily::Auto,
            LookupFamily::V4Preferred,
            LookupFamily::All,
        ] {
            let err = resolver.resolve("missing.svc", family).await.unwrap_err();
            assert_eq!(
                err,
                DnsError::NotFound {
                    host: "missing.svc".into()
                },
                "{family}"
            );
            assert!(err.is_not_found() && !err.is_transport());
            let msg = err.to_string();
            assert!(
                msg.contains("missing.svc") && msg.contains("NXDOMAIN"),
                "{msg}"
            );
        }

        // Name exists, no address of that family: not found too, but distinguishable.
        let err = resolver
            .resolve("known.svc", LookupFamily::V6Only)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            DnsError::NoAddresses {
                host: "known.svc".into(),
                family: LookupFamily::V6Only
            }
        );
        assert!(err.is_not_found() && !err.is_transport());
        assert!(err.to_string().contains("known.svc") && err.to_string().contains("V6_ONLY"));

        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn transport_failures_are_not_not_found() {
    within(async {
        // A socket that never answers: the query must time out, quickly here.
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let resolver =
            Resolver::with_nameserver_timeout(addr, Duration::from_millis(200), 1).unwrap();
        let started = std::time::Instant::now();
        let err = resolver
            .resolve("web", LookupFamily::V4Only)
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(err.is_transport() && !err.is_not_found(), "{err:?}");
        assert_eq!(err.host(), Some("web"));
        assert_eq!(err, DnsError::Timeout { host: "web".into() });
        assert!(err.to_string().contains("timed out"));
        drop(silent);

        // Nothing listening at all (UDP and TCP port closed).
        let closed = {
            let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            s.local_addr().unwrap()
        };
        let resolver =
            Resolver::with_nameserver_timeout(closed, Duration::from_millis(200), 1).unwrap();
        let err = resolver
            .resolve("web", LookupFamily::V4Only)
            .await
            .unwrap_err();
        assert!(err.is_transport() && !err.is_not_found(), "{err:?}");
        assert!(err.to_string().contains("web"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn ip_literals_and_localhost_short_circuit() {
    within(async {
        // Point the resolver at a server that never answers: any query made
        // would take the full timeout and fail, so a fast success proves none was.
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let resolver = Resolver::with_nameserver_timeout(
            silent.local_addr().unwrap(),
            Duration::from_secs(5),
            1,
        )
        .unwrap();

        let quick = |name: &'static str, family| {
            let resolver = resolver.clone();
            async move {
                tokio::time::timeout(Duration::from_millis(500), resolver.resolve(name, family))
                    .await
                    .unwrap_or_else(|_| panic!("{name} {family} made a query"))
            }
        };

        assert_eq!(
            quick("10.1.2.3", LookupFamily::Auto).await,
            Ok(ips(&["10.1.2.3"]))
        );
        assert_eq!(
            quick("fd00::5", LookupFamily::V4Only).await,
            Ok(ips(&["fd00::5"]))
        );
        assert_eq!(quick("[::1]", LookupFamily::All).await, Ok(ips(&["::1"])));
        assert_eq!(
            quick(" 127.0.0.1 ", LookupFamily::V6Only).await,
            Ok(ips(&["127.0.0.1"]))
        );

        assert_eq!(
            quick("localhost", LookupFamily::V4Only).await,
            Ok(ips(&["127.0.0.1"]))
        );
        assert_eq!(
            quick("localhost", LookupFamily::V6Only).await,
            Ok(ips(&["::1"]))
        );
        assert_eq!(
            quick("LOCALHOST.", LookupFamily::Auto).await,
            Ok(ips(&["::1"]))
        );
        assert_eq!(
            quick("localhost", LookupFamily::V4Preferred).await,
            Ok(ips(&["127.0.0.1"]))
        );
        assert_eq!(
            quick("localhost", LookupFamily::All).await,
            Ok(ips(&["127.0.0.1", "::1"]))
        );

        let err = quick("", LookupFamily::Auto).await.unwrap_err();
        assert!(matches!(err, DnsError::InvalidName { .. }), "{err:?}");
        let err = quick("bad name..x", LookupFamily::Auto).await.unwrap_err();
        assert!(matches!(err, DnsError::InvalidName { .. }), "{err:?}");
        assert!(err.to_string().contains("bad name..x"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn family_handling_follows_envoy() {
    within(async {
        let server = TestServer::start(30).await;
        let resolver = server.resolver();
        server.records.set(
            "dual",
            ips(&["127.0.0.31", "fd00::31", "127.0.0.30", "fd00::30"]),
        );
        server
            .records
            .set("four", ips(&["127.0.0.40", "127.0.0.41"]));
        server.records.set("six", ips(&["fd00::60"]));

        let r = |name: &'static str, family| {
            let resolver = resolver.clone();
            async move { resolver.resolve(name, family).await }
        };
        use LookupFamily::*;

        assert_eq!(
            r("dual", V4Only).await,
            Ok(ips(&["127.0.0.30", "127.0.0.31"]))
        );
        assert_eq!(r("dual", V6Only).await, Ok(ips(&["fd00::30", "fd00::31"])));
        assert_eq!(
            r("dual", Auto).await,
            Ok(ips(&["fd00::30", "fd00::31"])),
            "v6 preferred"
        );
        assert_eq!(
            r("dual", V4Preferred).await,
            Ok(ips(&["127.0.0.30", "127.0.0.31"]))
        );
        assert_eq!(
            r("dual", All).await,
            Ok(ips(&["127.0.0.30", "127.0.0.31", "fd00::30", "fd00::31"]))
        );

        assert_eq!(
            r("four", Auto).await,
            Ok(ips(&["127.0.0.40", "127.0.0.41"])),
            "v4 fallback"
        );
        assert_eq!(r("four", All).await, Ok(ips(&["127.0.0.40", "127.0.0.41"])));
        assert!(r("four", V6Only).await.unwrap_err().is_not_found());

        assert_eq!(
            r("six", V4Preferred).await,
            Ok(ips(&["fd00::60"])),
            "v6 fallback"
        );
        assert_eq!(r("six", V4Only).await.unwrap_err().host(), Some("six"));

        // Docker Compose v1 container names have underscores, which IDNA rejects.
        server.records.set("project_web_1", ips(&["127.0.0.80"]));
        assert_eq!(r("project_web_1", V4Only).await, Ok(ips(&["127.0.0.80"])));

        server.records.set("empty", vec![]);
        assert_eq!(
            r("empty", All).await,
            Err(DnsError::NoAddresses {
                host: "empty".into(),
                family: All
            })
        );

        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn many_addresses_come_back_complete_via_tcp_fallback() {
    within(async {
        let server = TestServer::start(600).await;
        let many: Vec<IpAddr> = (1..=60u8).map(|i| IpAddr::from([127, 0, 2, i])).collect();
        server.records.set("many.svc", many.clone());

        // The raw UDP answer really is truncated, so the resolver must have used TCP.
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut query = Message::query();
        query.add_query(Query::query(
            Name::from_ascii("many.svc.").unwrap(),
            RecordType::A,
        ));
        let wire = query.to_vec().unwrap();
        udp.send_to(&wire, server.addr).await.unwrap();
        let mut buf = [0u8; 2048];
        let (len, _) = tokio::time::timeout(Duration::from_secs(2), udp.recv_from(&mut buf))
            .await
            .expect("udp answer")
            .unwrap();
        assert!(len <= MAX_UDP_RESPONSE, "udp response of {len} bytes");
        let reply = Message::from_vec(&buf[..len]).unwrap();
        assert!(reply.metadata.truncation && reply.answers.is_empty());

        // Over raw TCP, all 60 records arrive in one message.
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        let mut frame = (wire.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(&wire);
        tcp.write_all(&frame).await.unwrap();
        let mut len = [0u8; 2];
        tcp.read_exact(&mut len).await.unwrap();
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        tcp.read_exact(&mut body).await.unwrap();
        let reply = Message::from_vec(&body).unwrap();
        assert!(!reply.metadata.truncation);
        assert_eq!(reply.answers.len(), 60);
        drop(tcp);

        let resolver = server.resolver();
        let got = resolver
            .resolve("many.svc", LookupFamily::V4Only)
            .await
            .unwrap();
        assert_eq!(got, many);
        // Again, to show the TCP path keeps working on a reused connection.
        server.records.set("many.svc", many[..59].to_vec());
        let got = resolver
            .resolve("many.svc", LookupFamily::All)
            .await
            .unwrap();
        assert_eq!(got, many[..59].to_vec());

        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn garbage_does_not_kill_the_server() {
    within(async {
        let server = TestServer::start(5).await;
        server.records.set("alive", ips(&["127.0.0.50"]));

        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let packets: [&[u8]; 6] = [
            b"",
            b"\x00",
            b"hello, are you a DNS server?",
            &[0xff; 600],
            // Header claiming one question, then a label running past the end.
            &[
                0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 60, b'x',
            ],
            // A "response" (QR set): must never be answered.
            &[0xab, 0xcd, 0x81, 0x80, 0x00, 0x00, 0, 0, 0, 0, 0, 0],
        ];
        for packet in packets {
            udp.send_to(packet, server.addr).await.unwrap();
        }
        let mut buf = [0u8; 1024];
        let reply = tokio::time::timeout(Duration::from_millis(300), udp.recv_from(&mut buf)).await;
        assert!(reply.is_err(), "garbage got a reply: {reply:?}");

        // Garbage over TCP: a length prefix promising more than is sent, then EOF;
        // and a framed non-DNS message, after which the server closes.
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(&[0x40, 0x00, 1, 2, 3]).await.unwrap();
        drop(tcp);
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(&[0x00, 0x03, 1, 2, 3]).await.unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(2), tcp.read_to_end(&mut rest)).await;
        assert!(
            matches!(read, Ok(Ok(0))),
            "expected close without reply: {read:?} {rest:?}"
        );

        let resolver = server.resolver();
        assert_eq!(
            resolver.resolve("alive", LookupFamily::V4Only).await,
            Ok(ips(&["127.0.0.50"]))
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn stopping_the_server_closes_its_sockets() {
    within(async {
        let server = TestServer::start(5).await;
        let addr = server.addr;
        // An idle TCP client must not keep the server alive.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        server.stop().await;
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(2), idle.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
        // The port is free again (UDP and TCP).
        let again = DnsServer::bind(addr, Records::new(), 5)
            .await
            .expect("rebind");
        assert_eq!(again.local_addr(), addr);
    })
    .await;
}

#[cfg(all(unix, not(any(target_os = "android", target_vendor = "apple"))))]
mod resolv_conf {
    use super::*;
    use hickory_resolver::system_conf::parse_resolv_conf;

    /// Builds a resolver from resolv.conf text, redirected to `port`
    /// (resolv.conf cannot name a port, and tests must not use port 53).
    fn from_conf(conf: &str, port: u16) -> Result<Resolver, DnsError> {
        let (mut config, opts) = parse_resolv_conf(conf).map_err(|e| DnsError::Config {
            reason: e.to_string(),
        })?;
        for server in &mut config.name_servers {
            for connection in &mut server.connections {
                connection.port = port;
            }
        }
        Resolver::from_parts(config, opts)
    }

    #[tokio::test]
    async fn docker_style_conf_honours_ndots_and_search() {
        within(async {
            let server = TestServer::start(600).await;
            server.records.set("web.svc.meshsim", ips(&["127.0.0.70"]));
            server.records.set("web", ips(&["127.0.0.71"]));

            // Docker: ndots:0, so a bare name is tried as-is first.
            let conf = "nameserver 127.0.0.1\nsearch svc.meshsim\noptions ndots:0\n";
            let resolver = from_conf(conf, server.addr.port()).unwrap();
            assert_eq!(resolver.options().ndots, 0);
            assert_eq!(resolver.options().cache_size, 0, "cache forced off");
            assert_eq!(
                resolver.resolve("web", LookupFamily::V4Only).await,
                Ok(ips(&["127.0.0.71"]))
            );
            // ... and the search list still applies when the bare name fails.
            server.records.remove("web");
            assert_eq!(
                resolver.resolve("web", LookupFamily::V4Only).await,
                Ok(ips(&["127.0.0.70"]))
            );

            // Classic ndots:1: a single-label name goes through the search list first.
            server.records.set("web", ips(&["127.0.0.71"]));
            let conf = "nameserver 127.0.0.1\nsearch svc.meshsim\noptions ndots:1\n";
            let resolver = from_conf(conf, server.addr.port()).unwrap();
            assert_eq!(
                resolver.resolve("web", LookupFamily::V4Only).await,
                Ok(ips(&["127.0.0.70"]))
            );
            // A fully-qualified name skips the search list.
            assert_eq!(
                resolver.resolve("web.", LookupFamily::V4Only).await,
                Ok(ips(&["127.0.0.71"]))
            );

            server.stop().await;
        })
        .await;
    }

    #[test]
    fn conf_without_nameserver_is_a_config_error() {
        let err = from_conf("search svc.meshsim\n", 53).unwrap_err();
        assert!(matches!(err, DnsError::Config { .. }), "{err:?}");
    }
}

/// Builds from the machine's real `/etc/resolv.conf` but sends no query
/// (the only traffic these tests make goes to 127.0.0.1).
#[test]
fn from_system_conf_builds_or_says_why_not() {
    let has_nameserver = std::fs::read_to_string("/etc/resolv.conf")
        .map(|conf| {
            conf.lines()
                .any(|l| l.trim_start().starts_with("nameserver"))
        })
        .unwrap_or(false);
    match Resolver::from_system_conf() {
        Ok(resolver) => {
            assert!(has_nameserver);
            assert_eq!(resolver.options().cache_size, 0);
        }
        Err(err) => {
            assert!(!has_nameserver, "{err}");
            assert!(matches!(err, DnsError::Config { .. }), "{err:?}");
        }
    }
}
