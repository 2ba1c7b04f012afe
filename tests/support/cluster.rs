//! Helpers for tests that run the chart or the operator binary against a control plane:
//! kubectl and helm that panic with their error, every example applied as a user would, the
//! wait until all keysmith resources are Ready, and the metrics the examples must produce.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{ControlPlane, helm, repo_root};

/// Runs `helm` with `args` and returns its output; panics with it when helm fails.
pub fn helm_ok(args: &[&str]) -> String {
    let out = helm::run(args);
    assert!(
        out.status.success(),
        "helm {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The objects of a multi-document YAML stream (empty documents skipped).
pub fn documents(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .filter_map(|doc| {
            let value: Value = serde::Deserialize::deserialize(doc).expect("YAML document");
            (!value.is_null()).then_some(value)
        })
        .collect()
}

/// Runs kubectl with `args` and returns its output; panics with kubectl's error.
pub fn kubectl_ok(cp: &ControlPlane, args: &[&str]) -> String {
    let out = cp.kubectl_command().args(args).output().expect("kubectl");
    assert!(
        out.status.success(),
        "kubectl {}: {}",
        args.join(" "),
        super::stderr(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Like [`kubectl_ok`], with `input` on standard input.
pub fn kubectl_stdin_ok(cp: &ControlPlane, args: &[&str], input: &str) -> String {
    let mut child = cp
        .kubectl_command()
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("kubectl");
    assert!(
        out.status.success(),
        "kubectl {}: {}",
        args.join(" "),
        super::stderr(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every keysmith resource in the cluster, as `kubectl get -o json` shows it.
pub fn keysmith_resources(cp: &ControlPlane) -> Vec<Value> {
    let out = kubectl_ok(
        cp,
        &[
            "get",
            "certificatekeypairs,sshkeys,keyringsecrets,keymanagers,kmsauthkeys",
            "-A",
            "-o",
            "json",
        ],
    );
    let list: Value = serde_json::from_str(&out).expect("kubectl JSON");
    list["items"].as_array().cloned().unwrap_or_default()
}

/// Whether `object` has the condition `type_` with status True.
pub fn condition_true(object: &Value, type_: &str) -> bool {
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == type_ && c["status"] == "True")
}

/// Whether `object` is Ready.
pub fn is_ready(object: &Value) -> bool {
    condition_true(object, "Ready")
}

/// Fresh DH parameters (the dhparam-generate example) can take many minutes on a busy
/// machine; reporting progress is what the operator owes until then.
pub fn is_generating(object: &Value) -> bool {
    condition_true(object, "Generating")
}

/// Ready, or still generating and reporting progress.
pub fn settled(object: &Value) -> bool {
    is_ready(object) || is_generating(object)
}

/// Kind, namespace, name and conditions, for messages.
pub fn describe(object: &Value) -> String {
    format!(
        "{} {}/{}: {}",
        object["kind"].as_str().unwrap_or_default(),
        object["metadata"]["namespace"].as_str().unwrap_or_default(),
        object["metadata"]["name"].as_str().unwrap_or_default(),
        object["status"]["conditions"]
    )
}

/// Waits until every keysmith resource is Ready (or still generating, reporting progress)
/// and returns them.
pub async fn all_ready(
    cp: &ControlPlane,
    expected: usize,
    operator_log: impl Fn() -> String,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let objects = keysmith_resources(cp);
        if objects.len() == expected && objects.iter().all(settled) {
            return objects;
        }
        if Instant::now() > deadline {
            let pending: Vec<String> = objects
                .iter()
                .filter(|o| !settled(o))
                .map(describe)
                .collect();
            let log = operator_log();
            let tail = &log[log.len().saturating_sub(4000)..];
            panic!(
                "{} of {expected} resources, not Ready: {pending:#?}\noperator log tail:\n{tail}",
                objects.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Applies every example as a user would; the KMIP example (when given) against two local
/// PyKMIP servers (its addresses and TLS Secrets replaced). Returns how many keysmith
/// resources it created.
pub fn apply_examples(cp: &ControlPlane, namespace: &str, kms_manifest: Option<&str>) -> usize {
    let mut resources = 0;
    let count = |out: &str| out.lines().filter(|l| l.contains(".keysmith.dev/")).count();
    for dir in ["certificatekeypair", "sshkey", "keyringsecret"] {
        let mut files: Vec<_> = std::fs::read_dir(repo_root().join("examples").join(dir))
            .expect("examples dir")
            .filter_map(|e| Some(e.ok()?.path()))
            .collect();
        files.sort();
        for file in files {
            let path = file.to_string_lossy().into_owned();
            // An example that names its namespaces (cross-namespace-issuer) goes where it says.
            let names_namespaces = std::fs::read_to_string(&file)
                .expect("example")
                .contains("\n  namespace: ");
            let out = if names_namespaces {
                kubectl_ok(cp, &["apply", "-f", &path])
            } else {
                kubectl_ok(cp, &["apply", "-n", namespace, "-f", &path])
            };
            resources += count(&out);
        }
    }
    if let Some(kms_manifest) = kms_manifest {
        let out = kubectl_stdin_ok(cp, &["apply", "-n", namespace, "-f", "-"], kms_manifest);
        resources += count(&out);
    }
    resources
}

/// Metric samples by series (`name{labels}` exactly as exposed) with their values.
pub fn samples(exposition: &str) -> BTreeMap<String, f64> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// An RFC 3339 time as Unix seconds.
pub fn unix_seconds(rfc3339: &str) -> f64 {
    let time: jiff::Timestamp = rfc3339.parse().expect("RFC 3339 time");
    time.as_second() as f64
}

/// The metrics the examples must produce (api.md section 7), with the values their status
/// implies.
pub fn check_metrics(
    metrics: &BTreeMap<String, f64>,
    objects: &[Value],
    kmip_addresses: &[String],
) {
    let value = |series: &str| {
        *metrics
            .get(series)
            .unwrap_or_else(|| panic!("no {series} in /metrics"))
    };
    let mut per_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        *per_kind.entry(kind).or_default() += 1;
        // A generation may finish between the listing and the scrape.
        if kind == "KeyManager" || is_generating(object) {
            continue;
        }
        let labels = format!(
            "{{kind=\"{kind}\",namespace=\"{}\",name=\"{}\"}}",
            object["metadata"]["namespace"].as_str().unwrap_or_default(),
            object["metadata"]["name"].as_str().unwrap_or_default()
        );
        assert_eq!(value(&format!("keysmith_ready{labels}")), 1.0, "{labels}");
        if let Some(not_after) = object["status"]["notAfter"].as_str() {
            assert_eq!(
                value(&format!("keysmith_expiration_timestamp_seconds{labels}")),
                unix_seconds(not_after),
                "{labels}"
            );
        }
        if let Some(next) = object["status"]["nextRotationTime"].as_str() {
            assert_eq!(
                value(&format!("keysmith_next_rotation_timestamp_seconds{labels}")),
                unix_seconds(next),
                "{labels}"
            );
        }
    }
    for (kind, count) in &per_kind {
        if *kind == "KeyManager" {
            continue;
        }
        let successes = value(&format!(
            "keysmith_reconcile_total{{kind=\"{kind}\",result=\"success\"}}"
        ));
        assert!(successes >= *count as f64, "{kind}: {successes} < {count}");
        assert!(
            value(&format!(
                "keysmith_reconcile_duration_seconds_count{{kind=\"{kind}\"}}"
            )) >= successes
        );
    }
    // A generation: the RSA 4096 key of the full-subject example.
    assert!(
        value(
            "keysmith_generate_duration_seconds_count{kind=\"CertificateKeyPair\",algorithm=\"RSA-4096\"}"
        ) >= 1.0
    );
    for address in kmip_addresses {
        assert!(
            value(&format!(
                "keysmith_kmip_requests_total{{server=\"{address}\",operation=\"Register\",result=\"success\"}}"
            )) >= 1.0,
            "{address}"
        );
    }
}
