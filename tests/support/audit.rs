//! The API server's audit log, to count the requests the operator makes: a quiet operator
//! writes nothing when everything is Ready (api.md 1.2).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Logs every write, and reads of single Secrets (each reconcile reads its target Secret
/// once, which proves a reconcile happened), lists and watches of keysmith's resources (when
/// a watch broke and was started again), and every request of a ServiceAccount (only a
/// test's restricted operator identity is one, e.g. the Helm chart's: which permissions it
/// uses, which it lacks, where it looks). Metadata only: no request or response bodies, so Secret data never reaches the log.
const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  userGroups: ["system:serviceaccounts"]
- level: Metadata
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
- level: Metadata
  verbs: ["get"]
  resources: [{group: "", resources: ["secrets"]}]
- level: Metadata
  verbs: ["list", "watch"]
  resources: [{group: "keysmith.dev"}]
- level: None
"#;

const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

/// Writes the audit policy into `dir` and returns its path.
pub fn write_policy(dir: &Path) -> std::io::Result<PathBuf> {
    let path = dir.join("audit-policy.yaml");
    std::fs::write(&path, POLICY)?;
    Ok(path)
}

/// One audited request.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// `ResponseStarted` (long-running requests such as watches) or `ResponseComplete`.
    #[serde(default)]
    pub stage: String,
    /// When the request reached that stage (RFC 3339).
    #[serde(default)]
    pub stage_timestamp: String,
    /// create, update, patch, delete, ...
    pub verb: String,
    /// Who.
    pub user: AuditUser,
    /// On what.
    #[serde(default)]
    pub object_ref: Option<AuditObject>,
    /// The request path.
    pub request_u_r_i: String,
    /// Response status.
    #[serde(default)]
    pub response_status: Option<AuditStatus>,
    /// The client's addresses (a pod's IP for an operator in a pod).
    #[serde(default, rename = "sourceIPs")]
    pub source_ips: Vec<String>,
}

/// The user of a request.
#[derive(Debug, Clone, Deserialize)]
pub struct AuditUser {
    /// User name.
    pub username: String,
}

/// The object of a request.
#[derive(Debug, Clone, Deserialize)]
pub struct AuditObject {
    /// API group; empty for the core group.
    #[serde(default, rename = "apiGroup")]
    pub api_group: String,
    /// Resource, e.g. `secrets`.
    #[serde(default)]
    pub resource: String,
    /// Namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Subresource, e.g. `status`.
    #[serde(default)]
    pub subresource: Option<String>,
}

/// Response status of a request.
#[derive(Debug, Clone, Deserialize)]
pub struct AuditStatus {
    /// HTTP code.
    #[serde(default)]
    pub code: Option<u16>,
}

/// Every audited request by `user` in `namespace` so far, in order.
pub fn requests(log: &Path, user: &str, namespace: &str) -> Vec<AuditEvent> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<AuditEvent>(line).ok())
        .filter(|e| e.user.username == user)
        .filter(|e| e.object_ref.as_ref().and_then(|o| o.namespace.as_deref()) == Some(namespace))
        .collect()
}

/// Every audited request by `user` so far, in any namespace or none, in order.
pub fn requests_by(log: &Path, user: &str) -> Vec<AuditEvent> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<AuditEvent>(line).ok())
        .filter(|e| e.user.username == user)
        .collect()
}

/// Every audited write by `user` in `namespace` so far, in order.
pub fn writes(log: &Path, user: &str, namespace: &str) -> Vec<AuditEvent> {
    requests(log, user, namespace)
        .into_iter()
        .filter(AuditEvent::is_write)
        .collect()
}

impl AuditEvent {
    /// True for create, update, patch and delete requests.
    pub fn is_write(&self) -> bool {
        WRITE_VERBS.contains(&self.verb.as_str())
    }

    /// `verb resource[/subresource] name`, for assertion messages.
    pub fn describe(&self) -> String {
        let o = self.object_ref.as_ref();
        format!(
            "{} {}{} {}",
            self.verb,
            o.map(|o| o.resource.as_str()).unwrap_or(""),
            o.and_then(|o| o.subresource.as_deref())
                .map(|s| format!("/{s}"))
                .unwrap_or_default(),
            o.and_then(|o| o.name.as_deref()).unwrap_or("")
        )
    }
}
