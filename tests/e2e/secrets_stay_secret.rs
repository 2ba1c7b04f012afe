//! Key material and passwords never reach logs, Events or status — checked on the real
//! binary logging at trace level, over every kind: certificates with a CA, a PKCS#12
//! password and a rotation; an SSH key; keyring PSK, password, OpenVPN and UFTP keys; a KMS
//! passphrase (its push fails: more log lines).

use kube::api::{Api, ListParams};

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;

use keysmith::api::kms_auth_key::KmsAuthKey;
use keysmith::api::{CertificateKeyPair, KeyringSecret, SshKey};

use crate::support::operator::OperatorProcess;
use crate::support::{self, wait};

const PASSWORD: &str = "p12-password-that-must-not-leak";

/// Lines of a PEM body: every line that is not a BEGIN/END marker or a `#` comment.
fn pem_body_lines(pem: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(pem)
        .lines()
        .filter(|l| !l.starts_with("-----") && !l.starts_with('#') && l.len() >= 16)
        .map(str::to_owned)
        .collect()
}

/// An SSH key, four keyring secrets and a KMS key whose key manager's server is unreachable.
const OTHER_KINDS: &str = "apiVersion: keysmith.dev/v1alpha1
kind: SshKey
metadata: {name: leak-ssh}
spec: {comment: leak@example.com}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: leak-psk}
spec: {type: psk, params: {psk: {length: 32}}}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: leak-admin}
spec: {type: remote_access, params: {remote_access: {username: admin}}}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: leak-vpn}
spec: {type: openvpn, params: {openvpn: {}}}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: leak-uftp}
spec: {type: uftp, params: {uftp: {}}}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyManager
metadata: {name: leak-km}
spec:
  servers: [{name: kmip-a, address: \"127.0.0.1:1\", caSecretRef: {name: kmip, key: ca.crt}, clientCertificateSecretRef: {name: kmip}}]
---
apiVersion: keysmith.dev/v1alpha1
kind: KmsAuthKey
metadata: {name: leak-kms}
spec: {keyManagerRef: {name: leak-km}}
";

/// Every `K` of `namespace`, status included, as JSON.
async fn all_as_json<K>(client: &kube::Client, namespace: &str) -> String
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let list = Api::<K>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .expect("list");
    serde_json::to_string(&list.items).expect("json")
}

/// The passphrase of KmsAuthKey `leak-kms`, once it is in its Secret (the push then fails).
async fn kms_passphrase(client: &kube::Client, namespace: &str) -> String {
    let secrets = Api::<Secret>::namespaced(client.clone(), namespace);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let found = secrets.get_opt("leak-kms").await.expect("get Secret");
        if let Some(value) = found
            .and_then(|s| s.data)
            .and_then(|d| d.get("passphrase").cloned())
        {
            return String::from_utf8_lossy(&value.0).into_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no KMS passphrase in 60 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
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
         apiVersion: keysmith.dev/v1alpha1\nkind: CertificateKeyPair\nmetadata:\n  name: leaf\nspec:\n  commonName: leaf.example.com\n  issuerRef: {{name: ca}}\n  keystores: {{pkcs12: {{passwordSecretRef: {{name: p12-password, key: password}}}}}}\n  additionalOutputFormats: [DER, CombinedPEM]\n---\n{OTHER_KINDS}"
    );
    let out = cp.kubectl_stdin(&["apply", "-n", &ns], &manifests).await;
    assert!(out.status.success(), "{}", support::stderr(&out));
    let _: CertificateKeyPair = wait::ready(&client, &ns, "leaf").await;
    let _: SshKey = wait::ready(&client, &ns, "leak-ssh").await;
    for name in ["leak-psk", "leak-admin", "leak-vpn", "leak-uftp"] {
        let _: KeyringSecret = wait::ready(&client, &ns, name).await;
    }
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
    let ssh = wait::secret_data(&client, &ns, "leak-ssh").await;
    secrets_to_find.extend(pem_body_lines(&ssh["ssh-privatekey"]));
    let psk = wait::secret_data(&client, &ns, "leak-psk").await;
    secrets_to_find.push(String::from_utf8_lossy(&psk["psk.hex"]).trim().to_owned());
    secrets_to_find.push(base64::engine::general_purpose::STANDARD.encode(&psk["psk"]));
    let admin = wait::secret_data(&client, &ns, "leak-admin").await;
    secrets_to_find.push(String::from_utf8_lossy(&admin["password"]).into_owned());
    let vpn = wait::secret_data(&client, &ns, "leak-vpn").await;
    secrets_to_find.extend(pem_body_lines(&vpn["static.key"]));
    let uftp = wait::secret_data(&client, &ns, "leak-uftp").await;
    secrets_to_find.extend(pem_body_lines(&uftp["uftp.key"]));
    secrets_to_find.push(kms_passphrase(&client, &ns).await);
    assert!(
        secrets_to_find.iter().all(|s| s.len() >= 16),
        "every needle is long enough"
    );
    assert!(secrets_to_find.len() > 10);

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
    let statuses = [
        all_as_json::<CertificateKeyPair>(&client, &ns).await,
        all_as_json::<SshKey>(&client, &ns).await,
        all_as_json::<KeyringSecret>(&client, &ns).await,
        all_as_json::<KmsAuthKey>(&client, &ns).await,
    ]
    .concat();

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
