//! Envoy's response flags (`%RESPONSE_FLAGS%`, `%RESPONSE_FLAGS_LONG%`).
//!
//! Bit `n` of [`ResponseFlags`] is Envoy's `CoreResponseFlag` number `n`
//! (`envoy/stream_info/stream_info.h`), so `bits()` equals Envoy's
//! `legacyResponseFlags()` and the codes can be exchanged with Envoy tooling.
//!
//! Printing order: Envoy before 1.30 walked `ALL_RESPONSE_STRINGS_FLAGS`
//! (`source/common/stream_info/utility.h`) and printed the set flags in that
//! fixed order. Envoy 1.30+ keeps a vector and prints flags in the order they
//! were *set*. A bitset cannot remember insertion order, so we use the fixed
//! table order, which is also the enum order and what every Envoy release
//! printed for years.

use std::fmt;
use std::ops::{BitAnd, BitOr, BitOrAssign, Sub};

/// A set of Envoy response flags. Cheap to copy; empty prints as `-`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ResponseFlags(u32);

/// `(flag, short code, long name)` in Envoy's `ALL_RESPONSE_STRINGS_FLAGS` order.
const TABLE: [(ResponseFlags, &str, &str); 28] = [
    (
        ResponseFlags::FAILED_LOCAL_HEALTH_CHECK,
        "LH",
        "FailedLocalHealthCheck",
    ),
    (
        ResponseFlags::NO_HEALTHY_UPSTREAM,
        "UH",
        "NoHealthyUpstream",
    ),
    (
        ResponseFlags::UPSTREAM_REQUEST_TIMEOUT,
        "UT",
        "UpstreamRequestTimeout",
    ),
    (ResponseFlags::LOCAL_RESET, "LR", "LocalReset"),
    (
        ResponseFlags::UPSTREAM_REMOTE_RESET,
        "UR",
        "UpstreamRemoteReset",
    ),
    (
        ResponseFlags::UPSTREAM_CONNECTION_FAILURE,
        "UF",
        "UpstreamConnectionFailure",
    ),
    (
        ResponseFlags::UPSTREAM_CONNECTION_TERMINATION,
        "UC",
        "UpstreamConnectionTermination",
    ),
    (ResponseFlags::UPSTREAM_OVERFLOW, "UO", "UpstreamOverflow"),
    (ResponseFlags::NO_ROUTE_FOUND, "NR", "NoRouteFound"),
    (ResponseFlags::DELAY_INJECTED, "DI", "DelayInjected"),
    (ResponseFlags::FAULT_INJECTED, "FI", "FaultInjected"),
    (ResponseFlags::RATE_LIMITED, "RL", "RateLimited"),
    (
        ResponseFlags::UNAUTHORIZED_EXTERNAL_SERVICE,
        "UAEX",
        "UnauthorizedExternalService",
    ),
    (
        ResponseFlags::RATE_LIMIT_SERVICE_ERROR,
        "RLSE",
        "RateLimitServiceError",
    ),
    (
        ResponseFlags::DOWNSTREAM_CONNECTION_TERMINATION,
        "DC",
        "DownstreamConnectionTermination",
    ),
    (
        ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED,
        "URX",
        "UpstreamRetryLimitExceeded",
    ),
    (
        ResponseFlags::STREAM_IDLE_TIMEOUT,
        "SI",
        "StreamIdleTimeout",
    ),
    (
        ResponseFlags::INVALID_ENVOY_REQUEST_HEADERS,
        "IH",
        "InvalidEnvoyRequestHeaders",
    ),
    (
        ResponseFlags::DOWNSTREAM_PROTOCOL_ERROR,
        "DPE",
        "DownstreamProtocolError",
    ),
    (
        ResponseFlags::UPSTREAM_MAX_STREAM_DURATION_REACHED,
        "UMSDR",
        "UpstreamMaxStreamDurationReached",
    ),
    (
        ResponseFlags::RESPONSE_FROM_CACHE_FILTER,
        "RFCF",
        "ResponseFromCacheFilter",
    ),
    (
        ResponseFlags::NO_FILTER_CONFIG_FOUND,
        "NFCF",
        "NoFilterConfigFound",
    ),
    (ResponseFlags::DURATION_TIMEOUT, "DT", "DurationTimeout"),
    (
        ResponseFlags::UPSTREAM_PROTOCOL_ERROR,
        "UPE",
        "UpstreamProtocolError",
    ),
    (ResponseFlags::NO_CLUSTER_FOUND, "NC", "NoClusterFound"),
    (
        ResponseFlags::OVERLOAD_MANAGER,
        "OM",
        "OverloadManagerTerminated",
    ),
    (
        ResponseFlags::DNS_RESOLUTION_FAILED,
        "DF",
        "DnsResolutionFailed",
    ),
    (ResponseFlags::DROP_OVERLOAD, "DO", "DropOverload"),
];

impl ResponseFlags {
    /// LH: local service failed health check (503).
    pub const FAILED_LOCAL_HEALTH_CHECK: Self = Self(1 << 0);
    /// UH: no healthy upstream hosts (503).
    pub const NO_HEALTHY_UPSTREAM: Self = Self(1 << 1);
    /// UT: upstream request timeout (504).
    pub const UPSTREAM_REQUEST_TIMEOUT: Self = Self(1 << 2);
    /// LR: connection local reset (503).
    pub const LOCAL_RESET: Self = Self(1 << 3);
    /// UR: upstream remote reset (503).
    pub const UPSTREAM_REMOTE_RESET: Self = Self(1 << 4);
    /// UF: upstream connection failure (503).
    pub const UPSTREAM_CONNECTION_FAILURE: Self = Self(1 << 5);
    /// UC: upstream connection termination (503).
    pub const UPSTREAM_CONNECTION_TERMINATION: Self = Self(1 << 6);
    /// UO: upstream overflow / circuit breaking (503).
    pub const UPSTREAM_OVERFLOW: Self = Self(1 << 7);
    /// NR: no route configured (404).
    pub const NO_ROUTE_FOUND: Self = Self(1 << 8);
    /// DI: request delayed by fault injection.
    pub const DELAY_INJECTED: Self = Self(1 << 9);
    /// FI: request aborted by fault injection.
    pub const FAULT_INJECTED: Self = Self(1 << 10);
    /// RL: rate limited locally (429).
    pub const RATE_LIMITED: Self = Self(1 << 11);
    /// UAEX: denied by the external authorization service.
    pub const UNAUTHORIZED_EXTERNAL_SERVICE: Self = Self(1 << 12);
    /// RLSE: error talking to the rate limit service.
    pub const RATE_LIMIT_SERVICE_ERROR: Self = Self(1 << 13);
    /// DC: downstream connection termination.
    pub const DOWNSTREAM_CONNECTION_TERMINATION: Self = Self(1 << 14);
    /// URX: upstream retry limit exceeded.
    pub const UPSTREAM_RETRY_LIMIT_EXCEEDED: Self = Self(1 << 15);
    /// SI: stream idle timeout (408).
    pub const STREAM_IDLE_TIMEOUT: Self = Self(1 << 16);
    /// IH: invalid value in a strictly checked `x-envoy-*` header (400).
    pub const INVALID_ENVOY_REQUEST_HEADERS: Self = Self(1 << 17);
    /// DPE: downstream HTTP protocol error.
    pub const DOWNSTREAM_PROTOCOL_ERROR: Self = Self(1 << 18);
    /// UMSDR: upstream request reached max stream duration.
    pub const UPSTREAM_MAX_STREAM_DURATION_REACHED: Self = Self(1 << 19);
    /// RFCF: response served from the cache filter.
    pub const RESPONSE_FROM_CACHE_FILTER: Self = Self(1 << 20);
    /// NFCF: no filter config found (ECDS).
    pub const NO_FILTER_CONFIG_FOUND: Self = Self(1 << 21);
    /// DT: max connection / stream duration exceeded.
    pub const DURATION_TIMEOUT: Self = Self(1 << 22);
    /// UPE: upstream HTTP protocol error.
    pub const UPSTREAM_PROTOCOL_ERROR: Self = Self(1 << 23);
    /// NC: upstream cluster not found.
    pub const NO_CLUSTER_FOUND: Self = Self(1 << 24);
    /// OM: terminated by the overload manager.
    pub const OVERLOAD_MANAGER: Self = Self(1 << 25);
    /// DF: DNS resolution failed.
    pub const DNS_RESOLUTION_FAILED: Self = Self(1 << 26);
    /// DO: dropped by drop_overload.
    pub const DROP_OVERLOAD: Self = Self(1 << 27);

    const ALL_BITS: u32 = (1 << 28) - 1;

    /// No flags.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Raw bits; bit `n` is Envoy's `CoreResponseFlag` `n` (its legacy bitmask).
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Builds a set from raw bits, ignoring bits that name no flag.
    pub const fn from_bits_truncate(bits: u32) -> Self {
        Self(bits & Self::ALL_BITS)
    }

    /// True when no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// True when every flag in `other` is set in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets the flags in `other`.
    pub fn insert(&mut self, other: Self) {
        self.0 |= other.0;
    }

    /// Clears the flags in `other`.
    pub fn remove(&mut self, other: Self) {
        self.0 &= !other.0;
    }

    /// Looks a flag up by its short code (`"UH"`), as in Envoy's `toResponseFlag`.
    pub fn from_short_code(code: &str) -> Option<Self> {
        TABLE
            .iter()
            .find(|(_, s, _)| *s == code)
            .map(|(f, _, _)| *f)
    }

    /// The set flags as `(short code, long name)` pairs, in Envoy's print order.
    pub fn iter(self) -> impl Iterator<Item = (&'static str, &'static str)> {
        TABLE
            .iter()
            .filter(move |(f, _, _)| self.contains(*f))
            .map(|(_, s, l)| (*s, *l))
    }

    /// `%RESPONSE_FLAGS%`: short codes joined by `,`, or `-` when empty.
    pub fn short_string(self) -> String {
        self.joined(|(s, _)| s)
    }

    /// `%RESPONSE_FLAGS_LONG%`: long names joined by `,`, or `-` when empty.
    pub fn long_string(self) -> String {
        self.joined(|(_, l)| l)
    }

    fn joined(self, pick: fn((&'static str, &'static str)) -> &'static str) -> String {
        if self.is_empty() {
            return "-".to_owned();
        }
        let mut out = String::new();
        for pair in self.iter() {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(pick(pair));
        }
        out
    }
}

impl BitOr for ResponseFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for ResponseFlags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for ResponseFlags {
    type Output = Self;
    fn bitand(self, rhs: Self) -> Self {
        Self(self.0 & rhs.0)
    }
}

impl Sub for ResponseFlags {
    type Output = Self;
    fn sub(self, rhs: Self) -> Self {
        Self(self.0 & !rhs.0)
    }
}

/// Prints the short form, exactly what `%RESPONSE_FLAGS%` prints.
impl fmt::Display for ResponseFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short_string())
    }
}

impl fmt::Debug for ResponseFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResponseFlags({})", self.short_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_prints_dash() {
        assert_eq!(ResponseFlags::empty().short_string(), "-");
        assert_eq!(ResponseFlags::empty().long_string(), "-");
        assert_eq!(ResponseFlags::default().to_string(), "-");
    }

    #[test]
    fn every_flag_has_a_distinct_bit_in_enum_order() {
        for (i, (flag, _, _)) in TABLE.iter().enumerate() {
            assert_eq!(flag.bits(), 1 << i, "table row {i} out of Envoy enum order");
        }
    }

    #[test]
    fn codes_of_all_required_flags() {
        let want = [
            ("UH", ResponseFlags::NO_HEALTHY_UPSTREAM),
            ("UF", ResponseFlags::UPSTREAM_CONNECTION_FAILURE),
            ("UO", ResponseFlags::UPSTREAM_OVERFLOW),
            ("NR", ResponseFlags::NO_ROUTE_FOUND),
            ("URX", ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED),
            ("NC", ResponseFlags::NO_CLUSTER_FOUND),
            ("DT", ResponseFlags::DURATION_TIMEOUT),
            ("DC", ResponseFlags::DOWNSTREAM_CONNECTION_TERMINATION),
            ("LH", ResponseFlags::FAILED_LOCAL_HEALTH_CHECK),
            ("UT", ResponseFlags::UPSTREAM_REQUEST_TIMEOUT),
            ("LR", ResponseFlags::LOCAL_RESET),
            ("UR", ResponseFlags::UPSTREAM_REMOTE_RESET),
            ("UC", ResponseFlags::UPSTREAM_CONNECTION_TERMINATION),
            ("DI", ResponseFlags::DELAY_INJECTED),
            ("FI", ResponseFlags::FAULT_INJECTED),
            ("RL", ResponseFlags::RATE_LIMITED),
            ("UAEX", ResponseFlags::UNAUTHORIZED_EXTERNAL_SERVICE),
            ("RLSE", ResponseFlags::RATE_LIMIT_SERVICE_ERROR),
            ("IH", ResponseFlags::INVALID_ENVOY_REQUEST_HEADERS),
            ("SI", ResponseFlags::STREAM_IDLE_TIMEOUT),
            ("DPE", ResponseFlags::DOWNSTREAM_PROTOCOL_ERROR),
            ("UPE", ResponseFlags::UPSTREAM_PROTOCOL_ERROR),
            ("UMSDR", ResponseFlags::UPSTREAM_MAX_STREAM_DURATION_REACHED),
            ("OM", ResponseFlags::OVERLOAD_MANAGER),
            ("DF", ResponseFlags::DNS_RESOLUTION_FAILED),
        ];
        for (code, flag) in want {
            assert_eq!(flag.short_string(), code);
            assert_eq!(ResponseFlags::from_short_code(code), Some(flag));
        }
        assert_eq!(ResponseFlags::from_short_code("XX"), None);
    }

    #[test]
    fn several_flags_print_in_envoy_table_order_not_insertion_order() {
        let mut f = ResponseFlags::empty();
        // Inserted in "wrong" order on purpose.
        f.insert(ResponseFlags::NO_CLUSTER_FOUND);
        f.insert(ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED);
        f.insert(ResponseFlags::DOWNSTREAM_CONNECTION_TERMINATION);
        f.insert(ResponseFlags::UPSTREAM_CONNECTION_FAILURE);
        f.insert(ResponseFlags::NO_HEALTHY_UPSTREAM);
        f.insert(ResponseFlags::FAILED_LOCAL_HEALTH_CHECK);
        assert_eq!(f.short_string(), "LH,UH,UF,DC,URX,NC");
        assert_eq!(
            f.long_string(),
            "FailedLocalHealthCheck,NoHealthyUpstream,UpstreamConnectionFailure,\
             DownstreamConnectionTermination,UpstreamRetryLimitExceeded,NoClusterFound"
        );
        let g = ResponseFlags::DNS_RESOLUTION_FAILED
            | ResponseFlags::OVERLOAD_MANAGER
            | ResponseFlags::UPSTREAM_PROTOCOL_ERROR
            | ResponseFlags::DURATION_TIMEOUT
            | ResponseFlags::UPSTREAM_MAX_STREAM_DURATION_REACHED
            | ResponseFlags::DOWNSTREAM_PROTOCOL_ERROR
            | ResponseFlags::INVALID_ENVOY_REQUEST_HEADERS
            | ResponseFlags::STREAM_IDLE_TIMEOUT;
        assert_eq!(g.short_string(), "SI,IH,DPE,UMSDR,DT,UPE,OM,DF");
    }

    #[test]
    fn set_operations() {
        let mut f = ResponseFlags::UPSTREAM_REQUEST_TIMEOUT | ResponseFlags::UPSTREAM_REMOTE_RESET;
        assert!(f.contains(ResponseFlags::UPSTREAM_REQUEST_TIMEOUT));
        assert!(!f.contains(ResponseFlags::LOCAL_RESET));
        f.remove(ResponseFlags::UPSTREAM_REQUEST_TIMEOUT);
        assert_eq!(f, ResponseFlags::UPSTREAM_REMOTE_RESET);
        f |= ResponseFlags::LOCAL_RESET;
        assert_eq!(f.to_string(), "LR,UR");
        assert_eq!((f - ResponseFlags::LOCAL_RESET).to_string(), "UR");
        assert_eq!((f & ResponseFlags::LOCAL_RESET).to_string(), "LR");
        assert_eq!(
            ResponseFlags::from_bits_truncate(u32::MAX).iter().count(),
            28
        );
        assert_eq!(format!("{f:?}"), "ResponseFlags(LR,UR)");
    }
}
