//! Route matching, compiled once per route table: path (prefix, exact, regex,
//! path-separated prefix, with `case_sensitive`), header matchers, query parameters and `grpc`.

use http::HeaderMap;
use regex::Regex;

use crate::config::model::{
    HeaderMatchSpec, HeaderMatcher, PathSpecifier, QueryParameterMatcher, RouteMatch,
    StringMatcher, StringPattern,
};

/// What a matcher looks at. Pseudo-headers are passed explicitly because HTTP/1 requests do not
/// carry them in the header map.
pub struct RequestView<'a> {
    pub method: &'a str,
    /// Path without the query string.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub authority: &'a str,
    pub scheme: &'a str,
    pub headers: &'a HeaderMap,
}

impl RequestView<'_> {
    /// A header's value as Envoy sees it: multiple values joined with `,`.
    fn header(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        match name {
            ":method" => Some(self.method.into()),
            ":path" => Some(match self.query {
                Some(q) => format!("{}?{}", self.path, q).into(),
                None => self.path.into(),
            }),
            ":authority" | "host" => Some(self.authority.into()),
            ":scheme" => Some(self.scheme.into()),
            _ => {
                let mut values = self.headers.get_all(name).iter();
                let first = values.next()?;
                let first = String::from_utf8_lossy(first.as_bytes());
                match values.next() {
                    None => Some(first),
                    Some(second) => {
                        let mut joined = first.into_owned();
                        joined.push(',');
                        joined.push_str(&String::from_utf8_lossy(second.as_bytes()));
                        for more in values {
                            joined.push(',');
                            joined.push_str(&String::from_utf8_lossy(more.as_bytes()));
                        }
                        Some(joined.into())
                    }
                }
            }
        }
    }
}

#[derive(Debug)]
pub struct CompiledMatch {
    path: PathMatch,
    headers: Vec<CompiledHeaderMatcher>,
    query: Vec<CompiledQueryMatcher>,
    grpc: bool,
}

#[derive(Debug)]
enum PathMatch {
    Prefix {
        prefix: String,
        case_sensitive: bool,
    },
    Exact {
        path: String,
        case_sensitive: bool,
    },
    Regex(Regex),
    Separated {
        prefix: String,
        case_sensitive: bool,
    },
}

/// A `HeaderMatcher`, compiled (routes and the fault / health check filters use it).
#[derive(Debug)]
pub struct CompiledHeaderMatcher {
    name: String,
    spec: CompiledHeaderSpec,
    invert: bool,
}

#[derive(Debug)]
enum CompiledHeaderSpec {
    Present(bool),
    Range { start: i64, end: i64 },
    String(CompiledString),
}

#[derive(Debug)]
struct CompiledQueryMatcher {
    name: String,
    matcher: Option<CompiledString>,
}

/// A `StringMatcher` ready to evaluate. Case-insensitive patterns are lower-cased once here.
#[derive(Debug)]
pub struct CompiledString {
    pattern: CompiledPattern,
    ignore_case: bool,
}

#[derive(Debug)]
enum CompiledPattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(Regex),
}

/// A regex from the config that does not compile. The validator already reported these with a
/// location; this is the runtime's safety net.
#[derive(Debug, thiserror::Error)]
#[error("invalid regex `{pattern}`: {source}")]
pub struct BadRegex {
    pub pattern: String,
    #[source]
    pub source: regex::Error,
}

/// RE2 semantics: the whole input must match.
pub fn full_match_regex(pattern: &str) -> Result<Regex, BadRegex> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|source| BadRegex {
        pattern: pattern.to_string(),
        source,
    })
}

impl CompiledString {
    pub fn compile(m: &StringMatcher) -> Result<Self, BadRegex> {
        let fold = |s: &str| {
            if m.ignore_case {
                s.to_lowercase()
            } else {
                s.to_string()
            }
        };
        let pattern = match &m.pattern {
            StringPattern::Exact(s) => CompiledPattern::Exact(fold(s)),
            StringPattern::Prefix(s) => CompiledPattern::Prefix(fold(s)),
            StringPattern::Suffix(s) => CompiledPattern::Suffix(fold(s)),
            StringPattern::Contains(s) => CompiledPattern::Contains(fold(s)),
            StringPattern::Regex(r) => CompiledPattern::Regex(full_match_regex(r)?),
        };
        Ok(CompiledString {
            pattern,
            ignore_case: m.ignore_case,
        })
    }

    pub fn matches(&self, value: &str) -> bool {
        let folded;
        let value = if self.ignore_case && !matches!(self.pattern, CompiledPattern::Regex(_)) {
            folded = value.to_lowercase();
            folded.as_str()
        } else {
            value
        };
        match &self.pattern {
            CompiledPattern::Exact(s) => value == s,
            CompiledPattern::Prefix(s) => value.starts_with(s.as_str()),
            CompiledPattern::Suffix(s) => value.ends_with(s.as_str()),
            CompiledPattern::Contains(s) => value.contains(s.as_str()),
            CompiledPattern::Regex(r) => r.is_match(value),
        }
    }
}

impl CompiledMatch {
    pub fn compile(m: &RouteMatch) -> Result<Self, BadRegex> {
        let case_sensitive = m.case_sensitive;
        let fold = |s: &str| {
            if case_sensitive {
                s.to_string()
            } else {
                s.to_lowercase()
            }
        };
        let path = match &m.path {
            PathSpecifier::Prefix(p) => PathMatch::Prefix {
                prefix: fold(p),
                case_sensitive,
            },
            PathSpecifier::Path(p) => PathMatch::Exact {
                path: fold(p),
                case_sensitive,
            },
            PathSpecifier::SafeRegex(r) => PathMatch::Regex(full_match_regex(r)?),
            PathSpecifier::PathSeparatedPrefix(p) => PathMatch::Separated {
                prefix: fold(p),
                case_sensitive,
            },
        };
        Ok(CompiledMatch {
            path,
            headers: m
                .headers
                .iter()
                .map(compile_header)
                .collect::<Result<_, _>>()?,
            query: m
                .query_parameters
                .iter()
                .map(compile_query)
                .collect::<Result<_, _>>()?,
            grpc: m.grpc,
        })
    }

    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        self.path_matches(req.path)
            && (!self.grpc || is_grpc(req.headers))
            && self.headers.iter().all(|h| h.matches(req))
            && self.query.iter().all(|q| q.matches(req.query))
    }

    fn path_matches(&self, path: &str) -> bool {
        match &self.path {
            PathMatch::Prefix {
                prefix,
                case_sensitive,
            } => starts_with(path, prefix, *case_sensitive),
            PathMatch::Exact {
                path: exact,
                case_sensitive,
            } => {
                if *case_sensitive {
                    path == exact
                } else {
                    path.eq_ignore_ascii_case(exact)
                }
            }
            PathMatch::Regex(r) => r.is_match(path),
            PathMatch::Separated {
                prefix,
                case_sensitive,
            } => {
                starts_with(path, prefix, *case_sensitive)
                    && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/'))
            }
        }
    }

    /// The part of the path a `prefix_rewrite` replaces: the prefix for prefix matches, the whole
    /// path otherwise.
    pub fn rewritable_prefix_len(&self, path: &str) -> usize {
        match &self.path {
            PathMatch::Prefix { prefix, .. } | PathMatch::Separated { prefix, .. } => prefix.len(),
            _ => path.len(),
        }
    }
}

fn starts_with(path: &str, prefix: &str, case_sensitive: bool) -> bool {
    if case_sensitive {
        path.starts_with(prefix)
    } else {
        path.len() >= prefix.len()
            && path.is_char_boundary(prefix.len())
            && path[..prefix.len()].eq_ignore_ascii_case(prefix)
    }
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

pub fn compile_header(h: &HeaderMatcher) -> Result<CompiledHeaderMatcher, BadRegex> {
    Ok(CompiledHeaderMatcher {
        name: h.name.to_ascii_lowercase(),
        spec: match &h.spec {
            HeaderMatchSpec::Present(p) => CompiledHeaderSpec::Present(*p),
            HeaderMatchSpec::Range { start, end } => CompiledHeaderSpec::Range {
                start: *start,
                end: *end,
            },
            HeaderMatchSpec::String(s) => CompiledHeaderSpec::String(CompiledString::compile(s)?),
        },
        invert: h.invert,
    })
}

fn compile_query(q: &QueryParameterMatcher) -> Result<CompiledQueryMatcher, BadRegex> {
    Ok(CompiledQueryMatcher {
        name: q.name.clone(),
        matcher: q
            .string_match
            .as_ref()
            .map(CompiledString::compile)
            .transpose()?,
    })
}

impl CompiledHeaderMatcher {
    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        let value = req.header(&self.name);
        let matched = match (&self.spec, value) {
            (CompiledHeaderSpec::Present(want), v) => v.is_some() == *want,
            (_, None) => {
                // Envoy: an absent header never matches a value matcher, even when inverted.
                return false;
            }
            (CompiledHeaderSpec::Range { start, end }, Some(v)) => v
                .trim()
                .parse::<i64>()
                .is_ok_and(|n| n >= *start && n < *end),
            (CompiledHeaderSpec::String(s), Some(v)) => s.matches(&v),
        };
        matched != self.invert
    }
}

impl CompiledQueryMatcher {
    fn matches(&self, query: Option<&str>) -> bool {
        let value = query.and_then(|q| {
            q.split('&').find_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (k == self.name).then_some(v)
            })
        });
        match (&self.matcher, value) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(m), Some(v)) => m.matches(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn route_match(path: PathSpecifier) -> RouteMatch {
        RouteMatch {
            path,
            case_sensitive: true,
            headers: vec![],
            query_parameters: vec![],
            grpc: false,
        }
    }

    fn view<'a>(path: &'a str, query: Option<&'a str>, headers: &'a HeaderMap) -> RequestView<'a> {
        RequestView {
            method: "GET",
            path,
            query,
            authority: "example.com",
            scheme: "http",
            headers,
        }
    }

    fn string(pattern: StringPattern, ignore_case: bool) -> StringMatcher {
        StringMatcher {
            pattern,
            ignore_case,
        }
    }

    #[test]
    fn path_kinds_and_case_sensitivity() {
        let h = HeaderMap::new();
        let prefix =
            CompiledMatch::compile(&route_match(PathSpecifier::Prefix("/service/1".into())))
                .unwrap();
        assert!(prefix.matches(&view("/service/1", None, &h)));
        assert!(prefix.matches(&view("/service/10", None, &h)));
        assert!(!prefix.matches(&view("/Service/1", None, &h)));

        let mut insensitive = route_match(PathSpecifier::Prefix("/Service".into()));
        insensitive.case_sensitive = false;
        let insensitive = CompiledMatch::compile(&insensitive).unwrap();
        assert!(insensitive.matches(&view("/sERVICE/x", None, &h)));

        let exact = CompiledMatch::compile(&route_match(PathSpecifier::Path("/a".into()))).unwrap();
        assert!(exact.matches(&view("/a", Some("x=1"), &h)));
        assert!(!exact.matches(&view("/a/", None, &h)));

        let regex =
            CompiledMatch::compile(&route_match(PathSpecifier::SafeRegex("/b/[0-9]+".into())))
                .unwrap();
        assert!(regex.matches(&view("/b/42", None, &h)));
        assert!(
            !regex.matches(&view("/b/42/x", None, &h)),
            "regex must match the whole path"
        );

        let sep = CompiledMatch::compile(&route_match(PathSpecifier::PathSeparatedPrefix(
            "/api".into(),
        )))
        .unwrap();
        assert!(sep.matches(&view("/api", None, &h)));
        assert!(sep.matches(&view("/api/x", None, &h)));
        assert!(!sep.matches(&view("/apix", None, &h)));
    }

    #[test]
    fn header_matchers_including_invert_range_and_pseudo_headers() {
        let mut m = route_match(PathSpecifier::Prefix("/".into()));
        m.headers = vec![
            HeaderMatcher {
                name: "x-version".into(),
                spec: HeaderMatchSpec::String(string(StringPattern::Exact("v2".into()), false)),
                invert: false,
            },
            HeaderMatcher {
                name: "x-shard".into(),
                spec: HeaderMatchSpec::Range { start: 10, end: 20 },
                invert: false,
            },
            HeaderMatcher {
                name: "x-debug".into(),
                spec: HeaderMatchSpec::Present(true),
                invert: true,
            },
            HeaderMatcher {
                name: ":method".into(),
                spec: HeaderMatchSpec::String(string(StringPattern::Exact("get".into()), true)),
                invert: false,
            },
        ];
        let m = CompiledMatch::compile(&m).unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-version", HeaderValue::from_static("v2"));
        h.insert("x-shard", HeaderValue::from_static("15"));
        assert!(m.matches(&view("/", None, &h)));
        h.insert("x-shard", HeaderValue::from_static("20"));
        assert!(!m.matches(&view("/", None, &h)), "range end is exclusive");
        h.insert("x-shard", HeaderValue::from_static("10"));
        h.insert("x-debug", HeaderValue::from_static("1"));
        assert!(!m.matches(&view("/", None, &h)), "inverted presence");
    }

    #[test]
    fn string_matchers() {
        let cases = [
            (StringPattern::Prefix("ab".into()), "abc", true),
            (StringPattern::Suffix("bc".into()), "abc", true),
            (StringPattern::Contains("b".into()), "abc", true),
            (StringPattern::Regex("a.c".into()), "abc", true),
            (StringPattern::Regex("a.".into()), "abc", false),
        ];
        for (pattern, value, expected) in cases {
            let m = CompiledString::compile(&string(pattern.clone(), false)).unwrap();
            assert_eq!(m.matches(value), expected, "{pattern:?} on {value}");
        }
        let ci =
            CompiledString::compile(&string(StringPattern::Exact("ABC".into()), true)).unwrap();
        assert!(ci.matches("abc"));
    }

    #[test]
    fn query_parameters_and_grpc() {
        let mut m = route_match(PathSpecifier::Prefix("/".into()));
        m.query_parameters = vec![
            QueryParameterMatcher {
                name: "debug".into(),
                string_match: None,
            },
            QueryParameterMatcher {
                name: "v".into(),
                string_match: Some(string(StringPattern::Exact("2".into()), false)),
            },
        ];
        m.grpc = true;
        let m = CompiledMatch::compile(&m).unwrap();
        let mut h = HeaderMap::new();
        assert!(!m.matches(&view("/", Some("debug&v=2"), &h)), "not grpc");
        h.insert(
            "content-type",
            HeaderValue::from_static("application/grpc+proto"),
        );
        assert!(m.matches(&view("/", Some("debug&v=2"), &h)));
        assert!(!m.matches(&view("/", Some("debug&v=3"), &h)));
        assert!(!m.matches(&view("/", Some("v=2"), &h)));
    }
}
