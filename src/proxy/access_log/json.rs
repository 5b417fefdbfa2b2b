//! `json_format`: a JSON template whose string leaves are format strings.
//!
//! Mirrors modern Envoy's `JsonFormatterImpl` (`substitution_formatter.cc`):
//! * object keys are emitted sorted, so output does not depend on map order
//!   (and on whether serde_json's `preserve_order` feature is on);
//! * a string without `%` is a constant, escaped once at build time;
//! * a string that parses to exactly one piece keeps that piece's type:
//!   `"%DURATION%"` → `123` or `null`, `"%REQ(x)%"` → `"v"` or `null`;
//! * a string of several pieces is a JSON string, unset parts printing `-`;
//! * numbers, booleans, `null`, nested objects and arrays are emitted as given.

use std::fmt::Write as _;

use super::format::{parse_pieces, FormatError, Piece};
use super::render::{Value, UNSET};
use super::stream_info::StreamInfo;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    /// Pre-serialized constant JSON.
    Raw(String),
    Template(Vec<Piece>),
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
}

impl Node {
    pub(super) fn build_object(
        map: &serde_json::Map<String, serde_json::Value>,
        path: &str,
    ) -> Result<Node, FormatError> {
        let mut fields = Vec::with_capacity(map.len());
        for (key, value) in map {
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            fields.push((key.clone(), Node::build(value, &child)?));
        }
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Node::Object(fields))
    }

    fn build(value: &serde_json::Value, path: &str) -> Result<Node, FormatError> {
        use serde_json::Value as J;
        Ok(match value {
            J::Null => Node::Raw("null".to_owned()),
            J::Bool(b) => Node::Raw(b.to_string()),
            J::Number(n) => Node::Raw(n.to_string()),
            J::String(s) if !s.contains('%') => {
                let mut raw = String::with_capacity(s.len() + 2);
                push_json_string(&mut raw, s);
                Node::Raw(raw)
            }
            J::String(s) => {
                Node::Template(parse_pieces(s).map_err(|e| FormatError::InJsonField {
                    path: path.to_owned(),
                    source: Box::new(e),
                })?)
            }
            J::Array(items) => Node::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Node::build(v, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            J::Object(map) => Node::build_object(map, path)?,
        })
    }

    /// Appends compact JSON (no trailing newline).
    pub(super) fn render(&self, info: &StreamInfo, out: &mut String) {
        match self {
            Node::Raw(raw) => out.push_str(raw),
            Node::Template(pieces) => render_template(pieces, info, out),
            Node::Object(fields) => {
                out.push('{');
                for (i, (key, node)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_json_string(out, key);
                    out.push(':');
                    node.render(info, out);
                }
                out.push('}');
            }
            Node::Array(items) => {
                out.push('[');
                for (i, node) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    node.render(info, out);
                }
                out.push(']');
            }
        }
    }
}

fn render_template(pieces: &[Piece], info: &StreamInfo, out: &mut String) {
    if let [single] = pieces {
        match single {
            Piece::Lit(s) => push_json_string(out, s),
            Piece::Op(op) => match op.eval(info) {
                Value::Str(s) => push_json_string(out, &s),
                Value::Num(n) => {
                    let _ = write!(out, "{n}");
                }
                Value::Null => out.push_str("null"),
            },
        }
        return;
    }
    let mut text = String::with_capacity(64);
    for piece in pieces {
        match piece {
            Piece::Lit(s) => text.push_str(s),
            Piece::Op(op) => match op.eval(info) {
                Value::Null => text.push_str(UNSET),
                v => v.push_text(&mut text),
            },
        }
    }
    push_json_string(out, &text);
}

/// Appends `s` as a quoted JSON string (RFC 8259 escaping, same output as serde_json).
pub(super) fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{08}' => "\\b",
            '\u{0c}' => "\\f",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(esc);
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_matches_serde_json() {
        for s in [
            "plain",
            "",
            "quote\" back\\slash",
            "nl\ncr\rtab\t",
            "\u{0}\u{1}\u{1f}\u{7f}",
            "\u{8}\u{c}",
            "ünïcödé ✓ 😀",
        ] {
            let mut mine = String::new();
            push_json_string(&mut mine, s);
            assert_eq!(mine, serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }
}
