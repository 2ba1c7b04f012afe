use std::time::SystemTime;

use serde_json::{Value, json};

use super::*;
use crate::api::certificate_key_pair::KeyEncoding;
use crate::material::encode::{KeyExport, tls_secret_data};
use crate::material::x509::issue;
use crate::material::x509::testing::{issue_new, openssl_ok, spec};

fn pem_of(certs: &[&Certificate]) -> Vec<u8> {
    certs
        .iter()
        .map(|c| c.to_pem())
        .collect::<String>()
        .into_bytes()
}

/// `base` with the top-level fields of `changes` replaced.
fn merged(base: &Value, changes: Value) -> CertificateKeyPairSpec {
    let mut value = base.clone();
    if let (Some(obj), Some(changes)) = (value.as_object_mut(), changes.as_object()) {
        for (k, v) in changes {
            obj.insert(k.clone(), v.clone());
        }
    }
    spec(value)
}

fn leaf_json() -> Value {
    json!({
        "commonName": "shop.example.com",
        "subject": {"organizations": ["Example Inc"], "countries": ["DE"]},
        "dnsNames": ["shop.example.com"],
        "ipAddresses": ["10.0.0.7"],
        "emailAddresses": ["ops@example.com"],
        "uris": ["spiffe://example.com/shop"],
        "duration": "720h",
        "ocspServers": ["http://ocsp.example.com"],
        "issuingCertificateUrls": ["http://ca.example.com/ca.crt"],
        "crlDistributionPoints": ["http://crl.example.com/ca.crl"]
    })
}

fn root_json() -> Value {
    json!({"commonName": "Root CA", "isCA": true})
}

fn intermediate_json() -> Value {
    json!({"commonName": "Intermediate CA", "isCA": true, "maxPathLength": 0})
}

struct Pki {
    root: TlsMaterial,
    intermediate: TlsMaterial,
    leaf: TlsMaterial,
}

fn pki() -> Pki {
    let root = issue_new(&spec(root_json()), None);
    let intermediate = issue_new(&spec(intermediate_json()), Some(&root));
    let leaf = issue_new(&spec(leaf_json()), Some(&intermediate));
    Pki {
        root,
        intermediate,
        leaf,
    }
}

fn invalid_message(result: Result<TlsMaterial, MaterialError>) -> String {
    match result {
        Err(MaterialError::Invalid(message)) => {
            assert!(!message.contains("BEGIN"), "{message}");
            message
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn certificates_from_pem_keeps_order_and_rejects_other_blocks() {
    let p = pki();
    let bundle = pem_of(&[&p.leaf.chain[0], &p.intermediate.chain[0], &p.root.ca]);
    let certs = certificates_from_pem(&bundle).unwrap();
    assert_eq!(
        certs,
        vec![
            p.leaf.chain[0].clone(),
            p.intermediate.chain[0].clone(),
            p.root.ca.clone()
        ]
    );
    assert!(matches!(
        certificates_from_pem(b"garbage"),
        Err(MaterialError::Invalid(_))
    ));
    assert!(matches!(
        certificates_from_pem(b""),
        Err(MaterialError::Invalid(_))
    ));
    let key_pem = p.leaf.key.to_pem(KeyEncoding::PKCS8).unwrap();
    let err = certificates_from_pem(key_pem.expose().as_bytes()).unwrap_err();
    assert!(err.to_string().contains("not a CERTIFICATE"), "{err}");
    let bogus = crate::material::pkey::pem_encode("CERTIFICATE", b"\x30\x03\x02\x01\x00");
    assert!(matches!(
        certificates_from_pem(bogus.as_bytes()),
        Err(MaterialError::Invalid(_))
    ));
}

#[test]
fn read_tls_reads_what_tls_secret_data_writes() {
    let p = pki();
    let spec = spec(leaf_json());
    let data = tls_secret_data(&p.leaf, &spec, KeyExport::Included, None).unwrap();
    let key = PrivateKey::from_pem(data["tls.key"].expose()).unwrap();
    let read = read_tls(data["tls.crt"].expose(), key, Some(data["ca.crt"].expose())).unwrap();
    assert_eq!(read.chain, p.leaf.chain);
    assert_eq!(read.ca, p.root.ca);
    assert_eq!(
        read.key.public_key_der().unwrap(),
        p.leaf.key.public_key_der().unwrap()
    );
    assert_eq!(
        check_against_spec(&read, &spec, Some(&p.intermediate)),
        Ok(())
    );
}

#[test]
fn read_tls_self_signed_needs_no_ca_crt() {
    let material = issue_new(&spec(leaf_json()), None);
    let crt = pem_of(&[&material.chain[0]]);
    let read = read_tls(&crt, material.key.clone(), None).unwrap();
    assert_eq!(read.chain, material.chain);
    assert_eq!(read.ca, material.ca);
    let read = read_tls(&crt, material.key.clone(), Some(&crt)).unwrap();
    assert_eq!(read.ca, material.ca);
    let other = issue_new(&spec(root_json()), None);
    let message = invalid_message(read_tls(
        &crt,
        material.key.clone(),
        Some(&pem_of(&[&other.ca])),
    ));
    assert!(message.contains("ca.crt"), "{message}");
}

#[test]
fn read_tls_moves_a_trailing_root_to_ca() {
    let p = pki();
    let crt = pem_of(&[&p.leaf.chain[0], &p.intermediate.chain[0], &p.root.ca]);
    let read = read_tls(&crt, p.leaf.key.clone(), None).unwrap();
    assert_eq!(read.chain, p.leaf.chain);
    assert_eq!(read.ca, p.root.ca);
}

#[test]
fn read_tls_rejects_a_key_of_another_certificate() {
    let p = pki();
    let crt = pem_of(&[&p.leaf.chain[0], &p.intermediate.chain[0]]);
    let message = invalid_message(read_tls(
        &crt,
        p.intermediate.key.clone(),
        Some(&pem_of(&[&p.root.ca])),
    ));
    assert!(message.contains("tls.key"), "{message}");
}

#[test]
fn read_tls_rejects_broken_chains() {
    let p = pki();
    let other_root = issue_new(&spec(root_json()), None);
    let other_int = issue_new(&spec(intermediate_json()), Some(&other_root));
    // Leaf followed by an intermediate that did not sign it.
    let crt = pem_of(&[&p.leaf.chain[0], &other_int.chain[0]]);
    let message = invalid_message(read_tls(
        &crt,
        p.leaf.key.clone(),
        Some(&pem_of(&[&other_root.ca])),
    ));
    assert!(
        message.contains("tls.crt") && message.contains("not signed"),
        "{message}"
    );
    // Chain fine, but ca.crt is another root.
    let crt = pem_of(&[&p.leaf.chain[0], &p.intermediate.chain[0]]);
    let message = invalid_message(read_tls(
        &crt,
        p.leaf.key.clone(),
        Some(&pem_of(&[&other_root.ca])),
    ));
    assert!(message.contains("ca.crt"), "{message}");
    // No root anywhere.
    let message = invalid_message(read_tls(&crt, p.leaf.key.clone(), None));
    assert!(message.contains("ca.crt is missing"), "{message}");
    // ca.crt holds the intermediate, not the root.
    let leaf_only = pem_of(&[&p.leaf.chain[0]]);
    let message = invalid_message(read_tls(
        &leaf_only,
        p.leaf.key.clone(),
        Some(&pem_of(&[&p.intermediate.chain[0]])),
    ));
    assert!(message.contains("not a self-signed root"), "{message}");
    // Garbage in tls.crt / ca.crt.
    let message = invalid_message(read_tls(b"nope", p.leaf.key.clone(), None));
    assert!(message.starts_with("tls.crt"), "{message}");
    let message = invalid_message(read_tls(&crt, p.leaf.key.clone(), Some(b"nope")));
    assert!(message.starts_with("ca.crt"), "{message}");
}

#[test]
fn read_tls_adopts_openssl_made_material() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pem");
    let crt = dir.path().join("c.pem");
    openssl_ok(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        key.to_str().unwrap(),
    ]);
    openssl_ok(&[
        "req",
        "-x509",
        "-new",
        "-key",
        key.to_str().unwrap(),
        "-subj",
        "/CN=adopted",
        "-days",
        "30",
        "-out",
        crt.to_str().unwrap(),
    ]);
    let key = PrivateKey::from_pem(&std::fs::read(&key).unwrap()).unwrap();
    let read = read_tls(&std::fs::read(&crt).unwrap(), key, None).unwrap();
    assert_eq!(read.chain.len(), 1);
    assert!(read.ca.info().unwrap().self_signed);
}

#[test]
fn fresh_material_satisfies_its_spec() {
    let p = pki();
    assert_eq!(
        check_against_spec(&p.root, &spec(root_json()), None),
        Ok(())
    );
    assert_eq!(
        check_against_spec(&p.intermediate, &spec(intermediate_json()), Some(&p.root)),
        Ok(())
    );
    assert_eq!(
        check_against_spec(&p.leaf, &spec(leaf_json()), Some(&p.intermediate)),
        Ok(())
    );
    let self_signed = issue_new(&spec(leaf_json()), None);
    assert_eq!(
        check_against_spec(&self_signed, &spec(leaf_json()), None),
        Ok(())
    );
    for extra in [
        json!({"privateKey": {"algorithm": "RSA", "size": 3072}, "digest": "SHA384"}),
        json!({"privateKey": {"algorithm": "Ed25519"}}),
        json!({"privateKey": {"size": 521}, "usages": ["DigitalSignature", "ClientAuth", "CodeSigning", "EmailProtection", "TimeStamping", "OCSPSigning", "KeyAgreement"]}),
        json!({"usages": []}),
    ] {
        let s = merged(&leaf_json(), extra.clone());
        let m = issue_new(&s, None);
        assert_eq!(check_against_spec(&m, &s, None), Ok(()), "{extra}");
    }
}

#[test]
fn every_changed_field_is_a_mismatch() {
    let p = pki();
    let base = leaf_json();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"privateKey": {"algorithm": "RSA"}}),
            "key is ECDSA 256, spec asks for RSA 2048",
        ),
        (
            json!({"privateKey": {"size": 384}}),
            "key is ECDSA 256, spec asks for ECDSA 384",
        ),
        (
            json!({"privateKey": {"algorithm": "Ed25519"}}),
            "key is ECDSA 256, spec asks for Ed25519",
        ),
        (
            json!({"commonName": "other.example.com"}),
            "commonName differs",
        ),
        (json!({"commonName": null}), "commonName differs"),
        (
            json!({"subject": {"organizations": ["Other Inc"], "countries": ["DE"]}}),
            "subject.organizations differ",
        ),
        (
            json!({"subject": {"organizations": ["Example Inc"], "countries": ["DE"], "localities": ["Berlin"]}}),
            "subject.localities differ",
        ),
        (
            json!({"dnsNames": ["shop.example.com", "www.example.com"]}),
            "dnsNames differ",
        ),
        (json!({"ipAddresses": ["10.0.0.8"]}), "ipAddresses differ"),
        (json!({"emailAddresses": []}), "emailAddresses differ"),
        (
            json!({"uris": ["spiffe://example.com/other"]}),
            "uris differ",
        ),
        (
            json!({"usages": ["DigitalSignature", "KeyEncipherment", "ClientAuth"]}),
            "usages differ",
        ),
        (
            json!({"usages": ["DigitalSignature", "ServerAuth"]}),
            "usages differ",
        ),
        (json!({"isCA": true}), "isCA differs"),
        (
            json!({"digest": "SHA384"}),
            "digest SHA384 is not available for an ECDSA P-256 signing key; ECDSA P-256 signs with SHA256",
        ),
        (json!({"duration": "721h"}), "duration differs"),
        (
            json!({"ocspServers": ["http://ocsp2.example.com"]}),
            "ocspServers differ",
        ),
        (
            json!({"issuingCertificateUrls": []}),
            "issuingCertificateUrls differ",
        ),
        (
            json!({"crlDistributionPoints": ["http://crl.example.com/other.crl"]}),
            "crlDistributionPoints differ",
        ),
    ];
    for (change, expected) in cases {
        let changed = merged(&base, change.clone());
        assert_eq!(
            check_against_spec(&p.leaf, &changed, Some(&p.intermediate)),
            Err(Mismatch(expected.to_owned())),
            "{change}"
        );
    }
    // The duration tolerance is one second.
    let almost = merged(&base, json!({"duration": "720h0m1s"}));
    assert_eq!(
        check_against_spec(&p.leaf, &almost, Some(&p.intermediate)),
        Ok(())
    );
}

#[test]
fn ca_constraints_and_digest_mismatches() {
    let rsa_json = json!({"commonName": "RSA CA", "isCA": true, "maxPathLength": 1, "privateKey": {"algorithm": "RSA"}, "digest": "SHA384"});
    let ca = issue_new(&spec(rsa_json.clone()), None);
    assert_eq!(
        check_against_spec(&ca, &spec(rsa_json.clone()), None),
        Ok(())
    );
    for (change, expected) in [
        (json!({"maxPathLength": 0}), "maxPathLength differs"),
        (json!({"maxPathLength": null}), "maxPathLength differs"),
        (
            json!({"isCA": false, "maxPathLength": null}),
            "isCA differs",
        ),
        (json!({"digest": "SHA512"}), "digest differs"),
        (json!({"digest": null}), "digest differs"),
        (
            json!({"privateKey": {"algorithm": "RSA", "size": 4096}}),
            "key is RSA 2048, spec asks for RSA 4096",
        ),
    ] {
        assert_eq!(
            check_against_spec(&ca, &merged(&rsa_json, change.clone()), None),
            Err(Mismatch(expected.to_owned())),
            "{change}"
        );
    }
}

#[test]
fn issuer_changes_are_mismatches() {
    let p = pki();
    let leaf_spec = spec(leaf_json());
    // Spec says self-signed, material is CA-signed, and the other way round.
    assert_eq!(
        check_against_spec(&p.leaf, &leaf_spec, None),
        Err(Mismatch(
            "the certificate is signed by a CA, spec asks for a self-signed certificate".to_owned()
        ))
    );
    let self_signed = issue_new(&leaf_spec, None);
    assert_eq!(
        check_against_spec(&self_signed, &leaf_spec, Some(&p.intermediate)),
        Err(Mismatch(
            "the certificate is self-signed, spec names an issuer".to_owned()
        ))
    );
    // Another CA.
    let other_root = issue_new(&spec(root_json()), None);
    let other_int = issue_new(
        &spec(json!({"commonName": "Other Intermediate", "isCA": true})),
        Some(&other_root),
    );
    assert_eq!(
        check_against_spec(&p.leaf, &leaf_spec, Some(&other_int)),
        Err(Mismatch("issued by a different CA".to_owned()))
    );
    // The intermediate re-issued with the same key: the old leaf still verifies
    // cryptographically, but was issued by a previous certificate of the CA.
    let reissued = issue(
        &spec(intermediate_json()),
        p.intermediate.key.clone(),
        Some(&p.root),
        SystemTime::now(),
    )
    .unwrap();
    assert_ne!(reissued.chain[0], p.intermediate.chain[0]);
    assert_eq!(
        check_against_spec(&p.leaf, &leaf_spec, Some(&reissued)),
        Err(Mismatch(
            "issued by a previous certificate of the CA".to_owned()
        ))
    );
    // The root re-issued with the same key: the intermediate is unchanged, but ca.crt is old.
    let new_root = issue(
        &spec(root_json()),
        p.root.key.clone(),
        None,
        SystemTime::now(),
    )
    .unwrap();
    let renewed_int = TlsMaterial {
        ca: new_root.ca.clone(),
        ..p.intermediate.clone()
    };
    assert_eq!(
        check_against_spec(&p.leaf, &leaf_spec, Some(&renewed_int)),
        Err(Mismatch(
            "ca.crt is not the root of the issuer's chain".to_owned()
        ))
    );
    // A leaf signed directly by a root that was re-issued.
    let direct = issue_new(&leaf_spec, Some(&p.root));
    assert_eq!(
        check_against_spec(&direct, &leaf_spec, Some(&p.root)),
        Ok(())
    );
    assert_eq!(
        check_against_spec(&direct, &leaf_spec, Some(&new_root)),
        Err(Mismatch(
            "issued by a previous certificate of the CA".to_owned()
        ))
    );
}

#[test]
fn mismatch_when_key_does_not_belong() {
    let p = pki();
    let swapped = TlsMaterial {
        key: PrivateKey::generate(crate::material::pkey::KeyKind::EcdsaP256).unwrap(),
        ..p.leaf.clone()
    };
    assert_eq!(
        check_against_spec(&swapped, &spec(leaf_json()), Some(&p.intermediate)),
        Err(Mismatch(
            "the key does not belong to the certificate".to_owned()
        ))
    );
}
