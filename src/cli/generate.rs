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

/// What an input holds. `Debug` names the Secrets, never their data.
#[derive(Clone, Default)]
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

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secrets: Vec<String> = self.secrets.iter().map(|s| s.name_any()).collect();
        f.debug_struct("Input")
            .field("resources", &self.resources)
            .field("secrets", &secrets)
            .field("key_managers", &self.key_managers.len())
            .field("skipped", &self.skipped)
            .field("errors", &self.errors)
            .finish()
    }
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

/// What generating one resource gave. `Debug` names the Secret, never its data.
pub struct Generated {
    /// `<Kind> <namespace>/<name>`.
    pub resource: String,
    /// The Secret, or why there is none.
    pub result: Result<Secret, OfflineError>,
}

impl std::fmt::Debug for Generated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let result = self.result.as_ref().map(|secret| secret.name_any());
        f.debug_struct("Generated")
            .field("resource", &self.resource)
            .field("result", &result)
            .finish()
    }
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
#[derive(Clone)]
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

#[cfg(test)]
mod tests {
    use super::*;

    const INPUT: &str = "
apiVersion: v1
kind: Secret
metadata: {name: pass}
stringData: {passphrase: hunter2-hunter2-hunter2}
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: v1
kind: List
items:
- apiVersion: keysmith.dev/v1alpha1
  kind: SshKey
  metadata: {name: ops, uid: 0b6c3e0e-7f5e-4c65-9d1c-1f3a0b1c2d3e}
  spec: {passphraseSecretRef: {name: pass, key: passphrase}}
- apiVersion: keysmith.dev/v1alpha1
  kind: SshKey
  metadata: {name: plain, namespace: elsewhere}
  spec: {target: {deletionPolicy: Delete}}
";

    fn now() -> Options {
        Options {
            default_issuer: None,
            now: SystemTime::now(),
        }
    }

    #[test]
    fn lists_secrets_and_skipped_objects_are_read() {
        let input = Input::parse(INPUT, "team");
        assert!(input.errors.is_empty(), "{:?}", input.errors);
        assert_eq!(input.skipped, ["Namespace other"]);
        let names: Vec<String> = input.resources.iter().map(Resource::describe).collect();
        assert_eq!(names, ["SshKey team/ops", "SshKey elsewhere/plain"]);
        let secret = &input.secrets[0];
        assert_eq!(secret.namespace().as_deref(), Some("team"));
        assert!(secret.string_data.is_none());
        assert_eq!(
            secret.data.as_ref().map(|d| d["passphrase"].0.len()),
            Some(23)
        );
    }

    #[test]
    fn debug_output_names_secrets_and_never_shows_their_data() {
        let input = Input::parse(INPUT, "team");
        let generated = generate(&input, &now());
        let shown = format!("{input:?} {generated:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        assert!(shown.contains("pass") && shown.contains("plain"), "{shown}");
    }

    #[test]
    fn the_owner_uid_comes_only_with_a_uid_and_no_owner_reference_ever() {
        let input = Input::parse(INPUT, "team");
        let generated = generate(&input, &now());
        let secret = |i: usize| match &generated[i].result {
            Ok(secret) => secret.clone(),
            Err(e) => panic!("{e}"),
        };
        let with_uid = secret(0);
        assert_eq!(
            with_uid
                .annotations()
                .get("keysmith.dev/owner-uid")
                .map(String::as_str),
            Some("0b6c3e0e-7f5e-4c65-9d1c-1f3a0b1c2d3e")
        );
        // deletionPolicy is carried out by the operator's finalizer: a restored Secret must
        // not be garbage-collected for a stale ownerReference.
        assert!(with_uid.metadata.owner_references.is_none());
        let without = secret(1);
        assert!(!without.annotations().contains_key("keysmith.dev/owner-uid"));
        assert!(without.metadata.owner_references.is_none());
        assert_eq!(without.namespace().as_deref(), Some("elsewhere"));
    }

    #[test]
    fn the_key_manager_of_the_input_admits_and_the_default_issuer_signs() {
        let input = Input::parse(
            "
apiVersion: keysmith.dev/v1alpha1
kind: KeyManager
metadata: {name: off}
spec: {enabled: false, servers: [{name: a, address: 'a:5696', caSecretRef: {name: ca, key: ca.crt}, clientCertificateSecretRef: {name: c}}]}
---
apiVersion: keysmith.dev/v1alpha1
kind: KmsAuthKey
metadata: {name: refused}
spec: {keyManagerRef: {name: off}}
---
apiVersion: keysmith.dev/v1alpha1
kind: CertificateKeyPair
metadata: {name: ops-ca, namespace: pki}
spec: {commonName: Ops CA, isCA: true}
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata: {name: device}
spec: {type: pkey_cert, params: {pkey_cert: {commonName: device}}}
",
            "team",
        );
        let options = Options {
            default_issuer: Some(("pki".to_owned(), "ops-ca".to_owned())),
            now: SystemTime::now(),
        };
        let generated = generate(&input, &options);
        match &generated[0].result {
            Err(OfflineError::NotReady { reason, message }) => {
                assert_eq!(*reason, "KeyManagerDisabled");
                assert!(message.contains("external key management is not enabled"));
            }
            other => panic!("{:?}", other.as_ref().map(|s| s.name_any())),
        }
        let ca = generated[1].result.as_ref().expect("CA");
        let device = generated[2].result.as_ref().expect("device");
        let pem = |s: &Secret, key: &str| s.data.as_ref().map(|d| d[key].0.clone());
        // The default issuer signed: the device's ca.crt is the CA's certificate.
        assert_eq!(pem(device, "ca.crt"), pem(ca, "tls.crt"));
        assert_ne!(pem(device, "tls.crt"), pem(device, "ca.crt"));
    }

    #[test]
    fn unreadable_documents_are_errors_naming_the_field() {
        let input = Input::parse(
            "apiVersion: keysmith.dev/v1alpha1\nkind: KeyringSecret\nmetadata: {name: x}\nspec: {type: nope}\n---\napiVersion: keysmith.dev/v2\nkind: Thing\nmetadata: {name: y}\n---\napiVersion: keysmith.dev/v1alpha1\nkind: SshKey\nmetadata: {}\nspec: {}\n",
            "team",
        );
        assert_eq!(input.errors.len(), 3, "{:?}", input.errors);
        assert!(
            input.errors[0].starts_with("KeyringSecret x: spec.type: unknown variant `nope`"),
            "{:?}",
            input.errors
        );
        assert!(
            input.errors[1].contains("not a keysmith kind"),
            "{:?}",
            input.errors
        );
        assert!(
            input.errors[2].contains("metadata.name is required"),
            "{:?}",
            input.errors
        );
        assert!(input.resources.is_empty());
    }
}
