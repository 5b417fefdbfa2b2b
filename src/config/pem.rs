//! PEM certificates and keys from TLS data sources (`certificate_chain`, `private_key`,
//! `trusted_ca`). The config loader checks them with these functions, so a bad PEM is a config
//! error with a position; the data plane uses the same ones to build its TLS contexts.

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::model::DataSource;

#[derive(Debug, thiserror::Error)]
pub enum PemError {
    #[error("{what} ({origin}) holds no PEM certificate")]
    NoCertificate { what: &'static str, origin: String },
    #[error("{what} ({origin}) holds no PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC)")]
    NoPrivateKey { what: &'static str, origin: String },
    #[error("{what} ({origin}) is not valid PEM: {detail}")]
    Invalid {
        what: &'static str,
        origin: String,
        detail: String,
    },
}

fn origin(ds: &DataSource) -> String {
    if ds.origin == "inline" {
        "inline".to_string()
    } else {
        format!("file `{}`", ds.origin)
    }
}

fn invalid(what: &'static str, ds: &DataSource, e: pem::Error) -> PemError {
    PemError::Invalid {
        what,
        origin: origin(ds),
        detail: e.to_string(),
    }
}

/// Every `CERTIFICATE` block, in order; at least one.
pub fn certificates(
    what: &'static str,
    ds: &DataSource,
) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let certs = CertificateDer::pem_slice_iter(&ds.bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(what, ds, e))?;
    if certs.is_empty() {
        return Err(PemError::NoCertificate {
            what,
            origin: origin(ds),
        });
    }
    Ok(certs)
}

/// The first private key block (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(
    what: &'static str,
    ds: &DataSource,
) -> Result<PrivateKeyDer<'static>, PemError> {
    PrivateKeyDer::from_pem_slice(&ds.bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => PemError::NoPrivateKey {
            what,
            origin: origin(ds),
        },
        e => invalid(what, ds, e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(text: &str) -> DataSource {
        DataSource {
            origin: "certs/x.pem".into(),
            bytes: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn empty_and_garbage_are_errors() {
        let e = certificates("certificate_chain", &ds("hello")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "certificate_chain (file `certs/x.pem`) holds no PEM certificate"
        );
        let e = private_key("private_key", &ds("")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("private_key (file `certs/x.pem`) holds no PEM private key"),
            "{e}"
        );
        let e = certificates(
            "certificate_chain",
            &ds("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("is not valid PEM"), "{e}");
    }
}
