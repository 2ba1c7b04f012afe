//! KeyManager: an external key manager (its KMIP servers) that KmsAuthKeys are registered on
//! (api.md section 5).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CommonStatus, LocalObjectReference, SecretKeySelector};

/// An external key manager: the KMIP servers (KMIP 1.x over mutual TLS) that KmsAuthKeys
/// are registered on.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "keysmith.dev",
    version = "v1alpha1",
    kind = "KeyManager",
    namespaced,
    status = "KeyManagerStatus",
    shortname = "km",
    category = "keysmith",
    derive = "PartialEq",
    doc = "An external key manager: the KMIP servers (KMIP 1.x over mutual TLS) that KmsAuthKeys are registered on.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Enabled", type_ = "boolean", json_path = ".spec.enabled"),
    printcolumn(name = "Keys", type_ = "integer", json_path = ".status.authKeyCount"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KeyManagerSpec {
    /// false: KmsAuthKeys referring to this manager report `KeyManagerDisabled` ("external key
    /// management is not enabled"). Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Most KmsAuthKeys that may reference this manager, 1 to 1024. Default 16.
    #[serde(default = "default_max_auth_keys")]
    #[schemars(range(min = 1, max = 1024))]
    pub max_auth_keys: u32,
    /// The KMIP servers, keyed by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["name".into()]))]
    pub servers: Vec<KmipServer>,
}

fn default_true() -> bool {
    true
}

fn default_max_auth_keys() -> u32 {
    16
}

/// One KMIP server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KmipServer {
    /// A name for the server, unique within the KeyManager.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// `host:port` or `host` (port 5696), e.g. `kmip-a.example.com:5696` or `[2001:db8::1]:5696`.
    #[schemars(
        length(min = 1, max = 261),
        regex(
            pattern = r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?)(:[0-9]{1,5})?$"
        )
    )]
    pub address: String,
    /// TLS server name to verify. Default: the host of address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub server_name: Option<String>,
    /// The CA certificate (PEM) that verifies the server.
    pub ca_secret_ref: SecretKeySelector,
    /// A `kubernetes.io/tls` Secret (tls.crt, tls.key) with the client certificate.
    pub client_certificate_secret_ref: LocalObjectReference,
}

/// What keysmith observed of a KeyManager.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyManagerStatus {
    /// Fields every kind reports. Ready: at least one server reachable.
    #[serde(flatten)]
    pub common: CommonStatus,
    /// KmsAuthKeys referencing this manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_key_count: Option<u32>,
    /// Per-server reachability.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["name".into()]))]
    pub servers: Vec<KmipServerStatus>,
}

/// Reachability of one KMIP server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KmipServerStatus {
    /// The server's name in spec.servers.
    pub name: String,
    /// Whether the last check reached the server.
    pub reachable: bool,
    /// When reachability last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checked_time: Option<Time>,
    /// Why the server is not reachable.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}
