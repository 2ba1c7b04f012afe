//! Key material and passwords never reach logs, Events or status — checked on the real
//! binary logging at trace level.

use kube::api::{Api, ListParams};

use keysmith::api::CertificateKeyPair;

use crate::support::operator::OperatorProcess;
use crate::support::{self, wait};

const PASSWORD: &str = "p12-password-that-must-not-leak";

/// Lines of a PEM body: every line that is not a BEGIN/END marker.
fn pem_body_lines(pem: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(pem)
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn no_key_material_in_logs_events_or_status_at_trace_level() {
    let cp = support::shared();
    cp.install_crds().await;
    let client = cp.client();
    let ns = cp.namespace(&client, "no-leaks").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let operator = OperatorProcess::start(cp, &ns, &dir.path().join("keysmith.log"));

    let manifests = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: p12-password\nstringData:\n  password: {PASSWORD}\n---\n\
         apiVersion: keysmith.dev/v1alpha1\nkind: CertificateKeyPair\nmetadata:\n  name: ca\nspec:\n  commonName: Leak Test CA\n  isCA: true\n---\n\
         apiVersion: keysmith.dev/v1alpha1\nkind: CertificateKeyPair\nmetadata:\n  name: leaf\nspec:\n  commonName: leaf.example.com\n  issuerRef: {{name: ca}}\n  keystores: {{pkcs12: {{passwordSecretRef: {{name: p12-password, key: password}}}}}}\n  additionalOutputFormats: [DER, CombinedPEM]\n"
    );
    let out = cp.kubectl_stdin(&["apply", "-n", &ns], &manifests).await;
    assert!(out.status.success(), "{}", support::stderr(&out));
    let _: CertificateKeyPair = wait::ready(&client, &ns, "leaf").await;
    // A rotation and a conflict produce more log lines and events.
    let out = cp
        .kubectl(["annotate", "-n", &ns, "ckp/leaf", "keysmith.dev/rotate=now"])
        .await;
    assert!(out.status.success(), "{}", support::stderr(&out));
    let _: CertificateKeyPair = wait::until(
        &client,
        &ns,
        "leaf",
        std::time::Duration::from_secs(60),
        |c: &CertificateKeyPair| {
            c.status
                .as_ref()
                .and_then(|s| s.common.last_rotation_token.as_deref())
                == Some("now")
        },
    )
    .await;

    let mut secrets_to_find: Vec<String> = vec![PASSWORD.to_owned()];
    for name in ["ca", "leaf"] {
        let data = wait::secret_data(&client, &ns, name).await;
        secrets_to_find.extend(pem_body_lines(&data["tls.key"]));
    }
    assert!(secrets_to_find.len() > 3);

    let log_lines_before_stop = operator.log().lines().count();
    assert!(
        operator.terminate(),
        "keysmith did not exit cleanly on SIGTERM"
    );
    let log = std::fs::read_to_string(dir.path().join("keysmith.log")).expect("log");
    assert!(
        log.lines().count() >= log_lines_before_stop && log.contains("TRACE"),
        "trace logging was on"
    );

    let events = wait::events(&client, &ns, |events| !events.is_empty()).await;
    let events = serde_json::to_string(&events).expect("events json");
    let statuses = Api::<CertificateKeyPair>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .expect("list");
    let statuses = serde_json::to_string(&statuses.items).expect("status json");

    for secret in &secrets_to_find {
        assert!(
            !log.contains(secret.as_str()),
            "key material or password in the log"
        );
        assert!(
            !events.contains(secret.as_str()),
            "key material or password in an event"
        );
        assert!(
            !statuses.contains(secret.as_str()),
            "key material or password in a status"
        );
    }
}
