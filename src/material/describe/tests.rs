//! Descriptions checked against what `openssl` and `ssh-keygen` say about the same material.

use std::process::Command;

use serde_json::json;

use super::*;
use crate::material::SecretString;
use crate::material::pkey::PrivateKey;
use crate::material::ssh::{CertificateRequest, CertificateType, SshKeyKind, SshKeyPair};
use crate::material::x509::testing::{issue_new, spec, write_file, x509_text};

fn ssh_keygen(args: &[&str]) -> String {
    let out = Command::new("ssh-keygen")
        .args(args)
        .env("TZ", "UTC")
        .output()
        .expect("ssh-keygen runs");
    assert!(
        out.status.success(),
        "ssh-keygen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn certificate_details_match_openssl() {
    let ca = issue_new(
        &spec(json!({"commonName": "Root", "isCA": true, "maxPathLength": 1})),
        None,
    );
    let leaf = issue_new(
        &spec(json!({
            "commonName": "web.example.com",
            "dnsNames": ["web.example.com", "www.example.com"],
            "ipAddresses": ["10.0.0.7", "2001:db8::7"],
            "emailAddresses": ["ops@example.com"],
            "uris": ["spiffe://example.com/web"],
            "privateKey": {"algorithm": "RSA", "size": 2048},
            "usages": ["DigitalSignature", "KeyEncipherment", "ServerAuth", "ClientAuth"],
        })),
        Some(&ca),
    );
    let cert = &leaf.chain[0];
    let details = certificate(cert).unwrap();
    let text = x509_text(cert);
    let san_line = text
        .lines()
        .skip_while(|l| !l.contains("Subject Alternative Name"))
        .nth(1)
        .unwrap()
        .trim()
        .to_owned();
    // openssl prints IPv6 addresses uncompressed.
    let expected: Vec<String> = san_line
        .split(", ")
        .map(|n| n.replace("2001:DB8:0:0:0:0:0:7", "2001:db8::7"))
        .collect();
    assert_eq!(details.names, expected, "{text}");
    assert_eq!(details.key, "RSA 2048");
    assert!(text.contains("Public-Key: (2048 bit)"), "{text}");
    assert!(!details.info.is_ca && details.max_path_length.is_none());
    for usage in [
        "Digital Signature",
        "Key Encipherment",
        "serverAuth",
        "clientAuth",
    ] {
        assert!(
            details.usages.iter().any(|u| u == usage),
            "{usage}: {details:?}"
        );
    }
    assert!(signed_by(cert, &ca.chain[0]));
    assert!(!signed_by(&ca.chain[0], cert));
    assert!(!signed_by(cert, cert));
    let root = certificate(&ca.chain[0]).unwrap();
    assert!(root.info.is_ca && root.info.self_signed);
    assert_eq!(root.max_path_length, Some(1));
    assert!(signed_by(&ca.chain[0], &ca.chain[0]));
}

#[test]
fn key_kinds_of_every_generated_key() {
    for kind in [
        KeyKind::EcdsaP256,
        KeyKind::EcdsaP384,
        KeyKind::EcdsaP521,
        KeyKind::Rsa(2048),
        KeyKind::Ed25519,
    ] {
        let key = PrivateKey::generate(kind).unwrap();
        assert_eq!(key_kind(&key.public_key_der().unwrap()).unwrap(), kind);
    }
    assert!(key_kind(b"not DER").is_err());
}

fn write_ssh(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = write_file(dir, name, text.as_bytes());
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn ssh_public_keys_print_as_ssh_keygen_l() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, comment) in [
        (SshKeyKind::Ed25519, "deploy@ci"),
        (SshKeyKind::EcdsaP384, "host"),
        (SshKeyKind::Rsa(2048), ""),
    ] {
        let key = SshKeyPair::generate(kind, comment).unwrap();
        let line = key.authorized_key();
        let details = ssh_public_key(&line).unwrap();
        let path = write_ssh(&dir, "key.pub", &format!("{line}\n"));
        assert_eq!(
            details.keygen_line(),
            ssh_keygen(&["-l", "-f", &path]).trim(),
            "{kind}"
        );
        assert_eq!(details.fingerprint, key.fingerprint_sha256());
    }
    assert!(ssh_public_key("not a key").is_err());
}

#[test]
fn private_key_envelopes_say_only_what_is_public() {
    let key = SshKeyPair::generate(SshKeyKind::Ed25519, "ops@ci").unwrap();
    let plain = key.to_openssh(None).unwrap();
    let envelope = ssh_private_key(plain.expose().as_bytes()).unwrap();
    assert_eq!(envelope.encryption, None);
    assert_eq!(envelope.public.fingerprint, key.fingerprint_sha256());
    assert_eq!(envelope.public.comment, "ops@ci");
    let passphrase = SecretString::new("correct horse battery".to_owned());
    let encrypted = key.to_openssh(Some(&passphrase)).unwrap();
    let envelope = ssh_private_key(encrypted.expose().as_bytes()).unwrap();
    assert_eq!(
        envelope.encryption.as_deref(),
        Some("aes256-ctr, bcrypt KDF")
    );
    assert_eq!(envelope.public.fingerprint, key.fingerprint_sha256());
    assert!(ssh_private_key(b"-----BEGIN PRIVATE KEY-----").is_err());
}

#[test]
fn ssh_certificates_match_ssh_keygen_capital_l() {
    let ca = SshKeyPair::generate(SshKeyKind::Ed25519, "ca").unwrap();
    let user = SshKeyPair::generate(SshKeyKind::EcdsaP256, "ops@ops").unwrap();
    let now = std::time::SystemTime::now();
    let request = CertificateRequest {
        cert_type: CertificateType::User,
        key_id: "ops/ops".to_owned(),
        principals: vec!["ops".to_owned(), "deploy".to_owned()],
        valid_after: now,
        valid_before: now + std::time::Duration::from_secs(3600),
        extensions: vec!["permit-pty".to_owned()],
        critical_options: Default::default(),
    };
    let cert = SshCertificate::issue(&user, &ca, &request).unwrap();
    let details = ssh_certificate(cert.line()).unwrap();
    assert!(details.signature_valid);
    assert_eq!(details.key.fingerprint, user.fingerprint_sha256());
    assert_eq!(details.ca.fingerprint, ca.fingerprint_sha256());
    assert_eq!(details.info.key_id, "ops/ops");
    assert!(ssh_certificate_certifies(
        cert.line(),
        &user.authorized_key()
    ));
    assert!(!ssh_certificate_certifies(
        cert.line(),
        &ca.authorized_key()
    ));
    let dir = tempfile::tempdir().unwrap();
    let path = write_ssh(&dir, "user-cert.pub", &format!("{}\n", cert.line()));
    let listed = ssh_keygen(&["-L", "-f", &path]);
    assert!(
        listed.contains(&format!("Signing CA: ED25519 {}", details.ca.fingerprint)),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("Serial: {}", details.info.serial)),
        "{listed}"
    );
    assert!(listed.contains("Key ID: \"ops/ops\""), "{listed}");
    // A flipped byte in the signature is detected.
    let mut tampered = cert.line().to_owned();
    let body = tampered.split(' ').nth(1).unwrap().to_owned();
    let at = body.len() - 10;
    let swapped = if &body[at..=at] == "A" { "B" } else { "A" };
    let changed = format!("{}{}{}", &body[..at], swapped, &body[at + 1..]);
    tampered = tampered.replace(&body, &changed);
    if let Ok(details) = ssh_certificate(&tampered) {
        assert!(!details.signature_valid);
    }
}

#[test]
fn private_keys_are_described_by_type_and_encoding_only() {
    use crate::api::certificate_key_pair::KeyEncoding;
    let material = issue_new(
        &spec(json!({"commonName": "k", "privateKey": {"algorithm": "RSA"}})),
        None,
    );
    let other = issue_new(&spec(json!({"commonName": "o"})), None);
    for (encoding, name) in [
        (KeyEncoding::PKCS8, "PKCS#8"),
        (KeyEncoding::PKCS1, "PKCS#1"),
    ] {
        let pem = material.key.to_pem(encoding).unwrap();
        let details = private_key_pem(pem.expose().as_bytes()).unwrap();
        assert_eq!((details.kind, details.encoding), (KeyKind::Rsa(2048), name));
        assert!(key_matches(&details, &material.chain[0]));
        assert!(!key_matches(&details, &other.chain[0]));
        let der = material.key.to_der(encoding).unwrap();
        assert_eq!(private_key_der(der.expose()).unwrap(), details);
    }
    let sec1 = other.key.to_pem(KeyEncoding::PKCS1).unwrap();
    let details = private_key_pem(sec1.expose().as_bytes()).unwrap();
    assert_eq!(
        (details.kind, details.encoding),
        (KeyKind::EcdsaP256, "SEC1")
    );
    // A combined PEM: the key is found among certificates.
    let combined = format!(
        "{}{}",
        material.chain[0].to_pem(),
        material.key.to_pem(KeyEncoding::PKCS8).unwrap().expose()
    );
    assert_eq!(
        private_key_pem(combined.as_bytes()).unwrap().kind,
        KeyKind::Rsa(2048)
    );
    assert!(private_key_pem(material.chain[0].to_pem().as_bytes()).is_err());
    assert!(private_key_der(b"junk").is_err());
}
