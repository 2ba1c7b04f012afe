//! KmsAuthKey and KeyManager against the real control plane and two real PyKMIP 0.11
//! servers: registration on every server (read back with PyKMIP's own client), partial and
//! failed pushes, deletion, crash safety, and the runtime refusals.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Secret};
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use keysmith::api::common::{ConditionStatus, reason};
use keysmith::api::key_manager::KeyManager;
use keysmith::api::kms_auth_key::{KmsAuthKey, PushState};

use crate::support::kmip::{KmipCa, KmipServer};
use crate::support::operator::OperatorProcess;
use crate::support::wait::{self, HasCommonStatus, ready_condition};
use crate::support::{self, apply, setup};

/// The CA Secret and client certificate Secret the KeyManager names.
pub(crate) async fn server_secrets(client: &Client, ns: &str, server: &KmipServer) {
    let secrets = Api::<Secret>::namespaced(client.clone(), ns);
    let ca = serde_json::from_value::<Secret>(json!({
        "metadata": {"name": "kmip-ca"},
        "stringData": {"ca.crt": server.ca_pem()},
    }))
    .expect("ca secret");
    let tls = serde_json::from_value::<Secret>(json!({
        "metadata": {"name": "kmip-client"},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": server.client_cert_pem(), "tls.key": server.client_key_pem()},
    }))
    .expect("tls secret");
    for secret in [ca, tls] {
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .expect("create secret");
    }
}

fn key_manager(servers: &[&KmipServer], extra: &str) -> String {
    let at: Vec<(&str, String)> = servers.iter().map(|s| (s.name(), s.address())).collect();
    key_manager_at(&at, extra)
}

/// KeyManager `ekm` with these (name, address) servers, all of the CA and client
/// certificate of [`server_secrets`].
pub(crate) fn key_manager_at(servers: &[(&str, String)], extra: &str) -> String {
    let list: Vec<String> = servers
        .iter()
        .map(|(name, address)| {
            format!(
                "  - name: {name}\n    address: \"{address}\"\n    caSecretRef: {{name: kmip-ca, key: ca.crt}}\n    clientCertificateSecretRef: {{name: kmip-client}}\n"
            )
        })
        .collect();
    format!(
        "apiVersion: keysmith.dev/v1alpha1\nkind: KeyManager\nmetadata: {{name: ekm}}\nspec:\n{extra}  servers:\n{}",
        list.concat()
    )
}

/// KmsAuthKey `name` of KeyManager `ekm` with key tag `tag` and a generated passphrase.
pub(crate) fn auth_key(name: &str, tag: &str) -> String {
    format!(
        "apiVersion: keysmith.dev/v1alpha1\nkind: KmsAuthKey\nmetadata: {{name: {name}}}\nspec:\n  keyManagerRef: {{name: ekm}}\n  keyTag: {tag}\n  passphrase: {{length: 32}}\n"
    )
}

fn servers_of(key: &KmsAuthKey) -> BTreeMap<String, (PushState, Option<String>)> {
    key.status
        .iter()
        .flat_map(|s| &s.servers)
        .map(|s| (s.name.clone(), (s.state, s.unique_identifier.clone())))
        .collect()
}

fn ready_reason(key: &KmsAuthKey) -> Option<String> {
    ready_condition(key).map(|c| c.reason.clone())
}

/// Waits (90 s) until KmsAuthKey `name` is Ready with `wanted` as reason.
pub(crate) async fn wait_reason(
    client: &Client,
    ns: &str,
    name: &str,
    wanted: &'static str,
) -> KmsAuthKey {
    wait::until(
        client,
        ns,
        name,
        Duration::from_secs(90),
        |k: &KmsAuthKey| ready_reason(k).as_deref() == Some(wanted),
    )
    .await
}

/// Two servers of one CA (one client identity for both).
pub(crate) fn two_servers(prefix: &str) -> (KmipServer, KmipServer) {
    let ca: Arc<KmipCa> = KmipCa::new(&format!("{prefix}-ca"));
    (
        KmipServer::start_with_ca(&format!("{prefix}-a"), ca.clone()),
        KmipServer::start_with_ca(&format!("{prefix}-b"), ca),
    )
}

#[tokio::test]
async fn keys_are_registered_everywhere_partially_or_nowhere_and_destroyed_on_delete() {
    let (mut a, mut b) = two_servers("kms-push");
    let (cp, client, ns, _op) = setup("kms-push").await;
    server_secrets(&client, &ns, &a).await;
    apply(cp, &ns, &key_manager(&[&a, &b], "")).await;
    apply(cp, &ns, &auth_key("nse-auth-1", "Authentication-Key-01")).await;

    // Registered on both, with the passphrase of the Secret (read back by PyKMIP).
    let key = wait_reason(&client, &ns, "nse-auth-1", "Registered").await;
    let data = wait::secret_data(&client, &ns, "nse-auth-1").await;
    let key_id = String::from_utf8(data["key-id"].clone()).expect("utf-8");
    assert_eq!(key_id.len(), 80);
    assert_eq!(data["key-tag"], b"Authentication-Key-01");
    assert_eq!(data["passphrase"].len(), 32);
    let servers = servers_of(&key);
    for server in [&a, &b] {
        let (state, uid) = servers[server.name()].clone();
        assert_eq!(state, PushState::Registered);
        let uid = uid.expect("unique identifier");
        assert_eq!(
            server.python_locate(&key_id),
            vec![uid.clone()],
            "exactly one object"
        );
        assert_eq!(
            server.python_get(&uid),
            data["passphrase"],
            "the Secret's passphrase"
        );
    }
    let status = serde_json::to_string(&key.status).expect("json");
    let passphrase = String::from_utf8(data["passphrase"].clone()).expect("ascii");
    assert!(
        !status.contains(&passphrase),
        "the passphrase is not in the status"
    );
    let manager: KeyManager = wait::until(
        &client,
        &ns,
        "ekm",
        Duration::from_secs(60),
        |m: &KeyManager| {
            m.status.as_ref().and_then(|s| s.auth_key_count) == Some(1) && wait::is_ready(m)
        },
    )
    .await;
    assert!(
        manager
            .status
            .iter()
            .flat_map(|s| &s.servers)
            .all(|s| s.reachable)
    );

    // One server down: a new key is PartiallyPushed (Ready), then Registered after restart.
    b.stop();
    apply(cp, &ns, &auth_key("nse-auth-2", "Authentication-Key-02")).await;
    let partial = wait_reason(&client, &ns, "nse-auth-2", reason::PARTIALLY_PUSHED).await;
    assert!(wait::is_ready(&partial));
    assert_eq!(servers_of(&partial)[b.name()].0, PushState::Failed);
    b.restart();
    let _ = wait_reason(&client, &ns, "nse-auth-2", "Registered").await;

    // No server up: PushFailed with the ONTAP-style message.
    a.stop();
    b.stop();
    apply(cp, &ns, &auth_key("nse-auth-3", "Authentication-Key-03")).await;
    let failed = wait_reason(&client, &ns, "nse-auth-3", reason::PUSH_FAILED).await;
    let condition = ready_condition(&failed).expect("Ready");
    assert_eq!(condition.status, ConditionStatus::False);
    assert_eq!(
        condition.message,
        "failed to push authentication key to any registered key server"
    );
    a.restart();
    b.restart();
    let _ = wait_reason(&client, &ns, "nse-auth-3", "Registered").await;

    // Rotation registers a new key everywhere, then destroys the old one.
    let before = wait::secret_data(&client, &ns, "nse-auth-2").await;
    let old_id = String::from_utf8(before["key-id"].clone()).expect("utf-8");
    Api::<KmsAuthKey>::namespaced(client.clone(), &ns)
        .patch(
            "nse-auth-2",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                json!({"metadata": {"annotations": {"keysmith.dev/rotate": "1"}}}),
            ),
        )
        .await
        .expect("annotate");
    let rotated: KmsAuthKey = wait::until(
        &client,
        &ns,
        "nse-auth-2",
        Duration::from_secs(90),
        |k: &KmsAuthKey| {
            k.common().and_then(|c| c.last_rotation_token.as_deref()) == Some("1")
                && ready_reason(k).as_deref() == Some("Registered")
        },
    )
    .await;
    let after = wait::secret_data(&client, &ns, "nse-auth-2").await;
    let new_id = String::from_utf8(after["key-id"].clone()).expect("utf-8");
    assert_ne!(new_id, old_id);
    assert_ne!(after["passphrase"], before["passphrase"]);
    for server in [&a, &b] {
        let uid = servers_of(&rotated)[server.name()].1.clone().expect("uid");
        assert_eq!(server.python_get(&uid), after["passphrase"]);
        assert!(
            server.python_locate(&old_id).is_empty(),
            "the old key is destroyed"
        );
    }

    // A new tag is written without a new key.
    Api::<KmsAuthKey>::namespaced(client.clone(), &ns)
        .patch(
            "nse-auth-2",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"keyTag": "Renamed-Key-02"}})),
        )
        .await
        .expect("patch");
    let renamed: KmsAuthKey = wait::until(
        &client,
        &ns,
        "nse-auth-2",
        Duration::from_secs(60),
        |k: &KmsAuthKey| {
            k.status.as_ref().and_then(|s| s.key_tag.as_deref()) == Some("Renamed-Key-02")
        },
    )
    .await;
    let tagged = wait::secret_data(&client, &ns, "nse-auth-2").await;
    assert_eq!(tagged["key-tag"], b"Renamed-Key-02");
    assert_eq!(tagged["key-id"], after["key-id"], "same key");
    assert_eq!(
        renamed.common().and_then(|c| c.revision),
        rotated.common().and_then(|c| c.revision)
    );

    // Rotation with a server down: the old key stays on it until the new one is there.
    b.stop();
    let before3 = wait::secret_data(&client, &ns, "nse-auth-3").await;
    let old3 = String::from_utf8(before3["key-id"].clone()).expect("utf-8");
    Api::<KmsAuthKey>::namespaced(client.clone(), &ns)
        .patch(
            "nse-auth-3",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                json!({"metadata": {"annotations": {"keysmith.dev/rotate": "1"}}}),
            ),
        )
        .await
        .expect("annotate");
    let _ = wait_reason(&client, &ns, "nse-auth-3", reason::PARTIALLY_PUSHED).await;
    assert!(
        a.python_locate(&old3).is_empty(),
        "replaced on the server that has the new key"
    );
    b.restart();
    let _ = wait_reason(&client, &ns, "nse-auth-3", "Registered").await;
    assert!(
        b.python_locate(&old3).is_empty(),
        "replaced once the new key is registered"
    );

    // Deletion revokes and destroys the objects on both servers.
    Api::<KmsAuthKey>::namespaced(client.clone(), &ns)
        .delete("nse-auth-1", &DeleteParams::default())
        .await
        .expect("delete");
    wait::gone::<KmsAuthKey>(&client, &ns, "nse-auth-1", Duration::from_secs(90)).await;
    for server in [&a, &b] {
        assert!(
            server.python_locate(&key_id).is_empty(),
            "{} still has the key",
            server.name()
        );
    }
}

#[tokio::test]
async fn a_crash_between_secret_and_register_leaves_one_object_per_server() {
    let (a, b) = two_servers("kms-crash");
    let cp = support::shared();
    cp.install_crds().await;
    let client = cp.client();
    let ns = cp.namespace(&client, "kms-crash").await;
    let logs = tempfile::tempdir().expect("tempdir");
    // The client certificate Secret is missing at first: the key is decided and written,
    // but cannot reach any server.
    apply(cp, &ns, &key_manager(&[&a, &b], "")).await;
    apply(cp, &ns, &auth_key("crash", "Crash-Key")).await;
    let operator = OperatorProcess::start(cp, &ns, &logs.path().join("first.log"));
    let _ = wait_reason(&client, &ns, "crash", reason::PUSH_FAILED).await;
    let data = wait::secret_data(&client, &ns, "crash").await;
    let key_id = String::from_utf8(data["key-id"].clone()).expect("utf-8");
    let passphrase = data["passphrase"].clone();
    // The operator dies right after registering, before recording it: the objects exist on
    // the servers, the status does not know them.
    drop(operator);
    let registered: Vec<String> = [&a, &b]
        .iter()
        .map(|s| s.python_register_password(&key_id, &passphrase))
        .collect();
    server_secrets(&client, &ns, &a).await;
    let operator = OperatorProcess::start(cp, &ns, &logs.path().join("second.log"));
    let key = wait_reason(&client, &ns, "crash", "Registered").await;
    let servers = servers_of(&key);
    for (server, uid) in [&a, &b].iter().zip(registered) {
        assert_eq!(
            server.python_locate(&key_id),
            vec![uid.clone()],
            "no duplicate"
        );
        assert_eq!(servers[server.name()].1.as_deref(), Some(uid.as_str()));
    }
    // The passphrase never reaches the logs.
    let secret_text = String::from_utf8(passphrase).expect("ascii");
    assert!(
        !operator.log().contains(&secret_text),
        "passphrase in the log"
    );
    let first = std::fs::read_to_string(logs.path().join("first.log")).unwrap_or_default();
    assert!(!first.contains(&secret_text), "passphrase in the first log");
    assert!(operator.terminate(), "clean exit");
}

#[tokio::test]
async fn refusals_name_the_reason() {
    let (cp, client, ns, _op) = setup("kms-refuse").await;
    let managers = "apiVersion: keysmith.dev/v1alpha1
kind: KeyManager
metadata: {name: switched-off}
spec:
  enabled: false
  servers: [{name: a, address: \"127.0.0.1:1\", caSecretRef: {name: c, key: ca.crt}, clientCertificateSecretRef: {name: c}}]
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyManager
metadata: {name: empty}
spec: {}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyManager
metadata: {name: small}
spec:
  maxAuthKeys: 1
  servers: [{name: a, address: \"127.0.0.1:1\", caSecretRef: {name: c, key: ca.crt}, clientCertificateSecretRef: {name: c}}]
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyManager
metadata: {name: open}
spec:
  servers: [{name: a, address: \"127.0.0.1:1\", caSecretRef: {name: c, key: ca.crt}, clientCertificateSecretRef: {name: c}}]
";
    apply(cp, &ns, managers).await;
    let key = |name: &str, manager: &str, extra: &str| {
        format!(
            "apiVersion: keysmith.dev/v1alpha1\nkind: KmsAuthKey\nmetadata: {{name: {name}}}\nspec:\n  keyManagerRef: {{name: {manager}}}\n{extra}"
        )
    };
    apply(cp, &ns, &key("disabled", "switched-off", "")).await;
    apply(cp, &ns, &key("serverless", "empty", "")).await;
    apply(cp, &ns, &key("missing", "nope", "")).await;
    apply(cp, &ns, &key("first", "small", "")).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    apply(cp, &ns, &key("second", "small", "")).await;
    let secret = serde_json::from_value::<Secret>(json!({
        "metadata": {"name": "brought"},
        "stringData": {"passphrase": "passphrase-with-é-in-it"},
    }))
    .expect("secret");
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .expect("create");
    apply(
        cp,
        &ns,
        &key(
            "non-ascii",
            "open",
            "  passphraseSecretRef: {name: brought, key: passphrase}\n",
        ),
    )
    .await;

    let disabled = wait_reason(&client, &ns, "disabled", reason::KEY_MANAGER_DISABLED).await;
    let message = ready_condition(&disabled)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.starts_with("external key management is not enabled"),
        "{message}"
    );
    let _ = wait_reason(&client, &ns, "serverless", reason::NO_KEY_SERVERS).await;
    let _ = wait_reason(&client, &ns, "missing", reason::REFERENCE_NOT_FOUND).await;
    let over = wait_reason(&client, &ns, "second", reason::KEY_MANAGER_LIMIT_REACHED).await;
    let message = ready_condition(&over)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains("allows 1"), "{message}");
    // The first key is admitted (it then fails to reach the unreachable server).
    let _ = wait_reason(&client, &ns, "first", reason::PUSH_FAILED).await;
    // A brought passphrase is checked: the message says what is wrong, not what it is.
    let bad = wait_reason(&client, &ns, "non-ascii", reason::INVALID_SPEC).await;
    let message = ready_condition(&bad)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("not printable ASCII at position 17"),
        "{message}"
    );
    assert!(!message.contains("passphrase-with"), "{message}");
    // Events name the reasons and never carry the passphrase.
    let events = wait::events(&client, &ns, |events| {
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some(reason::KEY_MANAGER_DISABLED))
    })
    .await;
    for event in &events {
        let note = event.message.clone().unwrap_or_default();
        assert!(!note.contains("passphrase-with"), "{note}");
    }
}

#[tokio::test]
async fn the_example_becomes_ready_against_two_local_servers() {
    let dir = support::repo_root().join("examples/kms");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("examples dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["key-manager-and-auth-key.yaml"],
        "a new example needs a test here"
    );
    let (a, b) = two_servers("kms-example");
    let (cp, client, ns, _op) = setup("kms-example").await;
    server_secrets(&client, &ns, &a).await;
    let manifest = std::fs::read_to_string(dir.join(&files[0]))
        .expect("example")
        .replace("kmip-a.example.com:5696", &a.address())
        .replace("kmip-b.example.com:5696", &b.address());
    apply(cp, &ns, &manifest).await;
    let key = wait_reason(&client, &ns, "nse-auth-1", "Registered").await;
    assert_eq!(servers_of(&key).len(), 2);
    let data = wait::secret_data(&client, &ns, "nse-auth-1").await;
    let key_id = String::from_utf8(data["key-id"].clone()).expect("utf-8");
    // A Pushed Event names the servers the key was registered on.
    let pushed_on = |events: &[Event], server: &str| {
        events.iter().any(|e| {
            e.reason.as_deref() == Some("Pushed")
                && e.message
                    .as_deref()
                    .is_some_and(|note| note.contains(&key_id) && note.contains(server))
        })
    };
    wait::events(&client, &ns, |events| {
        pushed_on(events, "kmip-a") && pushed_on(events, "kmip-b")
    })
    .await;
    for server in [&a, &b] {
        assert_eq!(server.python_locate(&key_id).len(), 1);
    }
    assert!(
        key.status
            .as_ref()
            .and_then(|s| s.common.next_rotation_time.as_ref())
            .is_some()
    );
}
