//! `/config_dump` prints the model in v3 form whatever the input generation was.

use std::path::{Path, PathBuf};

use meshsim::config::{config_dump, load_file, load_str};
use serde_json::{json, Value};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn dump(rel: &str) -> Value {
    config_dump(&load_file(&fixture(rel)).unwrap().bootstrap)
}

const T: &str = "type.googleapis.com/";

#[test]
fn v2_front_proxy_dumps_as_v3() {
    let d = dump("seeds/001-front-envoy.yaml");
    let configs = d["configs"].as_array().unwrap();
    let types: Vec<&str> = configs
        .iter()
        .map(|c| c["@type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
            "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
            "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
            "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
        ]
    );

    let cluster = &configs[1]["static_clusters"][0]["cluster"];
    assert_eq!(
        cluster["@type"],
        format!("{T}envoy.config.cluster.v3.Cluster")
    );
    assert_eq!(cluster["name"], "service1");
    assert_eq!(cluster["type"], "STRICT_DNS");
    assert_eq!(cluster["connect_timeout"], "0.250s");
    assert!(cluster.get("hosts").is_none());
    assert!(cluster.get("http2_protocol_options").is_none());
    assert_eq!(
        cluster["load_assignment"],
        json!({"cluster_name": "service1", "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "service1", "port_value": 80}}}}
        ]}]})
    );
    let options = &cluster["typed_extension_protocol_options"]
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    assert_eq!(
        options["@type"],
        format!("{T}envoy.extensions.upstreams.http.v3.HttpProtocolOptions")
    );
    assert_eq!(
        options["explicit_http_config"],
        json!({"http2_protocol_options": {}})
    );

    let listener = &configs[2]["static_listeners"][0]["listener"];
    assert_eq!(
        listener["@type"],
        format!("{T}envoy.config.listener.v3.Listener")
    );
    assert_eq!(
        listener["address"],
        json!({"socket_address": {"address": "0.0.0.0", "port_value": 80}})
    );
    let filter = &listener["filter_chains"][0]["filters"][0];
    assert_eq!(
        filter["name"],
        "envoy.filters.network.http_connection_manager"
    );
    let hcm = &filter["typed_config"];
    assert_eq!(
        hcm["@type"],
        format!(
            "{T}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
        )
    );
    assert_eq!(hcm["stat_prefix"], "ingress_http");
    assert_eq!(
        hcm["http_filters"],
        json!([{"name": "envoy.filters.http.router",
                "typed_config": {"@type": format!("{T}envoy.extensions.filters.http.router.v3.Router")}}])
    );

    let route_config = &configs[3]["static_route_configs"][0]["route_config"];
    assert_eq!(
        route_config["@type"],
        format!("{T}envoy.config.route.v3.RouteConfiguration")
    );
    assert_eq!(route_config["name"], "local_route");
    assert_eq!(
        route_config["virtual_hosts"][0]["routes"][0],
        json!({"match": {"prefix": "/service/1"}, "route": {"cluster": "service1"}})
    );

    let bootstrap = &configs[0]["bootstrap"];
    assert_eq!(
        bootstrap["admin"]["access_log"][0],
        json!({"name": "envoy.access_loggers.file", "typed_config": {
            "@type": format!("{T}envoy.extensions.access_loggers.file.v3.FileAccessLog"),
            "path": "/dev/null"}})
    );
    assert_eq!(bootstrap["stats_flush_interval"], "5s");

    // No v2 spelling survives anywhere.
    let text = d.to_string();
    for v2 in [
        "\"envoy.router\"",
        "\"envoy.http_connection_manager\"",
        "\"hosts\"",
        "\"config\"",
        "access_log_path",
        "envoy.api.v2",
    ] {
        assert!(!text.contains(v2), "{v2} in {text}");
    }
}

#[test]
fn getting_started_dump_has_v3_host_rewrite_and_upstream_tls() {
    let d = dump("seeds/001-getting-started.yaml");
    let route = &d["configs"][3]["static_route_configs"][0]["route_config"]["virtual_hosts"][0]
        ["routes"][0]["route"];
    assert_eq!(
        route,
        &json!({"cluster": "service_google", "host_rewrite_literal": "www.google.com"})
    );
    let cluster = &d["configs"][1]["static_clusters"][0]["cluster"];
    assert_eq!(cluster["type"], "LOGICAL_DNS");
    assert_eq!(cluster["dns_lookup_family"], "V4_ONLY");
    assert_eq!(
        cluster["transport_socket"],
        json!({"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": format!("{T}envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"),
            "sni": "www.google.com"}})
    );
}

#[test]
fn rds_routes_are_dynamic_and_private_keys_redacted() {
    let d = dump("seeds/002-xds-bundle.yaml");
    let routes = &d["configs"][3];
    assert_eq!(routes["static_route_configs"], json!([]));
    assert_eq!(
        routes["dynamic_route_configs"][0]["route_config"]["name"],
        "egress_route"
    );
    let hcm = &d["configs"][2]["static_listeners"][0]["listener"]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    assert_eq!(hcm["rds"]["route_config_name"], "egress_route");

    let d = dump("v3/front-proxy-envoy.yaml");
    let tls = &d["configs"][2]["static_listeners"][1]["listener"]["filter_chains"][0]
        ["transport_socket"]["typed_config"];
    let cert = &tls["common_tls_context"]["tls_certificates"][0];
    assert_eq!(cert["private_key"], json!({"inline_string": "[redacted]"}));
    assert!(cert["certificate_chain"]["inline_string"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
}

/// The dumped bootstrap is itself a config meshsim loads, cleanly, to the same model: copying
/// from `/config_dump` is how a v1/v2 user gets a v3 config. Private keys are dumped as
/// `[redacted]`, which (as in Envoy) does not load: the copy needs its keys put back.
#[test]
fn dumped_bootstrap_reloads_to_the_same_model() {
    for rel in [
        "seeds/001-front-envoy.yaml",
        "seeds/001-getting-started.yaml",
        "seeds/000-sidecar-gateway.yaml",
        "seeds/003-flask-sidecar.json",
        "v3/front-proxy-2020.yaml",
    ] {
        let original = load_file(&fixture(rel)).unwrap().bootstrap;
        let mut dumped = config_dump(&original)["configs"][0]["bootstrap"].to_string();
        let keys: Vec<String> = original
            .listeners
            .iter()
            .flat_map(|l| &l.filter_chains)
            .filter_map(|c| c.tls.as_ref())
            .flat_map(|t| &t.common.certificates)
            .map(|(_, key)| String::from_utf8(key.bytes.clone()).unwrap())
            .collect();
        if !keys.is_empty() {
            let err = load_str("dump.json", &dumped, Path::new("."))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("private_key (inline) holds no PEM private key"),
                "{rel}: {err}"
            );
            for key in keys {
                let redacted = serde_json::to_string("[redacted]").unwrap();
                let restored = serde_json::to_string(&key).unwrap();
                dumped = dumped.replacen(&redacted, &restored, 1);
            }
        }
        let reloaded = match load_str("dump.json", &dumped, Path::new(".")) {
            Ok(l) => l,
            Err(e) => panic!("{rel}: {e}\n{dumped}"),
        };
        assert_eq!(
            reloaded.report.warnings().count(),
            0,
            "{rel}: {:?}",
            reloaded.report
        );
        assert_eq!(reloaded.bootstrap, original, "{rel}");
    }
}

#[test]
fn cluster_idle_timeout_is_dumped_when_set_and_reloads() {
    for (written, dumped) in [("30s", "30s"), ("0s", "0s"), ("1.5s", "1.500s")] {
        let yaml = format!(
            "static_resources:\n  clusters:\n  - name: up\n    load_assignment: {{cluster_name: up, endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: 9}}}}}}}}]}}]}}\n    typed_extension_protocol_options:\n      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n        \"@type\": {T}envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n        explicit_http_config: {{http_protocol_options: {{}}}}\n        common_http_protocol_options: {{idle_timeout: {written}}}\n"
        );
        let original = load_str("idle.yaml", &yaml, Path::new("."))
            .unwrap()
            .bootstrap;
        let d = config_dump(&original);
        let options = &d["configs"][1]["static_clusters"][0]["cluster"]
            ["typed_extension_protocol_options"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
        assert_eq!(
            options["common_http_protocol_options"],
            json!({"idle_timeout": dumped}),
            "{written}"
        );
        let bootstrap = d["configs"][0]["bootstrap"].to_string();
        let reloaded = load_str("dump.json", &bootstrap, Path::new(".")).unwrap();
        assert_eq!(reloaded.bootstrap, original, "{written}");
    }
    // The 1 h default is Envoy's and is left out, as Envoy leaves out what was not set.
    let plain = "static_resources:\n  clusters:\n  - name: up\n    load_assignment: {cluster_name: up, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 9}}}}]}]}\n";
    let d = config_dump(
        &load_str("plain.yaml", plain, Path::new("."))
            .unwrap()
            .bootstrap,
    );
    assert!(
        d["configs"][1]["static_clusters"][0]["cluster"]
            .get("typed_extension_protocol_options")
            .is_none(),
        "{d}"
    );
}
