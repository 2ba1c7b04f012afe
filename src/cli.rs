//! The operator's command-line tools for people: `keysmith status` (what every resource
//! reports, in a table) and `keysmith rotate kind/name` (ask for new material). Both work
//! with any kubeconfig, also as the kubectl plugin `kubectl keysmith`. `keysmith inspect
//! secret` ([`inspect`]) reads a Secret and describes its material; `keysmith generate`
//! ([`generate`]) prints the Secrets the operator would create, without a cluster.

pub mod command;
pub mod generate;
pub mod inspect;

use std::fmt::Write as _;

use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use crate::API_GROUP;
use crate::reconcile::resource::ROTATE_ANNOTATION;

/// A keysmith kind as the command line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    /// The kind, e.g. `CertificateKeyPair`.
    pub kind: &'static str,
    /// The resource (plural) name.
    pub plural: &'static str,
    /// The short name.
    pub short: &'static str,
    /// Whether the kind has material to rotate.
    pub rotates: bool,
}

/// Every keysmith kind, in the order `status` lists them.
pub const KINDS: [Kind; 5] = [
    Kind {
        kind: "CertificateKeyPair",
        plural: "certificatekeypairs",
        short: "ckp",
        rotates: true,
    },
    Kind {
        kind: "SshKey",
        plural: "sshkeys",
        short: "sshkey",
        rotates: true,
    },
    Kind {
        kind: "KeyringSecret",
        plural: "keyringsecrets",
        short: "krs",
        rotates: true,
    },
    Kind {
        kind: "KmsAuthKey",
        plural: "kmsauthkeys",
        short: "kmsak",
        rotates: true,
    },
    Kind {
        kind: "KeyManager",
        plural: "keymanagers",
        short: "km",
        rotates: false,
    },
];

impl Kind {
    fn api_resource(self) -> ApiResource {
        let gvk = GroupVersionKind::gvk(API_GROUP, "v1alpha1", self.kind);
        ApiResource::from_gvk_with_plural(&gvk, self.plural)
    }
}

/// Errors of the command-line tools.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The `kind/name` argument is not one.
    #[error("{0}")]
    Usage(String),
    /// The API server refused or failed a request.
    #[error("{what}: {source}")]
    Api {
        /// What was asked.
        what: String,
        /// The error.
        source: kube::Error,
    },
}

/// Parses `kind/name`; the kind may be written as the kind, its plural or short name, in
/// any case, optionally with `.keysmith.dev`.
pub fn parse_target(text: &str) -> Result<(Kind, String), CliError> {
    let usage = || {
        CliError::Usage(format!(
            "{text:?} is not kind/name (kinds: {})",
            KINDS.map(|k| k.short).join(", ")
        ))
    };
    let (kind, name) = text.split_once('/').ok_or_else(usage)?;
    let kind = kind.to_ascii_lowercase();
    let kind = kind.strip_suffix(".keysmith.dev").unwrap_or(&kind);
    let found = KINDS
        .into_iter()
        .find(|k| [k.kind.to_ascii_lowercase().as_str(), k.plural, k.short].contains(&kind))
        .ok_or_else(usage)?;
    if name.is_empty() {
        return Err(usage());
    }
    Ok((found, name.to_owned()))
}

/// One line of `keysmith status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Namespace.
    pub namespace: String,
    /// `kind/name` (short kind).
    pub resource: String,
    /// `True`, `False` or `-`, with the reason.
    pub ready: String,
    /// Shortened fingerprint.
    pub fingerprint: String,
    /// End of validity, when the material expires.
    pub expires: String,
    /// Next renewal or rotation.
    pub next_rotation: String,
    /// The Ready message when not Ready.
    pub last_error: String,
}

/// The row of `object` of `kind` (its status as the operator wrote it).
pub fn row_of(kind: Kind, object: &Value) -> Row {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let status = &object["status"];
    let ready = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready");
    let (ready_text, last_error) = match ready {
        Some(c) if c["status"] == "True" => {
            (format!("True ({})", text(&c["reason"])), String::new())
        }
        Some(c) => (
            format!("{} ({})", text(&c["status"]), text(&c["reason"])),
            text(&c["message"]),
        ),
        None => ("-".to_owned(), String::new()),
    };
    let expires = [&status["notAfter"], &status["certificate"]["validBefore"]]
        .into_iter()
        .map(text)
        .find(|t| !t.is_empty())
        .unwrap_or_default();
    Row {
        namespace: text(&object["metadata"]["namespace"]),
        resource: format!("{}/{}", kind.short, text(&object["metadata"]["name"])),
        ready: ready_text,
        fingerprint: short_fingerprint(&text(&status["fingerprint"])),
        expires,
        next_rotation: text(&status["nextRotationTime"]),
        last_error,
    }
}

/// `SHA256:0123456789ab…`: enough to tell fingerprints apart in a table.
fn short_fingerprint(full: &str) -> String {
    const SHOWN: usize = 20;
    match full.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &full[..cut]),
        None => full.to_owned(),
    }
}

/// The table of `rows`, columns aligned; with `namespaces` a NAMESPACE column first.
pub fn render(rows: &[Row], namespaces: bool) -> String {
    let header = Row {
        namespace: "NAMESPACE".into(),
        resource: "RESOURCE".into(),
        ready: "READY".into(),
        fingerprint: "FINGERPRINT".into(),
        expires: "EXPIRES".into(),
        next_rotation: "NEXT ROTATION".into(),
        last_error: "LAST ERROR".into(),
    };
    let cells = |r: &Row| {
        let mut c = vec![
            r.resource.clone(),
            r.ready.clone(),
            r.fingerprint.clone(),
            r.expires.clone(),
            r.next_rotation.clone(),
            r.last_error.clone(),
        ];
        if namespaces {
            c.insert(0, r.namespace.clone());
        }
        c
    };
    let table: Vec<Vec<String>> = std::iter::once(&header).chain(rows).map(cells).collect();
    let columns = table.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            table
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &table {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == columns {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}   ", width = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The rows of every keysmith resource in `namespace` (every namespace with `None`), or of
/// the one resource `target`.
pub async fn status(
    client: &Client,
    namespace: Option<&str>,
    target: Option<(Kind, String)>,
) -> Result<Vec<Row>, CliError> {
    let mut rows = Vec::new();
    let kinds: Vec<Kind> = match &target {
        Some((kind, _)) => vec![*kind],
        None => KINDS.to_vec(),
    };
    for kind in kinds {
        let resource = kind.api_resource();
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let objects = match &target {
            Some((_, name)) => vec![api.get(name).await.map_err(|source| CliError::Api {
                what: format!("getting {}/{name}", kind.short),
                source,
            })?],
            None => {
                api.list(&ListParams::default())
                    .await
                    .map_err(|source| CliError::Api {
                        what: format!("listing {}", kind.plural),
                        source,
                    })?
                    .items
            }
        };
        for object in objects {
            let value = serde_json::to_value(&object).unwrap_or(Value::Null);
            rows.push(row_of(kind, &value));
        }
    }
    Ok(rows)
}

/// Sets `keysmith.dev/rotate` on `target` to `token`: the operator generates new material
/// once. Returns the token.
pub async fn rotate(
    client: &Client,
    namespace: &str,
    (kind, name): (Kind, String),
    token: String,
) -> Result<String, CliError> {
    if !kind.rotates {
        return Err(CliError::Usage(format!(
            "{} has no material to rotate",
            kind.kind
        )));
    }
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &kind.api_resource());
    let patch = json!({"metadata": {"annotations": {ROTATE_ANNOTATION: token}}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| CliError::Api {
            what: format!("annotating {}/{name}", kind.short),
            source,
        })?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_accept_kind_plural_and_short_names() {
        for text in [
            "ckp/web",
            "CertificateKeyPair/web",
            "certificatekeypairs/web",
            "ckp.keysmith.dev/web",
        ] {
            let (kind, name) = parse_target(text).unwrap();
            assert_eq!(
                (kind.kind, name.as_str()),
                ("CertificateKeyPair", "web"),
                "{text}"
            );
        }
        assert_eq!(parse_target("krs/vpn-psk").unwrap().0.kind, "KeyringSecret");
        for bad in ["web", "pod/web", "ckp/"] {
            let err = parse_target(bad).unwrap_err().to_string();
            assert!(
                err.contains("not kind/name") && err.contains("ckp, sshkey"),
                "{err}"
            );
        }
    }

    #[test]
    fn rows_show_readiness_expiry_and_the_error() {
        let ok = json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "status": {
                "conditions": [{"type": "Ready", "status": "True", "reason": "Issued", "message": "valid"}],
                "fingerprint": "SHA256:0123456789abcdef0123456789abcdef",
                "notAfter": "2027-01-01T00:00:00Z",
                "nextRotationTime": "2026-12-01T00:00:00Z"
            }
        });
        let row = row_of(KINDS[0], &ok);
        assert_eq!(row.resource, "ckp/web");
        assert_eq!(row.ready, "True (Issued)");
        assert_eq!(row.fingerprint, "SHA256:0123456789abc…");
        assert_eq!(row.expires, "2027-01-01T00:00:00Z");
        assert!(row.last_error.is_empty());
        let bad = json!({
            "metadata": {"name": "dev", "namespace": "shop"},
            "status": {
                "conditions": [{"type": "Ready", "status": "False", "reason": "SecretConflict", "message": "Secret shop/dev already exists"}],
                "certificate": {"validBefore": "2026-12-24T00:00:00Z"}
            }
        });
        let row = row_of(KINDS[1], &bad);
        assert_eq!(row.ready, "False (SecretConflict)");
        assert_eq!(row.last_error, "Secret shop/dev already exists");
        assert_eq!(row.expires, "2026-12-24T00:00:00Z");
        let fresh = row_of(
            KINDS[2],
            &json!({"metadata": {"name": "n", "namespace": "x"}}),
        );
        assert_eq!(fresh.ready, "-");
        let table = render(&[row_of(KINDS[0], &ok), row], false);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("RESOURCE"));
        assert_eq!(lines[1].find("True"), lines[0].find("READY"), "{table}");
        assert!(
            lines[2].ends_with("Secret shop/dev already exists"),
            "{table}"
        );
        assert!(render(&[], true).starts_with("NAMESPACE"));
    }
}
