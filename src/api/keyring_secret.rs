//! KeyringSecret: the secret types of a device keyring (api.md section 4). `type` takes the
//! keyring's own identifiers and `params` has one block per type, named the same.

use kube::core::Duration;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::certificate_key_pair::{DNS_NAME_PATTERN, KeyAlgorithm, RSA_SIZES};
use super::common::{
    CommonStatus, DURATION_PATTERN, IssuerReference, Rotation, Target, key_size_rules,
};
use super::ssh_key::{SSH_RSA_SIZES, SshKeyAlgorithmSpec};

/// A keyring id: `^[a-zA-Z][a-zA-Z0-9_]{0,127}$`.
pub const KEYRING_ID_PATTERN: &str = r"^[a-zA-Z][a-zA-Z0-9_]{0,127}$";

/// A device keyring secret (PSK, DH parameters, OpenVPN static key, credentials, SSH or UFTP
/// key, key + certificate) generated into a Secret.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "keysmith.dev",
    version = "v1alpha1",
    kind = "KeyringSecret",
    namespaced,
    status = "KeyringSecretStatus",
    shortname = "krs",
    category = "keysmith",
    derive = "PartialEq",
    doc = "A device keyring secret (PSK, DH parameters, OpenVPN static key, credentials, SSH or UFTP key, key and certificate) generated into a Secret.",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
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
    validation = Rule::new(PARAMS_MATCH_TYPE_RULE)
        .message("params must contain exactly one block, the one named by type (e.g. type: psk needs params.psk and nothing else)")
        .field_path(".params"),
    validation = Rule::new("self.type in ['pkey_cert', 'cert_single', 'cert_chain'] || !has(self.issuerRef)")
        .message("issuerRef applies to the certificate types pkey_cert, cert_single and cert_chain only")
        .field_path(".issuerRef"),
    validation = Rule::new("has(oldSelf.note) == has(self.note) && (!has(self.note) || self.note == oldSelf.note)")
        .message("note is immutable: it can only be set when the KeyringSecret is created")
        .field_path(".note"),
)]
pub struct KeyringSecretSpec {
    /// The id a device keyring stores the secret under. Default: metadata.name with `-` and
    /// `.` replaced by `_`. Written to the Secret as annotation `keysmith.dev/keyring-id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = KEYRING_ID_PATTERN))]
    pub keyring_id: Option<String>,
    /// The secret type; immutable after creation.
    #[serde(rename = "type")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("type is immutable"))]
    pub type_: KeyringSecretType,
    /// A description, at most 42 characters without `"`, backtick, `\`, `$` or `;`. Can only be
    /// set when the resource is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r#"^[^"`\\$;]{0,42}$"#))]
    pub note: Option<String>,
    /// Parameters: exactly the block named by `type`.
    pub params: KeyringParams,
    /// Certificate types: the CA CertificateKeyPair that signs. Absent: the operator's
    /// default CA (`--default-issuer`) if configured, else self-signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_ref: Option<IssuerReference>,
    /// The Secret the material is written to.
    #[serde(default)]
    pub target: Target,
    /// When the secret is rotated (`every`) or, for certificates, renewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
}

/// `(type == t) == has(params.t)` for every type, plus "at most one block".
const PARAMS_MATCH_TYPE_RULE: &str = "\
    (self.type == 'pkey_cert') == has(self.params.pkey_cert) \
    && (self.type == 'cert_single') == has(self.params.cert_single) \
    && (self.type == 'cert_chain') == has(self.params.cert_chain) \
    && (self.type == 'dhparam') == has(self.params.dhparam) \
    && (self.type == 'remote_access') == has(self.params.remote_access) \
    && (self.type == 'ssh_private') == has(self.params.ssh_private) \
    && (self.type == 'uftp') == has(self.params.uftp) \
    && (self.type == 'psk') == has(self.params.psk) \
    && (self.type == 'openvpn') == has(self.params.openvpn)";

/// The keyring's secret types.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[allow(non_camel_case_types)] // the keyring's own identifiers
pub enum KeyringSecretType {
    /// A private key and its certificate.
    pkey_cert,
    /// A new certificate for an existing pkey_cert's key.
    cert_single,
    /// The certificate chain of a pkey_cert, leaf to root.
    cert_chain,
    /// Diffie-Hellman parameters.
    dhparam,
    /// A username and password for remote access.
    remote_access,
    /// An OpenSSH private key.
    ssh_private,
    /// A UFTP key pair.
    uftp,
    /// A pre-shared key.
    psk,
    /// An OpenVPN static key (V1).
    openvpn,
}

/// One block per type; exactly the one named by `type` must be set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct KeyringParams {
    /// Parameters of `pkey_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkey_cert: Option<PkeyCertParams>,
    /// Parameters of `cert_single`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_single: Option<CertSingleParams>,
    /// Parameters of `cert_chain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_chain: Option<CertChainParams>,
    /// Parameters of `dhparam`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhparam: Option<DhParams>,
    /// Parameters of `remote_access`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_access: Option<RemoteAccessParams>,
    /// Parameters of `ssh_private`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_private: Option<SshKeyAlgorithmSpec>,
    /// Parameters of `uftp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uftp: Option<UftpParams>,
    /// Parameters of `psk`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psk: Option<PskParams>,
    /// Parameters of `openvpn` (none: write `openvpn: {}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openvpn: Option<OpenVpnParams>,
}

/// `pkey_cert`: a private key and a certificate for it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.commonName) || (has(self.dnsNames) && size(self.dnsNames) > 0)")
        .message("commonName or at least one of dnsNames is required"),
    validation = key_size_rules::ed25519_without_size(),
    validation = key_size_rules::rsa_not_insecure(RSA_SIZES),
    validation = key_size_rules::rsa_one_of(RSA_SIZES),
    validation = key_size_rules::ecdsa_one_of(),
)]
pub struct PkeyCertParams {
    /// Subject common name, 1 to 64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub common_name: Option<String>,
    /// DNS subject alternative names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128), inner(length(min = 1, max = 253), regex(pattern = DNS_NAME_PATTERN)))]
    pub dns_names: Vec<String>,
    /// Validity, at least 1h. Default 8760h (one year).
    #[serde(
        default = "default_pkey_cert_duration",
        deserialize_with = "super::duration::deserialize"
    )]
    #[schemars(regex(pattern = DURATION_PATTERN), extend("default" = "8760h"))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1h')")
        .message("duration must be at least 1h"))]
    pub duration: Duration,
    /// `ECDSA` (default), `RSA` or `Ed25519`.
    #[serde(default)]
    pub algorithm: KeyAlgorithm,
    /// Key size: ECDSA 256 (default)|384|521, RSA 2048 (default)|3072|4096|8192, unset for
    /// Ed25519.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 16384))]
    pub size: Option<u32>,
}

fn default_pkey_cert_duration() -> Duration {
    Duration::from(std::time::Duration::from_secs(8760 * 3600))
}

/// `cert_single`: a new certificate for the key of an existing pkey_cert.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct CertSingleParams {
    /// The keyringId (or name) of a pkey_cert KeyringSecret in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub id: String,
    /// Certificate profile: `openvpn_client` (clientAuth) or `openvpn_server` (serverAuth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modifier: Option<CertModifier>,
}

/// A certificate profile of cert_single.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[allow(non_camel_case_types)] // the keyring's own identifiers
pub enum CertModifier {
    /// An OpenVPN client certificate (extendedKeyUsage clientAuth).
    openvpn_client,
    /// An OpenVPN server certificate (extendedKeyUsage serverAuth).
    openvpn_server,
}

/// `cert_chain`: the chain of an existing pkey_cert, leaf to root.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct CertChainParams {
    /// The keyringId (or name) of a pkey_cert KeyringSecret in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub id: String,
}

/// `dhparam`: Diffie-Hellman parameters.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("!has(self.bits) || self.group == 'Generate'")
    .message("bits applies to group: Generate only (the ffdhe groups have fixed sizes)").field_path(".bits"))]
pub struct DhParams {
    /// `Generate` (a fresh safe prime; slow) or a fixed RFC 7919 group: `ffdhe2048`,
    /// `ffdhe3072`, `ffdhe4096`, `ffdhe6144`, `ffdhe8192`.
    pub group: DhGroup,
    /// With `Generate`: prime size, 2048 (default), 3072 or 4096.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self in [2048, 3072, 4096]").message("bits must be 2048, 3072 or 4096"))]
    pub bits: Option<u32>,
}

/// A Diffie-Hellman group.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[allow(non_camel_case_types)] // the keyring's own identifiers
pub enum DhGroup {
    /// Generate a fresh safe prime.
    Generate,
    /// RFC 7919 ffdhe2048.
    ffdhe2048,
    /// RFC 7919 ffdhe3072.
    ffdhe3072,
    /// RFC 7919 ffdhe4096.
    ffdhe4096,
    /// RFC 7919 ffdhe6144.
    ffdhe6144,
    /// RFC 7919 ffdhe8192.
    ffdhe8192,
}

/// `remote_access`: a username and a generated password.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemoteAccessParams {
    /// Username. Default: metadata.name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[!-9;-~]+$"))]
    pub username: Option<String>,
    /// Password length, 20 to 128. Default 32.
    #[serde(default = "default_password_length")]
    #[schemars(range(min = 20, max = 128))]
    pub password_length: u32,
}

fn default_password_length() -> u32 {
    32
}

/// `uftp`: a UFTP key pair.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(
    validation = key_size_rules::rsa_not_insecure(SSH_RSA_SIZES),
    validation = key_size_rules::rsa_one_of(SSH_RSA_SIZES),
    validation = key_size_rules::ecdsa_one_of(),
)]
pub struct UftpParams {
    /// `ECDSA` (default) or `RSA`.
    #[serde(default)]
    pub algorithm: UftpAlgorithm,
    /// ECDSA 256 (default)|384|521; RSA 2048 (default)|3072|4096.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 16384))]
    pub size: Option<u32>,
}

/// A UFTP key algorithm.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum UftpAlgorithm {
    /// ECDSA.
    #[default]
    ECDSA,
    /// RSA.
    RSA,
}

/// `psk`: a pre-shared key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct PskParams {
    /// Length in bytes (not bits), 1 to 4096.
    #[schemars(range(min = 1, max = 4096))]
    pub length: u32,
}

/// `openvpn`: an OpenVPN static key V1 (2048 bits); no parameters.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct OpenVpnParams {}

/// What keysmith observed of a KeyringSecret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyringSecretStatus {
    /// Fields every kind reports.
    #[serde(flatten)]
    pub common: CommonStatus,
    /// The keyring id in use (spec.keyringId or the one derived from the name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyring_id: Option<String>,
    /// Certificate types: end of the certificate's validity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}
