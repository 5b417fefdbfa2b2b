//! Throwaway certificates for a run (rcgen, ECDSA P-256): one CA per `meshsim up`, and a
//! server certificate per TLS service, for its DNS name. Nothing is written here; the caller
//! decides where the PEM goes (the local runtime's state directory, or into containers).

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

#[derive(Debug, thiserror::Error)]
#[error("generating a certificate: {0}")]
pub struct CertError(#[from] rcgen::Error);

/// A certificate and its private key, PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A self-signed CA that issues server certificates.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

impl Ca {
    /// A new CA named `common_name`.
    pub fn new(common_name: &str) -> Result<Ca, CertError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(Ca { issuer })
    }

    /// The CA certificate, PEM (what a `validation_context.trusted_ca` holds).
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (DNS names or IP addresses; the first is also the
    /// common name), signed by this CA.
    pub fn issue(&self, names: &[&str]) -> Result<Issued, CertError> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::DataSource;
    use crate::config::pem;

    #[test]
    fn issued_certificates_parse_and_match_their_keys() {
        let ca = Ca::new("meshsim test").unwrap();
        let issued = ca.issue(&["backend", "127.0.0.1"]).unwrap();
        let ds = |s: &str| DataSource {
            origin: "inline".into(),
            bytes: s.as_bytes().to_vec(),
        };
        let certs = pem::certificates("certificate_chain", &ds(&issued.cert_pem)).unwrap();
        let key = pem::private_key("private_key", &ds(&issued.key_pem)).unwrap();
        rustls::sign::CertifiedKey::from_der(certs, key, &rustls::crypto::ring::default_provider())
            .unwrap();
        assert_eq!(
            pem::certificates("trusted_ca", &ds(&ca.cert_pem()))
                .unwrap()
                .len(),
            1
        );
    }
}
