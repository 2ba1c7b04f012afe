//! Helpers shared by the KMIP unit tests.

/// Bytes from the notation of the KMIP specification's examples: hex digit pairs, with
/// spaces, `|` separators and line breaks ignored.
pub(crate) fn hex(spec: &str) -> Vec<u8> {
    let digits: Vec<u8> = spec
        .bytes()
        .filter(u8::is_ascii_hexdigit)
        .map(|d| match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => d - b'A' + 10,
        })
        .collect();
    assert!(
        digits.len().is_multiple_of(2),
        "odd number of hex digits in {spec:?}"
    );
    digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect()
}

/// A throw-away PKI for TLS tests: a CA, a server certificate for `localhost` and
/// `127.0.0.1` (ECDSA P-256, as PyKMIP needs) and a client certificate with the clientAuth
/// extended key usage.
pub(crate) struct TestPki {
    /// The CA certificate (PEM).
    pub ca_pem: String,
    /// The server certificate (PEM).
    pub server_cert_pem: String,
    /// The server key (PKCS#8 PEM).
    pub server_key_pem: String,
    /// The client certificate (PEM).
    pub client_cert_pem: String,
    /// The client key (PKCS#8 PEM).
    pub client_key_pem: String,
}

impl TestPki {
    /// A new PKI whose client key uses `client_algorithm`.
    pub(crate) fn new(client_algorithm: &'static rcgen::SignatureAlgorithm) -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
            IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
        };
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "keysmith test KMIP CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("CA key");
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA");

        let server_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("server key");
        let mut server = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("server params");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server.signed_by(&server_key, &ca).expect("server cert");

        let client_key = KeyPair::generate_for(client_algorithm).expect("client key");
        let mut client = CertificateParams::new(Vec::<String>::new()).expect("client params");
        client
            .distinguished_name
            .push(DnType::CommonName, "keysmith-test");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client.signed_by(&client_key, &ca).expect("client cert");

        Self {
            ca_pem: ca.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        }
    }
}
