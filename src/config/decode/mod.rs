//! The field-walking machinery shared by every decoder.
//!
//! Decoding walks the [`Node`] tree rather than going through serde so that every problem in a
//! file is found in one pass, each with the span of the offending key or value. The rules that
//! make copied blog configs load are encoded here once:
//!
//! * Each protobuf message meshsim reads is described by a [`Message`]: the fields meshsim
//!   decodes and the *real* Envoy fields it does not simulate. Opening a mapping as a message
//!   ([`Decoder::obj`]) checks every key against those lists up front: a simulated field is left
//!   to the caller, a real-but-ignored field produces one "ignored" warning per file, and
//!   anything else is a misspelling, reported with a did-you-mean from that message's names.
//! * Deprecated v2 forms are decoded like their v3 replacements and reported once per distinct
//!   form per file (with a count), not once per occurrence: a v2 front-proxy has the same
//!   `hosts:` in every cluster and one line saying so is enough.
//! * Errors never stop the walk; a decoder that cannot produce a value returns `None` and the
//!   caller carries on with the next field.

pub mod access_log;
pub mod address;
pub mod bootstrap;
pub mod circuit_breakers;
pub mod cluster;
pub mod extensions;
pub mod hcm;
pub mod headers;
pub mod health;
pub mod http_filters;
pub mod listener;
pub mod matchers;
pub mod protocol;
pub mod retry;
pub mod route;
pub mod route_action;
pub mod scalars;
pub mod tls;

use std::path::PathBuf;

use super::diagnostics::{did_you_mean, Diagnostic};
use super::model::SocketAddress;
use super::node::{Key, Node, Span, Value};

/// What meshsim knows about one protobuf message type.
pub struct Message {
    /// The short name used in messages, e.g. `Cluster`.
    pub name: &'static str,
    /// Fields meshsim decodes (including deprecated v2 spellings it translates).
    pub fields: &'static [&'static str],
    /// Real Envoy fields that meshsim accepts but does not simulate.
    pub ignored: &'static [&'static str],
}

/// A value in the document together with where it is and how to name it in messages.
#[derive(Debug, Clone)]
pub struct Field<'n> {
    pub node: &'n Node,
    /// The key's span when the value sits under a key, else the value's own span.
    pub span: Span,
    /// Dotted path from the document root, e.g. `static_resources.clusters[0].type`.
    pub path: String,
}

impl<'n> Field<'n> {
    pub fn root(node: &'n Node) -> Self {
        Field {
            node,
            span: node.span,
            path: String::new(),
        }
    }

    pub fn child(&self, key: &'n Key, node: &'n Node) -> Field<'n> {
        Field {
            node,
            span: key.span,
            path: join(&self.path, &key.name),
        }
    }

    pub fn item(&self, index: usize, node: &'n Node) -> Field<'n> {
        Field {
            node,
            span: node.span,
            path: format!("{}[{index}]", self.path),
        }
    }

    /// The span of the value itself (for errors about a value rather than a key).
    pub fn value_span(&self) -> Span {
        self.node.span
    }

    /// The field name (last path segment), for messages.
    pub fn name(&self) -> &str {
        let tail = self.path.rsplit('.').next().unwrap_or(&self.path);
        tail.split('[').next().unwrap_or(tail)
    }
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A mapping opened as a protobuf message whose keys have already been checked.
pub struct Obj<'n> {
    pub field: Field<'n>,
    pub msg: &'static Message,
    entries: &'n [(Key, Node)],
}

impl<'n> Obj<'n> {
    /// The field `key` if present. `key` must be one of the message's decoded fields.
    pub fn get(&self, key: &str) -> Option<Field<'n>> {
        debug_assert!(
            self.msg.fields.contains(&key),
            "`{key}` is read but not declared in {}",
            self.msg.name
        );
        self.entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(k, v)| self.field.child(k, v))
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Where to point at when the whole message is at fault (e.g. a missing required field).
    pub fn span(&self) -> Span {
        self.field.span
    }

    pub fn path(&self) -> &str {
        &self.field.path
    }

    pub fn field_ref(&self) -> &Field<'n> {
        &self.field
    }
}

/// Where a cluster name is referenced, for the cross-reference check in `validate`.
#[derive(Debug, Clone)]
pub struct Site {
    pub name: String,
    pub span: Span,
    pub path: String,
}

/// A listener's identity and address with their positions.
#[derive(Debug, Clone)]
pub struct ListenerSite {
    pub name: Option<Site>,
    pub address: SocketAddress,
    pub address_span: Span,
    /// Path of the `address` field.
    pub path: String,
}

/// Facts collected while decoding, for checks that span several objects (`validate.rs`).
#[derive(Debug, Default)]
pub struct Facts {
    pub clusters: Vec<Site>,
    pub cluster_refs: Vec<Site>,
    pub listeners: Vec<ListenerSite>,
    pub admin_address: Option<(SocketAddress, Span)>,
    /// HCMs whose routes come from RDS: (route_config_name, span, path), resolved by the bundle.
    pub rds_refs: Vec<Site>,
}

/// Fields users put one level too high or too low, with where they belong: (message, field,
/// help). Blog excerpts often lose their indentation (seed 001 did).
const MISPLACED: &[(&str, &str, &str)] = &[
    (
        "Bootstrap",
        "listeners",
        "`listeners` belongs under `static_resources:` (indent it by two spaces)",
    ),
    (
        "Bootstrap",
        "clusters",
        "`clusters` belongs under `static_resources:` (indent it by two spaces)",
    ),
    (
        "Listener",
        "filters",
        "network filters belong in a filter chain: `filter_chains: [{filters: [...]}]`",
    ),
    (
        "HttpConnectionManager",
        "virtual_hosts",
        "`virtual_hosts` belongs under `route_config:`",
    ),
    (
        "Cluster",
        "endpoints",
        "`endpoints` belongs under `load_assignment:` (with `cluster_name`)",
    ),
];

/// A warning that is reported once per file however often its form occurs.
struct Aggregated {
    key: String,
    diag: Diagnostic,
    count: usize,
}

/// How resources may reference each other in the document being decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A bootstrap: everything must be static.
    Bootstrap,
    /// An xDS bundle: `rds` is resolved against RouteConfigurations in the same file.
    Bundle,
}

pub struct Decoder {
    /// Where `filename:` data sources are resolved from.
    pub base_dir: PathBuf,
    pub mode: Mode,
    pub facts: Facts,
    errors: Vec<Diagnostic>,
    warnings: Vec<Aggregated>,
}

impl Decoder {
    pub fn new(base_dir: PathBuf, mode: Mode) -> Self {
        Decoder {
            base_dir,
            mode,
            facts: Facts::default(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn push(&mut self, diag: Diagnostic) {
        if diag.is_error() {
            self.errors.push(diag);
        } else {
            let key = format!(
                "{}\u{0}{}",
                diag.message,
                diag.help.as_deref().unwrap_or("")
            );
            self.warn_once(key, diag);
        }
    }

    pub fn error(&mut self, f: &Field, message: impl Into<String>) {
        self.errors
            .push(Diagnostic::error(f.path.clone(), f.span, message));
    }

    pub fn error_help(&mut self, f: &Field, message: impl Into<String>, help: impl Into<String>) {
        self.errors
            .push(Diagnostic::error(f.path.clone(), f.span, message).with_help(help));
    }

    /// Same as [`Decoder::error_help`] but pointing at the value rather than the key.
    pub fn error_at_value(&mut self, f: &Field, message: impl Into<String>, help: Option<String>) {
        let mut d = Diagnostic::error(f.path.clone(), f.value_span(), message);
        d.help = help;
        self.errors.push(d);
    }

    /// Records a warning under `key`; later warnings with the same key only bump its count.
    pub fn warn_once(&mut self, key: impl Into<String>, diag: Diagnostic) {
        let key = key.into();
        if let Some(w) = self.warnings.iter_mut().find(|w| w.key == key) {
            w.count += 1;
        } else {
            self.warnings.push(Aggregated {
                key,
                diag,
                count: 1,
            });
        }
    }

    /// A deprecated v2 form that was translated; `form` identifies it for de-duplication.
    pub fn deprecated(&mut self, form: &str, f: &Field, message: String, help: String) {
        let diag = Diagnostic::warning(f.path.clone(), f.span, message).with_help(help);
        self.warn_once(format!("deprecated:{form}"), diag);
    }

    /// A real Envoy field that meshsim accepts without simulating it.
    pub fn ignored(&mut self, msg: &str, f: &Field, why: Option<&str>) {
        let field = f.name().to_string();
        let message = format!("`{field}` in {msg} is not simulated by meshsim; ignored");
        let mut diag = Diagnostic::warning(f.path.clone(), f.span, message);
        diag.help = why.map(str::to_string);
        self.warn_once(format!("ignored:{msg}.{field}"), diag);
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// All diagnostics, errors first, each group in document order; repeated warnings say how
    /// often their form occurred.
    pub fn finish(self) -> Vec<Diagnostic> {
        let mut errors = self.errors;
        errors.sort_by_key(|d| (d.span.line, d.span.col));
        let mut warnings: Vec<Diagnostic> = self
            .warnings
            .into_iter()
            .map(|w| {
                let mut d = w.diag;
                if w.count > 1 {
                    d.message = format!(
                        "{} ({} occurrences; the first is shown)",
                        d.message, w.count
                    );
                }
                d
            })
            .collect();
        warnings.sort_by_key(|d| (d.span.line, d.span.col));
        errors.extend(warnings);
        errors
    }

    /// Opens `f` as the message `msg`, checking its keys. `null` (an empty YAML value) is an
    /// empty message, as in proto JSON.
    pub fn obj<'n>(&mut self, f: &Field<'n>, msg: &'static Message) -> Option<Obj<'n>> {
        self.obj_inner(f, msg, false)
    }

    /// Like [`Decoder::obj`] but also accepts the `@type` key of a `typed_config` (an `Any`).
    pub fn obj_any<'n>(&mut self, f: &Field<'n>, msg: &'static Message) -> Option<Obj<'n>> {
        self.obj_inner(f, msg, true)
    }

    fn obj_inner<'n>(
        &mut self,
        f: &Field<'n>,
        msg: &'static Message,
        allow_type: bool,
    ) -> Option<Obj<'n>> {
        let entries: &'n [(Key, Node)] = match &f.node.value {
            Value::Map(entries) => entries,
            Value::Null => &[],
            _ => {
                self.error_at_value(
                    f,
                    format!(
                        "`{}` must be a mapping ({}), found a {}",
                        f.name(),
                        msg.name,
                        f.node.kind()
                    ),
                    None,
                );
                return None;
            }
        };
        for (key, value) in entries {
            let name = key.name.as_str();
            if msg.fields.contains(&name) || (allow_type && name == "@type") {
                continue;
            }
            let child = f.child(key, value);
            if msg.ignored.contains(&name) {
                self.ignored(msg.name, &child, None);
                continue;
            }
            self.unknown_field(&child, msg);
        }
        Some(Obj {
            field: f.clone(),
            msg,
            entries,
        })
    }

    fn unknown_field(&mut self, f: &Field, msg: &Message) {
        let name = f.name().to_string();
        let candidates: Vec<&str> = msg.fields.iter().chain(msg.ignored).copied().collect();
        let hint = MISPLACED
            .iter()
            .find(|(m, k, _)| *m == msg.name && *k == name)
            .map(|(_, _, h)| h.to_string());
        let help = match did_you_mean(&name, &candidates) {
            _ if hint.is_some() => hint,
            Some(s) => Some(format!("did you mean `{s}`?")),
            None if msg.fields.len() <= 12 => Some(format!(
                "{} fields meshsim reads: {}",
                msg.name,
                msg.fields.join(", ")
            )),
            None => None,
        };
        let mut d = Diagnostic::error(
            f.path.clone(),
            f.span,
            format!("unknown field `{name}` in {}", msg.name),
        );
        d.help = help;
        self.errors.push(d);
    }

    /// The items of a list. A single value where a list is expected is taken as a one-item
    /// list, as Envoy's proto-JSON loader does (its own front-proxy example relied on this for
    /// `tls_certificates`).
    pub fn seq<'n>(&mut self, f: &Field<'n>) -> Vec<Field<'n>> {
        match &f.node.value {
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, n)| f.item(i, n))
                .collect(),
            Value::Null => Vec::new(),
            _ => vec![f.clone()],
        }
    }

    /// Reports a missing required field of `o`.
    pub fn missing(&mut self, o: &Obj, field: &str) {
        let d = Diagnostic::error(
            o.path().to_string(),
            o.span(),
            format!("missing required field `{field}` in {}", o.msg.name),
        );
        self.errors.push(d);
    }

    /// Reports a missing required field of `o`, with advice.
    pub fn missing_help(&mut self, o: &Obj, field: &str, help: &str) {
        let d = Diagnostic::error(
            o.path().to_string(),
            o.span(),
            format!("missing required field `{field}` in {}", o.msg.name),
        )
        .with_help(help);
        self.errors.push(d);
    }

    /// Reports two members of a proto `oneof` set together.
    pub fn oneof_conflict(&mut self, second: &Field, first: &str) {
        self.error_help(
            second,
            format!("`{}` cannot be combined with `{first}`", second.name()),
            "they are alternatives (a protobuf `oneof`); keep one",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::node::parse;
    use super::*;

    const MSG: Message = Message {
        name: "Cluster",
        fields: &["name", "connect_timeout"],
        ignored: &["circuit_breakers"],
    };

    #[test]
    fn unknown_fields_get_a_did_you_mean_and_ignored_fields_one_warning() {
        let doc = parse(
            "a:\n  name: x\n  connect_timout: 1s\n  circuit_breakers: {}\nb:\n  circuit_breakers: {}\n",
        )
        .unwrap();
        let mut d = Decoder::new(PathBuf::from("."), Mode::Bootstrap);
        let root = Field::root(&doc);
        let top = root.node.as_map().unwrap();
        for (k, v) in top {
            let f = root.child(k, v);
            let o = d.obj(&f, &MSG).unwrap();
            let _ = o.get("name");
        }
        let diags = d.finish();
        assert_eq!(diags.len(), 2, "{diags:#?}");
        assert_eq!(
            diags[0].message,
            "unknown field `connect_timout` in Cluster"
        );
        assert_eq!(
            diags[0].help.as_deref(),
            Some("did you mean `connect_timeout`?")
        );
        assert_eq!((diags[0].span.line, diags[0].span.col), (3, 3));
        assert_eq!(
            diags[1].message,
            "`circuit_breakers` in Cluster is not simulated by meshsim; ignored (2 occurrences; the first is shown)"
        );
    }

    #[test]
    fn a_single_value_is_a_one_item_list() {
        let doc = parse("l: {a: 1}\nm: [1, 2]\nn:\n").unwrap();
        let mut d = Decoder::new(PathBuf::from("."), Mode::Bootstrap);
        let root = Field::root(&doc);
        let map = doc.as_map().unwrap();
        let l = root.child(&map[0].0, &map[0].1);
        let m = root.child(&map[1].0, &map[1].1);
        let n = root.child(&map[2].0, &map[2].1);
        assert_eq!(d.seq(&l).len(), 1);
        assert_eq!(d.seq(&m)[1].path, "m[1]");
        assert!(d.seq(&n).is_empty());
    }
}
