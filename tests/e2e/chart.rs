//! The Helm chart and the manifests rendered from it: `helm lint`, `helm install` into a real
//! API server, the operator running with nothing but the chart's ServiceAccount and RBAC over
//! every example (each permission used, none missing), its metrics, `helm uninstall` keeping
//! CRDs and users' resources, `kubectl apply -k deploy/`, the restricted Pod Security
//! Standard, and the optional ValidatingAdmissionPolicy.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::kms::{server_secrets, two_servers};
use crate::support::audit::{self, AuditEvent};
use crate::support::cluster::{
    apply_examples, check_metrics, describe, documents, helm_ok, is_ready, keysmith_resources,
    samples,
};
pub(crate) use crate::support::cluster::{kubectl_ok, kubectl_stdin_ok};
use crate::support::endpoints::{self, free_port};
use crate::support::kmip::KmipServer;
use crate::support::operator::OperatorProcess;
use crate::support::{self, ControlPlane, helm, repo_root};

pub(crate) const RELEASE_NAMESPACE: &str = "keysmith-system";
const SERVICE_ACCOUNT: &str = "system:serviceaccount:keysmith-system:keysmith";

fn chart_path() -> String {
    helm::chart().to_string_lossy().into_owned()
}

fn kinds(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

pub(crate) fn render(extra: &[&str]) -> Vec<Value> {
    documents(&helm::template(RELEASE_NAMESPACE, extra).expect("helm template"))
}

#[test]
fn helm_lint_passes_with_default_and_optional_values() {
    let chart = chart_path();
    helm_ok(&["lint", "--strict", &chart]);
    helm_ok(&[
        "lint",
        "--strict",
        &chart,
        "--set",
        "namespaces={team-a,team-b}",
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "networkPolicy.enabled=true",
        "--set",
        "admissionPolicy.enabled=true",
        "--set",
        "admissionPolicy.minimumRSASize=3072",
        "--set",
        "admissionPolicy.maximumValidity=2160h",
        "--set",
        "admissionPolicy.allowedAlgorithms={RSA,ECDSA}",
    ]);
}

#[test]
fn values_schema_rejects_bad_values_naming_them() {
    for (value, field) in [
        ("replicaCount=0", "/replicaCount"),
        ("namespaces={Team_A}", "/namespaces/0"),
        ("logging.format=xml", "/logging/format"),
        ("backoff.min=soon", "/backoff/min"),
        (
            "admissionPolicy.allowedAlgorithms={DSA}",
            "/admissionPolicy/allowedAlgorithms/0",
        ),
        ("replicaCunt=2", "replicaCunt"),
        (
            "admissionPolicy.validationActions={Deny,Warn}",
            "/admissionPolicy/validationActions",
        ),
    ] {
        let error = helm::template(RELEASE_NAMESPACE, &["--set", value])
            .expect_err(&format!("{value} must be refused"));
        assert!(error.contains(field), "{value}: {error}");
    }
    let error = helm::template(
        RELEASE_NAMESPACE,
        &[
            "--set",
            "replicaCount=2",
            "--set",
            "leaderElection.enabled=false",
        ],
    )
    .expect_err("two replicas without leader election");
    assert!(error.contains("leaderElection.enabled"), "{error}");
    // An empty port list would allow all egress.
    let error = helm::template(
        RELEASE_NAMESPACE,
        &["--set-json", "networkPolicy.kmip.ports=[]"],
    )
    .expect_err("no KMIP ports");
    assert!(error.contains("/networkPolicy/kmip/ports"), "{error}");
    let error = helm::template(
        RELEASE_NAMESPACE,
        &["--set", "admissionPolicy.enabled=true"],
    )
    .expect_err("a policy without rules");
    assert!(error.contains("needs at least one rule"), "{error}");
    let error = helm::template(
        RELEASE_NAMESPACE,
        &[
            "--set",
            "namespaces={team-a}",
            "--set",
            "defaultIssuer=pki/ca",
        ],
    )
    .expect_err("a default issuer the operator could not read");
    assert!(error.contains("defaultIssuer pki/ca"), "{error}");
    // One replica without leader election: the old pod goes before the new one starts.
    let single = render(&[
        "--set",
        "replicaCount=1",
        "--set",
        "leaderElection.enabled=false",
    ]);
    let deployment = single
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("a Deployment");
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
}

#[test]
fn deploy_directory_is_rendered_from_the_chart() {
    let on_disk = std::fs::read_to_string(repo_root().join("deploy/keysmith.yaml"))
        .expect("deploy/keysmith.yaml");
    let rendered: String = helm::template(RELEASE_NAMESPACE, &[])
        .expect("helm template")
        .lines()
        .filter(|line| !is_helm_label(line))
        .map(|line| format!("{line}\n"))
        .collect();
    let body = on_disk
        .split_once('\n')
        .map(|(header, body)| {
            assert!(header.starts_with("# Generated by hack/render-deploy.sh"));
            body
        })
        .unwrap_or_default();
    assert!(
        body == rendered,
        "deploy/keysmith.yaml is stale: run hack/render-deploy.sh"
    );
}

/// The labels Helm's own objects carry, which plain manifests must not claim
/// (hack/render-deploy.sh drops them).
fn is_helm_label(line: &str) -> bool {
    let line = line.trim_start();
    line == "app.kubernetes.io/managed-by: Helm" || line.starts_with("helm.sh/chart: ")
}

#[test]
fn chart_crds_are_the_generated_ones_and_kept_on_uninstall() {
    let objects = render(&[]);
    let crds: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "CustomResourceDefinition")
        .collect();
    let expected = keysmith::api::crds();
    assert_eq!(crds.len(), expected.len());
    for (_, crd) in expected {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let rendered = crds
            .iter()
            .find(|o| o["metadata"]["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} not rendered"));
        assert_eq!(
            numbers_as_floats(rendered["spec"].clone()),
            numbers_as_floats(serde_json::to_value(&crd.spec).expect("spec as JSON")),
            "{name}: the chart's copy differs from src/api (run `keysmith crds --output-dir charts/keysmith/files/crds`)"
        );
        assert_eq!(
            rendered["metadata"]["annotations"]["helm.sh/resource-policy"],
            "keep"
        );
    }
    let without_keep = render(&["--set", "crds.keep=false"]);
    assert!(without_keep.iter().all(|o| {
        o["metadata"]["annotations"]
            .get("helm.sh/resource-policy")
            .is_none()
    }));
    let without = render(&["--set", "crds.enabled=false"]);
    assert!(!kinds(&without).contains(&"CustomResourceDefinition".to_owned()));
}

/// YAML and Go write `0` and `0.0` alike; compare numbers by value.
fn numbers_as_floats(value: Value) -> Value {
    match value {
        Value::Number(n) => n.as_f64().map(Value::from).unwrap_or(Value::Number(n)),
        Value::Array(items) => Value::Array(items.into_iter().map(numbers_as_floats).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, numbers_as_floats(v)))
                .collect(),
        ),
        other => other,
    }
}

#[test]
fn namespace_mode_grants_nothing_cluster_wide() {
    let objects = render(&["--set", "namespaces={team-a,team-b}"]);
    let kinds = kinds(&objects);
    assert!(!kinds.contains(&"ClusterRole".to_owned()), "{kinds:?}");
    assert!(
        !kinds.contains(&"ClusterRoleBinding".to_owned()),
        "{kinds:?}"
    );
    let role_namespaces: BTreeSet<&str> = objects
        .iter()
        .filter(|o| o["kind"] == "Role")
        .filter_map(|o| o["metadata"]["namespace"].as_str())
        .collect();
    assert_eq!(
        role_namespaces,
        BTreeSet::from(["team-a", "team-b", RELEASE_NAMESPACE])
    );
    let args = deployment_args(&objects);
    assert!(
        args.contains(&"--namespaces=team-a,team-b".to_owned()),
        "{args:?}"
    );
}

fn deployment_args(objects: &[Value]) -> Vec<String> {
    let deployment = objects
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("a Deployment");
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect()
}

/// The operator's pod, as the chart's Deployment would create it, is admitted by the real
/// API server's PodSecurity admission in a namespace that enforces "restricted".
#[tokio::test]
async fn the_pod_meets_the_restricted_pod_security_standard() {
    let cp = support::shared();
    let client = cp.client();
    let ns = cp.namespace(&client, "psa").await;
    let label = cp
        .kubectl([
            "label",
            "namespace",
            &ns,
            "pod-security.kubernetes.io/enforce=restricted",
        ])
        .await;
    assert!(label.status.success(), "{}", support::stderr(&label));
    let objects = render(&[]);
    let deployment = objects
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("a Deployment");
    let mut pod_spec = deployment["spec"]["template"]["spec"].clone();
    // The ServiceAccount is not part of what PodSecurity judges.
    pod_spec["serviceAccountName"] = Value::from("default");
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "keysmith-psa", "namespace": ns},
        "spec": pod_spec,
    });
    let created = cp
        .kubectl_stdin(&["create", "--dry-run=server"], &pod.to_string())
        .await;
    assert!(created.status.success(), "{}", support::stderr(&created));
    // The check is real: the same pod without its security context is refused.
    let mut loose = pod.clone();
    loose["spec"]["containers"][0]
        .as_object_mut()
        .expect("container")
        .remove("securityContext");
    let refused = cp
        .kubectl_stdin(&["create", "--dry-run=server"], &loose.to_string())
        .await;
    assert!(!refused.status.success());
    assert!(
        support::stderr(&refused).contains("violates PodSecurity \"restricted"),
        "{}",
        support::stderr(&refused)
    );
}

// ---------------------------------------------------------------------------------------
// helm install into a control plane of its own (the chart's cluster-wide objects must not
// meet the other tests'), the operator with the chart's RBAC only, helm uninstall.

/// The body of a successful GET of `path`.
fn http_get(port: u16, path: &str) -> Option<String> {
    endpoints::get(port, path).and_then(|(code, body)| (code == 200).then_some(body))
}

/// Waits until every keysmith resource is Ready (or still generating, reporting progress)
/// and returns them; shows the operator's log when they are not.
pub(crate) async fn all_ready(
    cp: &ControlPlane,
    expected: usize,
    operator: &OperatorProcess,
) -> Vec<Value> {
    support::cluster::all_ready(cp, expected, || operator.log()).await
}

/// Creates the release namespace and applies the chart's CRDs, ServiceAccount and RBAC (what
/// an operator run outside a pod needs); returns kubectl's report of what it applied.
pub(crate) fn install_crds_and_rbac(cp: &ControlPlane) -> String {
    kubectl_ok(cp, &["create", "namespace", RELEASE_NAMESPACE]);
    let installed = helm::template(
        RELEASE_NAMESPACE,
        &[
            "--show-only=templates/crds.yaml",
            "--show-only=templates/serviceaccount.yaml",
            "--show-only=templates/rbac.yaml",
        ],
    )
    .expect("helm template");
    let applied = kubectl_stdin_ok(cp, &["apply", "-f", "-"], &installed);
    kubectl_ok(
        cp,
        &[
            "wait",
            "--for=condition=Established",
            "crd",
            "-l",
            "app.kubernetes.io/part-of=keysmith",
        ],
    );
    applied
}

/// The KMIP example with the addresses of two local servers.
pub(crate) fn kms_example(a: &KmipServer, b: &KmipServer) -> String {
    std::fs::read_to_string(repo_root().join("examples/kms/key-manager-and-auth-key.yaml"))
        .expect("KMS example")
        .replace("kmip-a.example.com:5696", &a.address())
        .replace("kmip-b.example.com:5696", &b.address())
}

/// One permission: API group, resource (with `/subresource`), verb, and the namespace a Role
/// grants it in (`None` for a ClusterRole).
type Permission = (String, String, String, Option<String>);

/// Every permission the rendered RBAC grants to the operator's ServiceAccount, with the
/// resourceNames it is limited to.
fn granted(objects: &[Value]) -> BTreeMap<Permission, Vec<String>> {
    let mut permissions = BTreeMap::new();
    for role in objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role")
    {
        let namespace = role["metadata"]["namespace"].as_str().map(str::to_owned);
        for rule in role["rules"].as_array().into_iter().flatten() {
            let strings = |key: &str| -> Vec<String> {
                rule[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            };
            let names = strings("resourceNames");
            for group in strings("apiGroups") {
                for resource in strings("resources") {
                    for verb in strings("verbs") {
                        let key = (group.clone(), resource.clone(), verb, namespace.clone());
                        assert!(
                            permissions.insert(key.clone(), names.clone()).is_none(),
                            "{key:?} granted twice: removing either rule would not break anything"
                        );
                    }
                }
            }
        }
    }
    permissions
}

/// The permissions a request matches.
fn matching<'a>(
    permissions: &'a BTreeMap<Permission, Vec<String>>,
    request: &AuditEvent,
) -> Vec<&'a Permission> {
    let Some(object) = &request.object_ref else {
        return Vec::new();
    };
    let resource = match &object.subresource {
        Some(sub) => format!("{}/{sub}", object.resource),
        None => object.resource.clone(),
    };
    permissions
        .iter()
        .filter(|((group, res, verb, namespace), names)| {
            *group == object.api_group
                && *res == resource
                && *verb == request.verb
                && (namespace.is_none() || *namespace == object.namespace)
                && (names.is_empty() || object.name.as_ref().is_some_and(|n| names.contains(n)))
        })
        .map(|(permission, _)| permission)
        .collect()
}

/// Patching an event (the operator's publisher counting a repeat): needed, but not made on
/// purpose by any example, so [`repeated_events_are_counted`] proves it separately.
const EVENT_REPEATS: (&str, &str, &str) = ("events.k8s.io", "events", "patch");

/// Every permission (but `exempt` ones) was used by an allowed request, no request was
/// forbidden, and each allowed request was granted by exactly one permission: so removing
/// any rule (or any verb of one) makes some request of this run fail.
fn check_rbac_is_exact(objects: &[Value], log: &Path, exempt: &[(&str, &str, &str)]) {
    let permissions = granted(objects);
    let requests = audit::requests_by(log, SERVICE_ACCOUNT);
    assert!(
        !requests.is_empty(),
        "no request of {SERVICE_ACCOUNT} audited"
    );
    let forbidden: Vec<String> = requests
        .iter()
        .filter(|r| r.response_status.as_ref().and_then(|s| s.code) == Some(403))
        .map(AuditEvent::describe)
        .collect();
    assert!(forbidden.is_empty(), "forbidden requests: {forbidden:#?}");
    let mut used = BTreeSet::new();
    for request in &requests {
        let matches = matching(&permissions, request);
        assert!(
            matches.len() <= 1,
            "{} is granted by several rules: {matches:?}",
            request.describe()
        );
        used.extend(matches);
    }
    let unused: Vec<&Permission> = permissions
        .keys()
        .filter(|p| !used.contains(p))
        .filter(|(group, resource, verb, _)| {
            !exempt.contains(&(group.as_str(), resource.as_str(), verb.as_str()))
        })
        .collect();
    assert!(
        unused.is_empty(),
        "permissions the operator never used (superfluous, or not exercised by this test): {unused:#?}"
    );
}

/// A kubeconfig with the token of the chart's ServiceAccount, and nothing else.
pub(crate) fn service_account_kubeconfig(cp: &ControlPlane) -> std::path::PathBuf {
    let token = kubectl_ok(
        cp,
        &[
            "create",
            "token",
            "keysmith",
            "-n",
            RELEASE_NAMESPACE,
            "--duration=2h",
        ],
    );
    cp.token_kubeconfig("keysmith-sa.kubeconfig", &token)
}

/// The operator's Event publisher counts a repeated Event by patching it. It happens only
/// when a reconcile repeats an Event on an unchanged object, which no example does on
/// purpose: so it is done here, as the operator does it, with the chart's identity.
async fn repeated_events_are_counted(cp: &ControlPlane, kubeconfig: &Path, namespace: &str) {
    use keysmith::reconcile::events::{EventNote, EventPublisher, EventType};
    use kube::Resource as _;
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig).expect("read kubeconfig"),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("kubeconfig");
    let client = kube::Client::try_from(config).expect("client");
    let ckp: keysmith::api::CertificateKeyPair = kube::Api::namespaced(cp.client(), namespace)
        .get("billing")
        .await
        .expect("get the example");
    let publisher = EventPublisher::new(client, "keysmith", "keysmith-test");
    let event = EventNote {
        type_: EventType::Normal,
        reason: "Renewed".to_owned(),
        note: Some("test event, published twice".to_owned()),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    for attempt in ["created", "patched"] {
        publisher
            .publish(&event, &ckp.object_ref(&()))
            .await
            .unwrap_or_else(|e| panic!("event not {attempt}: {e}"));
    }
}

/// The operator flags the chart's Deployment sets, with local ports and a quick backoff.
pub(crate) fn chart_operator_args(
    objects: &[Value],
    metrics_port: u16,
    health_port: u16,
) -> Vec<String> {
    let mut args: Vec<String> = deployment_args(objects)
        .into_iter()
        .skip(1) // "run"
        .filter(|a| {
            !a.starts_with("--metrics-bind-address")
                && !a.starts_with("--health-bind-address")
                && !a.starts_with("--log-format")
                && !a.starts_with("--backoff-")
        })
        .collect();
    args.extend([
        format!("--metrics-bind-address=127.0.0.1:{metrics_port}"),
        format!("--health-bind-address=127.0.0.1:{health_port}"),
        "--log-format=text".to_owned(),
        "--backoff-min=1s".to_owned(),
        "--backoff-max=5s".to_owned(),
        "--leader-election-identity=keysmith-test".to_owned(),
    ]);
    args
}

#[tokio::test]
async fn helm_install_then_the_chart_rbac_runs_every_example_and_uninstall_keeps_resources() {
    let cp = ControlPlane::start().expect("a control plane of its own");
    let kubeconfig = cp.kubeconfig().to_string_lossy().into_owned();
    let chart = chart_path();

    // helm install creates every object without error.
    helm_ok(&[
        "install",
        "keysmith",
        &chart,
        "--kubeconfig",
        &kubeconfig,
        "--namespace",
        RELEASE_NAMESPACE,
        "--create-namespace",
    ]);
    let objects = render(&[]);
    for object in &objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let mut args = vec!["get", kind, name, "-o", "name"];
        if let Some(ns) = object["metadata"]["namespace"].as_str() {
            args.extend(["-n", ns]);
        }
        kubectl_ok(&cp, &args);
    }

    // The operator, with the ServiceAccount token only, over every example.
    let (a, b) = two_servers("chart-kms");
    let examples_ns = "examples";
    kubectl_ok(&cp, &["create", "namespace", examples_ns]);
    server_secrets(&cp.client(), examples_ns, &a).await;
    let kms_manifest = kms_example(&a, &b);
    let dir = tempfile::tempdir().expect("tempdir");
    let (metrics_port, health_port) = (free_port(), free_port());
    let sa_kubeconfig = service_account_kubeconfig(&cp);
    let args = chart_operator_args(&objects, metrics_port, health_port);
    let operator = OperatorProcess::start_exactly(&sa_kubeconfig, &dir.path().join("1.log"), &args);
    let created = apply_examples(&cp, examples_ns, Some(&kms_manifest));
    let ready = all_ready(&cp, created, &operator).await;

    let metrics = samples(&http_get(metrics_port, "/metrics").expect("/metrics"));
    check_metrics(&metrics, &ready, &[a.address(), b.address()]);

    // A non-exportable key lives in the key namespace; deleting its resource deletes it too
    // (deletionPolicy: Delete, carried out by the finalizer before the resource goes).
    let sealed = "apiVersion: keysmith.dev/v1alpha1\nkind: CertificateKeyPair\nmetadata:\n  name: sealed\nspec:\n  commonName: sealed.example.com\n  privateKeyExport: Denied\n";
    kubectl_stdin_ok(&cp, &["apply", "-n", examples_ns, "-f", "-"], sealed);
    let waited = cp
        .kubectl_command()
        .args(["wait", "-n", examples_ns, "certificatekeypair/sealed"])
        .args(["--for=condition=Ready", "--timeout=60s"])
        .output()
        .expect("kubectl");
    assert!(
        waited.status.success(),
        "sealed: {}",
        kubectl_ok(
            &cp,
            &[
                "get",
                "-n",
                examples_ns,
                "certificatekeypair/sealed",
                "-o",
                "jsonpath={.status}"
            ]
        )
    );
    let key_secrets = || {
        kubectl_ok(
            &cp,
            &[
                "get",
                "secrets",
                "-n",
                RELEASE_NAMESPACE,
                "-l",
                "keysmith.dev/private-key=true",
                "-o",
                "name",
            ],
        )
    };
    assert_eq!(key_secrets().lines().count(), 1, "the sealed key Secret");
    // kubectl waits until the resource is gone, so its finalizer has run.
    kubectl_ok(
        &cp,
        &[
            "delete",
            "-n",
            examples_ns,
            "certificatekeypair/sealed",
            "--timeout=60s",
        ],
    );
    assert_eq!(
        key_secrets().trim(),
        "",
        "the key Secret of a deleted resource is deleted with it"
    );

    // Delete the KMS key: the finalizer revokes and destroys it on both servers, then goes.
    kubectl_ok(
        &cp,
        &[
            "delete",
            "-n",
            examples_ns,
            "kmsauthkey/nse-auth-1",
            "--timeout=60s",
        ],
    );
    assert!(operator.terminate(), "keysmith did not exit cleanly");
    // What the operator did (the test's own requests as the ServiceAccount come after).
    check_rbac_is_exact(&objects, cp.audit_log(), &[EVENT_REPEATS]);
    repeated_events_are_counted(&cp, &sa_kubeconfig, examples_ns).await;

    // helm uninstall removes the operator, keeps the CRDs, the resources and their Secrets.
    helm_ok(&[
        "uninstall",
        "keysmith",
        "--kubeconfig",
        &kubeconfig,
        "--namespace",
        RELEASE_NAMESPACE,
    ]);
    let remaining = keysmith_resources(&cp);
    assert_eq!(remaining.len(), created - 1, "resources after uninstall");
    kubectl_ok(&cp, &["get", "secret", "-n", examples_ns, "billing"]);
    let crds = kubectl_ok(&cp, &["get", "crd", "-o", "name"]);
    assert_eq!(crds.matches(".keysmith.dev").count(), 5, "{crds}");
    let gone = cp
        .kubectl_command()
        .args(["get", "clusterrole", "keysmith"])
        .output()
        .expect("kubectl");
    assert!(
        !gone.status.success(),
        "the ClusterRole outlived the release"
    );

    // The plain manifests install over the kept CRDs.
    kubectl_ok(
        &cp,
        &["apply", "-k", &repo_root().join("deploy").to_string_lossy()],
    );
    kubectl_ok(
        &cp,
        &[
            "get",
            "-n",
            RELEASE_NAMESPACE,
            "deployment/keysmith",
            "serviceaccount/keysmith",
        ],
    );
    kubectl_ok(
        &cp,
        &["get", "clusterrole/keysmith", "clusterrolebinding/keysmith"],
    );

    admission_policy_enforces_the_organisation_policy(&cp, examples_ns).await;
}

/// With admissionPolicy values set, the API server itself refuses what the policy forbids,
/// naming the field; what it allows is admitted.
async fn admission_policy_enforces_the_organisation_policy(cp: &ControlPlane, namespace: &str) {
    let rendered = helm::template(
        RELEASE_NAMESPACE,
        &[
            "--show-only",
            "templates/admissionpolicy.yaml",
            "--set",
            "admissionPolicy.enabled=true",
            "--set",
            "admissionPolicy.allowedAlgorithms={RSA,ECDSA}",
            "--set",
            "admissionPolicy.minimumRSASize=3072",
            "--set",
            "admissionPolicy.maximumValidity=2160h",
        ],
    )
    .expect("render the policy");
    kubectl_stdin_ok(cp, &["apply", "-f", "-"], &rendered);
    let resource = |name: &str, kind: &str, spec: &str| {
        format!(
            "apiVersion: keysmith.dev/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n{spec}"
        )
    };
    let refused = [
        (
            resource(
                "small-rsa",
                "CertificateKeyPair",
                "  commonName: a\n  privateKey: {algorithm: RSA, size: 2048}\n",
            ),
            "spec.privateKey.size: RSA keys need at least 3072 bits",
        ),
        (
            resource(
                "default-rsa",
                "CertificateKeyPair",
                "  commonName: a\n  privateKey: {algorithm: RSA}\n",
            ),
            "spec.privateKey.size",
        ),
        (
            resource(
                "too-long",
                "CertificateKeyPair",
                "  commonName: a\n  duration: 8760h\n",
            ),
            "spec.duration: longer than the organisation policy's maximum validity of 2160h",
        ),
        (
            resource("ed-ssh", "SshKey", "  algorithm: Ed25519\n"),
            "spec.algorithm: not allowed by the organisation policy",
        ),
        (
            resource("ed-default-ssh", "SshKey", "  keyType: User\n"),
            "spec.algorithm",
        ),
        (
            resource(
                "long-pkey",
                "KeyringSecret",
                "  type: pkey_cert\n  params:\n    pkey_cert: {commonName: a}\n",
            ),
            "spec.params.pkey_cert.duration",
        ),
    ];
    // The policy takes effect once the API server has compiled it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = cp
            .kubectl_stdin(&["apply", "--dry-run=server"], &refused[0].0)
            .await;
        if !out.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "the policy never took effect");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for (manifest, message) in &refused {
        let out = cp
            .kubectl_stdin(&["apply", "--dry-run=server"], manifest)
            .await;
        assert!(!out.status.success(), "admitted:\n{manifest}");
        let error = support::stderr(&out);
        assert!(error.contains(message), "{message} not in: {error}");
    }
    for allowed in [
        resource(
            "big-rsa",
            "CertificateKeyPair",
            "  commonName: a\n  privateKey: {algorithm: RSA, size: 4096}\n  duration: 720h\n",
        ),
        resource("ecdsa", "CertificateKeyPair", "  commonName: a\n"),
        resource("ecdsa-ssh", "SshKey", "  algorithm: ECDSA\n"),
        resource(
            "short-pkey",
            "KeyringSecret",
            "  type: pkey_cert\n  params:\n    pkey_cert: {commonName: a, duration: 720h}\n",
        ),
    ] {
        let out = cp
            .kubectl_stdin(&["apply", "--dry-run=server"], &allowed)
            .await;
        assert!(out.status.success(), "{allowed}\n{}", support::stderr(&out));
    }
}

/// With `namespaces` the chart grants Roles only: the operator run with them serves those
/// namespaces (and its non-exportable keys in the release namespace) without one forbidden
/// or cluster-wide request, and leaves every other namespace alone.
#[tokio::test]
async fn namespace_mode_runs_on_the_charts_roles_alone() {
    let cp = ControlPlane::start().expect("a control plane of its own");
    let kubeconfig = cp.kubeconfig().to_string_lossy().into_owned();
    for ns in ["team-a", "team-b", "team-c"] {
        kubectl_ok(&cp, &["create", "namespace", ns]);
    }
    let values = ["--set", "namespaces={team-a,team-b}"];
    let mut install = vec![
        "install",
        "keysmith",
        "--kubeconfig",
        &kubeconfig,
        "--namespace",
        RELEASE_NAMESPACE,
        "--create-namespace",
    ];
    let chart = chart_path();
    install.push(&chart);
    install.extend(values);
    helm_ok(&install);
    let objects = render(&values);

    let dir = tempfile::tempdir().expect("tempdir");
    let args = chart_operator_args(&objects, free_port(), free_port());
    let operator = OperatorProcess::start_exactly(
        &service_account_kubeconfig(&cp),
        &dir.path().join("keysmith.log"),
        &args,
    );
    let ckp = |name: &str, extra: &str| {
        format!(
            "apiVersion: keysmith.dev/v1alpha1\nkind: CertificateKeyPair\nmetadata:\n  name: {name}\nspec:\n  commonName: {name}.example.com\n{extra}"
        )
    };
    let example = |path: &str| {
        repo_root()
            .join("examples")
            .join(path)
            .to_string_lossy()
            .into_owned()
    };
    kubectl_ok(
        &cp,
        &[
            "apply",
            "-n",
            "team-a",
            "-f",
            &example("certificatekeypair/ca-chain.yaml"),
        ],
    );
    kubectl_ok(&cp, &["apply", "-n", "team-b", "-f", &example("sshkey")]);
    kubectl_ok(
        &cp,
        &[
            "apply",
            "-n",
            "team-b",
            "-f",
            &example("keyringsecret/psk.yaml"),
        ],
    );
    kubectl_stdin_ok(
        &cp,
        &["apply", "-n", "team-b", "-f", "-"],
        &ckp("sealed", "  privateKeyExport: Denied\n"),
    );
    kubectl_stdin_ok(
        &cp,
        &["apply", "-n", "team-c", "-f", "-"],
        &ckp("outside", ""),
    );
    let served = keysmith_resources(&cp)
        .iter()
        .filter(|o| o["metadata"]["namespace"] != "team-c")
        .count();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let objects = keysmith_resources(&cp);
        let ready = objects.iter().filter(|o| is_ready(o)).count();
        if ready == served {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{ready} of {served} Ready: {:#?}\n{}",
            objects
                .iter()
                .filter(|o| !is_ready(o))
                .map(describe)
                .collect::<Vec<_>>(),
            operator.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The sealed key lives in the release namespace, outside the managed ones.
    let keys = kubectl_ok(
        &cp,
        &[
            "get",
            "secrets",
            "-n",
            RELEASE_NAMESPACE,
            "-l",
            "keysmith.dev/private-key=true",
            "-o",
            "name",
        ],
    );
    assert_eq!(keys.lines().count(), 1, "{keys}");
    assert!(operator.terminate(), "keysmith did not exit cleanly");

    let outside = kubectl_ok(
        &cp,
        &[
            "get",
            "-n",
            "team-c",
            "certificatekeypair/outside",
            "-o",
            "json",
        ],
    );
    let outside: Value = serde_json::from_str(&outside).expect("JSON");
    assert!(
        outside["status"].is_null(),
        "team-c was reconciled: {outside}"
    );
    let secrets = kubectl_ok(&cp, &["get", "secrets", "-n", "team-c", "-o", "name"]);
    assert!(secrets.trim().is_empty(), "{secrets}");

    let requests = audit::requests_by(cp.audit_log(), SERVICE_ACCOUNT);
    assert!(!requests.is_empty());
    for request in &requests {
        let code = request.response_status.as_ref().and_then(|s| s.code);
        assert_ne!(code, Some(403), "forbidden: {}", request.describe());
        let namespace = request
            .object_ref
            .as_ref()
            .and_then(|o| o.namespace.as_deref());
        assert!(
            matches!(namespace, Some("team-a" | "team-b" | RELEASE_NAMESPACE)),
            "a request outside the managed namespaces: {} in {namespace:?}",
            request.describe()
        );
    }
}
