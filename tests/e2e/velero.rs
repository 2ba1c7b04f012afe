//! The restore of `restore.rs` with a real backup tool: Velero 1.18 and its AWS plugin, built
//! from their Go modules (`hack/velero/build.sh`), against the test control plane, with a
//! MinIO on 127.0.0.1 as the object store (`tests/support/velero.rs`). Velero restores
//! Secrets before custom resources and strips ownerReferences and status.

use std::time::{Duration, Instant};

use crate::restore::{
    Scene, assert_same_data, delete_namespace, kms_key_id, list_secrets, secret_data,
    wait_all_ready,
};
use crate::support;
use crate::support::openssl::{self, Files};
use crate::support::velero::Velero;

#[tokio::test]
async fn velero_backup_and_restore_bring_back_every_key() {
    let cp = support::shared();
    cp.install_crds().await;
    let scratch = tempfile::tempdir().expect("scratch");
    // Velero learns the CRDs when it starts: keysmith's are installed first.
    let velero = Velero::start(cp, scratch.path()).expect("velero");
    let scene = Scene::build(cp, "velero-app").await;
    let (client, ns, keys) = (scene.client.clone(), scene.ns.clone(), scene.keys.clone());
    let server = &scene.server;
    let before_secrets = secret_data(&client, &ns).await;
    let before_keys = secret_data(&client, &keys).await;
    let key_id = kms_key_id(&client, &ns).await;

    let backup = format!("{ns}-backup");
    velero
        .backup_with(&backup, &["--include-namespaces", &format!("{ns},{keys}")])
        .expect("velero backup");
    delete_namespace(&client, &ns).await;
    assert!(
        secret_data(&client, &keys).await.is_empty(),
        "the key Secret goes with its resource"
    );
    let started = Instant::now();
    let restore = velero.restore(&backup).expect("velero restore");
    wait_all_ready(cp, &ns, started + Duration::from_secs(60), Some("Restored")).await;
    eprintln!(
        "velero restore {restore}: every resource Ready (Restored) {:.1}s after the restore began (velero started in {:.1}s)",
        started.elapsed().as_secs_f64(),
        velero.startup().as_secs_f64()
    );

    assert_same_data(
        &secret_data(&client, &ns).await,
        &before_secrets,
        "after the restore",
    );
    assert_same_data(
        &secret_data(&client, &keys).await,
        &before_keys,
        "after the restore",
    );
    assert_eq!(
        server.python_locate(&key_id).len(),
        1,
        "no second KMIP object"
    );
    let files = Files::new();
    let ca = files.write("ca.crt", &before_secrets["root-ca"]["tls.crt"]);
    for leaf in ["web", "api-tls"] {
        let crt = files.write(&format!("{leaf}.crt"), &before_secrets[leaf]["tls.crt"]);
        let (ok, out) = openssl::verify(&ca, None, &crt);
        assert!(ok, "{leaf}: {out}");
    }
    for (name, secret) in list_secrets(&client, &ns).await {
        assert!(
            kube::ResourceExt::owner_references(&secret).is_empty(),
            "{name}"
        );
    }
    scene.tear_down().await;
    drop(velero);
}
