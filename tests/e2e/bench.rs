//! Not tests: `bench/reconcile.sh` runs [`reconcile`] to measure the operator at scale on the
//! local control plane and print tables (testing.md: benchmarks are never timed assertions).
//!
//! For each load and size N, in a control plane of its own: N resources are created over 10
//! namespaces while no operator runs; then the operator (a release build, with the Helm
//! chart's flags and only its ServiceAccount's RBAC) starts, and the bench measures the time
//! until every resource is Ready, the operator's CPU seconds and peak RSS, and its API
//! requests (from the API server's audit log). Then, with everything Ready, a restart: the
//! time until caches are synced, the writes of the full resync (should be none) and the idle
//! RSS. Last, the floor: a bare client that writes the same Secrets and status patches to N
//! resources of its own, with the operator's concurrency.
//!
//! Settings (environment): `BENCH_SIZES` (default `100,1000`), `BENCH_LOADS` (`ckp,mixed`),
//! `KEYSMITH_OPERATOR_BIN` (the binary to measure; `bench/reconcile.sh` builds it with
//! `--release`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

use crate::chart;
use crate::support::ControlPlane;
use crate::support::audit::{self, AuditEvent};
use crate::support::endpoints::{free_port, get};
use crate::support::operator::OperatorProcess;

const NAMESPACES: usize = 10;
/// The operator's `--concurrency` (reconciles at once per kind), also the bare client's.
const CONCURRENCY: usize = 4;
const SERVICE_ACCOUNT: &str = "system:serviceaccount:keysmith-system:keysmith";

/// One resource of a load: its kind, its plural, and its spec.
struct Item {
    kind: &'static str,
    plural: &'static str,
    spec: serde_json::Value,
}

/// The `i`th resource of `load` (`ckp`: CertificateKeyPairs only; `mixed`: 25% each of
/// CertificateKeyPair, SshKey, KeyringSecret psk and KeyringSecret pkey_cert).
fn item(load: &str, i: usize) -> Item {
    let ckp = || Item {
        kind: "CertificateKeyPair",
        plural: "certificatekeypairs",
        spec: json!({"commonName": format!("r{i}.example.com")}),
    };
    if load == "ckp" {
        return ckp();
    }
    match i % 4 {
        0 => ckp(),
        1 => Item {
            kind: "SshKey",
            plural: "sshkeys",
            spec: json!({"comment": format!("r{i}@bench")}),
        },
        2 => Item {
            kind: "KeyringSecret",
            plural: "keyringsecrets",
            spec: json!({"type": "psk", "params": {"psk": {"length": 32}}}),
        },
        _ => Item {
            kind: "KeyringSecret",
            plural: "keyringsecrets",
            spec: json!({"type": "pkey_cert", "params": {"pkey_cert": {"commonName": format!("r{i}.example.com")}}}),
        },
    }
}

fn api_of(client: &kube::Client, item: &Item, namespace: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("keysmith.dev", "v1alpha1", item.kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, item.plural);
    Api::namespaced_with(client.clone(), namespace, &resource)
}

fn namespace_of(prefix: &str, i: usize) -> String {
    format!("{prefix}-{}", i % NAMESPACES)
}

/// Creates the N resources of `load` named `r<i>` in the namespaces `<prefix>-0..9`, 32 at a time.
async fn create_resources(client: &kube::Client, load: &str, prefix: &str, n: usize) {
    create_load(client, load, n, |i| namespace_of(prefix, i)).await;
}

/// Creates the N resources of `load` named `r<i>`, the `i`th in namespace `namespace(i)`,
/// 32 at a time.
pub(crate) async fn create_load(
    client: &kube::Client,
    load: &str,
    n: usize,
    namespace: impl Fn(usize) -> String,
) {
    let namespace = &namespace;
    stream::iter(0..n)
        .map(|i| {
            let client = client.clone();
            async move {
                let item = item(load, i);
                let namespace = namespace(i);
                let object: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "keysmith.dev/v1alpha1",
                    "kind": item.kind,
                    "metadata": {"name": format!("r{i}"), "namespace": namespace},
                    "spec": item.spec,
                }))
                .expect("object");
                api_of(&client, &item, &namespace)
                    .create(&PostParams::default(), &object)
                    .await
                    .map(drop)
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await
        .expect("create resources");
}

async fn create_namespaces(cp: &ControlPlane, prefix: &str) {
    for i in 0..NAMESPACES {
        chart::kubectl_ok(cp, &["create", "namespace", &format!("{prefix}-{i}")]);
    }
}

/// What /proc says about a process: resident set now and at its peak (MiB), CPU seconds.
struct Usage {
    rss_mib: f64,
    peak_rss_mib: f64,
    cpu_seconds: f64,
}

fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib = |field: &str| {
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_default()
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // utime and stime are fields 14 and 15 of the line; after the command name (which may
    // hold spaces, so split at its closing parenthesis) they are the 12th and 13th.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // USER_HZ, 100 on Linux (sysconf(_SC_CLK_TCK)).
    let clock_ticks = 100.0;
    Usage {
        rss_mib: kib("VmRSS:") / 1024.0,
        peak_rss_mib: kib("VmHWM:") / 1024.0,
        cpu_seconds: (ticks(11) + ticks(12)) / clock_ticks,
    }
}

/// How many resources the operator reports Ready (`keysmith_ready` series at 1).
fn ready_count(metrics_port: u16) -> usize {
    get(metrics_port, "/metrics")
        .map(|(_, body)| {
            body.lines()
                .filter(|l| l.starts_with("keysmith_ready{") && l.ends_with(" 1"))
                .count()
        })
        .unwrap_or(0)
}

/// The sum of `keysmith_reconcile_total` over kinds and results.
fn reconciles(metrics_port: u16) -> f64 {
    get(metrics_port, "/metrics")
        .map(|(_, body)| {
            body.lines()
                .filter(|l| l.starts_with("keysmith_reconcile_total{"))
                .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
                .sum()
        })
        .unwrap_or(0.0)
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < timeout,
            "{what}: not within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    started.elapsed()
}

/// Requests of the operator's ServiceAccount audited so far: (reads, writes), counting each
/// request once (long-running watches are audited when they start and when they end).
fn requests(log: &Path) -> (Vec<AuditEvent>, Vec<AuditEvent>) {
    audit::requests_by(log, SERVICE_ACCOUNT)
        .into_iter()
        .filter(|e| e.stage == "ResponseComplete")
        .partition(|e| !e.is_write())
}

/// A write of the leader Lease (renewals: the operator's heartbeat, not a resource write).
fn is_lease(event: &AuditEvent) -> bool {
    event
        .object_ref
        .as_ref()
        .is_some_and(|o| o.resource == "leases")
}

/// One row of the results.
#[derive(Default)]
struct Row {
    load: String,
    n: usize,
    ready_after: Duration,
    cpu_seconds: f64,
    peak_rss_mib: f64,
    reads_per_resource: f64,
    writes_per_resource: f64,
    writes_by_verb: BTreeMap<String, usize>,
    idle_rss_empty_mib: f64,
    idle_rss_full_mib: f64,
    synced_after: Duration,
    resync_writes: usize,
    baseline: Duration,
}

fn operator_binary() -> PathBuf {
    std::env::var_os("KEYSMITH_OPERATOR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_keysmith")))
}

struct Running {
    operator: OperatorProcess,
    metrics_port: u16,
    health_port: u16,
}

fn start_operator(cp: &ControlPlane, dir: &Path, log: &str) -> Running {
    let (metrics_port, health_port) = (free_port(), free_port());
    let mut args = chart::chart_operator_args(&chart::render(&[]), metrics_port, health_port);
    // The chart's json logs, at info: what the operator costs in production.
    args.retain(|a| a != "--log-format=text");
    let operator = OperatorProcess::start_binary(
        &operator_binary(),
        &chart::service_account_kubeconfig(cp),
        &dir.join(log),
        &args,
        "info",
    );
    Running {
        operator,
        metrics_port,
        health_port,
    }
}

async fn synced(running: &Running) -> Duration {
    let port = running.health_port;
    wait_until("caches synced", Duration::from_secs(300), || {
        get(port, "/readyz").is_some_and(|(code, _)| code == 200)
    })
    .await
}

/// One load at one size, in a control plane of its own.
async fn measure(load: &str, n: usize) -> Row {
    let cp = ControlPlane::start().expect("a control plane of its own");
    let dir = tempfile::tempdir().expect("tempdir");
    chart::install_crds_and_rbac(&cp);
    let client = cp.client();
    let mut row = Row {
        load: load.to_owned(),
        n,
        ..Row::default()
    };

    // Idle with nothing to manage.
    let empty = start_operator(&cp, dir.path(), "empty.log");
    synced(&empty).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    row.idle_rss_empty_mib = usage(empty.operator.pid()).rss_mib;
    assert!(empty.operator.terminate(), "keysmith did not stop");

    create_namespaces(&cp, "bench").await;
    create_resources(&client, load, "bench", n).await;
    let (reads_before, writes_before) = requests(cp.audit_log());

    // First issuance of everything.
    let running = start_operator(&cp, dir.path(), "first.log");
    let port = running.metrics_port;
    row.ready_after = wait_until("all Ready", Duration::from_secs(3600), || {
        ready_count(port) >= n
    })
    .await;
    let spent = usage(running.operator.pid());
    row.cpu_seconds = spent.cpu_seconds;
    row.peak_rss_mib = spent.peak_rss_mib;
    tokio::time::sleep(Duration::from_secs(3)).await;
    row.idle_rss_full_mib = usage(running.operator.pid()).rss_mib;
    assert!(running.operator.terminate(), "keysmith did not stop");
    let (reads, writes) = requests(cp.audit_log());
    let new_writes = &writes[writes_before.len()..];
    row.reads_per_resource = (reads.len() - reads_before.len()) as f64 / n as f64;
    row.writes_per_resource = new_writes.iter().filter(|w| !is_lease(w)).count() as f64 / n as f64;
    for write in new_writes {
        let object = write.object_ref.as_ref();
        let resource = object.map(|o| o.resource.as_str()).unwrap_or("");
        let sub = object
            .and_then(|o| o.subresource.as_deref())
            .map(|s| format!("/{s}"))
            .unwrap_or_default();
        *row.writes_by_verb
            .entry(format!("{} {resource}{sub}", write.verb))
            .or_default() += 1;
    }

    // A restart over everything Ready: caches synced, then a full resync writes nothing.
    let (_, writes_before) = requests(cp.audit_log());
    let restarted = start_operator(&cp, dir.path(), "restart.log");
    row.synced_after = synced(&restarted).await;
    let port = restarted.metrics_port;
    wait_until("resync", Duration::from_secs(3600), || {
        reconciles(port) >= n as f64
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(restarted.operator.terminate(), "keysmith did not stop");
    row.resync_writes = requests(cp.audit_log()).1[writes_before.len()..]
        .iter()
        .filter(|w| !is_lease(w))
        .count();

    // The floor: the same Secrets and status patches from a bare client.
    create_namespaces(&cp, "floor").await;
    create_resources(&client, load, "floor", n).await;
    row.baseline = bare_client(&client, load, n).await;
    row
}

/// A bare client that, for each of the N resources in the `floor-*` namespaces, writes a
/// Secret of the size keysmith writes and patches the status Ready, with the operator's
/// concurrency per kind; returns the time it took.
async fn bare_client(client: &kube::Client, load: &str, n: usize) -> Duration {
    let kinds = if load == "ckp" { 1 } else { 3 };
    let material = "x".repeat(1200);
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let (client, material, done) = (client.clone(), material.clone(), &done);
            async move {
                let item = item(load, i);
                let namespace = namespace_of("floor", i);
                let name = format!("r{i}");
                let secret: Secret = serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": namespace,
                                 "labels": {"app.kubernetes.io/managed-by": "keysmith"}},
                    "type": "kubernetes.io/tls",
                    "stringData": {"tls.crt": material, "tls.key": material},
                }))
                .expect("secret");
                Api::<Secret>::namespaced(client.clone(), &namespace)
                    .create(&PostParams::default(), &secret)
                    .await?;
                let status = json!({"status": {"conditions": [{
                    "type": "Ready", "status": "True", "reason": "Issued", "message": "bench",
                    "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
                api_of(&client, &item, &namespace)
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await?;
                done.fetch_add(1, Ordering::Relaxed);
                Ok::<(), kube::Error>(())
            }
        })
        .buffer_unordered(CONCURRENCY * kinds)
        .try_collect::<Vec<()>>()
        .await
        .expect("bare client writes");
    assert_eq!(done.load(Ordering::Relaxed), n);
    started.elapsed()
}

fn print_tables(rows: &[Row]) {
    println!("\n## Reconcile throughput (first issuance; operator = release build, chart flags)\n");
    println!(
        "| load | N | all Ready after | resources/s | bare client | keysmith/bare | operator CPU s | peak RSS MiB | reads/res | writes/res (no Lease) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let keysmith = r.n as f64 / r.ready_after.as_secs_f64();
        let floor = r.n as f64 / r.baseline.as_secs_f64();
        println!(
            "| {} | {} | {:.1} s | {:.0} | {:.0}/s | {:.0}% | {:.1} | {:.1} | {:.2} | {:.2} |",
            r.load,
            r.n,
            r.ready_after.as_secs_f64(),
            keysmith,
            floor,
            100.0 * keysmith / floor,
            r.cpu_seconds,
            r.peak_rss_mib,
            r.reads_per_resource,
            r.writes_per_resource
        );
    }
    println!("\n## Writes of the first issuance, by request\n");
    for r in rows {
        let parts: Vec<String> = r
            .writes_by_verb
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        println!("- {} N={}: {}", r.load, r.n, parts.join(", "));
    }
    println!("\n## Steady state\n");
    println!(
        "| load | N | RSS idle, nothing managed | RSS idle, N managed | start → caches synced | writes of the full resync (no Lease) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {:.1} MiB | {:.1} MiB | {:.2} s | {} |",
            r.load,
            r.n,
            r.idle_rss_empty_mib,
            r.idle_rss_full_mib,
            r.synced_after.as_secs_f64(),
            r.resync_writes
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: bench/reconcile.sh"]
async fn reconcile() {
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "100,1000".to_owned())
        .split(',')
        .map(|s| s.trim().parse().expect("BENCH_SIZES: numbers"))
        .collect();
    let loads = std::env::var("BENCH_LOADS").unwrap_or_else(|_| "ckp,mixed".to_owned());
    let mut rows = Vec::new();
    for load in loads.split(',').map(str::trim) {
        assert!(
            load == "ckp" || load == "mixed",
            "BENCH_LOADS: ckp or mixed"
        );
        for &n in &sizes {
            eprintln!("bench: {load} N={n} ...");
            rows.push(measure(load, n).await);
        }
    }
    print_tables(&rows);
}
