//! Bad input is rejected by the real API server at `kubectl apply` (OpenAPI schema + CEL
//! rules in `crds/`), with a message that names the field; good input is accepted.

use futures::future::join_all;

use crate::support::{self, ControlPlane};

/// One manifest: a kind, a name, and its spec as a YAML block (indented by 2).
struct Case {
    kind: &'static str,
    name: &'static str,
    spec: &'static str,
    /// Every one of these must appear in kubectl's error (field path, message).
    expect: &'static [&'static str],
}

const fn ckp(name: &'static str, spec: &'static str, expect: &'static [&'static str]) -> Case {
    Case {
        kind: "CertificateKeyPair",
        name,
        spec,
        expect,
    }
}

/// Invalid CertificateKeyPairs (api.md section 2).
#[rustfmt::skip]
const INVALID_CERTIFICATE_KEY_PAIRS: &[Case] = &[
    ckp("rsa-1024", "commonName: a\nprivateKey: {algorithm: RSA, size: 1024}", &["spec.privateKey.size", "insecure"]),
    ckp("rsa-512", "commonName: a\nprivateKey: {algorithm: RSA, size: 512}", &["spec.privateKey.size", "insecure"]),
    ckp("rsa-5000", "commonName: a\nprivateKey: {algorithm: RSA, size: 5000}", &["spec.privateKey.size", "2048, 3072, 4096 or 8192"]),
    ckp("ecdsa-255", "commonName: a\nprivateKey: {algorithm: ECDSA, size: 255}", &["spec.privateKey.size", "256, 384 or 521"]),
    ckp("ecdsa-rsa-size", "commonName: a\nprivateKey: {size: 2048}", &["spec.privateKey.size", "256, 384 or 521"]),
    ckp("ed25519-size", "commonName: a\nprivateKey: {algorithm: Ed25519, size: 256}", &["spec.privateKey.size", "Ed25519"]),
    ckp("ed25519-pkcs1", "commonName: a\nprivateKey: {algorithm: Ed25519, encoding: PKCS1}", &["spec.privateKey.encoding", "PKCS8"]),
    ckp("dsa", "commonName: a\nprivateKey: {algorithm: DSA}", &["spec.privateKey.algorithm", "Unsupported value", "\"ECDSA\""]),
    ckp("digest-sha1", "commonName: a\ndigest: SHA1", &["spec.digest", "insecure digest"]),
    ckp("digest-md5", "commonName: a\ndigest: MD5", &["spec.digest", "insecure digest"]),
    ckp("digest-lowercase", "commonName: a\ndigest: sha256", &["spec.digest", "must be one of SHA256, SHA384, SHA512"]),
    ckp("cn-too-long", "commonName: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &["spec.commonName", "Too long", "64"]),
    ckp("cn-empty", "commonName: \"\"", &["spec.commonName", "at least 1"]),
    ckp("no-cn-no-san", "duration: 2h", &["spec", "commonName or at least one of dnsNames"]),
    ckp("country-lowercase", "commonName: a\nsubject: {countries: [de]}", &["spec.subject.countries[0]", "^[A-Z]{2}$"]),
    ckp("two-organizations", "commonName: a\nsubject: {organizations: [A, B]}", &["spec.subject.organizations", "at most 1"]),
    ckp("country-three-letters", "commonName: a\nsubject: {countries: [DEU]}", &["spec.subject.countries[0]"]),
    ckp("ip-out-of-range", "ipAddresses: [10.0.0.256]", &["spec.ipAddresses", "IPv4 or IPv6"]),
    ckp("ip-not-an-ip", "ipAddresses: [shop.example.com]", &["spec.ipAddresses", "IPv4 or IPv6"]),
    ckp("dns-name-with-space", "dnsNames: [\"shop example.com\"]", &["spec.dnsNames[0]"]),
    ckp("dns-name-double-wildcard", "dnsNames: [\"*.*.example.com\"]", &["spec.dnsNames[0]"]),
    ckp("email-without-at", "emailAddresses: [ops.example.com]", &["spec.emailAddresses[0]"]),
    ckp("uri-relative", "uris: [shop/frontend]", &["spec.uris", "absolute URI"]),
    ckp("ocsp-not-a-url", "commonName: a\nocspServers: [ocsp]", &["spec.ocspServers", "absolute URL"]),
    ckp("crl-not-a-url", "commonName: a\ncrlDistributionPoints: [\"not a url\"]", &["spec.crlDistributionPoints", "absolute URL"]),
    ckp("duration-too-short", "commonName: a\nduration: 30m", &["spec.duration", "at least 1h"]),
    ckp("duration-days", "commonName: a\nduration: 90d", &["spec.duration"]),
    ckp("renew-before-equals-duration", "commonName: a\nduration: 1h\nrotation: {renewBefore: 1h}", &["spec.rotation.renewBefore", "shorter than duration"]),
    ckp("renew-before-exceeds-default-duration", "commonName: a\nrotation: {renewBefore: 2200h}", &["spec.rotation.renewBefore", "shorter than duration"]),
    ckp("renew-before-and-percentage", "commonName: a\nrotation: {renewBefore: 1h, renewBeforePercentage: 20}", &["spec.rotation", "mutually exclusive"]),
    ckp("renew-percentage-100", "commonName: a\nrotation: {renewBeforePercentage: 100}", &["spec.rotation.renewBeforePercentage", "99"]),
    ckp("rotation-every", "commonName: a\nrotation: {every: 720h}", &["spec.rotation.every", "does not apply to certificates"]),
    ckp("max-path-length-without-ca", "commonName: a\nmaxPathLength: 1", &["spec.maxPathLength", "requires isCA"]),
    ckp("max-path-length-too-long", "isCA: true\nmaxPathLength: 17", &["spec.maxPathLength", "16"]),
    ckp("ca-policy-without-ca", "commonName: a\nca: {allowedNamespaces: [team-a]}", &["spec.ca", "requires isCA"]),
    ckp("ca-policy-bad-namespace", "isCA: true\nca: {allowedNamespaces: [Team_A]}", &["spec.ca.allowedNamespaces[0]"]),
    ckp("unknown-usage", "commonName: a\nusages: [ServerAuthentication]", &["spec.usages[0]", "Unsupported value"]),
    ckp("denied-export-with-keystore", "commonName: a\nprivateKeyExport: Denied\nkeystores: {pkcs12: {passwordSecretRef: {name: p, key: k}}}", &["spec.keystores", "privateKeyExport: Denied"]),
    ckp("denied-export-with-combined-pem", "commonName: a\nprivateKeyExport: Denied\nadditionalOutputFormats: [CombinedPEM]", &["spec.additionalOutputFormats", "privateKeyExport: Denied"]),
    ckp("keystore-without-password", "commonName: a\nkeystores: {pkcs12: {profile: Modern}}", &["spec.keystores.pkcs12.passwordSecretRef", "Required value"]),
    ckp("issuer-without-name", "commonName: a\nissuerRef: {namespace: pki}", &["spec.issuerRef.name", "Required value"]),
    ckp("target-name-uppercase", "commonName: a\ntarget: {name: Web_TLS}", &["spec.target.name"]),
    ckp("deletion-policy-orphan", "commonName: a\ntarget: {deletionPolicy: Orphan}", &["spec.target.deletionPolicy", "Unsupported value"]),
    ckp("existing-secret-overwrite", "commonName: a\ntarget: {existingSecret: Overwrite}", &["spec.target.existingSecret", "Unsupported value"]),
    ckp("misspelt-field", "commonNmae: a", &["spec.commonNmae", "unknown field"]),
];

/// Invalid resources of the other kinds (api.md sections 3 to 5).
#[rustfmt::skip]
const INVALID_OTHER_KINDS: &[Case] = &[
    Case { kind: "SshKey", name: "ssh-dsa", spec: "algorithm: DSA", expect: &["spec.algorithm", "insecure algorithm"] },
    Case { kind: "SshKey", name: "ssh-rsa-1024", spec: "algorithm: RSA\nsize: 1024", expect: &["spec.size", "insecure"] },
    Case { kind: "SshKey", name: "ssh-ecdsa-255", spec: "algorithm: ECDSA\nsize: 255", expect: &["spec.size", "256, 384 or 521"] },
    Case { kind: "SshKey", name: "ssh-ed25519-size", spec: "size: 256", expect: &["spec.size", "Ed25519"] },
    Case { kind: "SshKey", name: "ssh-hostnames-user", spec: "hostnames: [git.example.com]", expect: &["spec.hostnames", "Host only"] },
    Case { kind: "SshKey", name: "ssh-ca-with-cert", spec: "keyType: CA\ncertificate: {authorityRef: {name: ca}, principals: [x]}", expect: &["spec.certificate", "CA key"] },
    Case { kind: "SshKey", name: "ssh-comment-newline", spec: "comment: \"a\\nb\"", expect: &["spec.comment"] },
    Case { kind: "SshKey", name: "ssh-cert-no-principals", spec: "certificate: {authorityRef: {name: ca}, principals: []}", expect: &["spec.certificate.principals"] },
    Case { kind: "KeyringSecret", name: "krs-wrong-block", spec: "type: psk\nparams: {openvpn: {}}", expect: &["spec.params", "exactly one block"] },
    Case { kind: "KeyringSecret", name: "krs-two-blocks", spec: "type: psk\nparams: {psk: {length: 32}, openvpn: {}}", expect: &["spec.params", "exactly one block"] },
    Case { kind: "KeyringSecret", name: "krs-psk-too-long", spec: "type: psk\nparams: {psk: {length: 4097}}", expect: &["spec.params.psk.length", "4096"] },
    Case { kind: "KeyringSecret", name: "krs-bad-note", spec: "type: psk\nnote: \"a;b\"\nparams: {psk: {length: 8}}", expect: &["spec.note"] },
    Case { kind: "KeyringSecret", name: "krs-bad-id", spec: "type: psk\nkeyringId: 1abc\nparams: {psk: {length: 8}}", expect: &["spec.keyringId"] },
    Case { kind: "KeyringSecret", name: "krs-unknown-type", spec: "type: x509\nparams: {psk: {length: 8}}", expect: &["spec.type", "Unsupported value"] },
    Case { kind: "KeyringSecret", name: "krs-dh-bits-fixed-group", spec: "type: dhparam\nparams: {dhparam: {group: ffdhe2048, bits: 4096}}", expect: &["spec.params.dhparam.bits", "Generate only"] },
    Case { kind: "KeyringSecret", name: "krs-password-short", spec: "type: remote_access\nparams: {remote_access: {passwordLength: 19}}", expect: &["spec.params.remote_access.passwordLength", "20"] },
    Case { kind: "KeyringSecret", name: "krs-note-dollar", spec: "type: psk\nnote: \"costs $5\"\nparams: {psk: {length: 8}}", expect: &["spec.note", "should match"] },
    Case { kind: "KeyringSecret", name: "krs-note-too-long", spec: "type: psk\nnote: \"0123456789012345678901234567890123456789012\"\nparams: {psk: {length: 8}}", expect: &["spec.note", "should match"] },
    Case { kind: "KeyringSecret", name: "krs-psk-zero", spec: "type: psk\nparams: {psk: {length: 0}}", expect: &["spec.params.psk.length", "greater than or equal to 1"] },
    Case { kind: "KeyringSecret", name: "krs-unknown-group", spec: "type: dhparam\nparams: {dhparam: {group: ffdhe1024}}", expect: &["spec.params.dhparam.group", "Unsupported value", "ffdhe2048"] },
    Case { kind: "KeyringSecret", name: "krs-cert-single-no-id", spec: "type: cert_single\nparams: {cert_single: {modifier: openvpn_client}}", expect: &["spec.params.cert_single.id", "Required value"] },
    Case { kind: "KeyringSecret", name: "krs-bad-modifier", spec: "type: cert_single\nparams: {cert_single: {id: dev1, modifier: ipsec}}", expect: &["spec.params.cert_single.modifier", "openvpn_client"] },
    Case { kind: "KeyringSecret", name: "krs-issuer-for-psk", spec: "type: psk\nissuerRef: {name: ca}\nparams: {psk: {length: 8}}", expect: &["spec.issuerRef", "certificate types"] },
    Case { kind: "KmsAuthKey", name: "kms-short-passphrase", spec: "keyManagerRef: {name: ekm}\npassphrase: {length: 19}", expect: &["spec.passphrase.length", "20"] },
    Case { kind: "KmsAuthKey", name: "kms-long-passphrase", spec: "keyManagerRef: {name: ekm}\npassphrase: {length: 33}", expect: &["spec.passphrase.length", "32"] },
    Case { kind: "KmsAuthKey", name: "kms-tag-with-tab", spec: "keyManagerRef: {name: ekm}\nkeyTag: \"Auth\\tKey\"", expect: &["spec.keyTag"] },
    Case { kind: "KmsAuthKey", name: "kms-tag-with-newline", spec: "keyManagerRef: {name: ekm}\nkeyTag: \"Auth\\nKey\"", expect: &["spec.keyTag"] },
    Case { kind: "KmsAuthKey", name: "kms-both-passphrases", spec: "keyManagerRef: {name: ekm}\npassphrase: {length: 32}\npassphraseSecretRef: {name: p, key: k}", expect: &["spec.passphraseSecretRef", "mutually exclusive"] },
    Case { kind: "KmsAuthKey", name: "kms-tag-with-space", spec: "keyManagerRef: {name: ekm}\nkeyTag: \"Auth Key\"", expect: &["spec.keyTag"] },
    Case { kind: "KmsAuthKey", name: "kms-tag-too-long", spec: "keyManagerRef: {name: ekm}\nkeyTag: Authentication-Key-0123456789-abcd", expect: &["spec.keyTag", "32"] },
    Case { kind: "KmsAuthKey", name: "kms-no-manager", spec: "keyTag: a", expect: &["spec.keyManagerRef", "Required value"] },
    Case { kind: "KeyManager", name: "km-zero-keys", spec: "maxAuthKeys: 0", expect: &["spec.maxAuthKeys", "1"] },
    Case { kind: "KeyManager", name: "km-bad-address", spec: "servers: [{name: a, address: \"kmip a:5696\", caSecretRef: {name: c, key: ca.crt}, clientCertificateSecretRef: {name: c}}]", expect: &["spec.servers[0].address"] },
    Case { kind: "KeyManager", name: "km-duplicate-server", spec: "servers: [{name: a, address: a, caSecretRef: {name: c, key: k}, clientCertificateSecretRef: {name: c}}, {name: a, address: b, caSecretRef: {name: c, key: k}, clientCertificateSecretRef: {name: c}}]", expect: &["spec.servers[1]", "Duplicate value"] },
];

/// Valid manifests the rules must not reject (each exercises a rule's permitted side).
#[rustfmt::skip]
const VALID: &[Case] = &[
    ckp("ok-minimal", "commonName: shop.example.com", &[]),
    ckp("ok-san-only", "dnsNames: [\"*.example.com\"]\nipAddresses: [\"10.0.0.7\", \"2001:db8::1\"]\nemailAddresses: [ops@example.com]\nuris: [\"spiffe://example.com/shop\"]", &[]),
    ckp("ok-ca-without-cn", "isCA: true\nmaxPathLength: 1\nca: {allowedNamespaces: [team-a, \"*\"]}", &[]),
    ckp("ok-ed25519", "commonName: a\nprivateKey: {algorithm: Ed25519}", &[]),
    ckp("ok-rsa-8192-pkcs1", "commonName: a\nprivateKey: {algorithm: RSA, size: 8192, encoding: PKCS1, rotationPolicy: Never}\ndigest: SHA512", &[]),
    ckp("ok-short-renewal", "commonName: a\nduration: 1h\nrotation: {renewBefore: 59m50s}", &[]),
    ckp("ok-percentage", "commonName: a\nrotation: {renewBeforePercentage: 33}", &[]),
    ckp("ok-everything", "commonName: shop.example.com\nsubject: {organizations: [Example Inc], organizationalUnits: [Web], countries: [DE], provinces: [Berlin], localities: [Berlin], streetAddresses: [Main 1], postalCodes: [\"10115\"], serialNumber: \"42\"}\ndnsNames: [shop.example.com]\nusages: [DigitalSignature, ServerAuth, ClientAuth]\nissuerRef: {name: root-ca, namespace: pki}\nocspServers: [\"http://ocsp.example.com\"]\nissuingCertificateUrls: [\"http://ca.example.com/ca.crt\"]\ncrlDistributionPoints: [\"http://ca.example.com/ca.crl\"]\nkeystores: {pkcs12: {passwordSecretRef: {name: p12, key: password}, profile: Legacy}}\nadditionalOutputFormats: [DER, CombinedPEM]\ntarget: {name: web-tls, labels: {a: b}, deletionPolicy: Retain, existingSecret: Adopt}", &[]),
    Case { kind: "SshKey", name: "ok-ssh-host", spec: "algorithm: ECDSA\nsize: 384\nkeyType: Host\nhostnames: [git.example.com]\ncertificate: {authorityRef: {name: ssh-ca}, principals: [git.example.com], validity: 48h}\nrotation: {every: 2160h, renewBefore: 12h}", expect: &[] },
    Case { kind: "KeyringSecret", name: "ok-krs-psk", spec: "type: psk\nnote: site A uplink\nparams: {psk: {length: 32}}", expect: &[] },
    Case { kind: "KeyringSecret", name: "ok-krs-openvpn", spec: "type: openvpn\nparams: {openvpn: {}}", expect: &[] },
    Case { kind: "KmsAuthKey", name: "ok-kms", spec: "keyManagerRef: {name: ekm}\nkeyTag: Authentication-Key-01\npassphrase: {length: 20}", expect: &[] },
    Case { kind: "KeyManager", name: "ok-km", spec: "servers: [{name: kmip-a, address: \"kmip-a.example.com:5696\", caSecretRef: {name: kmip-ca, key: ca.crt}, clientCertificateSecretRef: {name: kmip-client}}]", expect: &[] },
];

fn manifest(case: &Case, namespace: &str) -> String {
    let spec: String = case.spec.lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "apiVersion: keysmith.dev/v1alpha1\nkind: {}\nmetadata:\n  name: {}\n  namespace: {namespace}\nspec:\n{spec}",
        case.kind, case.name
    )
}

/// Applies every case concurrently and returns (case, succeeded, stderr).
async fn apply_all<'a>(
    cp: &ControlPlane,
    namespace: &str,
    cases: &'a [Case],
) -> Vec<(&'a Case, bool, String)> {
    join_all(cases.iter().map(|case| async move {
        let out = cp
            .kubectl_stdin(&["apply"], &manifest(case, namespace))
            .await;
        (case, out.status.success(), support::stderr(&out))
    }))
    .await
}

async fn assert_rejected(cases: &[Case], prefix: &str) {
    let cp = support::shared();
    cp.install_crds().await;
    let ns = cp.namespace(&cp.client(), prefix).await;
    let mut failures = Vec::new();
    for (case, accepted, stderr) in apply_all(cp, &ns, cases).await {
        if accepted {
            failures.push(format!("{} {}: accepted", case.kind, case.name));
        } else if let Some(missing) = case.expect.iter().find(|e| !stderr.contains(*e)) {
            failures.push(format!(
                "{} {}: error lacks {missing:?}: {stderr}",
                case.kind, case.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn invalid_certificate_key_pairs_are_rejected_naming_the_field() {
    assert!(INVALID_CERTIFICATE_KEY_PAIRS.len() >= 25);
    assert_rejected(INVALID_CERTIFICATE_KEY_PAIRS, "admission-ckp").await;
}

#[tokio::test]
async fn invalid_resources_of_other_kinds_are_rejected_naming_the_field() {
    assert_rejected(INVALID_OTHER_KINDS, "admission-other").await;
}

#[tokio::test]
async fn valid_resources_are_accepted() {
    let cp = support::shared();
    cp.install_crds().await;
    let ns = cp.namespace(&cp.client(), "admission-valid").await;
    let rejected: Vec<String> = apply_all(cp, &ns, VALID)
        .await
        .into_iter()
        .filter(|(_, accepted, _)| !accepted)
        .map(|(case, _, stderr)| format!("{} {}: {stderr}", case.kind, case.name))
        .collect();
    assert!(
        rejected.is_empty(),
        "valid manifests rejected:\n{}",
        rejected.join("\n")
    );
}

#[tokio::test]
async fn keyring_secret_type_and_note_are_immutable() {
    let cp = support::shared();
    cp.install_crds().await;
    let ns = cp.namespace(&cp.client(), "admission-immutable").await;
    let create = Case {
        kind: "KeyringSecret",
        name: "uplink",
        spec: "type: psk\nnote: site A\nparams: {psk: {length: 32}}",
        expect: &[],
    };
    let out = cp.kubectl_stdin(&["apply"], &manifest(&create, &ns)).await;
    assert!(out.status.success(), "{}", support::stderr(&out));

    let changes = [
        Case {
            kind: "KeyringSecret",
            name: "uplink",
            spec: "type: openvpn\nnote: site A\nparams: {openvpn: {}}",
            expect: &["spec.type", "type is immutable"],
        },
        Case {
            kind: "KeyringSecret",
            name: "uplink",
            spec: "type: psk\nnote: site B\nparams: {psk: {length: 32}}",
            expect: &["spec.note", "immutable"],
        },
        Case {
            kind: "KeyringSecret",
            name: "uplink",
            spec: "type: psk\nparams: {psk: {length: 32}}",
            expect: &["spec.note", "immutable"],
        },
    ];
    for change in &changes {
        let out = cp.kubectl_stdin(&["apply"], &manifest(change, &ns)).await;
        let stderr = support::stderr(&out);
        assert!(!out.status.success(), "change accepted: {}", change.spec);
        for e in change.expect {
            assert!(stderr.contains(e), "error lacks {e:?}: {stderr}");
        }
    }
    // Other fields stay mutable.
    let relabel = Case {
        kind: "KeyringSecret",
        name: "uplink",
        spec: "type: psk\nnote: site A\nparams: {psk: {length: 64}}\ntarget: {labels: {team: edge}}",
        expect: &[],
    };
    let out = cp.kubectl_stdin(&["apply"], &manifest(&relabel, &ns)).await;
    assert!(out.status.success(), "{}", support::stderr(&out));
}

#[tokio::test]
async fn field_docs_reach_kubectl_explain_and_the_category_lists_every_kind() {
    let cp = support::shared();
    cp.install_crds().await;
    let out = cp
        .kubectl(["explain", "certificatekeypair.spec.privateKey.size"])
        .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", support::stderr(&out));
    assert!(stdout.contains("Key size in bits"), "{stdout}");

    let ns = cp.namespace(&cp.client(), "category").await;
    let samples = [&VALID[0], &VALID[8], &VALID[9], &VALID[11], &VALID[12]];
    for case in samples {
        let out = cp.kubectl_stdin(&["apply"], &manifest(case, &ns)).await;
        assert!(out.status.success(), "{}", support::stderr(&out));
    }
    let out = cp
        .kubectl(["get", "keysmith", "-n", &ns, "-o", "name"])
        .await;
    let listed = String::from_utf8_lossy(&out.stdout);
    for kind in [
        "certificatekeypair",
        "sshkey",
        "keyringsecret",
        "kmsauthkey",
        "keymanager",
    ] {
        assert!(
            listed.contains(&format!("{kind}.keysmith.dev/")),
            "{kind} missing: {listed}"
        );
    }
    // Short names resolve.
    for short in ["ckp", "sshkey", "krs", "kmsak", "km"] {
        let out = cp.kubectl(["get", short, "-n", &ns]).await;
        assert!(out.status.success(), "{short}: {}", support::stderr(&out));
    }
}
