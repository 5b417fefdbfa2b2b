//! `/server_info` (envoy.admin.v3.ServerInfo), `/ready`, `/runtime` and `/listeners`.

use serde_json::{json, Value};

use crate::proxy::server::Shared;

use super::clusters::address_json;

/// Envoy's version string shape `<build>/<version>/<status>/<type>/<ssl>`; scripts parse the
/// second field. meshsim reports the Envoy API it emulates there and names itself first.
pub fn version_string() -> String {
    format!(
        "meshsim-{}/1.36.0/Clean/RELEASE/rustls",
        env!("CARGO_PKG_VERSION")
    )
}

pub fn server_info(shared: &Shared) -> String {
    let o = &shared.options;
    let uptime = format!("{}s", shared.started.elapsed().as_secs());
    let info = json!({
        "version": version_string(),
        "state": shared.state().name(),
        "hot_restart_version": "disabled",
        "command_line_options": {
            "base_id": "0",
            "use_dynamic_base_id": false,
            "concurrency": o.concurrency,
            "config_path": o.config_path.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            "config_yaml": o.config_yaml.clone().unwrap_or_default(),
            "allow_unknown_static_fields": false,
            "reject_unknown_dynamic_fields": false,
            "ignore_unknown_dynamic_fields": false,
            "admin_address_path": "",
            "local_address_ip_version": "v4",
            "log_level": o.log_level,
            "component_log_level": "",
            "log_format": "[%Y-%m-%d %T.%e][%t][%l][%n] [%g:%#] %v",
            "log_format_escaped": false,
            "log_path": "",
            "service_cluster": o.service_cluster.clone().unwrap_or_default(),
            "service_node": o.service_node.clone().unwrap_or_default(),
            "service_zone": o.service_zone.clone().unwrap_or_default(),
            "drain_strategy": "Gradual",
            "mode": o.mode,
            "disable_hot_restart": true,
            "enable_mutex_tracing": false,
            "restart_epoch": 0,
            "cpuset_threads": false,
            "disabled_extensions": [],
            "enable_fine_grain_logging": false,
            "socket_path": "@envoy_domain_socket",
            "socket_mode": 0,
            "enable_core_dump": false,
            "stats_tag": [],
            "file_flush_interval": "10s",
            "drain_time": format!("{}s", o.drain_time.as_secs()),
            "parent_shutdown_time": "900s",
        },
        "node": {
            "id": shared.node.id,
            "cluster": shared.node.cluster,
            "user_agent_name": "envoy",
            "user_agent_build_version": {"version": {"major_number": 1, "minor_number": 36}},
        },
        "uptime_current_epoch": uptime,
        "uptime_all_epochs": uptime,
    });
    pretty(&info)
}

pub fn listeners_text(shared: &Shared) -> String {
    shared
        .listener_addrs
        .iter()
        .map(|(name, addr)| format!("{name}::{addr}\n"))
        .collect()
}

pub fn listeners_json(shared: &Shared) -> String {
    let statuses: Vec<Value> = shared
        .listener_addrs
        .iter()
        .map(|(name, addr)| json!({"name": name, "local_address": address_json(*addr)}))
        .collect();
    pretty(&json!({"listener_statuses": statuses}))
}

pub fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("JSON values always serialise");
    s.push('\n');
    s
}
