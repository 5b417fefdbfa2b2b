//! Which extension a `{name, typed_config | config}` entry selects, across three API generations.
//!
//! Since Envoy 1.14 the `@type` of `typed_config` selects the extension and `name` is only a
//! label; before that the (then shorter) `name` selected it and the configuration sat in an
//! untyped `config:` Struct. Blog configs use every combination, so resolution is:
//! `@type` (v3 or v2 type URL, or a `TypedStruct` wrapping one) → else `name` (v3 or legacy
//! v2 name). Every v2 spelling met on the way is reported once as deprecated, naming its v3
//! replacement.

use super::super::node::Value;
use super::scalars;
use super::{Decoder, Field, Message, Obj};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    NetworkFilter,
    HttpFilter,
    AccessLogger,
    TransportSocket,
}

impl Category {
    pub fn label(self) -> &'static str {
        match self {
            Category::NetworkFilter => "network filter",
            Category::HttpFilter => "HTTP filter",
            Category::AccessLogger => "access logger",
            Category::TransportSocket => "transport socket",
        }
    }

    /// Names Envoy used before the 1.14 rename, with their v3 names (envoy.md §4.2 and
    /// Envoy's `well_known_names.h` of that era).
    fn legacy_names(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Category::NetworkFilter => &[
                (
                    "envoy.http_connection_manager",
                    "envoy.filters.network.http_connection_manager",
                ),
                ("envoy.tcp_proxy", "envoy.filters.network.tcp_proxy"),
                ("envoy.redis_proxy", "envoy.filters.network.redis_proxy"),
                ("envoy.mongo_proxy", "envoy.filters.network.mongo_proxy"),
                ("envoy.ratelimit", "envoy.filters.network.ratelimit"),
                ("envoy.echo", "envoy.filters.network.echo"),
                (
                    "envoy.client_ssl_auth",
                    "envoy.filters.network.client_ssl_auth",
                ),
                ("envoy.ext_authz", "envoy.filters.network.ext_authz"),
            ],
            Category::HttpFilter => &[
                ("envoy.router", "envoy.filters.http.router"),
                ("envoy.fault", "envoy.filters.http.fault"),
                ("envoy.cors", "envoy.filters.http.cors"),
                ("envoy.grpc_web", "envoy.filters.http.grpc_web"),
                ("envoy.health_check", "envoy.filters.http.health_check"),
                ("envoy.lua", "envoy.filters.http.lua"),
                ("envoy.rate_limit", "envoy.filters.http.ratelimit"),
                ("envoy.buffer", "envoy.filters.http.buffer"),
                ("envoy.gzip", "envoy.filters.http.gzip"),
                ("envoy.ext_authz", "envoy.filters.http.ext_authz"),
                (
                    "envoy.grpc_json_transcoder",
                    "envoy.filters.http.grpc_json_transcoder",
                ),
                (
                    "envoy.grpc_http1_bridge",
                    "envoy.filters.http.grpc_http1_bridge",
                ),
                ("envoy.ip_tagging", "envoy.filters.http.ip_tagging"),
                ("envoy.squash", "envoy.filters.http.squash"),
                ("envoy.http_dynamo_filter", "envoy.filters.http.dynamo"),
            ],
            Category::AccessLogger => &[
                ("envoy.file_access_log", "envoy.access_loggers.file"),
                (
                    "envoy.http_grpc_access_log",
                    "envoy.access_loggers.http_grpc",
                ),
                ("envoy.tcp_grpc_access_log", "envoy.access_loggers.tcp_grpc"),
            ],
            Category::TransportSocket => &[
                ("tls", "envoy.transport_sockets.tls"),
                ("raw_buffer", "envoy.transport_sockets.raw_buffer"),
            ],
        }
    }
}

/// An extension meshsim knows by name and type URL.
#[derive(Debug)]
pub struct KnownExt {
    pub name: &'static str,
    /// v3 type URL without the `type.googleapis.com/` prefix.
    pub v3: &'static str,
    /// The v2 type URL, still accepted with a deprecation warning.
    pub v2: Option<&'static str>,
}

pub const HCM: KnownExt = KnownExt {
    name: "envoy.filters.network.http_connection_manager",
    v3: "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    v2: Some("envoy.config.filter.network.http_connection_manager.v2.HttpConnectionManager"),
};

pub const ACCESS_LOGGERS: &[KnownExt] = &[
    KnownExt {
        name: "envoy.access_loggers.file",
        v3: "envoy.extensions.access_loggers.file.v3.FileAccessLog",
        v2: Some("envoy.config.accesslog.v2.FileAccessLog"),
    },
    KnownExt {
        name: "envoy.access_loggers.stdout",
        v3: "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
        v2: None,
    },
    KnownExt {
        name: "envoy.access_loggers.stderr",
        v3: "envoy.extensions.access_loggers.stream.v3.StderrAccessLog",
        v2: None,
    },
];

pub const TRANSPORT_SOCKETS: &[KnownExt] = &[
    KnownExt {
        name: "envoy.transport_sockets.tls",
        v3: "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        v2: Some("envoy.api.v2.auth.UpstreamTlsContext"),
    },
    KnownExt {
        name: "envoy.transport_sockets.tls",
        v3: "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        v2: Some("envoy.api.v2.auth.DownstreamTlsContext"),
    },
    KnownExt {
        name: "envoy.transport_sockets.raw_buffer",
        v3: "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer",
        v2: None,
    },
];

/// The `{name, typed_config, config}` wrapper shared by network filters, HTTP filters,
/// access loggers and transport sockets.
pub const NETWORK_FILTER: Message = Message {
    name: "Filter",
    fields: &["name", "typed_config", "config"],
    ignored: &["config_discovery"],
};

/// What an extension entry resolved to.
#[derive(Debug)]
pub struct Resolved<'n> {
    /// The canonical v3 extension name, e.g. `envoy.filters.http.router` (the configured name
    /// when it could not be identified).
    pub ext: String,
    /// The v3 type URL (no prefix) when `@type` named one meshsim knows.
    pub type_url: Option<&'static str>,
    /// The name to keep in the model: as configured, legacy names rewritten, else `ext`.
    pub name: String,
    /// The configuration message; `None` means all defaults.
    pub config: Option<Field<'n>>,
    /// True when `config` is an `Any` carrying an `@type` key.
    pub config_is_any: bool,
    /// True when a v2 form selected the extension (`config:`, a legacy name or a v2 type URL).
    pub legacy: bool,
    /// What to point at when the extension itself is at fault: its `name` value, else its
    /// `@type` value, else the entry.
    pub at: Field<'n>,
}

const TYPE_URL_PREFIX: &str = "type.googleapis.com/";

/// Strips the `type.googleapis.com/` (or any other host) prefix of a type URL.
pub fn bare_type_url(url: &str) -> &str {
    url.rsplit_once('/').map_or(url, |(_, t)| t)
}

pub fn full_type_url(bare: &str) -> String {
    format!("{TYPE_URL_PREFIX}{bare}")
}

/// Best-effort canonical extension name for a type URL meshsim does not implement, so that the
/// "not supported" error names the extension the way Envoy's docs do.
pub fn ext_from_type_url(url: &str) -> Option<String> {
    let parts: Vec<&str> = url.split('.').collect();
    let find = |prefix: &[&str]| -> Option<String> {
        if parts.len() > prefix.len() + 1 && parts[..prefix.len()] == *prefix {
            Some(parts[prefix.len()].to_string())
        } else {
            None
        }
    };
    if let Some(x) = find(&["envoy", "extensions", "filters", "http"]) {
        return Some(format!("envoy.filters.http.{x}"));
    }
    if let Some(x) = find(&["envoy", "extensions", "filters", "network"]) {
        return Some(format!("envoy.filters.network.{x}"));
    }
    if let Some(x) = find(&["envoy", "config", "filter", "http"]) {
        return Some(format!("envoy.filters.http.{x}"));
    }
    if let Some(x) = find(&["envoy", "config", "filter", "network"]) {
        return Some(format!("envoy.filters.network.{x}"));
    }
    if let Some(x) = find(&["envoy", "extensions", "access_loggers"]) {
        return Some(format!("envoy.access_loggers.{x}"));
    }
    if let Some(x) = find(&["envoy", "extensions", "transport_sockets"]) {
        return Some(format!("envoy.transport_sockets.{x}"));
    }
    None
}

/// Resolves the extension selected by the wrapper object `o`.
pub fn resolve<'n, 'k>(
    d: &mut Decoder,
    o: &Obj<'n>,
    cat: Category,
    known: impl Iterator<Item = &'k KnownExt> + Clone,
) -> Option<Resolved<'n>> {
    let name_field = o.get("name");
    let configured = match &name_field {
        Some(f) => scalars::string(d, f).filter(|s| !s.is_empty()),
        None => None,
    };
    let typed = o.get("typed_config");
    let legacy_config = o.get("config");
    if let (Some(_), Some(c)) = (&typed, &legacy_config) {
        d.oneof_conflict(c, "typed_config");
    }

    let mut legacy = false;
    let mut type_url: Option<String> = None;
    let mut config = None;
    let mut config_is_any = false;

    if let Some(t) = &typed {
        match &t.node.value {
            Value::Map(entries) if entries.iter().any(|(k, _)| k.name == "@type") => {
                let url_node = t.node.get("@type").expect("checked above");
                let url = url_node.as_scalar().unwrap_or_default();
                let bare = bare_type_url(url);
                if is_typed_struct(bare) {
                    let (inner_url, value) = typed_struct(d, t)?;
                    type_url = Some(inner_url);
                    config = value;
                } else {
                    type_url = Some(bare.to_string());
                    config = Some(t.clone());
                    config_is_any = true;
                }
            }
            Value::Map(entries) if entries.is_empty() => {}
            Value::Null => {}
            Value::Map(_) => {
                d.error_help(
                    t,
                    "`typed_config` has no `@type`",
                    "add `\"@type\": type.googleapis.com/<config message>`; an `Any` must say which message it holds",
                );
                return None;
            }
            _ => {
                d.error_at_value(
                    t,
                    format!(
                        "`typed_config` must be a mapping, found a {}",
                        t.node.kind()
                    ),
                    None,
                );
                return None;
            }
        }
    } else if let Some(c) = &legacy_config {
        legacy = true;
        d.deprecated(
            "config",
            c,
            "deprecated v2 field `config`; loaded as `typed_config`".into(),
            "write `typed_config:` with an `\"@type\"` naming the v3 config message (v2 `config:` was removed in Envoy 1.18)"
                .into(),
        );
        config = Some(c.clone());
    }

    let mut known_url: Option<&'static str> = None;
    let ext = if let Some(url) = &type_url {
        let url_field = typed.as_ref().unwrap_or(o.field_ref());
        match known
            .clone()
            .find(|k| k.v3 == url || k.v2 == Some(url.as_str()))
        {
            Some(k) => {
                if k.v2 == Some(url.as_str()) {
                    legacy = true;
                    deprecated_type_url(d, url_field, url, k.v3);
                }
                known_url = Some(k.v3);
                k.name.to_string()
            }
            None => ext_from_type_url(url).unwrap_or_else(|| url.clone()),
        }
    } else if let Some(name) = &configured {
        match cat.legacy_names().iter().find(|(old, _)| old == name) {
            Some((_, new)) => new.to_string(),
            None => name.clone(),
        }
    } else {
        d.error(
            o.field_ref(),
            format!(
                "{} needs a `name` or a `typed_config` with an `@type`",
                cat.label()
            ),
        );
        return None;
    };

    // A legacy name is reported even when `@type` selected the extension: the model keeps the
    // v3 name, and the user should learn it.
    let name = match &configured {
        Some(n) => match cat.legacy_names().iter().find(|(old, _)| old == n) {
            Some((old, new)) => {
                legacy = true;
                let f = name_field.as_ref().expect("configured implies the field");
                d.deprecated(
                    &format!("name:{old}"),
                    f,
                    format!("deprecated extension name `{old}`; loaded as `{new}`"),
                    format!("Envoy 1.14 renamed `{old}` to `{new}` and later versions reject the old name"),
                );
                new.to_string()
            }
            None => n.clone(),
        },
        None => ext.clone(),
    };

    let at = name_field
        .or_else(|| {
            let t = typed.as_ref()?;
            let url = t.node.get("@type")?;
            Some(Field {
                node: url,
                span: url.span,
                path: format!("{}.@type", t.path),
            })
        })
        .unwrap_or_else(|| o.field_ref().clone());
    Some(Resolved {
        ext,
        type_url: known_url,
        name,
        config,
        config_is_any,
        legacy,
        at,
    })
}

/// One warning per v2 type URL, naming the v3 one.
pub fn deprecated_type_url(d: &mut Decoder, f: &Field, v2: &str, v3: &str) {
    d.deprecated(
        &format!("type:{v2}"),
        f,
        format!("deprecated v2 type `{v2}`; loaded as `{v3}`"),
        format!(
            "Envoy removed the v2 API in 1.18: write `\"@type\": {}`",
            full_type_url(v3)
        ),
    );
}

fn is_typed_struct(url: &str) -> bool {
    url == "udpa.type.v1.TypedStruct" || url == "xds.type.v3.TypedStruct"
}

/// `TypedStruct {type_url, value}`: an untyped config that names its message.
fn typed_struct<'n>(d: &mut Decoder, t: &Field<'n>) -> Option<(String, Option<Field<'n>>)> {
    const TYPED_STRUCT: Message = Message {
        name: "TypedStruct",
        fields: &["type_url", "value"],
        ignored: &[],
    };
    let o = d.obj_any(t, &TYPED_STRUCT)?;
    let url = match o.get("type_url") {
        Some(f) => scalars::string(d, &f)?,
        None => {
            d.missing(&o, "type_url");
            return None;
        }
    };
    Some((bare_type_url(&url).to_string(), o.get("value")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_extension_names_from_type_urls() {
        assert_eq!(
            ext_from_type_url("envoy.extensions.filters.http.fault.v3.HTTPFault").as_deref(),
            Some("envoy.filters.http.fault")
        );
        assert_eq!(
            ext_from_type_url("envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy").as_deref(),
            Some("envoy.filters.network.tcp_proxy")
        );
        assert_eq!(
            ext_from_type_url("envoy.config.filter.http.buffer.v2.Buffer").as_deref(),
            Some("envoy.filters.http.buffer")
        );
        assert_eq!(ext_from_type_url("foo.Bar"), None);
        assert_eq!(
            bare_type_url("type.googleapis.com/envoy.api.v2.Cluster"),
            "envoy.api.v2.Cluster"
        );
    }
}
