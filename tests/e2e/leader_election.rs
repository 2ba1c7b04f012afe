//! Two replicas of the real binary with `--leader-elect`: only the holder of the Lease
//! reconciles; when it is killed the other takes over within the lease duration.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

use keysmith::api::KeyringSecret;

use crate::support::operator::OperatorProcess;
use crate::support::{self, apply, wait};

const LEASE_SECONDS: u64 = 6;

fn replica(cp: &support::ControlPlane, ns: &str, log: &Path, identity: &str) -> OperatorProcess {
    let identity = format!("--leader-election-identity={identity}");
    let duration = format!("--leader-election-lease-duration={LEASE_SECONDS}s");
    OperatorProcess::start_with(cp, ns, log, &["--leader-elect", &identity, &duration])
}

async fn wait_for_log(operator: &OperatorProcess, needle: &str, timeout: Duration) -> Duration {
    let started = Instant::now();
    while !operator.log().contains(needle) {
        assert!(
            started.elapsed() < timeout,
            "log never contained {needle:?}:\n{}",
            operator.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

fn psk(name: &str) -> String {
    format!(
        "apiVersion: keysmith.dev/v1alpha1\nkind: KeyringSecret\nmetadata: {{name: {name}}}\nspec: {{type: psk, params: {{psk: {{length: 16}}}}}}\n"
    )
}

#[tokio::test]
async fn only_the_leader_reconciles_and_a_follower_takes_over() {
    let cp = support::shared();
    cp.install_crds().await;
    let client = cp.client();
    let ns = cp.namespace(&client, "leader").await;
    let logs = tempfile::tempdir().expect("tempdir");
    let leader = replica(cp, &ns, &logs.path().join("a.log"), "replica-a");
    wait_for_log(&leader, "leadership acquired", Duration::from_secs(30)).await;
    let follower = replica(cp, &ns, &logs.path().join("b.log"), "replica-b");
    wait_for_log(&follower, "waiting for leadership", Duration::from_secs(30)).await;

    apply(cp, &ns, &psk("first")).await;
    let _: KeyringSecret = wait::ready(&client, &ns, "first").await;
    let lease: Lease = Api::namespaced(client.clone(), &ns)
        .get("keysmith-leader")
        .await
        .expect("lease");
    let holder = lease.spec.and_then(|s| s.holder_identity);
    assert_eq!(holder.as_deref(), Some("replica-a"));
    assert!(
        leader.log().contains("keyring secret written"),
        "the leader reconciled"
    );
    assert!(!follower.log().contains("leadership acquired"));
    assert!(
        !follower.log().contains("keyring secret written"),
        "the follower never writes"
    );

    // The leader dies without releasing the Lease: the follower takes over after it expires.
    let killed = Instant::now();
    drop(leader);
    wait_for_log(
        &follower,
        "leadership acquired",
        Duration::from_secs(4 * LEASE_SECONDS),
    )
    .await;
    let failover = killed.elapsed();
    apply(cp, &ns, &psk("second")).await;
    let _: KeyringSecret = wait::ready(&client, &ns, "second").await;
    eprintln!(
        "failover: the follower led {failover:?} after the leader was killed (lease duration {LEASE_SECONDS}s); a new resource was Ready {:?} after the kill",
        killed.elapsed()
    );
    assert!(follower.terminate(), "clean exit");
    let lease: Lease = Api::namespaced(client.clone(), &ns)
        .get("keysmith-leader")
        .await
        .expect("lease");
    let holder = lease.spec.and_then(|s| s.holder_identity);
    assert_ne!(
        holder.as_deref(),
        Some("replica-b"),
        "a clean stop releases the Lease"
    );
}
