//! The `keysmith run` binary: its HTTP endpoints and its shutdown.

use std::time::{Duration, Instant};

use keysmith::api::CertificateKeyPair;

use crate::support::endpoints::{free_port, get};
use crate::support::operator::OperatorProcess;
use crate::support::{self, wait};

fn eventually(port: u16, path: &str, accept: impl Fn(u16, &str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let last = get(port, path);
        if let Some((code, body)) = &last
            && accept(*code, body)
        {
            return body.clone();
        }
        assert!(
            Instant::now() < deadline,
            "GET {path}: last answer {last:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test]
async fn endpoints_report_health_readiness_and_metrics() {
    let cp = support::shared();
    cp.install_crds().await;
    let client = cp.client();
    let ns = cp.namespace(&client, "binary").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (metrics_port, health_port) = (free_port(), free_port());
    let operator = OperatorProcess::start_on(
        cp,
        &ns,
        &dir.path().join("keysmith.log"),
        metrics_port,
        health_port,
    );

    eventually(health_port, "/healthz", |code, body| {
        code == 200 && body == "ok"
    });
    eventually(health_port, "/readyz", |code, _| code == 200);
    assert_eq!(get(health_port, "/nope").map(|(c, _)| c), Some(404));

    let manifest = "apiVersion: keysmith.dev/v1alpha1\nkind: CertificateKeyPair\nmetadata:\n  name: scraped\nspec:\n  commonName: scraped.example.com\n";
    let out = cp.kubectl_stdin(&["apply", "-n", &ns], manifest).await;
    assert!(out.status.success(), "{}", support::stderr(&out));
    let _: CertificateKeyPair = wait::ready(&client, &ns, "scraped").await;

    let series = format!("kind=\"CertificateKeyPair\",namespace=\"{ns}\",name=\"scraped\"");
    let metrics = eventually(metrics_port, "/metrics", |code, body| {
        code == 200 && body.contains(&series)
    });
    for expected in [
        format!("keysmith_ready{{{series}}} 1"),
        format!("keysmith_expiration_timestamp_seconds{{{series}}}"),
        format!("keysmith_next_rotation_timestamp_seconds{{{series}}}"),
        "keysmith_reconcile_total{kind=\"CertificateKeyPair\",result=\"success\"}".to_owned(),
        "keysmith_reconcile_duration_seconds_count{kind=\"CertificateKeyPair\"}".to_owned(),
        "keysmith_generate_duration_seconds_count{kind=\"CertificateKeyPair\",algorithm=\"ECDSA-256\"} 1".to_owned(),
    ] {
        assert!(metrics.contains(&expected), "missing {expected} in:\n{metrics}");
    }

    assert!(
        operator.terminate(),
        "keysmith did not exit cleanly on SIGTERM"
    );
    assert!(
        get(metrics_port, "/metrics").is_none(),
        "endpoints closed after shutdown"
    );
}
