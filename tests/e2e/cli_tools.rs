//! `keysmith status`, `keysmith rotate` and `keysmith inspect secret` (the real binary, with
//! the admin kubeconfig) against resources the operator reconciled, also run as the kubectl
//! plugin `kubectl keysmith`. What inspect prints is compared with what openssl and
//! ssh-keygen say about the same Secret, and searched for every secret value.

use std::process::{Command, Output};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::json;

use keysmith::api::KeyringSecret;
use keysmith::api::common::reason;

use crate::support::wait::{self, HasCommonStatus};
use crate::support::{self, apply, setup};

/// `keysmith <args>` (the real binary) with `kubeconfig`.
pub(crate) fn keysmith(kubeconfig: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("run keysmith")
}

/// `kubectl <args>` with keysmith installed as a kubectl plugin (`kubectl-keysmith` on the
/// PATH). kubectl takes no global flags before a plugin name: the kubeconfig comes from the
/// environment, which kubectl passes on to the plugin.
fn kubectl_plugin(kubeconfig: &std::path::Path, args: &[&str]) -> Output {
    let plugins = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_keysmith"),
        plugins.path().join("kubectl-keysmith"),
    )
    .expect("symlink");
    let path = format!(
        "{}:{}",
        plugins.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let kubectl = support::binaries()
        .expect("control plane binaries")
        .join("kubectl");
    Command::new(kubectl)
        .env("PATH", path)
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .output()
        .expect("kubectl keysmith")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn status_shows_every_resource_and_rotate_asks_for_new_material() {
    let (cp, client, ns, _op) = setup("cli").await;
    let taken = serde_json::from_value::<Secret>(json!({
        "metadata": {"name": "taken"},
        "stringData": {"psk": "x"},
    }))
    .expect("secret");
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &taken)
        .await
        .expect("create");
    let manifests = "apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: uplink}
spec: {type: psk, params: {psk: {length: 32}}}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: taken}
spec: {type: psk, params: {psk: {length: 32}}}
---
apiVersion: keysmith.dev/v1alpha1
kind: CertificateKeyPair
metadata: {name: web}
spec: {commonName: web.example.com}
";
    apply(cp, &ns, manifests).await;
    let uplink: KeyringSecret = wait::ready(&client, &ns, "uplink").await;
    let _: KeyringSecret =
        wait::not_ready_with(&client, &ns, "taken", reason::SECRET_CONFLICT).await;
    let _: keysmith::api::CertificateKeyPair = wait::ready(&client, &ns, "web").await;

    let out = keysmith(cp.kubeconfig(), &["status", "-n", &ns]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = stdout(&out);
    let line = |resource: &str| {
        table
            .lines()
            .find(|l| l.starts_with(resource))
            .unwrap_or_else(|| panic!("{resource} missing:\n{table}"))
            .to_owned()
    };
    assert!(line("krs/uplink ").contains("True (Generated)"), "{table}");
    let fingerprint = uplink
        .common()
        .and_then(|c| c.fingerprint.clone())
        .expect("fingerprint");
    assert!(line("krs/uplink ").contains(&fingerprint[..20]), "{table}");
    let taken = line("krs/taken ");
    assert!(
        taken.contains("False (SecretConflict)") && taken.contains("already exists"),
        "{table}"
    );
    assert!(line("ckp/web ").contains("True (Issued)"), "{table}");

    // One resource, as a kubectl plugin.
    let out = kubectl_plugin(
        cp.kubeconfig(),
        &["keysmith", "status", "-n", &ns, "krs/uplink"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let one = stdout(&out);
    assert_eq!(one.lines().count(), 2, "header and one row:\n{one}");
    assert!(one.contains("krs/uplink"), "{one}");

    // rotate: new material once, the token recorded.
    let out = keysmith(cp.kubeconfig(), &["rotate", "-n", &ns, "krs/uplink"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout(&out).contains("rotation requested"),
        "{}",
        stdout(&out)
    );
    let rotated: KeyringSecret = wait::until(
        &client,
        &ns,
        "uplink",
        Duration::from_secs(60),
        |k: &KeyringSecret| k.common().and_then(|c| c.revision) == Some(2) && wait::is_ready(k),
    )
    .await;
    assert!(
        rotated
            .common()
            .and_then(|c| c.last_rotation_token.clone())
            .is_some()
    );

    let out = keysmith(cp.kubeconfig(), &["rotate", "-n", &ns, "km/ekm"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no material to rotate"));
    let out = keysmith(cp.kubeconfig(), &["rotate", "-n", &ns, "pod/x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not kind/name"));
}

fn example(path: &str) -> String {
    let file = support::repo_root().join("examples").join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// `keysmith inspect secret NAME -n NS` as text and as JSON; both must succeed.
fn inspect(kubeconfig: &std::path::Path, ns: &str, name: &str) -> (String, serde_json::Value) {
    let text = keysmith(kubeconfig, &["inspect", "secret", name, "-n", ns]);
    assert!(
        text.status.success(),
        "inspect {name}: {}",
        support::stderr(&text)
    );
    let json = keysmith(
        kubeconfig,
        &["inspect", "secret", name, "-n", ns, "-o", "json"],
    );
    assert!(
        json.status.success(),
        "inspect -o json {name}: {}",
        support::stderr(&json)
    );
    let report = serde_json::from_slice(&json.stdout).expect("JSON report");
    (stdout(&text), report)
}

/// The section of `report` whose title starts with `title`.
fn section<'a>(report: &'a serde_json::Value, title: &str) -> &'a serde_json::Value {
    report["sections"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["title"].as_str().is_some_and(|t| t.starts_with(title)))
        .unwrap_or_else(|| panic!("no section {title:?} in {report:#}"))
}

/// A field of a section.
fn field<'a>(section: &'a serde_json::Value, name: &str) -> &'a str {
    section["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["name"] == name)
        .and_then(|f| f["value"].as_str())
        .unwrap_or_else(|| panic!("no field {name:?} in {section:#}"))
}

/// Runs `program args` with `file` holding `bytes` as the last argument; stdout.
fn tool(program: &str, args: &[&str], bytes: &[u8]) -> String {
    let files = crate::support::openssl::Files::new();
    let file = files.write("input", bytes);
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let out = Command::new(program)
        .args(args)
        .arg(&file)
        .env("TZ", "UTC")
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        support::stderr(&out)
    );
    stdout(&out).trim().to_owned()
}

/// Nothing secret of `data` appears in `printed`: no value of a key that holds secret
/// material, not verbatim, not base64, not hex, not one line of a PEM or OpenSSH body.
fn assert_no_secret_values(printed: &str, data: &std::collections::BTreeMap<String, Vec<u8>>) {
    const SECRET: [&str; 9] = [
        "tls.key",
        "keystore.p12",
        "ssh-privatekey",
        "psk",
        "psk.hex",
        "password",
        "htpasswd",
        "passphrase",
        "static.key",
    ];
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    for (key, value) in data.iter().filter(|(k, _)| SECRET.contains(&k.as_str())) {
        let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
        let plain = String::from_utf8_lossy(value);
        assert!(
            !printed.contains(&b64.encode(value)),
            "{key} printed in base64"
        );
        assert!(!printed.contains(&hex), "{key} printed in hex");
        assert!(!printed.contains(plain.trim()), "{key} printed verbatim");
        for line in plain
            .lines()
            .filter(|l| l.len() >= 16 && !l.starts_with("-----"))
        {
            assert!(!printed.contains(line), "a line of {key} printed");
        }
    }
}

/// `Feb 21 06:41:44 2027 GMT` (openssl -enddate) as RFC 3339, by GNU date.
fn rfc3339(openssl_date: &str) -> String {
    let out = Command::new("date")
        .args(["-u", "-d", openssl_date, "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .expect("date");
    stdout(&out).trim().to_owned()
}

#[tokio::test]
async fn inspect_describes_material_as_openssl_and_ssh_keygen_do_and_prints_no_secret() {
    let (cp, client, ns, _op) = setup("cli-inspect").await;
    for file in [
        "certificatekeypair/ca-chain.yaml",
        "certificatekeypair/pkcs12.yaml",
        "sshkey/ssh-ca-and-user-certificate.yaml",
        "keyringsecret/psk.yaml",
        "keyringsecret/remote-access.yaml",
    ] {
        apply(cp, &ns, &example(file)).await;
    }
    let kubeconfig = cp.kubeconfig();

    // A leaf signed by an intermediate: the chain, as openssl sees it.
    let _: keysmith::api::CertificateKeyPair = wait::ready(&client, &ns, "api").await;
    let data = wait::secret_data(&client, &ns, "api-tls").await;
    let (text, report) = inspect(kubeconfig, &ns, "api-tls");
    assert_eq!(report["owner"], "CertificateKeyPair/api");
    let chain = section(&report, "Certificate chain (tls.crt, then ca.crt)");
    let certs = chain["certificates"].as_array().expect("certificates");
    assert_eq!(certs.len(), 3, "{report:#}");
    let leaf = tool(
        "openssl",
        &["x509", "-noout", "-fingerprint", "-sha256", "-in"],
        &data["tls.crt"],
    );
    assert_eq!(
        leaf,
        format!(
            "sha256 Fingerprint={}",
            certs[0]["sha256"].as_str().unwrap()
        )
    );
    let subject = tool(
        "openssl",
        &["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in"],
        &data["tls.crt"],
    );
    assert_eq!(
        subject,
        format!("subject={}", certs[0]["subject"].as_str().unwrap())
    );
    let end = tool(
        "openssl",
        &["x509", "-noout", "-enddate", "-in"],
        &data["tls.crt"],
    );
    let not_after = rfc3339(end.trim_start_matches("notAfter="));
    assert_eq!(certs[0]["notAfter"], not_after.as_str());
    assert!(
        text.contains(&not_after) && text.contains("expires in"),
        "{text}"
    );
    let root = tool(
        "openssl",
        &["x509", "-noout", "-fingerprint", "-sha256", "-in"],
        &data["ca.crt"],
    );
    assert_eq!(
        root,
        format!(
            "sha256 Fingerprint={}",
            certs[2]["sha256"].as_str().unwrap()
        )
    );
    for cert in &certs[..2] {
        assert!(
            cert["signedBy"]
                .as_str()
                .unwrap()
                .ends_with("signature verified"),
            "{cert:#}"
        );
    }
    assert_eq!(certs[2]["signedBy"], "itself (self-signed root)");
    assert_eq!(
        field(
            section(&report, "Private key (tls.key)"),
            "Belongs to the first certificate"
        ),
        "yes"
    );
    let api: keysmith::api::CertificateKeyPair = wait::ready(&client, &ns, "api").await;
    let status_fingerprint = api
        .common()
        .and_then(|c| c.fingerprint.clone())
        .expect("fingerprint");
    assert_eq!(
        report["fingerprint"]["computed"],
        status_fingerprint.as_str()
    );
    assert!(text.contains("(matches the data)"), "{text}");
    assert_no_secret_values(&format!("{text}{report}"), &data);

    // PKCS#12: opened with the password the CertificateKeyPair names, never printed.
    let _: keysmith::api::CertificateKeyPair = wait::ready(&client, &ns, "java-client").await;
    let data = wait::secret_data(&client, &ns, "java-client").await;
    let (text, report) = inspect(kubeconfig, &ns, "java-client");
    let keystore = section(&report, "PKCS#12 file (keystore.p12)");
    assert_eq!(
        field(keystore, "Entry \"certificate\""),
        "private key, ECDSA P-256"
    );
    assert!(!text.contains("change-me-please") && !report.to_string().contains("change-me-please"));
    assert_no_secret_values(&format!("{text}{report}"), &data);

    // SSH: the key as ssh-keygen -l prints it, the certificate as ssh-keygen -L does.
    let ops: keysmith::api::SshKey = wait::ready(&client, &ns, "ops").await;
    let data = wait::secret_data(&client, &ns, "ops").await;
    let (text, report) = inspect(kubeconfig, &ns, "ops");
    let keygen = tool("ssh-keygen", &["-l", "-f"], &data["ssh-publickey"]);
    assert_eq!(
        field(section(&report, "SSH public key"), "ssh-keygen -l"),
        keygen
    );
    assert_eq!(
        field(section(&report, "SSH private key"), "Encryption"),
        "aes256-ctr, bcrypt KDF (passphrase-protected)"
    );
    let listed = tool("ssh-keygen", &["-L", "-f"], &data["ssh-certificate"]);
    let certificate = section(&report, "SSH certificate");
    let signing_ca = listed
        .lines()
        .find_map(|l| l.trim().strip_prefix("Signing CA: "))
        .expect("Signing CA");
    assert!(
        signing_ca.starts_with(field(certificate, "Signing CA")),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("Key ID: \"{}\"", field(certificate, "Key ID"))),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("Serial: {}", field(certificate, "Serial"))),
        "{listed}"
    );
    assert_eq!(field(certificate, "Principals"), "ops, deploy");
    assert_eq!(field(certificate, "Signature"), "verifies with the CA key");
    let status = ops
        .status
        .as_ref()
        .and_then(|s| s.certificate.clone())
        .expect("certificate status");
    let valid_before = field(certificate, "Valid before");
    assert!(
        valid_before.starts_with(&status.valid_before.0.to_string()),
        "{valid_before}"
    );
    assert_eq!(
        report["fingerprint"]["computed"],
        ops.common()
            .and_then(|c| c.fingerprint.clone())
            .expect("fp")
            .as_str()
    );
    assert!(!text.contains("use-a-long-random-passphrase"));
    assert_no_secret_values(&format!("{text}{report}"), &data);

    // Secret material: sizes and the status's keyed fingerprint only.
    for (resource, secret) in [("vpn-psk", "vpn-psk"), ("router-admin", "router-admin")] {
        let krs: KeyringSecret = wait::ready(&client, &ns, resource).await;
        let data = wait::secret_data(&client, &ns, secret).await;
        let (text, report) = inspect(kubeconfig, &ns, secret);
        let status = krs
            .common()
            .and_then(|c| c.fingerprint.clone())
            .expect("fingerprint");
        assert!(status.starts_with("HMAC-SHA256:"), "{status}");
        assert_eq!(
            report["fingerprint"]["computed"],
            status.as_str(),
            "{report:#}"
        );
        assert_no_secret_values(&format!("{text}{report}"), &data);
    }

    // A Secret keysmith did not write: keys and sizes only; run as the kubectl plugin.
    let out = kubectl_plugin(
        kubeconfig,
        &["keysmith", "inspect", "secret", "ops-passphrase", "-n", &ns],
    );
    assert!(out.status.success(), "{}", support::stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("passphrase (28 bytes)"), "{text}");
    assert!(text.contains("does not know the shape"), "{text}");
    assert!(!text.contains("use-a-long-random-passphrase"), "{text}");

    let out = keysmith(
        kubeconfig,
        &["inspect", "secret", "no-such-secret", "-n", &ns],
    );
    assert!(!out.status.success());
    assert!(support::stderr(&out).contains("no-such-secret"));
}
