//! One bad config per error class (tests/fixtures/invalid): each is rejected with the exact
//! message at the exact line and column, and a file with several mistakes reports them all.

use std::path::{Path, PathBuf};

use meshsim::config::{load_file, LoadError};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/invalid")
        .join(name)
}

/// (file, [(message, line, column, help)]) — `help: None` means "not checked".
type Expected = (
    &'static str,
    &'static [(&'static str, usize, usize, Option<&'static str>)],
);

const CASES: &[Expected] = &[
    (
        "unknown-field-typo.yaml",
        &[(
            "unknown field `connect_timout` in Cluster",
            4,
            5,
            Some("did you mean `connect_timeout`?"),
        )],
    ),
    (
        "unknown-enum.yaml",
        &[(
            "unknown value `strict_dsn` for Cluster.DiscoveryType",
            5,
            11,
            Some("did you mean `STRICT_DNS`? (valid: STATIC, STRICT_DNS, LOGICAL_DNS, EDS, ORIGINAL_DST)"),
        )],
    ),
    (
        "undefined-cluster.yaml",
        &[(
            "route refers to undefined cluster `servce1`",
            18,
            34,
            Some("did you mean `service1`?"),
        )],
    ),
    (
        "duplicate-listener-address.yaml",
        &[(
            "listener address 0.0.0.0:8080 is already used by listener `ingress`",
            24,
            5,
            None,
        )],
    ),
    (
        "missing-stat-prefix.yaml",
        &[(
            "missing required field `stat_prefix` in HttpConnectionManager",
            9,
            9,
            None,
        )],
    ),
    (
        "router-not-last.yaml",
        &[
            (
                "http_filters must end with envoy.filters.http.router",
                20,
                19,
                Some("`envoy.filters.http.buffer` comes after `envoy.filters.http.router` and would never run; move the router to the end"),
            ),
            (
                "HTTP filter `envoy.filters.http.buffer` is not supported by meshsim yet; supported: envoy.filters.http.router, envoy.filters.http.fault, envoy.filters.http.local_ratelimit, envoy.filters.http.health_check",
                23,
                19,
                None,
            ),
        ],
    ),
    (
        "bad-regex.yaml",
        &[(
            "invalid regex `/api/(v1|v2/.*`: unclosed group",
            18,
            55,
            None,
        )],
    ),
    (
        "bad-duration.yaml",
        &[(
            "invalid duration `250ms` for `connect_timeout`",
            4,
            22,
            Some("durations are seconds with an `s` suffix: write `0.250s`"),
        )],
    ),
    (
        "unsupported-http-filter.yaml",
        &[(
            "HTTP filter `envoy.filters.http.ext_authz` is not supported by meshsim yet; supported: envoy.filters.http.router, envoy.filters.http.fault, envoy.filters.http.local_ratelimit, envoy.filters.http.health_check",
            20,
            19,
            None,
        )],
    ),
    (
        "unsupported-network-filter.yaml",
        &[(
            "network filter `envoy.filters.network.tcp_proxy` is not supported by meshsim",
            8,
            15,
            Some("supported: envoy.filters.network.http_connection_manager"),
        )],
    ),
    (
        "v1-sds.json",
        &[
            (
                "v1 SDS (`\"type\": \"sds\"`) is not supported by meshsim",
                8,
                17,
                None,
            ),
            (
                "v1 SDS (`cluster_manager.sds`, the v1 service discovery REST API) is not supported by meshsim",
                13,
                5,
                None,
            ),
        ],
    ),
    (
        "eds-cluster.yaml",
        &[(
            "cluster type EDS is not supported by meshsim: it runs no EDS server",
            5,
            11,
            Some("use `type: STRICT_DNS` with the service's DNS name in `load_assignment` (meshsim's DNS returns one A record per replica), or `type: STATIC` with IP endpoints"),
        )],
    ),
    (
        "dynamic-resources.yaml",
        &[(
            "xDS is not simulated; put resources in static_resources",
            1,
            1,
            None,
        )],
    ),
    (
        "unknown-retry-condition.yaml",
        &[(
            "unknown retry condition `gateway-eror`",
            19,
            44,
            Some("did you mean `gateway-error`?"),
        )],
    ),
    (
        "yaml-syntax-error.yaml",
        &[(
            "syntax error: while parsing a block mapping, did not find expected key",
            5,
            6,
            None,
        )],
    ),
    (
        "duplicate-key.yaml",
        &[("duplicate key `type` (first defined at line 4)", 6, 5, None)],
    ),
    (
        "static-cluster-dns-name.yaml",
        &[(
            "STATIC cluster `alive` has endpoint `alive-svc`, which is not an IP address",
            12,
            41,
            Some("use STRICT_DNS for DNS names: `type: STRICT_DNS`"),
        )],
    ),
    (
        "weighted-total-mismatch.yaml",
        &[(
            "`total_weight` is 100 but the cluster weights add up to 95",
            23,
            35,
            Some("set `total_weight: 95` or remove it (v3 uses the sum of the weights)"),
        )],
    ),
    (
        "tls-bad-pem.yaml",
        &[
            (
                "certificate_chain (file `../tls/not-a-cert.pem`) holds no PEM certificate",
                29,
                15,
                None,
            ),
            (
                "private_key (file `../tls/ca.crt`) holds no PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC)",
                30,
                15,
                None,
            ),
            (
                "trusted_ca (inline) is not valid PEM: base64 decode error: InvalidCharacter(33)",
                48,
                13,
                None,
            ),
            (
                "`private_key` is not the key of the first certificate in `certificate_chain`",
                65,
                13,
                Some("`private_key` must be the key of the first certificate in `certificate_chain` (RSA, ECDSA P-256/P-384 or Ed25519)"),
            ),
        ],
    ),
    (
        "missing-filename-data-source.yaml",
        &[
            (
                "data source file `certs/front-envoy.crt` does not exist",
                29,
                45,
                None,
            ),
            (
                "data source file `certs/front-envoy.key` does not exist",
                30,
                39,
                None,
            ),
        ],
    ),
];

#[test]
fn each_error_class_has_its_exact_message_and_position() {
    for (file, expected) in CASES {
        let err = match load_file(&fixture(file)) {
            Ok(_) => panic!("{file} loaded but must be rejected"),
            Err(e) => e,
        };
        let LoadError::Invalid(report) = &err else {
            panic!("{file}: {err}")
        };
        let got: Vec<(&str, usize, usize)> = report
            .errors()
            .map(|d| (d.message.as_str(), d.span.line, d.span.col))
            .collect();
        let want: Vec<(&str, usize, usize)> =
            expected.iter().map(|(m, l, c, _)| (*m, *l, *c)).collect();
        assert_eq!(got, want, "{file}:\n{err}");
        for ((_, _, _, help), d) in expected.iter().zip(report.errors()) {
            if let Some(help) = help {
                assert_eq!(d.help.as_deref(), Some(*help), "{file}");
            }
        }
        // The rendered report names the file, line and column and shows the line.
        let text = err.to_string();
        let (_, line, col, _) = expected[0];
        assert!(
            text.contains(&format!("{file}:{line}:{col}")),
            "{file}: {text}"
        );
        assert!(text.contains(&format!("{line} | ")), "{file}: {text}");
    }
}

#[test]
fn every_fixture_has_an_expectation() {
    let mut files: Vec<String> = std::fs::read_dir(fixture(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f != "several-errors.yaml")
        .collect();
    files.sort();
    let mut covered: Vec<String> = CASES.iter().map(|(f, _)| f.to_string()).collect();
    covered.sort();
    assert_eq!(files, covered);
}

#[test]
fn a_file_with_several_errors_reports_all_of_them() {
    let err = load_file(&fixture("several-errors.yaml")).unwrap_err();
    let report = err.report().unwrap();
    let got: Vec<(String, usize, usize)> = report
        .errors()
        .map(|d| (d.message.clone(), d.span.line, d.span.col))
        .collect();
    let want = [
        ("route refers to undefined cluster `servce1`", 19, 34),
        ("invalid duration `5 seconds` for `timeout`", 19, 52),
        ("unknown field `conect_timeout` in Cluster", 26, 5),
        (
            "unknown value `strict_dsn` for Cluster.DiscoveryType",
            27,
            11,
        ),
        ("port 80000 is out of range", 35, 63),
    ];
    let want: Vec<(String, usize, usize)> = want
        .iter()
        .map(|(m, l, c)| (m.to_string(), *l, *c))
        .collect();
    assert_eq!(got, want);
    let text = err.to_string();
    assert!(text.ends_with("several-errors.yaml: 5 errors found; the config was not loaded\n"));
    for (_, line, col) in &want {
        assert!(
            text.contains(&format!("several-errors.yaml:{line}:{col}")),
            "{text}"
        );
    }
}

#[test]
fn a_v3_config_that_lost_its_indentation_is_not_taken_for_v1() {
    let yaml = "listeners:\n- name: listener_0\n  address:\n    socket_address: { address: 0.0.0.0, port_value: 10000 }\n";
    let err = meshsim::config::load_str("envoy.yaml", yaml, Path::new(".")).unwrap_err();
    let e = err.report().unwrap().errors().next().unwrap();
    assert_eq!(e.message, "unknown field `listeners` in Bootstrap");
    assert_eq!(
        e.help.as_deref(),
        Some("`listeners` belongs under `static_resources:` (indent it by two spaces)")
    );
}
