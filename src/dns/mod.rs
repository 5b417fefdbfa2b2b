//! DNS for meshsim: the resolver the proxy uses for `STRICT_DNS` / `LOGICAL_DNS`
//! cluster hosts, and a tiny embedded authoritative server for service aliases.
//!
//! # Why this module exists instead of "just use hickory"
//!
//! The proxy re-resolves cluster hosts every refresh interval and compares the
//! address set with the previous one to add or drain endpoints. That only works
//! if every refresh actually asks the name server, so the [`Resolver`] wraps
//! `hickory-resolver` 0.26 with its response cache switched off and answers
//! returned sorted and de-duplicated (stable sets that compare cheaply).
//!
//! The [`DnsServer`] exists because meshsim can launch services as local
//! processes: each replica gets its own loopback address, and the server maps
//! a service alias to one A/AAAA record per replica. Tests use the same server
//! to exercise real DNS re-resolution over real UDP and TCP sockets.
//!
//! Both halves are independent: the resolver can point at any server
//! (`/etc/resolv.conf`, Docker's `127.0.0.11`, a `--dns-resolver` flag) and the
//! server answers any client.

mod records;
mod resolver;
mod server;

#[cfg(test)]
mod tests;

pub use self::records::Records;
pub use self::resolver::Resolver;
pub use self::server::DnsServer;

use std::fmt;

/// Which address families a lookup asks for, with Envoy's `dns_lookup_family`
/// semantics so cluster configs mean the same thing here as under Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LookupFamily {
    /// `AUTO`: ask for IPv6 first; only if that yields no address, ask for IPv4.
    /// Envoy's default, hence ours.
    #[default]
    Auto,
    /// `V4_ONLY`: A records only.
    V4Only,
    /// `V6_ONLY`: AAAA records only.
    V6Only,
    /// `V4_PREFERRED`: ask for IPv4 first; only if that yields no address, ask for IPv6.
    V4Preferred,
    /// `ALL`: ask for both and return the union.
    All,
}

impl LookupFamily {
    /// Envoy's spelling of the family, used in error messages and logs so a
    /// failure can be matched to the cluster config that caused it.
    pub fn as_str(self) -> &'static str {
        match self {
            LookupFamily::Auto => "AUTO",
            LookupFamily::V4Only => "V4_ONLY",
            LookupFamily::V6Only => "V6_ONLY",
            LookupFamily::V4Preferred => "V4_PREFERRED",
            LookupFamily::All => "ALL",
        }
    }
}

impl fmt::Display for LookupFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a resolution failed.
///
/// The variants split into two groups the proxy treats differently:
/// * "the name does not resolve" ([`DnsError::NotFound`], [`DnsError::NoAddresses`],
///   see [`DnsError::is_not_found`]): the server gave a definitive answer;
/// * "we could not get an answer" ([`DnsError::Timeout`], [`DnsError::NoNameserver`],
///   [`DnsError::ServerFailure`], [`DnsError::Transport`], see
///   [`DnsError::is_transport`]): the proxy should keep the previous host set
///   and retry, as Envoy does, rather than drain every endpoint.
///
/// Reasons are carried as strings so the error is `Clone`, cheap to log, and
/// does not leak hickory's types into the proxy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The host string is not a valid DNS name (and not an IP literal).
    #[error("cannot resolve {host:?}: not a valid host name ({reason})")]
    InvalidName { host: String, reason: String },
    /// The name server says the name does not exist (NXDOMAIN).
    #[error("cannot resolve {host:?}: name not found (NXDOMAIN)")]
    NotFound { host: String },
    /// The name exists but has no address of the requested family (NOERROR, empty answer).
    #[error("cannot resolve {host:?}: name exists but has no address for lookup family {family}")]
    NoAddresses { host: String, family: LookupFamily },
    /// No answer arrived before the resolver's deadline.
    #[error("cannot resolve {host:?}: DNS query timed out")]
    Timeout { host: String },
    /// No name server could be used at all: none configured, or nothing listening.
    #[error("cannot resolve {host:?}: no name server available ({reason})")]
    NoNameserver { host: String, reason: String },
    /// The name server answered with an error code such as SERVFAIL or REFUSED.
    #[error("cannot resolve {host:?}: name server answered {rcode}")]
    ServerFailure { host: String, rcode: String },
    /// Any other failure to exchange messages with the name server.
    #[error("cannot resolve {host:?}: DNS transport failure ({reason})")]
    Transport { host: String, reason: String },
    /// The resolver could not be built (e.g. unreadable `/etc/resolv.conf`, no nameserver in it).
    #[error("DNS resolver configuration error: {reason}")]
    Config { reason: String },
}

impl DnsError {
    /// True when the server definitively said the name has no usable address.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            DnsError::NotFound { .. } | DnsError::NoAddresses { .. }
        )
    }

    /// True when no definitive answer was obtained; the previous result is still the best guess.
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            DnsError::Timeout { .. }
                | DnsError::NoNameserver { .. }
                | DnsError::ServerFailure { .. }
                | DnsError::Transport { .. }
        )
    }

    /// The host the failed lookup was for, if the error concerns one host.
    pub fn host(&self) -> Option<&str> {
        match self {
            DnsError::InvalidName { host, .. }
            | DnsError::NotFound { host }
            | DnsError::NoAddresses { host, .. }
            | DnsError::Timeout { host }
            | DnsError::NoNameserver { host, .. }
            | DnsError::ServerFailure { host, .. }
            | DnsError::Transport { host, .. } => Some(host),
            DnsError::Config { .. } => None,
        }
    }
}
