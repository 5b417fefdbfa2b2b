//! Request hashing for route `hash_policy`, matching Envoy's `Http::HashPolicyImpl`
//! (`source/common/http/hash_policy.cc`) and `HashUtil` (`source/common/common/hash.h`).
//!
//! Producing the same 64-bit value as Envoy for the same request matters because the hash is
//! then looked up in a ring / Maglev table that is itself Envoy-identical: together they give
//! the same upstream host as Envoy would.
//!
//! What Envoy hashes per policy kind:
//!
//! | `hash_policy` | value hashed | helper |
//! | --- | --- | --- |
//! | `header` | all values of the header, sorted, chained | [`hash_header_values`] |
//! | `cookie` | the cookie value; absent cookie gives no hash (or, with `ttl`, Envoy generates one) | [`hash_cookie_value`], [`generated_cookie_value`] |
//! | `connection_properties.source_ip` | downstream IP as text, no port | [`hash_source_ip`] |
//! | `query_parameter` | first value of the parameter | [`hash_str`] |
//!
//! Several policies are folded in order with [`combine`] / [`HashAccumulator`]; a policy that
//! produces no value is skipped, and a `terminal` policy that produced a hash ends the fold (the
//! caller handles `terminal`, this module only combines).

use std::fmt::{self, Write as _};
use std::net::IpAddr;

use xxhash_rust::xxh64::{xxh64, Xxh64};

/// Envoy's `HashUtil::xxHash64(input)`: XXH64 with seed 0.
#[inline]
pub fn hash_bytes(b: &[u8]) -> u64 {
    xxh64(b, 0)
}

/// [`hash_bytes`] of a string's UTF-8 bytes.
#[inline]
pub fn hash_str(s: &str) -> u64 {
    xxh64(s.as_bytes(), 0)
}

/// Envoy's `HashUtil::xxHash64(input, seed)`. Maglev uses seed 1 for the skip.
#[inline]
pub fn hash_bytes_with_seed(b: &[u8], seed: u64) -> u64 {
    xxh64(b, seed)
}

/// Envoy's header hash method: all values of the header (one per header line; Envoy does not
/// split comma-joined values) are **sorted** so that `{a, b}` and `{b, a}` hash alike, then
/// hashed with `HashUtil::xxHash64(Span<string_view>)`, which chains the seed:
/// `h = xxh64(v0, 0); h = xxh64(v1, h); …`. A single value is therefore just `xxh64(v, 0)`.
///
/// Sorts `values` in place (so no allocation). Returns `None` when the header is absent, i.e.
/// `values` is empty; an empty-string value still hashes, as in Envoy.
pub fn hash_header_values(values: &mut [&str]) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    Some(
        values
            .iter()
            .fold(0u64, |seed, v| xxh64(v.as_bytes(), seed)),
    )
}

/// Envoy's cookie hash method for a cookie found in the request: `xxh64(value)`. An empty value
/// counts as absent (Envoy's `parseCookieValue` returns "" for both), so this gives `None`;
/// with a configured `ttl` the caller should then generate a cookie with
/// [`generated_cookie_value`], set it on the response and hash that.
pub fn hash_cookie_value(value: &str) -> Option<u64> {
    if value.is_empty() {
        None
    } else {
        Some(hash_str(value))
    }
}

/// Value Envoy puts in a generated hash-policy cookie (`generateCookie` in
/// `thread_aware_lb_impl.cc`): 16 lower-case hex digits of `xxh64(remote + local)`, where both
/// are the downstream connection's addresses as Envoy prints them (`"ip:port"`, IPv6 as
/// `"[ip]:port"`).
pub fn generated_cookie_value(remote_address: &str, local_address: &str) -> String {
    let mut h = Xxh64::new(0);
    h.update(remote_address.as_bytes());
    h.update(local_address.as_bytes());
    format!("{:016x}", h.digest())
}

/// Envoy's `connection_properties: { source_ip: true }`: `xxh64` of the downstream IP as
/// `addressAsString()` prints it — dotted quad for IPv4, RFC 5952 text without brackets or
/// port for IPv6 (which is also what `Display` for [`IpAddr`] produces). Formats into a stack
/// buffer: no allocation.
pub fn hash_source_ip(ip: IpAddr) -> u64 {
    let mut buf = StackBuf::new();
    write!(buf, "{ip}").expect("an IP address fits in 64 bytes");
    hash_bytes(buf.as_bytes())
}

/// Envoy's rule for folding several hash policies: `hash = rotl(hash, 1) ^ new`. Rotating the
/// running value first keeps two identical policies from cancelling out (plain xor would give 0)
/// and keeps every input's entropy.
#[inline]
pub fn combine(acc: u64, new: u64) -> u64 {
    acc.rotate_left(1) ^ new
}

/// Running result of evaluating a route's hash policies in order.
///
/// Starts empty; [`HashAccumulator::push`] each hash a policy produced (skip policies that
/// produced nothing). [`HashAccumulator::get`] is `None` if no policy produced anything, which
/// [`super::PickContext::hash`] turns into a random pick, as in Envoy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HashAccumulator {
    hash: Option<u64>,
}

impl HashAccumulator {
    /// No hash yet.
    pub const fn new() -> Self {
        HashAccumulator { hash: None }
    }

    /// Folds in one policy's hash: the first one is taken as is, later ones via [`combine`].
    #[inline]
    pub fn push(&mut self, new: u64) {
        self.hash = Some(match self.hash {
            None => new,
            Some(acc) => combine(acc, new),
        });
    }

    /// Folds in an optional result (no-op for `None`).
    #[inline]
    pub fn push_opt(&mut self, new: Option<u64>) {
        if let Some(h) = new {
            self.push(h);
        }
    }

    /// Whether any policy produced a hash (for `terminal` handling).
    #[inline]
    pub fn is_set(&self) -> bool {
        self.hash.is_some()
    }

    /// The combined hash, if any.
    #[inline]
    pub fn get(&self) -> Option<u64> {
        self.hash
    }
}

/// Fixed 64-byte formatting buffer; the longest IPv6 text (with embedded IPv4) is 45 bytes.
struct StackBuf {
    buf: [u8; 64],
    len: usize,
}

impl StackBuf {
    fn new() -> Self {
        StackBuf {
            buf: [0; 64],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// Test vectors from Envoy's `test/common/common/hash_test.cc`.
    #[test]
    fn matches_envoy_xxhash_vectors() {
        assert_eq!(hash_str("foo"), 3728699739546630719);
        assert_eq!(hash_str("bar"), 5234164152756840025);
        assert_eq!(hash_str("foo\nbar"), 8917841378505826757);
        assert_eq!(hash_str("lyft"), 4400747396090729504);
        assert_eq!(hash_str(""), 17241709254077376921);
        assert_eq!(hash_bytes(b"foo"), hash_str("foo"));
    }

    /// Envoy's `xxHashWithVector`: `{"foo", "bar"}` → 17745830980996999794 (seed chaining, not
    /// concatenation).
    #[test]
    fn header_values_match_envoy_span_hash() {
        // Envoy hashes the span in the given order in that test; "bar" < "foo" so give them
        // pre-sorted to compare against the raw vector.
        let chained = xxh64(b"bar", xxh64(b"foo", 0));
        assert_eq!(chained, 17745830980996999794);
        // Our helper sorts first, as the header hash method does.
        let mut vals = ["foo", "bar"];
        assert_eq!(
            hash_header_values(&mut vals),
            Some(xxh64(b"foo", xxh64(b"bar", 0)))
        );
        let mut swapped = ["bar", "foo"];
        assert_eq!(
            hash_header_values(&mut swapped),
            hash_header_values(&mut ["foo", "bar"])
        );
        assert_ne!(
            hash_header_values(&mut ["foobar"]),
            hash_header_values(&mut ["foo", "bar"])
        );
        assert_eq!(
            hash_header_values(&mut ["x-user"]),
            Some(hash_str("x-user"))
        );
        assert_eq!(hash_header_values(&mut []), None);
        assert_eq!(hash_header_values(&mut [""]), Some(hash_str("")));
    }

    #[test]
    fn cookie_hash() {
        assert_eq!(
            hash_cookie_value("1234567890"),
            Some(hash_str("1234567890"))
        );
        assert_eq!(hash_cookie_value(""), None);
    }

    #[test]
    fn generated_cookie_is_hex_of_concatenation() {
        let v = generated_cookie_value("10.0.0.1:5555", "10.0.0.2:80");
        assert_eq!(v, format!("{:016x}", hash_str("10.0.0.1:555510.0.0.2:80")));
        assert_eq!(v.len(), 16);
        // Leading zeros are kept (Envoy's Hex::uint64ToHex encodes all 8 bytes).
        assert_eq!(format!("{:016x}", 0xabu64), "00000000000000ab");
    }

    #[test]
    fn source_ip_hashes_address_text_without_port() {
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20));
        assert_eq!(hash_source_ip(v4), hash_str("192.168.1.20"));
        let v6: IpAddr = "2001:db8:0:0:0:0:0:1".parse().unwrap();
        assert_eq!(hash_source_ip(v6), hash_str("2001:db8::1"));
        let longest = IpAddr::V6(Ipv6Addr::new(
            0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
        ));
        assert_eq!(
            hash_source_ip(longest),
            hash_str("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        );
    }

    #[test]
    fn combine_is_rotate_xor() {
        assert_eq!(combine(0, 5), 5);
        assert_eq!(combine(1, 0), 2);
        assert_eq!(combine(1 << 63, 0), 1);
        // Two identical policies do not cancel (plain xor would give 0).
        let h = hash_str("same");
        assert_ne!(combine(h, h), 0);
        // Order matters, as in Envoy.
        let (a, b) = (hash_str("a"), hash_str("b"));
        assert_ne!(combine(a, b), combine(b, a));
    }

    #[test]
    fn accumulator_follows_envoy_generate_hash() {
        let mut acc = HashAccumulator::new();
        assert_eq!(acc.get(), None);
        acc.push_opt(None);
        assert!(!acc.is_set());
        let (a, b, c) = (hash_str("a"), hash_str("b"), hash_str("c"));
        acc.push(a);
        assert_eq!(acc.get(), Some(a));
        acc.push_opt(Some(b));
        acc.push(c);
        // Envoy: old = rotl(hash, 1); hash = old ^ new.
        let want = ((a.rotate_left(1)) ^ b).rotate_left(1) ^ c;
        assert_eq!(acc.get(), Some(want));
    }
}
