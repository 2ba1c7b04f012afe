//! KeyringSecret against the real control plane: every example in
//! `examples/keyringsecret/` becomes Ready and its Secret is accepted by the tools that use
//! it (openssl, openvpn, htpasswd, ssh-keygen); slow DH generation runs off the reconcile
//! path; cert_single/cert_chain follow their pkey_cert.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use keysmith::api::common::{ConditionStatus, condition, reason};
use keysmith::api::{CertificateKeyPair, KeyringSecret};

use crate::support::openssl::{self, Files};
use crate::support::operator::{Operator, OperatorProcess};
use crate::support::wait::{self, HasCommonStatus, ready_condition};
use crate::support::{self, apply, setup};

fn example(name: &str) -> String {
    let path: PathBuf = support::repo_root()
        .join("examples/keyringsecret")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `program args`; (success, stdout + stderr).
fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn generating(krs: &KeyringSecret) -> Option<String> {
    krs.common()?
        .conditions
        .iter()
        .find(|c| c.type_ == condition::GENERATING && c.status == ConditionStatus::True)
        .map(|c| c.message.clone())
}

async fn secret(client: &kube::Client, ns: &str, name: &str) -> Secret {
    Api::<Secret>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("Secret {ns}/{name}: {e}"))
}

/// `openssl dhparam -check` accepts the PEM; returns the prime's size from `-text`.
fn assert_dhparam_ok(pem: &[u8]) -> String {
    let files = Files::new();
    let path = files.write("dh.pem", pem);
    let (ok, out) = openssl::run(&["dhparam", "-in", path_str(&path), "-check", "-noout"]);
    assert!(ok && out.contains("DH parameters appear to be ok"), "{out}");
    openssl::ok(&["dhparam", "-in", path_str(&path), "-noout", "-text"])
}

/// The SubjectPublicKeyInfo PEM of a certificate, and of a private key.
fn cert_pubkey(pem: &[u8]) -> String {
    let files = Files::new();
    let path = files.write("cert.pem", pem);
    openssl::ok(&["x509", "-in", path_str(&path), "-noout", "-pubkey"])
}

fn key_pubkey(pem: &[u8]) -> String {
    let files = Files::new();
    let path = files.write("key.pem", pem);
    openssl::ok(&["pkey", "-in", path_str(&path), "-pubout"])
}

fn cert_text(pem: &[u8]) -> String {
    let files = Files::new();
    let path = files.write("cert.pem", pem);
    openssl::ok(&["x509", "-in", path_str(&path), "-noout", "-text"])
}

#[test]
fn every_example_is_covered_by_a_test() {
    let covered = [
        "dhparam-ffdhe.yaml",
        "dhparam-generate.yaml",
        "openvpn-pki.yaml",
        "openvpn.yaml",
        "pkey-cert.yaml",
        "psk.yaml",
        "remote-access.yaml",
        "ssh-private.yaml",
        "uftp.yaml",
    ];
    let dir = support::repo_root().join("examples/keyringsecret");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("examples dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    files.sort();
    assert_eq!(files, covered, "a new example needs a test here");
}

#[tokio::test]
async fn examples_of_the_random_types_are_accepted_by_their_tools() {
    let (cp, client, ns, _op) = setup("krs-simple").await;
    for file in [
        "psk.yaml",
        "dhparam-ffdhe.yaml",
        "openvpn.yaml",
        "remote-access.yaml",
        "ssh-private.yaml",
        "uftp.yaml",
    ] {
        apply(cp, &ns, &example(file)).await;
    }
    let files = Files::new();

    // psk: 32 raw bytes and their hex; the keyring id and note on the Secret.
    let psk: KeyringSecret = wait::ready(&client, &ns, "vpn-psk").await;
    assert_eq!(
        psk.status.as_ref().and_then(|s| s.keyring_id.as_deref()),
        Some("vpn_psk")
    );
    let s = secret(&client, &ns, "vpn-psk").await;
    let annotations = s.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(annotations["keysmith.dev/keyring-id"], "vpn_psk");
    assert_eq!(annotations["keysmith.dev/note"], "site A uplink");
    let data = wait::secret_data(&client, &ns, "vpn-psk").await;
    assert_eq!(data["psk"].len(), 32);
    let hex: String = data["psk"].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(String::from_utf8_lossy(&data["psk.hex"]), hex);

    // dhparam ffdhe3072: openssl checks it.
    let _: KeyringSecret = wait::ready(&client, &ns, "tls-dh").await;
    let data = wait::secret_data(&client, &ns, "tls-dh").await;
    let text = assert_dhparam_ok(&data["dhparam.pem"]);
    assert!(text.contains("3072 bit"), "{text}");

    // openvpn: the real openvpn reads and uses the static key.
    let _: KeyringSecret = wait::ready(&client, &ns, "vpn-tls-crypt").await;
    let data = wait::secret_data(&client, &ns, "vpn-tls-crypt").await;
    let key = files.write("static.key", &data["static.key"]);
    let (ok, out) = run(
        "openvpn",
        &[
            "--test-crypto",
            "--secret",
            path_str(&key),
            "--cipher",
            "AES-256-CBC",
            "--auth",
            "SHA256",
            "--verb",
            "0",
        ],
    );
    assert!(ok, "openvpn --test-crypto: {out}");

    // remote_access: htpasswd verifies the password; basic-auth Secret.
    let _: KeyringSecret = wait::ready(&client, &ns, "router-admin").await;
    let s = secret(&client, &ns, "router-admin").await;
    assert_eq!(s.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    let data = wait::secret_data(&client, &ns, "router-admin").await;
    assert_eq!(data["username"], b"admin");
    assert_eq!(data["password"].len(), 32);
    let htpasswd = files.write("htpasswd", &data["htpasswd"]);
    let password = String::from_utf8(data["password"].clone()).expect("ascii password");
    let (ok, out) = run(
        "htpasswd",
        &["-vb", path_str(&htpasswd), "admin", &password],
    );
    assert!(ok, "htpasswd -vb: {out}");
    let (ok, _) = run(
        "htpasswd",
        &["-vb", path_str(&htpasswd), "admin", "wrong-password-xx"],
    );
    assert!(!ok, "htpasswd accepts a wrong password");

    // ssh_private: ssh-keygen reads the key and prints the status fingerprint.
    let ssh: KeyringSecret = wait::ready(&client, &ns, "backup-ssh").await;
    let data = wait::secret_data(&client, &ns, "backup-ssh").await;
    let private = files.write("id_ecdsa", &data["ssh-privatekey"]);
    std::fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    let (ok, derived) = run("ssh-keygen", &["-y", "-f", path_str(&private)]);
    assert!(ok, "{derived}");
    let (ok, listed) = run("ssh-keygen", &["-l", "-f", path_str(&private)]);
    assert!(ok, "{listed}");
    let fingerprint = ssh
        .common()
        .and_then(|c| c.fingerprint.clone())
        .expect("fingerprint");
    assert!(
        listed.contains(&fingerprint) && listed.contains("(ECDSA)"),
        "{listed} vs {fingerprint}"
    );
    assert!(listed.starts_with("384 "), "{listed}");

    // uftp: the public key is the private key's.
    let _: KeyringSecret = wait::ready(&client, &ns, "uftp-server").await;
    let data = wait::secret_data(&client, &ns, "uftp-server").await;
    assert_eq!(
        key_pubkey(&data["uftp.key"]),
        String::from_utf8_lossy(&data["uftp.pub"])
    );
}

#[tokio::test]
async fn example_pkey_cert_is_self_signed_without_an_issuer() {
    let (cp, client, ns, _op) = setup("krs-pkey").await;
    apply(cp, &ns, &example("pkey-cert.yaml")).await;
    let krs: KeyringSecret = wait::ready(&client, &ns, "sensor-7").await;
    assert_eq!(
        ready_condition(&krs).map(|c| c.reason.as_str()),
        Some(reason::ISSUED)
    );
    let s = secret(&client, &ns, "sensor-7").await;
    assert_eq!(s.type_.as_deref(), Some("kubernetes.io/tls"));
    let data = wait::secret_data(&client, &ns, "sensor-7").await;
    assert_eq!(cert_pubkey(&data["tls.crt"]), key_pubkey(&data["tls.key"]));
    let files = Files::new();
    let (ok, out) = openssl::verify(
        &files.write("ca.crt", &data["ca.crt"]),
        None,
        &files.write("tls.crt", &data["tls.crt"]),
    );
    assert!(ok, "{out}");
    let text = cert_text(&data["tls.crt"]);
    assert!(text.contains("Public-Key: (3072 bit)"), "{text}");
    assert!(text.contains("DNS:sensor-7.plant.example"), "{text}");
    assert!(
        krs.status
            .as_ref()
            .and_then(|s| s.not_after.as_ref())
            .is_some()
    );
}

#[tokio::test]
async fn example_openvpn_pki_certificates_match_their_key_profile_and_chain() {
    let (cp, client, ns, _op) = setup("krs-pki").await;
    apply(cp, &ns, &example("openvpn-pki.yaml")).await;
    for name in [
        "vpn-server",
        "vpn-server-cert",
        "vpn-server-chain",
        "vpn-client-alice",
        "vpn-client-alice-cert",
    ] {
        let _: KeyringSecret = wait::ready(&client, &ns, name).await;
    }
    let server = wait::secret_data(&client, &ns, "vpn-server").await;
    let single = wait::secret_data(&client, &ns, "vpn-server-cert").await;
    assert!(!single.contains_key("tls.key"), "cert_single copies no key");
    assert_eq!(
        secret(&client, &ns, "vpn-server-cert")
            .await
            .type_
            .as_deref(),
        Some("Opaque")
    );
    assert_eq!(
        cert_pubkey(&single["tls.crt"]),
        key_pubkey(&server["tls.key"])
    );
    assert_ne!(single["tls.crt"], server["tls.crt"], "a new certificate");
    let text = cert_text(&single["tls.crt"]);
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    assert!(!text.contains("TLS Web Client Authentication"), "{text}");

    let alice = wait::secret_data(&client, &ns, "vpn-client-alice").await;
    let alice_single = wait::secret_data(&client, &ns, "vpn-client-alice-cert").await;
    assert_eq!(
        cert_pubkey(&alice_single["tls.crt"]),
        key_pubkey(&alice["tls.key"])
    );
    let text = cert_text(&alice_single["tls.crt"]);
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(!text.contains("TLS Web Server Authentication"), "{text}");

    // The chain: the pkey_cert's certificate, then the CA; openssl verifies it.
    let chain = wait::secret_data(&client, &ns, "vpn-server-chain").await;
    let pems = openssl::split_pem(&chain["chain.pem"]);
    assert_eq!(pems.len(), 2, "leaf and root");
    assert_eq!(pems[0].as_bytes(), server["tls.crt"].as_slice());
    let files = Files::new();
    let root = files.write("root.pem", pems[1].as_bytes());
    let leaf = files.write("leaf.pem", pems[0].as_bytes());
    let (ok, out) = openssl::verify(&root, None, &leaf);
    assert!(ok, "{out}");
    let ca = wait::secret_data(&client, &ns, "vpn-ca").await;
    assert_eq!(pems[1].as_bytes(), ca["tls.crt"].as_slice());
}

#[tokio::test]
async fn example_dhparam_generate_reports_progress_then_openssl_accepts_it() {
    let (cp, client, ns, _op) = setup("krs-dhgen").await;
    let started = Instant::now();
    apply(cp, &ns, &example("dhparam-generate.yaml")).await;
    let first: KeyringSecret = wait::until(
        &client,
        &ns,
        "vpn-dh",
        Duration::from_secs(60),
        |k: &KeyringSecret| generating(k).is_some() || wait::is_ready(k),
    )
    .await;
    // A lucky prime can be found before the first status write; usually progress shows.
    if let Some(message) = generating(&first) {
        assert!(message.contains("2048-bit DH parameters"), "{message}");
        let ready = ready_condition(&first).expect("Ready condition");
        assert_eq!(
            (ready.status, ready.reason.as_str()),
            (ConditionStatus::False, reason::GENERATING)
        );
    }
    let done: KeyringSecret = wait::until(
        &client,
        &ns,
        "vpn-dh",
        Duration::from_secs(900),
        |k: &KeyringSecret| ready_condition(k).is_some_and(|c| c.status == ConditionStatus::True),
    )
    .await;
    eprintln!(
        "generated 2048-bit DH parameters in {:?}",
        started.elapsed()
    );
    assert!(
        generating(&done).is_none(),
        "Generating flips back to False"
    );
    let data = wait::secret_data(&client, &ns, "vpn-dh").await;
    let text = assert_dhparam_ok(&data["dhparam.pem"]);
    assert!(text.contains("2048 bit"), "{text}");
    // Not one of the fixed groups: openssl names those.
    assert!(!text.contains("GROUP"), "{text}");
}

/// Two DH generations long enough to outlast the checks below (4096 bits: minutes each,
/// and with one generation slot the second waits for the first).
const SLOW_DH: &str = "apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata:
  name: big-dh-a
spec:
  type: dhparam
  params:
    dhparam: {group: Generate, bits: 4096}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata:
  name: big-dh-b
spec:
  type: dhparam
  params:
    dhparam: {group: Generate, bits: 4096}
";

fn psk_manifests(count: usize) -> String {
    (0..count)
        .map(|i| {
            format!(
                "apiVersion: keysmith.dev/v1alpha1\nkind: KeyringSecret\nmetadata:\n  name: psk-{i}\nspec:\n  type: psk\n  params:\n    psk: {{length: 32}}\n"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

async fn wait_for_log(operator: &OperatorProcess, needle: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !operator.log().contains(needle) {
        assert!(Instant::now() < deadline, "log never contained {needle:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn slow_generation_never_blocks_others_restarts_and_is_cancelled_on_delete() {
    let cp = support::shared();
    cp.install_crds().await;
    let client = cp.client();
    let ns = cp.namespace(&client, "krs-slow").await;
    let logs = tempfile::tempdir().expect("tempdir");
    let operator = OperatorProcess::start(cp, &ns, &logs.path().join("first.log"));
    apply(cp, &ns, SLOW_DH).await;
    // One runs, the other waits for the slot (which one first is up to the controller).
    let started = |k: &KeyringSecret| generating(k).is_some() || wait::is_ready(k);
    let long = Duration::from_secs(60);
    let a: KeyringSecret = wait::until(&client, &ns, "big-dh-a", long, started).await;
    let b: KeyringSecret = wait::until(&client, &ns, "big-dh-b", long, started).await;
    assert!(
        !wait::is_ready(&a) && !wait::is_ready(&b),
        "4096-bit generations take minutes"
    );
    // With one slot, one of them runs: its progress says so at the next refresh (30 s).
    let api = Api::<KeyringSecret>::namespaced(client.clone(), &ns);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut messages = Vec::new();
        for name in ["big-dh-a", "big-dh-b"] {
            let dh = api.get(name).await.expect("get");
            messages.push(generating(&dh).unwrap_or_default());
        }
        if messages.iter().any(|m| m.contains("running for")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no generation running: {messages:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // 50 PSKs created after them are Ready while they still run.
    let created = Instant::now();
    apply(cp, &ns, &psk_manifests(50)).await;
    for i in 0..50 {
        let _: KeyringSecret = wait::ready(&client, &ns, &format!("psk-{i}")).await;
    }
    let all_ready = created.elapsed();
    let mut waiting = 0;
    for name in ["big-dh-a", "big-dh-b"] {
        let dh = api.get(name).await.expect("get");
        if !wait::is_ready(&dh) {
            assert!(generating(&dh).is_some(), "{name} reports its progress");
            assert_eq!(
                ready_condition(&dh).map(|c| c.reason.as_str()),
                Some(reason::GENERATING)
            );
            waiting += 1;
        }
    }
    assert!(waiting > 0, "the DH generations were still running");
    eprintln!(
        "50 psk Ready {all_ready:?} after creation; {waiting} DH generation(s) still running"
    );

    // A restart stops promptly (nothing waits for a generation) and starts them again.
    let stopping = Instant::now();
    assert!(
        operator.terminate(),
        "the operator exits cleanly while generating"
    );
    eprintln!("operator stopped {:?} after SIGTERM", stopping.elapsed());
    let operator = OperatorProcess::start(cp, &ns, &logs.path().join("second.log"));
    wait_for_log(&operator, "slow generation queued", Duration::from_secs(60)).await;

    // Deleting the resources cancels their generation.
    for name in ["big-dh-a", "big-dh-b"] {
        api.delete(name, &DeleteParams::default())
            .await
            .expect("delete");
    }
    wait_for_log(
        &operator,
        "slow generation cancelled: the resource is gone",
        Duration::from_secs(30),
    )
    .await;
    assert!(operator.terminate(), "clean exit");
}

#[tokio::test]
async fn cert_single_and_cert_chain_wait_for_their_pkey_cert_and_follow_it() {
    let (cp, client, ns, _op) = setup("krs-ref").await;
    let dependents = "apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: dev1-client}
spec:
  type: cert_single
  params: {cert_single: {id: dev1, modifier: openvpn_client}}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: dev1-chain}
spec:
  type: cert_chain
  params: {cert_chain: {id: dev1}}
";
    apply(cp, &ns, dependents).await;
    let missing: KeyringSecret =
        wait::not_ready_with(&client, &ns, "dev1-client", reason::REFERENCE_NOT_FOUND).await;
    let message = ready_condition(&missing)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains("\"dev1\""), "{message}");
    let _: KeyringSecret =
        wait::not_ready_with(&client, &ns, "dev1-chain", reason::REFERENCE_NOT_FOUND).await;

    // The pkey_cert appears: both follow without waiting for their backoff.
    let pkey = "apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: dev1}
spec:
  type: pkey_cert
  params: {pkey_cert: {commonName: dev1, algorithm: Ed25519}}
";
    apply(cp, &ns, pkey).await;
    let _: KeyringSecret = wait::ready(&client, &ns, "dev1").await;
    let appeared = Instant::now();
    let _: KeyringSecret = wait::ready(&client, &ns, "dev1-client").await;
    let _: KeyringSecret = wait::ready(&client, &ns, "dev1-chain").await;
    eprintln!(
        "dependents Ready {:?} after the pkey_cert",
        appeared.elapsed()
    );
    let key = wait::secret_data(&client, &ns, "dev1").await;
    let single = wait::secret_data(&client, &ns, "dev1-client").await;
    assert_eq!(cert_pubkey(&single["tls.crt"]), key_pubkey(&key["tls.key"]));

    // A rotated pkey_cert key: the cert_single certifies the new key, the chain follows.
    Api::<KeyringSecret>::namespaced(client.clone(), &ns)
        .patch(
            "dev1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"keysmith.dev/rotate": "1"}}})),
        )
        .await
        .expect("annotate");
    let _: KeyringSecret = wait::until(
        &client,
        &ns,
        "dev1",
        Duration::from_secs(60),
        |k: &KeyringSecret| k.common().and_then(|c| c.last_rotation_token.as_deref()) == Some("1"),
    )
    .await;
    let rotated = wait::secret_data(&client, &ns, "dev1").await;
    assert_ne!(rotated["tls.key"], key["tls.key"]);
    let wanted = key_pubkey(&rotated["tls.key"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let single = wait::secret_data(&client, &ns, "dev1-client").await;
        let chain = wait::secret_data(&client, &ns, "dev1-chain").await;
        let chain_leaf = openssl::split_pem(&chain["chain.pem"])
            .first()
            .cloned()
            .unwrap_or_default();
        if cert_pubkey(&single["tls.crt"]) == wanted
            && chain_leaf.as_bytes() == rotated["tls.crt"].as_slice()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dependents did not follow the rotation"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn the_operator_default_issuer_signs_certificates_without_an_issuer_ref() {
    let cp = support::shared();
    cp.install_crds().await;
    let client = cp.client();
    let ns = cp.namespace(&client, "krs-default-ca").await;
    let _op = Operator::start_with(cp, &ns, |config| {
        config.settings.default_issuer = Some((ns.clone(), "fleet-ca".to_owned()));
    });
    let manifests = "apiVersion: keysmith.dev/v1alpha1
kind: CertificateKeyPair
metadata: {name: fleet-ca}
spec: {isCA: true, commonName: Fleet CA}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: gateway}
spec:
  type: pkey_cert
  params: {pkey_cert: {commonName: gateway}}
";
    apply(cp, &ns, manifests).await;
    let _: KeyringSecret = wait::ready(&client, &ns, "gateway").await;
    let ca = wait::secret_data(&client, &ns, "fleet-ca").await;
    let data = wait::secret_data(&client, &ns, "gateway").await;
    assert_eq!(data["ca.crt"], ca["tls.crt"]);
    let files = Files::new();
    let (ok, out) = openssl::verify(
        &files.write("ca.crt", &ca["tls.crt"]),
        None,
        &files.write("tls.crt", &data["tls.crt"]),
    );
    assert!(ok, "{out}");
    let text = cert_text(&data["tls.crt"]);
    assert!(text.contains("Issuer: CN = Fleet CA"), "{text}");
}

#[tokio::test]
async fn a_ready_keyring_secret_is_quiet_and_a_spec_change_regenerates() {
    let (cp, client, ns, _op) = setup("krs-quiet").await;
    let manifest = |length: u32| {
        format!(
            "apiVersion: keysmith.dev/v1alpha1\nkind: KeyringSecret\nmetadata: {{name: quiet}}\nspec:\n  type: psk\n  params: {{psk: {{length: {length}}}}}\n"
        )
    };
    apply(cp, &ns, &manifest(16)).await;
    let first: KeyringSecret = wait::ready(&client, &ns, "quiet").await;
    let before = secret(&client, &ns, "quiet").await;
    // Relabelling triggers a reconcile; nothing but the label changes.
    Api::<KeyringSecret>::namespaced(client.clone(), &ns)
        .patch(
            "quiet",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"example.com/touched": "yes"}}})),
        )
        .await
        .expect("annotate");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = secret(&client, &ns, "quiet").await;
    assert_eq!(
        before.metadata.resource_version,
        after.metadata.resource_version
    );
    let again: KeyringSecret = Api::namespaced(client.clone(), &ns)
        .get("quiet")
        .await
        .expect("get");
    assert_eq!(
        first.status, again.status,
        "no status change on a no-op reconcile"
    );

    apply(cp, &ns, &manifest(48)).await;
    let _: KeyringSecret = wait::until(
        &client,
        &ns,
        "quiet",
        Duration::from_secs(60),
        |k: &KeyringSecret| k.common().and_then(|c| c.revision) == Some(2) && wait::is_ready(k),
    )
    .await;
    let data: BTreeMap<String, Vec<u8>> = wait::secret_data(&client, &ns, "quiet").await;
    assert_eq!(data["psk"].len(), 48);
}

#[tokio::test]
async fn rsa_8192_keys_are_generated_as_tracked_slow_tasks_in_every_kind() {
    let (cp, client, ns, _op) = setup("krs-rsa8192").await;
    let manifests = "apiVersion: keysmith.dev/v1alpha1
kind: CertificateKeyPair
metadata: {name: big-ckp}
spec:
  commonName: big.example.com
  privateKey: {algorithm: RSA, size: 8192}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: big-pkey}
spec:
  type: pkey_cert
  params: {pkey_cert: {commonName: big-device, algorithm: RSA, size: 8192}}
";
    apply(cp, &ns, manifests).await;
    // One generation slot in the test operator: both report progress, one of them queued.
    let seen: KeyringSecret = wait::until(
        &client,
        &ns,
        "big-pkey",
        Duration::from_secs(60),
        |k: &KeyringSecret| generating(k).is_some() || wait::is_ready(k),
    )
    .await;
    let message = generating(&seen).expect("Generating=True before Ready");
    assert!(message.contains("an RSA 8192 key"), "{message}");
    let ckp: CertificateKeyPair = wait::until(
        &client,
        &ns,
        "big-ckp",
        Duration::from_secs(60),
        |c: &CertificateKeyPair| {
            c.common().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == condition::GENERATING && c.status == ConditionStatus::True)
            }) || wait::is_ready(c)
        },
    )
    .await;
    assert!(
        !wait::is_ready(&ckp),
        "the CertificateKeyPair reported its generation first"
    );
    let long = Duration::from_secs(300);
    let _: KeyringSecret = wait::until(&client, &ns, "big-pkey", long, wait::is_ready).await;
    let _: CertificateKeyPair = wait::until(&client, &ns, "big-ckp", long, wait::is_ready).await;
    for name in ["big-pkey", "big-ckp"] {
        let secret = wait::secret_data(&client, &ns, name).await;
        let text = cert_text(&secret["tls.crt"]);
        assert!(text.contains("Public-Key: (8192 bit)"), "{name}: {text}");
    }
}

#[tokio::test]
async fn foreign_secrets_are_never_touched_and_rotation_keeps_the_previous_psk() {
    let (cp, client, ns, _op) = setup("krs-foreign").await;
    let secrets = Api::<Secret>::namespaced(client.clone(), &ns);
    let foreign = |name: &str, type_: &str, data: serde_json::Value| {
        serde_json::from_value::<Secret>(json!({
            "metadata": {"name": name},
            "type": type_,
            "stringData": data,
        }))
        .expect("secret")
    };
    secrets
        .create(
            &Default::default(),
            &foreign("taken", "Opaque", json!({"psk": "x"})),
        )
        .await
        .expect("create");
    // Valid credentials, but in an Opaque Secret: adopting would mean replacing it.
    secrets
        .create(
            &Default::default(),
            &foreign(
                "creds",
                "Opaque",
                json!({"username": "admin", "password": "p", "htpasswd": "admin:x"}),
            ),
        )
        .await
        .expect("create");
    let before: Vec<Secret> = vec![
        secrets.get("taken").await.expect("get"),
        secrets.get("creds").await.expect("get"),
    ];
    let manifests = "apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: taken}
spec:
  type: psk
  params: {psk: {length: 16}}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: creds}
spec:
  type: remote_access
  target: {existingSecret: Adopt}
  params: {remote_access: {username: admin, passwordLength: 20}}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: rotating}
spec:
  type: psk
  rotation: {keepPrevious: true}
  params: {psk: {length: 16}}
";
    apply(cp, &ns, manifests).await;
    let taken: KeyringSecret =
        wait::not_ready_with(&client, &ns, "taken", reason::SECRET_CONFLICT).await;
    let message = ready_condition(&taken)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains("existingSecret: Adopt"), "{message}");
    let creds: KeyringSecret =
        wait::not_ready_with(&client, &ns, "creds", reason::SECRET_CONFLICT).await;
    let message = ready_condition(&creds)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains("Secret"), "{message}");
    let _: KeyringSecret = wait::ready(&client, &ns, "rotating").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for old in before {
        let name = old.metadata.name.clone().unwrap_or_default();
        let now = secrets.get(&name).await.expect("get");
        assert_eq!(now.metadata.uid, old.metadata.uid, "{name} was replaced");
        assert_eq!(
            now.metadata.resource_version, old.metadata.resource_version,
            "{name} was modified"
        );
    }

    let first = wait::secret_data(&client, &ns, "rotating").await;
    Api::<KeyringSecret>::namespaced(client.clone(), &ns)
        .patch(
            "rotating",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"keysmith.dev/rotate": "now"}}})),
        )
        .await
        .expect("annotate");
    let rotated: KeyringSecret = wait::until(
        &client,
        &ns,
        "rotating",
        Duration::from_secs(60),
        |k: &KeyringSecret| k.common().and_then(|c| c.revision) == Some(2) && wait::is_ready(k),
    )
    .await;
    assert_eq!(
        rotated
            .common()
            .and_then(|c| c.last_rotation_token.as_deref()),
        Some("now")
    );
    let second = wait::secret_data(&client, &ns, "rotating").await;
    assert_ne!(second["psk"], first["psk"]);
    assert_eq!(second["psk.previous"], first["psk"]);
    assert_eq!(second["psk.hex.previous"], first["psk.hex"]);
    let fingerprint = rotated
        .common()
        .and_then(|c| c.fingerprint.clone())
        .unwrap_or_default();
    assert!(fingerprint.starts_with("HMAC-SHA256:"), "{fingerprint}");
}

#[tokio::test]
async fn a_rotated_ca_reaches_pkey_cert_and_cert_chain() {
    let (cp, client, ns, _op) = setup("krs-ca-rotation").await;
    let manifests = "apiVersion: keysmith.dev/v1alpha1
kind: CertificateKeyPair
metadata: {name: site-ca}
spec: {isCA: true, commonName: Site CA}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: gw}
spec:
  type: pkey_cert
  issuerRef: {name: site-ca}
  params: {pkey_cert: {commonName: gw}}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: gw-chain}
spec:
  type: cert_chain
  params: {cert_chain: {id: gw}}
";
    apply(cp, &ns, manifests).await;
    let _: KeyringSecret = wait::ready(&client, &ns, "gw").await;
    let _: KeyringSecret = wait::ready(&client, &ns, "gw-chain").await;
    let first_ca = wait::secret_data(&client, &ns, "site-ca").await;
    Api::<CertificateKeyPair>::namespaced(client.clone(), &ns)
        .patch(
            "site-ca",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"keysmith.dev/rotate": "1"}}})),
        )
        .await
        .expect("annotate");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let ca = wait::secret_data(&client, &ns, "site-ca").await;
        let gw = wait::secret_data(&client, &ns, "gw").await;
        let chain = wait::secret_data(&client, &ns, "gw-chain").await;
        let pems = openssl::split_pem(&chain["chain.pem"]);
        let followed = ca["tls.crt"] != first_ca["tls.crt"]
            && gw["ca.crt"] == ca["tls.crt"]
            && pems.len() == 2
            && pems[0].as_bytes() == gw["tls.crt"].as_slice()
            && pems[1].as_bytes() == ca["tls.crt"].as_slice();
        if followed {
            let files = Files::new();
            let (ok, out) = openssl::verify(
                &files.write("root.pem", pems[1].as_bytes()),
                None,
                &files.write("leaf.pem", pems[0].as_bytes()),
            );
            assert!(ok, "{out}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pkey_cert and chain did not follow the CA"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn argo_cd_tracking_labels_of_a_resource_never_reach_its_secret() {
    let (cp, client, ns, _op) = setup("krs-argocd").await;
    let manifest = "apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata:
  name: tracked
  labels: {app.kubernetes.io/instance: demo-app}
  annotations: {argocd.argoproj.io/tracking-id: \"demo-app:keysmith.dev/KeyringSecret:ns/tracked\"}
spec:
  type: psk
  params: {psk: {length: 16}}
";
    apply(cp, &ns, manifest).await;
    let _: KeyringSecret = wait::ready(&client, &ns, "tracked").await;
    let s = secret(&client, &ns, "tracked").await;
    let labels = s.metadata.labels.clone().unwrap_or_default();
    let annotations = s.metadata.annotations.clone().unwrap_or_default();
    assert!(
        !labels.contains_key("app.kubernetes.io/instance"),
        "{labels:?}"
    );
    assert!(
        !annotations.contains_key("argocd.argoproj.io/tracking-id"),
        "{annotations:?}"
    );
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("keysmith")
    );
}
