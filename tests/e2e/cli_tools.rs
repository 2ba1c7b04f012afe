//! `keysmith status` and `keysmith rotate` (the real binary, with the admin kubeconfig)
//! against resources the operator reconciled, also run as the kubectl plugin
//! `kubectl keysmith`.

use std::process::{Command, Output};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::json;

use keysmith::api::KeyringSecret;
use keysmith::api::common::reason;

use crate::support::wait::{self, HasCommonStatus};
use crate::support::{self, apply, setup};

fn keysmith(kubeconfig: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("run keysmith")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn status_shows_every_resource_and_rotate_asks_for_new_material() {
    let (cp, client, ns, _op) = setup("cli").await;
    let taken = serde_json::from_value::<Secret>(json!({
        "metadata": {"name": "taken"},
        "stringData": {"psk": "x"},
    }))
    .expect("secret");
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &taken)
        .await
        .expect("create");
    let manifests = "apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: uplink}
spec: {type: psk, params: {psk: {length: 32}}}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: taken}
spec: {type: psk, params: {psk: {length: 32}}}
---
apiVersion: keysmith.dev/v1alpha1
kind: CertificateKeyPair
metadata: {name: web}
spec: {commonName: web.example.com}
";
    apply(cp, &ns, manifests).await;
    let uplink: KeyringSecret = wait::ready(&client, &ns, "uplink").await;
    let _: KeyringSecret =
        wait::not_ready_with(&client, &ns, "taken", reason::SECRET_CONFLICT).await;
    let _: keysmith::api::CertificateKeyPair = wait::ready(&client, &ns, "web").await;

    let out = keysmith(cp.kubeconfig(), &["status", "-n", &ns]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = stdout(&out);
    let line = |resource: &str| {
        table
            .lines()
            .find(|l| l.starts_with(resource))
            .unwrap_or_else(|| panic!("{resource} missing:\n{table}"))
            .to_owned()
    };
    assert!(line("krs/uplink ").contains("True (Generated)"), "{table}");
    let fingerprint = uplink
        .common()
        .and_then(|c| c.fingerprint.clone())
        .expect("fingerprint");
    assert!(line("krs/uplink ").contains(&fingerprint[..20]), "{table}");
    let taken = line("krs/taken ");
    assert!(
        taken.contains("False (SecretConflict)") && taken.contains("already exists"),
        "{table}"
    );
    assert!(line("ckp/web ").contains("True (Issued)"), "{table}");

    // One resource, as a kubectl plugin.
    let plugins = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_keysmith"),
        plugins.path().join("kubectl-keysmith"),
    )
    .expect("symlink");
    let path = format!(
        "{}:{}",
        plugins.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // kubectl takes no global flags before a plugin name: the kubeconfig comes from the
    // environment, which kubectl passes on to the plugin.
    let kubectl = support::binaries()
        .expect("control plane binaries")
        .join("kubectl");
    let out = Command::new(kubectl)
        .env("PATH", path)
        .env("KUBECONFIG", cp.kubeconfig())
        .args(["keysmith", "status", "-n", &ns, "krs/uplink"])
        .output()
        .expect("kubectl keysmith");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let one = stdout(&out);
    assert_eq!(one.lines().count(), 2, "header and one row:\n{one}");
    assert!(one.contains("krs/uplink"), "{one}");

    // rotate: new material once, the token recorded.
    let out = keysmith(cp.kubeconfig(), &["rotate", "-n", &ns, "krs/uplink"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout(&out).contains("rotation requested"),
        "{}",
        stdout(&out)
    );
    let rotated: KeyringSecret = wait::until(
        &client,
        &ns,
        "uplink",
        Duration::from_secs(60),
        |k: &KeyringSecret| k.common().and_then(|c| c.revision) == Some(2) && wait::is_ready(k),
    )
    .await;
    assert!(
        rotated
            .common()
            .and_then(|c| c.last_rotation_token.clone())
            .is_some()
    );

    let out = keysmith(cp.kubeconfig(), &["rotate", "-n", &ns, "km/ekm"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no material to rotate"));
    let out = keysmith(cp.kubeconfig(), &["rotate", "-n", &ns, "pod/x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not kind/name"));
}
