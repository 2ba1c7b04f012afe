//! Throwaway certificates for one control plane: a CA, the apiserver's serving certificate,
//! an admin client certificate (O=system:masters) and the service-account signing key.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// Paths of the PEM files written by [`Pki::write`], plus the PEM texts a kubeconfig embeds.
pub struct Pki {
    pub ca_cert: PathBuf,
    pub ca_pem: String,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
    /// The admin client certificate and key as files (kube-apiserver's kubelet client).
    pub admin_cert: PathBuf,
    pub admin_key: PathBuf,
    /// A node's client certificate (`system:node:localhost` in `system:nodes`), for the
    /// kubelet of [`super::node`].
    pub node_cert_pem: String,
    pub node_key_pem: String,
    /// The operator's own identity (user `keysmith-test-operator`), so the audit log tells its
    /// requests apart from the tests' own.
    pub operator_cert_pem: String,
    pub operator_key_pem: String,
    pub service_account_key: PathBuf,
    pub service_account_pub: PathBuf,
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

impl Pki {
    /// Generates everything and writes the files into `dir`.
    pub fn write(dir: &Path) -> Result<Self> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "keysmith-test-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_pem = ca_params.self_signed(&ca_key)?.pem();
        let ca = Issuer::new(ca_params, ca_key);

        let serving_key = KeyPair::generate()?;
        let mut serving = CertificateParams::new(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
            "kubernetes".to_owned(),
            "kubernetes.default".to_owned(),
            "kubernetes.default.svc".to_owned(),
            "10.0.0.1".to_owned(),
        ])?;
        serving
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_pem = serving.signed_by(&serving_key, &ca)?.pem();

        let (admin_cert_pem, admin_key) = client_certificate(&ca, "admin")?;
        let (operator_cert_pem, operator_key) = client_certificate(&ca, OPERATOR_USER)?;
        let (node_cert_pem, node_key) = client_certificate_in(&ca, NODE_USER, "system:nodes")?;

        let sa_key = KeyPair::generate()?;

        let pki = Self {
            ca_cert: dir.join("ca.crt"),
            ca_pem,
            serving_cert: dir.join("apiserver.crt"),
            serving_key: dir.join("apiserver.key"),
            admin_cert_pem,
            admin_key_pem: admin_key.serialize_pem(),
            admin_cert: dir.join("admin.crt"),
            admin_key: dir.join("admin.key"),
            node_cert_pem,
            node_key_pem: node_key.serialize_pem(),
            operator_cert_pem,
            operator_key_pem: operator_key.serialize_pem(),
            service_account_key: dir.join("sa.key"),
            service_account_pub: dir.join("sa.pub"),
        };
        std::fs::write(&pki.ca_cert, &pki.ca_pem)?;
        std::fs::write(&pki.serving_cert, serving_pem)?;
        std::fs::write(&pki.serving_key, serving_key.serialize_pem())?;
        std::fs::write(&pki.admin_cert, &pki.admin_cert_pem)?;
        std::fs::write(&pki.admin_key, &pki.admin_key_pem)?;
        std::fs::write(&pki.service_account_key, sa_key.serialize_pem())?;
        std::fs::write(&pki.service_account_pub, sa_key.public_key_pem())?;
        Ok(pki)
    }
}

/// The user name of the operator under test.
pub const OPERATOR_USER: &str = "keysmith-test-operator";

/// The user name of the test node's kubelet (the node is called `localhost`).
pub const NODE_USER: &str = "system:node:localhost";

/// A client certificate for `user` in group system:masters.
fn client_certificate(ca: &Issuer<'_, KeyPair>, user: &str) -> Result<(String, KeyPair)> {
    client_certificate_in(ca, user, "system:masters")
}

/// A client certificate for `user` in `group`.
fn client_certificate_in(
    ca: &Issuer<'_, KeyPair>,
    user: &str,
    group: &str,
) -> Result<(String, KeyPair)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, user);
    params
        .distinguished_name
        .push(DnType::OrganizationName, group);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    Ok((params.signed_by(&key, ca)?.pem(), key))
}
