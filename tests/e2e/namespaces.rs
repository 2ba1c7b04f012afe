//! `--namespaces`: the operator serves exactly the listed namespaces, and with only
//! namespaced Roles in them (what a Helm chart grants) it works and makes no cluster-wide
//! request at all.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;

use keysmith::api::CertificateKeyPair;
use keysmith::api::common::reason;
use keysmith::reconcile::namespaces::WatchedNamespaces;

use crate::support::audit::{self, AuditEvent};
use crate::support::endpoints::{free_port, get};
use crate::support::operator::{Operator, OperatorProcess};
use crate::support::wait::{self, ready_condition};
use crate::support::{self, ControlPlane, apply};

fn ckp(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: keysmith.dev/v1alpha1\nkind: CertificateKeyPair\nmetadata:\n  name: {name}\nspec:\n{spec}\n"
    )
}

/// Asserts that `namespace/name` stays untouched: no status, no Secret. Call it once the
/// operator has visibly worked on everything it watches.
async fn untouched(client: &Client, namespace: &str, name: &str) {
    tokio::time::sleep(Duration::from_secs(3)).await;
    let api = Api::<CertificateKeyPair>::namespaced(client.clone(), namespace);
    let object = api.get(name).await.expect("get");
    assert!(
        object.status.is_none(),
        "{namespace}/{name} got a status: {:?}",
        object.status
    );
    let secrets = Api::<Secret>::namespaced(client.clone(), namespace);
    assert!(
        secrets.get_opt(name).await.expect("get").is_none(),
        "{namespace}/{name} got a Secret"
    );
}

#[tokio::test]
async fn an_operator_serves_only_its_namespaces() {
    let cp = support::shared();
    cp.install_crds().await;
    let client = cp.client();
    let a = cp.namespace(&client, "ns-a").await;
    let b = cp.namespace(&client, "ns-b").await;
    let c = cp.namespace(&client, "ns-c").await;
    let watched = WatchedNamespaces::new([a.clone(), b.clone()]);
    let _op = Operator::start_with(cp, &a, |config| config.settings.namespaces = watched);

    let team_ca =
        format!("  commonName: Team CA\n  isCA: true\n  ca: {{allowedNamespaces: [{b}]}}");
    apply(cp, &a, &ckp("team-ca", &team_ca)).await;
    let web = format!("  commonName: web\n  issuerRef: {{name: team-ca, namespace: {a}}}");
    apply(cp, &b, &ckp("web", &web)).await;
    let stray = format!("  commonName: stray\n  issuerRef: {{name: other-ca, namespace: {c}}}");
    apply(cp, &b, &ckp("stray", &stray)).await;
    apply(
        cp,
        &c,
        &ckp("other-ca", "  commonName: Other CA\n  isCA: true"),
    )
    .await;
    apply(cp, &c, &ckp("ignored", "  commonName: ignored")).await;

    // Both watched namespaces are served, and a CA of one signs in the other.
    let _: CertificateKeyPair = wait::ready(&client, &a, "team-ca").await;
    let _: CertificateKeyPair = wait::ready(&client, &b, "web").await;
    // An issuer outside the list is refused by name, not with an API error.
    let refused: CertificateKeyPair =
        wait::not_ready_with(&client, &b, "stray", reason::FORBIDDEN).await;
    let message = ready_condition(&refused).map(|c| c.message.clone());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains(&c) && m.contains("--namespaces")),
        "{message:?}"
    );
    // The third namespace is not served at all.
    untouched(&client, &c, "ignored").await;
    untouched(&client, &c, "other-ca").await;
}

/// The namespaced permissions a Helm chart grants the operator in each namespace it watches.
fn role(namespace: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: keysmith, namespace: {namespace}}}
rules:
- apiGroups: [keysmith.dev]
  resources: [certificatekeypairs, sshkeys, keyringsecrets, keymanagers, kmsauthkeys]
  verbs: [get, list, watch, update, patch]
- apiGroups: [keysmith.dev]
  resources: [certificatekeypairs/status, sshkeys/status, keyringsecrets/status,
              keymanagers/status, kmsauthkeys/status, kmsauthkeys/finalizers]
  verbs: [get, update, patch]
- apiGroups: ['']
  resources: [secrets]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: ['', events.k8s.io]
  resources: [events]
  verbs: [create, patch]
"
    )
}

fn role_binding(namespace: &str, account_namespace: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: keysmith, namespace: {namespace}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: keysmith}}
subjects:
- {{kind: ServiceAccount, name: keysmith, namespace: {account_namespace}}}
"
    )
}

/// A ServiceAccount `keysmith` in `home` bound to [`role`] in each of `namespaces`; returns
/// a kubeconfig with its token and its user name.
async fn restricted_identity(
    cp: &ControlPlane,
    home: &str,
    namespaces: &[&str],
) -> (PathBuf, String) {
    let mut manifests = format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: keysmith, namespace: {home}}}\n"
    );
    for namespace in namespaces {
        manifests.push_str(&format!(
            "---\n{}---\n{}",
            role(namespace),
            role_binding(namespace, home)
        ));
    }
    let out = cp.kubectl_stdin(&["apply"], &manifests).await;
    assert!(out.status.success(), "{}", support::stderr(&out));
    let out = cp
        .kubectl(["create", "token", "keysmith", "-n", home, "--duration=1h"])
        .await;
    assert!(out.status.success(), "{}", support::stderr(&out));
    let token = String::from_utf8(out.stdout)
        .expect("token")
        .trim()
        .to_owned();
    let path = cp.token_kubeconfig(&format!("restricted-{home}.kubeconfig"), &token);
    (path, format!("system:serviceaccount:{home}:keysmith"))
}

/// The operator binary as the ServiceAccount `keysmith` of `home`, bound to [`role`] in
/// `roles`, serving `home` (also its key namespace) and `other`, logging to
/// `dir/keysmith.log`, its probes on a free port: returns it, its user name and that port.
async fn start_restricted(
    cp: &ControlPlane,
    [home, other]: [&str; 2],
    roles: &[&str],
    dir: &std::path::Path,
) -> (OperatorProcess, String, u16) {
    let (kubeconfig, user) = restricted_identity(cp, home, roles).await;
    let health = free_port();
    let also_other = format!("--namespaces={other}");
    let operator = OperatorProcess::start_as(
        &kubeconfig,
        home,
        &dir.join("keysmith.log"),
        (0, health),
        &[&also_other],
    );
    (operator, user, health)
}

/// The status code of a GET of `path`.
fn status_of(port: u16, path: &str) -> Option<u16> {
    get(port, path).map(|(code, _)| code)
}

async fn wait_ready_probe(port: u16, operator: &OperatorProcess) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while status_of(port, "/readyz") != Some(200) {
        assert!(
            Instant::now() < deadline,
            "/readyz never 200; log:\n{}",
            operator.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn is_list_or_watch_in(event: &AuditEvent, namespace: &str, resource: &str) -> bool {
    let object = event.object_ref.as_ref();
    matches!(event.verb.as_str(), "list" | "watch")
        && object
            .is_some_and(|o| o.resource == resource && o.namespace.as_deref() == Some(namespace))
}

#[tokio::test]
async fn with_only_namespaced_roles_the_binary_asks_nothing_cluster_wide() {
    let cp = support::shared();
    cp.install_crds().await;
    let client = cp.client();
    let a = cp.namespace(&client, "rbac-a").await;
    let b = cp.namespace(&client, "rbac-b").await;
    let c = cp.namespace(&client, "rbac-c").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (operator, user, health) = start_restricted(cp, [&a, &b], &[&a, &b], dir.path()).await;
    // Ready only once every cache (each merged from two namespaced watches) has synced.
    wait_ready_probe(health, &operator).await;

    apply(cp, &a, &ckp("first", "  commonName: first")).await;
    apply(cp, &b, &ckp("second", "  commonName: second")).await;
    apply(cp, &c, &ckp("third", "  commonName: third")).await;
    let _: CertificateKeyPair = wait::ready(&client, &a, "first").await;
    let _: CertificateKeyPair = wait::ready(&client, &b, "second").await;
    untouched(&client, &c, "third").await;

    let requests = audit::requests_by(cp.audit_log(), &user);
    let outside: Vec<String> = requests
        .iter()
        .filter(|e| {
            let namespace = e.object_ref.as_ref().and_then(|o| o.namespace.as_deref());
            namespace != Some(a.as_str()) && namespace != Some(b.as_str())
        })
        .map(|e| format!("{} {}", e.describe(), e.request_u_r_i))
        .collect();
    assert!(
        outside.is_empty(),
        "requests outside {a} and {b}: {outside:#?}"
    );
    let forbidden: Vec<String> = requests
        .iter()
        .filter(|e| e.response_status.as_ref().and_then(|s| s.code) == Some(403))
        .map(|e| e.request_u_r_i.clone())
        .collect();
    assert!(forbidden.is_empty(), "forbidden requests: {forbidden:#?}");
    // The audit log does show the reads, so the checks above are not vacuous.
    for namespace in [&a, &b] {
        for resource in ["certificatekeypairs", "secrets", "kmsauthkeys"] {
            assert!(
                requests
                    .iter()
                    .any(|e| is_list_or_watch_in(e, namespace, resource)),
                "no list/watch of {resource} in {namespace} audited"
            );
        }
    }
    assert!(operator.terminate(), "keysmith did not exit cleanly");
}

#[tokio::test]
async fn an_operator_whose_caches_never_fill_still_stops_on_sigterm() {
    let cp = support::shared();
    cp.install_crds().await;
    let client = cp.client();
    let a = cp.namespace(&client, "nosync-a").await;
    let b = cp.namespace(&client, "nosync-b").await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Roles in `a` only: every list in `b` is refused, so no cache is ever filled (a
    // misconfigured RBAC, or an API server that does not answer yet).
    let (operator, user, health) = start_restricted(cp, [&a, &b], &[&a], dir.path()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let refused_in_b = || {
        audit::requests_by(cp.audit_log(), &user).iter().any(|e| {
            e.response_status.as_ref().and_then(|s| s.code) == Some(403)
                && is_list_or_watch_in(e, &b, "certificatekeypairs")
        })
    };
    while !refused_in_b() {
        assert!(
            Instant::now() < deadline,
            "no refused list in {b}; log:\n{}",
            operator.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_ne!(status_of(health, "/readyz"), Some(200), "caches synced");
    let stopped = operator.terminate();
    let log = std::fs::read_to_string(dir.path().join("keysmith.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        stopped,
        "keysmith did not exit cleanly on SIGTERM; the log ends:\n{}",
        lines[lines.len().saturating_sub(30)..].join("\n")
    );
}
