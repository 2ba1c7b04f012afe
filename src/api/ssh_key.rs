//! SshKey: an OpenSSH user, host or CA key, optionally with an OpenSSH certificate
//! (api.md section 3).

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::core::Duration;
use kube::{CustomResource, KubeSchema};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use super::common::{
    CommonStatus, DURATION_PATTERN, LocalObjectReference, Rotation, SecretKeySelector, Target,
    key_size_rules, string_enum_schema,
};

/// An OpenSSH key pair (user, host or CA key), optionally with an OpenSSH certificate signed
/// by a CA SshKey, written to a `kubernetes.io/ssh-auth` Secret.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "keysmith.dev",
    version = "v1alpha1",
    kind = "SshKey",
    namespaced,
    status = "SshKeyStatus",
    shortname = "sshkey",
    category = "keysmith",
    derive = "PartialEq",
    doc = "An OpenSSH key pair (user, host or CA key), optionally with an OpenSSH certificate signed by a CA SshKey, written to a kubernetes.io/ssh-auth Secret.",
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
#[x_kube(
    validation = Rule::new("!has(self.hostnames) || size(self.hostnames) == 0 || self.keyType == 'Host'")
        .message("hostnames apply to keyType: Host only").field_path(".hostnames"),
    validation = Rule::new("!has(self.certificate) || self.keyType != 'CA'")
        .message("a CA key cannot have a certificate; certificates are for User and Host keys").field_path(".certificate"),
    validation = Rule::new(
        "!has(self.certificate) || !has(self.certificate.extensions) \
         || size(self.certificate.extensions) == 0 || self.keyType == 'User'"
    ).message("certificate.extensions apply to user certificates only").field_path(".certificate.extensions"),
    validation = Rule::new(
        "!has(self.certificate) || !has(self.certificate.criticalOptions) \
         || size(self.certificate.criticalOptions) == 0 || self.keyType == 'User'"
    ).message("certificate.criticalOptions apply to user certificates only (ssh rejects host certificates that carry them)").field_path(".certificate.criticalOptions"),
    validation = Rule::new(
        "!has(self.certificate) || !has(self.rotation) || !has(self.rotation.renewBefore) \
         || duration(self.rotation.renewBefore) < duration(has(self.certificate.validity) ? self.certificate.validity : '24h')"
    ).message("rotation.renewBefore must be shorter than certificate.validity").field_path(".rotation.renewBefore"),
)]
pub struct SshKeySpec {
    /// Key settings: algorithm and size.
    #[serde(flatten)]
    pub key: SshKeyAlgorithmSpec,
    /// `User` (default), `Host`, or `CA` (a key that signs other keys' certificates).
    #[serde(default)]
    pub key_type: SshKeyType,
    /// Comment of the public key. Default `<name>@<namespace>`. Printable ASCII, at most 255
    /// characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255), regex(pattern = r"^[ -~]*$"))]
    pub comment: Option<String>,
    /// A Secret key holding a passphrase: the private key is then encrypted (OpenSSH
    /// bcrypt-pbkdf with aes256-ctr).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase_secret_ref: Option<SecretKeySelector>,
    /// Host keys: names written with the key to a `known_hosts` line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 64),
        inner(length(min = 1, max = 255), regex(pattern = r"^[!-~]+$"))
    )]
    pub hostnames: Vec<String>,
    /// An OpenSSH certificate for this key, signed by a CA SshKey and renewed before it
    /// expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<SshCertificateSpec>,
    /// The Secret the material is written to.
    #[serde(default)]
    pub target: Target,
    /// When the key is rotated (`every`) and the certificate renewed (`renewBefore`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
}

/// RSA key sizes for OpenSSH keys (also UFTP keys).
pub const SSH_RSA_SIZES: &[u32] = &[2048, 3072, 4096];

/// An OpenSSH key algorithm and size (also used by KeyringSecret `ssh_private`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = key_size_rules::ed25519_without_size(),
    validation = key_size_rules::rsa_not_insecure(SSH_RSA_SIZES),
    validation = key_size_rules::rsa_one_of(SSH_RSA_SIZES),
    validation = key_size_rules::ecdsa_one_of(),
)]
pub struct SshKeyAlgorithmSpec {
    /// `Ed25519` (default), `ECDSA` or `RSA`. DSA is rejected as insecure.
    #[serde(default)]
    pub algorithm: SshKeyAlgorithm,
    /// Key size in bits. ECDSA: 256 (default), 384, 521. RSA: 2048, 3072 (default), 4096.
    /// Must be unset for Ed25519.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 16384))]
    pub size: Option<u32>,
}

/// An OpenSSH key algorithm.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SshKeyAlgorithm {
    /// ssh-ed25519.
    #[default]
    Ed25519,
    /// ecdsa-sha2-nistp256/384/521.
    ECDSA,
    /// ssh-rsa (signatures rsa-sha2-256/512).
    RSA,
}

impl JsonSchema for SshKeyAlgorithm {
    fn schema_name() -> Cow<'static, str> {
        "SshKeyAlgorithm".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        string_enum_schema(
            "An OpenSSH key algorithm: Ed25519, ECDSA or RSA.",
            &["Ed25519", "ECDSA", "RSA"],
            &["DSA"],
            "insecure algorithm: DSA keys are not allowed; use Ed25519, ECDSA or RSA",
        )
    }
}

/// What an SSH key is for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum SshKeyType {
    /// A user's key (USER_KEY).
    #[default]
    User,
    /// A server's host key (HOST_KEY).
    Host,
    /// A certificate authority key that signs other keys' certificates.
    CA,
}

/// An OpenSSH certificate request.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SshCertificateSpec {
    /// The signing CA: an SshKey with keyType CA in the same namespace.
    pub authority_ref: LocalObjectReference,
    /// Principals (user names for user certificates, host names for host certificates).
    #[schemars(
        length(min = 1, max = 256),
        inner(length(min = 1, max = 255), regex(pattern = r"^[!-~]+$"))
    )]
    pub principals: Vec<String>,
    /// Validity of each certificate, at least 5m. Default 24h. Renewed automatically.
    #[serde(
        default = "default_certificate_validity",
        deserialize_with = "super::duration::deserialize"
    )]
    #[schemars(regex(pattern = DURATION_PATTERN), extend("default" = "24h"))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('5m')")
        .message("validity must be at least 5m"))]
    pub validity: Duration,
    /// User certificates: extensions such as `permit-pty`. Default: the OpenSSH set
    /// (permit-X11-forwarding, permit-agent-forwarding, permit-port-forwarding, permit-pty,
    /// permit-user-rc).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 16),
        inner(length(min = 1, max = 64), regex(pattern = r"^[!-~]+$"))
    )]
    pub extensions: Vec<String>,
    /// Critical options, e.g. `force-command: /usr/bin/backup` or `source-address:
    /// 10.0.0.0/8`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 8))]
    pub critical_options: BTreeMap<String, String>,
}

fn default_certificate_validity() -> Duration {
    Duration::from(std::time::Duration::from_secs(24 * 3600))
}

/// What keysmith observed of an SshKey.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SshKeyStatus {
    /// Fields every kind reports; `fingerprint` is `SHA256:<base64>` as `ssh-keygen -l`.
    #[serde(flatten)]
    pub common: CommonStatus,
    /// The public key as an authorized_keys line (public; safe to copy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// The key's algorithm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// The key's size in bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    /// The current certificate, if one is requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<SshCertificateStatus>,
}

/// An issued OpenSSH certificate.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SshCertificateStatus {
    /// Serial number, decimal as `ssh-keygen -L` prints it (a string: OpenSSH serials are
    /// unsigned 64-bit, beyond the API's int64).
    pub serial: String,
    /// Key id.
    pub key_id: String,
    /// Principals.
    pub principals: Vec<String>,
    /// Start of validity.
    pub valid_after: Time,
    /// End of validity.
    pub valid_before: Time,
}
