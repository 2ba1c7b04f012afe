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
