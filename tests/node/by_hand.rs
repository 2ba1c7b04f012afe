//! Not tests: what `DEMO_NODE=1 make demo` (hack/demo.sh) runs.

use std::io::BufRead;

use crate::chart_on_node::{
    RELEASE_NAMESPACE, helm_install, operator_pods, pod_log, wait_for_leader, wait_for_no_pods,
};
use crate::support::cluster::{all_ready, apply_examples, helm_ok, kubectl_ok};
use crate::support::node::{self, Node};
use crate::support::{ControlPlane, image};

/// Builds the image, starts a control plane and a real node, `helm install`s the chart with
/// that image, applies every example but the KMIP one (its servers would run outside the
/// pod network) and prints `keysmith status -A`. With `DEMO_KEEP=1` everything keeps running
/// until Enter.
#[tokio::test]
#[ignore = "started by DEMO_NODE=1 make demo"]
async fn demo_on_a_real_node() {
    if let Some(why) = node::unavailable() {
        panic!("{why}");
    }
    let _one = node::one_at_a_time().await;
    let image = image::operator();
    println!("==> image {} ({})", image.reference, image.digest);
    let cp = ControlPlane::start_for_node().expect("control plane");
    println!("==> control plane {} is up", cp.version());
    let node = Node::start(&cp).await.expect("node");
    println!(
        "==> node {} Ready in {:.1}s",
        node::NODE_NAME,
        node.startup().as_secs_f64()
    );
    node.import_image(&image.archive).expect("import");
    println!("==> helm install keysmith charts/keysmith (image.pullPolicy=Never)");
    helm_install(&cp, image);
    let pods = operator_pods(&cp, 2);
    let leader = wait_for_leader(&cp, &pods).await;
    print!(
        "{}",
        kubectl_ok(&cp, &["get", "pods", "-n", RELEASE_NAMESPACE, "-o", "wide"])
    );
    println!("==> leader: {leader}");
    println!("==> kubectl apply every example (but the KMIP one)");
    kubectl_ok(&cp, &["create", "namespace", "examples"]);
    let created = apply_examples(&cp, "examples", None);
    all_ready(&cp, created, || pod_log(&cp, &leader)).await;
    println!("==> keysmith status -A");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .args(["status", "-A"])
        .env("KUBECONFIG", cp.kubeconfig())
        .output()
        .expect("keysmith status");
    print!("{}", String::from_utf8_lossy(&status.stdout));

    if std::env::var_os("DEMO_KEEP").is_some() {
        println!("\nexport KUBECONFIG={}", cp.kubeconfig().display());
        println!("everything keeps running; press Enter to stop it");
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
    }
    helm_ok(&[
        "uninstall",
        "keysmith",
        "--kubeconfig",
        &cp.kubeconfig().to_string_lossy(),
        "--namespace",
        RELEASE_NAMESPACE,
        "--wait",
    ]);
    // The pods stop as the kubelet stops them (their network torn down through CNI).
    wait_for_no_pods(&cp).await;
    node.stop().expect("node teardown");
}
