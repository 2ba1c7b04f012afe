//! Smoke tests: the parts the rest of the suite relies on are real and working.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, PostParams};

use crate::support;

#[tokio::test]
async fn apiserver_reports_the_pinned_release() {
    let cp = support::shared();
    let pinned = support::pinned_version().expect("versions.env");

    let info = cp.client().apiserver_version().await.expect("GET /version");
    assert_eq!(info.git_version, pinned);
    let minor = pinned
        .trim_start_matches("v1.")
        .split('.')
        .next()
        .unwrap_or_default();
    assert_eq!(info.major, "1");
    assert_eq!(info.minor, minor);

    // kubectl talks to the same server and is of the same release (no version skew).
    let out = cp.kubectl(["version", "--output=json"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("kubectl version JSON");
    assert_eq!(v["serverVersion"]["gitVersion"], pinned.as_str());
    assert_eq!(v["clientVersion"]["gitVersion"], pinned.as_str());
}

#[tokio::test]
async fn garbage_collector_deletes_a_secret_whose_owner_is_deleted() {
    let cp = support::shared();
    let client = cp.client();
    let ns = cp.namespace(&client, "gc").await;
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    let secrets = Api::<Secret>::namespaced(client.clone(), &ns);

    let owner: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "owner"}, "data": {"k": "v"}
    }))
    .expect("configmap");
    let owner = config_maps
        .create(&PostParams::default(), &owner)
        .await
        .expect("create owner");
    let uid = owner.metadata.uid.expect("server sets uid");
    let owned: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "owned", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}
        ]},
        "stringData": {"k": "v"}
    }))
    .expect("secret");
    let bystander: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "bystander"}, "stringData": {"k": "v"}
    }))
    .expect("secret");
    secrets
        .create(&PostParams::default(), &owned)
        .await
        .expect("create owned");
    secrets
        .create(&PostParams::default(), &bystander)
        .await
        .expect("create bystander");

    config_maps
        .delete("owner", &DeleteParams::background())
        .await
        .expect("delete owner");

    let deadline = Instant::now() + Duration::from_secs(60);
    while secrets.get_opt("owned").await.expect("get owned").is_some() {
        assert!(
            Instant::now() < deadline,
            "the owned Secret was not garbage-collected within 60s: is kube-controller-manager running?"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        secrets
            .get_opt("bystander")
            .await
            .expect("get bystander")
            .is_some(),
        "a Secret without ownerReference must survive"
    );
}

#[tokio::test]
async fn kubectl_apply_of_a_manifest_file_creates_and_updates() {
    let cp = support::shared();
    let client = cp.client();
    let ns = cp.namespace(&client, "kubectl").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("settings.yaml");
    let write = |value: &str| {
        let yaml = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {ns}\ndata:\n  mode: {value}\n"
        );
        std::fs::write(&manifest, yaml).expect("write manifest");
    };

    write("first");
    let out = cp
        .kubectl(["apply".as_ref(), "-f".as_ref(), manifest.as_os_str()])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "configmap/settings created"
    );

    write("second");
    let out = cp
        .kubectl(["apply".as_ref(), "-f".as_ref(), manifest.as_os_str()])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "configmap/settings configured"
    );

    let stored = Api::<ConfigMap>::namespaced(client, &ns)
        .get("settings")
        .await
        .expect("get settings");
    let data = stored.data.expect("data");
    assert_eq!(data.get("mode").map(String::as_str), Some("second"));
}

const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.smoke.keysmith.dev
spec:
  group: smoke.keysmith.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              min: {type: integer}
              max: {type: integer}
            x-kubernetes-validations:
            - rule: "self.min <= self.max"
              message: "min must not be greater than max"
              fieldPath: ".min"
"#;

#[tokio::test]
async fn crd_cel_rule_rejects_an_invalid_object_with_its_message() {
    let cp = support::shared();
    let client = cp.client();
    let ns = cp.namespace(&client, "cel").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let crd = dir.path().join("crd.yaml");
    std::fs::write(&crd, WIDGET_CRD).expect("write crd");

    let out = cp
        .kubectl(["apply".as_ref(), "-f".as_ref(), crd.as_os_str()])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cp
        .kubectl([
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/widgets.smoke.keysmith.dev",
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let widget = |name: &str, min: i64, max: i64| {
        let path = dir.path().join(format!("{name}.yaml"));
        let yaml = format!(
            "apiVersion: smoke.keysmith.dev/v1\nkind: Widget\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  min: {min}\n  max: {max}\n"
        );
        std::fs::write(&path, yaml).expect("write widget");
        path
    };

    let valid = widget("valid", 1, 2);
    let out = cp
        .kubectl(["apply".as_ref(), "-f".as_ref(), valid.as_os_str()])
        .await;
    assert!(
        out.status.success(),
        "valid object rejected: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let invalid = widget("invalid", 3, 2);
    let out = cp
        .kubectl(["apply".as_ref(), "-f".as_ref(), invalid.as_os_str()])
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "invalid object was accepted");
    assert!(
        stderr.contains("min must not be greater than max"),
        "{stderr}"
    );
    assert!(
        stderr.contains("spec.min"),
        "message should name the field: {stderr}"
    );
}
