//! Reconciling without a cluster, for `keysmith generate`: each controller's decide,
//! generate and encode steps run on what an input file holds instead of what the API server
//! has. A reference the input does not hold is an error naming the field (only the cluster
//! has it); every other failure is reported with the reason and message the controller
//! would put in the Ready condition.

use std::fmt;
use std::time::SystemTime;

use k8s_openapi::api::core::v1::Secret;

use crate::api::common::{SecretKeySelector, reason};
use crate::api::{CertificateKeyPair, KeyManager, KeyringSecret, KmsAuthKey, SshKey};
use crate::material::ssh::SshKeyPair;
use crate::material::x509::TlsMaterial;
use crate::material::{MaterialError, SecretString};

use super::error::Error;
use super::resource::{KeysmithResource, namespace, secret_owner, target_secret_name};
use super::secret::{OWNER_UID_ANNOTATION, Ownership, TargetContent, data_of, desired_secret};

/// Why a resource cannot be generated offline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OfflineError {
    /// What `field` asks for needs the cluster (e.g. an object the input does not hold).
    NeedsCluster {
        /// The spec field, e.g. `spec.issuerRef`.
        field: String,
        /// What it asks for, e.g. `signing by CertificateKeyPair pki/root-ca (not in the
        /// input)`.
        what: String,
    },
    /// The controller would report Ready=False with this reason and message.
    NotReady {
        /// A reason constant.
        reason: &'static str,
        /// The Ready message.
        message: String,
    },
    /// The input itself does not allow an answer (e.g. the target Secret in the input
    /// already belongs to the resource).
    Input(String),
}

impl fmt::Display for OfflineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NeedsCluster { field, what } => {
                write!(
                    f,
                    "{field}: {what} needs the cluster (it is not in the input)"
                )
            }
            Self::NotReady { reason, message } => write!(f, "{reason}: {message}"),
            Self::Input(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for OfflineError {}

impl From<MaterialError> for OfflineError {
    /// As the controller reports a failed generation: `InvalidSpec` for what the spec asks
    /// but cannot be made, `GenerationFailed` otherwise.
    fn from(error: MaterialError) -> Self {
        let error = Error::Generate(error);
        Self::NotReady {
            reason: error.reason(),
            message: error.to_string(),
        }
    }
}

impl From<Error> for OfflineError {
    /// A failed step of the controller, with the reason and message it reports.
    fn from(error: Error) -> Self {
        Self::NotReady {
            reason: error.reason(),
            message: error.to_string(),
        }
    }
}

impl OfflineError {
    /// Ready=False with `reason` and `message`.
    pub fn not_ready(reason: &'static str, message: impl Into<String>) -> Self {
        Self::NotReady {
            reason,
            message: message.into(),
        }
    }

    /// What `field` asks for (`what`) needs the cluster.
    pub fn needs_cluster(field: impl Into<String>, what: impl Into<String>) -> Self {
        Self::NeedsCluster {
            field: field.into(),
            what: what.into(),
        }
    }

    /// `field` names `what`, which the input does not hold.
    pub fn not_in_input(field: impl Into<String>, what: impl AsRef<str>) -> Self {
        Self::needs_cluster(field, format!("{} (not in the input)", what.as_ref()))
    }
}

/// A resource generated offline: its target Secret and its material, for the resources
/// of the input that refer to it. `Debug` names the Secret, never its data.
#[derive(Clone)]
pub struct Offline<M> {
    /// The Secret the operator would write.
    pub secret: Secret,
    /// The material in it.
    pub material: M,
}

impl<M> fmt::Debug for Offline<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let meta = &self.secret.metadata;
        write!(
            f,
            "Offline(Secret {}/{})",
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default()
        )
    }
}

/// What the input holds, for the references of the resource being generated. Resources
/// that need material of another resource of the input get it generated (once) through
/// [`Lookup::tls_material`] and [`Lookup::ssh_key_pair`].
pub trait Lookup {
    /// The time the material is generated at.
    fn now(&self) -> SystemTime;
    /// A Secret of the input.
    fn secret(&self, namespace: &str, name: &str) -> Option<Secret>;
    /// A CertificateKeyPair of the input.
    fn certificate_key_pair(&self, namespace: &str, name: &str) -> Option<CertificateKeyPair>;
    /// An SshKey of the input.
    fn ssh_key(&self, namespace: &str, name: &str) -> Option<SshKey>;
    /// The KeyringSecrets of the input in `namespace`, in input order.
    fn keyring_secrets(&self, namespace: &str) -> Vec<KeyringSecret>;
    /// A KeyManager of the input.
    fn key_manager(&self, namespace: &str, name: &str) -> Option<KeyManager>;
    /// The KmsAuthKeys of the input in `namespace`, in input order.
    fn kms_auth_keys(&self, namespace: &str) -> Vec<KmsAuthKey>;
    /// The CA the operator's `--default-issuer` names, as `(namespace, name)`.
    fn default_issuer(&self) -> Option<(String, String)>;
    /// The key and certificates of the CertificateKeyPair or pkey_cert KeyringSecret
    /// `kind` `namespace/name` of the input, generated first.
    fn tls_material(
        &mut self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<TlsMaterial, OfflineError>;
    /// The key of the SshKey `namespace/name` of the input, generated first.
    fn ssh_key_pair(&mut self, namespace: &str, name: &str) -> Result<SshKeyPair, OfflineError>;
}

/// The target Secret of `object` in the input, classified as the controller classifies
/// the Secret it reads. A Secret that already belongs to the resource is an
/// [`OfflineError::Input`]: generating makes new material only.
pub fn target<K: KeysmithResource>(
    object: &K,
    lookup: &impl Lookup,
) -> Result<(Ownership, String), OfflineError> {
    let ns = namespace(object);
    let name = target_secret_name(object);
    let qualified = format!("{ns}/{name}");
    // The input is all there is: a Secret of an earlier resource of this name is taken
    // back as the operator would once that resource is gone.
    let ownership = Ownership::of(lookup.secret(&ns, &name), &secret_owner(object), |_| false);
    if let Ownership::Owned(_) = ownership {
        return Err(OfflineError::Input(format!(
            "Secret {qualified} in the input already belongs to this resource (its {OWNER_UID_ANNOTATION} is the resource's uid): the operator would keep it, there is nothing to generate"
        )));
    }
    Ok((ownership, qualified))
}

/// The Secret the controller writes for `content`: a new one, or `existing` (a Secret it
/// adopts) with keysmith's fields set. Without a uid (a resource not read from a cluster)
/// there is no `keysmith.dev/owner-uid`.
pub fn written<K: KeysmithResource>(
    object: &K,
    content: TargetContent,
    existing: Option<&Secret>,
) -> Secret {
    let desired = desired_secret(object, content);
    let mut secret = match existing {
        Some(existing) => desired.merged_into(existing),
        None => desired.to_secret(None),
    };
    let meta = &mut secret.metadata;
    meta.resource_version = None;
    meta.uid = None;
    meta.creation_timestamp = None;
    meta.managed_fields = None;
    if desired.owner.uid.is_empty()
        && let Some(annotations) = meta.annotations.as_mut()
    {
        annotations.remove(OWNER_UID_ANNOTATION);
    }
    secret
}

/// Reads the text at `selector` from a Secret of the input (a passphrase, a keystore
/// password), with the controller's messages; `field` names the spec field that refers
/// to it. Errors never contain the value.
pub fn read_selector(
    lookup: &impl Lookup,
    namespace: &str,
    selector: &SecretKeySelector,
    what: &str,
    field: &str,
) -> Result<SecretString, OfflineError> {
    let name = format!(
        "{what} Secret {namespace}/{} key {}",
        selector.name, selector.key
    );
    let Some(secret) = lookup.secret(namespace, &selector.name) else {
        return Err(OfflineError::not_in_input(field, name));
    };
    let value = data_of(&secret).remove(&selector.key).ok_or_else(|| {
        OfflineError::not_ready(reason::REFERENCE_NOT_FOUND, format!("{name} not found"))
    })?;
    let text = String::from_utf8(value).map_err(|_| {
        OfflineError::not_ready(
            reason::REFERENCE_NOT_FOUND,
            format!("{name} is not UTF-8 text"),
        )
    })?;
    Ok(SecretString::new(text))
}
