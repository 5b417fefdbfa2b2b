//! Header mutations (`request_headers_to_add` and friends), identical at route-config, virtual
//! host, route and weighted-cluster level. The legacy `append: bool` is folded into
//! `append_action`.

use super::super::model::{AppendAction, HeaderMutations, HeaderValueOption};
use super::scalars;
use super::{Decoder, Field, Message, Obj};

const HEADER_FIELDS: [&str; 4] = [
    "request_headers_to_add",
    "request_headers_to_remove",
    "response_headers_to_add",
    "response_headers_to_remove",
];

const HEADER_VALUE_OPTION: Message = Message {
    name: "HeaderValueOption",
    fields: &["header", "append", "append_action"],
    ignored: &["keep_empty_value"],
};

const HEADER_VALUE: Message = Message {
    name: "HeaderValue",
    fields: &["key", "value", "raw_value"],
    ignored: &[],
};

/// The four header add/remove lists of a route config, vhost, route or weighted cluster.
pub fn header_mutations(d: &mut Decoder, o: &Obj) -> HeaderMutations {
    let mut h = HeaderMutations::default();
    for key in HEADER_FIELDS {
        let Some(v) = o.get(key) else { continue };
        match key {
            "request_headers_to_add" => h.request_headers_to_add = header_value_options(d, &v),
            "response_headers_to_add" => h.response_headers_to_add = header_value_options(d, &v),
            "request_headers_to_remove" => {
                h.request_headers_to_remove = lower(scalars::strings(d, &v))
            }
            _ => h.response_headers_to_remove = lower(scalars::strings(d, &v)),
        }
    }
    h
}

fn lower(v: Vec<String>) -> Vec<String> {
    v.into_iter().map(|s| s.to_ascii_lowercase()).collect()
}

pub fn header_value_options(d: &mut Decoder, f: &Field) -> Vec<HeaderValueOption> {
    d.seq(f)
        .iter()
        .filter_map(|item| header_value_option(d, item))
        .collect()
}

fn header_value_option(d: &mut Decoder, f: &Field) -> Option<HeaderValueOption> {
    let o = d.obj(f, &HEADER_VALUE_OPTION)?;
    let (key, value) = match o.get("header") {
        Some(h) => {
            let ho = d.obj(&h, &HEADER_VALUE)?;
            let key = match ho.get("key") {
                Some(k) => scalars::string(d, &k)?,
                None => {
                    d.missing(&ho, "key");
                    return None;
                }
            };
            let value = match (ho.get("value"), ho.get("raw_value")) {
                (Some(v), _) => scalars::string(d, &v)?,
                (None, Some(r)) => scalars::string(d, &r)?,
                (None, None) => String::new(),
            };
            (key.to_ascii_lowercase(), value)
        }
        None => {
            d.missing(&o, "header");
            return None;
        }
    };
    let mut append_action = AppendAction::AppendIfExistsOrAdd;
    if let Some(a) = o.get("append") {
        d.deprecated(
            "HeaderValueOption.append",
            &a,
            "deprecated field `append` in HeaderValueOption; loaded as `append_action`".into(),
            "write `append_action: APPEND_IF_EXISTS_OR_ADD` (append: true) or `OVERWRITE_IF_EXISTS_OR_ADD` (append: false)".into(),
        );
        if scalars::bool(d, &a) == Some(false) {
            append_action = AppendAction::OverwriteIfExistsOrAdd;
        }
    }
    if let Some(a) = o.get("append_action") {
        append_action = match scalars::enum_name(
            d,
            &a,
            "HeaderValueOption.HeaderAppendAction",
            &[
                "APPEND_IF_EXISTS_OR_ADD",
                "ADD_IF_ABSENT",
                "OVERWRITE_IF_EXISTS_OR_ADD",
                "OVERWRITE_IF_EXISTS",
            ],
        ) {
            Some("ADD_IF_ABSENT") => AppendAction::AddIfAbsent,
            Some("OVERWRITE_IF_EXISTS_OR_ADD") => AppendAction::OverwriteIfExistsOrAdd,
            Some("OVERWRITE_IF_EXISTS") => AppendAction::OverwriteIfExists,
            _ => AppendAction::AppendIfExistsOrAdd,
        };
    }
    Some(HeaderValueOption {
        key,
        value,
        append_action,
    })
}

#[cfg(test)]
mod tests {
    use super::super::super::node::parse;
    use super::super::Mode;
    use super::*;
    use std::path::PathBuf;

    const MSG: Message = Message {
        name: "Route",
        fields: &HEADER_FIELDS,
        ignored: &[],
    };

    #[test]
    fn header_mutations_with_legacy_append() {
        let doc = parse(
            "r:\n  request_headers_to_add:\n  - {header: {key: X-Env, value: prod}, append: false}\n  - {header: {key: x-a, value: b}, append_action: ADD_IF_ABSENT}\n  response_headers_to_remove: [Server]\n",
        )
        .unwrap();
        let (k, v) = &doc.as_map().unwrap()[0];
        let f = Field::root(&doc).child(k, v);
        let mut d = Decoder::new(PathBuf::from("."), Mode::Bootstrap);
        let o = d.obj(&f, &MSG).unwrap();
        let h = header_mutations(&mut d, &o);
        assert_eq!(h.request_headers_to_add[0].key, "x-env");
        assert_eq!(
            h.request_headers_to_add[0].append_action,
            AppendAction::OverwriteIfExistsOrAdd
        );
        assert_eq!(
            h.request_headers_to_add[1].append_action,
            AppendAction::AddIfAbsent
        );
        assert_eq!(h.response_headers_to_remove, ["server"]);
        let w: Vec<String> = d.finish().into_iter().map(|d| d.message).collect();
        assert_eq!(
            w,
            ["deprecated field `append` in HeaderValueOption; loaded as `append_action`"]
        );
    }
}
