//! Virtual-host selection by `:authority`, in Envoy's order: exact domain, then the longest
//! suffix wildcard (`*.foo.com`, `*-bar.foo.com`), then the longest prefix wildcard (`foo.*`),
//! then `*`. Matching is case-insensitive and uses the authority as sent (port included), as
//! Envoy does by default; a domain may itself carry a port (`foo.com:8080`).

use std::borrow::Cow;
use std::collections::HashMap;

/// Index from domain patterns to virtual-host positions.
#[derive(Debug, Default)]
pub struct DomainIndex {
    exact: HashMap<String, usize>,
    /// (suffix without the leading `*`, vhost), longest suffix first.
    suffixes: Vec<(String, usize)>,
    /// (prefix without the trailing `*`, vhost), longest prefix first.
    prefixes: Vec<(String, usize)>,
    default: Option<usize>,
}

impl DomainIndex {
    /// `domains[i]` are the domains of virtual host `i`. Duplicates were rejected by the config
    /// validator; here the first one wins.
    pub fn build<'a>(domains: impl IntoIterator<Item = &'a [String]>) -> Self {
        let mut index = DomainIndex::default();
        for (vhost, list) in domains.into_iter().enumerate() {
            for domain in list {
                let domain = domain.to_ascii_lowercase();
                if domain == "*" {
                    index.default.get_or_insert(vhost);
                } else if let Some(suffix) = domain.strip_prefix('*') {
                    index.suffixes.push((suffix.to_string(), vhost));
                } else if let Some(prefix) = domain.strip_suffix('*') {
                    index.prefixes.push((prefix.to_string(), vhost));
                } else {
                    index.exact.entry(domain).or_insert(vhost);
                }
            }
        }
        // Stable sorts keep configuration order among equal lengths.
        index.suffixes.sort_by_key(|s| std::cmp::Reverse(s.0.len()));
        index.prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        index
    }

    pub fn find(&self, authority: &str) -> Option<usize> {
        // Only `*` (or nothing): no name to compare.
        if self.exact.is_empty() && self.suffixes.is_empty() && self.prefixes.is_empty() {
            return self.default;
        }
        // Lower-cased only when it has capitals: an authority almost never does, and the copy
        // was an allocation per request.
        let host: Cow<'_, str> = if authority.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(authority.to_ascii_lowercase())
        } else {
            Cow::Borrowed(authority)
        };
        if let Some(v) = self.exact.get(host.as_ref()) {
            return Some(*v);
        }
        // A wildcard never matches the empty string: `*.foo.com` does not match `.foo.com`.
        if let Some((_, v)) = self
            .suffixes
            .iter()
            .find(|(s, _)| host.len() > s.len() && host.ends_with(s.as_str()))
        {
            return Some(*v);
        }
        if let Some((_, v)) = self
            .prefixes
            .iter()
            .find(|(p, _)| host.len() > p.len() && host.starts_with(p.as_str()))
        {
            return Some(*v);
        }
        self.default
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(vhosts: &[&[&str]]) -> DomainIndex {
        let owned: Vec<Vec<String>> = vhosts
            .iter()
            .map(|d| d.iter().map(|s| s.to_string()).collect())
            .collect();
        DomainIndex::build(owned.iter().map(|v| v.as_slice()))
    }

    #[test]
    fn envoy_search_order() {
        let idx = index(&[
            &["*"],
            &["www.foo.com"],
            &["*.foo.com"],
            &["*-bar.foo.com"],
            &["foo.*"],
            &["api.foo.com:8080"],
        ]);
        assert_eq!(idx.find("www.foo.com"), Some(1));
        assert_eq!(idx.find("WWW.Foo.com"), Some(1));
        assert_eq!(idx.find("a.foo.com"), Some(2));
        // longest suffix wins
        assert_eq!(idx.find("baz-bar.foo.com"), Some(3));
        assert_eq!(idx.find("foo.org"), Some(4));
        assert_eq!(idx.find("api.foo.com:8080"), Some(5));
        // the port is part of the authority, as in Envoy: neither the exact domain nor the
        // suffix wildcard matches, only `*`
        assert_eq!(idx.find("www.foo.com:8080"), Some(0));
        assert_eq!(idx.find("example.org"), Some(0));
    }

    #[test]
    fn a_lone_star_matches_everything_and_no_domains_match_nothing() {
        assert_eq!(index(&[&["*"]]).find("Any.Host:8080"), Some(0));
        assert_eq!(index(&[&["*"]]).find(""), Some(0));
        assert_eq!(index(&[]).find("foo.com"), None);
    }

    #[test]
    fn wildcards_never_match_empty() {
        let idx = index(&[&["*.foo.com"], &["foo.*"]]);
        assert_eq!(idx.find(".foo.com"), None);
        assert_eq!(idx.find("foo."), None);
    }

    #[test]
    fn no_default_means_no_match() {
        let idx = index(&[&["foo.com"]]);
        assert_eq!(idx.find("bar.com"), None);
        assert_eq!(idx.find("foo.com"), Some(0));
    }
}
