//! Certificates: issued by keysmith and listed by `ssh-keygen -L` (which also verifies the
//! CA signature when it parses a certificate), and issued by `ssh-keygen -s` and read here.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::keys::ssh_keygen_key;
use super::*;

/// 2025-06-15T15:06:40.700Z: the fraction checks that validity is truncated to seconds.
fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_750_000_000_700)
}

fn request(cert_type: CertificateType) -> CertificateRequest {
    CertificateRequest {
        cert_type,
        key_id: "ci/deploy".to_owned(),
        principals: vec!["deploy".to_owned(), "git".to_owned()],
        valid_after: start(),
        valid_before: start() + Duration::from_secs(86_400),
        extensions: Vec::new(),
        critical_options: BTreeMap::new(),
    }
}

fn explicit_user_request() -> CertificateRequest {
    CertificateRequest {
        extensions: vec![
            "permit-pty".to_owned(),
            "permit-agent-forwarding".to_owned(),
        ],
        critical_options: BTreeMap::from([
            (
                "force-command".to_owned(),
                "/usr/bin/backup --now".to_owned(),
            ),
            (
                "source-address".to_owned(),
                "10.0.0.0/8,192.168.1.1".to_owned(),
            ),
        ]),
        ..request(CertificateType::User)
    }
}

fn host_request() -> CertificateRequest {
    CertificateRequest {
        principals: vec!["git.example.com".to_owned()],
        ..request(CertificateType::Host)
    }
}

/// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`: the key's algorithm name.
fn algorithm_name(key: &SshKeyPair) -> String {
    key.inner.algorithm().as_str().to_owned()
}

/// `ED25519`, `ECDSA`, `RSA`: how `ssh-keygen` names a key type.
fn type_label(key: &SshKeyPair) -> &'static str {
    match key.kind() {
        SshKeyKind::Ed25519 => "ED25519",
        SshKeyKind::EcdsaP256 | SshKeyKind::EcdsaP384 | SshKeyKind::EcdsaP521 => "ECDSA",
        SshKeyKind::Rsa(_) => "RSA",
    }
}

/// The signature algorithm of a CA key (RSA: rsa-sha2-512).
fn signature_algorithm(ca: &SshKeyPair) -> String {
    match ca.kind() {
        SshKeyKind::Rsa(_) => "rsa-sha2-512".to_owned(),
        _ => algorithm_name(ca),
    }
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC, as `ssh-keygen -L` prints validity under TZ=UTC.
fn keygen_time(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    jiff::Timestamp::from_second(i64::try_from(secs).expect("fits"))
        .expect("timestamp")
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// A block of `ssh-keygen -L` (`Principals:`, `Critical Options:`, `Extensions:`).
fn block(name: &str, lines: &[String]) -> String {
    if lines.is_empty() {
        return format!("        {name}: (none)\n");
    }
    let mut out = format!("        {name}: \n");
    for line in lines {
        out.push_str(&format!("                {line}\n"));
    }
    out
}

/// What `ssh-keygen -L -f <path>` prints for a certificate of `subject` by `ca` with
/// `request`'s content, `extensions` and `serial`.
fn expected_listing(
    path: &str,
    subject: &SshKeyPair,
    ca: &SshKeyPair,
    request: &CertificateRequest,
    extensions: &[&str],
    serial: u64,
) -> String {
    let kind = match request.cert_type {
        CertificateType::User => "user",
        CertificateType::Host => "host",
    };
    let options: Vec<String> = request
        .critical_options
        .iter()
        .map(|(name, value)| format!("{name} {value}"))
        .collect();
    let extensions: Vec<String> = extensions.iter().map(|e| (*e).to_owned()).collect();
    format!(
        "{path}:\n        Type: {}-cert-v01@openssh.com {kind} certificate\n        Public key: {}-CERT {}\n        Signing CA: {} {} (using {})\n        Key ID: \"{}\"\n        Serial: {serial}\n        Valid: from {} to {}\n{}{}{}",
        algorithm_name(subject),
        type_label(subject),
        subject.fingerprint_sha256(),
        type_label(ca),
        ca.fingerprint_sha256(),
        signature_algorithm(ca),
        request.key_id,
        keygen_time(request.valid_after),
        keygen_time(request.valid_before),
        block("Principals", &request.principals),
        block("Critical Options", &options),
        block("Extensions", &extensions),
    )
}

/// `ssh-keygen -L` of a certificate line.
fn listing(cert: &SshCertificate) -> (String, Output) {
    let dir = temp_dir();
    let path = write_public(&dir, "id-cert.pub", format!("{}\n", cert.line()).as_bytes());
    let path = path_str(&path).to_owned();
    let out = ssh_keygen(&["-L", "-f", &path]);
    (path, out)
}

/// Issues a certificate and checks it against `ssh-keygen -L` and `info()`.
fn issue_and_check(
    subject: &SshKeyPair,
    ca: &SshKeyPair,
    request: &CertificateRequest,
    extensions: &[&str],
) -> SshCertificate {
    let cert = SshCertificate::issue(subject, ca, request).expect("issue");
    let info = cert.info().expect("info");
    let (path, out) = listing(&cert);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{} by {}: {}",
        subject.kind(),
        ca.kind(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout,
        expected_listing(&path, subject, ca, request, extensions, info.serial),
        "{} by {}",
        subject.kind(),
        ca.kind()
    );
    assert_eq!(info.cert_type, request.cert_type);
    assert_eq!(info.key_id, request.key_id);
    assert_eq!(info.principals, request.principals);
    assert_ne!(info.serial, 0);
    assert_eq!(
        info.valid_after,
        UNIX_EPOCH + Duration::from_secs(1_750_000_000)
    );
    assert_eq!(
        info.valid_before,
        UNIX_EPOCH + Duration::from_secs(1_750_086_400)
    );
    assert_eq!(info.extensions, extensions);
    assert_eq!(info.critical_options, request.critical_options);
    assert_eq!(info.ca_fingerprint, ca.fingerprint_sha256());
    assert!(cert.is_signed_for(subject, ca));
    assert!(cert.line().ends_with(&format!(" {}", subject.comment())));
    cert
}

fn ca_kinds() -> [&'static SshKeyPair; 2] {
    [key(SshKeyKind::Ed25519), key(SshKeyKind::Rsa(3072))]
}

#[test]
fn user_certificates_with_the_default_extensions() {
    for ca in ca_kinds() {
        issue_and_check(
            key(SshKeyKind::EcdsaP256),
            ca,
            &request(CertificateType::User),
            &DEFAULT_USER_EXTENSIONS,
        );
    }
}

#[test]
fn user_certificates_with_explicit_extensions_and_critical_options() {
    for ca in ca_kinds() {
        issue_and_check(
            other_ed25519(),
            ca,
            &explicit_user_request(),
            &["permit-agent-forwarding", "permit-pty"],
        );
    }
}

#[test]
fn host_certificates() {
    for ca in ca_kinds() {
        issue_and_check(key(SshKeyKind::Rsa(2048)), ca, &host_request(), &[]);
    }
}

#[test]
fn every_kind_certifies_and_is_certified() {
    for kind in ALL_KINDS {
        let ed25519_ca = other_ed25519();
        issue_and_check(
            key(kind),
            ed25519_ca,
            &request(CertificateType::User),
            &DEFAULT_USER_EXTENSIONS,
        );
        let subject = key(SshKeyKind::EcdsaP384);
        if kind != SshKeyKind::EcdsaP384 {
            issue_and_check(subject, key(kind), &host_request(), &[]);
        }
    }
}

#[test]
fn is_signed_for_rejects_another_ca_or_subject() {
    let subject = key(SshKeyKind::EcdsaP256);
    for ca in ca_kinds() {
        let cert =
            SshCertificate::issue(subject, ca, &request(CertificateType::User)).expect("issue");
        assert!(cert.is_signed_for(subject, ca));
        for other_ca in [
            other_ed25519(),
            key(SshKeyKind::Rsa(2048)),
            key(SshKeyKind::EcdsaP256),
        ] {
            assert!(
                !cert.is_signed_for(subject, other_ca),
                "{}",
                other_ca.kind()
            );
        }
        for other_subject in [other_ed25519(), key(SshKeyKind::EcdsaP384), ca] {
            assert!(
                !cert.is_signed_for(other_subject, ca),
                "{}",
                other_subject.kind()
            );
        }
        // The same key with another comment is the same subject.
        assert!(cert.is_signed_for(&subject.with_comment("renamed"), ca));
    }
}

/// The certificate with one byte of its blob changed at `at` (negative: from the end).
fn tampered(cert: &SshCertificate, at: isize) -> String {
    let mut parts: Vec<String> = cert.line().split(' ').map(str::to_owned).collect();
    let mut blob = STANDARD.decode(&parts[1]).expect("base64");
    let at = if at < 0 {
        blob.len() - at.unsigned_abs()
    } else {
        at.unsigned_abs()
    };
    blob[at] ^= 0x01;
    parts[1] = STANDARD.encode(&blob);
    parts.join(" ")
}

#[test]
fn tampered_certificates_fail_in_ssh_keygen_and_here() {
    let subject = key(SshKeyKind::EcdsaP256);
    for ca in ca_kinds() {
        let cert =
            SshCertificate::issue(subject, ca, &request(CertificateType::User)).expect("issue");
        // 4 + 40 bytes of certificate type, 4 bytes of nonce length: byte 50 is in the
        // (signed) nonce; the last byte is in the signature.
        for at in [50, -1] {
            let line = tampered(&cert, at);
            let parsed = SshCertificate::parse(&line).expect("still parses");
            assert!(!parsed.is_signed_for(subject, ca), "{at}");
            let out = listing(&parsed).1;
            assert!(
                !out.status.success(),
                "ssh-keygen accepted a tampered certificate ({at})"
            );
        }
    }
}

#[test]
fn serials_are_random() {
    let subject = key(SshKeyKind::Ed25519);
    let ca = other_ed25519();
    let a = SshCertificate::issue(subject, ca, &host_request()).expect("issue");
    let b = SshCertificate::issue(subject, ca, &host_request()).expect("issue");
    assert_ne!(
        a.info().expect("info").serial,
        b.info().expect("info").serial
    );
    assert_ne!(a, b);
}

#[test]
fn certificates_from_ssh_keygen_are_read_and_verified() {
    let (ca_pem, _) = ssh_keygen_key(SshKeyKind::Rsa(3072), "", "ca@ssh-keygen");
    let ca = SshKeyPair::from_openssh(&ca_pem, None).expect("CA");
    let subject = key(SshKeyKind::Ed25519);
    let dir = temp_dir();
    let ca_path = write_private(&dir, "ca", &ca_pem);
    let pub_path = write_public(
        &dir,
        "id.pub",
        format!("{}\n", subject.authorized_key()).as_bytes(),
    );
    ssh_keygen_ok(&[
        "-q",
        "-s",
        path_str(&ca_path),
        "-I",
        "from-ssh-keygen",
        "-z",
        "4242",
        "-n",
        "alice,bob",
        "-V",
        "20250615150640:20250616150640",
        "-O",
        "clear",
        "-O",
        "permit-pty",
        "-O",
        "force-command=/bin/true",
        path_str(&pub_path),
    ]);
    let line = std::fs::read_to_string(dir.path().join("id-cert.pub")).expect("certificate");
    let cert = SshCertificate::parse(&line).expect("parse");
    assert_eq!(cert.line(), line.trim());
    let info = cert.info().expect("info");
    assert_eq!(
        info,
        SshCertificateInfo {
            serial: 4242,
            key_id: "from-ssh-keygen".to_owned(),
            cert_type: CertificateType::User,
            principals: vec!["alice".to_owned(), "bob".to_owned()],
            valid_after: UNIX_EPOCH + Duration::from_secs(1_750_000_000),
            valid_before: UNIX_EPOCH + Duration::from_secs(1_750_086_400),
            extensions: vec!["permit-pty".to_owned()],
            critical_options: BTreeMap::from([(
                "force-command".to_owned(),
                "/bin/true".to_owned()
            )]),
            ca_fingerprint: ca.fingerprint_sha256(),
        }
    );
    assert!(cert.is_signed_for(subject, &ca));
    assert!(!cert.is_signed_for(subject, key(SshKeyKind::Rsa(3072))));

    // The ssh-keygen CA (its OpenSSH encoding of the RSA components) signs here too.
    issue_and_check(
        subject,
        &ca,
        &explicit_user_request(),
        &["permit-agent-forwarding", "permit-pty"],
    );
}

#[test]
fn requests_that_cannot_be_issued() {
    let subject = key(SshKeyKind::Ed25519);
    let ca = other_ed25519();
    let unsupported = |request: CertificateRequest| {
        let err = SshCertificate::issue(subject, ca, &request).expect_err("rejected");
        assert!(matches!(err, MaterialError::Unsupported(_)), "{err:?}");
    };
    unsupported(CertificateRequest {
        principals: Vec::new(),
        ..request(CertificateType::User)
    });
    unsupported(CertificateRequest {
        valid_before: start(),
        ..request(CertificateType::User)
    });
    unsupported(CertificateRequest {
        extensions: vec!["permit-pty".to_owned()],
        ..host_request()
    });
    unsupported(CertificateRequest {
        critical_options: BTreeMap::from([("force-command".to_owned(), "x".to_owned())]),
        ..host_request()
    });
    unsupported(CertificateRequest {
        valid_after: UNIX_EPOCH - Duration::from_secs(1),
        ..request(CertificateType::User)
    });
}

#[test]
fn parse_rejects_what_is_not_a_certificate() {
    for line in [
        "",
        "garbage",
        key(SshKeyKind::Ed25519).authorized_key().as_str(),
        "ssh-ed25519-cert-v01@openssh.com AAAA",
    ] {
        let err = SshCertificate::parse(line).expect_err("rejected");
        assert!(matches!(err, MaterialError::Invalid(_)), "{line}: {err:?}");
    }
    let cert = SshCertificate::issue(key(SshKeyKind::Ed25519), other_ed25519(), &host_request())
        .expect("issue");
    let two_lines = format!("{}\n{}", cert.line(), cert.line());
    assert!(SshCertificate::parse(&two_lines).is_err());
    assert_eq!(
        SshCertificate::parse(&format!("  {}\n", cert.line())).expect("parse"),
        cert
    );
}

/// ssh-key 0.6.7 passes the primes `[p, p]` to the `rsa` crate, which rejects the key, so
/// RSA CAs sign through aws-lc-rs (`rsa_keys::sign_certificate`). When this test fails,
/// ssh-key signs with RSA itself and the workaround can go.
#[test]
fn ssh_key_still_cannot_sign_with_rsa() {
    let builder =
        certificate_builder(other_ed25519(), &request(CertificateType::User)).expect("builder");
    assert!(builder.sign(&key(SshKeyKind::Rsa(2048)).inner).is_err());
}
