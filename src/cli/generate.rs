//! `keysmith generate -f FILE`: the Secrets the operator would create for the keysmith
//! resources of a file, made offline by each controller's own steps
//! ([`crate::reconcile::offline`]). The input is a multi-document YAML stream (also a
//! `kind: List`); its v1 Secrets and KeyManagers are what references may name, and a
//! resource may name another resource of the input (an issuer CA, an SSH CA, a pkey_cert),
//! which is generated first. Other objects (Namespaces, …) are skipped.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use serde::de::DeserializeOwned;
use serde_norway::Value;

use crate::api::{CertificateKeyPair, KeyManager, KeyringSecret, KmsAuthKey, SshKey};
use crate::material::ssh::SshKeyPair;
use crate::material::x509::TlsMaterial;
use crate::reconcile::keyring_secret::KeyringMaterial;
use crate::reconcile::offline::{Lookup, Offline, OfflineError};
use crate::reconcile::{certificate_key_pair, keyring_secret, kms_auth_key, ssh_key};

/// The API version of every keysmith kind.
const API_VERSION: &str = "keysmith.dev/v1alpha1";

/// A keysmith resource of the input that writes a Secret.
#[derive(Clone, Debug)]
pub enum Resource {
    /// A CertificateKeyPair.
    CertificateKeyPair(Box<CertificateKeyPair>),
    /// An SshKey.
    SshKey(Box<SshKey>),
    /// A KeyringSecret.
    KeyringSecret(Box<KeyringSecret>),
    /// A KmsAuthKey.
    KmsAuthKey(Box<KmsAuthKey>),
}

impl Resource {
    /// The kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CertificateKeyPair(_) => certificate_key_pair::KIND,
            Self::SshKey(_) => ssh_key::KIND,
            Self::KeyringSecret(_) => keyring_secret::KIND,
            Self::KmsAuthKey(_) => kms_auth_key::KIND,
        }
    }

    fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        match self {
            Self::CertificateKeyPair(r) => &r.metadata,
            Self::SshKey(r) => &r.metadata,
            Self::KeyringSecret(r) => &r.metadata,
            Self::KmsAuthKey(r) => &r.metadata,
        }
    }

    /// `<Kind> <namespace>/<name>`, for messages.
    pub fn describe(&self) -> String {
        let (ns, name) = self.key_parts();
        format!("{} {ns}/{name}", self.kind())
    }

    fn key_parts(&self) -> (String, String) {
        let meta = self.meta();
        (
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        )
    }

    fn key(&self) -> Key {
        let (ns, name) = self.key_parts();
        (self.kind(), ns, name)
    }
}

/// What an input holds.
#[derive(Clone, Debug, Default)]
pub struct Input {
    /// The keysmith resources, in input order.
    pub resources: Vec<Resource>,
    /// The v1 Secrets (with `stringData` folded into `data`).
    pub secrets: Vec<Secret>,
    /// The KeyManagers.
    pub key_managers: Vec<KeyManager>,
    /// Objects that were skipped (not keysmith resources), for a note.
    pub skipped: Vec<String>,
    /// Documents that could not be read.
    pub errors: Vec<String>,
}

impl Input {
    /// Reads a multi-document YAML stream; objects without a namespace get `namespace`.
    /// Unreadable documents are collected in [`Input::errors`].
    pub fn parse(text: &str, namespace: &str) -> Self {
        let mut input = Self::default();
        input.add(text, namespace);
        input
    }

    /// Adds the objects of another stream.
    pub fn add(&mut self, text: &str, namespace: &str) {
        for (index, document) in serde_norway::Deserializer::from_str(text).enumerate() {
            let value: Value = match serde::Deserialize::deserialize(document) {
                Ok(value) => value,
                Err(e) => {
                    // The stream cannot be followed past a syntax error.
                    self.errors.push(format!("document {}: {e}", index + 1));
                    return;
                }
            };
            if !value.is_null() {
                self.add_object(value, namespace);
            }
        }
    }

    fn add_object(&mut self, value: Value, namespace: &str) {
        let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default();
        let (api_version, kind) = (text("apiVersion").to_owned(), text("kind").to_owned());
        let name = value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("<no name>")
            .to_owned();
        let shown = format!("{kind} {name}");
        let added = match (api_version.as_str(), kind.as_str()) {
            (_, "List") => {
                let items = value.get("items").and_then(Value::as_sequence);
                for item in items.into_iter().flatten() {
                    self.add_object(item.clone(), namespace);
                }
                Ok(())
            }
            (API_VERSION, "CertificateKeyPair") => typed(value, namespace).map(|r| {
                self.resources
                    .push(Resource::CertificateKeyPair(Box::new(r)));
            }),
            (API_VERSION, "SshKey") => typed(value, namespace).map(|r| {
                self.resources.push(Resource::SshKey(Box::new(r)));
            }),
            (API_VERSION, "KeyringSecret") => typed(value, namespace).map(|r| {
                self.resources.push(Resource::KeyringSecret(Box::new(r)));
            }),
            (API_VERSION, "KmsAuthKey") => typed(value, namespace).map(|r| {
                self.resources.push(Resource::KmsAuthKey(Box::new(r)));
            }),
            (API_VERSION, "KeyManager") => {
                typed(value, namespace).map(|r| self.key_managers.push(r))
            }
            ("v1", "Secret") => typed(value, namespace).map(|s| self.secrets.push(folded(s))),
            (version, _) if version.starts_with("keysmith.dev/") => Err(format!(
                "apiVersion {version} kind {kind} is not a keysmith kind (expected {API_VERSION})"
            )),
            _ => {
                self.skipped.push(shown.clone());
                Ok(())
            }
        };
        if let Err(e) = added {
            self.errors.push(format!("{shown}: {e}"));
        }
    }
}

/// `T` from a YAML object (errors name the field), with `namespace` when it names none.
fn typed<T: DeserializeOwned + kube::Resource>(value: Value, namespace: &str) -> Result<T, String> {
    // Deserializing from text names the path of a bad field ("spec.privateKey.algorithm:
    // unknown variant …"); the line numbers would be those of the re-serialized object.
    let text = serde_norway::to_string(&value).map_err(|e| e.to_string())?;
    let mut object: T = serde_norway::from_str(&text).map_err(|e| {
        let message = e.to_string();
        match message.find(" at line ") {
            Some(at) => message[..at].to_owned(),
            None => message,
        }
    })?;
    if object.meta().name.as_deref().is_none_or(str::is_empty) {
        return Err("metadata.name is required".to_owned());
    }
    object
        .meta_mut()
        .namespace
        .get_or_insert_with(|| namespace.to_owned());
    Ok(object)
}

/// A Secret with its `stringData` folded into `data`, as the API server stores it.
fn folded(mut secret: Secret) -> Secret {
    if let Some(strings) = secret.string_data.take() {
        let data = secret.data.get_or_insert_with(Default::default);
        for (key, value) in strings {
            data.insert(key, ByteString(value.into_bytes()));
        }
    }
    secret
}

/// How the operator is configured, as far as generation cares.
#[derive(Clone, Debug)]
pub struct Options {
    /// The operator's `--default-issuer`, as `(namespace, name)`.
    pub default_issuer: Option<(String, String)>,
    /// When the material is generated.
    pub now: SystemTime,
}

/// What generating one resource gave.
#[derive(Debug)]
pub struct Generated {
    /// `<Kind> <namespace>/<name>`.
    pub resource: String,
    /// The Secret, or why there is none.
    pub result: Result<Secret, OfflineError>,
}

/// Generates the Secret of every resource of `input`, in input order.
pub fn generate(input: &Input, options: &Options) -> Vec<Generated> {
    let mut world = World {
        input,
        options,
        done: HashMap::new(),
        visiting: HashSet::new(),
    };
    input
        .resources
        .iter()
        .map(|resource| Generated {
            resource: resource.describe(),
            result: world.produce(resource).map(|p| p.secret().clone()),
        })
        .collect()
}

/// A Secret as YAML (apiVersion, kind, metadata, type, data in base64).
pub fn to_yaml(secret: &Secret) -> Result<String, serde_norway::Error> {
    serde_norway::to_string(secret)
}

/// `(kind, namespace, name)`.
type Key = (&'static str, String, String);

/// What a resource produced: its Secret and the material others may need.
#[derive(Clone, Debug)]
enum Produced {
    Tls(Box<Offline<TlsMaterial>>),
    Ssh(Box<Offline<SshKeyPair>>),
    Keyring(Box<Offline<KeyringMaterial>>),
    Other(Box<Secret>),
}

impl Produced {
    fn secret(&self) -> &Secret {
        match self {
            Self::Tls(o) => &o.secret,
            Self::Ssh(o) => &o.secret,
            Self::Keyring(o) => &o.secret,
            Self::Other(secret) => secret,
        }
    }
}

/// The input as the cluster offline controllers look things up in; every resource is
/// generated once, when first printed or referred to.
struct World<'a> {
    input: &'a Input,
    options: &'a Options,
    done: HashMap<Key, Result<Produced, OfflineError>>,
    visiting: HashSet<Key>,
}

impl World<'_> {
    fn produce(&mut self, resource: &Resource) -> Result<Produced, OfflineError> {
        let key = resource.key();
        if let Some(done) = self.done.get(&key) {
            return done.clone();
        }
        if !self.visiting.insert(key.clone()) {
            return Err(OfflineError::Input(format!(
                "{} is part of a reference loop in the input",
                resource.describe()
            )));
        }
        let produced =
            match resource {
                Resource::CertificateKeyPair(r) => certificate_key_pair::offline::generate(r, self)
                    .map(|o| Produced::Tls(Box::new(o))),
                Resource::SshKey(r) => {
                    ssh_key::offline::generate(r, self).map(|o| Produced::Ssh(Box::new(o)))
                }
                Resource::KeyringSecret(r) => keyring_secret::offline::generate(r, self)
                    .map(|o| Produced::Keyring(Box::new(o))),
                Resource::KmsAuthKey(r) => kms_auth_key::offline::generate(r, self)
                    .map(|o| Produced::Other(Box::new(o.secret))),
            };
        self.visiting.remove(&key);
        self.done.insert(key, produced.clone());
        produced
    }

    fn find(&self, kind: &str, namespace: &str, name: &str) -> Option<Resource> {
        self.input
            .resources
            .iter()
            .find(|r| {
                let (ns, n) = r.key_parts();
                r.kind() == kind && ns == namespace && n == name
            })
            .cloned()
    }
}

impl Lookup for World<'_> {
    fn now(&self) -> SystemTime {
        self.options.now
    }

    fn secret(&self, namespace: &str, name: &str) -> Option<Secret> {
        self.input
            .secrets
            .iter()
            .find(|s| s.namespace().as_deref() == Some(namespace) && s.name_any() == name)
            .cloned()
    }

    fn certificate_key_pair(&self, namespace: &str, name: &str) -> Option<CertificateKeyPair> {
        match self.find(certificate_key_pair::KIND, namespace, name)? {
            Resource::CertificateKeyPair(r) => Some(*r),
            _ => None,
        }
    }

    fn ssh_key(&self, namespace: &str, name: &str) -> Option<SshKey> {
        match self.find(ssh_key::KIND, namespace, name)? {
            Resource::SshKey(r) => Some(*r),
            _ => None,
        }
    }

    fn keyring_secrets(&self, namespace: &str) -> Vec<KeyringSecret> {
        self.input
            .resources
            .iter()
            .filter_map(|r| match r {
                Resource::KeyringSecret(k) if k.namespace().as_deref() == Some(namespace) => {
                    Some(k.as_ref().clone())
                }
                _ => None,
            })
            .collect()
    }

    fn key_manager(&self, namespace: &str, name: &str) -> Option<KeyManager> {
        self.input
            .key_managers
            .iter()
            .find(|m| m.namespace().as_deref() == Some(namespace) && m.name_any() == name)
            .cloned()
    }

    fn kms_auth_keys(&self, namespace: &str) -> Vec<KmsAuthKey> {
        self.input
            .resources
            .iter()
            .filter_map(|r| match r {
                Resource::KmsAuthKey(k) if k.namespace().as_deref() == Some(namespace) => {
                    Some(k.as_ref().clone())
                }
                _ => None,
            })
            .collect()
    }

    fn default_issuer(&self) -> Option<(String, String)> {
        self.options.default_issuer.clone()
    }

    fn tls_material(
        &mut self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<TlsMaterial, OfflineError> {
        let resource = self.find(kind, namespace, name).ok_or_else(|| {
            OfflineError::Input(format!("{kind} {namespace}/{name} is not in the input"))
        })?;
        match self.produce(&resource)? {
            Produced::Tls(o) => Ok(o.material),
            Produced::Keyring(o) => match o.material {
                KeyringMaterial::Certificate(material) => Ok(material),
                _ => Err(OfflineError::Input(format!(
                    "{kind} {namespace}/{name} holds no key and certificate"
                ))),
            },
            _ => Err(OfflineError::Input(format!(
                "{kind} {namespace}/{name} holds no key and certificate"
            ))),
        }
    }

    fn ssh_key_pair(&mut self, namespace: &str, name: &str) -> Result<SshKeyPair, OfflineError> {
        let resource = self.find(ssh_key::KIND, namespace, name).ok_or_else(|| {
            OfflineError::Input(format!("SshKey {namespace}/{name} is not in the input"))
        })?;
        match self.produce(&resource)? {
            Produced::Ssh(o) => Ok(o.material),
            _ => Err(OfflineError::Input(format!(
                "SshKey {namespace}/{name} holds no key"
            ))),
        }
    }
}
