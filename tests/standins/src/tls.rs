//! A throw-away certificate authority, so stand-ins can serve HTTPS under the
//! providers' real hostnames and clients can trust them by adding one root.

use std::sync::Arc;

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

/// A CA generated at run time. Its key never leaves the process.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// Creates a new CA with a fresh ECDSA P-256 key, valid from one day ago
    /// (to tolerate clock skew) for two years.
    pub fn generate() -> anyhow::Result<TestCa> {
        let key = KeyPair::generate().context("generating CA key")?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "Ward Stand-in Test CA");
        dn.push(DnType::OrganizationName, "Ward stand-ins");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(730);
        let cert = params.self_signed(&key).context("self-signing CA")?;
        Ok(TestCa {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate, PEM-encoded, for a client's trust store.
    pub fn ca_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER-encoded.
    pub fn ca_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Issues a server certificate whose subject alternative names are
    /// exactly `hostnames` (wildcards such as `*.okta.com` allowed; IP
    /// literals become IP SANs).
    pub fn issue(&self, hostnames: &[&str]) -> anyhow::Result<IssuedCert> {
        anyhow::ensure!(!hostnames.is_empty(), "a certificate needs a hostname");
        let names: Vec<String> = hostnames.iter().map(|h| (*h).to_owned()).collect();
        let mut params = CertificateParams::new(names).context("invalid hostname")?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, hostnames[0]);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(365);
        let key = KeyPair::generate().context("generating server key")?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .context("signing server certificate")?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        })
    }
}

/// A leaf certificate and its private key.
#[derive(Clone)]
pub struct IssuedCert {
    cert_pem: String,
    key_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert").finish_non_exhaustive()
    }
}

impl IssuedCert {
    /// The certificate, PEM-encoded.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The PKCS#8 private key, PEM-encoded.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// A rustls server configuration presenting this certificate, offering
    /// HTTP/2 and HTTP/1.1 over ALPN as the real providers do.
    ///
    /// The crypto provider is passed explicitly instead of relying on a
    /// process-wide default: when several rustls backends are compiled into
    /// one binary (as happens in a workspace), the implicit default is
    /// ambiguous and rustls refuses to pick one.
    pub fn server_config(&self) -> anyhow::Result<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(self.cert_der.clone())], key)
            .context("TLS server certificate")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}
