//! The upstream HTTP protocol of a cluster: the deprecated cluster fields
//! (`http2_protocol_options`, `http_protocol_options`, `protocol_selection`) or the v3
//! `typed_extension_protocol_options` with `envoy.extensions.upstreams.http.v3.HttpProtocolOptions`
//! (`explicit_http_config`, `use_downstream_protocol_config`, `auto_config`).

use super::super::diagnostics::Diagnostic;
use super::super::model::UpstreamProtocol;
use super::super::node::Value;
use super::extensions::{bare_type_url, full_type_url};
use super::scalars;
use super::{Decoder, Field, Message, Obj};
use std::time::Duration;

pub const HTTP_PROTOCOL_OPTIONS_URL: &str =
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

const HTTP_PROTOCOL_OPTIONS: Message = Message {
    name: "HttpProtocolOptions",
    fields: &[
        "explicit_http_config",
        "use_downstream_protocol_config",
        "auto_config",
        "common_http_protocol_options",
    ],
    ignored: &[
        "upstream_http_protocol_options",
        "http_filters",
        "header_validation_config",
        "outlier_detection",
    ],
};

const EXPLICIT_HTTP_CONFIG: Message = Message {
    name: "ExplicitHttpConfig",
    fields: &[
        "http_protocol_options",
        "http2_protocol_options",
        "http3_protocol_options",
    ],
    ignored: &[],
};

const AUTO_HTTP_CONFIG: Message = Message {
    name: "AutoHttpConfig",
    fields: &[
        "http_protocol_options",
        "http2_protocol_options",
        "http3_protocol_options",
    ],
    ignored: &["alternate_protocols_cache_options"],
};

const CORE_HTTP_PROTOCOL_OPTIONS: Message = Message {
    name: "HttpProtocolOptions",
    fields: &["max_requests_per_connection", "idle_timeout"],
    ignored: &[
        "max_connection_duration",
        "max_headers_count",
        "max_stream_duration",
        "headers_with_underscores_action",
        "max_response_headers_kb",
    ],
};

/// `common_http_protocol_options` of a cluster's `HttpProtocolOptions`, as written (unset fields
/// are `None`; the caller applies Envoy's defaults).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct CommonHttpOptions {
    pub max_requests_per_connection: Option<u32>,
    pub idle_timeout: Option<Duration>,
}

impl CommonHttpOptions {
    /// The connection idle timeout in force: Envoy's 1 h when unset, none when set to 0.
    pub fn idle_timeout_in_force(&self) -> Option<Duration> {
        match self.idle_timeout {
            None => Some(super::hcm::DEFAULT_IDLE_TIMEOUT),
            Some(t) if t.is_zero() => None,
            Some(t) => Some(t),
        }
    }
}

/// Reads a `common_http_protocol_options` message (`HttpProtocolOptions` in config.core).
pub fn common_http_options(d: &mut Decoder, f: &Field) -> CommonHttpOptions {
    let Some(o) = d.obj(f, &CORE_HTTP_PROTOCOL_OPTIONS) else {
        return CommonHttpOptions::default();
    };
    CommonHttpOptions {
        max_requests_per_connection: o
            .get("max_requests_per_connection")
            .and_then(|m| scalars::u32(d, &m)),
        idle_timeout: o.get("idle_timeout").and_then(|t| scalars::duration(d, &t)),
    }
}

/// The upstream protocol from the legacy cluster fields or `typed_extension_protocol_options`,
/// plus the latter's `common_http_protocol_options`.
pub fn upstream_protocol(d: &mut Decoder, o: &Obj) -> (UpstreamProtocol, CommonHttpOptions) {
    let typed_help = format!(
        "write `typed_extension_protocol_options: {{{HTTP_PROTOCOL_OPTIONS_URL}: {{\"@type\": {}, explicit_http_config: {{http2_protocol_options: {{}}}}}}}}`",
        full_type_url(HTTP_PROTOCOL_OPTIONS_URL)
    );
    let mut protocol = UpstreamProtocol::Http1;
    let mut legacy: Option<Field> = None;
    if let Some(h2) = o.get("http2_protocol_options") {
        d.deprecated(
            "Cluster.http2_protocol_options",
            &h2,
            "deprecated field `http2_protocol_options` in Cluster; loaded as `typed_extension_protocol_options` (HttpProtocolOptions explicit_http_config.http2_protocol_options)".into(),
            typed_help.clone(),
        );
        opaque_options(d, &h2, "Http2ProtocolOptions");
        protocol = UpstreamProtocol::Http2;
        legacy = Some(h2);
    }
    if let Some(h1) = o.get("http_protocol_options") {
        d.deprecated(
            "Cluster.http_protocol_options",
            &h1,
            "deprecated field `http_protocol_options` in Cluster; loaded as `typed_extension_protocol_options` (HttpProtocolOptions explicit_http_config.http_protocol_options)".into(),
            typed_help.replace("http2_protocol_options", "http_protocol_options"),
        );
        opaque_options(d, &h1, "Http1ProtocolOptions");
        legacy.get_or_insert(h1);
    }
    if let Some(p) = o.get("protocol_selection") {
        let sel = scalars::enum_name(
            d,
            &p,
            "Cluster.ClusterProtocolSelection",
            &["USE_CONFIGURED_PROTOCOL", "USE_DOWNSTREAM_PROTOCOL"],
        );
        d.deprecated(
            "Cluster.protocol_selection",
            &p,
            "deprecated field `protocol_selection` in Cluster; loaded as HttpProtocolOptions `use_downstream_protocol_config`".into(),
            typed_help.replace(
                "explicit_http_config: {http2_protocol_options: {}}",
                "use_downstream_protocol_config: {http2_protocol_options: {}}",
            ),
        );
        if sel == Some("USE_DOWNSTREAM_PROTOCOL") {
            protocol = UpstreamProtocol::UseDownstream;
        }
        legacy.get_or_insert(p);
    }
    let Some(t) = o.get("typed_extension_protocol_options") else {
        return (protocol, CommonHttpOptions::default());
    };
    if let Some(l) = &legacy {
        d.error_help(
            l,
            format!(
                "`{}` cannot be combined with `typed_extension_protocol_options`",
                l.name()
            ),
            "Envoy rejects a cluster that sets both; keep the `typed_extension_protocol_options` form",
        );
    }
    let Some(entries) = t.node.as_map() else {
        d.error_at_value(
            &t,
            "`typed_extension_protocol_options` must be a mapping",
            None,
        );
        return (protocol, CommonHttpOptions::default());
    };
    let mut common = CommonHttpOptions::default();
    for (key, value) in entries {
        let entry = t.child(key, value);
        let url = value
            .get("@type")
            .and_then(|n| n.as_scalar())
            .map(bare_type_url);
        if url == Some(HTTP_PROTOCOL_OPTIONS_URL)
            || (url.is_none() && key.name == HTTP_PROTOCOL_OPTIONS_URL)
        {
            if let Some((p, c)) = http_protocol_options(d, &entry) {
                protocol = p;
                common = c;
            }
        } else {
            d.warn_once(
                format!("ignored-protocol-options:{}", key.name),
                Diagnostic::warning(
                    entry.path.clone(),
                    entry.span,
                    format!(
                        "protocol options for `{}` are not simulated by meshsim; ignored",
                        key.name
                    ),
                ),
            );
        }
    }
    (protocol, common)
}

fn http_protocol_options(
    d: &mut Decoder,
    f: &Field,
) -> Option<(UpstreamProtocol, CommonHttpOptions)> {
    let o = d.obj_any(f, &HTTP_PROTOCOL_OPTIONS)?;
    let common = o
        .get("common_http_protocol_options")
        .map(|c| common_http_options(d, &c))
        .unwrap_or_default();
    let mut protocol = None;
    for key in [
        "explicit_http_config",
        "use_downstream_protocol_config",
        "auto_config",
    ] {
        let Some(v) = o.get(key) else { continue };
        if protocol.is_some() {
            d.oneof_conflict(&v, "explicit_http_config");
            continue;
        }
        let msg = if key == "auto_config" {
            &AUTO_HTTP_CONFIG
        } else {
            &EXPLICIT_HTTP_CONFIG
        };
        let Some(po) = d.obj(&v, msg) else { continue };
        if let Some(h3) = po.get("http3_protocol_options") {
            d.error_help(
                &h3,
                "HTTP/3 upstreams are not simulated by meshsim",
                "use `http2_protocol_options` or `http_protocol_options`",
            );
        }
        let h2 = po.get("http2_protocol_options");
        let h1 = po.get("http_protocol_options");
        if let Some(h) = &h2 {
            opaque_options(d, h, "Http2ProtocolOptions");
        }
        if let Some(h) = &h1 {
            opaque_options(d, h, "Http1ProtocolOptions");
        }
        protocol = Some(match key {
            "use_downstream_protocol_config" => UpstreamProtocol::UseDownstream,
            "auto_config" => {
                let chosen = if h2.is_some() { "HTTP/2" } else { "HTTP/1.1" };
                d.warn_once(
                    "auto_config",
                    Diagnostic::warning(
                        v.path.clone(),
                        v.span,
                        format!("ALPN is not simulated by meshsim: `auto_config` upstreams use {chosen}"),
                    )
                    .with_help("meshsim uses HTTP/2 when `http2_protocol_options` is set, else HTTP/1.1; use `explicit_http_config` to say so"),
                );
                if h2.is_some() {
                    UpstreamProtocol::Http2
                } else {
                    UpstreamProtocol::Http1
                }
            }
            _ => {
                if let (Some(_), Some(h)) = (&h1, &h2) {
                    d.oneof_conflict(h, "http_protocol_options");
                }
                if h2.is_some() {
                    UpstreamProtocol::Http2
                } else {
                    UpstreamProtocol::Http1
                }
            }
        });
    }
    Some((protocol.unwrap_or(UpstreamProtocol::Http1), common))
}

/// HTTP/1 and HTTP/2 tuning options are accepted but not simulated: one warning when set.
fn opaque_options(d: &mut Decoder, f: &Field, message: &str) {
    match &f.node.value {
        Value::Map(entries) if !entries.is_empty() => {
            d.warn_once(
                format!("opaque:{message}"),
                Diagnostic::warning(
                    f.path.clone(),
                    f.span,
                    format!(
                        "settings inside `{}` ({message}) are not simulated by meshsim; ignored",
                        f.name()
                    ),
                ),
            );
        }
        Value::Map(_) | Value::Null => {}
        _ => d.error_at_value(
            f,
            format!("`{}` must be a mapping ({message})", f.name()),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::model::Cluster;
    use super::super::super::node::parse;
    use super::super::cluster::cluster;
    use super::super::Mode;
    use super::*;
    use std::path::PathBuf;

    fn run(yaml: &str) -> (Option<Cluster>, Vec<String>) {
        let doc = parse(yaml).unwrap();
        let (k, v) = &doc.as_map().unwrap()[0];
        let f = Field::root(&doc).child(k, v);
        let mut d = Decoder::new(PathBuf::from("."), Mode::Bootstrap);
        let c = cluster(&mut d, &f, false);
        (c, d.finish().into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn auto_config_warns_about_alpn() {
        let (c, w) = run(
            "c:\n  name: s\n  typed_extension_protocol_options:\n    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n      \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n      auto_config: {http2_protocol_options: {}, http_protocol_options: {}}\n",
        );
        assert_eq!(c.unwrap().upstream_protocol, UpstreamProtocol::Http2);
        assert_eq!(
            w,
            ["ALPN is not simulated by meshsim: `auto_config` upstreams use HTTP/2"]
        );
    }

    #[test]
    fn connection_idle_timeout_defaults_to_an_hour_and_zero_turns_it_off() {
        let typed = |common: &str| {
            format!(
                "c:\n  name: s\n  typed_extension_protocol_options:\n    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n      \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n      explicit_http_config: {{http_protocol_options: {{}}}}\n      common_http_protocol_options: {common}\n"
            )
        };
        let idle = |yaml: &str| {
            let (c, w) = run(yaml);
            assert!(w.is_empty(), "{w:?}");
            c.unwrap().idle_timeout
        };
        assert_eq!(idle("c:\n  name: s\n"), Some(Duration::from_secs(3600)));
        assert_eq!(idle(&typed("{}")), Some(Duration::from_secs(3600)));
        assert_eq!(
            idle(&typed("{idle_timeout: 30s}")),
            Some(Duration::from_secs(30))
        );
        assert_eq!(idle(&typed("{idle_timeout: 0s}")), None);

        // The deprecated cluster-level field still works, with a warning; the typed one wins.
        let (c, w) = run("c:\n  name: s\n  common_http_protocol_options: {idle_timeout: 2s}\n");
        assert_eq!(c.unwrap().idle_timeout, Some(Duration::from_secs(2)));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("deprecated field `common_http_protocol_options` in Cluster"));
        let both = typed("{idle_timeout: 5s}") + "  common_http_protocol_options: {idle_timeout: 2s, max_requests_per_connection: 7}\n";
        let (c, _) = run(&both);
        let c = c.unwrap();
        assert_eq!(c.idle_timeout, Some(Duration::from_secs(5)));
        assert_eq!(c.max_requests_per_connection, Some(7));
    }

    #[test]
    fn use_downstream_and_legacy_conflicts() {
        let (c, w) = run(
            "c:\n  name: s\n  typed_extension_protocol_options:\n    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n      \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n      use_downstream_protocol_config: {http2_protocol_options: {}}\n      common_http_protocol_options: {max_requests_per_connection: 10}\n",
        );
        assert!(w.is_empty(), "{w:?}");
        let c = c.unwrap();
        assert_eq!(c.upstream_protocol, UpstreamProtocol::UseDownstream);
        assert_eq!(c.max_requests_per_connection, Some(10));
        let (_, e) = run(
            "c:\n  name: s\n  http2_protocol_options: {}\n  typed_extension_protocol_options:\n    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n      \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n      explicit_http_config: {http2_protocol_options: {}}\n",
        );
        assert_eq!(
            e[0],
            "`http2_protocol_options` cannot be combined with `typed_extension_protocol_options`"
        );
    }
}
