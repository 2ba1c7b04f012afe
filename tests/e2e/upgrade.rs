//! Upgrading from release 0.1: its objects differ from today's in three ways. Target
//! Secrets carry a controller ownerReference to their resource, non-exportable keys live in
//! `keysmith-key-<uid>`, and only KmsAuthKeys carry a finalizer. The test lets today's
//! operator make everything, stops it, turns the objects into that shape, starts it again,
//! and checks that nothing was regenerated: every Secret's data, every fingerprint and
//! revision are as before, the key moved to its new name, and the KMIP server holds one
//! object for the key.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::restore::{
    MATERIAL, Scene, assert_same_data, kms_key_id, list_secrets, secret_data, wait_all_ready,
};
use crate::support::{self, ControlPlane};

#[tokio::test]
async fn the_objects_of_release_0_1_keep_their_material() {
    let cp = support::shared();
    let mut scene = Scene::build(cp, "upgrade").await;
    let (client, ns, keys) = (scene.client.clone(), scene.ns.clone(), scene.keys.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    scene.stop_operator();

    let before_secrets = secret_data(&client, &ns).await;
    let before_keys = secret_data(&client, &keys).await;
    let before_status = statuses(cp, &ns).await;
    let key_id = kms_key_id(&client, &ns).await;

    // Release 0.1's shape.
    let secrets = Api::<Secret>::namespaced(client.clone(), &ns);
    for (name, secret) in list_secrets(&client, &ns).await {
        let Some(owner) = secret.annotations().get("keysmith.dev/owner").cloned() else {
            continue;
        };
        let (kind, owner_name) = owner.split_once('/').expect("Kind/name");
        let uid = secret.annotations()["keysmith.dev/owner-uid"].clone();
        // 0.1 wrote no owner namespace.
        let reference = json!({"metadata": {
            "ownerReferences": [{
                "apiVersion": "keysmith.dev/v1alpha1", "kind": kind, "name": owner_name,
                "uid": uid, "controller": true, "blockOwnerDeletion": true,
            }],
            "annotations": {"keysmith.dev/owner-namespace": null},
        }});
        secrets
            .patch(&name, &PatchParams::default(), &Patch::Merge(&reference))
            .await
            .expect("add the ownerReference");
    }
    let key_secrets = Api::<Secret>::namespaced(client.clone(), &keys);
    let (key_name, key) = list_secrets(&client, &keys)
        .await
        .into_iter()
        .next()
        .expect("the key Secret");
    assert_eq!(key_name, format!("keysmith-key.{ns}.root-ca"));
    let legacy_name = format!(
        "keysmith-key-{}",
        key.annotations()["keysmith.dev/owner-uid"]
    );
    let legacy: Secret = serde_json::from_value(json!({
        "metadata": {
            "name": legacy_name,
            "labels": key.labels(),
            "annotations": key.annotations(),
        },
        "type": "Opaque",
        "data": key.data,
    }))
    .expect("legacy key Secret");
    key_secrets
        .create(&PostParams::default(), &legacy)
        .await
        .expect("create the legacy key Secret");
    key_secrets
        .delete(&key_name, &DeleteParams::default())
        .await
        .expect("delete the new-style key Secret");
    for object in MATERIAL.iter().filter(|o| !o.starts_with("kmsauthkey/")) {
        let out = cp
            .kubectl([
                "patch",
                object,
                "-n",
                &ns,
                "--type=merge",
                "-p",
                r#"{"metadata":{"finalizers":null}}"#,
            ])
            .await;
        assert!(out.status.success(), "{}", support::stderr(&out));
    }

    scene.start_operator(cp);
    let upgraded = Instant::now();
    support::wait::holds(
        "the Secrets lose their ownerReferences and the key moves back",
        Duration::from_secs(60),
        || async {
            let references = list_secrets(&client, &ns)
                .await
                .iter()
                .any(|(_, s)| !s.owner_references().is_empty());
            let names: Vec<String> = list_secrets(&client, &keys)
                .await
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            !references && names == [key_name.clone()]
        },
    )
    .await;
    wait_all_ready(cp, &ns, upgraded + Duration::from_secs(60), None).await;
    for object in MATERIAL {
        let out = cp
            .kubectl([
                "get",
                object,
                "-n",
                &ns,
                "-o",
                "jsonpath={.metadata.finalizers}",
            ])
            .await;
        let finalizers = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            finalizers.contains("keysmith.dev/"),
            "{object}: {finalizers}"
        );
    }
    assert_same_data(
        &secret_data(&client, &ns).await,
        &before_secrets,
        "target Secrets",
    );
    assert_same_data(
        &secret_data(&client, &keys).await,
        &before_keys,
        "the same key, moved back to its new name",
    );
    assert_eq!(
        statuses(cp, &ns).await,
        before_status,
        "fingerprints and revisions"
    );
    assert_eq!(
        scene.server.python_locate(&key_id).len(),
        1,
        "one object for the key"
    );
    scene.tear_down().await;
}

/// `(fingerprint, revision)` of every resource that writes a Secret.
async fn statuses(cp: &ControlPlane, namespace: &str) -> Vec<(String, Value, Value)> {
    let mut all = Vec::new();
    for object in MATERIAL {
        let out = cp
            .kubectl(["get", object, "-n", namespace, "-o", "json"])
            .await;
        assert!(out.status.success(), "{}", support::stderr(&out));
        let value: Value = serde_json::from_slice(&out.stdout).expect("json");
        all.push((
            object.to_owned(),
            value["status"]["fingerprint"].clone(),
            value["status"]["revision"].clone(),
        ));
    }
    all
}
