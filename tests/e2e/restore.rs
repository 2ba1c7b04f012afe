//! Backup and restore (docs/backup-restore.md) against the real control plane and a real
//! PyKMIP server: every kind's resources and Secrets (the key namespace's too) are exported
//! as `kubectl get -o json` gives them, without uid, resourceVersion and status; the
//! namespace is deleted (the operator running, as in a real re-creation) and created again;
//! and the export is created back, Secrets first or resources first, with the Secrets'
//! ownerReferences kept or dropped (keysmith's Secrets carry none, which the test asserts
//! before exporting: the "kept" rounds prove that none creeps back for a restore to keep). Afterwards every Secret holds the same bytes, every
//! resource is Ready (reason Restored) within 60 s, the KMIP server holds one object for
//! the key, and the leaves still verify against the restored CA with `openssl verify`.
//!
//! The same with a real backup tool: `velero.rs`. Release 0.1's objects: `upgrade.rs`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use keysmith::api::kms_auth_key::KmsAuthKey;

use crate::kms::{key_manager_at, server_secrets};
use crate::support::kmip::KmipServer;
use crate::support::openssl::{self, Files};
use crate::support::operator::Operator;
use crate::support::{self, ControlPlane};

/// The kinds exported, in the order they are created back.
const KINDS: &str = "keymanagers,certificatekeypairs,sshkeys,keyringsecrets,kmsauthkeys";

/// A CA whose key never leaves the key namespace, two leaves it signs, a certificate with a
/// PKCS#12 keystore and an SSH key encrypted with a passphrase (both encodings carry random
/// salts: only keeping the restored bytes keeps them equal), a PSK and a KMIP
/// authentication key (serverObjects: Retain, so deleting the namespace leaves the key on
/// the server, as losing a cluster does).
pub(crate) fn resources(kmip_address: String) -> String {
    let manager = key_manager_at(&[("kmip", kmip_address)], "");
    format!(
        "apiVersion: v1
kind: Secret
metadata: {{name: passwords}}
stringData: {{keystore: change-me-please, ssh: correct-horse-battery}}
---
apiVersion: keysmith.dev/v1alpha1
kind: CertificateKeyPair
metadata: {{name: java-client}}
spec: {{commonName: java-client, keystores: {{pkcs12: {{passwordSecretRef: {{name: passwords, key: keystore}}}}}}}}
---
apiVersion: keysmith.dev/v1alpha1
kind: CertificateKeyPair
metadata: {{name: root-ca}}
spec: {{commonName: Restore Root CA, isCA: true, privateKeyExport: Denied}}
---
apiVersion: keysmith.dev/v1alpha1
kind: CertificateKeyPair
metadata: {{name: web}}
spec: {{commonName: web.example.com, dnsNames: [web.example.com], issuerRef: {{name: root-ca}}}}
---
apiVersion: keysmith.dev/v1alpha1
kind: CertificateKeyPair
metadata: {{name: api}}
spec: {{commonName: api.example.com, issuerRef: {{name: root-ca}}, target: {{name: api-tls, deletionPolicy: Retain}}}}
---
apiVersion: keysmith.dev/v1alpha1
kind: SshKey
metadata: {{name: deploy}}
spec: {{comment: deploy@ci, passphraseSecretRef: {{name: passwords, key: ssh}}}}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {{name: uplink}}
spec: {{type: psk, params: {{psk: {{length: 32}}}}}}
---
{manager}
---
apiVersion: keysmith.dev/v1alpha1
kind: KmsAuthKey
metadata: {{name: app}}
spec: {{keyManagerRef: {{name: ekm}}, keyTag: app, passphrase: {{length: 32}}, serverObjects: Retain}}
"
    )
}

/// The resources that write Secrets (the KeyManager writes none).
pub(crate) const MATERIAL: [&str; 7] = [
    "certificatekeypair/java-client",
    "certificatekeypair/root-ca",
    "certificatekeypair/web",
    "certificatekeypair/api",
    "sshkey/deploy",
    "keyringsecret/uplink",
    "kmsauthkey/app",
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Order {
    SecretsFirst,
    ResourcesFirst,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum References {
    Kept,
    Dropped,
}

#[tokio::test]
async fn restore_secrets_first_with_owner_references_kept() {
    round("restore-sk", Order::SecretsFirst, References::Kept).await;
}

#[tokio::test]
async fn restore_secrets_first_with_owner_references_dropped() {
    round("restore-sd", Order::SecretsFirst, References::Dropped).await;
}

#[tokio::test]
async fn restore_resources_first_with_owner_references_kept() {
    round("restore-rk", Order::ResourcesFirst, References::Kept).await;
}

#[tokio::test]
async fn restore_resources_first_with_owner_references_dropped() {
    round("restore-rd", Order::ResourcesFirst, References::Dropped).await;
}

/// The state a restore must bring back ([`Scene::snapshot`]).
pub(crate) struct Snapshot {
    pub(crate) secrets: AllData,
    pub(crate) keys: AllData,
    pub(crate) key_id: String,
}

/// Everything a restore test starts from: [`resources`] Ready in `ns`, their key Secret in
/// `keys`, the KMIP server and the operator.
pub(crate) struct Scene {
    pub(crate) client: Client,
    pub(crate) ns: String,
    pub(crate) keys: String,
    pub(crate) server: KmipServer,
    operator: Option<Operator>,
}

impl Scene {
    /// Namespaces `<prefix>-<n>` and `<prefix>-keys-<n>`, a KMIP server, an operator whose
    /// key namespace is the second, and every resource Ready.
    pub(crate) async fn build(cp: &'static ControlPlane, prefix: &str) -> Self {
        cp.install_crds().await;
        let client = cp.client();
        let ns = cp.namespace(&client, prefix).await;
        let keys = cp.namespace(&client, &format!("{prefix}-keys")).await;
        let server = KmipServer::start(&format!("{ns}-kmip"));
        let operator = Self::operator(cp, &ns, &keys);
        server_secrets(&client, &ns, &server).await;
        support::apply(cp, &ns, &resources(server.address())).await;
        wait_all_ready(cp, &ns, Instant::now() + Duration::from_secs(120), None).await;
        Self {
            client,
            ns,
            keys,
            server,
            operator: Some(operator),
        }
    }

    /// Stops the operator (the resources stay as they are).
    pub(crate) fn stop_operator(&mut self) {
        if let Some(operator) = self.operator.take() {
            operator.stop();
        }
    }

    /// Starts the operator again (a new process would do the same: relist, reconcile all).
    pub(crate) fn start_operator(&mut self, cp: &'static ControlPlane) {
        self.stop_operator();
        self.operator = Some(Self::operator(cp, &self.ns, &self.keys));
    }

    /// An operator for `ns` with `keys` as its key namespace.
    pub(crate) fn operator(cp: &'static ControlPlane, ns: &str, keys: &str) -> Operator {
        let key_namespace = keys.to_owned();
        Operator::start_with(cp, ns, move |config| {
            config.settings.key_namespace = key_namespace;
        })
    }

    /// Deletes both namespaces (while the operator runs: the finalizers need it), then stops
    /// the operator.
    /// What a restore must bring back: every Secret's bytes in both namespaces and the KMIP
    /// key id.
    pub(crate) async fn snapshot(&self) -> Snapshot {
        Snapshot {
            secrets: secret_data(&self.client, &self.ns).await,
            keys: secret_data(&self.client, &self.keys).await,
            key_id: kms_key_id(&self.client, &self.ns).await,
        }
    }

    /// Checks a restore against `before`: the same bytes in every Secret and key Secret, the
    /// same KMIP key with one object on the server, and both leaves verifying against the
    /// restored CA with `openssl verify`.
    pub(crate) async fn assert_restored(&self, before: &Snapshot) {
        assert_same_data(
            &secret_data(&self.client, &self.ns).await,
            &before.secrets,
            "every Secret holds the bytes it held",
        );
        assert_same_data(
            &secret_data(&self.client, &self.keys).await,
            &before.keys,
            "the key Secret holds the key it held",
        );
        assert_eq!(
            self.server.python_locate(&before.key_id).len(),
            1,
            "no second object for the key"
        );
        assert_eq!(kms_key_id(&self.client, &self.ns).await, before.key_id);
        let files = Files::new();
        let ca = files.write("ca.crt", &before.secrets["root-ca"]["tls.crt"]);
        for leaf in ["web", "api-tls"] {
            let crt = files.write(&format!("{leaf}.crt"), &before.secrets[leaf]["tls.crt"]);
            let (ok, out) = openssl::verify(&ca, None, &crt);
            assert!(ok, "{leaf}: {out}");
        }
    }

    pub(crate) async fn tear_down(mut self) {
        delete_namespace(&self.client, &self.ns).await;
        delete_namespace(&self.client, &self.keys).await;
        self.stop_operator();
    }
}

async fn round(prefix: &str, order: Order, references: References) {
    let cp = support::shared();
    let mut scene = Scene::build(cp, prefix).await;
    let (client, ns, keys) = (scene.client.clone(), scene.ns.clone(), scene.keys.clone());
    let before = scene.snapshot().await;
    assert_eq!(
        before.keys.len(),
        1,
        "one key Secret: {:?}",
        before.keys.keys()
    );
    for (name, secret) in list_secrets(&client, &ns).await {
        if secret.annotations().contains_key("keysmith.dev/owner") {
            assert!(
                secret.owner_references().is_empty(),
                "Secret {name} carries an ownerReference a restore would bring back stale"
            );
        }
    }
    assert_eq!(scene.server.python_locate(&before.key_id).len(), 1);

    // The backup, as `kubectl get -o json` shows it, without what the API server assigns.
    let exported_resources = export(cp, &["get", KINDS, "-n", &ns], References::Kept).await;
    let exported_secrets = export(cp, &["get", "secrets", "-n", &ns], references).await;
    let exported_keys = export(
        cp,
        &[
            "get",
            "secrets",
            "-n",
            &keys,
            "-l",
            "keysmith.dev/private-key=true",
        ],
        references,
    )
    .await;

    // The namespace goes; the operator's finalizer deletes the key Secret of the CA
    // (deletionPolicy: Delete) on the way.
    delete_namespace(&client, &ns).await;
    assert!(
        secret_data(&client, &keys).await.is_empty(),
        "the key Secret goes with its resource"
    );
    create_namespace(&client, &ns).await;

    let started = Instant::now();
    match order {
        Order::SecretsFirst => {
            create(cp, &keys, &exported_keys).await;
            create(cp, &ns, &exported_secrets).await;
            create(cp, &ns, &exported_resources).await;
        }
        Order::ResourcesFirst => {
            create(cp, &ns, &exported_resources).await;
            // The resources carry keysmith's finalizer and no status: restored, so they
            // wait for their Secrets rather than make new material.
            for object in MATERIAL {
                wait_reason(cp, &ns, object, "AwaitingRestore").await;
            }
            create(cp, &keys, &exported_keys).await;
            create(cp, &ns, &exported_secrets).await;
        }
    }
    wait_all_ready(cp, &ns, started + Duration::from_secs(60), Some("Restored")).await;
    eprintln!(
        "{order:?}, ownerReferences {references:?}: every resource Ready in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    scene.assert_restored(&before).await;
    // Taken back means owned now: the Secrets name the new uids.
    for (name, secret) in list_secrets(&client, &ns).await {
        let Some(owner) = secret.annotations().get("keysmith.dev/owner").cloned() else {
            continue;
        };
        let uid = uid_of(cp, &ns, &owner).await;
        assert_eq!(
            secret.annotations().get("keysmith.dev/owner-uid"),
            Some(&uid),
            "Secret {name} of {owner}"
        );
    }
    // An operator that starts afresh reconciles everything again: the bytes stay (keysmith
    // owns no managedFields of restored data, so only the whole data keeps salted
    // encodings such as the PKCS#12 file as they were).
    scene.start_operator(cp);
    tokio::time::sleep(Duration::from_secs(5)).await;
    wait_all_ready(
        cp,
        &ns,
        Instant::now() + Duration::from_secs(30),
        Some("Restored"),
    )
    .await;
    assert_same_data(
        &secret_data(&client, &ns).await,
        &before.secrets,
        "the bytes after a restart",
    );

    // What a person sees: `keysmith status` lists every resource as restored.
    let out = crate::cli_tools::keysmith(cp.kubeconfig(), &["status", "-n", &ns]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    for object in MATERIAL {
        let (kind, name) = object.split_once('/').expect("kind/name");
        let row = table
            .lines()
            .find(|l| {
                l.split_whitespace()
                    .next()
                    .is_some_and(|r| r.ends_with(&format!("/{name}")))
            })
            .unwrap_or_else(|| panic!("{kind} {name} is not listed:\n{table}"));
        assert!(row.contains("True (Restored)"), "{row}\n{table}");
    }
    scene.tear_down().await;
}

/// The data of every Secret, by Secret name.
pub(crate) type AllData = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

/// Fails naming the Secrets and keys whose bytes differ (never printing the bytes: they
/// are keys, and long).
pub(crate) fn assert_same_data(after: &AllData, before: &AllData, what: &str) {
    let names: std::collections::BTreeSet<&String> = after.keys().chain(before.keys()).collect();
    let mut differ = Vec::new();
    for name in names {
        let (a, b) = (after.get(name), before.get(name));
        let keys: std::collections::BTreeSet<&String> =
            a.into_iter().chain(b).flat_map(|d| d.keys()).collect();
        for key in keys {
            if a.and_then(|d| d.get(key)) != b.and_then(|d| d.get(key)) {
                differ.push(format!("{name}/{key}"));
            }
        }
    }
    assert!(differ.is_empty(), "{what}: these differ: {differ:?}");
}

/// The data of every Secret in `namespace`, by name.
pub(crate) async fn secret_data(
    client: &Client,
    namespace: &str,
) -> BTreeMap<String, BTreeMap<String, Vec<u8>>> {
    list_secrets(client, namespace)
        .await
        .into_iter()
        .map(|(name, secret)| {
            let data = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            (name, data)
        })
        .collect()
}

pub(crate) async fn list_secrets(client: &Client, namespace: &str) -> Vec<(String, Secret)> {
    Api::<Secret>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .expect("list secrets")
        .items
        .into_iter()
        .map(|s| (s.name_any(), s))
        .collect()
}

pub(crate) async fn kms_key_id(client: &Client, namespace: &str) -> String {
    Api::<KmsAuthKey>::namespaced(client.clone(), namespace)
        .get("app")
        .await
        .expect("kmsauthkey")
        .status
        .and_then(|s| s.key_id)
        .expect("key id")
}

/// `kubectl <args> -o json` as a List, without the fields the API server assigns (and
/// without the ownerReferences when `references` says so).
async fn export(cp: &ControlPlane, args: &[&str], references: References) -> Value {
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["-o", "json"]);
    let out = cp.kubectl(full).await;
    assert!(out.status.success(), "{}", support::stderr(&out));
    let mut list: Value = serde_json::from_slice(&out.stdout).expect("json");
    for item in list["items"].as_array_mut().into_iter().flatten() {
        let Some(object) = item.as_object_mut() else {
            continue;
        };
        object.remove("status");
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in [
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "managedFields",
                "generation",
                // Created back with `-n`: the same namespace, or another for a copy.
                "namespace",
            ] {
                meta.remove(field);
            }
            if references == References::Dropped {
                meta.remove("ownerReferences");
            }
        }
    }
    list
}

async fn create(cp: &ControlPlane, namespace: &str, list: &Value) {
    if list["items"].as_array().is_none_or(Vec::is_empty) {
        return;
    }
    let out = cp
        .kubectl_stdin(&["create", "-n", namespace], &list.to_string())
        .await;
    assert!(
        out.status.success(),
        "kubectl create: {}",
        support::stderr(&out)
    );
}

pub(crate) async fn delete_namespace(client: &Client, namespace: &str) {
    let api = Api::<Namespace>::all(client.clone());
    match api.delete(namespace, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return,
        Err(e) => panic!("delete namespace {namespace}: {e}"),
    }
    support::wait::holds(
        &format!("namespace {namespace} is gone"),
        Duration::from_secs(120),
        || async { api.get_opt(namespace).await.is_ok_and(|n| n.is_none()) },
    )
    .await;
}

async fn create_namespace(client: &Client, namespace: &str) {
    let object: Namespace = serde_json::from_value(json!({
        "metadata": {"name": namespace, "labels": {"keysmith.dev/test": "true"}}
    }))
    .expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &object)
        .await
        .expect("create namespace");
}

/// The Ready condition (status, reason) of `kind/name`, with whether it is for the current
/// generation.
async fn ready_of(cp: &ControlPlane, namespace: &str, object: &str) -> Option<(String, String)> {
    let out = cp
        .kubectl(["get", object, "-n", namespace, "-o", "json"])
        .await;
    if !out.status.success() {
        return None;
    }
    let value: Value = serde_json::from_slice(&out.stdout).ok()?;
    let current = value["status"]["observedGeneration"] == value["metadata"]["generation"];
    let ready = value["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?;
    current.then(|| {
        (
            ready["status"].as_str().unwrap_or_default().to_owned(),
            ready["reason"].as_str().unwrap_or_default().to_owned(),
        )
    })
}

async fn wait_reason(cp: &ControlPlane, namespace: &str, object: &str, reason: &str) {
    support::wait::holds(
        &format!("{object} reports {reason}"),
        Duration::from_secs(30),
        || async {
            ready_of(cp, namespace, object)
                .await
                .is_some_and(|(_, r)| r == reason)
        },
    )
    .await;
}

/// Waits until every resource that writes a Secret is Ready (with `reason`, when given)
/// before `deadline`; fails naming those that are not.
pub(crate) async fn wait_all_ready(
    cp: &ControlPlane,
    namespace: &str,
    deadline: Instant,
    reason: Option<&str>,
) {
    loop {
        let mut waiting = Vec::new();
        for object in MATERIAL {
            match ready_of(cp, namespace, object).await {
                Some((status, r)) if status == "True" && reason.is_none_or(|w| w == r) => {}
                other => waiting.push(format!("{object}: {other:?}")),
            }
        }
        if waiting.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "not Ready in time: {waiting:#?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The uid of the resource a `keysmith.dev/owner` value (`<Kind>/<name>`) names.
async fn uid_of(cp: &ControlPlane, namespace: &str, owner: &str) -> String {
    let (kind, name) = owner.split_once('/').expect("Kind/name");
    let out = cp
        .kubectl([
            "get",
            &kind.to_lowercase(),
            name,
            "-n",
            namespace,
            "-o",
            "jsonpath={.metadata.uid}",
        ])
        .await;
    assert!(out.status.success(), "{}", support::stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The takeover rule is narrow: a copy of a Secret whose resource still exists (another
/// namespace, same resource name, not even watched by the operator of the copy) is not
/// taken over, and not modified.
#[tokio::test]
async fn a_copied_secret_whose_resource_still_exists_is_not_taken_over() {
    let cp = support::shared();
    cp.install_crds().await;
    let client = cp.client();
    let origin = cp.namespace(&client, "restore-origin").await;
    let copy = cp.namespace(&client, "restore-copy").await;
    let operator = Operator::start(cp, &origin);
    let copy_operator = Operator::start(cp, &copy);
    let web = "apiVersion: keysmith.dev/v1alpha1\nkind: CertificateKeyPair\nmetadata: {name: web}\nspec: {commonName: web.example.com}\n";
    support::apply(cp, &origin, web).await;
    wait_all_ready_one(cp, &origin, "certificatekeypair/web").await;

    // The Secret copied into the other namespace as it is, then a resource of the same name.
    let exported = export(cp, &["get", "secrets", "-n", &origin], References::Kept).await;
    create(cp, &copy, &exported).await;
    let secrets = Api::<Secret>::namespaced(client.clone(), &copy);
    let before = secrets.get("web").await.expect("copied Secret");
    support::apply(cp, &copy, web).await;
    wait_reason(cp, &copy, "certificatekeypair/web", "SecretConflict").await;
    let out = cp
        .kubectl([
            "get",
            "certificatekeypair/web",
            "-n",
            &copy,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].message}",
        ])
        .await;
    let message = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        message.contains(&format!("CertificateKeyPair/web of namespace {origin}")),
        "{message}"
    );
    // A while later it is still the same object, untouched.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = secrets.get("web").await.expect("copied Secret");
    assert_eq!(
        after.resource_version(),
        before.resource_version(),
        "not modified"
    );
    assert_eq!(after.data, before.data);
    delete_namespace(&client, &copy).await;
    delete_namespace(&client, &origin).await;
    copy_operator.stop();
    operator.stop();
}

async fn wait_all_ready_one(cp: &ControlPlane, namespace: &str, object: &str) {
    support::wait::holds(
        &format!("{object} is Ready"),
        Duration::from_secs(60),
        || async {
            ready_of(cp, namespace, object)
                .await
                .is_some_and(|(status, _)| status == "True")
        },
    )
    .await;
}
