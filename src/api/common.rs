//! Types shared by every keysmith kind: where material goes (`target`), when it is rotated
//! (`rotation`), references, conditions and the condition reasons.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use kube::core::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Go/Kubernetes duration such as `90m`, `2160h` or `1h30m` (units ns, us, ms, s, m, h).
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";
/// A DNS-1123 subdomain: the name of a Secret, a namespace or a keysmith resource.
pub const DNS_SUBDOMAIN_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A DNS-1123 label: the name of a namespace.
pub const DNS_LABEL_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// A Secret data key: alphanumerics, `-`, `_` and `.`.
pub const SECRET_KEY_PATTERN: &str = r"^[-._a-zA-Z0-9]+$";

/// Where the generated material is written.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Name of the Secret, in the resource's namespace. Defaults to the resource's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub name: Option<String>,
    /// Labels added to the Secret (the resource's own labels are not copied).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations added to the Secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// What happens to the Secret when the resource is deleted. `Delete` (default): keysmith's
    /// finalizer deletes it (and the key Secret of a non-exportable key) before the resource
    /// goes. `Retain`: it survives, and a resource created again with this name takes it
    /// back. Secrets never carry an ownerReference, so a restore that brings back stale
    /// ones cannot have them garbage-collected.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// What to do when the Secret already exists and keysmith does not own it. `Fail`
    /// (default): leave it untouched and report `SecretConflict`. `Adopt`: take it over if its
    /// data is valid material that satisfies the spec, keeping the material. Either way, a
    /// Secret written for an earlier resource of this kind and name that no longer exists
    /// (a restore) is taken back when its material is valid and satisfies the spec.
    #[serde(default)]
    pub existing_secret: ExistingSecretPolicy,
}

/// What happens to the target Secret when its resource is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// keysmith's finalizer deletes the Secret before the resource goes.
    #[default]
    Delete,
    /// The Secret is kept.
    Retain,
}

/// How a target Secret that keysmith does not own is treated.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ExistingSecretPolicy {
    /// Never touch it; report `SecretConflict`.
    #[default]
    Fail,
    /// Adopt it when its data satisfies the spec; otherwise report `SecretConflict`.
    Adopt,
}

/// When material is renewed or rotated. A rotation can also be requested at any time with
/// the annotation `keysmith.dev/rotate: "<any new value>"`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new(
    "!(has(self.renewBefore) && has(self.renewBeforePercentage))"
).message("renewBefore and renewBeforePercentage are mutually exclusive: set at most one"))]
pub struct Rotation {
    /// Rotate non-certificate material after this age (e.g. `720h`). Default: never.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::duration::deserialize_option"
    )]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    #[x_kube(validation = kube::core::Rule::new("duration(self) >= duration('1m')")
        .message("every must be at least 1m"))]
    pub every: Option<Duration>,
    /// Certificates: renew this long before they expire (e.g. `360h`). Default: one third of
    /// the certificate's validity. Must be shorter than the validity.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::duration::deserialize_option"
    )]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    #[x_kube(validation = kube::core::Rule::new("duration(self) > duration('0s')")
        .message("renewBefore must be positive"))]
    pub renew_before: Option<Duration>,
    /// Certificates: renew when this percentage of the validity remains (1-99); an
    /// alternative to renewBefore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 99))]
    pub renew_before_percentage: Option<u8>,
    /// Keep the previous material under `<key>.previous` in the Secret until the next rotation.
    #[serde(default)]
    pub keep_previous: bool,
}

/// A key of a Secret in the resource's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretKeySelector {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253), regex(pattern = SECRET_KEY_PATTERN))]
    pub key: String,
}

/// A reference to an object by name in the resource's own namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct LocalObjectReference {
    /// Name of the object.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
}

/// A reference to an issuing CA: a CertificateKeyPair with `isCA: true`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct IssuerReference {
    /// Name of the CA CertificateKeyPair.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
    /// Namespace of the CA; default: the resource's own namespace. Another namespace is only
    /// allowed when the CA lists this resource's namespace in `ca.allowedNamespaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = DNS_LABEL_PATTERN))]
    pub namespace: Option<String>,
}

/// The state of one aspect of a resource (`Ready`, `Generating`), as in Kubernetes' own
/// `metav1.Condition`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The aspect: `Ready` or `Generating`.
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 316))]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// Why the condition is in its state: a CamelCase reason such as `Issued` or
    /// `SecretConflict`.
    #[schemars(length(min = 1, max = 1024))]
    pub reason: String,
    /// What happened, for a person.
    #[serde(default)]
    #[schemars(length(max = 32768))]
    pub message: String,
    /// The `metadata.generation` this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When `status` last changed.
    pub last_transition_time: Time,
}

/// The status of a [`Condition`].
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet.
    Unknown,
}

/// Condition types.
pub mod condition {
    /// Current material is in the Secret and valid.
    pub const READY: &str = "Ready";
    /// Slow generation or renewal is running.
    pub const GENERATING: &str = "Generating";
}

/// The reasons of the `Ready` condition (CamelCase constants, api.md 1.6).
pub mod reason {
    /// A certificate was issued and is valid.
    pub const ISSUED: &str = "Issued";
    /// Non-certificate material was generated and is valid.
    pub const GENERATED: &str = "Generated";
    /// An existing Secret was adopted with its material.
    pub const ADOPTED: &str = "Adopted";
    /// The Secret of an earlier resource of this kind and name (one that no longer exists)
    /// was taken back with its material, as after a restore.
    pub const RESTORED: &str = "Restored";
    /// A restored resource waits for its Secret to be restored before making material.
    pub const AWAITING_RESTORE: &str = "AwaitingRestore";
    /// Nothing has been done yet.
    pub const PENDING: &str = "Pending";
    /// Material is being generated for the first time.
    pub const GENERATING: &str = "Generating";
    /// The spec is invalid in a way admission could not catch.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// The target Secret exists and is not ours, or another resource claims it.
    pub const SECRET_CONFLICT: &str = "SecretConflict";
    /// A referenced object does not exist.
    pub const REFERENCE_NOT_FOUND: &str = "ReferenceNotFound";
    /// A referenced object exists but is not Ready.
    pub const REFERENCE_NOT_READY: &str = "ReferenceNotReady";
    /// The referenced issuer is not a CA.
    pub const ISSUER_NOT_CA: &str = "IssuerNotCA";
    /// The referenced CA does not allow this namespace.
    pub const NAMESPACE_NOT_ALLOWED: &str = "NamespaceNotAllowed";
    /// Generating material failed.
    pub const GENERATION_FAILED: &str = "GenerationFailed";
    /// Writing the Secret failed.
    pub const SECRET_WRITE_FAILED: &str = "SecretWriteFailed";
    /// The operator lacks a permission it needs.
    pub const FORBIDDEN: &str = "Forbidden";
    /// Registering a key on every key server failed.
    pub const PUSH_FAILED: &str = "PushFailed";
    /// Registering a key failed on some key servers.
    pub const PARTIALLY_PUSHED: &str = "PartiallyPushed";
    /// The KeyManager is disabled.
    pub const KEY_MANAGER_DISABLED: &str = "KeyManagerDisabled";
    /// The KeyManager has no servers.
    pub const NO_KEY_SERVERS: &str = "NoKeyServers";
    /// The KeyManager's `maxAuthKeys` is reached.
    pub const KEY_MANAGER_LIMIT_REACHED: &str = "KeyManagerLimitReached";
    /// The certificate has expired and cannot be renewed.
    pub const EXPIRED: &str = "Expired";
}

/// Status fields every kind reports (api.md 1.5). Kinds flatten it into their own status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommonStatus {
    /// The `metadata.generation` the status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` and `Generating`, keyed by type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The Secret that holds the material.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// Canonical fingerprint of the current material (kind-specific format).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Incremented every time material is (re)generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// When the current material was generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_at: Option<Time>,
    /// When the operator will renew or rotate next, if scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation_time: Option<Time>,
    /// The last `keysmith.dev/rotate` annotation value acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rotation_token: Option<String>,
    /// Consecutive failed attempts; reset on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_attempts: Option<i32>,
    /// When the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_time: Option<Time>,
}

/// The schema of a string enum whose forbidden values deserve their own message: a plain
/// string checked by CEL rules instead of an OpenAPI `enum`. The API server skips every CEL
/// rule once a schema check fails, so with an `enum` a user writing `SHA1` would only learn
/// the allowed values, never that SHA1 is rejected because it is insecure.
pub(crate) fn string_enum_schema(
    description: &str,
    allowed: &[&str],
    insecure: &[&str],
    insecure_message: &str,
) -> schemars::Schema {
    let quoted = |values: &[&str]| {
        values
            .iter()
            .map(|v| format!("'{v}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    schemars::json_schema!({
        "type": "string",
        "maxLength": 32,
        "description": description,
        "x-kubernetes-validations": [
            {
                "rule": format!("!(self.upperAscii() in [{}])", quoted(insecure)),
                "message": insecure_message,
            },
            {
                "rule": format!("self in [{}]", quoted(allowed)),
                "message": format!("must be one of {}", allowed.join(", ")),
            },
        ],
    })
}

/// CEL rules on an object with `algorithm` and `size` fields, shared by every kind that
/// generates a key, so each rule and message is written once.
pub(crate) mod key_size_rules {
    use kube::core::{Message, Rule};

    fn list(sizes: &[u32]) -> String {
        let (last, rest) = sizes.split_last().map_or((0, &[][..]), |(l, r)| (*l, r));
        let rest: Vec<String> = rest.iter().map(u32::to_string).collect();
        format!("{} or {last}", rest.join(", "))
    }

    fn cel_list(sizes: &[u32]) -> String {
        let items: Vec<String> = sizes.iter().map(u32::to_string).collect();
        format!("[{}]", items.join(", "))
    }

    /// Ed25519 keys have one size: `size` must be unset.
    pub fn ed25519_without_size() -> Rule {
        Rule::new("self.algorithm != 'Ed25519' || !has(self.size)")
            .message("size must not be set for Ed25519 keys")
            .field_path(".size")
    }

    /// RSA below 2048 bits gets its own "insecure" message.
    pub fn rsa_not_insecure(allowed: &[u32]) -> Rule {
        Rule::new("self.algorithm != 'RSA' || !has(self.size) || self.size >= 2048")
            .message(Message::Message(format!(
                "RSA keys smaller than 2048 bits are insecure; use {}",
                list(allowed)
            )))
            .field_path(".size")
    }

    /// RSA sizes must be one of `allowed`.
    pub fn rsa_one_of(allowed: &[u32]) -> Rule {
        Rule::new(format!(
            "self.algorithm != 'RSA' || !has(self.size) || self.size in {}",
            cel_list(allowed)
        ))
        .message(Message::Message(format!(
            "RSA size must be {}",
            list(allowed)
        )))
        .field_path(".size")
    }

    /// ECDSA sizes are the NIST curves P-256, P-384 and P-521.
    pub fn ecdsa_one_of() -> Rule {
        Rule::new("self.algorithm != 'ECDSA' || !has(self.size) || self.size in [256, 384, 521]")
            .message("ECDSA size must be 256, 384 or 521")
            .field_path(".size")
    }
}
