//! The `Location` of a route's `redirect` action.

use crate::config::model::{RedirectAction, RedirectPath};

use super::matcher::{full_match_regex, CompiledMatch};

/// Builds the redirect target from the request's scheme, authority, path and query.
pub fn redirect_location(
    r: &RedirectAction,
    matcher: &CompiledMatch,
    scheme: &str,
    authority: &str,
    path: &str,
    query: Option<&str>,
) -> String {
    let new_scheme = r.scheme.as_deref().unwrap_or(scheme);
    let (req_host, req_port) = split_port(authority);
    let host = r.host.as_deref().unwrap_or(req_host);
    let port = match (r.port, req_port) {
        (Some(p), _) => Some(p.to_string()),
        // Changing the scheme drops a port that belonged to the old scheme.
        (None, Some(_)) if new_scheme != scheme => None,
        (None, p) => p.map(str::to_string),
    };
    let new_path = match &r.path {
        RedirectPath::Keep => path.to_string(),
        RedirectPath::Path(p) => p.clone(),
        RedirectPath::PrefixRewrite(prefix) => {
            let cut = matcher.rewritable_prefix_len(path).min(path.len());
            format!("{prefix}{}", &path[cut..])
        }
        RedirectPath::RegexRewrite(rw) => match full_match_regex(&rw.pattern) {
            Ok(re) => re
                .replace_all(path, super::re2_substitution(&rw.substitution).as_str())
                .into_owned(),
            Err(_) => path.to_string(),
        },
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
    use crate::config::model::{PathSpecifier, RouteMatch};

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

    #[test]
    fn https_redirect_drops_the_old_port() {
        let mut r = redirect();
        r.scheme = Some("https".into());
        let m = prefix_matcher("/");
        assert_eq!(
            redirect_location(&r, &m, "http", "example.com:8080", "/a", Some("x=1")),
            "https://example.com/a?x=1"
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
            redirect_location(&r, &m, "http", "old.example.com", "/v1/users", Some("q=1")),
            "http://new.example.com:8443/v2/users"
        );
    }
}
