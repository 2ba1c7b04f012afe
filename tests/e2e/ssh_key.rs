//! SshKey end to end: keys checked with ssh-keygen, logins against a real sshd.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, PostParams};

use keysmith::api::SshKey;
use keysmith::api::common::{ConditionStatus, reason};

use crate::support::operator::Operator;
use crate::support::sshd::{Sshd, current_user, write_private};
use crate::support::wait::{self, ready_condition};
use crate::support::{self, apply, setup};

fn sshkey_yaml(name: &str, spec: &str) -> String {
    let spec: String = spec.lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "apiVersion: keysmith.dev/v1alpha1\nkind: SshKey\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

fn ssh_keygen(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("ssh-keygen")
        .args(args)
        .output()
        .expect("ssh-keygen");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// `<algorithm> <base64>` of an authorized_keys line.
fn key_part(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test]
async fn every_algorithm_matches_ssh_keygen() {
    let (cp, client, ns, _operator) = setup("ssh-algos").await;
    let cases = [
        ("ed25519", "algorithm: Ed25519", 256),
        ("p256", "algorithm: ECDSA\nsize: 256", 256),
        ("p384", "algorithm: ECDSA\nsize: 384", 384),
        ("p521", "algorithm: ECDSA\nsize: 521", 521),
        ("rsa2048", "algorithm: RSA\nsize: 2048", 2048),
        ("rsa3072", "algorithm: RSA", 3072),
        (
            "rsa4096",
            "algorithm: RSA\nsize: 4096\npassphraseSecretRef: {name: pass, key: passphrase}",
            4096,
        ),
    ];
    let mut manifests = vec!["apiVersion: v1\nkind: Secret\nmetadata:\n  name: pass\nstringData:\n  passphrase: correct horse battery\n".to_owned()];
    manifests.extend(cases.iter().map(|(name, spec, _)| sshkey_yaml(name, spec)));
    apply(cp, &ns, &manifests.join("---\n")).await;

    let files = tempfile::tempdir().expect("tempdir");
    for (name, _, bits) in cases {
        let key: SshKey = wait::ready(&client, &ns, name).await;
        let status = key.status.as_ref().expect("status");
        let data = wait::secret_data(&client, &ns, name).await;
        let private = files.path().join(name);
        write_private(&private, &data["ssh-privatekey"]);
        let public_line = status.public_key.clone().expect("publicKey");
        assert_eq!(
            String::from_utf8_lossy(&data["ssh-publickey"]).trim(),
            public_line
        );
        assert!(
            public_line.ends_with(&format!("{name}@{ns}")),
            "default comment: {public_line}"
        );

        let mut derive = vec!["-y", "-f", private.to_str().expect("path")];
        if name == "rsa4096" {
            derive.splice(0..0, ["-P", "correct horse battery"]);
            let (ok, _) = ssh_keygen(&["-y", "-P", "wrong", "-f", private.to_str().expect("path")]);
            assert!(
                !ok,
                "the encrypted key must not open with a wrong passphrase"
            );
        }
        let (ok, derived) = ssh_keygen(&derive);
        assert!(ok, "{name}: {derived}");
        assert_eq!(key_part(&derived), key_part(&public_line), "{name}");

        let public = files.path().join(format!("{name}.pub"));
        std::fs::write(&public, &data["ssh-publickey"]).expect("write");
        let (ok, listed) = ssh_keygen(&["-l", "-f", public.to_str().expect("path")]);
        assert!(ok, "{listed}");
        let mut fields = listed.split_whitespace();
        assert_eq!(
            fields.next(),
            Some(bits.to_string().as_str()),
            "{name}: {listed}"
        );
        assert_eq!(
            fields.next(),
            status.common.fingerprint.as_deref(),
            "{name}: ssh-keygen -l prints status.fingerprint"
        );
        assert_eq!(status.size, Some(bits));
    }
}

#[tokio::test]
async fn sshd_accepts_keys_and_certificates_and_forgets_rotated_keys() {
    let (cp, client, ns, _operator) = setup("ssh-login").await;
    let user = current_user();
    apply(cp, &ns, &[
        sshkey_yaml("user-ca", "keyType: CA"),
        sshkey_yaml("alice", "algorithm: ECDSA\nsize: 384"),
        sshkey_yaml("bob", &format!("certificate: {{authorityRef: {{name: user-ca}}, principals: [{user}], validity: 1h, extensions: [permit-pty], criticalOptions: {{source-address: 127.0.0.1/32}}}}")),
    ].join("---\n")).await;
    let ca: SshKey = wait::ready(&client, &ns, "user-ca").await;
    let alice: SshKey = wait::ready(&client, &ns, "alice").await;
    let bob: SshKey = wait::ready(&client, &ns, "bob").await;
    let alice_data = wait::secret_data(&client, &ns, "alice").await;
    let bob_data = wait::secret_data(&client, &ns, "bob").await;
    let ca_public = ca
        .status
        .as_ref()
        .and_then(|s| s.public_key.clone())
        .expect("CA public key");

    // The certificate as ssh-keygen -L reads it, and as the status reports it.
    let files = tempfile::tempdir().expect("tempdir");
    let cert_path = files.path().join("bob-cert.pub");
    std::fs::write(&cert_path, &bob_data["ssh-certificate"]).expect("write");
    let (ok, listing) = ssh_keygen(&["-L", "-f", cert_path.to_str().expect("path")]);
    assert!(ok, "{listing}");
    assert!(listing.contains("user certificate"), "{listing}");
    assert!(
        listing.contains(&format!("Key ID: \"{ns}/bob\"")),
        "{listing}"
    );
    let principals = listing
        .split("Principals:")
        .nth(1)
        .and_then(|rest| rest.split("Critical Options:").next())
        .unwrap_or_default();
    assert!(
        principals.split_whitespace().any(|p| p == user),
        "{listing}"
    );
    assert!(
        listing.contains("permit-pty") && listing.contains("source-address 127.0.0.1/32"),
        "{listing}"
    );
    let cert_status = bob
        .status
        .as_ref()
        .and_then(|s| s.certificate.clone())
        .expect("certificate status");
    assert_eq!(cert_status.principals, vec![user.clone()]);
    assert_eq!(cert_status.key_id, format!("{ns}/bob"));
    assert!(
        listing.contains(&format!("Serial: {}", cert_status.serial)),
        "{listing}"
    );
    let validity = cert_status
        .valid_before
        .0
        .duration_since(cert_status.valid_after.0);
    assert_eq!(validity.as_secs(), 3600, "validity 1h");

    // sshd: alice by authorized_keys, bob by certificate.
    let alice_line = alice
        .status
        .as_ref()
        .and_then(|s| s.public_key.clone())
        .expect("alice public key");
    let sshd = Sshd::start(&format!("{alice_line}\n"), Some(&format!("{ca_public}\n")));
    let (ok, err) = sshd.login(&alice_data["ssh-privatekey"], None);
    assert!(ok, "alice by key: {err}\n{}", sshd.log());
    let (ok, err) = sshd.login(
        &bob_data["ssh-privatekey"],
        Some(&bob_data["ssh-certificate"]),
    );
    assert!(ok, "bob by certificate: {err}\n{}", sshd.log());
    let (ok, _) = sshd.login(&bob_data["ssh-privatekey"], None);
    assert!(!ok, "bob's key alone is not authorized");

    // Rotating alice's key: the new authorized_keys no longer lets the old key in.
    let out = cp
        .kubectl([
            "annotate",
            "-n",
            &ns,
            "sshkey/alice",
            "keysmith.dev/rotate=1",
        ])
        .await;
    assert!(out.status.success(), "{}", support::stderr(&out));
    let rotated: SshKey = wait::until(
        &client,
        &ns,
        "alice",
        Duration::from_secs(60),
        |k: &SshKey| {
            k.status
                .as_ref()
                .and_then(|s| s.common.last_rotation_token.as_deref())
                == Some("1")
        },
    )
    .await;
    let new_line = rotated
        .status
        .as_ref()
        .and_then(|s| s.public_key.clone())
        .expect("public key");
    assert_ne!(key_part(&new_line), key_part(&alice_line));
    sshd.set_authorized_keys(&format!("{new_line}\n"));
    let (ok, _) = sshd.login(&alice_data["ssh-privatekey"], None);
    assert!(!ok, "the rotated-away key is rejected");
    let new_data = wait::secret_data(&client, &ns, "alice").await;
    let (ok, err) = sshd.login(&new_data["ssh-privatekey"], None);
    assert!(ok, "the new key logs in: {err}");
}

#[tokio::test]
async fn host_keys_write_known_hosts_and_keep_previous_on_rotation() {
    let (cp, client, ns, _operator) = setup("ssh-host").await;
    apply(
        cp,
        &ns,
        &sshkey_yaml(
            "git",
            "keyType: Host\nhostnames: [git.example.com, 10.0.0.9]\nrotation: {keepPrevious: true}",
        ),
    )
    .await;
    let first: SshKey = wait::ready(&client, &ns, "git").await;
    let data = wait::secret_data(&client, &ns, "git").await;
    let files = tempfile::tempdir().expect("tempdir");
    let known_hosts = files.path().join("known_hosts");
    std::fs::write(&known_hosts, &data["known_hosts"]).expect("write");
    for host in ["git.example.com", "10.0.0.9"] {
        let (ok, found) = ssh_keygen(&["-F", host, "-f", known_hosts.to_str().expect("path")]);
        assert!(
            ok && found.contains(&key_part(
                first
                    .status
                    .as_ref()
                    .and_then(|s| s.public_key.as_deref())
                    .unwrap_or_default()
            )),
            "{host}: {found}"
        );
    }

    let out = cp
        .kubectl([
            "annotate",
            "-n",
            &ns,
            "sshkey/git",
            "keysmith.dev/rotate=again",
        ])
        .await;
    assert!(out.status.success(), "{}", support::stderr(&out));
    let _: SshKey = wait::until(
        &client,
        &ns,
        "git",
        Duration::from_secs(60),
        |k: &SshKey| {
            k.status
                .as_ref()
                .and_then(|s| s.common.last_rotation_token.as_deref())
                == Some("again")
        },
    )
    .await;
    let rotated = wait::secret_data(&client, &ns, "git").await;
    assert_eq!(
        rotated["ssh-privatekey.previous"], data["ssh-privatekey"],
        "keepPrevious keeps the old key"
    );
    assert_eq!(rotated["ssh-publickey.previous"], data["ssh-publickey"]);
    assert_ne!(rotated["ssh-privatekey"], data["ssh-privatekey"]);
}

#[tokio::test]
async fn a_non_ca_authority_is_refused_and_foreign_secrets_are_left_alone() {
    let (cp, client, ns, _operator) = setup("ssh-refuse").await;
    apply(
        cp,
        &ns,
        &[
            sshkey_yaml("not-a-ca", "keyType: User"),
            sshkey_yaml(
                "wants-cert",
                "certificate: {authorityRef: {name: not-a-ca}, principals: [deploy]}",
            ),
        ]
        .join("---\n"),
    )
    .await;
    let refused: SshKey =
        wait::not_ready_with(&client, &ns, "wants-cert", reason::ISSUER_NOT_CA).await;
    let message = ready_condition(&refused)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("not-a-ca") && message.contains("CA"),
        "{message}"
    );

    let secrets = Api::<Secret>::namespaced(client.clone(), &ns);
    let foreign: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "deploy-key"}, "type": "kubernetes.io/ssh-auth",
        "stringData": {"ssh-privatekey": "someone else's"}
    }))
    .expect("secret");
    let before = secrets
        .create(&PostParams::default(), &foreign)
        .await
        .expect("create");
    apply(
        cp,
        &ns,
        &sshkey_yaml("deploy", "target: {name: deploy-key}"),
    )
    .await;
    let _: SshKey = wait::not_ready_with(&client, &ns, "deploy", reason::SECRET_CONFLICT).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = secrets.get("deploy-key").await.expect("secret");
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    let still: SshKey = wait::not_ready_with(&client, &ns, "deploy", reason::SECRET_CONFLICT).await;
    assert!(ready_condition(&still).is_some_and(|c| c.status == ConditionStatus::False));
    let _ = still.name_any();
}

#[tokio::test]
async fn restarting_over_ready_ssh_keys_writes_nothing() {
    let (cp, client, ns, operator) = setup("ssh-quiet").await;
    let manifests: Vec<String> = (0..20)
        .map(|i| {
            sshkey_yaml(
                &format!("key-{i}"),
                if i % 2 == 0 {
                    "algorithm: Ed25519"
                } else {
                    "algorithm: ECDSA"
                },
            )
        })
        .chain([
            sshkey_yaml("ca", "keyType: CA"),
            sshkey_yaml(
                "certified",
                "certificate: {authorityRef: {name: ca}, principals: [x]}",
            ),
        ])
        .collect();
    apply(cp, &ns, &manifests.join("---\n")).await;
    for i in 0..20 {
        let _: SshKey = wait::ready(&client, &ns, &format!("key-{i}")).await;
    }
    let _: SshKey = wait::ready(&client, &ns, "certified").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    operator.stop();
    let user = support::pki::OPERATOR_USER;
    let seen = support::audit::requests(cp.audit_log(), user, &ns).len();
    let restarted = Operator::start(cp, &ns);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let reads = support::audit::requests(cp.audit_log(), user, &ns)
            .into_iter()
            .skip(seen)
            .filter(|e| e.verb == "get")
            .count();
        if reads >= 22 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "restarted operator reconciled only {reads}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    restarted.stop();
    let writes: Vec<String> = support::audit::requests(cp.audit_log(), user, &ns)
        .into_iter()
        .skip(seen)
        .filter(|e| e.is_write())
        .map(|e| e.describe())
        .collect();
    assert!(writes.is_empty(), "writes after restart: {writes:#?}");
}
