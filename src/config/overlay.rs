//! `--config-yaml` merged over `--config-path`, with proto `MergeFrom` semantics: mappings
//! merge key by key, lists append, scalars replace.
//!
//! The overlay's spans are shifted past the end of the base file so that one report can point
//! into either text: the report's source is the base text followed by the overlay text.

use super::node::{Node, Value};

/// Moves every span of `node` down by `lines`.
pub fn shift(node: &mut Node, lines: usize) {
    node.span.line += lines;
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|n| shift(n, lines)),
        Value::Map(entries) => {
            for (k, v) in entries {
                k.span.line += lines;
                shift(v, lines);
            }
        }
        Value::Null | Value::Scalar { .. } => {}
    }
}

/// Merges `overlay` into `base`.
pub fn merge(base: &mut Node, overlay: Node) {
    match (&mut base.value, overlay.value) {
        (Value::Map(entries), Value::Map(over)) => {
            for (key, value) in over {
                match entries.iter_mut().find(|(k, _)| k.name == key.name) {
                    Some((_, existing)) => merge(existing, value),
                    None => entries.push((key, value)),
                }
            }
        }
        (Value::Seq(items), Value::Seq(over)) => items.extend(over),
        (_, value) => {
            base.value = value;
            base.span = overlay.span;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::node::parse;
    use super::*;

    #[test]
    fn maps_merge_lists_append_scalars_replace() {
        let mut base = parse("a: {x: 1, y: [1]}\nb: 2\n").unwrap();
        let mut over = parse("a: {y: [2], z: 3}\nb: 4\n").unwrap();
        shift(&mut over, 2);
        merge(&mut base, over);
        assert_eq!(
            base.to_json(),
            serde_json::json!({"a": {"x": 1, "y": [1, 2], "z": 3}, "b": 4})
        );
        assert_eq!(base.get("b").unwrap().span.line, 4);
    }
}
