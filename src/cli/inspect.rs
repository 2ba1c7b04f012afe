//! `keysmith inspect secret NAME`: reads a Secret and describes its material for people —
//! certificates and their chain, key types, SSH keys and certificates, DH parameters, the
//! keyring types, KMIP authentication keys — with fingerprints as `openssl` and
//! `ssh-keygen` print them. Never a private key, a passphrase, a PSK or any other secret
//! value: secret material is described by its size and by the keyed fingerprint the
//! status shows. A Secret of a shape keysmith does not know is listed by its keys and sizes.
//!
//! [`report`] is pure (Secret in, [`Report`] out); [`fetch`] does the reading;
//! [`text::render`] prints the report for people, `serde_json` for programs.

mod keyring;
mod ssh;
pub mod text;
mod tls;

use std::collections::BTreeMap;
use std::time::SystemTime;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::{Client, ResourceExt};
use serde::Serialize;

use crate::api::CertificateKeyPair;
use crate::material::SecretString;
use crate::reconcile::keyring_secret::{
    FINGERPRINT_SALT_ANNOTATION, KEYRING_ID_ANNOTATION, NOTE_ANNOTATION,
};
use crate::reconcile::secret::{
    FINGERPRINT_ANNOTATION, GENERATED_AT_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE,
    OWNER_ANNOTATION, REVISION_ANNOTATION, ROTATION_TOKEN_ANNOTATION, data_of,
};

use super::CliError;

/// What `keysmith inspect secret` reports about one Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Secret type.
    #[serde(rename = "type")]
    pub type_: String,
    /// `<Kind>/<name>` of the keysmith resource that owns it (`keysmith.dev/owner`).
    pub owner: Option<String>,
    /// Whether it carries keysmith's managed-by label.
    pub managed_by_keysmith: bool,
    /// keysmith's annotations other than the owner and fingerprint: revision, generated
    /// at, keyring id, note, rotation token.
    pub metadata: Vec<Field>,
    /// The `keysmith.dev/fingerprint` annotation, checked against the material.
    pub fingerprint: Option<FingerprintCheck>,
    /// Every data key with its size.
    pub data: Vec<DataKey>,
    /// What the material is, by section; empty for a Secret of a shape keysmith does not
    /// know.
    pub sections: Vec<Section>,
}

/// A named value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Field {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

impl Field {
    fn new(name: &str, value: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            value: value.into(),
        }
    }
}

/// The `keysmith.dev/fingerprint` annotation and the fingerprint of the material in the
/// data, computed as the owner's status computes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FingerprintCheck {
    /// The annotation.
    pub annotation: String,
    /// The material's, when it could be computed.
    pub computed: Option<String>,
}

/// One data key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DataKey {
    /// The key.
    pub key: String,
    /// Its size in bytes.
    pub bytes: usize,
    /// Whether a section describes it.
    pub described: bool,
}

/// A part of the material: a title, fields, and certificates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Section {
    /// What it is, e.g. `Certificate chain (tls.crt, ca.crt)`.
    pub title: String,
    /// What it says.
    pub fields: Vec<Field>,
    /// Its certificates, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertificateView>,
    /// The data keys it describes.
    #[serde(skip)]
    covers: Vec<String>,
    /// The status fingerprint of the material it describes, if it is the canonical one.
    #[serde(skip)]
    canonical: Option<String>,
}

impl Section {
    fn new(title: impl Into<String>, covers: &[&str]) -> Self {
        Self {
            title: title.into(),
            covers: covers.iter().map(|k| (*k).to_owned()).collect(),
            ..Self::default()
        }
    }

    fn field(&mut self, name: &str, value: impl Into<String>) {
        self.fields.push(Field::new(name, value));
    }

    /// The value of field `name`, if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_str())
    }
}

/// One certificate of a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateView {
    /// Where it comes from, e.g. `tls.crt #1`.
    pub source: String,
    /// Subject (RFC 4514).
    pub subject: String,
    /// Issuer (RFC 4514).
    pub issuer: String,
    /// Serial, uppercase hex.
    pub serial: String,
    /// Start of validity (RFC 3339).
    pub not_before: String,
    /// End of validity (RFC 3339).
    pub not_after: String,
    /// `expires in …` / `expired … ago`.
    pub expires: String,
    /// Subject alternative names.
    pub names: Vec<String>,
    /// Key type and size.
    pub key: String,
    /// basicConstraints CA.
    #[serde(rename = "isCA")]
    pub is_ca: bool,
    /// pathLen, when set.
    pub max_path_length: Option<u32>,
    /// Key usages and extended key usages.
    pub usages: Vec<String>,
    /// SHA-256 fingerprint, colon hex.
    pub sha256: String,
    /// SHA-1 fingerprint, colon hex.
    pub sha1: String,
    /// Who signed it, as far as this Secret tells.
    pub signed_by: String,
}

/// What describing needs besides the data.
#[derive(Clone, Copy, Debug)]
struct Context<'a> {
    now: SystemTime,
    /// The key of keyed fingerprints (`keysmith.dev/fingerprint-salt`).
    salt: Option<&'a str>,
    /// The keystore password, or why there is none.
    pkcs12_password: &'a Result<Option<SecretString>, String>,
}

/// The data of a Secret.
type Data = BTreeMap<String, Vec<u8>>;

/// Suffix of the previous material's keys (rotation.keepPrevious).
use crate::reconcile::names::PREVIOUS_SUFFIX;

/// Describes `secret` at `now`. `pkcs12_password` opens keystores (`Ok(None)`: there is no
/// password to look for; `Err`: why it could not be read).
pub fn report(
    secret: &Secret,
    pkcs12_password: &Result<Option<SecretString>, String>,
    now: SystemTime,
) -> Report {
    let annotations = secret.annotations();
    let annotation = |key: &str| annotations.get(key).cloned();
    let ctx = Context {
        now,
        salt: annotations
            .get(FINGERPRINT_SALT_ANNOTATION)
            .map(String::as_str),
        pkcs12_password,
    };
    let data = data_of(secret);
    let (current, previous): (Data, Data) = data
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .partition(|(k, _)| !k.ends_with(PREVIOUS_SUFFIX));
    let mut sections = sections(&current, &ctx);
    let previous: Data = previous
        .into_iter()
        .filter_map(|(k, v)| Some((k.strip_suffix(PREVIOUS_SUFFIX)?.to_owned(), v)))
        .collect();
    let without_salt = Context { salt: None, ..ctx };
    for mut section in self::sections(&previous, &without_salt) {
        section.title = format!("Previous {}", lowercase_first(&section.title));
        section.covers = section
            .covers
            .iter()
            .map(|k| format!("{k}{PREVIOUS_SUFFIX}"))
            .collect();
        section.canonical = None;
        sections.push(section);
    }
    let covered: Vec<&String> = sections.iter().flat_map(|s| &s.covers).collect();
    Report {
        namespace: secret.namespace().unwrap_or_default(),
        name: secret.name_any(),
        type_: secret.type_.clone().unwrap_or_else(|| "Opaque".to_owned()),
        owner: annotation(OWNER_ANNOTATION),
        managed_by_keysmith: secret.labels().get(MANAGED_BY_LABEL).map(String::as_str)
            == Some(MANAGED_BY_VALUE),
        metadata: metadata(annotations),
        fingerprint: annotation(FINGERPRINT_ANNOTATION).map(|annotation| FingerprintCheck {
            annotation,
            computed: sections.iter().find_map(|s| s.canonical.clone()),
        }),
        data: data
            .iter()
            .map(|(key, value)| DataKey {
                key: key.clone(),
                bytes: value.len(),
                described: covered.contains(&key),
            })
            .collect(),
        sections,
    }
}

/// The sections of `data`: TLS material, SSH material, keyring material, KMIP keys.
fn sections(data: &Data, ctx: &Context<'_>) -> Vec<Section> {
    let mut sections = tls::sections(data, ctx);
    sections.extend(ssh::sections(data, ctx));
    sections.extend(keyring::sections(data, ctx));
    sections
}

/// keysmith's annotations worth showing, in a fixed order.
fn metadata(annotations: &BTreeMap<String, String>) -> Vec<Field> {
    [
        (REVISION_ANNOTATION, "Revision"),
        (GENERATED_AT_ANNOTATION, "Generated at"),
        (ROTATION_TOKEN_ANNOTATION, "Rotation token"),
        (KEYRING_ID_ANNOTATION, "Keyring id"),
        (NOTE_ANNOTATION, "Note"),
    ]
    .into_iter()
    .filter_map(|(key, name)| Some(Field::new(name, annotations.get(key)?.clone())))
    .collect()
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `2026-01-02T03:04:05Z`.
fn timestamp(time: SystemTime) -> String {
    jiff::Timestamp::try_from(time).map_or_else(|_| "?".to_owned(), |t| t.to_string())
}

/// `expires in 89d 23h`, `expired 2d 1h ago`.
fn expires(now: SystemTime, end: SystemTime) -> String {
    match end.duration_since(now) {
        Ok(left) => format!("expires in {}", span(left)),
        Err(e) => format!("expired {} ago", span(e.duration())),
    }
}

/// `89d 23h`, `5h 3m`, `42s`.
fn span(duration: std::time::Duration) -> String {
    let secs = duration.as_secs();
    let (days, hours, minutes) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// A yes/no.
fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// What [`fetch`] read: the Secret, and the keystore password when its owner is a
/// CertificateKeyPair with keystores.
pub struct Fetched {
    /// The Secret.
    pub secret: Secret,
    /// The keystore password, `Ok(None)` when there is none to look for, `Err` when it
    /// could not be read.
    pub pkcs12_password: Result<Option<SecretString>, String>,
}

/// Reads Secret `namespace/name` and, when its owner is a CertificateKeyPair with
/// keystores, the keystore password its spec names.
pub async fn fetch(client: &Client, namespace: &str, name: &str) -> Result<Fetched, CliError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = secrets.get(name).await.map_err(|source| CliError::Api {
        what: format!("getting Secret {namespace}/{name}"),
        source,
    })?;
    let has_keystore = data_of(&secret)
        .keys()
        .any(|k| k.starts_with("keystore.p12") || k.starts_with("truststore.p12"));
    let owner = secret.annotations().get(OWNER_ANNOTATION).cloned();
    let pkcs12_password = match owner
        .as_deref()
        .and_then(|o| o.strip_prefix("CertificateKeyPair/"))
    {
        Some(ckp) if has_keystore => keystore_password(client, namespace, ckp).await,
        _ => Ok(None),
    };
    Ok(Fetched {
        secret,
        pkcs12_password,
    })
}

/// The password of the keystores of CertificateKeyPair `namespace/name`.
async fn keystore_password(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<SecretString>, String> {
    let ckp = Api::<CertificateKeyPair>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .map_err(|e| format!("reading CertificateKeyPair {namespace}/{name}: {e}"))?;
    let Some(p12) = ckp.spec.keystores.as_ref().and_then(|k| k.pkcs12.as_ref()) else {
        return Ok(None);
    };
    let selector = &p12.password_secret_ref;
    let what = format!(
        "the keystore password (Secret {namespace}/{} key {})",
        selector.name, selector.key
    );
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get(&selector.name)
        .await
        .map_err(|e| format!("reading {what}: {e}"))?;
    let value = data_of(&secret)
        .remove(&selector.key)
        .ok_or_else(|| format!("{what} is missing"))?;
    let text = String::from_utf8(value).map_err(|_| format!("{what} is not UTF-8 text"))?;
    Ok(Some(SecretString::new(text)))
}

#[cfg(test)]
#[path = "inspect/tests.rs"]
mod tests;
