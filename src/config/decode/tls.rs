//! TLS: `transport_socket` with an Upstream/DownstreamTlsContext (v3) or the v2 `tls_context`
//! field, and the data sources (certificates, keys, CAs) they refer to, read at load time so a
//! missing file is a config error with a position rather than a handshake failure later.

use std::path::Path;

use super::super::model::{CommonTls, DataSource, DownstreamTls, UpstreamTls};
use super::super::pem;
use super::extensions::{self, Category, TRANSPORT_SOCKETS};
use super::scalars;
use super::{Decoder, Field, Message};

pub const TRANSPORT_SOCKET: Message = Message {
    name: "TransportSocket",
    fields: &["name", "typed_config", "config"],
    ignored: &[],
};

const UPSTREAM_TLS_CONTEXT: Message = Message {
    name: "UpstreamTlsContext",
    fields: &["common_tls_context", "sni"],
    ignored: &[
        "allow_renegotiation",
        "max_session_keys",
        "enforce_rsa_key_usage",
        "auto_host_sni",
        "auto_sni_san_validation",
    ],
};

const DOWNSTREAM_TLS_CONTEXT: Message = Message {
    name: "DownstreamTlsContext",
    fields: &["common_tls_context", "require_client_certificate"],
    ignored: &[
        "require_sni",
        "session_ticket_keys",
        "session_ticket_keys_sds_secret_config",
        "disable_stateless_session_resumption",
        "disable_stateful_session_resumption",
        "session_timeout",
        "ocsp_staple_policy",
        "full_scan_certs_on_sni_mismatch",
        "prefer_client_ciphers",
    ],
};

const COMMON_TLS_CONTEXT: Message = Message {
    name: "CommonTlsContext",
    fields: &[
        "tls_certificates",
        "validation_context",
        "combined_validation_context",
        "alpn_protocols",
        "tls_certificate_sds_secret_configs",
        "validation_context_sds_secret_config",
    ],
    ignored: &[
        "tls_params",
        "tls_certificate_provider_instance",
        "custom_tls_certificate_selector",
        "tls_certificate_certificate_provider",
        "tls_certificate_certificate_provider_instance",
        "validation_context_certificate_provider",
        "validation_context_certificate_provider_instance",
        "custom_handshaker",
        "key_log",
    ],
};

const TLS_CERTIFICATE: Message = Message {
    name: "TlsCertificate",
    fields: &["certificate_chain", "private_key", "pkcs12"],
    ignored: &[
        "watched_directory",
        "private_key_provider",
        "password",
        "ocsp_staple",
        "signed_certificate_timestamp",
    ],
};

const VALIDATION_CONTEXT: Message = Message {
    name: "CertificateValidationContext",
    fields: &["trusted_ca"],
    ignored: &[
        "watched_directory",
        "verify_certificate_spki",
        "verify_certificate_hash",
        "match_typed_subject_alt_names",
        "match_subject_alt_names",
        "verify_subject_alt_name",
        "require_signed_certificate_timestamp",
        "crl",
        "allow_expired_certificate",
        "trust_chain_verification",
        "custom_validator_config",
        "only_verify_leaf_cert_crl",
        "max_verify_depth",
        "system_root_certs",
        "ca_certificate_provider_instance",
    ],
};

const COMBINED_VALIDATION_CONTEXT: Message = Message {
    name: "CombinedCertificateValidationContext",
    fields: &[
        "default_validation_context",
        "validation_context_sds_secret_config",
    ],
    ignored: &[
        "validation_context_certificate_provider",
        "validation_context_certificate_provider_instance",
    ],
};

const DATA_SOURCE: Message = Message {
    name: "DataSource",
    fields: &[
        "filename",
        "inline_bytes",
        "inline_string",
        "environment_variable",
    ],
    ignored: &["watched_directory"],
};

/// Which end of a connection a TLS context is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Upstream,
    Downstream,
}

impl Side {
    fn message(self) -> &'static str {
        match self {
            Side::Upstream => "UpstreamTlsContext",
            Side::Downstream => "DownstreamTlsContext",
        }
    }

    fn with_article(self) -> &'static str {
        match self {
            Side::Upstream => "an UpstreamTlsContext",
            Side::Downstream => "a DownstreamTlsContext",
        }
    }
}

/// Decoded TLS for either side.
pub enum Tls {
    Upstream(UpstreamTls),
    Downstream(DownstreamTls),
}

/// A `transport_socket`. `Ok(None)` is plaintext (`raw_buffer`).
pub fn transport_socket(d: &mut Decoder, f: &Field, side: Side) -> Option<Option<Tls>> {
    let o = d.obj(f, &TRANSPORT_SOCKET)?;
    let r = extensions::resolve(d, &o, Category::TransportSocket, TRANSPORT_SOCKETS.iter())?;
    match r.ext.as_str() {
        "envoy.transport_sockets.raw_buffer" => Some(None),
        "envoy.transport_sockets.tls" => {
            if let Some(url) = r.type_url {
                if !url.ends_with(side.message()) {
                    let at = r.config.as_ref().unwrap_or(o.field_ref());
                    d.error_help(
                        at,
                        format!(
                            "this transport socket needs {}, found `{}`",
                            side.with_article(),
                            url
                        ),
                        format!(
                            "clusters take an UpstreamTlsContext, listener filter chains a DownstreamTlsContext: write `\"@type\": {}`",
                            extensions::full_type_url(&format!(
                                "envoy.extensions.transport_sockets.tls.v3.{}",
                                side.message()
                            ))
                        ),
                    );
                    return None;
                }
            }
            let tls = match &r.config {
                Some(c) => tls_context(d, c, side, r.config_is_any)?,
                None => empty(side),
            };
            Some(Some(tls))
        }
        other => {
            d.error_at_value(
                &r.at,
                format!("transport socket `{other}` is not supported by meshsim"),
                Some(
                    "supported: envoy.transport_sockets.tls, envoy.transport_sockets.raw_buffer"
                        .into(),
                ),
            );
            None
        }
    }
}

fn empty(side: Side) -> Tls {
    match side {
        Side::Upstream => Tls::Upstream(UpstreamTls {
            common: CommonTls::default(),
            sni: None,
        }),
        Side::Downstream => Tls::Downstream(DownstreamTls {
            common: CommonTls::default(),
            require_client_certificate: false,
        }),
    }
}

/// An Upstream/DownstreamTlsContext message (also the v2 `tls_context` field's value).
pub fn tls_context(d: &mut Decoder, f: &Field, side: Side, any: bool) -> Option<Tls> {
    let msg = match side {
        Side::Upstream => &UPSTREAM_TLS_CONTEXT,
        Side::Downstream => &DOWNSTREAM_TLS_CONTEXT,
    };
    let o = if any {
        d.obj_any(f, msg)?
    } else {
        d.obj(f, msg)?
    };
    let common = match o.get("common_tls_context") {
        Some(c) => common_tls(d, &c).unwrap_or_default(),
        None => CommonTls::default(),
    };
    Some(match side {
        Side::Upstream => {
            let sni = o
                .get("sni")
                .and_then(|s| scalars::string(d, &s))
                .filter(|s| !s.is_empty());
            Tls::Upstream(UpstreamTls { common, sni })
        }
        Side::Downstream => {
            let require_client_certificate = o
                .get("require_client_certificate")
                .and_then(|r| scalars::bool(d, &r))
                .unwrap_or(false);
            Tls::Downstream(DownstreamTls {
                common,
                require_client_certificate,
            })
        }
    })
}

fn sds_not_simulated(d: &mut Decoder, f: &Field) {
    d.error_help(
        f,
        "SDS secrets are not simulated by meshsim",
        "put the certificate and key under `tls_certificates` as `inline_string` or `filename` data sources",
    );
}

fn common_tls(d: &mut Decoder, f: &Field) -> Option<CommonTls> {
    let o = d.obj(f, &COMMON_TLS_CONTEXT)?;
    let mut common = CommonTls::default();
    if let Some(s) = o.get("tls_certificate_sds_secret_configs") {
        sds_not_simulated(d, &s);
    }
    if let Some(s) = o.get("validation_context_sds_secret_config") {
        sds_not_simulated(d, &s);
    }
    if let Some(certs) = o.get("tls_certificates") {
        for item in d.seq(&certs) {
            if let Some(pair) = tls_certificate(d, &item) {
                common.certificates.push(pair);
            }
        }
    }
    if let Some(v) = o.get("validation_context") {
        common.trusted_ca = validation_context(d, &v);
    }
    if let Some(c) = o.get("combined_validation_context") {
        if let Some(v) = o.get("validation_context") {
            d.oneof_conflict(&c, v.name());
        }
        if let Some(co) = d.obj(&c, &COMBINED_VALIDATION_CONTEXT) {
            if let Some(s) = co.get("validation_context_sds_secret_config") {
                sds_not_simulated(d, &s);
            }
            if let Some(v) = co.get("default_validation_context") {
                common.trusted_ca = validation_context(d, &v);
            }
        }
    }
    if let Some(a) = o.get("alpn_protocols") {
        common.alpn_protocols = scalars::strings(d, &a);
    }
    Some(common)
}

fn tls_certificate(d: &mut Decoder, f: &Field) -> Option<(DataSource, DataSource)> {
    let o = d.obj(f, &TLS_CERTIFICATE)?;
    if let Some(p) = o.get("pkcs12") {
        d.error_help(
            &p,
            "PKCS#12 certificates are not supported by meshsim",
            "convert with `openssl pkcs12 -nodes` and use `certificate_chain` and `private_key` (PEM)",
        );
        return None;
    }
    let chain_field = o.get("certificate_chain");
    let chain = match &chain_field {
        Some(c) => data_source(d, c)
            .filter(|ds| pem_ok(d, c, pem::certificates("certificate_chain", ds).map(|_| ()))),
        None => {
            d.missing(&o, "certificate_chain");
            None
        }
    };
    let key_field = o.get("private_key");
    let key = match &key_field {
        Some(k) => data_source(d, k)
            .filter(|ds| pem_ok(d, k, pem::private_key("private_key", ds).map(|_| ()))),
        None => {
            d.missing(&o, "private_key");
            None
        }
    };
    let (chain, key) = (chain?, key?);
    // Both parsed: the key must be one rustls can sign with, and belong to the certificate.
    if let (Ok(certs), Ok(der)) = (
        pem::certificates("certificate_chain", &chain),
        pem::private_key("private_key", &key),
    ) {
        let provider = rustls::crypto::ring::default_provider();
        if let Err(e) = rustls::sign::CertifiedKey::from_der(certs, der, &provider) {
            let at = key_field.as_ref().unwrap_or(o.field_ref());
            let message = match e {
                rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                    "`private_key` is not the key of the first certificate in `certificate_chain`"
                        .to_string()
                }
                e => format!("the private key cannot be used with this certificate chain: {e}"),
            };
            d.error_help(
                at,
                message,
                "`private_key` must be the key of the first certificate in `certificate_chain` (RSA, ECDSA P-256/P-384 or Ed25519)",
            );
            return None;
        }
    }
    Some((chain, key))
}

/// Reports a PEM problem at `f` (the `certificate_chain`, `private_key` or `trusted_ca` field).
fn pem_ok(d: &mut Decoder, f: &Field, checked: Result<(), pem::PemError>) -> bool {
    match checked {
        Ok(()) => true,
        Err(e) => {
            d.error_help(
                f,
                e.to_string(),
                "PEM text is expected: `-----BEGIN CERTIFICATE-----` blocks for certificates, `-----BEGIN PRIVATE KEY-----` (or RSA/EC) for the key",
            );
            false
        }
    }
}

fn validation_context(d: &mut Decoder, f: &Field) -> Option<DataSource> {
    let o = d.obj(f, &VALIDATION_CONTEXT)?;
    let t = o.get("trusted_ca")?;
    data_source(d, &t).filter(|ds| pem_ok(d, &t, pem::certificates("trusted_ca", ds).map(|_| ())))
}

/// A `DataSource`, read now: a missing `filename` is an error with the resolved path.
pub fn data_source(d: &mut Decoder, f: &Field) -> Option<DataSource> {
    let o = d.obj(f, &DATA_SOURCE)?;
    if let Some(name) = o.get("filename") {
        let written = scalars::string(d, &name)?;
        let path = d.base_dir.join(&written);
        return match std::fs::read(&path) {
            Ok(bytes) => Some(DataSource {
                origin: written,
                bytes,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                d.error_at_value(
                    &name,
                    format!("data source file `{written}` does not exist"),
                    Some(format!(
                        "looked for {}; relative paths are resolved from the config file's directory",
                        display(&path)
                    )),
                );
                None
            }
            Err(e) => {
                d.error_at_value(
                    &name,
                    format!("cannot read data source file `{written}`: {e}"),
                    None,
                );
                None
            }
        };
    }
    if let Some(s) = o.get("inline_string") {
        let text = scalars::string(d, &s)?;
        return Some(DataSource {
            origin: "inline".into(),
            bytes: text.into_bytes(),
        });
    }
    if let Some(b) = o.get("inline_bytes") {
        let text = scalars::string(d, &b)?;
        return match base64_decode(&text) {
            Some(bytes) => Some(DataSource {
                origin: "inline".into(),
                bytes,
            }),
            None => {
                d.error_at_value(&b, "`inline_bytes` is not valid base64", None);
                None
            }
        };
    }
    if let Some(v) = o.get("environment_variable") {
        let var = scalars::string(d, &v)?;
        return match std::env::var(&var) {
            Ok(value) => Some(DataSource {
                origin: format!("${var}"),
                bytes: value.into_bytes(),
            }),
            Err(_) => {
                d.error_at_value(&v, format!("environment variable `{var}` is not set"), None);
                None
            }
        };
    }
    d.error_help(
        o.field_ref(),
        format!("`{}` has no data", f.name()),
        "set one of `filename`, `inline_string`, `inline_bytes` or `environment_variable`",
    );
    None
}

fn display(path: &Path) -> String {
    match std::path::absolute(path) {
        Ok(abs) => abs.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

/// Standard base64 (with or without padding), as protobuf JSON encodes `bytes`.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        if c == b'=' {
            break;
        }
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::super::node::parse;
    use super::super::Mode;
    use super::*;
    use std::path::PathBuf;

    fn run<T>(yaml: &str, f: impl FnOnce(&mut Decoder, &Field) -> T) -> (T, Vec<String>) {
        let doc = parse(yaml).unwrap();
        let (k, v) = &doc.as_map().unwrap()[0];
        let field = Field::root(&doc).child(k, v);
        let mut d = Decoder::new(PathBuf::from("/nonexistent-dir"), Mode::Bootstrap);
        let out = f(&mut d, &field);
        (out, d.finish().into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn upstream_tls_via_transport_socket() {
        let (t, e) = run(
            "ts: {name: envoy.transport_sockets.tls, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext, sni: www.google.com}}",
            |d, f| transport_socket(d, f, Side::Upstream),
        );
        assert!(e.is_empty(), "{e:?}");
        match t {
            Some(Some(Tls::Upstream(u))) => assert_eq!(u.sni.as_deref(), Some("www.google.com")),
            _ => panic!("expected upstream TLS"),
        }
    }

    #[test]
    fn wrong_side_and_sds_are_errors() {
        let (_, e) = run(
            "ts: {name: tls, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext}}",
            |d, f| transport_socket(d, f, Side::Upstream).map(|_| ()),
        );
        assert!(
            e[0].starts_with("this transport socket needs an UpstreamTlsContext"),
            "{e:?}"
        );
        let (_, e) = run(
            "c: {common_tls_context: {tls_certificate_sds_secret_configs: [{name: x}]}}",
            |d, f| tls_context(d, f, Side::Downstream, false).map(|_| ()),
        );
        assert_eq!(e, ["SDS secrets are not simulated by meshsim"]);
    }

    #[test]
    fn data_sources() {
        let (s, _) = run("s: {inline_string: abc}", data_source);
        assert_eq!(s.unwrap().bytes, b"abc");
        let (s, _) = run("s: {inline_bytes: aGVsbG8=}", data_source);
        assert_eq!(s.unwrap().bytes, b"hello");
        let (s, e) = run("s: {filename: certs/missing.pem}", data_source);
        assert!(s.is_none());
        assert_eq!(e, ["data source file `certs/missing.pem` does not exist"]);
    }
}
