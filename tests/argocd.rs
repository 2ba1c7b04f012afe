//! The Argo CD health check (`docs/argocd/health.lua`) run by a real Lua 5.1 interpreter (the
//! Lua Argo CD embeds) against objects of every kind whose status is serialized from the
//! operator's own status types; and `docs/argocd/argocd-cm.yaml` carries exactly that script
//! for every kind.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use keysmith::api::common::{CommonStatus, Condition, ConditionStatus};
use serde_json::{Value, json};

const KINDS: [&str; 5] = [
    "CertificateKeyPair",
    "SshKey",
    "KeyringSecret",
    "KmsAuthKey",
    "KeyManager",
];

fn repo_file(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A Lua table literal of `value` (JSON null becomes nil).
fn lua(value: &Value) -> String {
    match value {
        Value::Null => "nil".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(lua).collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs the health check on `object` with `lua5.1`; returns (status, message).
fn health(object: &Value) -> (String, String) {
    let script = repo_file("docs/argocd/health.lua");
    let program = format!(
        "obj = {}\nlocal function check()\n{script}\nend\nlocal hs = check()\nio.write(hs.status, \"\\n\", hs.message or \"\", \"\\n\")\n",
        lua(object)
    );
    let mut child = Command::new("lua5.1")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lua5.1 (hack/install-deps.sh installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(program.as_bytes())
        .expect("write program");
    let out = child.wait_with_output().expect("lua5.1 ran");
    assert!(
        out.status.success(),
        "lua5.1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut lines = text.lines();
    let status = lines.next().unwrap_or_default().to_owned();
    let message = lines.next().unwrap_or_default().to_owned();
    (status, message)
}

fn condition(type_: &str, status: ConditionStatus, reason: &str, message: &str) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status,
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation: Some(3),
        last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
    }
}

/// An object of `kind` at generation 3 with `status` (serialized as the operator writes it).
fn object(kind: &str, status: Option<CommonStatus>) -> Value {
    let mut object = json!({
        "apiVersion": "keysmith.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "ns", "generation": 3},
        "spec": {},
    });
    if let Some(status) = status {
        object["status"] = serde_json::to_value(status).expect("status json");
    }
    object
}

fn status(observed: i64, conditions: Vec<Condition>) -> CommonStatus {
    CommonStatus {
        observed_generation: Some(observed),
        conditions,
        ..CommonStatus::default()
    }
}

#[test]
fn health_follows_ready_generating_and_observed_generation_for_every_kind() {
    use ConditionStatus::{False, True};
    let idle = || condition("Generating", False, "Idle", "no generation running");
    for kind in KINDS {
        let cases: Vec<(&str, Option<CommonStatus>, &str, &str)> = vec![
            ("no status", None, "Progressing", "Waiting for keysmith"),
            (
                "ready",
                Some(status(
                    3,
                    vec![
                        condition("Ready", True, "Issued", "valid until 2027"),
                        idle(),
                    ],
                )),
                "Healthy",
                "Issued: valid until 2027",
            ),
            (
                "first generation running",
                Some(status(
                    3,
                    vec![
                        condition(
                            "Ready",
                            False,
                            "Generating",
                            "generating 4096-bit DH parameters",
                        ),
                        condition(
                            "Generating",
                            True,
                            "Generating",
                            "generating 4096-bit DH parameters: running for 1m",
                        ),
                    ],
                )),
                "Progressing",
                "running for 1m",
            ),
            (
                "renewal running on valid material",
                Some(status(
                    3,
                    vec![
                        condition("Ready", True, "Issued", "valid"),
                        condition(
                            "Generating",
                            True,
                            "Generating",
                            "generating an RSA 8192 key",
                        ),
                    ],
                )),
                "Progressing",
                "RSA 8192",
            ),
            (
                "failed",
                Some(status(
                    3,
                    vec![
                        condition(
                            "Ready",
                            False,
                            "SecretConflict",
                            "Secret ns/x already exists",
                        ),
                        idle(),
                    ],
                )),
                "Degraded",
                "SecretConflict: Secret ns/x already exists",
            ),
            (
                "stale observedGeneration",
                Some(status(
                    2,
                    vec![condition("Ready", True, "Issued", "valid"), idle()],
                )),
                "Progressing",
                "current spec",
            ),
        ];
        for (name, status, want, message) in cases {
            let (got, said) = health(&object(kind, status));
            assert_eq!(got, want, "{kind}, {name}: {said}");
            assert!(
                said.contains(message),
                "{kind}, {name}: {said:?} lacks {message:?}"
            );
        }
    }
}

#[test]
fn argocd_cm_carries_the_health_check_for_every_kind() {
    let script = repo_file("docs/argocd/health.lua");
    let cm: Value = serde_norway::from_str(&repo_file("docs/argocd/argocd-cm.yaml")).expect("yaml");
    for kind in KINDS {
        let key = format!("resource.customizations.health.keysmith.dev_{kind}");
        let embedded = cm["data"][&key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} missing"));
        assert_eq!(
            embedded, script,
            "{key} differs from docs/argocd/health.lua"
        );
    }
}
