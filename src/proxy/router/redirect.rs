//! The `Location` of a route's `redirect` action.

use crate::config::model::RedirectPath;

use super::matcher::CompiledMatch;
use super::RedirectEntry;

/// Builds the redirect target from the request's scheme, authority, path and query, as Envoy's
/// `RouteEntryImplBase::newUri` does.
pub fn redirect_location(
    entry: &RedirectEntry,
    matcher: &CompiledMatch,
    scheme: &str,
    authority: &str,
    path: &str,
    query: Option<&str>,
) -> String {
    let r = &entry.action;
    let new_scheme = r.scheme.as_deref().unwrap_or(scheme);
    let (req_host, req_port) = split_port(authority);
    let port = match (r.port, &r.host) {
        (Some(p), _) => Some(p.to_string()),
        // A new host without a port_redirect carries no port.
        (None, Some(_)) => None,
        // Changing the scheme drops the old scheme's default port only.
        (None, None) if new_scheme != scheme => req_port
            .filter(|p| !matches!((scheme, *p), ("http", "80") | ("https", "443")))
            .map(str::to_string),
        (None, None) => req_port.map(str::to_string),
    };
    let host = r.host.as_deref().unwrap_or(req_host);
    let new_path = match (&r.path, &entry.regex) {
        (RedirectPath::Path(p), _) => p.clone(),
        (RedirectPath::PrefixRewrite(prefix), _) => {
            let cut = matcher.rewritable_prefix_len(path).min(path.len());
            format!("{prefix}{}", &path[cut..])
        }
        (RedirectPath::RegexRewrite(_), Some((re, sub))) => {
            re.replace_all(path, sub.as_str()).into_owned()
        }
        _ => path.to_string(),
    };
    // A configured path_redirect may carry its own query, which replaces the request's.
    let query = if r.strip_query || new_path.contains('?') {
        None
    } else {
        query
    };
    let mut location = format!("{new_scheme}://{host}");
    if let Some(p) = port {
        location.push(':');
        location.push_str(&p);
    }
    location.push_str(&new_path);
    if let Some(q) = query {
        location.push('?');
        location.push_str(q);
    }
    location
}

fn split_port(authority: &str) -> (&str, Option<&str>) {
    match authority.rsplit_once(':') {
        Some((h, _)) if !h.ends_with(']') && h.contains(':') => (authority, None),
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty() => (h, Some(p)),
        _ => (authority, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{PathSpecifier, RedirectAction, RouteMatch};

    fn prefix_matcher(p: &str) -> CompiledMatch {
        CompiledMatch::compile(&RouteMatch {
            path: PathSpecifier::Prefix(p.into()),
            case_sensitive: true,
            headers: vec![],
            query_parameters: vec![],
            grpc: false,
        })
        .unwrap()
    }

    fn redirect() -> RedirectAction {
        RedirectAction {
            scheme: None,
            host: None,
            port: None,
            path: RedirectPath::Keep,
            response_code: 301,
            strip_query: false,
        }
    }

    fn entry(r: RedirectAction) -> RedirectEntry {
        RedirectEntry::compile(&r).unwrap()
    }

    #[test]
    fn https_redirect_drops_only_the_default_port() {
        let mut r = redirect();
        r.scheme = Some("https".into());
        let m = prefix_matcher("/");
        let e = entry(r);
        assert_eq!(
            redirect_location(&e, &m, "http", "example.com:80", "/a", Some("x=1")),
            "https://example.com/a?x=1"
        );
        assert_eq!(
            redirect_location(&e, &m, "http", "example.com:8080", "/a", None),
            "https://example.com:8080/a"
        );
    }

    #[test]
    fn host_redirect_without_port_redirect_drops_the_port_and_regex_rewrites_globally() {
        let mut r = redirect();
        r.host = Some("new.example.com".into());
        r.path = RedirectPath::RegexRewrite(crate::config::model::RegexRewrite {
            pattern: "o".into(),
            substitution: "0".into(),
        });
        let m = prefix_matcher("/");
        assert_eq!(
            redirect_location(
                &entry(r),
                &m,
                "http",
                "old.example.com:8080",
                "/foo/boo",
                None
            ),
            "http://new.example.com/f00/b00"
        );
    }

    #[test]
    fn host_port_prefix_and_strip_query() {
        let mut r = redirect();
        r.host = Some("new.example.com".into());
        r.port = Some(8443);
        r.path = RedirectPath::PrefixRewrite("/v2".into());
        r.strip_query = true;
        let m = prefix_matcher("/v1");
        assert_eq!(
            redirect_location(
                &entry(r),
                &m,
                "http",
                "old.example.com",
                "/v1/users",
                Some("q=1")
            ),
            "http://new.example.com:8443/v2/users"
        );
    }
}
