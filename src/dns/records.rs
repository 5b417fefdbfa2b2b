//! The name → addresses table the embedded [`DnsServer`](super::DnsServer) answers from.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};

use hickory_proto::rr::Name;

/// A shared, updatable table of service aliases.
///
/// Cloning gives another handle to the *same* table: meshsim keeps one handle
/// to update as replicas start and stop, the server keeps another to answer
/// from. Every query reads the table afresh, so an update is visible to the
/// very next query; there is no zone serial and no server-side caching.
///
/// Names are matched case-insensitively and with or without the trailing dot
/// (`Web.Local.` and `web.local` are the same entry), because DNS names are
/// case-insensitive and clients send fully-qualified names.
///
/// A plain `RwLock` is enough: this is a cold path (a handful of queries per
/// refresh interval) and the critical sections are a hash lookup or insert.
#[derive(Clone, Default)]
pub struct Records {
    table: Arc<RwLock<HashMap<String, Vec<IpAddr>>>>,
}

impl Records {
    /// An empty table: every query gets NXDOMAIN until names are [`set`](Self::set).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets all addresses of `name`, replacing the previous ones.
    ///
    /// Addresses are sorted and de-duplicated: an RRset must not hold the same
    /// record twice (RFC 2181 §5), and a stable order keeps answers and
    /// [`snapshot`](Self::snapshot)s comparable. An empty list keeps the name
    /// *existing* (queries get NOERROR with no answer), which is the honest
    /// answer for a service whose replicas are all down; use
    /// [`remove`](Self::remove) to make it NXDOMAIN.
    pub fn set(&self, name: &str, mut addrs: Vec<IpAddr>) {
        addrs.sort_unstable();
        addrs.dedup();
        let key = normalize(name);
        tracing::debug!(name = %key, ?addrs, "dns record set");
        self.write().insert(key, addrs);
    }

    /// Removes `name`; later queries for it get NXDOMAIN.
    pub fn remove(&self, name: &str) {
        let key = normalize(name);
        tracing::debug!(name = %key, "dns record removed");
        self.write().remove(&key);
    }

    /// The addresses of `name` (empty when unknown).
    pub fn get(&self, name: &str) -> Vec<IpAddr> {
        self.read()
            .get(&normalize(name))
            .cloned()
            .unwrap_or_default()
    }

    /// A copy of the table, sorted by (normalised) name, for logs and tests.
    pub fn snapshot(&self) -> Vec<(String, Vec<IpAddr>)> {
        let mut entries: Vec<_> = self
            .read()
            .iter()
            .map(|(name, addrs)| (name.clone(), addrs.clone()))
            .collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        entries
    }

    /// The addresses of a queried name, `None` if the name is unknown.
    pub(super) fn lookup(&self, name: &Name) -> Option<Vec<IpAddr>> {
        let key = key_of(name);
        self.read().get(&key).cloned()
    }

    // A panic while holding the lock cannot leave the map half-updated (every
    // critical section is a single insert/remove/clone), so a poisoned lock is
    // still consistent: recover instead of taking the DNS server down with it.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Vec<IpAddr>>> {
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Vec<IpAddr>>> {
        self.table.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.snapshot()).finish()
    }
}

/// The table key for a name given by meshsim.
///
/// Going through hickory's `Name` (parsed exactly as the resolver parses host
/// names) gives the spelling a query will have on the wire (IDNA to punycode,
/// escapes), so `set("bücher", ..)` matches a query for `xn--bcher-kva.` and
/// `set("project_web_1", ..)` keeps its underscores. A string hickory cannot parse can never arrive in a
/// query; it is stored lower-cased so `snapshot` still shows it.
fn normalize(name: &str) -> String {
    let trimmed = name.trim();
    match super::resolver::parse_name(trimmed) {
        Ok(parsed) => key_of(&parsed),
        Err(_) => trimmed.trim_end_matches('.').to_ascii_lowercase(),
    }
}

fn key_of(name: &Name) -> String {
    let mut ascii = name.to_lowercase().to_ascii();
    if ascii.ends_with('.') {
        ascii.pop();
    }
    ascii
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn names_are_case_and_trailing_dot_insensitive() {
        let records = Records::new();
        records.set("Web.Local.", vec![ip("127.0.0.2")]);
        for query in ["web.local.", "WEB.LOCAL.", "web.local", "wEb.LoCaL"] {
            let name = Name::from_str(query).unwrap();
            assert_eq!(
                records.lookup(&name),
                Some(vec![ip("127.0.0.2")]),
                "{query}"
            );
        }
        assert_eq!(
            records.snapshot(),
            vec![("web.local".to_string(), vec![ip("127.0.0.2")])]
        );
        records.remove("WEB.local.");
        assert!(records.snapshot().is_empty());
    }

    #[test]
    fn set_sorts_and_dedups_and_empty_set_keeps_the_name() {
        let records = Records::new();
        records.set(
            "api",
            vec![ip("::1"), ip("127.0.0.3"), ip("127.0.0.2"), ip("127.0.0.3")],
        );
        assert_eq!(
            records.lookup(&Name::from_str("api.").unwrap()),
            Some(vec![ip("127.0.0.2"), ip("127.0.0.3"), ip("::1")])
        );
        records.set("api", vec![]);
        assert_eq!(
            records.lookup(&Name::from_str("api.").unwrap()),
            Some(vec![])
        );
        assert_eq!(records.lookup(&Name::from_str("other.").unwrap()), None);
    }

    #[test]
    fn clones_share_the_table() {
        let a = Records::new();
        let b = a.clone();
        a.set("x", vec![ip("127.0.0.9")]);
        assert_eq!(b.snapshot().len(), 1);
    }

    #[test]
    fn idn_names_match_their_wire_form() {
        let records = Records::new();
        records.set("bücher.local", vec![ip("127.0.0.4")]);
        let wire = Name::from_ascii("xn--bcher-kva.local.").unwrap();
        assert_eq!(records.lookup(&wire), Some(vec![ip("127.0.0.4")]));
    }
}
