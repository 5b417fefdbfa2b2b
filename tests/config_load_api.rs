//! The public API: file and string loading, `--config-yaml` overlays, I/O errors and
//! `filename:` data sources resolved from the config's directory.

use std::path::{Path, PathBuf};

use meshsim::config::model::{DiscoveryType, UpstreamTls};
use meshsim::config::{load_file, load_str, load_with_overlay, LoadError};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

#[test]
fn overlay_merges_maps_appends_lists_and_replaces_scalars() {
    let base = fixture("v3/front-proxy-service-envoy.yaml");
    let overlay = r#"
node: {id: service1-envoy, cluster: service1}
admin: {address: {socket_address: {port_value: 9902}}}
static_resources:
  clusters:
  - name: extra
    type: STATIC
    load_assignment:
      cluster_name: extra
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 10.0.0.7, port_value: 80}}}}]}]
"#;
    let loaded = load_with_overlay(Some(&base), Some(overlay), None).unwrap();
    let b = &loaded.bootstrap;
    assert_eq!(b.node.id, "service1-envoy");
    assert_eq!(b.node.cluster, "service1");
    let admin = b.admin.as_ref().unwrap();
    assert_eq!(
        admin.address.to_string(),
        "0.0.0.0:9902",
        "port replaced, address kept"
    );
    let names: Vec<&str> = b.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["service1", "extra"]);
    assert_eq!(b.clusters[1].discovery, DiscoveryType::Static);
}

#[test]
fn overlay_errors_point_into_the_overlay_text() {
    let base = fixture("v3/front-proxy-service-envoy.yaml");
    let base_lines = std::fs::read_to_string(&base).unwrap().lines().count();
    let err = load_with_overlay(Some(&base), Some("admin: {adress: {}}\n"), None).unwrap_err();
    let report = err.report().unwrap();
    let e = report.errors().next().unwrap();
    assert_eq!(e.message, "unknown field `adress` in Admin");
    assert_eq!((e.span.line, e.span.col), (base_lines + 1, 9));
    let text = err.to_string();
    assert!(text.contains("+ --config-yaml:"), "{text}");
    assert!(text.contains("| admin: {adress: {}}"), "{text}");
}

#[test]
fn overlay_alone_and_nothing_at_all() {
    let yaml = "admin: {address: {socket_address: {address: 127.0.0.1, port_value: 9901}}}";
    let loaded = load_with_overlay(None, Some(yaml), None).unwrap();
    assert_eq!(loaded.bootstrap.admin.unwrap().address.port, 9901);
    let err = load_with_overlay(None, None, None).unwrap_err();
    assert!(err
        .to_string()
        .contains("no Envoy config: give --config-path or --config-yaml"));
    let err = load_with_overlay(None, Some("admin: ["), None).unwrap_err();
    assert!(err.to_string().contains("--config-yaml:1:"), "{err}");
}

#[test]
fn missing_file_is_an_io_error() {
    let err = load_file(Path::new("/nonexistent/envoy.yaml")).unwrap_err();
    assert!(matches!(err, LoadError::Io { .. }));
    assert!(err
        .to_string()
        .starts_with("cannot read /nonexistent/envoy.yaml: "));
}

#[test]
fn filename_data_sources_resolve_from_the_config_directory() {
    let dir = std::env::temp_dir().join(format!("meshsim-config-test-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    let ca_pem = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/ca.crt"),
    )
    .unwrap();
    std::fs::write(dir.join("certs/ca.pem"), &ca_pem).unwrap();
    let config = r#"
static_resources:
  clusters:
  - name: upstream
    type: STRICT_DNS
    load_assignment:
      cluster_name: upstream
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: upstream, port_value: 443}}}}]}]
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: upstream
        common_tls_context:
          validation_context: {trusted_ca: {filename: certs/ca.pem}}
"#;
    let path = dir.join("envoy.yaml");
    std::fs::write(&path, config).unwrap();
    let loaded = load_file(&path).unwrap();
    let tls: &UpstreamTls = loaded.bootstrap.clusters[0].tls.as_ref().unwrap();
    let ca = tls.common.trusted_ca.as_ref().unwrap();
    assert_eq!(ca.origin, "certs/ca.pem");
    assert_eq!(ca.bytes, ca_pem);
    // The same text from a string with another base directory cannot find the file.
    let err = load_str("--config-yaml", config, Path::new("/")).unwrap_err();
    assert_eq!(
        err.report().unwrap().errors().next().unwrap().message,
        "data source file `certs/ca.pem` does not exist"
    );
    // A copy of the file elsewhere (how the local runtime runs proxies) finds it through an
    // explicit base directory (`meshsim proxy --config-base-dir`), and not without one.
    let copy_dir = dir.join("run");
    std::fs::create_dir_all(&copy_dir).unwrap();
    let copy = copy_dir.join("envoy.yaml");
    std::fs::write(&copy, config).unwrap();
    let loaded = load_with_overlay(Some(&copy), None, Some(&dir)).unwrap();
    let tls: &UpstreamTls = loaded.bootstrap.clusters[0].tls.as_ref().unwrap();
    assert_eq!(tls.common.trusted_ca.as_ref().unwrap().bytes, ca_pem);
    assert!(load_with_overlay(Some(&copy), None, None).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
