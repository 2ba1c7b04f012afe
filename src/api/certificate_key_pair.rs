//! CertificateKeyPair: an X.509 private key and certificate, self-signed or signed by another
//! CertificateKeyPair acting as CA (api.md section 2).

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::core::Duration;
use kube::{CustomResource, KubeSchema};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use super::common::{
    CommonStatus, DURATION_PATTERN, IssuerReference, Rotation, SecretKeySelector, Target,
    key_size_rules, string_enum_schema,
};

/// Most names and URLs a certificate may list, per field (keeps CEL cost bounded).
pub const MAX_SANS: u32 = 128;

/// An X.509 private key and certificate, self-signed or signed by a CA CertificateKeyPair,
/// written to a `kubernetes.io/tls` Secret and renewed before it expires.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "keysmith.dev",
    version = "v1alpha1",
    kind = "CertificateKeyPair",
    namespaced,
    status = "CertificateKeyPairStatus",
    shortname = "ckp",
    category = "keysmith",
    derive = "PartialEq",
    doc = "An X.509 private key and certificate, self-signed or signed by a CA CertificateKeyPair, written to a kubernetes.io/tls Secret and renewed before it expires.",
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
    printcolumn(name = "Expires", type_ = "date", json_path = ".status.notAfter"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new(
        "(has(self.isCA) && self.isCA) || has(self.commonName) \
         || (has(self.dnsNames) && size(self.dnsNames) > 0) \
         || (has(self.ipAddresses) && size(self.ipAddresses) > 0) \
         || (has(self.emailAddresses) && size(self.emailAddresses) > 0) \
         || (has(self.uris) && size(self.uris) > 0)"
    ).message("commonName or at least one of dnsNames, ipAddresses, emailAddresses, uris is required (unless isCA is true)"),
    validation = Rule::new("!has(self.maxPathLength) || (has(self.isCA) && self.isCA)")
        .message("maxPathLength requires isCA: true").field_path(".maxPathLength"),
    validation = Rule::new("!has(self.ca) || (has(self.isCA) && self.isCA)")
        .message("ca requires isCA: true").field_path(".ca"),
    validation = Rule::new(
        "!has(self.rotation) || !has(self.rotation.renewBefore) \
         || duration(self.rotation.renewBefore) < duration(has(self.duration) ? self.duration : '2160h')"
    ).message("rotation.renewBefore must be shorter than duration").field_path(".rotation.renewBefore"),
    validation = Rule::new("!has(self.rotation) || !has(self.rotation.every)")
        .message("rotation.every does not apply to certificates: they are renewed by duration and renewBefore/renewBeforePercentage")
        .field_path(".rotation.every"),
    validation = Rule::new(
        "!has(self.privateKeyExport) || self.privateKeyExport != 'Denied' || !has(self.keystores)"
    ).message("keystores contain the private key and cannot be used with privateKeyExport: Denied")
        .field_path(".keystores"),
    validation = Rule::new(
        "!has(self.privateKeyExport) || self.privateKeyExport != 'Denied' \
         || !has(self.additionalOutputFormats) || !('CombinedPEM' in self.additionalOutputFormats)"
    ).message("CombinedPEM contains the private key and cannot be used with privateKeyExport: Denied")
        .field_path(".additionalOutputFormats"),
)]
pub struct CertificateKeyPairSpec {
    /// Subject common name (CN), 1 to 64 characters. A CN or at least one SAN is required
    /// unless isCA is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub common_name: Option<String>,
    /// The other subject attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
    /// DNS subject alternative names, e.g. `shop.example.com` or `*.example.com`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_SANS), inner(length(min = 1, max = 253), regex(pattern = DNS_NAME_PATTERN)))]
    pub dns_names: Vec<String>,
    /// IP address subject alternative names (IPv4 or IPv6).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_SANS), inner(length(min = 2, max = 45)))]
    #[x_kube(validation = Rule::new("self.all(ip, isIP(ip))")
        .message("every entry must be an IPv4 or IPv6 address"))]
    pub ip_addresses: Vec<String>,
    /// Email address subject alternative names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_SANS), inner(length(min = 3, max = 254), regex(pattern = EMAIL_PATTERN)))]
    pub email_addresses: Vec<String>,
    /// URI subject alternative names, e.g. `spiffe://example.com/shop`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_SANS), inner(length(min = 1, max = 2048)))]
    #[x_kube(validation = Rule::new("self.all(u, isURL(u) && url(u).getScheme() != '')")
        .message("every entry must be an absolute URI"))]
    pub uris: Vec<String>,
    /// Validity of the certificate, at least 1h. Default 2160h (90 days).
    #[serde(
        default = "default_duration",
        deserialize_with = "super::duration::deserialize"
    )]
    #[schemars(regex(pattern = DURATION_PATTERN), extend("default" = "2160h"))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1h')")
        .message("duration must be at least 1h"))]
    pub duration: Duration,
    /// The private key: algorithm, size, encoding and whether renewals keep it.
    #[serde(default)]
    pub private_key: PrivateKey,
    /// Signature digest. Default: follows the key (ECDSA P-384: SHA384, P-521: SHA512,
    /// otherwise SHA256). SHA1 and MD5 are rejected as insecure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// Key usages and extended key usages. Default: DigitalSignature, KeyEncipherment and
    /// ServerAuth; for a CA only DigitalSignature (an extended key usage on a CA restricts every
    /// certificate below it). isCA adds CertSign and CRLSign.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 14))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    pub usages: Vec<KeyUsage>,
    /// Make this a CA certificate (basicConstraints CA:TRUE, CertSign and CRLSign) that other
    /// CertificateKeyPairs can name in issuerRef.
    #[serde(default, rename = "isCA")]
    pub is_ca: bool,
    /// Longest chain of intermediate CAs below this CA (basicConstraints pathLen). Only with
    /// isCA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 16))]
    pub max_path_length: Option<u8>,
    /// Only with isCA: who may use this CA as issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<CaPolicy>,
    /// The CA that signs this certificate: a Ready CertificateKeyPair with isCA. Absent:
    /// self-signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_ref: Option<IssuerReference>,
    /// OCSP responder URLs (Authority Information Access).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8), inner(length(min = 1, max = 2048)))]
    #[x_kube(validation = Rule::new("self.all(u, isURL(u) && url(u).getScheme() != '')")
        .message("every entry must be an absolute URL"))]
    pub ocsp_servers: Vec<String>,
    /// URLs of the issuing CA certificate (Authority Information Access, caIssuers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8), inner(length(min = 1, max = 2048)))]
    #[x_kube(validation = Rule::new("self.all(u, isURL(u) && url(u).getScheme() != '')")
        .message("every entry must be an absolute URL"))]
    pub issuing_certificate_urls: Vec<String>,
    /// CRL distribution point URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8), inner(length(min = 1, max = 2048)))]
    #[x_kube(validation = Rule::new("self.all(u, isURL(u) && url(u).getScheme() != '')")
        .message("every entry must be an absolute URL"))]
    pub crl_distribution_points: Vec<String>,
    /// `Allowed` (default): the key is written to the target Secret. `Denied`: the key never
    /// leaves the operator's key namespace; the target Secret holds only certificates.
    #[serde(default)]
    pub private_key_export: PrivateKeyExport,
    /// Keystores written next to the PEM files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keystores: Option<Keystores>,
    /// Extra encodings: `DER` (tls.crt.der, tls.key.der), `CombinedPEM` (tls-combined.pem).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    pub additional_output_formats: Vec<OutputFormat>,
    /// The Secret the material is written to.
    #[serde(default)]
    pub target: Target,
    /// When the certificate is renewed: renewBefore or renewBeforePercentage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
}

/// A DNS name, optionally with one leading wildcard label.
pub const DNS_NAME_PATTERN: &str = r"^(\*\.)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*\.?$";
/// An email address (local part and domain, no spaces).
pub const EMAIL_PATTERN: &str = r"^[^@\s]+@[^@\s]+$";

fn default_duration() -> Duration {
    Duration::from(std::time::Duration::from_secs(2160 * 3600))
}

/// Subject attributes besides the common name. Each attribute takes one value (the lists keep
/// the shape other tools use; a second value is rejected at admission).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    /// Organizations (O).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1), inner(length(min = 1, max = 64)))]
    pub organizations: Vec<String>,
    /// Organizational units (OU), "department".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1), inner(length(min = 1, max = 64)))]
    pub organizational_units: Vec<String>,
    /// Countries (C): ISO 3166 two-letter codes such as `DE`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1), inner(regex(pattern = r"^[A-Z]{2}$")))]
    pub countries: Vec<String>,
    /// States or provinces (ST).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1), inner(length(min = 1, max = 128)))]
    pub provinces: Vec<String>,
    /// Localities (L).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1), inner(length(min = 1, max = 128)))]
    pub localities: Vec<String>,
    /// Street addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1), inner(length(min = 1, max = 128)))]
    pub street_addresses: Vec<String>,
    /// Postal codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1), inner(length(min = 1, max = 40)))]
    pub postal_codes: Vec<String>,
    /// Subject serial number attribute (not the certificate serial).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub serial_number: Option<String>,
}

/// RSA key sizes for certificates.
pub const RSA_SIZES: &[u32] = &[2048, 3072, 4096, 8192];

/// The private key of a CertificateKeyPair.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = key_size_rules::ed25519_without_size(),
    validation = key_size_rules::rsa_not_insecure(RSA_SIZES),
    validation = key_size_rules::rsa_one_of(RSA_SIZES),
    validation = key_size_rules::ecdsa_one_of(),
    validation = Rule::new("self.algorithm != 'Ed25519' || self.encoding != 'PKCS1'")
        .message("PKCS1 encoding exists for RSA and ECDSA keys only; use PKCS8 for Ed25519").field_path(".encoding"),
)]
pub struct PrivateKey {
    /// `ECDSA` (default), `RSA` or `Ed25519`.
    #[serde(default)]
    pub algorithm: KeyAlgorithm,
    /// Key size in bits. ECDSA: 256 (default), 384, 521. RSA: 2048 (default), 3072, 4096,
    /// 8192. Must be unset for Ed25519.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 16384))]
    pub size: Option<u32>,
    /// `PKCS8` (default, "PRIVATE KEY") or `PKCS1` (RSA: "RSA PRIVATE KEY"; ECDSA: SEC1
    /// "EC PRIVATE KEY").
    #[serde(default)]
    pub encoding: KeyEncoding,
    /// `Always` (default): a new key on every renewal. `Never`: renewals keep the key.
    #[serde(default)]
    pub rotation_policy: KeyRotationPolicy,
}

/// A private-key algorithm for certificates.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum KeyAlgorithm {
    /// Elliptic-curve DSA on P-256, P-384 or P-521.
    #[default]
    ECDSA,
    /// RSA.
    RSA,
    /// Ed25519 (EdDSA).
    Ed25519,
}

/// How a private key is encoded in PEM.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum KeyEncoding {
    /// PKCS#8 "PRIVATE KEY".
    #[default]
    PKCS8,
    /// PKCS#1 "RSA PRIVATE KEY" for RSA, SEC1 "EC PRIVATE KEY" for ECDSA.
    PKCS1,
}

/// Whether a renewal generates a new private key.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum KeyRotationPolicy {
    /// A new key on every renewal.
    #[default]
    Always,
    /// Renewals keep the existing key.
    Never,
}

/// A signature digest.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digest {
    /// SHA-256.
    SHA256,
    /// SHA-384.
    SHA384,
    /// SHA-512.
    SHA512,
}

impl JsonSchema for Digest {
    fn schema_name() -> Cow<'static, str> {
        "Digest".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        string_enum_schema(
            "A signature digest: SHA256, SHA384 or SHA512.",
            &["SHA256", "SHA384", "SHA512"],
            &["SHA1", "MD5"],
            "insecure digest: SHA1 and MD5 are not allowed; use SHA256, SHA384 or SHA512",
        )
    }
}

/// A key usage or extended key usage.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
pub enum KeyUsage {
    /// keyUsage digitalSignature.
    DigitalSignature,
    /// keyUsage keyEncipherment.
    KeyEncipherment,
    /// keyUsage keyAgreement.
    KeyAgreement,
    /// keyUsage keyCertSign.
    CertSign,
    /// keyUsage cRLSign.
    CRLSign,
    /// extKeyUsage serverAuth.
    ServerAuth,
    /// extKeyUsage clientAuth.
    ClientAuth,
    /// extKeyUsage codeSigning.
    CodeSigning,
    /// extKeyUsage emailProtection.
    EmailProtection,
    /// extKeyUsage OCSPSigning.
    OCSPSigning,
    /// extKeyUsage timeStamping.
    TimeStamping,
}

/// Who may name this CA in issuerRef.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaPolicy {
    /// Namespaces whose CertificateKeyPairs and KeyringSecrets may use this CA; `*` allows
    /// every namespace. Default: only the CA's own namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 63), regex(pattern = ALLOWED_NAMESPACE_PATTERN)))]
    pub allowed_namespaces: Vec<String>,
}

/// A namespace name (DNS label) or `*`.
const ALLOWED_NAMESPACE_PATTERN: &str = r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$";

/// Whether the private key may be written to the target Secret.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PrivateKeyExport {
    /// The key is written to the target Secret.
    #[default]
    Allowed,
    /// The key is kept in a Secret in the operator's key namespace only.
    Denied,
}

/// Keystores written to the target Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Keystores {
    /// PKCS#12: `keystore.p12` (key, certificate and chain) and `truststore.p12` (CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkcs12: Option<Pkcs12Keystore>,
}

/// A PKCS#12 keystore and truststore.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pkcs12Keystore {
    /// The Secret key holding the keystore password.
    pub password_secret_ref: SecretKeySelector,
    /// `Modern` (default: PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC, HMAC-SHA256 MAC) or
    /// `Legacy` (pbeWithSHAAnd3-KeyTripleDES-CBC, HMAC-SHA1 MAC, for old Java and Windows).
    #[serde(default)]
    pub profile: Pkcs12Profile,
}

/// PKCS#12 encryption profile.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Pkcs12Profile {
    /// AES-256-CBC with PBKDF2/HMAC-SHA-256.
    #[default]
    Modern,
    /// pbeWithSHAAnd3-KeyTripleDES-CBC with an HMAC-SHA1 MAC, for old consumers.
    Legacy,
}

/// An additional encoding written to the target Secret.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum OutputFormat {
    /// `tls.crt.der` and `tls.key.der`.
    DER,
    /// `tls-combined.pem`: key, then certificate chain.
    CombinedPEM,
}

/// What keysmith observed of a CertificateKeyPair.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateKeyPairStatus {
    /// Fields every kind reports.
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Start of the certificate's validity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Time>,
    /// End of the certificate's validity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<Time>,
    /// Certificate serial number, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// Subject distinguished name (RFC 4514).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Issuer distinguished name (RFC 4514).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Certificate fingerprints as `openssl x509 -fingerprint` prints them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprints: Option<CertificateFingerprints>,
    /// What is known about the private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<PrivateKeyStatus>,
    /// SHA-256 fingerprint of the issuing CA certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_fingerprint: Option<String>,
}

/// Certificate fingerprints, uppercase colon-separated hex.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct CertificateFingerprints {
    /// SHA-256 of the DER certificate.
    pub sha256: String,
    /// SHA-1 of the DER certificate (for tools that still show it; not a security measure).
    pub sha1: String,
}

/// What is known about a certificate's private key.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct PrivateKeyStatus {
    /// `ECDSA`, `RSA` or `Ed25519`.
    pub algorithm: String,
    /// Size in bits (256 for Ed25519).
    pub size: u32,
    /// False when privateKeyExport is Denied: the key is not in the target Secret.
    pub available: bool,
}
