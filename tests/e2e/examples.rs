//! Every file in `examples/certificatekeypair/` is applied with `kubectl apply -f` as a user
//! would, becomes Ready, and its Secrets are checked with openssl.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;

use keysmith::api::CertificateKeyPair;
use keysmith::api::common::reason;
use keysmith::reconcile::namespaces::WatchedNamespaces;

use crate::support::openssl::{self, Files};
use crate::support::operator::Operator;
use crate::support::wait::{self, ready_condition};
use crate::support::{self, apply, setup};

fn example(name: &str) -> String {
    let path: PathBuf = support::repo_root()
        .join("examples/certificatekeypair")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text_of(pem: &[u8]) -> String {
    let files = Files::new();
    let path = files.write("cert.pem", pem);
    openssl::ok(&["x509", "-in", &path.to_string_lossy(), "-noout", "-text"])
}

#[test]
fn every_example_is_covered_by_a_test() {
    let covered = [
        "adopt-existing-secret.yaml",
        "ca-chain.yaml",
        "cross-namespace-issuer.yaml",
        "pkcs12.yaml",
        "rsa-4096-full-subject.yaml",
        "self-signed-ecdsa.yaml",
    ];
    let dir = support::repo_root().join("examples/certificatekeypair");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("examples dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    files.sort();
    assert_eq!(files, covered, "a new example needs a test here");
}

#[tokio::test]
async fn example_self_signed_ecdsa() {
    let (cp, client, ns, _op) = setup("ex-self").await;
    apply(cp, &ns, &example("self-signed-ecdsa.yaml")).await;
    let _: CertificateKeyPair = wait::ready(&client, &ns, "web").await;
    let data = wait::secret_data(&client, &ns, "web-tls").await;
    let files = Files::new();
    let (ok, out) = openssl::verify(
        &files.write("ca.crt", &data["ca.crt"]),
        None,
        &files.write("tls.crt", &data["tls.crt"]),
    );
    assert!(ok, "{out}");
    let text = text_of(&data["tls.crt"]);
    assert!(
        text.contains("DNS:shop.example.com, DNS:www.shop.example.com"),
        "{text}"
    );
    assert!(text.contains("ASN1 OID: prime256v1"), "{text}");
}

#[tokio::test]
async fn example_rsa_4096_full_subject() {
    let (cp, client, ns, _op) = setup("ex-rsa").await;
    apply(cp, &ns, &example("rsa-4096-full-subject.yaml")).await;
    let _: CertificateKeyPair = wait::ready(&client, &ns, "billing").await;
    let data = wait::secret_data(&client, &ns, "billing").await;
    let text = text_of(&data["tls.crt"]);
    for expected in [
        "Public-Key: (4096 bit)",
        "sha384WithRSAEncryption",
        "CN = billing.example.com",
        "O = Example Inc",
        "OU = Billing",
        "C = DE",
        "ST = Berlin",
        "L = Berlin",
        "street = Unter den Linden 1",
        "postalCode = 10117",
        "serialNumber = 4711",
        "DNS:billing.example.com",
        "IP Address:10.0.0.7",
        "IP Address:2001:DB8:0:0:0:0:0:7",
        "email:billing@example.com",
        "URI:spiffe://example.com/billing",
        "TLS Web Server Authentication",
        "TLS Web Client Authentication",
        "OCSP - URI:http://ocsp.example.com",
        "CA Issuers - URI:http://pki.example.com/ca.crt",
        "URI:http://pki.example.com/ca.crl",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let key = String::from_utf8_lossy(&data["tls.key"]).into_owned();
    assert!(
        key.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
        "PKCS1 encoding"
    );
    let files = Files::new();
    openssl::ok(&[
        "rsa",
        "-in",
        &files.write("tls.key", key.as_bytes()).to_string_lossy(),
        "-check",
        "-noout",
    ]);
}

#[tokio::test]
async fn example_ca_chain() {
    let (cp, client, ns, _op) = setup("ex-chain").await;
    apply(cp, &ns, &example("ca-chain.yaml")).await;
    let _: CertificateKeyPair = wait::ready(&client, &ns, "api").await;
    let data = wait::secret_data(&client, &ns, "api-tls").await;
    let chain = openssl::split_pem(&data["tls.crt"]);
    assert_eq!(chain.len(), 2, "leaf + intermediate");
    let files = Files::new();
    let (ok, out) = openssl::verify(
        &files.write("root.pem", &data["ca.crt"]),
        Some(&files.write("intermediate.pem", chain[1].as_bytes())),
        &files.write("leaf.pem", chain[0].as_bytes()),
    );
    assert!(ok, "{out}");
    let root = wait::secret_data(&client, &ns, "root-ca").await;
    assert_eq!(root["tls.crt"], data["ca.crt"], "ca.crt is the root");
}

#[tokio::test]
async fn example_cross_namespace_issuer() {
    let cp = support::shared();
    cp.install_crds().await;
    let client = cp.client();
    let pki = cp.namespace(&client, "ex-pki").await;
    let shop = cp.namespace(&client, "ex-shop").await;
    let outsider = cp.namespace(&client, "ex-outsider").await;
    // One operator for the three namespaces: it reads issuers only where it watches.
    let watched = WatchedNamespaces::new([pki.clone(), shop.clone(), outsider.clone()]);
    let _operator = Operator::start_with(cp, &pki, |config| config.settings.namespaces = watched);
    // The example's namespaces are mapped onto this test's own (the Namespace objects in
    // the file then refer to namespaces that already exist).
    let yaml = example("cross-namespace-issuer.yaml")
        .replace("name: pki\n", &format!("name: {pki}\n"))
        .replace("namespace: pki", &format!("namespace: {pki}"))
        .replace("name: shop\n", &format!("name: {shop}\n"))
        .replace("namespace: shop", &format!("namespace: {shop}"))
        .replace("[shop]", &format!("[{shop}]"));
    let out = cp.kubectl_stdin(&["apply"], &yaml).await;
    assert!(out.status.success(), "{}", support::stderr(&out));
    let _: CertificateKeyPair = wait::ready(&client, &shop, "storefront").await;
    let leaf = wait::secret_data(&client, &shop, "storefront").await;
    let ca = wait::secret_data(&client, &pki, "shared-ca").await;
    let files = Files::new();
    let (ok, out) = openssl::verify(
        &files.write("ca.pem", &ca["tls.crt"]),
        None,
        &files.write("leaf.pem", &leaf["tls.crt"]),
    );
    assert!(ok, "{out}");

    // Another namespace the CA does not allow is refused.
    let denied = format!(
        "apiVersion: keysmith.dev/v1alpha1\nkind: CertificateKeyPair\nmetadata:\n  name: intruder\nspec:\n  commonName: intruder\n  issuerRef: {{name: shared-ca, namespace: {pki}}}\n"
    );
    apply(cp, &outsider, &denied).await;
    let refused: CertificateKeyPair = wait::not_ready_with(
        &client,
        &outsider,
        "intruder",
        reason::NAMESPACE_NOT_ALLOWED,
    )
    .await;
    assert!(ready_condition(&refused).is_some_and(|c| c.message.contains(&pki)));
    let secrets = Api::<Secret>::namespaced(client.clone(), &outsider);
    assert!(secrets.get_opt("intruder").await.expect("get").is_none());
}

#[tokio::test]
async fn example_pkcs12() {
    let (cp, client, ns, _op) = setup("ex-p12").await;
    apply(cp, &ns, &example("pkcs12.yaml")).await;
    let _: CertificateKeyPair = wait::ready(&client, &ns, "java-client").await;
    let data = wait::secret_data(&client, &ns, "java-client").await;
    let files = Files::new();
    let keystore = files.write("keystore.p12", &data["keystore.p12"]);
    let info = openssl::ok(&[
        "pkcs12",
        "-in",
        &keystore.to_string_lossy(),
        "-passin",
        "pass:change-me-please",
        "-info",
        "-nodes",
    ]);
    assert!(
        info.contains("BEGIN PRIVATE KEY") && info.contains("subject=CN = java-client"),
        "{info}"
    );
    let (wrong, _) = openssl::run(&[
        "pkcs12",
        "-in",
        &keystore.to_string_lossy(),
        "-passin",
        "pass:wrong",
        "-info",
        "-nodes",
    ]);
    assert!(!wrong, "a wrong password must not open the keystore");
    let truststore = files.write("truststore.p12", &data["truststore.p12"]);
    let trust = openssl::ok(&[
        "pkcs12",
        "-in",
        &truststore.to_string_lossy(),
        "-passin",
        "pass:change-me-please",
        "-info",
        "-nokeys",
    ]);
    assert!(trust.contains("BEGIN CERTIFICATE"), "{trust}");
    openssl::ok(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        &files
            .write("tls.crt.der", &data["tls.crt.der"])
            .to_string_lossy(),
        "-noout",
    ]);
    openssl::ok(&[
        "pkey",
        "-inform",
        "DER",
        "-in",
        &files
            .write("tls.key.der", &data["tls.key.der"])
            .to_string_lossy(),
        "-noout",
    ]);
    let combined = String::from_utf8_lossy(&data["tls-combined.pem"]).into_owned();
    assert!(combined.contains("PRIVATE KEY") && combined.contains("BEGIN CERTIFICATE"));
}

#[tokio::test]
async fn example_adopt_existing_secret() {
    let (cp, client, ns, _op) = setup("ex-adopt").await;
    let yaml = example("adopt-existing-secret.yaml");
    let (secret_doc, _) = yaml.split_once("---").expect("two documents");
    // The Secret exists first (as cert-manager left it), then the resource arrives.
    apply(cp, &ns, secret_doc).await;
    let before = wait::secret_data(&client, &ns, "legacy-tls").await;
    apply(cp, &ns, &yaml).await;
    let adopted: CertificateKeyPair = wait::ready(&client, &ns, "legacy").await;
    assert_eq!(
        ready_condition(&adopted).map(|c| c.reason.as_str()),
        Some(reason::ADOPTED)
    );
    let after = wait::secret_data(&client, &ns, "legacy-tls").await;
    assert_eq!(
        before["tls.crt"], after["tls.crt"],
        "the certificate is kept"
    );
    assert_eq!(before["tls.key"], after["tls.key"], "the key is kept");
    let secret = Api::<Secret>::namespaced(client.clone(), &ns)
        .get("legacy-tls")
        .await
        .expect("secret");
    assert_eq!(
        secret
            .annotations()
            .get("keysmith.dev/owner")
            .map(String::as_str),
        Some("CertificateKeyPair/legacy")
    );
    assert!(
        secret
            .annotations()
            .contains_key("cert-manager.io/certificate-name"),
        "foreign annotations stay"
    );
}

fn ssh_example(name: &str) -> String {
    let path: PathBuf = support::repo_root().join("examples/sshkey").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_ssh_example_is_covered_by_a_test() {
    let dir = support::repo_root().join("examples/sshkey");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("examples dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "deploy-key.yaml",
            "host-key.yaml",
            "ssh-ca-and-user-certificate.yaml"
        ]
    );
}

#[tokio::test]
async fn ssh_examples_become_ready() {
    let (cp, client, ns, _op) = setup("ex-ssh").await;
    for file in [
        "deploy-key.yaml",
        "host-key.yaml",
        "ssh-ca-and-user-certificate.yaml",
    ] {
        apply(cp, &ns, &ssh_example(file)).await;
    }
    let deploy: keysmith::api::SshKey = wait::ready(&client, &ns, "deploy").await;
    let status = deploy.status.as_ref().expect("status");
    assert!(
        status
            .public_key
            .as_deref()
            .is_some_and(|k| k.starts_with("ssh-ed25519 ") && k.ends_with("deploy@ci"))
    );
    assert!(
        status.common.next_rotation_time.is_some(),
        "rotation.every schedules the next rotation"
    );
    let _: keysmith::api::SshKey = wait::ready(&client, &ns, "git-host").await;
    let host = wait::secret_data(&client, &ns, "git-host").await;
    assert!(
        String::from_utf8_lossy(&host["known_hosts"])
            .starts_with("git.example.com,git ecdsa-sha2-nistp384 ")
    );
    let ops: keysmith::api::SshKey = wait::ready(&client, &ns, "ops").await;
    let certificate = ops
        .status
        .as_ref()
        .and_then(|s| s.certificate.clone())
        .expect("certificate");
    assert_eq!(certificate.principals, ["ops", "deploy"]);
    let data = wait::secret_data(&client, &ns, "ops").await;
    assert!(String::from_utf8_lossy(&data["ssh-privatekey"]).contains("BEGIN OPENSSH PRIVATE KEY"));
    let files = Files::new();
    let key = files.write("ops", &data["ssh-privatekey"]);
    crate::support::sshd::write_private(&key, &data["ssh-privatekey"]);
    let out = std::process::Command::new("ssh-keygen")
        .args(["-y", "-P", "use-a-long-random-passphrase", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success(), "the passphrase opens the key");
}
