//! KmsAuthKey: an authentication key (key id, tag, passphrase) stored in a Secret and
//! registered on the servers of a KeyManager (api.md section 5).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CommonStatus, LocalObjectReference, Rotation, SecretKeySelector, Target};

/// An authentication key (key id, tag and a 20-32 character passphrase) stored in a Secret
/// and registered on the KMIP servers of a KeyManager.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "keysmith.dev",
    version = "v1alpha1",
    kind = "KmsAuthKey",
    namespaced,
    status = "KmsAuthKeyStatus",
    shortname = "kmsak",
    category = "keysmith",
    derive = "PartialEq",
    doc = "An authentication key (key id, tag and a 20-32 character passphrase) stored in a Secret and registered on the KMIP servers of a KeyManager.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Secret", type_ = "string", json_path = ".status.secretName"),
    printcolumn(
        name = "Fingerprint",
        type_ = "string",
        json_path = ".status.fingerprint"
    ),
    printcolumn(
        name = "Next rotation",
        type_ = "date",
        json_path = ".status.nextRotationTime"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.passphrase) && has(self.passphraseSecretRef))")
    .message("passphrase and passphraseSecretRef are mutually exclusive: generate one or bring your own")
    .field_path(".passphraseSecretRef"))]
pub struct KmsAuthKeySpec {
    /// The KeyManager (same namespace) whose servers the key is registered on.
    pub key_manager_ref: LocalObjectReference,
    /// Key tag, 0 to 32 printable ASCII characters without spaces, tabs or newlines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = r"^[!-~]*$"))]
    pub key_tag: Option<String>,
    /// Generate the passphrase (the default when passphraseSecretRef is not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<PassphraseSpec>,
    /// Bring your own passphrase: a Secret key holding 20 to 32 printable ASCII characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase_secret_ref: Option<SecretKeySelector>,
    /// Key identifier, lowercase hex. Default: generated, 80 hex characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-f]{2,80}$"))]
    pub key_id: Option<String>,
    /// What happens to the server objects when the resource is deleted: `Destroy` (default:
    /// revoke and destroy) or `Retain`.
    #[serde(default)]
    pub server_objects: ServerObjectsPolicy,
    /// The Secret the key is written to (`passphrase`, `key-id`, `key-tag`).
    #[serde(default)]
    pub target: Target,
    /// When the key is rotated: the new key is registered, then the old one destroyed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
}

/// How a passphrase is generated.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct PassphraseSpec {
    /// Length, 20 to 32 printable ASCII characters (may contain `=`). Default 32.
    #[serde(default = "default_passphrase_length")]
    #[schemars(range(min = 20, max = 32))]
    pub length: u32,
}

fn default_passphrase_length() -> u32 {
    32
}

/// What happens to server objects on deletion.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ServerObjectsPolicy {
    /// Revoke and destroy the objects on every server.
    #[default]
    Destroy,
    /// Leave them on the servers.
    Retain,
}

/// What keysmith observed of a KmsAuthKey.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct KmsAuthKeyStatus {
    /// Fields every kind reports; `fingerprint` is `SHA256:<hex>` of the passphrase.
    #[serde(flatten)]
    pub common: CommonStatus,
    /// The key id in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The key tag in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_tag: Option<String>,
    /// Registration on each server of the KeyManager.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["name".into()]))]
    pub servers: Vec<KmsAuthKeyServerStatus>,
}

/// Registration of a key on one server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KmsAuthKeyServerStatus {
    /// The server's name in the KeyManager.
    pub name: String,
    /// `Registered`, `Failed` or `Pending`.
    pub state: PushState,
    /// The server's identifier of the registered object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_identifier: Option<String>,
    /// Why registration failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When registration was last attempted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_time: Option<Time>,
}

/// Registration state on one server.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PushState {
    /// The key is registered.
    Registered,
    /// Registration failed.
    Failed,
    /// Not attempted yet.
    Pending,
}
