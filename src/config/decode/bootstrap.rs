//! The bootstrap: node, admin, static resources, runtime layers and the stats flush interval.
//! `dynamic_resources` is rejected: meshsim has no management server (an xDS bundle file is
//! loaded by `xds_bundle` instead).

use std::time::Duration;

use super::super::model::{
    AccessLog, AccessLogFormat, AccessLogSink, Admin, Bootstrap, NodeInfo, RuntimeLayer,
    RuntimeLayerKind,
};
use super::access_log::access_logs;
use super::address::{address, Host};
use super::cluster::cluster;
use super::listener::listener;
use super::scalars;
use super::{Decoder, Field, Message};

pub const DEFAULT_STATS_FLUSH_INTERVAL: Duration = Duration::from_secs(5);

pub const BOOTSTRAP: Message = Message {
    name: "Bootstrap",
    fields: &[
        "node",
        "static_resources",
        "dynamic_resources",
        "admin",
        "layered_runtime",
        "runtime",
        "stats_flush_interval",
    ],
    ignored: &[
        "node_context_params",
        "cluster_manager",
        "hds_config",
        "flags_path",
        "stats_sinks",
        "deferred_stat_options",
        "stats_config",
        "stats_flush_on_admin",
        "watchdog",
        "watchdogs",
        "tracing",
        "overload_manager",
        "enable_dispatcher_stats",
        "header_prefix",
        "stats_server_version_override",
        "use_tcp_for_dns_lookups",
        "dns_resolution_config",
        "typed_dns_resolver_config",
        "bootstrap_extensions",
        "fatal_actions",
        "config_sources",
        "default_config_source",
        "default_socket_interface",
        "certificate_provider_instances",
        "inline_headers",
        "perf_tracing_file_path",
        "default_regex_engine",
        "xds_delegate_extension",
        "xds_config_tracker_extension",
        "listener_manager",
        "application_log_config",
        "grpc_async_client_manager_config",
        "memory_allocator_manager",
    ],
};

const STATIC_RESOURCES: Message = Message {
    name: "StaticResources",
    fields: &["listeners", "clusters"],
    ignored: &["secrets"],
};

const NODE: Message = Message {
    name: "Node",
    fields: &["id", "cluster"],
    ignored: &[
        "metadata",
        "dynamic_parameters",
        "locality",
        "user_agent_name",
        "user_agent_version",
        "user_agent_build_version",
        "extensions",
        "client_features",
        "listening_addresses",
        "build_version",
    ],
};

const ADMIN: Message = Message {
    name: "Admin",
    fields: &["address", "access_log", "access_log_path"],
    ignored: &[
        "profile_path",
        "socket_options",
        "ignore_global_conn_limit",
        "allow_paths",
    ],
};

const LAYERED_RUNTIME: Message = Message {
    name: "LayeredRuntime",
    fields: &["layers"],
    ignored: &[],
};

const RUNTIME_LAYER: Message = Message {
    name: "RuntimeLayer",
    fields: &[
        "name",
        "static_layer",
        "disk_layer",
        "admin_layer",
        "rtds_layer",
    ],
    ignored: &[],
};

const RUNTIME: Message = Message {
    name: "Runtime",
    fields: &[
        "symlink_root",
        "subdirectory",
        "override_subdirectory",
        "base",
    ],
    ignored: &[],
};

pub fn bootstrap(d: &mut Decoder, root: &Field) -> Option<Bootstrap> {
    let o = d.obj(root, &BOOTSTRAP)?;
    if let Some(dynamic) = o.get("dynamic_resources") {
        d.error_help(
            &dynamic,
            "xDS is not simulated; put resources in static_resources",
            "or give meshsim the DiscoveryResponse file itself: a YAML file whose top-level `resources:` list holds the Listener, RouteConfiguration and Cluster resources",
        );
    }
    let node = o.get("node").map(|n| node(d, &n)).unwrap_or_default();
    let admin = o.get("admin").and_then(|a| admin(d, &a));
    let mut listeners = Vec::new();
    let mut clusters = Vec::new();
    if let Some(s) = o.get("static_resources") {
        if let Some(so) = d.obj(&s, &STATIC_RESOURCES) {
            if let Some(l) = so.get("listeners") {
                for (i, item) in d.seq(&l).iter().enumerate() {
                    if let Some(listener) = listener(d, item, i, false) {
                        listeners.push(listener);
                    }
                }
            }
            if let Some(c) = so.get("clusters") {
                for item in d.seq(&c) {
                    if let Some(c) = cluster(d, &item, false) {
                        clusters.push(c);
                    }
                }
            }
        }
    }
    let stats_flush_interval = stats_flush_interval(d, o.get("stats_flush_interval"));
    let runtime_layers = runtime(d, o.get("layered_runtime"), o.get("runtime"));
    Some(Bootstrap {
        node,
        admin,
        listeners,
        clusters,
        stats_flush_interval,
        runtime_layers,
    })
}

pub fn stats_flush_interval(d: &mut Decoder, f: Option<Field>) -> Duration {
    let Some(f) = f else {
        return DEFAULT_STATS_FLUSH_INTERVAL;
    };
    match scalars::duration(d, &f) {
        Some(v) if v >= Duration::from_millis(1) && v <= Duration::from_secs(300) => v,
        Some(_) => {
            d.error_at_value(
                &f,
                "`stats_flush_interval` must be between 1ms and 300s",
                None,
            );
            DEFAULT_STATS_FLUSH_INTERVAL
        }
        None => DEFAULT_STATS_FLUSH_INTERVAL,
    }
}

pub fn node(d: &mut Decoder, f: &Field) -> NodeInfo {
    let Some(o) = d.obj(f, &NODE) else {
        return NodeInfo::default();
    };
    NodeInfo {
        id: o
            .get("id")
            .and_then(|v| scalars::string(d, &v))
            .unwrap_or_default(),
        cluster: o
            .get("cluster")
            .and_then(|v| scalars::string(d, &v))
            .unwrap_or_default(),
    }
}

/// `admin`; without an address Envoy runs no admin listener, so the result is `None`.
pub fn admin(d: &mut Decoder, f: &Field) -> Option<Admin> {
    let o = d.obj(f, &ADMIN)?;
    let mut access_log: Vec<AccessLog> = o
        .get("access_log")
        .map(|a| access_logs(d, &a))
        .unwrap_or_default();
    if let Some(p) = o.get("access_log_path") {
        d.deprecated(
            "Admin.access_log_path",
            &p,
            "deprecated field `access_log_path` in Admin; loaded as `admin.access_log` with a file logger".into(),
            "write `access_log: [{name: envoy.access_loggers.file, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog, path: ...}}]`".into(),
        );
        if let Some(path) = scalars::string(d, &p).filter(|p| !p.is_empty()) {
            access_log.push(AccessLog {
                name: "envoy.access_loggers.file".into(),
                sink: AccessLogSink::File(path),
                format: AccessLogFormat::Default,
            });
        }
    }
    let af = o.get("address")?;
    let address = address(d, &af, Host::Ip)?;
    d.facts.admin_address = Some((address.clone(), af.value_span()));
    Some(Admin {
        address,
        access_log,
    })
}

/// Runtime layers as Envoy builds them: `layered_runtime` as given (an empty one gets an admin
/// layer); otherwise the deprecated `runtime` translated the way Envoy's `translateRuntime`
/// does, which with no `runtime` either yields a `base` static layer and an `admin` layer.
pub fn runtime(
    d: &mut Decoder,
    layered: Option<Field>,
    legacy: Option<Field>,
) -> Vec<RuntimeLayer> {
    if let Some(l) = layered {
        if let Some(r) = &legacy {
            d.oneof_conflict(r, "layered_runtime");
        }
        let Some(o) = d.obj(&l, &LAYERED_RUNTIME) else {
            return Vec::new();
        };
        let mut layers = Vec::new();
        if let Some(list) = o.get("layers") {
            for item in d.seq(&list) {
                if let Some(layer) = runtime_layer(d, &item) {
                    layers.push(layer);
                }
            }
        }
        if layers.is_empty() {
            layers.push(admin_layer("admin"));
        }
        return layers;
    }
    let mut layers = Vec::new();
    let mut base = serde_json::Value::Object(Default::default());
    let mut disk = Vec::new();
    if let Some(r) = legacy {
        d.deprecated(
            "Bootstrap.runtime",
            &r,
            "deprecated v2 field `runtime` in Bootstrap; loaded as `layered_runtime`".into(),
            "write `layered_runtime: {layers: [{name: base, static_layer: {...}}, {name: admin, admin_layer: {}}]}`".into(),
        );
        if let Some(o) = d.obj(&r, &RUNTIME) {
            if let Some(b) = o.get("base") {
                base = b.node.to_json();
            }
            let root = o.get("symlink_root").and_then(|s| scalars::string(d, &s));
            for key in ["subdirectory", "override_subdirectory"] {
                if let Some(s) = o.get(key) {
                    scalars::string(d, &s);
                }
            }
            if root.is_some_and(|r| !r.is_empty()) {
                disk.push("root");
                if o.has("override_subdirectory") {
                    disk.push("override");
                }
                d.warn_once(
                    "disk-runtime",
                    super::super::diagnostics::Diagnostic::warning(
                        r.path.clone(),
                        r.span,
                        "disk runtime layers are not loaded by meshsim; they are listed but empty",
                    ),
                );
            }
        }
    }
    layers.push(RuntimeLayer {
        name: "base".into(),
        static_layer: Some(base),
        kind: RuntimeLayerKind::Static,
    });
    for name in disk {
        layers.push(RuntimeLayer {
            name: name.into(),
            static_layer: None,
            kind: RuntimeLayerKind::Disk,
        });
    }
    layers.push(admin_layer("admin"));
    layers
}

fn admin_layer(name: &str) -> RuntimeLayer {
    RuntimeLayer {
        name: name.into(),
        static_layer: None,
        kind: RuntimeLayerKind::Admin,
    }
}

fn runtime_layer(d: &mut Decoder, f: &Field) -> Option<RuntimeLayer> {
    let o = d.obj(f, &RUNTIME_LAYER)?;
    let name = match o.get("name") {
        Some(n) => scalars::string(d, &n)?,
        None => {
            d.missing(&o, "name");
            return None;
        }
    };
    let mut kind: Option<(&str, (RuntimeLayerKind, Option<serde_json::Value>))> = None;
    for key in ["static_layer", "disk_layer", "admin_layer", "rtds_layer"] {
        let Some(v) = o.get(key) else { continue };
        if let Some((first, _)) = &kind {
            d.oneof_conflict(&v, first);
            continue;
        }
        let layer = match key {
            "static_layer" => {
                let json = v.node.to_json();
                let json = if json.is_null() {
                    serde_json::Value::Object(Default::default())
                } else {
                    json
                };
                if !json.is_object() {
                    d.error_at_value(&v, "`static_layer` must be a mapping", None);
                    return None;
                }
                (RuntimeLayerKind::Static, Some(json))
            }
            "disk_layer" => {
                d.warn_once(
                    "disk-runtime",
                    super::super::diagnostics::Diagnostic::warning(
                        v.path.clone(),
                        v.span,
                        "disk runtime layers are not loaded by meshsim; they are listed but empty",
                    ),
                );
                (RuntimeLayerKind::Disk, None)
            }
            "admin_layer" => (RuntimeLayerKind::Admin, None),
            _ => {
                d.warn_once(
                    "rtds-runtime",
                    super::super::diagnostics::Diagnostic::warning(
                        v.path.clone(),
                        v.span,
                        "RTDS runtime layers are not loaded by meshsim (xDS is not simulated); they are listed but empty",
                    ),
                );
                (RuntimeLayerKind::Rtds, None)
            }
        };
        kind = Some((key, layer));
    }
    let Some((_, (kind, static_layer))) = kind else {
        d.error_help(
            o.field_ref(),
            format!("runtime layer `{name}` has no layer type"),
            "set one of static_layer, disk_layer, admin_layer or rtds_layer",
        );
        return None;
    };
    Some(RuntimeLayer {
        name,
        static_layer,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::super::super::node::parse;
    use super::super::Mode;
    use super::*;
    use std::path::PathBuf;

    fn run(yaml: &str) -> (Option<Bootstrap>, Vec<String>) {
        let doc = parse(yaml).unwrap();
        let mut d = Decoder::new(PathBuf::from("."), Mode::Bootstrap);
        let b = bootstrap(&mut d, &Field::root(&doc));
        (b, d.finish().into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn empty_bootstrap_gets_envoy_defaults() {
        let (b, e) = run("{}");
        assert!(e.is_empty());
        let b = b.unwrap();
        assert_eq!(b.admin, None);
        assert_eq!(b.stats_flush_interval, DEFAULT_STATS_FLUSH_INTERVAL);
        let names: Vec<_> = b.runtime_layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["base", "admin"]);
    }

    #[test]
    fn admin_with_deprecated_access_log_path() {
        let (b, w) = run(
            "node: {id: n1, cluster: front-proxy}\nadmin:\n  access_log_path: /tmp/admin_access.log\n  address:\n    socket_address: { address: 0.0.0.0, port_value: 9901 }\n",
        );
        let b = b.unwrap();
        assert_eq!(b.node.cluster, "front-proxy");
        let admin = b.admin.unwrap();
        assert_eq!(admin.address.port, 9901);
        assert_eq!(
            admin.access_log[0].sink,
            AccessLogSink::File("/tmp/admin_access.log".into())
        );
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn dynamic_resources_and_layered_runtime() {
        let (b, e) = run(
            "dynamic_resources: {lds_config: {ads: {}}}\nlayered_runtime:\n  layers:\n  - name: static_layer_0\n    static_layer: {envoy: {resource_limits: {listener: {example_listener_name: {connection_limit: 10000}}}}}\n",
        );
        assert_eq!(
            e,
            ["xDS is not simulated; put resources in static_resources"]
        );
        let b = b.unwrap();
        assert_eq!(b.runtime_layers.len(), 1);
        assert_eq!(
            b.runtime_layers[0].static_layer.as_ref().unwrap()["envoy"]["resource_limits"]
                ["listener"]["example_listener_name"]["connection_limit"],
            10000
        );
    }
}
