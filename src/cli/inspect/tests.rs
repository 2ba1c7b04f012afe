//! Reports of Secrets made by the controllers' own offline steps, checked against
//! `openssl` and `ssh-keygen`, and for the absence of every secret value.

use std::process::Command;
use std::time::SystemTime;

use base64::Engine as _;
use k8s_openapi::ByteString;

use super::text::render;
use super::*;
use crate::cli::generate::{Input, Options, generate};

/// The Secrets generated for `yaml` (namespace `ns`), by resource name.
fn generated(yaml: &str) -> BTreeMap<String, Secret> {
    let input = Input::parse(yaml, "ns");
    assert!(input.errors.is_empty(), "{:?}", input.errors);
    let options = Options {
        default_issuer: None,
        now: SystemTime::now(),
    };
    generate(&input, &options)
        .into_iter()
        .map(|g| {
            let secret = g.result.unwrap_or_else(|e| panic!("{}: {e}", g.resource));
            (secret.name_any(), secret)
        })
        .collect()
}

fn no_password() -> Result<Option<SecretString>, String> {
    Ok(None)
}

/// The text and JSON of `report`.
fn printed(report: &Report) -> String {
    format!(
        "{}\n{}",
        render(report),
        serde_json::to_string(report).unwrap()
    )
}

/// Data keys that hold secret values.
const SECRET_KEYS: [&str; 13] = [
    "tls.key",
    "tls.key.der",
    "tls-combined.pem",
    "keystore.p12",
    "ssh-privatekey",
    "psk",
    "psk.hex",
    "static.key",
    "password",
    "htpasswd",
    "uftp.key",
    "passphrase",
    "ssh-privatekey.previous",
];

/// No secret value of `secret` appears in `text`: not whole, not base64, not hex, not a
/// line of a PEM or OpenSSH body.
fn assert_no_secret_values(secret: &Secret, text: &str) {
    let b64 = base64::engine::general_purpose::STANDARD;
    for (key, value) in data_of(secret) {
        if !SECRET_KEYS.contains(&key.as_str()) {
            continue;
        }
        let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!text.contains(&b64.encode(&value)), "{key} in base64");
        assert!(!text.contains(&hex), "{key} in hex");
        let plain = String::from_utf8_lossy(&value);
        assert!(!text.contains(plain.trim()), "{key} verbatim");
        for line in plain
            .lines()
            .filter(|l| l.len() >= 16 && !l.starts_with("-----"))
        {
            assert!(!text.contains(line), "a line of {key}");
        }
    }
}

fn openssl(args: &[&str], input: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.pem");
    std::fs::write(&path, input).unwrap();
    let out = Command::new("openssl")
        .args(args)
        .arg("-in")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn section<'a>(report: &'a Report, title: &str) -> &'a Section {
    report
        .sections
        .iter()
        .find(|s| s.title.starts_with(title))
        .unwrap_or_else(|| panic!("no section {title}: {}", render(report)))
}

const CHAIN: &str = "
apiVersion: keysmith.dev/v1alpha1
kind: CertificateKeyPair
metadata: {name: root}
spec: {commonName: Root, isCA: true}
---
apiVersion: keysmith.dev/v1alpha1
kind: CertificateKeyPair
metadata: {name: int}
spec: {commonName: Int, isCA: true, maxPathLength: 0, issuerRef: {name: root}}
---
apiVersion: keysmith.dev/v1alpha1
kind: CertificateKeyPair
metadata: {name: leaf}
spec:
  commonName: leaf.example.com
  dnsNames: [leaf.example.com]
  issuerRef: {name: int}
  additionalOutputFormats: [DER, CombinedPEM]
";

#[test]
fn a_certificate_chain_is_described_as_openssl_sees_it() {
    let secrets = generated(CHAIN);
    let secret = &secrets["leaf"];
    let report = report(secret, &no_password(), SystemTime::now());
    assert_eq!(report.owner.as_deref(), Some("CertificateKeyPair/leaf"));
    let chain = section(&report, "Certificate chain (tls.crt, then ca.crt)");
    let sources: Vec<&str> = chain
        .certificates
        .iter()
        .map(|c| c.source.as_str())
        .collect();
    assert_eq!(sources, ["tls.crt #1", "tls.crt #2", "ca.crt #1"]);
    let data = data_of(secret);
    let leaf = &chain.certificates[0];
    let fingerprint = openssl(
        &["x509", "-noout", "-fingerprint", "-sha256"],
        &data["tls.crt"],
    );
    assert_eq!(fingerprint, format!("sha256 Fingerprint={}", leaf.sha256));
    let subject = openssl(
        &["x509", "-noout", "-subject", "-nameopt", "RFC2253"],
        &data["tls.crt"],
    );
    assert_eq!(subject, format!("subject={}", leaf.subject));
    assert_eq!(leaf.names, ["DNS:leaf.example.com"]);
    assert!(leaf.signed_by.contains("tls.crt #2") && leaf.signed_by.contains("verified"));
    assert!(chain.certificates[1].signed_by.contains("ca.crt #1"));
    assert_eq!(chain.certificates[2].signed_by, "itself (self-signed root)");
    assert!(chain.certificates[1].is_ca && chain.certificates[1].max_path_length == Some(0));
    assert!(
        chain
            .get("Chain")
            .unwrap()
            .contains("each signed by the next, ending in a self-signed root")
    );
    let check = report.fingerprint.as_ref().unwrap();
    assert_eq!(check.computed.as_ref(), Some(&check.annotation));
    let key = section(&report, "Private key (tls.key)");
    assert_eq!(key.get("Type"), Some("ECDSA P-256"));
    assert_eq!(key.get("Belongs to the first certificate"), Some("yes"));
    assert_eq!(
        section(&report, "Certificate, DER").get("Same as the first certificate"),
        Some("yes")
    );
    let combined = section(&report, "Key and chain in one file");
    assert_eq!(combined.get("Same certificates as tls.crt"), Some("yes"));
    assert!(report.data.iter().all(|k| k.described), "{report:?}");
    let text = printed(&report);
    assert!(text.contains("matches the data"), "{text}");
    assert_no_secret_values(secret, &text);
}

#[test]
fn a_broken_chain_and_a_stale_fingerprint_are_reported() {
    let secrets = generated(CHAIN);
    let mut secret = secrets["leaf"].clone();
    let data = secret.data.as_mut().unwrap();
    // The intermediate first: the leaf is no longer signed by the next certificate.
    let pem = String::from_utf8(data["tls.crt"].0.clone()).unwrap();
    let mut blocks: Vec<&str> = pem.split_inclusive("-----END CERTIFICATE-----\n").collect();
    blocks.reverse();
    data.insert(
        "tls.crt".to_owned(),
        ByteString(blocks.concat().into_bytes()),
    );
    let report = report(&secret, &no_password(), SystemTime::now());
    let chain = section(&report, "Certificate chain");
    assert!(
        chain.get("Chain").unwrap().contains("BROKEN"),
        "{}",
        render(&report)
    );
    assert!(chain.certificates[0].signed_by.starts_with("NOT"));
    assert!(render(&report).contains("DIFFERS from the data's"));
}

#[test]
fn ssh_keys_and_certificates_match_ssh_keygen() {
    let secrets = generated(
        "
apiVersion: keysmith.dev/v1alpha1
kind: SshKey
metadata: {name: ca}
spec: {keyType: CA}
---
apiVersion: v1
kind: Secret
metadata: {name: pass}
stringData: {passphrase: a-long-enough-passphrase}
---
apiVersion: keysmith.dev/v1alpha1
kind: SshKey
metadata: {name: ops}
spec:
  algorithm: ECDSA
  passphraseSecretRef: {name: pass, key: passphrase}
  certificate: {authorityRef: {name: ca}, principals: [ops, deploy], validity: 24h}
",
    );
    let secret = &secrets["ops"];
    let report = report(secret, &no_password(), SystemTime::now());
    let data = data_of(secret);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.pub");
    std::fs::write(&path, &data["ssh-publickey"]).unwrap();
    let out = Command::new("ssh-keygen")
        .arg("-l")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    let keygen = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let public = section(&report, "SSH public key");
    assert_eq!(public.get("ssh-keygen -l"), Some(keygen.as_str()));
    let private = section(&report, "SSH private key");
    assert_eq!(
        private.get("Encryption"),
        Some("aes256-ctr, bcrypt KDF (passphrase-protected)")
    );
    assert_eq!(private.get("Matches ssh-publickey"), Some("yes"));
    let certificate = section(&report, "SSH certificate");
    assert_eq!(certificate.get("Principals"), Some("ops, deploy"));
    assert_eq!(certificate.get("Key ID"), Some("ns/ops"));
    assert_eq!(certificate.get("Certifies ssh-publickey"), Some("yes"));
    assert_eq!(
        certificate.get("Signature"),
        Some("verifies with the CA key")
    );
    let ca = crate::material::describe::ssh_public_key(&String::from_utf8_lossy(
        &data_of(&secrets["ca"])["ssh-publickey"],
    ))
    .unwrap();
    assert_eq!(
        certificate.get("Signing CA"),
        Some(format!("ED25519 {}", ca.fingerprint).as_str())
    );
    let check = report.fingerprint.as_ref().unwrap();
    assert_eq!(check.computed.as_ref(), Some(&check.annotation));
    let text = printed(&report);
    assert!(!text.contains("a-long-enough-passphrase"));
    assert_no_secret_values(secret, &text);
}

#[test]
fn keyring_material_shows_sizes_and_keyed_fingerprints_only() {
    let secrets = generated(
        "
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: psk}
spec: {type: psk, params: {psk: {length: 24}}}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: vpn}
spec: {type: openvpn, params: {openvpn: {}}}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: login}
spec: {type: remote_access, params: {remote_access: {username: admin, passwordLength: 24}}}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: uftp}
spec: {type: uftp, params: {uftp: {algorithm: ECDSA, size: 384}}}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: dh}
spec: {type: dhparam, params: {dhparam: {group: ffdhe2048}}}
---
apiVersion: keysmith.dev/v1alpha1
kind: KmsAuthKey
metadata: {name: kms}
spec: {keyManagerRef: {name: ekm}, keyTag: tag-1, passphrase: {length: 30}}
",
    );
    let expect = [
        ("psk", "Pre-shared key", "Size", "24 bytes (192 bits)"),
        (
            "vpn",
            "OpenVPN static key",
            "Format",
            "OpenVPN Static key V1, 2048 bits",
        ),
        (
            "login",
            "Remote-access credentials",
            "Password",
            "24 characters",
        ),
        ("uftp", "UFTP key pair", "Type", "ECDSA P-384"),
        ("dh", "DH parameters", "Group", "RFC 7919 ffdhe2048"),
        (
            "kms",
            "KMIP authentication key",
            "Passphrase",
            "30 characters",
        ),
    ];
    for (name, title, field, value) in expect {
        let secret = &secrets[name];
        let report = report(secret, &no_password(), SystemTime::now());
        assert_eq!(section(&report, title).get(field), Some(value), "{name}");
        let check = report.fingerprint.as_ref().unwrap();
        assert_eq!(check.computed.as_ref(), Some(&check.annotation), "{name}");
        assert!(report.data.iter().all(|k| k.described), "{name}");
        assert_no_secret_values(secret, &printed(&report));
    }
    let login = report(&secrets["login"], &no_password(), SystemTime::now());
    assert!(
        section(&login, "Remote-access")
            .get("htpasswd")
            .unwrap()
            .ends_with("yes")
    );
    // Without the salt there is no fingerprint of secret material at all.
    let mut unsalted = secrets["psk"].clone();
    unsalted
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .remove(FINGERPRINT_SALT_ANNOTATION);
    let report = report(&unsalted, &no_password(), SystemTime::now());
    assert!(
        section(&report, "Pre-shared key")
            .get("Fingerprint")
            .unwrap()
            .starts_with("none")
    );
}

#[test]
fn keystores_open_with_the_password_and_list_their_entries() {
    let secrets = generated(
        "
apiVersion: v1
kind: Secret
metadata: {name: p12}
stringData: {password: change-me-please}
---
apiVersion: keysmith.dev/v1alpha1
kind: CertificateKeyPair
metadata: {name: java}
spec:
  commonName: java
  keystores: {pkcs12: {passwordSecretRef: {name: p12, key: password}}}
",
    );
    let secret = &secrets["java"];
    let password = Ok(Some(SecretString::new("change-me-please".to_owned())));
    let report = report(secret, &password, SystemTime::now());
    let keystore = section(&report, "PKCS#12 file (keystore.p12)");
    assert_eq!(keystore.get("Profile"), Some("Modern"));
    assert_eq!(
        keystore.get("Entry \"certificate\""),
        Some("private key, ECDSA P-256")
    );
    let truststore = section(&report, "PKCS#12 file (truststore.p12)");
    let entry = truststore.get("Entry \"ca\"").unwrap();
    assert!(
        entry.starts_with("trusted certificate CN=java") && entry.ends_with("(= tls.crt #1)"),
        "{entry}"
    );
    let text = printed(&report);
    assert!(!text.contains("change-me-please"));
    assert_no_secret_values(secret, &text);
    let unreadable = Err("reading CertificateKeyPair ns/java: forbidden".to_owned());
    let report = super::report(secret, &unreadable, SystemTime::now());
    let keystore = section(&report, "PKCS#12 file (keystore.p12)");
    assert!(
        keystore
            .get("Contents")
            .unwrap()
            .starts_with("not opened: reading")
    );
    assert_eq!(keystore.get("Profile"), Some("Modern"));
}

#[test]
fn a_secret_of_unknown_shape_shows_keys_and_sizes_only() {
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "app", "namespace": "ns"},
        "data": {"token": base64::engine::general_purpose::STANDARD.encode("s3cr3t-t0ken-value")},
    }))
    .unwrap();
    let report = report(&secret, &no_password(), SystemTime::now());
    assert!(report.sections.is_empty() && report.owner.is_none());
    let text = render(&report);
    assert!(text.contains("token (18 bytes)"), "{text}");
    assert!(text.contains("does not know the shape"), "{text}");
    assert!(text.contains("not a keysmith Secret"), "{text}");
    assert!(!printed(&report).contains("s3cr3t"));
}

#[test]
fn spans_read_as_days_hours_and_minutes() {
    let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    let later = |s| now + std::time::Duration::from_secs(s);
    assert_eq!(
        expires(now, later(90 * 86_400 + 3_600)),
        "expires in 90d 1h"
    );
    assert_eq!(expires(now, later(3 * 3_600 + 120)), "expires in 3h 2m");
    assert_eq!(expires(now, later(59)), "expires in 59s");
    assert_eq!(expires(later(2 * 86_400), now), "expired 2d 0h ago");
}
