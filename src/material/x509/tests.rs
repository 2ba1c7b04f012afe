use serde_json::json;
use tempfile::TempDir;

use super::testing::{issue_new, openssl, openssl_ok, spec, write_pem, x509_text};
use super::*;

/// A leaf spec with every subject attribute, all four SAN types, usages, AIA and CRL.
fn full_spec() -> CertificateKeyPairSpec {
    spec(json!({
        "commonName": "shop.example.com",
        "subject": {
            "organizations": ["Example, Inc"],
            "organizationalUnits": ["Web"],
            "countries": ["DE"],
            "provinces": ["Berlin"],
            "localities": ["Berlin-Mitte"],
            "streetAddresses": ["Unter den Linden 1"],
            "postalCodes": ["10117"],
            "serialNumber": "SN-42"
        },
        "dnsNames": ["shop.example.com", "*.shop.example.com"],
        "ipAddresses": ["10.0.0.7", "2001:db8::1"],
        "emailAddresses": ["ops@example.com"],
        "uris": ["spiffe://example.com/shop"],
        "duration": "48h",
        "usages": ["DigitalSignature", "KeyEncipherment", "ServerAuth", "ClientAuth"],
        "ocspServers": ["http://ocsp.example.com"],
        "issuingCertificateUrls": ["http://ca.example.com/ca.crt"],
        "crlDistributionPoints": ["http://crl.example.com/ca.crl"]
    }))
}

fn ca_spec(name: &str, extra: serde_json::Value) -> CertificateKeyPairSpec {
    let mut base = json!({"commonName": name, "isCA": true});
    if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    spec(base)
}

/// `openssl verify -CAfile root [-untrusted intermediates] cert`: (success, output).
fn verify(
    dir: &TempDir,
    root: &Certificate,
    untrusted: &[&Certificate],
    cert: &Certificate,
) -> (bool, String) {
    let root_path = write_pem(dir, "verify-root.pem", &[root]);
    let cert_path = write_pem(dir, "verify-cert.pem", &[cert]);
    let mut args = vec![
        "verify".to_owned(),
        "-CAfile".to_owned(),
        root_path.to_str().unwrap().to_owned(),
    ];
    if !untrusted.is_empty() {
        let path = write_pem(dir, "verify-untrusted.pem", untrusted);
        args.push("-untrusted".to_owned());
        args.push(path.to_str().unwrap().to_owned());
    }
    args.push(cert_path.to_str().unwrap().to_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = openssl(&args);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// `openssl x509 <flag> -noout` output after the `=`.
fn x509_field(cert: &Certificate, flags: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write_pem(&dir, "c.pem", &[cert]);
    let mut args = vec!["x509", "-in", path.to_str().unwrap(), "-noout"];
    args.extend(flags);
    let out = openssl_ok(&args);
    out.trim().split_once('=').unwrap().1.to_owned()
}

/// `YYYY-MM-DD HH:MM:SSZ`, as `openssl x509 -dateopt iso_8601` prints it.
fn iso(t: SystemTime) -> String {
    let t = OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[test]
fn self_signed_leaf_carries_everything_the_spec_asks() {
    let spec = full_spec();
    let material = issue_new(&spec, None);
    assert_eq!(material.chain.len(), 1);
    assert_eq!(material.chain[0], material.ca);
    let text = x509_text(&material.chain[0]);
    for needle in [
        "Subject: C = DE, ST = Berlin, L = Berlin-Mitte, street = Unter den Linden 1, \
         postalCode = 10117, O = \"Example, Inc\", OU = Web, CN = shop.example.com, serialNumber = SN-42",
        "DNS:shop.example.com",
        "DNS:*.shop.example.com",
        "IP Address:10.0.0.7",
        "IP Address:2001:DB8:0:0:0:0:0:1",
        "email:ops@example.com",
        "URI:spiffe://example.com/shop",
        "X509v3 Key Usage: critical",
        "Digital Signature, Key Encipherment",
        "TLS Web Server Authentication, TLS Web Client Authentication",
        "X509v3 Basic Constraints: critical",
        "CA:FALSE",
        "X509v3 Subject Key Identifier",
        "Authority Information Access",
        "OCSP - URI:http://ocsp.example.com",
        "CA Issuers - URI:http://ca.example.com/ca.crt",
        "X509v3 CRL Distribution Points",
        "URI:http://crl.example.com/ca.crl",
        "Signature Algorithm: ecdsa-with-SHA256",
        "ASN1 OID: prime256v1",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    // No AKI on a self-signed certificate.
    assert!(!text.contains("Authority Key Identifier"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = verify(&dir, &material.ca, &[], &material.chain[0]);
    assert!(ok, "{out}");
    // countryName and serialNumber are PrintableString, the rest UTF8String.
    let path = write_pem(&dir, "self.pem", &[&material.chain[0]]);
    let asn1 = openssl_ok(&["asn1parse", "-in", path.to_str().unwrap()]);
    assert!(asn1.contains("PRINTABLESTRING   :DE"), "{asn1}");
    assert!(asn1.contains("PRINTABLESTRING   :SN-42"), "{asn1}");
    assert!(
        asn1.contains("UTF8STRING        :shop.example.com"),
        "{asn1}"
    );
    // Debug of the material shows the key's kind only.
    let shown = format!("{material:?}");
    assert!(
        shown.contains("PrivateKey { kind: EcdsaP256, .. }"),
        "{shown}"
    );
    // The certificate holds the key's public key.
    let cert = parse_certificate(material.chain[0].der()).unwrap();
    assert_eq!(
        cert.public_key().raw,
        material.key.public_key_der().unwrap().as_slice()
    );
}

#[test]
fn validity_is_whole_seconds_from_now_for_the_duration() {
    let spec = full_spec(); // 48h
    let now = SystemTime::now();
    let material = issue(
        &spec,
        PrivateKey::generate(KeyKind::EcdsaP256).unwrap(),
        None,
        now,
    )
    .unwrap();
    let info = material.chain[0].info().unwrap();
    let now_secs = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(info.not_before, UNIX_EPOCH + Duration::from_secs(now_secs));
    assert_eq!(
        info.not_after.duration_since(info.not_before).unwrap(),
        Duration::from_secs(48 * 3600)
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_pem(&dir, "c.pem", &[&material.chain[0]]);
    let checkend = |secs: u64| {
        openssl(&[
            "x509",
            "-in",
            path.to_str().unwrap(),
            "-noout",
            "-checkend",
            &secs.to_string(),
        ])
        .status
        .success()
    };
    assert!(checkend(47 * 3600), "expires before 47h");
    assert!(!checkend(49 * 3600), "still valid after 49h");
}

#[test]
fn info_matches_openssl() {
    let root = issue_new(
        &ca_spec(
            "Root CA",
            json!({"subject": {"organizations": ["Example, Inc"]}}),
        ),
        None,
    );
    let leaf = issue_new(&full_spec(), Some(&root));
    for cert in [&root.ca, &leaf.chain[0]] {
        let info = cert.info().unwrap();
        assert_eq!(info.sha256, x509_field(cert, &["-fingerprint", "-sha256"]));
        assert_eq!(info.sha1, x509_field(cert, &["-fingerprint", "-sha1"]));
        assert_eq!(info.serial_hex, x509_field(cert, &["-serial"]));
        assert_eq!(info.serial_hex.len(), 32);
        assert_eq!(
            iso(info.not_after),
            x509_field(cert, &["-enddate", "-dateopt", "iso_8601"])
        );
        assert_eq!(
            iso(info.not_before),
            x509_field(cert, &["-startdate", "-dateopt", "iso_8601"])
        );
        assert_eq!(
            info.subject,
            x509_field(cert, &["-subject", "-nameopt", "RFC2253"])
        );
        assert_eq!(
            info.issuer,
            x509_field(cert, &["-issuer", "-nameopt", "RFC2253"])
        );
    }
    let root_info = root.ca.info().unwrap();
    assert!(root_info.is_ca && root_info.self_signed);
    assert_eq!(root_info.subject, "CN=Root CA,O=Example\\, Inc");
    let leaf_info = leaf.chain[0].info().unwrap();
    assert!(!leaf_info.is_ca && !leaf_info.self_signed);
    assert_eq!(leaf_info.issuer, root_info.subject);
    assert_eq!(
        leaf_info.subject,
        "serialNumber=SN-42,CN=shop.example.com,OU=Web,O=Example\\, Inc,postalCode=10117,street=Unter den Linden 1,L=Berlin-Mitte,ST=Berlin,C=DE"
    );
    assert!(
        leaf_info.sha256.len() == 95
            && leaf_info
                .sha256
                .chars()
                .all(|c| c == ':' || c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
    );
}

#[test]
fn root_intermediate_leaf_chain_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let root = issue_new(&ca_spec("Root CA", json!({})), None);
    let intermediate = issue_new(
        &ca_spec("Intermediate CA", json!({"maxPathLength": 0})),
        Some(&root),
    );
    let leaf = issue_new(
        &spec(json!({"dnsNames": ["leaf.example.com"]})),
        Some(&intermediate),
    );

    assert_eq!(intermediate.chain, vec![intermediate.chain[0].clone()]);
    assert_eq!(intermediate.ca, root.ca);
    assert_eq!(leaf.chain.len(), 2);
    assert_eq!(leaf.chain[1], intermediate.chain[0]);
    assert!(!leaf.chain.contains(&root.ca));
    assert_eq!(leaf.ca, root.ca);

    let (ok, out) = verify(&dir, &root.ca, &[&intermediate.chain[0]], &leaf.chain[0]);
    assert!(ok, "{out}");
    let (ok, out) = verify(&dir, &root.ca, &[], &intermediate.chain[0]);
    assert!(ok, "{out}");

    let root_text = x509_text(&root.ca);
    assert!(
        root_text.contains("CA:TRUE") && !root_text.contains("pathlen"),
        "{root_text}"
    );
    assert!(
        root_text.contains("Certificate Sign, CRL Sign"),
        "{root_text}"
    );
    let int_text = x509_text(&intermediate.chain[0]);
    assert!(int_text.contains("CA:TRUE, pathlen:0"), "{int_text}");
    assert!(
        int_text.contains("X509v3 Authority Key Identifier"),
        "{int_text}"
    );
    // AKI of the intermediate = SKI of the root.
    let ski = |text: &str| {
        let after = text
            .split("X509v3 Subject Key Identifier: \n")
            .nth(1)
            .unwrap();
        after.lines().next().unwrap().trim().to_owned()
    };
    let root_ski = ski(&root_text);
    assert!(
        int_text.contains(&root_ski),
        "AKI != root SKI {root_ski}\n{int_text}"
    );
    let leaf_text = x509_text(&leaf.chain[0]);
    assert!(leaf_text.contains(&ski(&int_text)), "{leaf_text}");
    assert!(leaf_text.contains("CA:FALSE"));
    // Default usages.
    assert!(
        leaf_text.contains("Digital Signature, Key Encipherment"),
        "{leaf_text}"
    );
    assert!(
        leaf_text.contains("TLS Web Server Authentication"),
        "{leaf_text}"
    );
}

#[test]
fn path_length_constraints_are_encoded_and_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let root = issue_new(&ca_spec("Root CA", json!({})), None);
    let int_key = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    let loose = ca_spec("Intermediate CA", json!({"maxPathLength": 1}));
    let intermediate = issue(&loose, int_key.clone(), Some(&root), SystemTime::now()).unwrap();
    let sub_ca = issue_new(&ca_spec("Sub CA", json!({})), Some(&intermediate));
    let leaf = issue_new(&spec(json!({"commonName": "leaf"})), Some(&sub_ca));
    assert_eq!(leaf.chain.len(), 3);
    let (ok, out) = verify(
        &dir,
        &root.ca,
        &[&leaf.chain[1], &leaf.chain[2]],
        &leaf.chain[0],
    );
    assert!(ok, "{out}");

    // The same intermediate (same key and subject) re-issued with pathLen 0: the sub-CA's
    // signature still verifies, but openssl rejects the chain on the constraint.
    let strict = ca_spec("Intermediate CA", json!({"maxPathLength": 0}));
    let strict_int = issue(&strict, int_key, Some(&root), SystemTime::now()).unwrap();
    let (ok, out) = verify(
        &dir,
        &root.ca,
        &[&leaf.chain[1], &strict_int.chain[0]],
        &leaf.chain[0],
    );
    assert!(!ok, "pathlen 0 must fail: {out}");
    assert!(out.contains("path length constraint exceeded"), "{out}");

    // And issue refuses to create a CA below a pathLen 0 CA.
    let key = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    let err = issue(
        &ca_spec("Sub CA", json!({})),
        key,
        Some(&strict_int),
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(matches!(err, MaterialError::Unsupported(_)), "{err:?}");
    assert!(err.to_string().contains("maxPathLength 0"), "{err}");
    // A leaf below it is fine.
    issue_new(&spec(json!({"commonName": "leaf"})), Some(&strict_int));
}

#[test]
fn issuer_must_be_a_ca_with_its_own_key() {
    let leaf = issue_new(&spec(json!({"commonName": "not a ca"})), None);
    let key = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    let err = issue(
        &spec(json!({"commonName": "x"})),
        key.clone(),
        Some(&leaf),
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("not a CA"), "{err}");
    let mut ca = issue_new(&ca_spec("CA", json!({})), None);
    ca.key = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    let err = issue(
        &spec(json!({"commonName": "x"})),
        key,
        Some(&ca),
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("does not belong"), "{err}");
}

#[test]
fn digests_follow_the_signing_key() {
    let dir = tempfile::tempdir().unwrap();
    let rsa_root = issue_new(
        &ca_spec(
            "RSA Root",
            json!({"privateKey": {"algorithm": "RSA"}, "digest": "SHA512"}),
        ),
        None,
    );
    assert!(x509_text(&rsa_root.ca).contains("Signature Algorithm: sha512WithRSAEncryption"));
    for (digest, name) in [
        (json!("SHA384"), "sha384WithRSAEncryption"),
        (json!("SHA512"), "sha512WithRSAEncryption"),
        (json!(null), "sha256WithRSAEncryption"),
    ] {
        // The leaf's own key is ECDSA: the issuer's RSA key decides.
        let leaf = issue_new(
            &spec(json!({"commonName": "leaf", "digest": digest})),
            Some(&rsa_root),
        );
        let text = x509_text(&leaf.chain[0]);
        assert!(
            text.contains(&format!("Signature Algorithm: {name}")),
            "{name}\n{text}"
        );
        let (ok, out) = verify(&dir, &rsa_root.ca, &[], &leaf.chain[0]);
        assert!(ok, "{out}");
    }

    let p384 = issue_new(
        &spec(json!({"commonName": "p384", "privateKey": {"size": 384}})),
        None,
    );
    assert!(x509_text(&p384.ca).contains("Signature Algorithm: ecdsa-with-SHA384"));

    let p521 = issue_new(
        &ca_spec("P-521 CA", json!({"privateKey": {"size": 521}})),
        None,
    );
    assert!(x509_text(&p521.ca).contains("Signature Algorithm: ecdsa-with-SHA512"));
    let p521_leaf = issue_new(
        &spec(json!({"commonName": "l", "digest": "SHA256"})),
        Some(&p521),
    );
    assert!(x509_text(&p521_leaf.chain[0]).contains("Signature Algorithm: ecdsa-with-SHA256"));
    let (ok, out) = verify(&dir, &p521.ca, &[], &p521_leaf.chain[0]);
    assert!(ok, "{out}");
    assert!(
        p521.ca.info().unwrap().self_signed,
        "P-521 self-signature verifies"
    );

    let ed = issue_new(
        &ca_spec("Ed CA", json!({"privateKey": {"algorithm": "Ed25519"}})),
        None,
    );
    assert!(x509_text(&ed.ca).contains("Signature Algorithm: ED25519"));
    let ed_leaf = issue_new(
        &spec(json!({"commonName": "l", "privateKey": {"algorithm": "RSA"}})),
        Some(&ed),
    );
    let (ok, out) = verify(&dir, &ed.ca, &[], &ed_leaf.chain[0]);
    assert!(ok, "{out}");

    let p256 = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    let err = issue(
        &spec(json!({"commonName": "x", "digest": "SHA512"})),
        p256,
        None,
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(matches!(err, MaterialError::Unsupported(_)));
    assert_eq!(
        err.to_string(),
        "digest SHA512 is not available for an ECDSA P-256 signing key; ECDSA P-256 signs with SHA256"
    );
    let key = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    let err = issue(
        &spec(json!({"commonName": "x", "digest": "SHA256"})),
        key,
        Some(&ed),
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(matches!(err, MaterialError::Unsupported(_)));
    assert!(err.to_string().contains("Ed25519 signing key"), "{err}");

    assert_eq!(
        resolve_digest(KeyKind::EcdsaP384, None).unwrap(),
        Some(Digest::SHA384)
    );
    assert!(resolve_digest(KeyKind::EcdsaP384, Some(Digest::SHA256)).is_err());
    assert_eq!(
        resolve_digest(KeyKind::EcdsaP521, None).unwrap(),
        Some(Digest::SHA512)
    );
    assert_eq!(
        resolve_digest(KeyKind::Rsa(4096), None).unwrap(),
        Some(Digest::SHA256)
    );
    assert_eq!(resolve_digest(KeyKind::Ed25519, None).unwrap(), None);
}

#[test]
fn serials_are_random_positive_16_bytes() {
    let a = issue_new(&spec(json!({"commonName": "a"})), None);
    let b = issue_new(&spec(json!({"commonName": "a"})), None);
    let sa = parse_certificate(a.ca.der()).unwrap().raw_serial().to_vec();
    let sb = parse_certificate(b.ca.der()).unwrap().raw_serial().to_vec();
    assert_eq!(sa.len(), 16);
    assert!(sa[0] != 0 && sa[0] < 0x80);
    assert_ne!(sa, sb);
}

#[test]
fn ca_without_subject_fields_and_sans_only_leaf() {
    // A leaf with SANs only has an empty subject: the SAN extension is then critical.
    let leaf = issue_new(&spec(json!({"dnsNames": ["only.example.com"]})), None);
    let text = x509_text(&leaf.ca);
    assert!(
        text.contains("X509v3 Subject Alternative Name: critical"),
        "{text}"
    );
    assert_eq!(leaf.ca.info().unwrap().subject, "");
}

#[test]
fn bad_spec_values_are_unsupported() {
    let key = || PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    for json in [
        json!({"commonName": "x", "subject": {"organizations": ["a", "b"]}}),
        json!({"dnsNames": ["bücher.example"]}),
        json!({"ipAddresses": ["not-an-ip"]}),
        json!({"commonName": "x", "ocspServers": ["http://ö.example"]}),
        json!({"commonName": "x", "duration": "-1h"}),
    ] {
        let err = issue(&spec(json.clone()), key(), None, SystemTime::now()).unwrap_err();
        assert!(
            matches!(err, MaterialError::Unsupported(_)),
            "{json}: {err:?}"
        );
    }
    // Beyond what a certificate's notAfter can hold (year 9999). Text that long is refused
    // when read (api::duration); a spec built in code still gets an error, not a panic.
    let mut forever = spec(json!({"commonName": "x"}));
    forever.duration = std::time::Duration::from_secs(100_000_000 * 3600).into();
    let err = issue(&forever, key(), None, SystemTime::now()).unwrap_err();
    assert!(matches!(err, MaterialError::Unsupported(_)), "{err:?}");
}

#[test]
fn default_usages_depend_on_whether_it_is_a_ca() {
    let ca = issue_new(&ca_spec("Default Usages CA", json!({})), None);
    let text = x509_text(&ca.ca);
    assert!(
        !text.contains("Extended Key Usage"),
        "a CA gets no EKU by default:\n{text}"
    );
    assert!(
        text.contains("Digital Signature, Certificate Sign, CRL Sign"),
        "{text}"
    );

    let leaf = issue_new(&spec(json!({"commonName": "leaf"})), Some(&ca));
    let text = x509_text(&leaf.chain[0]);
    assert!(
        text.contains("Digital Signature, Key Encipherment"),
        "{text}"
    );
    assert!(text.contains("TLS Web Server Authentication"), "{text}");

    let explicit = issue_new(&ca_spec("EKU CA", json!({"usages": ["ClientAuth"]})), None);
    assert!(x509_text(&explicit.ca).contains("TLS Web Client Authentication"));
}
