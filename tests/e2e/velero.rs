//! The restore of `restore.rs` with a real backup tool: Velero 1.18 and its AWS plugin, built
//! from their Go modules (`hack/velero/build.sh`), against the test control plane, with a
//! MinIO on 127.0.0.1 as the object store (`tests/support/velero.rs`). Velero restores
//! Secrets before custom resources and strips ownerReferences and status.

use std::time::{Duration, Instant};

use crate::restore::{Scene, delete_namespace, list_secrets, secret_data, wait_all_ready};
use crate::support;
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
    let before = scene.snapshot().await;

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

    scene.assert_restored(&before).await;
    for (name, secret) in list_secrets(&client, &ns).await {
        assert!(
            kube::ResourceExt::owner_references(&secret).is_empty(),
            "{name}"
        );
    }
    scene.tear_down().await;
    drop(velero);
}
