//! `keysmith generate -f`: offline, no kubeconfig. The Secrets it prints for the examples
//! are checked with the tools that use them (openssl, ssh-keygen, openvpn, htpasswd), and
//! their metadata against the input; resources that need the cluster fail naming the field.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use k8s_openapi::api::core::v1::Secret;
use serde::Deserialize as _;

use crate::openssl::{self, Files};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `keysmith generate` with `args`, `stdin` on standard input, and no kubeconfig.
fn generate(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .arg("generate")
        .args(args)
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run keysmith generate");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("keysmith generate")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The YAML documents of `text` (empty ones skipped).
fn documents(text: &str) -> Vec<serde_norway::Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|d| serde_norway::Value::deserialize(d).expect("YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

/// The Secrets printed on standard output.
fn secrets(out: &Output) -> Vec<Secret> {
    documents(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .map(|v| serde_norway::from_value(v).expect("a Secret"))
        .collect()
}

fn text(value: &serde_norway::Value, path: &[&str]) -> Option<String> {
    path.iter()
        .try_fold(value, |v, key| v.get(*key))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

/// Where a Secret goes and who owns it: `(namespace, Kind/name)`.
type Owner = (String, String);

/// What the input says the output must be: for every resource that writes a Secret,
/// `target name -> (namespace, Kind/name)` (`namespace`: where resources without one go);
/// and every string value of the input's Secrets (the candidates for passwords and
/// passphrases).
fn expected(input: &str, namespace: &str) -> (BTreeMap<String, Owner>, Vec<String>) {
    let mut targets = BTreeMap::new();
    let mut strings = Vec::new();
    for doc in documents(input) {
        let kind = text(&doc, &["kind"]).unwrap_or_default();
        let name = text(&doc, &["metadata", "name"]).unwrap_or_default();
        let keysmith = text(&doc, &["apiVersion"]).is_some_and(|v| v.starts_with("keysmith.dev/"));
        if keysmith && kind != "KeyManager" {
            let target = text(&doc, &["spec", "target", "name"]).unwrap_or_else(|| name.clone());
            let ns = text(&doc, &["metadata", "namespace"]).unwrap_or_else(|| namespace.to_owned());
            targets.insert(target, (ns, format!("{kind}/{name}")));
        }
        if kind == "Secret" {
            let values = doc.get("stringData").and_then(|d| d.as_mapping()).cloned();
            strings.extend(
                values
                    .into_iter()
                    .flatten()
                    .filter_map(|(_, v)| v.as_str().map(str::to_owned)),
            );
        }
    }
    (targets, strings)
}

fn data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect()
}

fn annotation(secret: &Secret, key: &str) -> String {
    secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .cloned()
        .unwrap_or_default()
}

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .env("TZ", "UTC")
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A private file (ssh-keygen refuses keys others can read).
fn private_file(files: &Files, name: &str, bytes: &[u8]) -> PathBuf {
    let p = files.write(name, bytes);
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    p
}

/// `SHA256:<lowercase hex>` of a certificate, from `openssl x509 -fingerprint`.
fn openssl_fingerprint(files: &Files, pem: &str) -> String {
    let p = files.write("fp.pem", pem.as_bytes());
    let out = openssl::ok(&["x509", "-in", path(&p), "-noout", "-fingerprint", "-sha256"]);
    let hex = out.trim().rsplit('=').next().unwrap_or_default();
    format!("SHA256:{}", hex.replace(':', "").to_lowercase())
}

/// tls.crt (+ ca.crt), or chain.pem: the chain verifies, the fingerprint annotation is the
/// leaf's; tls.key belongs to the leaf; the DER copy and keystores hold the same.
fn check_tls(secret: &Secret, passwords: &[String], files: &Files) {
    let data = data(secret);
    let (chain, root) = match (data.get("tls.crt"), data.get("chain.pem")) {
        (Some(crt), _) => {
            let ca = data.get("ca.crt").expect("ca.crt with tls.crt");
            (
                openssl::split_pem(crt),
                String::from_utf8_lossy(ca).into_owned(),
            )
        }
        (None, Some(pem)) => {
            let mut all = openssl::split_pem(pem);
            let root = all.pop().expect("a root");
            if all.is_empty() {
                all.push(root.clone());
            }
            (all, root)
        }
        (None, None) => return,
    };
    let leaf = files.write("leaf.pem", chain[0].as_bytes());
    let ca = files.write("root.pem", root.as_bytes());
    let untrusted =
        (chain.len() > 1).then(|| files.write("int.pem", chain[1..].concat().as_bytes()));
    let (ok, out) = openssl::verify(&ca, untrusted.as_deref(), &leaf);
    assert!(ok, "{:?}: openssl verify: {out}", secret.metadata.name);
    openssl::ok(&["x509", "-in", path(&leaf), "-noout", "-text"]);
    assert_eq!(
        annotation(secret, "keysmith.dev/fingerprint"),
        openssl_fingerprint(files, &chain[0])
    );
    let cert_key = openssl::ok(&["x509", "-in", path(&leaf), "-noout", "-pubkey"]);
    if let Some(key) = data.get("tls.key") {
        let key = private_file(files, "tls.key", key);
        openssl::ok(&["pkey", "-in", path(&key), "-noout"]);
        let public = openssl::ok(&["pkey", "-in", path(&key), "-pubout"]);
        assert_eq!(public, cert_key, "tls.key belongs to the leaf");
    }
    if let Some(der) = data.get("tls.crt.der") {
        let der = files.write("tls.crt.der", der);
        let out = openssl::ok(&[
            "x509",
            "-inform",
            "DER",
            "-in",
            path(&der),
            "-noout",
            "-fingerprint",
            "-sha256",
        ]);
        let leaf_fp = openssl::ok(&[
            "x509",
            "-in",
            path(&leaf),
            "-noout",
            "-fingerprint",
            "-sha256",
        ]);
        assert_eq!(out, leaf_fp);
    }
    for store in ["keystore.p12", "truststore.p12"] {
        if let Some(p12) = data.get(store) {
            check_pkcs12(files, store, p12, passwords, &chain[0], &root);
        }
    }
}

/// A PKCS#12 file opens with one of the input's passwords and holds the leaf (keystore)
/// or the root (truststore).
fn check_pkcs12(
    files: &Files,
    store: &str,
    p12: &[u8],
    passwords: &[String],
    leaf: &str,
    root: &str,
) {
    let p = files.write(store, p12);
    let opened = passwords.iter().find_map(|pw| {
        let (ok, out) = openssl::run(&[
            "pkcs12",
            "-in",
            path(&p),
            "-passin",
            &format!("pass:{pw}"),
            "-nokeys",
        ]);
        ok.then_some(out)
    });
    let out = opened.unwrap_or_else(|| panic!("{store} opens with none of the input's passwords"));
    let expected = if store == "keystore.p12" { leaf } else { root };
    let body: String = expected
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let listed: String = out.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(
        listed.contains(&body),
        "{store} holds the expected certificate"
    );
}

/// ssh-publickey is what ssh-keygen derives from ssh-privatekey (decrypted with one of
/// the input's passphrases when encrypted), and its fingerprint the annotation.
fn check_ssh(secret: &Secret, passwords: &[String], files: &Files) -> Option<String> {
    let data = data(secret);
    let public = data.get("ssh-publickey")?;
    let pub_file = files.write("key.pub", public);
    let (ok, listed) = run("ssh-keygen", &["-l", "-f", path(&pub_file)]);
    assert!(ok, "{listed}");
    let fingerprint = listed
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_owned();
    assert_eq!(annotation(secret, "keysmith.dev/fingerprint"), fingerprint);
    let key = private_file(files, "id_key", &data["ssh-privatekey"]);
    let derived = std::iter::once(String::new())
        .chain(passwords.iter().cloned())
        .find_map(|pass| {
            let (ok, out) = run("ssh-keygen", &["-y", "-P", &pass, "-f", path(&key)]);
            ok.then_some(out)
        })
        .expect("ssh-keygen -y reads the private key");
    let base = |line: &str| {
        line.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(base(&derived), base(&String::from_utf8_lossy(public)));
    if let Some(known) = data.get("known_hosts") {
        let file = files.write("known_hosts", known);
        let host = String::from_utf8_lossy(known)
            .split([' ', ','])
            .next()
            .unwrap_or_default()
            .to_owned();
        let (ok, out) = run("ssh-keygen", &["-F", &host, "-f", path(&file)]);
        assert!(ok && out.contains(&host), "{out}");
    }
    Some(fingerprint)
}

/// The certificate certifies this key and names the signing CA's fingerprint.
fn check_ssh_certificate(secret: &Secret, ca_fingerprints: &BTreeSet<String>, files: &Files) {
    let data = data(secret);
    let Some(cert) = data.get("ssh-certificate") else {
        return;
    };
    let file = files.write("id-cert.pub", cert);
    let (ok, listed) = run("ssh-keygen", &["-L", "-f", path(&file)]);
    assert!(ok, "{listed}");
    let own = annotation(secret, "keysmith.dev/fingerprint");
    let certified = listed
        .lines()
        .find_map(|l| l.trim().strip_prefix("Public key: "))
        .expect("Public key");
    assert!(certified.ends_with(&own), "{listed}");
    let signing = listed
        .lines()
        .find_map(|l| l.trim().strip_prefix("Signing CA: "))
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("Signing CA");
    assert!(ca_fingerprints.contains(signing), "{listed}");
}

/// psk, dhparam, openvpn, remote_access, uftp, KMIP keys: accepted by their tools.
fn check_keyring(secret: &Secret, files: &Files) {
    let data = data(secret);
    if let Some(psk) = data.get("psk") {
        let hex: String = psk.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(data["psk.hex"], hex.into_bytes());
    }
    if let Some(dh) = data.get("dhparam.pem") {
        let p = files.write("dh.pem", dh);
        let (ok, out) = openssl::run(&["dhparam", "-in", path(&p), "-check", "-noout"]);
        assert!(ok && out.contains("DH parameters appear to be ok"), "{out}");
    }
    if let Some(key) = data.get("static.key") {
        let p = files.write("static.key", key);
        let (ok, out) = run(
            "openvpn",
            &[
                "--test-crypto",
                "--secret",
                path(&p),
                "--cipher",
                "AES-256-CBC",
                "--auth",
                "SHA256",
                "--verb",
                "0",
            ],
        );
        assert!(ok, "openvpn --test-crypto: {out}");
    }
    if let Some(line) = data.get("htpasswd") {
        let p = files.write("htpasswd", line);
        let user = String::from_utf8_lossy(&data["username"]).into_owned();
        let password = String::from_utf8_lossy(&data["password"]).into_owned();
        let (ok, out) = run("htpasswd", &["-vb", path(&p), &user, &password]);
        assert!(ok, "htpasswd -vb: {out}");
    }
    if let Some(key) = data.get("uftp.key") {
        let p = private_file(files, "uftp.key", key);
        let public = openssl::ok(&["pkey", "-in", path(&p), "-pubout"]);
        assert_eq!(public.as_bytes(), data["uftp.pub"].as_slice());
    }
    if let Some(passphrase) = data.get("passphrase") {
        assert!((20..=32).contains(&passphrase.len()));
        assert!(passphrase.iter().all(|b| (0x21..=0x7e).contains(b)));
        let id = String::from_utf8_lossy(&data["key-id"]).into_owned();
        assert!(
            id.len() == 80 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
    }
}

/// Labels, annotations, type and namespace as the operator sets them.
fn check_metadata(secret: &Secret, owners: &BTreeMap<String, Owner>) {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let (namespace, owner) = &owners[&name];
    assert_eq!(
        secret.metadata.namespace.as_ref(),
        Some(namespace),
        "{name}"
    );
    assert_eq!(&annotation(secret, "keysmith.dev/owner"), owner, "{name}");
    let labels = secret.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("keysmith")
    );
    assert!(!annotation(secret, "keysmith.dev/fingerprint").is_empty());
    // The input's resources have no uid: neither an owner-uid nor an ownerReference.
    assert!(annotation(secret, "keysmith.dev/owner-uid").is_empty());
    assert!(secret.metadata.owner_references.is_none());
    let data = data(secret);
    let expected_type = if data.contains_key("tls.key") {
        "kubernetes.io/tls"
    } else if data.contains_key("ssh-privatekey") {
        "kubernetes.io/ssh-auth"
    } else if data.contains_key("username") {
        "kubernetes.io/basic-auth"
    } else {
        "Opaque"
    };
    assert_eq!(secret.type_.as_deref(), Some(expected_type), "{name}");
}

/// Every example but freshly generated DH parameters (a new safe prime takes minutes
/// unoptimised; `examples/keyringsecret/dhparam-generate.yaml` is covered by the e2e suite).
fn offline_examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["certificatekeypair", "keyringsecret", "kms", "sshkey"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(repo().join("examples").join(dir)).expect("examples"))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n != "dhparam-generate.yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_offline_example_generates_material_the_tools_accept() {
    let examples = offline_examples();
    assert!(examples.len() >= 18, "{examples:?}");
    let mut seen = BTreeSet::new();
    for example in examples {
        let input = std::fs::read_to_string(&example).expect("example");
        let out = generate(&["-n", "team-a", "-f", path(&example)], "");
        assert!(
            out.status.success(),
            "{}: {}",
            example.display(),
            stderr(&out)
        );
        let secrets = secrets(&out);
        let (owners, passwords) = expected(&input, "team-a");
        let names: BTreeSet<String> = secrets
            .iter()
            .filter_map(|s| s.metadata.name.clone())
            .collect();
        assert_eq!(
            names,
            owners.keys().cloned().collect(),
            "{}",
            example.display()
        );
        let files = Files::new();
        let mut ssh_fingerprints = BTreeSet::new();
        for secret in &secrets {
            check_metadata(secret, &owners);
            check_tls(secret, &passwords, &files);
            check_keyring(secret, &files);
            ssh_fingerprints.extend(check_ssh(secret, &passwords, &files));
        }
        for secret in &secrets {
            check_ssh_certificate(secret, &ssh_fingerprints, &files);
            seen.extend(data(secret).into_keys());
        }
    }
    // Every kind of material the checks above look at was there to check.
    for key in [
        "tls.crt",
        "tls.key",
        "ca.crt",
        "chain.pem",
        "tls.crt.der",
        "tls-combined.pem",
        "keystore.p12",
        "truststore.p12",
        "ssh-privatekey",
        "ssh-publickey",
        "known_hosts",
        "ssh-certificate",
        "psk",
        "dhparam.pem",
        "static.key",
        "htpasswd",
        "uftp.key",
        "passphrase",
    ] {
        assert!(seen.contains(key), "no example produced {key}");
    }
}

#[test]
fn resources_that_need_the_cluster_fail_naming_the_field_and_print_nothing() {
    let input = "
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: fine}
spec: {type: psk, params: {psk: {length: 16}}}
---
apiVersion: keysmith.dev/v1alpha1
kind: CertificateKeyPair
metadata: {name: leaf}
spec: {commonName: leaf.example.com, issuerRef: {name: root-ca, namespace: pki}}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: single}
spec: {type: cert_single, params: {cert_single: {id: dev1}}}
---
apiVersion: keysmith.dev/v1alpha1
kind: KmsAuthKey
metadata: {name: byo}
spec: {keyManagerRef: {name: ekm}, passphraseSecretRef: {name: mine, key: passphrase}}
---
apiVersion: keysmith.dev/v1alpha1
kind: SshKey
metadata: {name: user}
spec: {certificate: {authorityRef: {name: user-ca}, principals: [ops]}}
";
    let out = generate(&["-f", "-"], input);
    assert!(!out.status.success());
    let err = stderr(&out);
    for expected in [
        "CertificateKeyPair default/leaf: spec.issuerRef: signing by CertificateKeyPair pki/root-ca (not in the input) needs the cluster",
        "KeyringSecret default/single: spec.params.cert_single.id:",
        "KmsAuthKey default/byo: spec.passphraseSecretRef: passphrase Secret default/mine key passphrase (not in the input) needs the cluster",
        "SshKey default/user: spec.certificate.authorityRef:",
    ] {
        assert!(err.contains(expected), "{expected}:\n{err}");
    }
    let printed = secrets(&out);
    let names: Vec<&str> = printed
        .iter()
        .filter_map(|s| s.metadata.name.as_deref())
        .collect();
    assert_eq!(names, ["fine"], "only the resource that could be generated");
}

#[test]
fn stdin_and_references_within_the_input_work() {
    let input = "
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: dev-cert, namespace: edge}
spec:
  type: pkey_cert
  keyringId: dev1
  issuerRef: {name: edge-ca}
  params: {pkey_cert: {commonName: dev1.example.com}}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: dev-chain, namespace: edge}
spec: {type: cert_chain, params: {cert_chain: {id: dev1}}}
---
apiVersion: keysmith.dev/v1alpha1
kind: CertificateKeyPair
metadata: {name: edge-ca, namespace: edge}
spec: {commonName: Edge CA, isCA: true}
";
    let out = generate(&["-f", "-"], input);
    assert!(out.status.success(), "{}", stderr(&out));
    let secrets: BTreeMap<String, Secret> = secrets(&out)
        .into_iter()
        .map(|s| (s.metadata.name.clone().unwrap_or_default(), s))
        .collect();
    assert_eq!(secrets.len(), 3);
    let files = Files::new();
    for secret in secrets.values() {
        check_tls(secret, &[], &files);
    }
    // The chain is the pkey_cert's certificate and the CA that signed it: one generation.
    let chain = openssl::split_pem(&data(&secrets["dev-chain"])["chain.pem"]);
    let cert = openssl::split_pem(&data(&secrets["dev-cert"])["tls.crt"]);
    let ca = openssl::split_pem(&data(&secrets["edge-ca"])["tls.crt"]);
    assert_eq!(chain, [cert[0].clone(), ca[0].clone()]);
}

#[test]
fn spec_errors_are_reported_as_the_controller_reports_them() {
    let input = "
apiVersion: v1
kind: Secret
metadata: {name: taken}
stringData: {psk: x}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: taken}
spec: {type: psk, params: {psk: {length: 16}}}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: 9lives}
spec: {type: psk, params: {psk: {length: 16}}}
---
apiVersion: keysmith.dev/v1alpha1
kind: CertificateKeyPair
metadata: {name: weak}
spec: {commonName: weak, privateKey: {algorithm: RSA, size: 1024}}
---
apiVersion: keysmith.dev/v1alpha1
kind: CertificateKeyPair
metadata: {name: dsa}
spec: {commonName: dsa, privateKey: {algorithm: DSA}}
";
    let out = generate(&["-f", "-"], input);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing printed");
    let err = stderr(&out);
    for expected in [
        "KeyringSecret default/taken: SecretConflict: Secret default/taken already exists, not created by keysmith",
        "KeyringSecret default/9lives: InvalidSpec: the keyring id derived from the name, \"9lives\"",
        "CertificateKeyPair default/weak: InvalidSpec: generating: RSA key size 1024 is not supported",
        "spec.privateKey.algorithm: unknown variant `DSA`",
    ] {
        assert!(err.contains(expected), "{expected}:\n{err}");
    }
}
