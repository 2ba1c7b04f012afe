//! Not a test: `hack/controlplane/up.sh` runs this to give a person the same control plane
//! the tests use, until they press Enter (or Ctrl-C, which stops every process as well).

use std::io::BufRead;

use crate::support;

#[test]
#[ignore = "started by hack/controlplane/up.sh"]
fn serve_control_plane_until_enter() {
    let cp = support::shared();
    println!("\nexport KUBECONFIG={}", cp.kubeconfig().display());
    println!(
        "control plane {} is running; press Enter to stop it",
        cp.version()
    );
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
}

/// Not a test: `make demo` (hack/demo.sh) runs this. It starts the control plane, installs
/// the chart's CRDs, ServiceAccount and RBAC, runs the operator with that ServiceAccount's
/// token and the chart's flags, applies every example (the KMIP one against two local
/// PyKMIP servers), waits until they are Ready and prints `keysmith status -A`. With
/// `DEMO_KEEP=1` everything keeps running until Enter.
#[tokio::test]
#[ignore = "started by make demo"]
async fn demo() {
    use crate::chart;
    use crate::kms::{server_secrets, two_servers};
    use crate::support::operator::OperatorProcess;

    let cp = support::shared();
    println!("==> control plane {} is up", cp.version());
    println!("==> the chart's CRDs, ServiceAccount and RBAC");
    print!("{}", chart::install_crds_and_rbac(cp));

    println!("==> two local KMIP servers (PyKMIP) for the KeyManager example");
    let (a, b) = two_servers("demo-kms");
    let examples = "examples";
    chart::kubectl_ok(cp, &["create", "namespace", examples]);
    server_secrets(&cp.client(), examples, &a).await;

    let log = std::env::temp_dir().join("keysmith-demo.log");
    let (metrics_port, health_port) = (
        support::endpoints::free_port(),
        support::endpoints::free_port(),
    );
    let args = chart::chart_operator_args(&chart::render(&[]), metrics_port, health_port);
    println!(
        "==> keysmith {} (as ServiceAccount keysmith; log {})",
        args.join(" "),
        log.display()
    );
    let operator =
        OperatorProcess::start_exactly(&chart::service_account_kubeconfig(cp), &log, &args);

    println!("==> kubectl apply every example");
    let created = support::cluster::apply_examples(cp, examples, Some(&chart::kms_example(&a, &b)));
    chart::all_ready(cp, created, &operator).await;

    println!("==> keysmith status -A");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .args(["status", "-A"])
        .env("KUBECONFIG", cp.kubeconfig())
        .output()
        .expect("keysmith status");
    print!("{}", String::from_utf8_lossy(&status.stdout));
    assert!(status.status.success(), "{}", support::stderr(&status));
    println!("metrics: http://127.0.0.1:{metrics_port}/metrics");

    if std::env::var_os("DEMO_KEEP").is_some() {
        println!("\nexport KUBECONFIG={}", cp.kubeconfig().display());
        println!("everything keeps running; press Enter to stop it");
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
    }
    assert!(operator.terminate(), "keysmith did not exit cleanly");
}
