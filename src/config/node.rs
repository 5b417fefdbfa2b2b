//! A YAML/JSON document as a tree of nodes that remember where they came from.
//!
//! Envoy configs are decoded from this tree rather than straight through serde because the
//! decoder must (a) report *every* error with a line and column, not just the first, (b) know
//! which fields a user wrote so it can warn about deprecated and ignored ones, and (c) be lenient
//! the way Envoy's proto-JSON loader is (`port_value: "80"` and `port_value: 80` are the same).
//! JSON is parsed by the same YAML 1.2 parser: JSON is valid YAML 1.2 flow syntax.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

/// A position in the source text: 1-based line and column, plus the length of the token so the
/// renderer can underline it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub line: usize,
    pub col: usize,
    pub len: usize,
}

/// One node of a parsed document.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or an empty plain scalar.
    Null,
    /// Any other scalar, kept as text: the decoder interprets it per field, as Envoy's proto-JSON
    /// loader does (numbers may be quoted, durations are strings).
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Keys in document order; duplicates are rejected at parse time.
    Map(Vec<(Key, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub span: Span,
}

/// Why a document could not be turned into a tree.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub message: String,
    pub span: Span,
}

impl Node {
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Scalar { .. } => "scalar",
            Value::Seq(_) => "list",
            Value::Map(_) => "mapping",
        }
    }

    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_scalar(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The value under `key` when this node is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
    }

    /// Converts the tree to JSON (for `/config_dump` of opaque sections such as runtime layers).
    /// Plain scalars become numbers or booleans when they look like one, as Envoy's YAML→JSON
    /// step does.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Scalar { text, quoted } => {
                if !quoted {
                    if let Some(b) = parse_bool(text) {
                        return serde_json::Value::Bool(b);
                    }
                    if let Ok(i) = text.parse::<i64>() {
                        return serde_json::Value::from(i);
                    }
                    if let Ok(f) = text.parse::<f64>() {
                        if f.is_finite() {
                            return serde_json::Value::from(f);
                        }
                    }
                }
                serde_json::Value::String(text.clone())
            }
            Value::Seq(items) => items.iter().map(Node::to_json).collect(),
            Value::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// YAML 1.2 core-schema booleans plus the YAML 1.1 spellings people still write.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Parses one YAML (or JSON) document. An empty document is an empty mapping.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut builder = Builder::default();
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| SyntaxError {
            message: e.info().to_string(),
            span: Span {
                line: e.marker().line(),
                col: e.marker().col() + 1,
                len: 1,
            },
        })?;
        let span = Span {
            line: span.start.line(),
            col: span.start.col() + 1,
            len: span.end.index().saturating_sub(span.start.index()).max(1),
        };
        if builder.feed(event, span)? {
            break;
        }
    }
    Ok(builder.root.unwrap_or(Node {
        value: Value::Map(Vec::new()),
        span: Span {
            line: 1,
            col: 1,
            len: 1,
        },
    }))
}

/// Turns the parser's event stream into a tree, resolving anchors, aliases and `<<` merge keys
/// (seed 002's xDS file uses `<<: *cluster`).
#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    documents: usize,
}

enum Frame {
    Seq {
        items: Vec<Node>,
        span: Span,
        anchor: usize,
    },
    Map {
        entries: Vec<(Key, Node)>,
        pending_key: Option<Key>,
        /// Keys that came from a `<<` merge: a key written explicitly in the mapping overrides
        /// them wherever it appears (YAML merge-key semantics), so it is not a duplicate.
        merged: Vec<String>,
        span: Span,
        anchor: usize,
    },
}

impl Builder {
    /// Returns true when the first document is complete (later documents are ignored, as Envoy
    /// reads one bootstrap per file).
    fn feed(&mut self, event: Event<'_>, span: Span) -> Result<bool, SyntaxError> {
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Ok(true);
                }
            }
            Event::DocumentEnd => return Ok(self.root.is_some()),
            Event::Scalar(text, style, anchor, _tag) => {
                let quoted = !matches!(style, ScalarStyle::Plain);
                let value =
                    if !quoted && matches!(text.as_ref(), "" | "~" | "null" | "Null" | "NULL") {
                        Value::Null
                    } else {
                        Value::Scalar {
                            text: text.into_owned(),
                            quoted,
                        }
                    };
                let node = Node { value, span };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push(node)?;
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().ok_or(SyntaxError {
                    message: "alias refers to an unknown anchor".into(),
                    span,
                })?;
                self.push(node)?;
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq {
                items: Vec::new(),
                span,
                anchor,
            }),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map {
                entries: Vec::new(),
                pending_key: None,
                merged: Vec::new(),
                span,
                anchor,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq {
                        items,
                        span,
                        anchor,
                    }) => (
                        Node {
                            value: Value::Seq(items),
                            span,
                        },
                        anchor,
                    ),
                    Some(Frame::Map {
                        entries,
                        span,
                        anchor,
                        ..
                    }) => (
                        Node {
                            value: Value::Map(entries),
                            span,
                        },
                        anchor,
                    ),
                    None => {
                        return Err(SyntaxError {
                            message: "unbalanced collection end".into(),
                            span,
                        })
                    }
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push(node)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
        Ok(false)
    }

    fn push(&mut self, node: Node) -> Result<(), SyntaxError> {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                pending_key,
                merged,
                ..
            }) => match pending_key.take() {
                None => {
                    let name = match &node.value {
                        Value::Scalar { text, .. } => text.clone(),
                        Value::Null => String::new(),
                        _ => {
                            return Err(SyntaxError {
                                message: format!(
                                    "a mapping key must be a plain string, found a {}",
                                    node.kind()
                                ),
                                span: node.span,
                            })
                        }
                    };
                    *pending_key = Some(Key {
                        name,
                        span: node.span,
                    });
                }
                Some(key) if key.name == "<<" => merge_into(entries, merged, key, node)?,
                Some(key) => {
                    if let Some(i) = merged.iter().position(|m| *m == key.name) {
                        merged.remove(i);
                        entries.retain(|(k, _)| k.name != key.name);
                    } else if let Some((first, _)) =
                        entries.iter().find(|(k, _)| k.name == key.name)
                    {
                        return Err(SyntaxError {
                            message: format!(
                                "duplicate key `{}` (first defined at line {})",
                                key.name, first.span.line
                            ),
                            span: key.span,
                        });
                    }
                    entries.push((key, node));
                }
            },
        }
        Ok(())
    }
}

/// YAML merge key: entries of the merged mapping(s) are added unless the mapping already has them.
fn merge_into(
    entries: &mut Vec<(Key, Node)>,
    merged: &mut Vec<String>,
    key: Key,
    node: Node,
) -> Result<(), SyntaxError> {
    let sources: Vec<Node> = match node.value {
        Value::Map(_) => vec![node],
        Value::Seq(items) => items,
        _ => {
            return Err(SyntaxError {
                message: "`<<` merge key needs a mapping or a list of mappings".into(),
                span: key.span,
            })
        }
    };
    for source in sources {
        let Value::Map(source_entries) = source.value else {
            return Err(SyntaxError {
                message: "`<<` merge key needs a mapping or a list of mappings".into(),
                span: source.span,
            });
        };
        for (k, v) in source_entries {
            if !entries.iter().any(|(existing, _)| existing.name == k.name) {
                merged.push(k.name.clone());
                entries.push((k, v));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_one_based_and_point_at_the_key() {
        let doc = parse("a: 1\nclusters:\n  - name: x\n    connect_timout: 0.25s\n").unwrap();
        let clusters = doc.get("clusters").unwrap().as_seq().unwrap();
        let (key, value) = &clusters[0].as_map().unwrap()[1];
        assert_eq!(key.name, "connect_timout");
        assert_eq!((key.span.line, key.span.col), (4, 5));
        assert_eq!(value.as_scalar(), Some("0.25s"));
    }

    #[test]
    fn json_parses_with_the_same_parser() {
        let doc = parse(
            "{\n\t\"listeners\": [{\"address\": \"tcp://0.0.0.0:80\", \"n\": 0}],\n\t\"x\": null\n}",
        )
        .unwrap();
        let l = &doc.get("listeners").unwrap().as_seq().unwrap()[0];
        assert_eq!(
            l.get("address").unwrap().as_scalar(),
            Some("tcp://0.0.0.0:80")
        );
        assert_eq!(l.get("n").unwrap().as_scalar(), Some("0"));
        assert_eq!(doc.get("x").unwrap().value, Value::Null);
    }

    #[test]
    fn duplicate_keys_are_rejected_with_both_lines() {
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert!(err.message.contains("duplicate key `a`"), "{}", err.message);
        assert!(err.message.contains("line 1"), "{}", err.message);
        assert_eq!(err.span.line, 3);
    }

    #[test]
    fn anchors_aliases_and_merge_keys_resolve() {
        let doc = parse(
            "base: &c {connect_timeout: 1s, type: STATIC}\nc: {<<: *c, name: x, type: STRICT_DNS}\n",
        )
        .unwrap();
        let c = doc.get("c").unwrap();
        assert_eq!(c.get("name").unwrap().as_scalar(), Some("x"));
        assert_eq!(c.get("type").unwrap().as_scalar(), Some("STRICT_DNS"));
        assert_eq!(c.get("connect_timeout").unwrap().as_scalar(), Some("1s"));
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.span.line >= 1);
        assert!(!err.message.is_empty());
    }

    #[test]
    fn quoted_scalars_stay_strings_in_json() {
        let doc = parse("a: \"80\"\nb: 80\nc: true\n").unwrap();
        assert_eq!(
            doc.to_json(),
            serde_json::json!({"a": "80", "b": 80, "c": true})
        );
    }
}
