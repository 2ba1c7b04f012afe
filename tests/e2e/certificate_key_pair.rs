//! CertificateKeyPair end to end: applied with kubectl, reconciled by the operator against the
//! real API server, the resulting Secrets checked with openssl.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};

use keysmith::api::CertificateKeyPair;
use keysmith::api::common::{ConditionStatus, reason};

use crate::support::openssl::{self, Files};
use crate::support::operator::Operator;
use crate::support::wait::{self, ready_condition};
use crate::support::{self, apply, setup};

fn ckp_yaml(name: &str, spec: &str) -> String {
    let spec: String = spec.lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "apiVersion: keysmith.dev/v1alpha1\nkind: CertificateKeyPair\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

#[tokio::test]
async fn self_signed_certificate_is_issued_and_verifies_with_openssl() {
    let (cp, client, ns, _operator) = setup("ckp-self").await;
    apply(
        cp,
        &ns,
        &ckp_yaml(
            "web",
            "commonName: shop.example.com\ndnsNames: [shop.example.com]\nipAddresses: [10.0.0.7]",
        ),
    )
    .await;

    let ckp: CertificateKeyPair = wait::ready(&client, &ns, "web").await;
    let status = ckp.status.as_ref().expect("status");
    assert_eq!(
        ready_condition(&ckp).map(|c| c.reason.as_str()),
        Some(reason::ISSUED)
    );
    assert_eq!(status.common.secret_name.as_deref(), Some("web"));
    assert_eq!(status.common.revision, Some(1));

    let secret = Api::<Secret>::namespaced(client.clone(), &ns)
        .get("web")
        .await
        .expect("secret");
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    assert_eq!(
        secret
            .labels()
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("keysmith")
    );
    let annotations = secret.annotations();
    assert_eq!(
        annotations.get("keysmith.dev/owner").map(String::as_str),
        Some("CertificateKeyPair/web")
    );
    assert_eq!(
        annotations.get("keysmith.dev/owner-uid"),
        ckp.metadata.uid.as_ref()
    );
    assert_eq!(
        annotations.get("keysmith.dev/fingerprint"),
        status.common.fingerprint.as_ref()
    );
    // No ownerReference (a restore must not get it garbage-collected): the resource's
    // finalizer carries out deletionPolicy.
    assert!(secret.owner_references().is_empty());
    let ckp: CertificateKeyPair = Api::namespaced(client.clone(), &ns)
        .get("web")
        .await
        .expect("get");
    assert!(
        ckp.finalizers()
            .iter()
            .any(|f| f == "keysmith.dev/material"),
        "{:?}",
        ckp.finalizers()
    );

    let data = wait::secret_data(&client, &ns, "web").await;
    let files = Files::new();
    let crt = files.write("tls.crt", &data["tls.crt"]);
    let ca = files.write("ca.crt", &data["ca.crt"]);
    let key = files.write("tls.key", &data["tls.key"]);
    let (ok, out) = openssl::verify(&ca, None, &crt);
    assert!(ok, "{out}");
    let text = openssl::ok(&["x509", "-in", &crt.to_string_lossy(), "-noout", "-text"]);
    assert!(
        text.contains("CN = shop.example.com") || text.contains("CN=shop.example.com"),
        "{text}"
    );
    assert!(
        text.contains("DNS:shop.example.com") && text.contains("IP Address:10.0.0.7"),
        "{text}"
    );
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    // The key in the Secret belongs to the certificate.
    let cert_pub = openssl::ok(&["x509", "-in", &crt.to_string_lossy(), "-noout", "-pubkey"]);
    let key_pub = openssl::ok(&["pkey", "-in", &key.to_string_lossy(), "-pubout"]);
    assert_eq!(cert_pub, key_pub);
    // The status fingerprints are what openssl computes.
    let sha256 = openssl::ok(&[
        "x509",
        "-in",
        &crt.to_string_lossy(),
        "-noout",
        "-fingerprint",
        "-sha256",
    ]);
    let fingerprints = status.fingerprints.as_ref().expect("fingerprints");
    assert!(
        sha256.trim().ends_with(&fingerprints.sha256),
        "{sha256} vs {}",
        fingerprints.sha256
    );
}

#[tokio::test]
async fn root_intermediate_leaf_chain_verifies_and_follows_ca_renewal() {
    let (cp, client, ns, _operator) = setup("ckp-chain").await;
    apply(cp, &ns, &[
        ckp_yaml("root-ca", "commonName: Example Root CA\nisCA: true\nprivateKey: {algorithm: ECDSA, size: 384}"),
        ckp_yaml("intermediate-ca", "commonName: Example Intermediate CA\nisCA: true\nmaxPathLength: 0\nissuerRef: {name: root-ca}"),
        ckp_yaml("leaf", "commonName: api.example.com\ndnsNames: [api.example.com]\nissuerRef: {name: intermediate-ca}"),
    ].join("---\n")).await;

    let leaf: CertificateKeyPair = wait::ready(&client, &ns, "leaf").await;
    let first_leaf = leaf
        .status
        .as_ref()
        .and_then(|s| s.common.fingerprint.clone());
    assert_chain_verifies(&client, &ns).await;

    // Renewing the root re-issues the intermediate, which re-issues the leaf.
    let out = cp
        .kubectl([
            "annotate",
            "-n",
            &ns,
            "certificatekeypair/root-ca",
            "keysmith.dev/rotate=1",
        ])
        .await;
    assert!(out.status.success(), "{}", support::stderr(&out));
    let leaf: CertificateKeyPair = wait::until(
        &client,
        &ns,
        "leaf",
        Duration::from_secs(60),
        |l: &CertificateKeyPair| {
            l.status.as_ref().and_then(|s| s.common.fingerprint.clone()) != first_leaf
                && ready_condition(l).is_some_and(|c| c.status == ConditionStatus::True)
        },
    )
    .await;
    assert_eq!(
        leaf.status.as_ref().and_then(|s| s.common.revision),
        Some(2)
    );
    let root: CertificateKeyPair = wait::ready(&client, &ns, "root-ca").await;
    assert_eq!(
        root.status
            .as_ref()
            .and_then(|s| s.common.last_rotation_token.clone())
            .as_deref(),
        Some("1")
    );
    // Wait until the leaf's Secret carries the new root, then verify again.
    let root_data = wait::secret_data(&client, &ns, "root-ca").await;
    wait::until(
        &client,
        &ns,
        "leaf",
        Duration::from_secs(60),
        |_: &CertificateKeyPair| true,
    )
    .await;
    let leaf_data = wait::secret_data(&client, &ns, "leaf").await;
    assert_eq!(
        leaf_data["ca.crt"], root_data["tls.crt"],
        "leaf's ca.crt is the renewed root"
    );
    assert_chain_verifies(&client, &ns).await;
}

async fn assert_chain_verifies(client: &kube::Client, ns: &str) {
    let data = wait::secret_data(client, ns, "leaf").await;
    let chain = openssl::split_pem(&data["tls.crt"]);
    assert_eq!(
        chain.len(),
        2,
        "tls.crt holds leaf + intermediate, never the root"
    );
    let files = Files::new();
    let leaf = files.write("leaf.pem", chain[0].as_bytes());
    let intermediate = files.write("intermediate.pem", chain[1].as_bytes());
    let ca = files.write("ca.pem", &data["ca.crt"]);
    let (ok, out) = openssl::verify(&ca, Some(&intermediate), &leaf);
    assert!(ok, "{out}");
    let text = openssl::ok(&[
        "x509",
        "-in",
        &intermediate.to_string_lossy(),
        "-noout",
        "-text",
    ]);
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
}

#[tokio::test]
async fn foreign_secret_is_never_modified_and_reports_conflict() {
    let (cp, client, ns, _operator) = setup("ckp-conflict").await;
    let secrets = Api::<Secret>::namespaced(client.clone(), &ns);
    let foreign: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web-tls", "labels": {"owner": "someone-else"}},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": "not a certificate", "tls.key": "not a key"}
    }))
    .expect("secret");
    let before = secrets
        .create(&PostParams::default(), &foreign)
        .await
        .expect("create foreign");

    apply(
        cp,
        &ns,
        &ckp_yaml(
            "web",
            "commonName: shop.example.com\ntarget: {name: web-tls}",
        ),
    )
    .await;
    let ckp: CertificateKeyPair =
        wait::not_ready_with(&client, &ns, "web", reason::SECRET_CONFLICT).await;
    let message = ready_condition(&ckp)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains("web-tls"), "{message}");

    // Let a few retries pass, then compare byte for byte (resourceVersion included).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = secrets.get("web-tls").await.expect("foreign secret");
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(after.data, before.data);
    assert_eq!(after.metadata.labels, before.metadata.labels);
    assert_eq!(after.metadata.annotations, before.metadata.annotations);

    // A second resource naming another resource's Secret conflicts too.
    apply(
        cp,
        &ns,
        &ckp_yaml("first", "commonName: a.example.com\ntarget: {name: shared}"),
    )
    .await;
    let _: CertificateKeyPair = wait::ready(&client, &ns, "first").await;
    apply(
        cp,
        &ns,
        &ckp_yaml(
            "second",
            "commonName: b.example.com\ntarget: {name: shared}",
        ),
    )
    .await;
    let second: CertificateKeyPair =
        wait::not_ready_with(&client, &ns, "second", reason::SECRET_CONFLICT).await;
    let message = ready_condition(&second)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains("CertificateKeyPair/first"), "{message}");
}

#[tokio::test]
async fn deletion_policy_decides_whether_the_secret_survives() {
    let (cp, client, ns, _operator) = setup("ckp-delete").await;
    apply(
        cp,
        &ns,
        &[
            ckp_yaml("deleted", "commonName: a.example.com"),
            ckp_yaml(
                "retained",
                "commonName: b.example.com\ntarget: {deletionPolicy: Retain}",
            ),
        ]
        .join("---\n"),
    )
    .await;
    let _: CertificateKeyPair = wait::ready(&client, &ns, "deleted").await;
    let _: CertificateKeyPair = wait::ready(&client, &ns, "retained").await;

    let api = Api::<CertificateKeyPair>::namespaced(client.clone(), &ns);
    api.delete("deleted", &DeleteParams::background())
        .await
        .expect("delete");
    api.delete("retained", &DeleteParams::background())
        .await
        .expect("delete");

    let secrets = Api::<Secret>::namespaced(client.clone(), &ns);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while secrets.get_opt("deleted").await.expect("get").is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "Secret of a Delete resource was not removed"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let retained = secrets.get_opt("retained").await.expect("get");
    let retained = retained.expect("Secret of a Retain resource survives");
    assert!(retained.owner_references().is_empty());
    // Both resources are gone: the finalizer was removed in either case.
    for name in ["deleted", "retained"] {
        wait::gone::<CertificateKeyPair>(&client, &ns, name, Duration::from_secs(30)).await;
    }
}

#[tokio::test]
async fn short_certificates_are_renewed_while_ready_stays_true() {
    let (cp, client, ns, _operator) = setup("ckp-renew").await;
    apply(
        cp,
        &ns,
        &ckp_yaml(
            "short",
            "commonName: short.example.com\nduration: 1h\nrotation: {renewBefore: 59m55s}",
        ),
    )
    .await;
    let first: CertificateKeyPair = wait::ready(&client, &ns, "short").await;
    let first_transition = ready_condition(&first).map(|c| c.last_transition_time.clone());

    // Renewal is due 5 s after issuance: expect two renewals, with Ready True throughout.
    let renewed: CertificateKeyPair = wait::until(
        &client,
        &ns,
        "short",
        Duration::from_secs(40),
        |c: &CertificateKeyPair| {
            assert_eq!(
                ready_condition(c).map(|r| r.status),
                Some(ConditionStatus::True),
                "Ready flipped during renewal"
            );
            c.status
                .as_ref()
                .and_then(|s| s.common.revision)
                .unwrap_or(0)
                >= 3
        },
    )
    .await;
    assert_eq!(
        ready_condition(&renewed).map(|c| c.last_transition_time.clone()),
        first_transition
    );
    assert_ne!(
        renewed
            .status
            .as_ref()
            .and_then(|s| s.common.fingerprint.clone()),
        first
            .status
            .as_ref()
            .and_then(|s| s.common.fingerprint.clone())
    );
}

#[tokio::test]
async fn restarting_the_operator_over_100_ready_resources_writes_nothing() {
    let (cp, client, ns, operator) = setup("ckp-quiet").await;
    let manifests: Vec<String> = (0..100)
        .map(|i| {
            ckp_yaml(
                &format!("cert-{i}"),
                &format!("commonName: cert-{i}.example.com"),
            )
        })
        .collect();
    apply(cp, &ns, &manifests.join("---\n")).await;
    for i in 0..100 {
        let _: CertificateKeyPair = wait::ready(&client, &ns, &format!("cert-{i}")).await;
    }
    // Let the first operator settle (its own status writes trigger one more quiet pass).
    tokio::time::sleep(Duration::from_secs(3)).await;
    operator.stop();
    let api = Api::<CertificateKeyPair>::namespaced(client.clone(), &ns);
    let statuses_before: Vec<_> = api
        .list(&Default::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|c| (c.name_any(), c.status))
        .collect();
    let user = support::pki::OPERATOR_USER;
    let first_issuance = support::audit::requests(cp.audit_log(), user, &ns);
    let count = |verb: &str, resource: &str, subresource: Option<&str>| {
        first_issuance
            .iter()
            .filter(|e| e.verb == verb)
            .filter_map(|e| e.object_ref.as_ref())
            .filter(|o| o.resource == resource && o.subresource.as_deref() == subresource)
            .count()
    };
    // First issuance: each Secret created once, each status written once; a new resource's
    // Secret is not read first (it is guessed absent: api-notes "First issuance"), and the
    // watch events of keysmith's own creates start no second reconcile that would read it.
    // (A handful of reads is allowed for a watch that the API server restarts meanwhile.)
    assert_eq!(count("create", "secrets", None), 100, "Secret creates");
    assert_eq!(
        count("patch", "certificatekeypairs", Some("status")),
        100,
        "status writes"
    );
    let secret_reads = count("get", "secrets", None);
    assert!(
        secret_reads <= 5,
        "{secret_reads} reads of target Secrets during the first issuance of 100"
    );
    let seen_before = first_issuance.len();
    let writes_before = support::audit::writes(cp.audit_log(), user, &ns).len();
    assert!(
        writes_before >= 200,
        "the first operator wrote Secrets and statuses ({writes_before})"
    );

    // A new operator relists (resyncs) all 100 Ready resources: wait until it has read every
    // target Secret (one GET per reconcile), then a little longer for any write to land.
    let restarted = Operator::start(cp, &ns);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let reads = support::audit::requests(cp.audit_log(), user, &ns)
            .into_iter()
            .skip(seen_before)
            .filter(|e| e.verb == "get")
            .count();
        if reads >= 100 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the restarted operator reconciled only {reads} of 100"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    restarted.stop();

    let new_writes: Vec<String> = support::audit::requests(cp.audit_log(), user, &ns)
        .into_iter()
        .skip(seen_before)
        .filter(|e| e.is_write())
        .map(|e| e.describe())
        .collect();
    assert!(
        new_writes.is_empty(),
        "writes after restart: {new_writes:#?}"
    );
    let statuses_after: Vec<_> = api
        .list(&Default::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|c| (c.name_any(), c.status))
        .collect();
    assert_eq!(statuses_before, statuses_after, "no status changed");
}

#[tokio::test]
async fn denied_private_key_export_keeps_the_key_out_of_the_target_secret() {
    let (cp, client, ns, operator) = setup("ckp-denied").await;
    apply(
        cp,
        &ns,
        &[
            ckp_yaml(
                "vault-ca",
                "commonName: Hidden Key CA\nisCA: true\nprivateKeyExport: Denied",
            ),
            ckp_yaml(
                "service",
                "commonName: service.example.com\nissuerRef: {name: vault-ca}",
            ),
        ]
        .join("---\n"),
    )
    .await;
    let ca: CertificateKeyPair = wait::ready(&client, &ns, "vault-ca").await;
    let _: CertificateKeyPair = wait::ready(&client, &ns, "service").await;

    let ca_status = ca.status.as_ref().expect("status");
    assert_eq!(
        ca_status.private_key.as_ref().map(|k| k.available),
        Some(false)
    );
    let target = wait::secret_data(&client, &ns, "vault-ca").await;
    assert!(
        !target.contains_key("tls.key"),
        "the key never reaches the target Secret"
    );
    assert!(target.contains_key("tls.crt") && target.contains_key("ca.crt"));

    // The key lives in the operator's key namespace (here the test namespace) and belongs
    // to the certificate.
    let key_secret = format!("keysmith-key.{ns}.vault-ca");
    let stored = wait::secret_data(&client, &ns, &key_secret).await;
    let files = Files::new();
    let crt = files.write("ca.crt", &target["tls.crt"]);
    let key = files.write("ca.key", &stored["tls.key"]);
    assert_eq!(
        openssl::ok(&["x509", "-in", &crt.to_string_lossy(), "-noout", "-pubkey"]),
        openssl::ok(&["pkey", "-in", &key.to_string_lossy(), "-pubout"])
    );
    // The leaf signed with the hidden key verifies.
    let leaf = wait::secret_data(&client, &ns, "service").await;
    let (ok, out) = openssl::verify(
        &files.write("root.pem", &leaf["ca.crt"]),
        None,
        &files.write("leaf.pem", &leaf["tls.crt"]),
    );
    assert!(ok, "{out}");

    // Quiet: no reissue loop.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again: CertificateKeyPair = wait::ready(&client, &ns, "vault-ca").await;
    assert_eq!(
        again.status.as_ref().and_then(|s| s.common.revision),
        Some(1)
    );

    // An exported key moves into the store when export is denied later: same certificate
    // (no reissue), the Secret becomes Opaque (a kubernetes.io/tls Secret needs tls.key).
    apply(cp, &ns, &ckp_yaml("flip", "commonName: flip.example.com")).await;
    let before: CertificateKeyPair = wait::ready(&client, &ns, "flip").await;
    let exported = wait::secret_data(&client, &ns, "flip").await;
    apply(
        cp,
        &ns,
        &ckp_yaml(
            "flip",
            "commonName: flip.example.com\nprivateKeyExport: Denied",
        ),
    )
    .await;
    let flipped: CertificateKeyPair = wait::until(
        &client,
        &ns,
        "flip",
        Duration::from_secs(30),
        |c: &CertificateKeyPair| {
            c.status
                .as_ref()
                .and_then(|s| s.private_key.as_ref())
                .is_some_and(|k| !k.available)
        },
    )
    .await;
    assert_eq!(
        flipped
            .status
            .as_ref()
            .and_then(|s| s.common.fingerprint.clone()),
        before
            .status
            .as_ref()
            .and_then(|s| s.common.fingerprint.clone()),
        "the certificate is kept"
    );
    let secret = Api::<Secret>::namespaced(client.clone(), &ns)
        .get("flip")
        .await
        .expect("secret");
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    assert!(
        !secret
            .data
            .as_ref()
            .is_some_and(|d| d.contains_key("tls.key"))
    );
    let moved = wait::secret_data(&client, &ns, &format!("keysmith-key.{ns}.flip")).await;
    assert_eq!(
        moved["tls.key"], exported["tls.key"],
        "the same key, now in the store"
    );

    // And back: export allowed again, the same key returns to the target Secret.
    apply(cp, &ns, &ckp_yaml("flip", "commonName: flip.example.com")).await;
    let back: CertificateKeyPair = wait::until(
        &client,
        &ns,
        "flip",
        Duration::from_secs(30),
        |c: &CertificateKeyPair| {
            c.status
                .as_ref()
                .and_then(|s| s.private_key.as_ref())
                .is_some_and(|k| k.available)
        },
    )
    .await;
    assert_eq!(
        back.status
            .as_ref()
            .and_then(|s| s.common.fingerprint.clone()),
        before
            .status
            .as_ref()
            .and_then(|s| s.common.fingerprint.clone())
    );
    let returned = wait::secret_data(&client, &ns, "flip").await;
    assert_eq!(
        returned["tls.key"], exported["tls.key"],
        "the same key is exported again"
    );

    // Deleting the resource while the operator is down: the finalizer holds it until the
    // operator is back, which then deletes the key Secret (deletionPolicy: Delete).
    operator.stop();
    Api::<CertificateKeyPair>::namespaced(client.clone(), &ns)
        .delete("vault-ca", &DeleteParams::default())
        .await
        .expect("delete");
    let _restarted = Operator::start(cp, &ns);
    let secrets = Api::<Secret>::namespaced(client.clone(), &ns);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while secrets.get_opt(&key_secret).await.expect("get").is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "key Secret of a deleted resource was not swept"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn target_changes_are_applied_without_reissuing_and_others_fields_stay() {
    let (cp, client, ns, _operator) = setup("ckp-target").await;
    apply(cp, &ns, &ckp_yaml("web", "commonName: web.example.com\nadditionalOutputFormats: [DER]\ntarget: {labels: {team: shop}, annotations: {note: one}}")).await;
    let before: CertificateKeyPair = wait::ready(&client, &ns, "web").await;
    // Someone else labels the Secret too.
    let out = cp
        .kubectl(["label", "-n", &ns, "secret/web", "backup=daily"])
        .await;
    assert!(out.status.success(), "{}", support::stderr(&out));

    apply(cp, &ns, &ckp_yaml("web", "commonName: web.example.com\ntarget: {deletionPolicy: Retain, annotations: {note: two}}")).await;
    let secrets = Api::<Secret>::namespaced(client.clone(), &ns);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let secret = loop {
        let secret = secrets.get("web").await.expect("secret");
        if secret.annotations().get("note").map(String::as_str) == Some("two")
            && secret.owner_references().is_empty()
        {
            break secret;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "target change not applied: {:?}",
            secret.metadata
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        !secret.labels().contains_key("team"),
        "a label keysmith no longer sets is removed"
    );
    assert_eq!(
        secret.labels().get("backup").map(String::as_str),
        Some("daily"),
        "others' labels stay"
    );
    let data = secret.data.clone().unwrap_or_default();
    assert!(
        !data.contains_key("tls.crt.der") && !data.contains_key("tls.key.der"),
        "DER files removed"
    );
    let after: CertificateKeyPair = wait::ready(&client, &ns, "web").await;
    assert_eq!(
        after
            .status
            .as_ref()
            .and_then(|s| s.common.fingerprint.clone()),
        before
            .status
            .as_ref()
            .and_then(|s| s.common.fingerprint.clone()),
        "no reissue for a change of the target"
    );
    // Retain now really keeps the Secret.
    Api::<CertificateKeyPair>::namespaced(client.clone(), &ns)
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(secrets.get_opt("web").await.expect("get").is_some());
}

#[tokio::test]
async fn a_failing_resource_retries_with_backoff_not_in_a_loop() {
    let (cp, client, ns, _operator) = setup("ckp-backoff").await;
    apply(
        cp,
        &ns,
        &ckp_yaml(
            "orphan",
            "commonName: orphan.example.com\nissuerRef: {name: missing-ca}",
        ),
    )
    .await;
    let _: CertificateKeyPair =
        wait::not_ready_with(&client, &ns, "orphan", reason::REFERENCE_NOT_FOUND).await;
    let user = support::pki::OPERATOR_USER;
    let before = support::audit::writes(cp.audit_log(), user, &ns).len();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let writes: Vec<String> = support::audit::writes(cp.audit_log(), user, &ns)
        .into_iter()
        .skip(before)
        .map(|e| e.describe())
        .collect();
    // Backoff 1s, 2s, 4s (test settings): at most a handful of status writes in 8 s.
    assert!(
        writes.len() <= 6,
        "{} writes in 8 s: {writes:#?}",
        writes.len()
    );
}

#[tokio::test]
async fn an_issuer_chain_that_loops_back_is_refused() {
    let (cp, client, ns, _operator) = setup("ckp-loop").await;
    apply(cp, &ns, &ckp_yaml("ca", "commonName: Loop CA\nisCA: true")).await;
    let before: CertificateKeyPair = wait::ready(&client, &ns, "ca").await;
    apply(
        cp,
        &ns,
        &ckp_yaml(
            "ca",
            "commonName: Loop CA\nisCA: true\nissuerRef: {name: ca}",
        ),
    )
    .await;
    let refused: CertificateKeyPair =
        wait::not_ready_with(&client, &ns, "ca", reason::INVALID_SPEC).await;
    assert!(ready_condition(&refused).is_some_and(|c| c.message.contains("leads back")));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let data = wait::secret_data(&client, &ns, "ca").await;
    assert_eq!(
        openssl::split_pem(&data["tls.crt"]).len(),
        1,
        "no re-issue chain growth"
    );
    let _ = before;
}

#[tokio::test]
async fn a_lost_status_is_reported_again_without_new_material() {
    // As if the operator had been killed between its Secret write and its status write:
    // the Secrets are there, the status is not. The next reconcile must find the material
    // (a guess that the target is absent runs into AlreadyExists and reads it), never make
    // new material, and never touch a stored non-exportable key.
    let (cp, client, ns, _operator) = setup("ckp-lost-status").await;
    let manifests = [
        ckp_yaml("open", "commonName: open.example.com"),
        ckp_yaml(
            "sealed",
            "commonName: sealed.example.com\nprivateKeyExport: Denied",
        ),
    ];
    apply(cp, &ns, &manifests.join("---\n")).await;
    let api = Api::<CertificateKeyPair>::namespaced(client.clone(), &ns);
    for name in ["open", "sealed"] {
        let before: CertificateKeyPair = wait::ready(&client, &ns, name).await;
        let key_secret = format!("keysmith-key.{ns}.{name}");
        let target_before = wait::secret_data(&client, &ns, name).await;
        let stored_before = Api::<Secret>::namespaced(client.clone(), &ns)
            .get_opt(&key_secret)
            .await
            .expect("get");
        assert_eq!(
            stored_before.is_some(),
            name == "sealed",
            "{name}: key store"
        );

        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": null})),
        )
        .await
        .expect("status removed");
        // A status change alone starts no reconcile; an annotation does.
        let poke =
            serde_json::json!({"metadata": {"annotations": {"test.keysmith.dev/poke": "1"}}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(poke))
            .await
            .expect("annotated");
        let after: CertificateKeyPair = wait::ready(&client, &ns, name).await;

        let fingerprint =
            |c: &CertificateKeyPair| c.status.as_ref().and_then(|s| s.common.fingerprint.clone());
        let revision = |c: &CertificateKeyPair| c.status.as_ref().and_then(|s| s.common.revision);
        assert_eq!(
            fingerprint(&after),
            fingerprint(&before),
            "{name}: fingerprint"
        );
        assert_eq!(revision(&after), Some(1), "{name}: revision");
        assert_eq!(
            wait::secret_data(&client, &ns, name).await,
            target_before,
            "{name}: target Secret"
        );
        let stored_after = Api::<Secret>::namespaced(client.clone(), &ns)
            .get_opt(&key_secret)
            .await
            .expect("get");
        assert_eq!(
            stored_after.map(|s| s.data),
            stored_before.map(|s| s.data),
            "{name}: stored key"
        );
    }
}

#[tokio::test]
async fn refused_status_writes_are_retried_without_creating_the_secret_again() {
    // The operator may write the Secret but not the status (a policy refuses it): every retry
    // sees a resource without a status. None of them guesses the Secret absent again: the
    // finalizer added with the first material says the resource has had some, so they read
    // it. The material is made once.
    let cp = support::shared();
    cp.install_crds().await;
    let client = cp.client();
    let ns = cp.namespace(&client, "ckp-status-refused").await;
    let policy = format!("keysmith-test-refuse-status-{ns}");
    let refusal = format!(
        "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: {policy}}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - {{apiGroups: [keysmith.dev], apiVersions: ['*'], operations: [UPDATE], resources: [certificatekeypairs/status]}}
  validations:
  - {{expression: 'false', message: status writes refused by the test}}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {policy}}}
spec:
  policyName: {policy}
  validationActions: [Deny]
  matchResources:
    namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {ns}}}}}
"
    );
    let out = cp.kubectl_stdin(&["apply"], &refusal).await;
    assert!(out.status.success(), "{}", support::stderr(&out));
    apply(cp, &ns, &ckp_yaml("stuck", "commonName: stuck.example.com")).await;
    // The policy is in force once a status write of the admin is refused too (dry run).
    let api = Api::<CertificateKeyPair>::namespaced(client.clone(), &ns);
    let dry_run = PatchParams {
        dry_run: true,
        ..PatchParams::default()
    };
    let status = serde_json::json!({"status": {"revision": 7}});
    wait::holds(
        "the policy refuses status writes",
        Duration::from_secs(30),
        || async {
            api.patch_status("stuck", &dry_run, &Patch::Merge(&status))
                .await
                .is_err_and(|e| e.to_string().contains("refused by the test"))
        },
    )
    .await;

    let operator = Operator::start(cp, &ns);
    let user = support::pki::OPERATOR_USER;
    let refused_status_patches = || {
        support::audit::requests(cp.audit_log(), user, &ns)
            .into_iter()
            .filter(|e| e.verb == "patch")
            .filter(|e| {
                e.object_ref
                    .as_ref()
                    .is_some_and(|o| o.subresource.as_deref() == Some("status"))
            })
            .filter(|e| e.response_status.as_ref().and_then(|s| s.code) >= Some(400))
            .count()
    };
    wait::holds(
        "four refused status writes",
        Duration::from_secs(60),
        || async { refused_status_patches() >= 4 },
    )
    .await;
    let secret_creates: Vec<Option<u16>> = support::audit::requests(cp.audit_log(), user, &ns)
        .into_iter()
        .filter(|e| e.verb == "create")
        .filter(|e| {
            e.object_ref
                .as_ref()
                .is_some_and(|o| o.resource == "secrets")
        })
        .map(|e| e.response_status.and_then(|s| s.code))
        .collect();
    assert_eq!(
        secret_creates,
        [Some(201)],
        "Secret creates over {} refused status writes",
        refused_status_patches()
    );
    let issued = wait::secret_data(&client, &ns, "stuck").await;

    let out = cp
        .kubectl([
            "delete",
            "validatingadmissionpolicybinding,validatingadmissionpolicy",
            &policy,
        ])
        .await;
    assert!(out.status.success(), "{}", support::stderr(&out));
    let ready: CertificateKeyPair = wait::ready(&client, &ns, "stuck").await;
    assert_eq!(ready.status.and_then(|s| s.common.revision), Some(1));
    assert_eq!(wait::secret_data(&client, &ns, "stuck").await, issued);
    operator.stop();
}
