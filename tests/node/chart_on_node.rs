//! `helm install` of `charts/keysmith` with the image of `hack/image.sh`, on a real node: the
//! Deployment's two pods become Ready through their probes, run with the restricted settings
//! (observed on the running processes), elect one leader, make every example Ready, serve
//! their metrics, fail over when the leader is deleted, roll to a second image tag without a
//! write to what is Ready, and `helm uninstall` leaves CRDs, resources and Secrets. The node
//! leaves nothing behind.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::audit::{self, AuditEvent};
use crate::support::cluster::{
    all_ready, apply_examples, check_metrics, helm_ok, keysmith_resources, kubectl_ok,
    kubectl_stdin_ok, samples,
};
use crate::support::image::{self, Image};
use crate::support::node::{self, Node};
use crate::support::{ControlPlane, helm};

pub(crate) const RELEASE_NAMESPACE: &str = "keysmith-system";
const SERVICE_ACCOUNT: &str = "system:serviceaccount:keysmith-system:keysmith";
const LEASE: &str = "keysmith-leader";
/// Resources Ready before the upgrade.
const FLEET: usize = 200;

#[tokio::test]
async fn helm_install_runs_the_image_on_a_real_node() {
    if let Some(why) = node::unavailable() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let _one = node::one_at_a_time().await;
    let image = image::operator();
    let before = node::host_state().expect("host state");
    {
        let cp = ControlPlane::start_for_node().expect("a control plane for the node");
        let node = Node::start(&cp).await.expect("node");
        let imported = Instant::now();
        node.import_image(&image.archive).expect("import the image");
        eprintln!(
            "node Ready {:.1}s after start; {} imported in {:.1}s",
            node.startup().as_secs_f64(),
            image.reference,
            imported.elapsed().as_secs_f64()
        );
        scenario(&cp, &node, image).await;
        node.stop().expect("node teardown");
    }
    let left = node::leftovers(&before).expect("host state");
    assert!(
        left.is_empty(),
        "the node left behind:\n{}",
        left.join("\n")
    );
}

async fn scenario(cp: &ControlPlane, node: &Node, image: &Image) {
    let kubeconfig = cp.kubeconfig().to_string_lossy().into_owned();
    let chart = helm::chart().to_string_lossy().into_owned();

    // helm install, waiting for the Deployment: 2/2 Ready through the real probes.
    let started = Instant::now();
    helm_install(cp, image);
    let pods = operator_pods(cp, 2);
    eprintln!(
        "helm install --wait: 2/2 Ready after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    for pod in &pods {
        assert_eq!(pod.image, image.reference, "{}", pod.name);
        assert!(pod.probes_configured, "{}: no readiness probe", pod.name);
        let observed = observe_security(node, pod);
        eprintln!("{}: {observed:?}", pod.name);
        assert_eq!(observed.uids, [65532; 4], "{}: Uid", pod.name);
        assert_eq!(observed.gids, [65532; 4], "{}: Gid", pod.name);
        assert_eq!(observed.effective_capabilities, 0, "{}: CapEff", pod.name);
        assert_eq!(observed.permitted_capabilities, 0, "{}: CapPrm", pod.name);
        assert!(observed.no_new_privileges, "{}: NoNewPrivs", pod.name);
        assert_eq!(observed.seccomp, 2, "{}: Seccomp (2: filter)", pod.name);
        assert_eq!(pod.seccomp_profile, "RuntimeDefault", "{}", pod.name);
        assert!(
            observed.root_read_only,
            "{}: the root file system",
            pod.name
        );
        assert!(observed.in_pod_cgroup, "{}: not in a pod cgroup", pod.name);
    }

    // One pod holds the Lease.
    let leader = wait_for_leader(cp, &pods).await;
    eprintln!("leader: {leader}");

    // Every example becomes Ready. The KMIP example is not applied here: its PyKMIP servers
    // listen on this machine's 127.0.0.1, and the node's pod network reaches nothing on the
    // machine but the API server (hack/node/network.sh), by design. The e2e suite runs it
    // against the operator binary with the chart's RBAC (tests/e2e/chart.rs).
    kubectl_ok(cp, &["create", "namespace", "examples"]);
    let created = apply_examples(cp, "examples", None);
    let ready = all_ready(cp, created, || pod_log(cp, &leader)).await;
    eprintln!("{created} example resources Ready");

    // The leader's /metrics through the API server's pod proxy. The operator records a
    // resource's metrics right after writing its status, so a scrape at the moment the last
    // status shows Ready may miss the last few: scrape until every Ready resource has its
    // keysmith_ready series (at most 10 s), then check the values.
    let scrape = || {
        samples(&kubectl_ok(
            cp,
            &[
                "get",
                "--raw",
                &format!("/api/v1/namespaces/{RELEASE_NAMESPACE}/pods/{leader}:8080/proxy/metrics"),
            ],
        ))
    };
    let series_of = |object: &serde_json::Value| {
        format!(
            "keysmith_ready{{kind=\"{}\",namespace=\"{}\",name=\"{}\"}}",
            object["kind"].as_str().unwrap_or_default(),
            object["metadata"]["namespace"].as_str().unwrap_or_default(),
            object["metadata"]["name"].as_str().unwrap_or_default()
        )
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut metrics = scrape();
    while Instant::now() < deadline
        && ready
            .iter()
            .filter(|o| o["kind"] != "KeyManager")
            .any(|o| !metrics.contains_key(&series_of(o)))
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
        metrics = scrape();
    }
    check_metrics(&metrics, &ready, &[]);

    // Delete the leader: another pod takes over, and a resource created right after is
    // Ready within the lease duration, written by the new leader.
    let lease_duration = chart_lease_duration();
    kubectl_ok(cp, &["create", "namespace", "failover"]);
    let audit_before_failover = audit_line_count(cp);
    let deleted = Instant::now();
    kubectl_ok(
        cp,
        &[
            "delete",
            "pod",
            "-n",
            RELEASE_NAMESPACE,
            &leader,
            "--wait=false",
        ],
    );
    let new_leader = wait_for_holder_other_than(cp, &leader).await;
    let taken_over = deleted.elapsed();
    kubectl_stdin_ok(
        cp,
        &["apply", "-n", "failover", "-f", "-"],
        &certificate_key_pair("after-failover"),
    );
    wait_ready(cp, "failover", "after-failover", Duration::from_secs(120)).await;
    let failover = deleted.elapsed();
    let pods = operator_pods(cp, 2);
    let new_leader_ip = pod_ip(&pods, &new_leader);
    let failover_writers = writers(&audit_since(cp, audit_before_failover), "failover");
    eprintln!(
        "failover: {leader} deleted; {new_leader} ({new_leader_ip}) held the Lease {:.1}s later; a resource created then was Ready {:.1}s after the deletion (lease duration {lease_duration:?}), written by {failover_writers:?}",
        taken_over.as_secs_f64(),
        failover.as_secs_f64()
    );
    assert_eq!(
        failover_writers,
        [new_leader_ip],
        "the resource created after the failover was not written by the new leader alone"
    );
    assert!(
        failover <= lease_duration,
        "Ready {failover:?} after the leader's deletion, more than the lease duration"
    );

    // helm upgrade to a second tag over 200 Ready resources.
    kubectl_ok(cp, &["create", "namespace", "fleet"]);
    let fleet: String = (0..FLEET)
        .map(|i| certificate_key_pair(&format!("fleet-{i}")))
        .collect::<Vec<_>>()
        .join("---\n");
    kubectl_stdin_ok(cp, &["apply", "-n", "fleet", "-f", "-"], &fleet);
    all_ready(cp, created + 1 + FLEET, || pod_log(cp, &new_leader)).await;
    // The last Events of the first issuance may still be on their way: count from when the
    // operator has written nothing to the fleet for three seconds.
    fleet_writes_settle(cp).await;
    let secrets_before = secret_versions(cp, "fleet");
    assert_eq!(secrets_before.len(), FLEET);
    let audit_lines_before = audit_line_count(cp);

    let second_tag = format!("{}-upgrade", image.tag);
    node.tag_image(
        &image.reference,
        &format!("{}:{second_tag}", image.repository),
    )
    .expect("tag the second image");
    kubectl_ok(cp, &["create", "namespace", "rollout"]);
    let upgrade = {
        let kubeconfig = kubeconfig.clone();
        let chart = chart.clone();
        let second_tag = second_tag.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            helm_ok(&[
                "upgrade",
                "keysmith",
                &chart,
                "--kubeconfig",
                &kubeconfig,
                "--namespace",
                RELEASE_NAMESPACE,
                "--reuse-values",
                "--set",
                &format!("image.tag={second_tag}"),
                "--wait",
                "--timeout=5m",
            ]);
            started.elapsed()
        })
    };
    // Work for whichever pod leads during the rollout: a resource every half second, so that
    // two leaders at once would show as interleaved writers.
    let mut rollout_resources = 0;
    while !upgrade.is_finished() && rollout_resources < 240 {
        kubectl_stdin_ok(
            cp,
            &["apply", "-n", "rollout", "-f", "-"],
            &certificate_key_pair(&format!("rollout-{rollout_resources}")),
        );
        rollout_resources += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let upgrade_took = upgrade.join().expect("helm upgrade");
    // One more once the rollout is done: the last writer must be the new leader.
    kubectl_stdin_ok(
        cp,
        &["apply", "-n", "rollout", "-f", "-"],
        &certificate_key_pair(&format!("rollout-{rollout_resources}")),
    );
    rollout_resources += 1;
    let pods = operator_pods(cp, 2);
    for pod in &pods {
        assert!(
            pod.image.ends_with(&format!(":{second_tag}")),
            "{} runs {}",
            pod.name,
            pod.image
        );
    }
    let upgraded_leader = wait_for_leader(cp, &pods).await;
    let total = created + 1 + FLEET + rollout_resources;
    all_ready(cp, total, || pod_log(cp, &upgraded_leader)).await;
    // The new leader has looked at every resource of the fleet.
    wait_for_fleet_reconciled(cp, &upgraded_leader).await;

    let secrets_after = secret_versions(cp, "fleet");
    let since_upgrade = audit_since(cp, audit_lines_before);
    let fleet_writes = operator_writes(&since_upgrade, "fleet");
    let rollout_writers = writers(&since_upgrade, "rollout");
    let upgraded_leader_ip = pod_ip(&pods, &upgraded_leader);
    eprintln!(
        "helm upgrade to :{second_tag} took {:.1}s; {FLEET} Ready resources: {fleet_writes} writes, {} Secrets changed; {rollout_resources} resources created during the rollout, written by {rollout_writers:?} in turn",
        upgrade_took.as_secs_f64(),
        secrets_before
            .iter()
            .filter(|(name, version)| secrets_after.get(*name) != Some(version))
            .count()
    );
    assert_eq!(fleet_writes, 0, "writes to the fleet during the upgrade");
    assert!(
        rollout_writers.len() >= 2,
        "the leadership did not change during the rollout: {rollout_writers:?}"
    );
    assert_eq!(
        rollout_writers.last(),
        Some(&upgraded_leader_ip),
        "the last writer is not the upgraded leader"
    );
    assert_eq!(
        secrets_before, secrets_after,
        "Secrets changed by the upgrade"
    );
    let mut seen = Vec::new();
    for writer in &rollout_writers {
        assert!(
            !seen.contains(writer),
            "{writer} wrote again after another pod had written: two leaders wrote at once ({rollout_writers:?})"
        );
        seen.push(writer.clone());
    }

    // helm uninstall keeps the CRDs, the resources and their Secrets.
    helm_ok(&[
        "uninstall",
        "keysmith",
        "--kubeconfig",
        &kubeconfig,
        "--namespace",
        RELEASE_NAMESPACE,
        "--wait",
        "--timeout=2m",
    ]);
    let crds = kubectl_ok(cp, &["get", "crd", "-o", "name"]);
    assert_eq!(crds.matches(".keysmith.dev").count(), 5, "{crds}");
    assert_eq!(
        keysmith_resources(cp).len(),
        total,
        "resources after uninstall"
    );
    assert_eq!(secret_versions(cp, "fleet"), secrets_before);
    kubectl_ok(cp, &["get", "secret", "-n", "examples", "billing"]);
    wait_for_no_pods(cp).await;
}

/// `helm install` of the chart with `image` (never pulled: it was imported), waiting until
/// the Deployment is available.
pub(crate) fn helm_install(cp: &ControlPlane, image: &Image) {
    helm_ok(&[
        "install",
        "keysmith",
        &helm::chart().to_string_lossy(),
        "--kubeconfig",
        &cp.kubeconfig().to_string_lossy(),
        "--namespace",
        RELEASE_NAMESPACE,
        "--create-namespace",
        "--set",
        &format!("image.repository={}", image.repository),
        "--set",
        &format!("image.tag={}", image.tag),
        "--set",
        "image.pullPolicy=Never",
        "--wait",
        "--timeout=5m",
    ]);
}

/// A small self-signed CertificateKeyPair named `name`.
fn certificate_key_pair(name: &str) -> String {
    format!(
        "apiVersion: keysmith.dev/v1alpha1\nkind: CertificateKeyPair\nmetadata:\n  name: {name}\nspec:\n  commonName: {name}.example.com\n  privateKey: {{algorithm: ECDSA, size: 256}}\n  target: {{name: {name}-tls}}\n"
    )
}

/// One operator pod as the API server shows it.
pub(crate) struct Pod {
    pub(crate) name: String,
    ip: String,
    image: String,
    /// The pod's `securityContext.seccompProfile.type` (the filter seen in /proc is this one).
    seccomp_profile: String,
    container_id: String,
    probes_configured: bool,
}

/// The operator's pods once exactly `expected` are Ready and none is terminating.
pub(crate) fn operator_pods(cp: &ControlPlane, expected: usize) -> Vec<Pod> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let out = kubectl_ok(
            cp,
            &[
                "get",
                "pods",
                "-n",
                RELEASE_NAMESPACE,
                "-l",
                "app.kubernetes.io/name=keysmith",
                "-o",
                "json",
            ],
        );
        let list: Value = serde_json::from_str(&out).expect("pod list");
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let ready: Vec<Pod> = items
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter(|p| {
                p["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .map(|p| Pod {
                name: p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                ip: p["status"]["podIP"].as_str().unwrap_or_default().to_owned(),
                seccomp_profile: p["spec"]["securityContext"]["seccompProfile"]["type"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                image: p["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                container_id: p["status"]["containerStatuses"][0]["containerID"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                probes_configured: !p["spec"]["containers"][0]["readinessProbe"].is_null(),
            })
            .collect();
        if ready.len() == expected && items.len() == expected {
            return ready;
        }
        assert!(
            Instant::now() < deadline,
            "operator pods not {expected}/{expected} Ready: {out}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The security settings of a running container, read from its process on the host.
#[derive(Debug)]
struct Observed {
    uids: [u32; 4],
    gids: [u32; 4],
    effective_capabilities: u64,
    permitted_capabilities: u64,
    no_new_privileges: bool,
    seccomp: u32,
    root_read_only: bool,
    in_pod_cgroup: bool,
}

fn observe_security(node: &Node, pod: &Pod) -> Observed {
    let pid = node
        .container_pid(&pod.container_id)
        .unwrap_or_else(|e| panic!("{}: {e}", pod.name));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| -> String {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
            .trim()
            .to_owned()
    };
    let ids = |name: &str| -> [u32; 4] {
        let values: Vec<u32> = field(name)
            .split_whitespace()
            .map(|v| v.parse().expect("id"))
            .collect();
        values.try_into().expect("four ids")
    };
    let hex = |name: &str| u64::from_str_radix(&field(name), 16).expect("hex");
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("mountinfo");
    // The container's own root: mount point "/", mount options (field 6) with "ro".
    let root_read_only = mountinfo
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields.get(4) == Some(&"/")).then(|| fields.get(5).copied())?
        })
        .next_back()
        .is_some_and(|options| options.split(',').any(|o| o == "ro"));
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    Observed {
        uids: ids("Uid"),
        gids: ids("Gid"),
        effective_capabilities: hex("CapEff"),
        permitted_capabilities: hex("CapPrm"),
        no_new_privileges: field("NoNewPrivs") == "1",
        seccomp: field("Seccomp").parse().expect("Seccomp"),
        root_read_only,
        in_pod_cgroup: cgroup.contains("/keysmith-node/kubepods"),
    }
}

/// The pod IP of `name` among `pods`.
fn pod_ip(pods: &[Pod], name: &str) -> String {
    pods.iter()
        .find(|p| p.name == name)
        .map(|p| p.ip.clone())
        .unwrap_or_else(|| panic!("{name} is not a Ready operator pod"))
}

/// The chart's default `leaderElection.leaseDuration`: the longest a failover may take.
fn chart_lease_duration() -> Duration {
    let values: serde_json::Value = serde_norway::from_str(
        &std::fs::read_to_string(helm::chart().join("values.yaml")).expect("values.yaml"),
    )
    .expect("values.yaml is YAML");
    let text = values["leaderElection"]["leaseDuration"]
        .as_str()
        .expect("leaderElection.leaseDuration");
    let seconds = text
        .strip_suffix('s')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("leaseDuration {text:?} is not whole seconds"));
    Duration::from_secs(seconds)
}

/// The leader Lease's holder (empty while there is none).
fn lease_holder(cp: &ControlPlane) -> String {
    let out = cp
        .kubectl_command()
        .args(["get", "lease", LEASE, "-n", RELEASE_NAMESPACE])
        .args(["-o", "jsonpath={.spec.holderIdentity}"])
        .output()
        .expect("kubectl");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The Lease holder once it is a pod other than `previous` (the replacement pod or the
/// standby, whichever acquires it first).
async fn wait_for_holder_other_than(cp: &ControlPlane, previous: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let holder = lease_holder(cp);
        if !holder.is_empty() && holder != previous {
            return holder;
        }
        assert!(
            Instant::now() < deadline,
            "{previous} still holds the Lease"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the operator has not written to the fleet namespace for three seconds.
async fn fleet_writes_settle(cp: &ControlPlane) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = (usize::MAX, Instant::now());
    loop {
        let count = audit::writes(cp.audit_log(), SERVICE_ACCOUNT, "fleet").len();
        if count != last.0 {
            last = (count, Instant::now());
        } else if last.1.elapsed() >= Duration::from_secs(3) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the operator keeps writing to the fleet"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The operator's writes in `namespace` among `events`.
fn operator_writes(events: &[AuditEvent], namespace: &str) -> usize {
    events
        .iter()
        .filter(|e| e.user.username == SERVICE_ACCOUNT && e.is_write())
        .filter(|e| e.object_ref.as_ref().and_then(|o| o.namespace.as_deref()) == Some(namespace))
        .count()
}

/// The Lease holder, once it is one of `pods`.
pub(crate) async fn wait_for_leader(cp: &ControlPlane, pods: &[Pod]) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let holder = lease_holder(cp);
        if pods.iter().any(|p| p.name == holder) {
            return holder;
        }
        assert!(
            Instant::now() < deadline,
            "no leader among {:?} (holder {holder:?})",
            pods.iter().map(|p| &p.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The log of an operator pod (through the kubelet), for failure messages.
pub(crate) fn pod_log(cp: &ControlPlane, pod: &str) -> String {
    let out = cp
        .kubectl_command()
        .args(["logs", "-n", RELEASE_NAMESPACE, pod, "--tail=200"])
        .output()
        .expect("kubectl");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn wait_ready(cp: &ControlPlane, namespace: &str, name: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let out = cp
            .kubectl_command()
            .args(["get", "certificatekeypair", name, "-n", namespace])
            .args([
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ])
            .output()
            .expect("kubectl");
        if String::from_utf8_lossy(&out.stdout).trim() == "True" {
            return;
        }
        assert!(Instant::now() < deadline, "{namespace}/{name} not Ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Name → resourceVersion of every Secret in `namespace`.
fn secret_versions(cp: &ControlPlane, namespace: &str) -> BTreeMap<String, String> {
    let out = kubectl_ok(cp, &["get", "secrets", "-n", namespace, "-o", "json"]);
    let list: Value = serde_json::from_str(&out).expect("secret list");
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                s["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

/// Waits until `pod`'s /metrics reports every resource of the fleet as Ready: it has
/// reconciled each of them since it started.
async fn wait_for_fleet_reconciled(cp: &ControlPlane, pod: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let out = cp
            .kubectl_command()
            .args([
                "get",
                "--raw",
                &format!("/api/v1/namespaces/{RELEASE_NAMESPACE}/pods/{pod}:8080/proxy/metrics"),
            ])
            .output()
            .expect("kubectl");
        let reported = samples(&String::from_utf8_lossy(&out.stdout))
            .iter()
            .filter(|(series, value)| {
                series.starts_with("keysmith_ready{")
                    && series.contains("namespace=\"fleet\"")
                    && **value == 1.0
            })
            .count();
        if reported == FLEET {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{pod} reports {reported} of {FLEET} fleet resources Ready"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn audit_line_count(cp: &ControlPlane) -> usize {
    std::fs::read_to_string(cp.audit_log())
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// The audited requests after the first `skip` lines of the log.
fn audit_since(cp: &ControlPlane, skip: usize) -> Vec<AuditEvent> {
    std::fs::read_to_string(cp.audit_log())
        .unwrap_or_default()
        .lines()
        .skip(skip)
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The source addresses of the operator's successful writes in `namespace`, in the order
/// they took turns: `[a, b]` when pod a wrote, then pod b.
fn writers(events: &[AuditEvent], namespace: &str) -> Vec<String> {
    let mut turns: Vec<String> = Vec::new();
    for event in events {
        let in_namespace = event
            .object_ref
            .as_ref()
            .and_then(|o| o.namespace.as_deref())
            == Some(namespace);
        let succeeded = event
            .response_status
            .as_ref()
            .and_then(|s| s.code)
            .is_some_and(|c| (200..300).contains(&c));
        if event.user.username != SERVICE_ACCOUNT || !in_namespace || !event.is_write() {
            continue;
        }
        if !succeeded {
            continue;
        }
        let source = event.source_ips.first().cloned().unwrap_or_default();
        if turns.last() != Some(&source) {
            turns.push(source);
        }
    }
    turns
}

/// Waits until the operator's pods are gone (after `helm uninstall`), so the node stops none.
pub(crate) async fn wait_for_no_pods(cp: &ControlPlane) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = kubectl_ok(cp, &["get", "pods", "-n", RELEASE_NAMESPACE, "-o", "name"]);
        if out.trim().is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "pods left: {out}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
