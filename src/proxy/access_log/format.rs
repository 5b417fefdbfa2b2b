//! Parsing Envoy's substitution format language into a [`Format`].
//!
//! Grammar (Envoy's `commandWithArgsRegex`, `source/common/formatter/substitution_formatter.cc`):
//!
//! ```text
//! %COMMAND%  |  %COMMAND(ARG)%  |  %COMMAND(ARG):LENGTH%  |  %%  (a literal '%')
//! COMMAND = [A-Z0-9_]+       ARG = anything up to the first ')' that is followed by
//!                            an optional ':digits' and a '%' (no newline)
//! ```
//!
//! Everything is validated here, at configuration time, so that rendering on the
//! request path cannot fail.

use super::json;
use super::operator::{Operator, SUPPORTED_OPERATORS};
use super::render;
use super::stream_info::StreamInfo;
use super::time::SUPPORTED_SPECIFIERS;

/// Envoy's default access log format, byte for byte
/// (`SubstitutionFormatUtils::DEFAULT_FORMAT`). Ends with a newline.
pub const ENVOY_DEFAULT_FORMAT: &str = "[%START_TIME%] \"%REQ(:METHOD)% \
     %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% \
     %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \
     \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \
     \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

/// A configuration error in an access log format. Messages name the offending
/// operator and, where useful, list what is supported, because operators read
/// them in a failed config load, not in code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// `%NAME%` where NAME is not an operator we implement.
    #[error("unknown access log operator %{name}%; supported: {list}", list = SUPPORTED_OPERATORS)]
    UnknownOperator {
        /// The command name, without `%` and arguments.
        name: String,
    },
    /// A `%` that no later `%` closes.
    #[error(
        "unterminated access log operator at byte {pos}: {snippet:?} has no closing '%' \
         (write %% for a literal percent sign)"
    )]
    Unterminated {
        /// Byte offset of the opening `%`.
        pos: usize,
        /// The text from the opening `%` (shortened).
        snippet: String,
    },
    /// A `%` followed by something that is not `NAME`, `NAME(ARG)` or `NAME(ARG):LENGTH` and `%`.
    #[error(
        "malformed access log operator at byte {pos}: {snippet:?}; expected %NAME%, %NAME(ARG)% \
         or %NAME(ARG):LENGTH% with NAME made of A-Z, 0-9 and _ (write %% for a literal percent sign)"
    )]
    Malformed {
        /// Byte offset of the opening `%`.
        pos: usize,
        /// The text from the opening `%` (shortened).
        snippet: String,
    },
    /// An argument or `:LENGTH` given to an operator that takes none.
    #[error("access log operator %{name}% does not take parameters or a length")]
    NoArguments {
        /// The command name.
        name: String,
    },
    /// `:LENGTH` on an operator that does not truncate (only REQ, RESP and TRAILER do).
    #[error(
        "access log operator %{name}% does not take a length (:N); only REQ, RESP and TRAILER do"
    )]
    LengthNotAllowed {
        /// The command name.
        name: String,
    },
    /// An operator that needs `(ARG)` was given none.
    #[error("access log operator %{name}% requires a parameter, e.g. %{name}({example})%")]
    MissingArgument {
        /// The command name.
        name: String,
        /// A valid example argument.
        example: &'static str,
    },
    /// The `(ARG)` of an operator is not valid for it.
    #[error("invalid argument in %{name}({arg})%: {reason}")]
    InvalidArgument {
        /// The command name.
        name: String,
        /// The argument as written.
        arg: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A bad `%START_TIME(...)%` format.
    #[error(
        "invalid format in %START_TIME({format})%: {reason}; supported specifiers: {list}",
        list = SUPPORTED_SPECIFIERS
    )]
    InvalidTimeFormat {
        /// The START_TIME argument.
        format: String,
        /// Which specifier is wrong.
        reason: String,
    },
    /// An error inside one value of a `json_format`.
    #[error("json_format field {path}: {source}")]
    InJsonField {
        /// Dotted path of the field, e.g. `upstream.host` or `list[2]`.
        path: String,
        /// The error in that field's format string.
        source: Box<FormatError>,
    },
}

/// One element of a parsed text format: literal text or an operator.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Piece {
    Lit(String),
    Op(Operator),
}

/// A parsed access log format: either a text format string or a `json_format`.
///
/// Parse once at configuration time, then [`render`](Format::render) per request.
#[derive(Debug, Clone, PartialEq)]
pub struct Format {
    body: Body,
}

#[derive(Debug, Clone, PartialEq)]
enum Body {
    Text(Vec<Piece>),
    Json(json::Node),
}

impl Format {
    /// Envoy's default format ([`ENVOY_DEFAULT_FORMAT`]).
    pub fn envoy_default() -> Format {
        Format::parse_text(ENVOY_DEFAULT_FORMAT).expect("Envoy default format parses")
    }

    /// Parses an Envoy format string (`format` / `text_format`). The rendered line is
    /// exactly the string with operators substituted: like Envoy, no newline is
    /// added, so include `\n` at the end if the sink needs one.
    pub fn parse_text(format: &str) -> Result<Format, FormatError> {
        Ok(Format {
            body: Body::Text(parse_pieces(format)?),
        })
    }

    /// Builds a `json_format`. String values are format strings; a value that is
    /// exactly one operator keeps its type (numbers stay numbers, unset values
    /// become `null`, as Envoy's typed JSON), a value mixing text and operators
    /// is a string with `-` for unset parts. Non-string values (numbers, bools,
    /// null, nested objects and arrays) are emitted as given. Keys are emitted
    /// sorted, as Envoy does, so lines are deterministic.
    pub fn json(map: serde_json::Map<String, serde_json::Value>) -> Result<Format, FormatError> {
        Ok(Format {
            body: Body::Json(json::Node::build_object(&map, "")?),
        })
    }

    /// True for a `json_format`.
    pub fn is_json(&self) -> bool {
        matches!(self.body, Body::Json(_))
    }

    /// Renders one log line. Text formats yield exactly the substituted string;
    /// JSON formats yield one compact object followed by `\n`.
    pub fn render(&self, info: &StreamInfo) -> String {
        let mut out = String::with_capacity(256);
        self.render_to(info, &mut out);
        out
    }

    /// Like [`render`](Format::render) but appends to `out`, to reuse a buffer.
    pub fn render_to(&self, info: &StreamInfo, out: &mut String) {
        match &self.body {
            Body::Text(pieces) => render::render_pieces(pieces, info, out),
            Body::Json(node) => {
                node.render(info, out);
                out.push('\n');
            }
        }
    }
}

impl std::str::FromStr for Format {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Format, FormatError> {
        Format::parse_text(s)
    }
}

/// Parses a format string into literal and operator pieces.
pub(super) fn parse_pieces(format: &str) -> Result<Vec<Piece>, FormatError> {
    let bytes = format.as_bytes();
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let next = format[pos..].find('%').map_or(bytes.len(), |i| pos + i);
        lit.push_str(&format[pos..next]);
        pos = next;
        if pos >= bytes.len() {
            break;
        }
        if bytes.get(pos + 1) == Some(&b'%') {
            // Envoy's escape: "%%" is a literal '%'.
            lit.push('%');
            pos += 2;
            continue;
        }
        let cmd = scan_command(format, pos)?;
        if !lit.is_empty() {
            pieces.push(Piece::Lit(std::mem::take(&mut lit)));
        }
        pieces.push(Piece::Op(Operator::build(cmd.name, cmd.arg, cmd.max_len)?));
        pos = cmd.end;
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Ok(pieces)
}

struct Command<'a> {
    name: &'a str,
    arg: Option<&'a str>,
    max_len: Option<usize>,
    /// Byte offset just past the closing `%`.
    end: usize,
}

/// Matches `^%([A-Z0-9_]+)(?:\((.*?)\))?(?::([0-9]+))?%` at `pos`, like Envoy's RE2
/// (lazy argument, `.` not matching a newline).
fn scan_command(format: &str, pos: usize) -> Result<Command<'_>, FormatError> {
    let b = format.as_bytes();
    let mut i = pos + 1;
    while i < b.len() && (b[i].is_ascii_uppercase() || b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let name = &format[pos + 1..i];
    if !name.is_empty() {
        if b.get(i) == Some(&b'(') {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'\n' {
                if b[j] == b')' {
                    if let Some((max_len, end)) = scan_tail(format, j + 1) {
                        return Ok(Command {
                            name,
                            arg: Some(&format[i + 1..j]),
                            max_len,
                            end,
                        });
                    }
                }
                j += 1;
            }
        } else if let Some((max_len, end)) = scan_tail(format, i) {
            return Ok(Command {
                name,
                arg: None,
                max_len,
                end,
            });
        }
    }
    let snippet = shorten(&format[pos..]);
    if format[pos + 1..].contains('%') {
        Err(FormatError::Malformed { pos, snippet })
    } else {
        Err(FormatError::Unterminated { pos, snippet })
    }
}

/// Matches `(?::([0-9]+))?%` at `k`; returns the length and the offset past `%`.
fn scan_tail(format: &str, k: usize) -> Option<(Option<usize>, usize)> {
    let b = format.as_bytes();
    if b.get(k) == Some(&b':') {
        let mut m = k + 1;
        while m < b.len() && b[m].is_ascii_digit() {
            m += 1;
        }
        if m > k + 1 && b.get(m) == Some(&b'%') {
            // A length too large for usize cannot match, like Envoy's RE2 conversion.
            return format[k + 1..m].parse().ok().map(|n| (Some(n), m + 1));
        }
    }
    (b.get(k) == Some(&b'%')).then_some((None, k + 1))
}

/// At most 40 characters of `s`, for error messages.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> FormatError {
        Format::parse_text(s).unwrap_err()
    }

    #[test]
    fn default_format_text_is_envoys() {
        assert_eq!(
            ENVOY_DEFAULT_FORMAT,
            "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" \
             %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% \
             %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \
             \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n"
        );
        assert!(!Format::envoy_default().is_json());
    }

    #[test]
    fn literal_only_and_percent_escape() {
        let pieces = parse_pieces("100%% sure %%%PROTOCOL%%%").unwrap();
        assert_eq!(
            pieces,
            vec![
                Piece::Lit("100% sure %".into()),
                Piece::Op(Operator::Protocol),
                Piece::Lit("%".into()),
            ]
        );
        assert!(parse_pieces("").unwrap().is_empty());
    }

    #[test]
    fn unknown_operator_names_it_and_lists_supported() {
        let e = err("x %FOO% y");
        assert_eq!(e, FormatError::UnknownOperator { name: "FOO".into() });
        let msg = e.to_string();
        assert!(
            msg.starts_with("unknown access log operator %FOO%; supported: START_TIME, "),
            "{msg}"
        );
        assert!(msg.contains("REQ(X?Y):Z"), "{msg}");
        assert!(msg.contains("UPSTREAM_HOST"), "{msg}");
        // Unknown with arguments still names just the command.
        assert_eq!(
            err("%DYNAMIC_METADATA(a:b)%"),
            FormatError::UnknownOperator {
                name: "DYNAMIC_METADATA".into()
            }
        );
    }

    #[test]
    fn unterminated_percent() {
        for (s, pos) in [
            ("abc %PROTOCOL", 4),
            ("%", 0),
            ("%REQ(x-a", 0),
            ("ok %REQ(a):12", 3),
        ] {
            match err(s) {
                FormatError::Unterminated { pos: p, .. } => assert_eq!(p, pos, "{s}"),
                other => panic!("{s}: {other:?}"),
            }
        }
        let msg = err("abc %PROTOCOL").to_string();
        assert!(
            msg.contains("unterminated") && msg.contains("%PROTOCOL"),
            "{msg}"
        );
    }

    #[test]
    fn malformed_percent() {
        for s in [
            "% PROTOCOL%",
            "%protocol%",
            "%REQ(a)b%",
            "%REQ(a):%",
            "%REQ(a\n)%",
            "50% of %BYTES_SENT%",
        ] {
            assert!(
                matches!(err(s), FormatError::Malformed { .. }),
                "{s}: {:?}",
                err(s)
            );
        }
    }

    #[test]
    fn argument_scanning_is_lazy_like_envoys_regex() {
        // The first ')' followed by '%' or ':N%' closes the argument.
        let p = parse_pieces("%START_TIME(%H)%)").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1], Piece::Lit(")".into()));
        // A ')' inside the argument that is not followed by '%' is part of it.
        let p = parse_pieces("%START_TIME((%H) x)%").unwrap();
        assert_eq!(p.len(), 1);
        // Length parsing.
        let p = parse_pieces("%REQ(a?b):10%").unwrap();
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn argument_rules() {
        assert_eq!(
            err("%PROTOCOL(x)%"),
            FormatError::NoArguments {
                name: "PROTOCOL".into()
            }
        );
        assert_eq!(
            err("%BYTES_SENT:3%"),
            FormatError::NoArguments {
                name: "BYTES_SENT".into()
            }
        );
        assert_eq!(
            err("%START_TIME:3%"),
            FormatError::LengthNotAllowed {
                name: "START_TIME".into()
            }
        );
        assert!(matches!(err("%REQ%"), FormatError::MissingArgument { .. }));
        assert!(matches!(
            err("%REQ()%"),
            FormatError::MissingArgument { .. }
        ));
        assert!(err("%REQ%").to_string().contains("%REQ(x-request-id)%"));
        let e = err("%REQ(a?b?c)%");
        assert!(e.to_string().contains("more than one alternative"), "{e}");
        let e = err("%REQ(bad header)%");
        assert!(e.to_string().contains("not a valid header name"), "{e}");
        let e = err("%RESP(:path)%");
        assert!(e.to_string().contains(":path"), "{e}");
        let e = err("%TRAILER(:status)%");
        assert!(matches!(e, FormatError::InvalidArgument { .. }), "{e}");
        let e = err("%RESPONSE_CODE_DETAILS(NOPE)%");
        assert!(e.to_string().contains("ALLOW_WHITESPACES"), "{e}");
        let e = err("%START_TIME(%Y %Q)%");
        assert!(matches!(e, FormatError::InvalidTimeFormat { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("%Q") && msg.contains("supported specifiers"),
            "{msg}"
        );
    }
}
