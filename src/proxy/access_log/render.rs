//! Rendering parsed text formats, and the typed value every operator yields.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::format::Piece;
use super::stream_info::StreamInfo;

/// What an operator evaluates to. The type matters only for JSON: a value that
/// is exactly one operator is emitted as a JSON string, number or `null`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value<'a> {
    Str(Cow<'a, str>),
    Num(u64),
    /// Unset: `-` in text, `null` in typed JSON.
    Null,
}

/// Envoy's `DefaultUnspecifiedValueString`.
pub(super) const UNSET: &str = "-";

impl Value<'_> {
    /// Appends the text form (unset → `-`).
    pub(super) fn push_text(&self, out: &mut String) {
        match self {
            Value::Str(s) => out.push_str(s),
            Value::Num(n) => {
                let _ = write!(out, "{n}");
            }
            Value::Null => out.push_str(UNSET),
        }
    }
}

/// Appends the substituted pieces to `out`.
pub(super) fn render_pieces(pieces: &[Piece], info: &StreamInfo, out: &mut String) {
    for piece in pieces {
        match piece {
            Piece::Lit(s) => out.push_str(s),
            Piece::Op(op) => op.eval(info).push_text(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms() {
        let mut s = String::new();
        Value::Str("a".into()).push_text(&mut s);
        Value::Num(42).push_text(&mut s);
        Value::Null.push_text(&mut s);
        Value::Str("".into()).push_text(&mut s);
        assert_eq!(s, "a42-");
    }
}
