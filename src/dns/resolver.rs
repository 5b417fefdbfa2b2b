//! The resolver the proxy uses for `STRICT_DNS` / `LOGICAL_DNS` cluster hosts.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError, NoRecords};
use hickory_resolver::TokioResolver;

use super::{DnsError, LookupFamily};

/// Per-attempt deadline for an explicitly given name server.
///
/// Such a server is meshsim's own (loopback) or one named on the command line
/// for local development, so an answer that has not arrived after 2 s is not
/// coming; hickory's 5 s default would stall a refresh cycle for too long.
const EXPLICIT_SERVER_TIMEOUT: Duration = Duration::from_secs(2);
/// Attempts against an explicitly given name server (one retry for a lost UDP packet).
const EXPLICIT_SERVER_ATTEMPTS: usize = 2;

/// Resolves host names to addresses, asking the name server on every call.
///
/// Cloning is cheap (one `Arc`); clones share hickory's connections. Lookups
/// must run inside a Tokio runtime, because hickory spawns its connection
/// tasks on the current runtime.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<TokioResolver>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let opts = self.inner.options();
        f.debug_struct("Resolver")
            .field("ndots", &opts.ndots)
            .field("timeout", &opts.timeout)
            .field("attempts", &opts.attempts)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// A resolver configured like the host's libc: `/etc/resolv.conf`
    /// nameservers, `search`/`domain` list, `ndots`, `timeout`, `attempts`,
    /// `edns0`, plus `/etc/hosts` (read once, now).
    ///
    /// This is what the proxy uses by default. Inside Docker that means
    /// `nameserver 127.0.0.11` and `options ndots:0`, which hickory 0.26 reads
    /// via its `system_conf` support; `ResolverConfig::default()` would have no
    /// name server at all and every lookup would fail with
    /// "no connections available".
    pub fn from_system_conf() -> Result<Resolver, DnsError> {
        let (config, opts) =
            hickory_resolver::system_conf::read_system_conf().map_err(|e| DnsError::Config {
                reason: format!("cannot use the system DNS configuration (/etc/resolv.conf): {e}"),
            })?;
        Self::from_parts(config, opts)
    }

    /// A resolver that asks only `addr`: meshsim's `--dns-resolver` or its
    /// embedded [`DnsServer`](super::DnsServer).
    ///
    /// Queries go over UDP; a truncated (TC) answer is retried over TCP on the
    /// same port. No search list is applied, and `/etc/hosts` is *not*
    /// consulted, so the given server is the single source of truth (a stale
    /// hosts entry must not shadow a service alias).
    pub fn with_nameserver(addr: SocketAddr) -> Result<Resolver, DnsError> {
        Self::with_nameserver_timeout(addr, EXPLICIT_SERVER_TIMEOUT, EXPLICIT_SERVER_ATTEMPTS)
    }

    /// [`with_nameserver`](Self::with_nameserver) with an explicit deadline;
    /// tests use it to observe timeouts quickly.
    pub(super) fn with_nameserver_timeout(
        addr: SocketAddr,
        timeout: Duration,
        attempts: usize,
    ) -> Result<Resolver, DnsError> {
        let mut server = NameServerConfig::udp_and_tcp(addr.ip());
        for connection in &mut server.connections {
            connection.port = addr.port();
        }
        let config = ResolverConfig::from_name_servers(vec![server]);
        let mut opts = ResolverOpts::default();
        opts.timeout = timeout;
        opts.attempts = attempts;
        opts.use_hosts_file = ResolveHosts::Never;
        Self::from_parts(config, opts)
    }

    /// Builds the hickory resolver with the overrides every meshsim resolver needs.
    pub(super) fn from_parts(
        config: ResolverConfig,
        mut opts: ResolverOpts,
    ) -> Result<Resolver, DnsError> {
        if config.name_servers().is_empty() {
            return Err(DnsError::Config {
                reason: "no name server configured".to_string(),
            });
        }
        // hickory 0.26 caches answers for their TTL. Docker's embedded DNS
        // answers with TTL 600, so a replica that appears or vanishes would stay
        // invisible for ten minutes. The proxy has its own refresh interval;
        // every lookup must reach the server. A zero-capacity cache disables
        // the underlying moka map (inserts and gets become no-ops), which is
        // what linkerd2-proxy does too.
        opts.cache_size = 0;
        let inner = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(|e| DnsError::Config {
                reason: format!("cannot build resolver: {e}"),
            })?;
        Ok(Resolver {
            inner: Arc::new(inner),
        })
    }

    /// The options the underlying hickory resolver runs with (ndots, timeout, ...).
    #[cfg(test)]
    pub(super) fn options(&self) -> &ResolverOpts {
        self.inner.options()
    }

    /// All addresses for `name` in `family`, sorted and de-duplicated so that
    /// two refreshes can be compared as sets.
    ///
    /// An IP literal (`10.0.0.1`, `::1`, `[::1]`) returns itself without a
    /// query, whatever the family: the operator asked for exactly that address.
    /// `localhost` returns `127.0.0.1` and/or `::1` according to the family,
    /// also without a query (RFC 6761 says not to send it to a server).
    pub async fn resolve(&self, name: &str, family: LookupFamily) -> Result<Vec<IpAddr>, DnsError> {
        let host = name.trim();
        if let Some(ip) = ip_literal(host) {
            return Ok(vec![ip]);
        }
        if is_localhost(host) {
            return Ok(localhost(family));
        }
        if host.is_empty() {
            return Err(DnsError::InvalidName {
                host: name.to_string(),
                reason: "empty name".to_string(),
            });
        }
        let dns_name = parse_name(host).map_err(|e| DnsError::InvalidName {
            host: host.to_string(),
            reason: e.to_string(),
        })?;

        use RecordType::{A, AAAA};
        let outcome = match family {
            LookupFamily::V4Only => self.query(host, &dns_name, A).await,
            LookupFamily::V6Only => self.query(host, &dns_name, AAAA).await,
            LookupFamily::Auto => self.first_then(host, &dns_name, AAAA, A).await,
            LookupFamily::V4Preferred => self.first_then(host, &dns_name, A, AAAA).await,
            LookupFamily::All => {
                let (v4, v6) = tokio::join!(
                    self.query(host, &dns_name, A),
                    self.query(host, &dns_name, AAAA)
                );
                union(v4, v6)
            }
        };

        let mut addrs = outcome?;
        if addrs.is_empty() {
            return Err(DnsError::NoAddresses {
                host: host.to_string(),
                family,
            });
        }
        addrs.sort_unstable();
        addrs.dedup();
        tracing::trace!(host, %family, ?addrs, "resolved");
        Ok(addrs)
    }

    /// Envoy's "preferred family, fall back to the other": the second query is
    /// made whenever the first yields no address, for *any* reason, because
    /// some servers answer AAAA wrongly (NXDOMAIN or SERVFAIL for a name that
    /// has only A records).
    async fn first_then(
        &self,
        host: &str,
        name: &Name,
        first: RecordType,
        second: RecordType,
    ) -> Result<Vec<IpAddr>, DnsError> {
        let first = self.query(host, name, first).await;
        if matches!(&first, Ok(addrs) if !addrs.is_empty()) {
            return first;
        }
        let second = self.query(host, name, second).await;
        union(first, second)
    }

    /// One query for one record type. `Ok(empty)` means "the name exists but
    /// has no record of this type" (NODATA); errors never are `NoAddresses`.
    async fn query(
        &self,
        host: &str,
        name: &Name,
        record_type: RecordType,
    ) -> Result<Vec<IpAddr>, DnsError> {
        match self.inner.lookup(name.clone(), record_type).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::A(a) if record_type == RecordType::A => Some(IpAddr::V4(a.0)),
                    RData::AAAA(aaaa) if record_type == RecordType::AAAA => {
                        Some(IpAddr::V6(aaaa.0))
                    }
                    // CNAMEs on the way to the address, or stray records.
                    _ => None,
                })
                .collect()),
            Err(NetError::Dns(HickoryDnsError::NoRecordsFound(NoRecords {
                response_code,
                ..
            }))) if response_code != ResponseCode::NXDomain => Ok(Vec::new()),
            Err(e) => {
                tracing::debug!(host, ?record_type, error = %e, "dns query failed");
                Err(map_error(host, e))
            }
        }
    }
}

/// Merges the outcomes of two queries for the same name.
///
/// Any address wins: a partial answer (say AAAA timed out but A answered) is
/// what Envoy and `getaddrinfo(AF_UNSPEC)` return too. Without addresses, the
/// most telling error is kept: NXDOMAIN is definitive for every record type,
/// then a transport failure (we do not know the answer), and plain NODATA
/// (`Ok(empty)`) only when both families said so.
fn union(
    a: Result<Vec<IpAddr>, DnsError>,
    b: Result<Vec<IpAddr>, DnsError>,
) -> Result<Vec<IpAddr>, DnsError> {
    match (a, b) {
        (Ok(mut a), Ok(b)) => {
            a.extend(b);
            Ok(a)
        }
        (Ok(addrs), Err(e)) | (Err(e), Ok(addrs)) => {
            if addrs.is_empty() {
                Err(e)
            } else {
                Ok(addrs)
            }
        }
        (Err(a), Err(b)) => {
            if matches!(b, DnsError::NotFound { .. }) && !matches!(a, DnsError::NotFound { .. }) {
                Err(b)
            } else {
                Err(a)
            }
        }
    }
}

fn map_error(host: &str, error: NetError) -> DnsError {
    let host = host.to_string();
    match error {
        e if e.is_nx_domain() => DnsError::NotFound { host },
        NetError::Dns(HickoryDnsError::ResponseCode(code)) => DnsError::ServerFailure {
            host,
            rcode: code.to_string(),
        },
        NetError::Dns(other) => DnsError::ServerFailure {
            host,
            rcode: other.to_string(),
        },
        NetError::Timeout => DnsError::Timeout { host },
        NetError::NoConnections => DnsError::NoNameserver {
            host,
            reason: "no connection to any configured name server".to_string(),
        },
        NetError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            DnsError::NoNameserver {
                host,
                reason: format!("connection refused: {io}"),
            }
        }
        other => DnsError::Transport {
            host,
            reason: other.to_string(),
        },
    }
}

/// Parses a host name the way it will be sent on the wire.
///
/// ASCII names are taken as they are: hickory's `&str` conversion goes through
/// IDNA, which rejects underscores (`project_web_1`, the container names of
/// Docker Compose v1, which Docker's DNS does resolve). Only non-ASCII names
/// need IDNA to become punycode.
pub(super) fn parse_name(host: &str) -> Result<Name, hickory_proto::ProtoError> {
    if host.is_ascii() {
        Name::from_ascii(host)
    } else {
        Name::from_utf8(host)
    }
}

fn ip_literal(host: &str) -> Option<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip);
    }
    // `[::1]` as written in URLs and Envoy socket addresses.
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<Ipv6Addr>().ok())
        .map(IpAddr::V6)
}

fn is_localhost(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
}

fn localhost(family: LookupFamily) -> Vec<IpAddr> {
    let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    match family {
        // AUTO prefers v6 and v6 localhost always "exists", as with Envoy.
        LookupFamily::Auto | LookupFamily::V6Only => vec![v6],
        LookupFamily::V4Only | LookupFamily::V4Preferred => vec![v4],
        LookupFamily::All => vec![v4, v6],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nf(host: &str) -> DnsError {
        DnsError::NotFound {
            host: host.to_string(),
        }
    }

    fn timeout(host: &str) -> DnsError {
        DnsError::Timeout {
            host: host.to_string(),
        }
    }

    #[test]
    fn literals_and_localhost_are_recognised() {
        assert_eq!(ip_literal("10.1.2.3"), Some("10.1.2.3".parse().unwrap()));
        assert_eq!(ip_literal("::1"), Some("::1".parse().unwrap()));
        assert_eq!(ip_literal("[fd00::7]"), Some("fd00::7".parse().unwrap()));
        assert_eq!(ip_literal("[10.0.0.1]"), None);
        assert_eq!(ip_literal("web"), None);
        assert!(is_localhost("localhost"));
        assert!(is_localhost("LocalHost."));
        assert!(!is_localhost("localhost.example"));
    }

    #[test]
    fn names_with_underscores_and_unicode_parse() {
        assert_eq!(
            parse_name("project_web_1").unwrap().to_ascii(),
            "project_web_1"
        );
        assert_eq!(
            parse_name("bücher.svc").unwrap().to_ascii(),
            "xn--bcher-kva.svc"
        );
        assert!(parse_name("a..b").is_err());
        assert!(parse_name("x y").is_err());
    }

    #[test]
    fn union_prefers_addresses_then_nxdomain_then_transport() {
        let addr: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(union(Ok(vec![addr]), Err(timeout("h"))), Ok(vec![addr]));
        assert_eq!(union(Err(timeout("h")), Ok(vec![addr])), Ok(vec![addr]));
        assert_eq!(union(Ok(vec![]), Err(timeout("h"))), Err(timeout("h")));
        assert_eq!(union(Err(timeout("h")), Err(nf("h"))), Err(nf("h")));
        assert_eq!(union(Err(nf("h")), Err(timeout("h"))), Err(nf("h")));
        assert_eq!(union(Ok(vec![]), Ok(vec![])), Ok(vec![]));
    }

    #[test]
    fn errors_name_the_host_and_the_reason() {
        let e = map_error("web.svc", NetError::Timeout);
        assert_eq!(e, timeout("web.svc"));
        assert!(e.to_string().contains("web.svc") && e.to_string().contains("timed out"));
        let e = map_error("web.svc", NetError::NoConnections);
        assert!(matches!(e, DnsError::NoNameserver { .. }), "{e:?}");
        assert!(e.is_transport() && !e.is_not_found());
        let e = map_error(
            "web.svc",
            NetError::Dns(HickoryDnsError::ResponseCode(ResponseCode::ServFail)),
        );
        assert!(matches!(e, DnsError::ServerFailure { .. }), "{e:?}");
        assert!(e.to_string().contains("web.svc"), "{e}");
    }
}
