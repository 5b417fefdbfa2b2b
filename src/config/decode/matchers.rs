//! Matchers shared by routes: string matchers, RE2 regexes (checked at load with the `regex`
//! crate, whose syntax is RE2's minus look-around), header and query-parameter matchers.
//! Legacy header-matcher spellings (`exact_match`, `regex_match`, …) are folded into
//! `string_match`.

use super::super::model::{
    HeaderMatchSpec, HeaderMatcher, QueryParameterMatcher, RegexRewrite, StringMatcher,
    StringPattern,
};
use super::scalars;
use super::{Decoder, Field, Message};

const STRING_MATCHER: Message = Message {
    name: "StringMatcher",
    fields: &[
        "exact",
        "prefix",
        "suffix",
        "safe_regex",
        "contains",
        "custom",
        "ignore_case",
    ],
    ignored: &[],
};

const REGEX_MATCHER: Message = Message {
    name: "RegexMatcher",
    fields: &["google_re2", "regex"],
    ignored: &[],
};

const GOOGLE_RE2: Message = Message {
    name: "GoogleRE2",
    fields: &[],
    ignored: &["max_program_size"],
};

const REGEX_MATCH_AND_SUBSTITUTE: Message = Message {
    name: "RegexMatchAndSubstitute",
    fields: &["pattern", "substitution"],
    ignored: &[],
};

const HEADER_MATCHER: Message = Message {
    name: "HeaderMatcher",
    fields: &[
        "name",
        "exact_match",
        "safe_regex_match",
        "regex_match",
        "range_match",
        "present_match",
        "prefix_match",
        "suffix_match",
        "contains_match",
        "string_match",
        "invert_match",
    ],
    ignored: &["treat_missing_header_as_empty"],
};

const INT64_RANGE: Message = Message {
    name: "Int64Range",
    fields: &["start", "end"],
    ignored: &[],
};

const QUERY_PARAMETER_MATCHER: Message = Message {
    name: "QueryParameterMatcher",
    fields: &["name", "string_match", "present_match", "value", "regex"],
    ignored: &[],
};

/// Checks that `pattern` compiles as a full-match RE2 regex; reports the regex error at `f`.
pub fn check_regex(d: &mut Decoder, f: &Field, pattern: &str) -> bool {
    match regex::Regex::new(&format!("^(?:{pattern})$")) {
        Ok(_) => true,
        Err(e) => {
            d.error_at_value(
                f,
                format!("invalid regex `{pattern}`: {}", regex_error_reason(&e)),
                Some("Envoy regexes use RE2 syntax and must match the whole value".into()),
            );
            false
        }
    }
}

/// The one-line reason out of the `regex` crate's multi-line error.
fn regex_error_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or(text.lines().last().unwrap_or("invalid regex"))
        .to_string()
}

/// `RegexMatcher {google_re2, regex}` → the validated pattern.
pub fn regex_matcher(d: &mut Decoder, f: &Field) -> Option<String> {
    let o = d.obj(f, &REGEX_MATCHER)?;
    if let Some(g) = o.get("google_re2") {
        d.obj(&g, &GOOGLE_RE2);
    }
    let Some(r) = o.get("regex") else {
        d.missing(&o, "regex");
        return None;
    };
    let pattern = scalars::string(d, &r)?;
    check_regex(d, &r, &pattern).then_some(pattern)
}

/// A legacy plain-string regex (v2 `regex`, `regex_match`), validated.
pub fn legacy_regex(d: &mut Decoder, f: &Field) -> Option<String> {
    let pattern = scalars::string(d, f)?;
    check_regex(d, f, &pattern).then_some(pattern)
}

pub fn regex_rewrite(d: &mut Decoder, f: &Field) -> Option<RegexRewrite> {
    let o = d.obj(f, &REGEX_MATCH_AND_SUBSTITUTE)?;
    let pattern = match o.get("pattern") {
        Some(p) => regex_matcher(d, &p)?,
        None => {
            d.missing(&o, "pattern");
            return None;
        }
    };
    let substitution = match o.get("substitution") {
        Some(s) => scalars::string(d, &s)?,
        None => String::new(),
    };
    Some(RegexRewrite {
        pattern,
        substitution,
    })
}

pub fn string_matcher(d: &mut Decoder, f: &Field) -> Option<StringMatcher> {
    let o = d.obj(f, &STRING_MATCHER)?;
    let ignore_case = o
        .get("ignore_case")
        .and_then(|i| scalars::bool(d, &i))
        .unwrap_or(false);
    let mut pattern: Option<(&str, Option<StringPattern>)> = None;
    for key in [
        "exact",
        "prefix",
        "suffix",
        "contains",
        "safe_regex",
        "custom",
    ] {
        let Some(v) = o.get(key) else { continue };
        if let Some((first, _)) = &pattern {
            d.oneof_conflict(&v, first);
            continue;
        }
        let p = match key {
            "exact" => scalars::string(d, &v).map(StringPattern::Exact),
            "prefix" => scalars::string(d, &v).map(StringPattern::Prefix),
            "suffix" => scalars::string(d, &v).map(StringPattern::Suffix),
            "contains" => scalars::string(d, &v).map(StringPattern::Contains),
            "safe_regex" => regex_matcher(d, &v).map(StringPattern::Regex),
            _ => {
                d.error_help(
                    &v,
                    "custom string matchers are not supported by meshsim",
                    "use exact, prefix, suffix, contains or safe_regex",
                );
                None
            }
        };
        pattern = Some((key, p));
    }
    match pattern {
        Some((_, Some(p))) => Some(StringMatcher {
            pattern: p,
            ignore_case,
        }),
        Some((_, None)) => None,
        None => {
            d.error_help(
                o.field_ref(),
                format!("`{}` has no pattern", f.name()),
                "set one of exact, prefix, suffix, contains or safe_regex",
            );
            None
        }
    }
}

pub fn header_matchers(d: &mut Decoder, f: &Field) -> Vec<HeaderMatcher> {
    d.seq(f)
        .iter()
        .filter_map(|item| header_matcher(d, item))
        .collect()
}

/// `HeaderMatcher`; with no specifier it is a presence match, as in Envoy.
pub fn header_matcher(d: &mut Decoder, f: &Field) -> Option<HeaderMatcher> {
    let o = d.obj(f, &HEADER_MATCHER)?;
    let name = match o.get("name") {
        Some(n) => scalars::string(d, &n)?.to_ascii_lowercase(),
        None => {
            d.missing(&o, "name");
            return None;
        }
    };
    let invert = o
        .get("invert_match")
        .and_then(|i| scalars::bool(d, &i))
        .unwrap_or(false);
    let mut spec: Option<(&str, Option<HeaderMatchSpec>)> = None;
    for key in [
        "string_match",
        "exact_match",
        "safe_regex_match",
        "regex_match",
        "prefix_match",
        "suffix_match",
        "contains_match",
        "range_match",
        "present_match",
    ] {
        let Some(v) = o.get(key) else { continue };
        if let Some((first, _)) = &spec {
            d.oneof_conflict(&v, first);
            continue;
        }
        let legacy = |d: &mut Decoder, v: &Field| {
            d.deprecated(
                &format!("HeaderMatcher.{key}"),
                v,
                format!("deprecated field `{key}` in HeaderMatcher; loaded as `string_match`"),
                "write `string_match: {exact | prefix | suffix | contains | safe_regex: {regex}}`"
                    .into(),
            );
        };
        let string = |p: StringPattern| {
            HeaderMatchSpec::String(StringMatcher {
                pattern: p,
                ignore_case: false,
            })
        };
        let s = match key {
            "string_match" => string_matcher(d, &v).map(HeaderMatchSpec::String),
            "exact_match" => {
                legacy(d, &v);
                scalars::string(d, &v).map(|s| string(StringPattern::Exact(s)))
            }
            "prefix_match" => {
                legacy(d, &v);
                scalars::string(d, &v).map(|s| string(StringPattern::Prefix(s)))
            }
            "suffix_match" => {
                legacy(d, &v);
                scalars::string(d, &v).map(|s| string(StringPattern::Suffix(s)))
            }
            "contains_match" => {
                legacy(d, &v);
                scalars::string(d, &v).map(|s| string(StringPattern::Contains(s)))
            }
            "safe_regex_match" => {
                legacy(d, &v);
                regex_matcher(d, &v).map(|s| string(StringPattern::Regex(s)))
            }
            "regex_match" => {
                legacy(d, &v);
                legacy_regex(d, &v).map(|s| string(StringPattern::Regex(s)))
            }
            "range_match" => range(d, &v),
            _ => scalars::bool(d, &v).map(HeaderMatchSpec::Present),
        };
        spec = Some((key, s));
    }
    let spec = match spec {
        Some((_, s)) => s?,
        None => HeaderMatchSpec::Present(true),
    };
    Some(HeaderMatcher { name, spec, invert })
}

fn range(d: &mut Decoder, f: &Field) -> Option<HeaderMatchSpec> {
    let o = d.obj(f, &INT64_RANGE)?;
    let start = match o.get("start") {
        Some(s) => scalars::i64(d, &s)?,
        None => 0,
    };
    let end = match o.get("end") {
        Some(e) => scalars::i64(d, &e)?,
        None => 0,
    };
    if end <= start {
        d.error_at_value(
            f,
            format!("`range_match` end ({end}) must be greater than start ({start})"),
            Some("the range is start-inclusive, end-exclusive".into()),
        );
        return None;
    }
    Some(HeaderMatchSpec::Range { start, end })
}

pub fn query_parameter_matchers(d: &mut Decoder, f: &Field) -> Vec<QueryParameterMatcher> {
    d.seq(f)
        .iter()
        .filter_map(|item| query_parameter_matcher(d, item))
        .collect()
}

fn query_parameter_matcher(d: &mut Decoder, f: &Field) -> Option<QueryParameterMatcher> {
    let o = d.obj(f, &QUERY_PARAMETER_MATCHER)?;
    let name = match o.get("name") {
        Some(n) => scalars::string(d, &n)?,
        None => {
            d.missing(&o, "name");
            return None;
        }
    };
    if let Some(s) = o.get("string_match") {
        return Some(QueryParameterMatcher {
            name,
            string_match: Some(string_matcher(d, &s)?),
        });
    }
    if let Some(v) = o.get("value") {
        // v2: `value` with `regex: true` for a regex match.
        d.deprecated(
            "QueryParameterMatcher.value",
            &v,
            "deprecated field `value` in QueryParameterMatcher; loaded as `string_match`".into(),
            "write `string_match: {exact: ...}` (or `safe_regex`)".into(),
        );
        let text = scalars::string(d, &v)?;
        let is_regex = o
            .get("regex")
            .and_then(|r| scalars::bool(d, &r))
            .unwrap_or(false);
        let pattern = if is_regex {
            if !check_regex(d, &v, &text) {
                return None;
            }
            StringPattern::Regex(text)
        } else {
            StringPattern::Exact(text)
        };
        return Some(QueryParameterMatcher {
            name,
            string_match: Some(StringMatcher {
                pattern,
                ignore_case: false,
            }),
        });
    }
    if let Some(p) = o.get("present_match") {
        scalars::bool(d, &p);
    }
    Some(QueryParameterMatcher {
        name,
        string_match: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::super::node::parse;
    use super::super::Mode;
    use super::*;
    use std::path::PathBuf;

    fn run<T>(yaml: &str, f: impl FnOnce(&mut Decoder, &Field) -> T) -> (T, Vec<String>) {
        let doc = parse(yaml).unwrap();
        let (k, v) = &doc.as_map().unwrap()[0];
        let field = Field::root(&doc).child(k, v);
        let mut d = Decoder::new(PathBuf::from("."), Mode::Bootstrap);
        let out = f(&mut d, &field);
        (out, d.finish().into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn legacy_header_matchers_become_string_matchers() {
        let (m, w) = run(
            "h: [{name: X-Env, exact_match: canary}, {name: x-id, regex_match: \"[0-9]+\"}, {name: y}]",
            header_matchers,
        );
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].name, "x-env");
        assert_eq!(
            m[0].spec,
            HeaderMatchSpec::String(StringMatcher {
                pattern: StringPattern::Exact("canary".into()),
                ignore_case: false
            })
        );
        assert_eq!(m[2].spec, HeaderMatchSpec::Present(true));
        assert_eq!(w.len(), 2, "one warning per legacy form: {w:?}");
    }

    #[test]
    fn invalid_regex_shows_the_regex_error() {
        let (m, e) = run("r: {google_re2: {}, regex: \"/api/(v1\"}", regex_matcher);
        assert_eq!(m, None);
        assert_eq!(e, ["invalid regex `/api/(v1`: unclosed group"]);
    }

    #[test]
    fn query_parameters() {
        let (q, _) = run(
            "q: [{name: debug}, {name: v, string_match: {prefix: \"1\"}}]",
            query_parameter_matchers,
        );
        assert_eq!(q[0].string_match, None);
        assert_eq!(
            q[1].string_match.as_ref().unwrap().pattern,
            StringPattern::Prefix("1".into())
        );
    }
}
