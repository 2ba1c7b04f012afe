//! The target Secret: who owns it (api.md 1.3), what keysmith wants in it, and writing it.
//!
//! A Secret is ours when its `keysmith.dev/owner-uid` annotation is the resource's uid. One
//! whose `keysmith.dev/owner` names this resource's kind and name but whose recorded uid
//! belongs to no object any more was written for an earlier life of this resource (a backup
//! restored, a namespace re-created by GitOps): it is taken back when its material is valid
//! and satisfies the spec (api-notes.md, "Restored Secrets"). Target Secrets carry no
//! ownerReference: a restore that brings back a stale one would let the garbage collector
//! delete the restored material, so `deletionPolicy: Delete` is carried out by keysmith's
//! finalizer ([`super::finalizer`]). A new
//! Secret is created with POST, so when two resources race for one name exactly one wins and
//! the other sees a foreign owner. An owned Secret is updated with PUT carrying the
//! resourceVersion we read, so a concurrent change is never overwritten blindly: the body is
//! the existing Secret with keysmith's fields set and the ones keysmith set earlier but no
//! longer wants removed (found through managedFields), while fields other managers added stay.
//! Create and update both record field manager `keysmith` with operation Update; mixing them
//! with server-side apply would split ownership between two entries, and an apply could then
//! not remove what the create had set.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, PostParams, Preconditions};

use crate::api::common::ExistingSecretPolicy;
use crate::material::SecretBytes;

use super::echoes::Writer;
use super::resource::{KeysmithResource, namespace, secret_owner, target_secret_name};

pub use super::names::{
    FIELD_MANAGER, FINGERPRINT_ANNOTATION, GENERATED_AT_ANNOTATION, MANAGED_BY_LABEL,
    MANAGED_BY_VALUE, OWNER_ANNOTATION, OWNER_NAMESPACE_ANNOTATION, OWNER_UID_ANNOTATION,
    RESTORED_FROM_ANNOTATION, REVISION_ANNOTATION, ROTATION_TOKEN_ANNOTATION,
};

/// Whose the target Secret is. `Debug` names the Secret, never its data.
#[derive(Clone)]
pub enum Ownership {
    /// No Secret of that name.
    Absent,
    /// Written by this resource.
    Owned(Box<Secret>),
    /// Written for an earlier resource of this kind and name (the annotations say so) whose
    /// uid belongs to no object any more: taken back when its material satisfies the spec.
    Restored {
        /// The existing Secret.
        secret: Box<Secret>,
        /// The uid it was written for.
        previous_uid: String,
    },
    /// Someone else's; `owner` is the keysmith owner annotation if there is one.
    Foreign {
        /// The existing Secret (never modified).
        secret: Box<Secret>,
        /// `<Kind>/<name>` of another keysmith resource, if it is one.
        owner: Option<String>,
    },
}

impl std::fmt::Debug for Ownership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = |s: &Secret| s.metadata.name.clone().unwrap_or_default();
        match self {
            Self::Absent => f.write_str("Absent"),
            Self::Owned(s) => write!(f, "Owned({})", name(s)),
            Self::Restored {
                secret,
                previous_uid,
            } => write!(f, "Restored({}, from uid {previous_uid})", name(secret)),
            Self::Foreign { secret, owner } => {
                write!(f, "Foreign({}, owner: {owner:?})", name(secret))
            }
        }
    }
}

impl Ownership {
    /// Classifies `secret` for the resource `owner`. `recorded_owner_exists` answers whether
    /// an object with a given uid still exists; it is asked only about a Secret that
    /// [`earlier_owner_uid`] says was written for an earlier resource of this name.
    pub fn of(
        secret: Option<Secret>,
        owner: &SecretOwner,
        recorded_owner_exists: impl FnOnce(&str) -> bool,
    ) -> Self {
        let Some(secret) = secret else {
            return Self::Absent;
        };
        let recorded_uid = annotation(&secret, OWNER_UID_ANNOTATION);
        if recorded_uid.as_deref() == Some(owner.uid.as_str()) {
            return Self::Owned(Box::new(secret));
        }
        let recorded_owner = annotation(&secret, OWNER_ANNOTATION);
        if recorded_owner.as_deref() != Some(owner.qualified_kind_name().as_str()) {
            return Self::Foreign {
                secret: Box::new(secret),
                owner: recorded_owner,
            };
        }
        let Some(previous_uid) = earlier_owner_uid(&secret, owner) else {
            // This kind and name, but no uid (`keysmith generate` of a resource not read
            // from a cluster) or another namespace's resource (a copy): not ours to take
            // back; adoptable with `existingSecret: Adopt` only when no uid is recorded.
            let elsewhere = annotation(&secret, OWNER_NAMESPACE_ANNOTATION)
                .filter(|ns| Some(ns) != secret.metadata.namespace.as_ref());
            return Self::Foreign {
                secret: Box::new(secret),
                owner: elsewhere
                    .map(|ns| format!("{} of namespace {ns}", owner.qualified_kind_name())),
            };
        };
        if recorded_owner_exists(&previous_uid) {
            return Self::Foreign {
                secret: Box::new(secret),
                owner: Some(format!(
                    "{} (uid {previous_uid}, which still exists)",
                    owner.qualified_kind_name()
                )),
            };
        }
        Self::Restored {
            secret: Box::new(secret),
            previous_uid,
        }
    }

    /// Classifies `secret` for a resource with `uid` as far as the uid goes: ours or not
    /// (for Secrets read to use, never to write, such as an issuer's).
    pub fn is_owned_by(secret: &Secret, uid: &str) -> bool {
        annotation(secret, OWNER_UID_ANNOTATION).as_deref() == Some(uid)
    }

    /// Whether this is a Secret of an earlier resource of this kind and name, taken back.
    pub fn is_restored(&self) -> bool {
        matches!(self, Self::Restored { .. })
    }

    /// The Secret keysmith may write to after deciding: its own or one it takes back.
    pub fn writable(&self) -> Option<&Secret> {
        match self {
            Self::Owned(secret) | Self::Restored { secret, .. } => Some(secret),
            _ => None,
        }
    }

    /// Our Secret's generation count (`keysmith.dev/revision`), 0 when there is none.
    pub fn revision(&self) -> i64 {
        self.writable()
            .and_then(|secret| annotation(secret, REVISION_ANNOTATION))
            .and_then(|r| r.parse().ok())
            .unwrap_or(0)
    }

    /// The rotate token our Secret's material answers.
    pub fn rotation_token(&self) -> Option<String> {
        annotation(self.writable()?, ROTATION_TOKEN_ANNOTATION)
    }

    /// The existing Secret, whoever owns it.
    pub fn secret(&self) -> Option<&Secret> {
        match self {
            Self::Absent => None,
            Self::Owned(s) => Some(s),
            Self::Restored { secret, .. } | Self::Foreign { secret, .. } => Some(secret),
        }
    }
}

/// An annotation of a Secret.
pub fn annotation(secret: &Secret, key: &str) -> Option<String> {
    secret.metadata.annotations.as_ref()?.get(key).cloned()
}

/// The data of a Secret as plain bytes.
pub fn data_of(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect()
}

/// Reads the text at `selector` from a Secret in `namespace` (a passphrase, a keystore
/// password). `what` names it in errors, which never contain the value.
pub async fn read_selector(
    client: &kube::Client,
    namespace: &str,
    selector: &crate::api::common::SecretKeySelector,
    what: &str,
) -> Result<crate::material::SecretString, super::error::Error> {
    use super::error::Error;
    let name = format!(
        "{what} Secret {namespace}/{} key {}",
        selector.name, selector.key
    );
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(&selector.name)
        .await
        .map_err(|source| Error::Read {
            what: name.clone(),
            source,
        })?;
    let value = secret
        .and_then(|s| s.data)
        .and_then(|mut d| d.remove(&selector.key))
        .ok_or_else(|| Error::Reference(format!("{name} not found")))?;
    let text = String::from_utf8(value.0)
        .map_err(|_| Error::Reference(format!("{name} is not UTF-8 text")))?;
    Ok(crate::material::SecretString::new(text))
}

/// The resource a Secret belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretOwner {
    /// Kind, e.g. `CertificateKeyPair`.
    pub kind: String,
    /// apiVersion, e.g. `keysmith.dev/v1alpha1`.
    pub api_version: String,
    /// Name of the resource.
    pub name: String,
    /// uid of the resource.
    pub uid: String,
}

impl SecretOwner {
    /// `<Kind>/<name>`: the value of `keysmith.dev/owner`.
    pub fn qualified_kind_name(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }

    /// Whether `reference` points at this resource's kind and name, whatever its uid: an
    /// ownerReference keysmith wrote, for this life of the resource or an earlier one.
    fn is_named_by(&self, reference: &OwnerReference) -> bool {
        reference.kind == self.kind
            && reference.name == self.name
            && reference.api_version.split('/').next() == self.api_version.split('/').next()
    }
}

/// Everything keysmith sets on a target Secret.
#[derive(Clone, Debug)]
pub struct DesiredSecret {
    /// Secret name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Secret type, e.g. `kubernetes.io/tls`.
    pub type_: String,
    /// Labels (the managed-by label is added by [`DesiredSecret::labels`]).
    pub extra_labels: BTreeMap<String, String>,
    /// Annotations besides the ownership ones.
    pub extra_annotations: BTreeMap<String, String>,
    /// The owning resource.
    pub owner: SecretOwner,
    /// Fingerprint of the material.
    pub fingerprint: String,
    /// Generation count of the material.
    pub revision: i64,
    /// The rotate token the material answers, if any.
    pub rotation_token: Option<String>,
    /// The data.
    pub data: BTreeMap<String, SecretBytes>,
}

impl DesiredSecret {
    /// All labels keysmith sets.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.extra_labels.clone();
        labels.insert(MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned());
        labels
    }

    /// All annotations keysmith sets.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        let mut annotations = self.extra_annotations.clone();
        let owner = &self.owner;
        annotations.insert(OWNER_ANNOTATION.to_owned(), owner.qualified_kind_name());
        annotations.insert(OWNER_UID_ANNOTATION.to_owned(), owner.uid.clone());
        annotations.insert(
            OWNER_NAMESPACE_ANNOTATION.to_owned(),
            self.namespace.clone(),
        );
        annotations.insert(FINGERPRINT_ANNOTATION.to_owned(), self.fingerprint.clone());
        annotations.insert(REVISION_ANNOTATION.to_owned(), self.revision.to_string());
        if let Some(token) = &self.rotation_token {
            annotations.insert(ROTATION_TOKEN_ANNOTATION.to_owned(), token.clone());
        }
        annotations
    }

    /// The Secret object to create or apply.
    pub fn to_secret(&self, resource_version: Option<String>) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(self.labels()),
                annotations: Some(self.annotations()),
                resource_version,
                ..ObjectMeta::default()
            },
            type_: Some(self.type_.clone()),
            data: Some(
                self.data
                    .iter()
                    .map(|(k, v)| (k.clone(), ByteString(v.expose().to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        }
    }

    /// True when `existing` already is what keysmith would write: same type, our labels,
    /// annotations and data, no ownerReference to this resource (earlier releases wrote
    /// one; it is removed), and no stale label, annotation or data key that keysmith set
    /// earlier and no longer wants.
    pub fn is_satisfied_by(&self, existing: &Secret) -> bool {
        let meta = &existing.metadata;
        let has_all = |want: &BTreeMap<String, String>, have: &Option<BTreeMap<String, String>>| {
            want.iter()
                .all(|(k, v)| have.as_ref().and_then(|h| h.get(k)) == Some(v))
        };
        let labels = self.labels();
        let annotations = self.annotations();
        let data_matches = self.data.iter().all(|(k, v)| {
            existing
                .data
                .as_ref()
                .and_then(|d| d.get(k))
                .map(|b| b.0.as_slice())
                == Some(v.expose())
        });
        let our_reference = meta
            .owner_references
            .iter()
            .flatten()
            .any(|r| self.owner.is_named_by(r));
        existing.type_.as_deref() == Some(self.type_.as_str())
            && has_all(&labels, &meta.labels)
            && has_all(&annotations, &meta.annotations)
            && data_matches
            && !our_reference
            && no_stale_fields(existing, "f:labels", &labels)
            && no_stale_fields(existing, "f:annotations", &annotations)
            && no_stale_data(existing, &self.data)
    }
}

/// The data keys keysmith's field manager owns in `secret`.
pub fn owned_data_keys(secret: &Secret) -> BTreeSet<String> {
    owned_keys(secret, &["f:data"])
}

/// When the material in `secret` was generated: its `keysmith.dev/generated-at`.
pub fn generated_at(secret: Option<&Secret>) -> Option<std::time::SystemTime> {
    let text = annotation(secret?, GENERATED_AT_ANNOTATION)?;
    let timestamp: jiff::Timestamp = text.parse().ok()?;
    Some(std::time::SystemTime::from(timestamp))
}

/// The data keysmith wrote earlier, without keys others added: what currency checks compare.
pub fn owned_data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let owned = owned_data_keys(secret);
    data_of(secret)
        .into_iter()
        .filter(|(k, _)| owned.contains(k))
        .collect()
}

/// The data of the target Secret to compare with the material, to keep an encoding that
/// carries random salts (PKCS#12, an encrypted OpenSSH key) when it still holds the same
/// material: what keysmith's field manager wrote, or, for a Secret being taken back or
/// still holding the material taken back (`keysmith.dev/restored-from-uid`), all of it. A
/// restore brings no keysmith managedFields, and an update does not make keysmith the
/// manager of data it leaves unchanged, so only the whole data keeps those bytes as they
/// were. (A data key someone else added to such a Secret makes the encoding not current:
/// it is then encoded again, same material, new salts.) `None` when there is no Secret.
pub fn material_data(ownership: &Ownership) -> Option<BTreeMap<String, Vec<u8>>> {
    match ownership {
        Ownership::Absent => None,
        Ownership::Restored { secret, .. } => Some(data_of(secret)),
        Ownership::Owned(secret) if annotation(secret, RESTORED_FROM_ANNOTATION).is_some() => {
            Some(data_of(secret))
        }
        Ownership::Owned(secret) | Ownership::Foreign { secret, .. } => Some(owned_data(secret)),
    }
}

/// Keys keysmith set earlier under `metadata.<field>` (from managedFields) that it no longer
/// sets.
fn no_stale_fields(existing: &Secret, field: &str, wanted: &BTreeMap<String, String>) -> bool {
    owned_keys(existing, &["f:metadata", field])
        .iter()
        .all(|k| wanted.contains_key(k))
}

fn no_stale_data(existing: &Secret, wanted: &BTreeMap<String, SecretBytes>) -> bool {
    owned_keys(existing, &["f:data"])
        .iter()
        .all(|k| wanted.contains_key(k))
}

/// The map keys keysmith's field manager owns at `path` of the Secret.
fn owned_keys(secret: &Secret, path: &[&str]) -> BTreeSet<String> {
    secret
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.manager.as_deref() == Some(FIELD_MANAGER))
        .filter_map(|m| m.fields_v1.as_ref())
        .filter_map(|f| path.iter().try_fold(&f.0, |v, key| v.get(*key)))
        .filter_map(|v| v.as_object())
        .flat_map(|o| o.keys())
        .filter_map(|k| k.strip_prefix("f:"))
        .map(str::to_owned)
        .collect()
}

/// Creates the Secret (when absent) or updates our own Secret. A Secret's type is
/// immutable, so our own Secret of another type is replaced (deleted with a uid and
/// resourceVersion precondition, then created). Never called for a foreign Secret.
pub async fn write(
    api: &Api<Secret>,
    desired: &DesiredSecret,
    existing: Option<&Secret>,
) -> Result<Secret, kube::Error> {
    let existing = match existing {
        Some(secret) if secret.type_.as_deref() != Some(desired.type_.as_str()) => {
            let preconditions = Preconditions {
                uid: secret.metadata.uid.clone(),
                resource_version: secret.metadata.resource_version.clone(),
            };
            let params = DeleteParams {
                preconditions: Some(preconditions),
                ..DeleteParams::default()
            };
            api.delete(&desired.name, &params).await?;
            None
        }
        other => other,
    };
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    match existing {
        None => api.create(&params, &desired.to_secret(None)).await,
        Some(existing) => {
            let updated = desired.merged_into(existing);
            api.replace(&desired.name, &params, &updated).await
        }
    }
}

impl DesiredSecret {
    /// `existing` with keysmith's fields set, the ones keysmith no longer sets removed, and
    /// everything other managers added kept; carries `existing`'s resourceVersion.
    pub fn merged_into(&self, existing: &Secret) -> Secret {
        let mut secret = existing.clone();
        let meta = &mut secret.metadata;
        meta.managed_fields = None;
        meta.labels = Some(merge(
            meta.labels.take().unwrap_or_default(),
            &owned_keys(existing, &["f:metadata", "f:labels"]),
            self.labels(),
        ));
        meta.annotations = Some(merge(
            meta.annotations.take().unwrap_or_default(),
            &owned_keys(existing, &["f:metadata", "f:annotations"]),
            self.annotations(),
        ));
        let references: Vec<OwnerReference> = meta
            .owner_references
            .take()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| !self.owner.is_named_by(r))
            .collect();
        meta.owner_references = (!references.is_empty()).then_some(references);
        let data: BTreeMap<String, ByteString> = self
            .data
            .iter()
            .map(|(k, v)| (k.clone(), ByteString(v.expose().to_vec())))
            .collect();
        secret.data = Some(merge(
            secret.data.take().unwrap_or_default(),
            &owned_data_keys(existing),
            data,
        ));
        secret.string_data = None;
        secret.type_ = Some(self.type_.clone());
        secret
    }
}

/// `current` without the keys keysmith owned (`stale`), then with `wanted` set.
fn merge<V>(
    current: BTreeMap<String, V>,
    stale: &BTreeSet<String>,
    wanted: BTreeMap<String, V>,
) -> BTreeMap<String, V> {
    let mut merged: BTreeMap<String, V> = current
        .into_iter()
        .filter(|(k, _)| !stale.contains(k))
        .collect();
    merged.extend(wanted);
    merged
}

/// Reads the target Secret of `object` and who owns it; also returns
/// `<namespace>/<name>` of the Secret for messages. `quick`: making the material costs
/// less than the read, so a new resource's Secret may be guessed absent
/// ([`super::absent_guesses`]).
pub async fn read_target<K: KeysmithResource>(
    ctx: &super::context::Context,
    object: &K,
    quick: bool,
) -> Result<(Ownership, String), super::error::Error> {
    let ns = namespace(object);
    let name = target_secret_name(object);
    let qualified = format!("{ns}/{name}");
    let uid = kube::ResourceExt::uid(object).unwrap_or_default();
    if !is_new(ctx, object, &uid) {
        ctx.absent_guesses.settled(&uid);
    } else if quick && ctx.absent_guesses.may_guess(&uid) {
        return Ok((Ownership::Absent, qualified));
    }
    let existing = Api::<Secret>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&name)
        .await
        .map_err(|source| super::error::Error::Read {
            what: format!("Secret {qualified}"),
            source,
        })?;
    let owner = secret_owner(object);
    let recorded_exists = match existing.as_ref().and_then(|s| earlier_owner_uid(s, &owner)) {
        Some(recorded) => uid_exists::<K>(ctx, &recorded).await?,
        None => false,
    };
    let ownership = Ownership::of(existing, &owner, |_| recorded_exists);
    Ok((ownership, qualified))
}

/// The uid `secret` was written for when it was written for an earlier resource of
/// `owner`'s kind and name in the Secret's own namespace: its owner annotation names them,
/// it records a uid, not `owner`'s, and its owner namespace (absent on Secrets of releases
/// before 0.2) is its own namespace.
pub fn earlier_owner_uid(secret: &Secret, owner: &SecretOwner) -> Option<String> {
    let recorded = annotation(secret, OWNER_UID_ANNOTATION).filter(|uid| !uid.is_empty())?;
    let same_namespace = annotation(secret, OWNER_NAMESPACE_ANNOTATION)
        .is_none_or(|ns| Some(&ns) == secret.metadata.namespace.as_ref());
    (annotation(secret, OWNER_ANNOTATION)? == owner.qualified_kind_name()
        && recorded != owner.uid
        && same_namespace)
        .then_some(recorded)
}

/// Whether an object of kind `K` with `uid` exists in the watched namespaces. The API has no
/// lookup by uid: this lists the kind's metadata, page by page, and is asked only when a
/// Secret names this resource with another uid (after a restore, or a copied Secret).
pub async fn uid_exists<K: KeysmithResource>(
    ctx: &super::context::Context,
    uid: &str,
) -> Result<bool, super::error::Error> {
    if uid.is_empty() {
        return Ok(false);
    }
    let apis: Vec<Api<K>> = match ctx.settings.namespaces.list() {
        None => vec![Api::all(ctx.client.clone())],
        Some(namespaces) => namespaces
            .iter()
            .map(|ns| Api::namespaced(ctx.client.clone(), ns))
            .collect(),
    };
    for api in apis {
        let mut params = kube::api::ListParams::default().limit(500);
        loop {
            let page =
                api.list_metadata(&params)
                    .await
                    .map_err(|source| super::error::Error::Read {
                        what: format!("the {} list", K::KIND),
                        source,
                    })?;
            if page
                .items
                .iter()
                .any(|o| o.metadata.uid.as_deref() == Some(uid))
            {
                return Ok(true);
            }
            match page.metadata.continue_ {
                Some(token) if !token.is_empty() => params = params.continue_token(&token),
                _ => break,
            }
        }
    }
    Ok(false)
}

/// Whether the target Secret of `object` is most likely absent: the resource was never
/// reconciled as far as anyone can tell (it shows no status, and this process wrote none
/// that its cached version may not show yet: a reconcile that runs again before the cache
/// caught up wrote the Secret itself), it carries no finalizer (a restored resource does,
/// and its Secret may well be back), and it does not ask to adopt an existing Secret.
/// `uid` is the uid of `object`.
fn is_new<K: KeysmithResource>(ctx: &super::context::Context, object: &K, uid: &str) -> bool {
    let version = kube::ResourceExt::resource_version(object).unwrap_or_default();
    object.status().is_none()
        && !super::finalizer::has_finalizer(ctx, object)
        && !ctx.written_statuses.pending_for(uid, &version)
        && object.target().existing_secret != ExistingSecretPolicy::Adopt
}

/// What a controller wants in its target Secret.
#[derive(Debug)]
pub struct TargetContent {
    /// Secret type.
    pub type_: &'static str,
    /// Fingerprint of the material (annotation `keysmith.dev/fingerprint`).
    pub fingerprint: String,
    /// Generation count of the material.
    pub revision: i64,
    /// The rotate token the material answers.
    pub rotation_token: Option<String>,
    /// Kind-specific annotations (e.g. `keysmith.dev/keyring-id`).
    pub annotations: BTreeMap<String, String>,
    /// The data.
    pub data: BTreeMap<String, SecretBytes>,
}

/// Everything keysmith sets on the target Secret of `object` for `content`: labels and
/// annotations from `spec.target` and the ownership annotations.
pub fn desired_secret<K: KeysmithResource>(object: &K, content: TargetContent) -> DesiredSecret {
    let target = object.target();
    let mut annotations = target.annotations.clone();
    annotations.extend(content.annotations);
    DesiredSecret {
        name: target_secret_name(object),
        namespace: namespace(object),
        type_: content.type_.to_owned(),
        extra_labels: target.labels.clone(),
        extra_annotations: annotations,
        owner: secret_owner(object),
        fingerprint: content.fingerprint,
        revision: content.revision,
        rotation_token: content.rotation_token,
        data: content.data,
    }
}

/// Writes the target Secret of `object` (labels and annotations from `spec.target`, the
/// ownership annotations) unless it already holds exactly that, taking back a restored
/// Secret on the way; then makes sure the resource carries keysmith's finalizer.
pub async fn write_target<K: KeysmithResource>(
    ctx: &super::context::Context,
    object: &K,
    ownership: &Ownership,
    content: TargetContent,
) -> Result<(), super::error::Error> {
    let mut desired = desired_secret(object, content);
    let existing = ownership.secret();
    let restored_from = restored_from(ownership, &desired.fingerprint);
    if let Some(uid) = &restored_from {
        desired
            .extra_annotations
            .insert(RESTORED_FROM_ANNOTATION.to_owned(), uid.clone());
    }
    let qualified = format!("{}/{}", desired.namespace, desired.name);
    if existing.is_some_and(|s| desired.is_satisfied_by(s)) {
        if let Some(uid) = &restored_from {
            note_restored(ctx, object, &qualified, uid);
        }
        return super::finalizer::ensure(ctx, object).await;
    }
    if let Some(secret) = existing
        && !matches!(ownership, Ownership::Owned(_))
        && secret.type_.as_deref() != Some(desired.type_.as_str())
    {
        // A Secret's type is immutable: adopting it would mean deleting it.
        return Err(super::error::Error::Conflict(format!(
            "Secret {}/{} has type {}, keysmith writes {}; a Secret keysmith does not own is never replaced, so it is left untouched",
            desired.namespace,
            desired.name,
            secret.type_.as_deref().unwrap_or("Opaque"),
            desired.type_
        )));
    }
    let api = Api::<Secret>::namespaced(ctx.client.clone(), &desired.namespace);
    let in_flight = ctx.secret_echoes.writing(&desired.namespace, &desired.name);
    match write(&api, &desired, existing).await {
        Ok(written) => {
            let owner = kube::ResourceExt::name_any(object);
            let writer = Writer {
                kind: K::KIND,
                namespace: &desired.namespace,
                name: &owner,
            };
            in_flight.wrote(&written, writer);
            if let Ownership::Restored { previous_uid, .. } = ownership {
                took_back(ctx, object, &qualified, previous_uid);
            } else if let Some(uid) = &restored_from {
                note_restored(ctx, object, &qualified, uid);
            }
            super::finalizer::ensure(ctx, object).await
        }
        Err(source) => {
            drop(in_flight);
            let error = super::error::Error::WriteSecret {
                secret: qualified.clone(),
                source,
            };
            if error.is_lost_create() {
                ctx.absent_guesses
                    .refute(&kube::ResourceExt::uid(object).unwrap_or_default());
            }
            Err(error)
        }
    }
}

/// The uid the material about to be written was taken back from: the Secret being taken
/// back, or our Secret that was and still holds that material (same fingerprint).
fn restored_from(ownership: &Ownership, fingerprint: &str) -> Option<String> {
    let secret = ownership.writable()?;
    if annotation(secret, FINGERPRINT_ANNOTATION).as_deref() != Some(fingerprint) {
        return None;
    }
    match ownership {
        Ownership::Restored { previous_uid, .. } => Some(previous_uid.clone()),
        _ => annotation(secret, RESTORED_FROM_ANNOTATION),
    }
}

/// Notes for the report step that `object` holds material taken back from `previous_uid`:
/// its Ready reason is `Restored` (`ctx.taken_back`).
fn note_restored<K: KeysmithResource>(
    ctx: &super::context::Context,
    object: &K,
    qualified: &str,
    previous_uid: &str,
) {
    let note = restored_message(K::KIND, qualified, previous_uid);
    if let Ok(mut taken) = ctx.taken_back.lock() {
        taken.insert(kube::ResourceExt::uid(object).unwrap_or_default(), note);
    }
}

/// Reports that `object` took back the Secret `qualified`, written for `previous_uid`: an
/// Event now, the Ready condition in the report step.
fn took_back<K: KeysmithResource>(
    ctx: &super::context::Context,
    object: &K,
    qualified: &str,
    previous_uid: &str,
) {
    let note = restored_message(K::KIND, qualified, previous_uid);
    tracing::info!(kind = K::KIND, name = %kube::ResourceExt::name_any(object), namespace = %namespace(object), secret = %qualified, previous_uid, "took back a restored Secret");
    note_restored(ctx, object, qualified, previous_uid);
    super::resource::publish(
        ctx,
        object,
        super::events::EventType::Normal,
        crate::api::common::reason::RESTORED,
        note,
    );
}

/// The SecretConflict message for a Secret of an earlier resource of this kind and name that
/// is not taken back: `why` says what is wrong with its material.
pub fn not_taken_back(secret_name: &str, why: &str) -> String {
    format!(
        "Secret {secret_name} was written for an earlier resource of this kind and name that no longer exists, but {why}; it is not taken back and left untouched"
    )
}

/// The Event note and Ready message of a Secret taken back after a restore.
pub fn restored_message(kind: &str, qualified: &str, previous_uid: &str) -> String {
    format!(
        "took back the material of Secret {qualified}, written for an earlier {kind} of this name (uid {previous_uid}) that no longer exists, as after a restore"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(uid: &str) -> SecretOwner {
        SecretOwner {
            kind: "CertificateKeyPair".to_owned(),
            api_version: "keysmith.dev/v1alpha1".to_owned(),
            name: "web".to_owned(),
            uid: uid.to_owned(),
        }
    }

    /// A Secret in namespace `team` with these annotations.
    fn secret(annotations: &[(&str, &str)]) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some("web".to_owned()),
                namespace: Some("team".to_owned()),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        }
    }

    fn classify(s: Secret, exists: bool) -> Ownership {
        Ownership::of(Some(s), &owner("u2"), |_| exists)
    }

    const OURS: (&str, &str) = (OWNER_ANNOTATION, "CertificateKeyPair/web");

    #[test]
    fn a_secret_of_an_earlier_resource_of_this_name_is_restored_only_when_that_one_is_gone() {
        let earlier = secret(&[OURS, (OWNER_UID_ANNOTATION, "u1")]);
        assert!(matches!(
            classify(earlier.clone(), false),
            Ownership::Restored { ref previous_uid, .. } if previous_uid == "u1"
        ));
        assert!(matches!(
            classify(earlier, true),
            Ownership::Foreign { owner: Some(ref o), .. } if o.contains("which still exists")
        ));
        let ours = secret(&[OURS, (OWNER_UID_ANNOTATION, "u2")]);
        assert!(matches!(classify(ours, false), Ownership::Owned(_)));
        assert!(matches!(
            Ownership::of(None, &owner("u2"), |_| false),
            Ownership::Absent
        ));
    }

    #[test]
    fn the_takeover_rule_never_reaches_other_names_namespaces_or_secrets_without_a_uid() {
        let other_name = secret(&[
            (OWNER_ANNOTATION, "CertificateKeyPair/api"),
            (OWNER_UID_ANNOTATION, "u1"),
        ]);
        assert!(matches!(
            classify(other_name, false),
            Ownership::Foreign { owner: Some(ref o), .. } if o == "CertificateKeyPair/api"
        ));
        let other_kind = secret(&[
            (OWNER_ANNOTATION, "SshKey/web"),
            (OWNER_UID_ANNOTATION, "u1"),
        ]);
        assert!(matches!(
            classify(other_kind, false),
            Ownership::Foreign { .. }
        ));
        // Copied from another namespace: named there, so never this namespace's.
        let copied = secret(&[
            OURS,
            (OWNER_UID_ANNOTATION, "u1"),
            (OWNER_NAMESPACE_ANNOTATION, "shop"),
        ]);
        assert!(matches!(
            classify(copied, false),
            Ownership::Foreign { owner: Some(ref o), .. } if o.contains("namespace shop")
        ));
        // No uid (`keysmith generate` output): not taken back, adoptable with Adopt.
        let generated = secret(&[OURS]);
        assert!(matches!(
            classify(generated, false),
            Ownership::Foreign { owner: None, .. }
        ));
        // Written in this namespace (or before 0.2 recorded namespaces): restored.
        let here = secret(&[
            OURS,
            (OWNER_UID_ANNOTATION, "u1"),
            (OWNER_NAMESPACE_ANNOTATION, "team"),
        ]);
        assert!(matches!(classify(here, false), Ownership::Restored { .. }));
    }

    #[test]
    fn restored_from_lasts_while_the_material_is_the_one_taken_back() {
        let taken = |annotations: &[(&str, &str)]| Ownership::Restored {
            secret: Box::new(secret(annotations)),
            previous_uid: "u1".to_owned(),
        };
        let same = taken(&[OURS, (FINGERPRINT_ANNOTATION, "SHA256:aa")]);
        assert_eq!(restored_from(&same, "SHA256:aa").as_deref(), Some("u1"));
        // Renewed while taken back: new material, not restored material.
        assert_eq!(restored_from(&same, "SHA256:bb"), None);
        let kept = Ownership::Owned(Box::new(secret(&[
            (FINGERPRINT_ANNOTATION, "SHA256:aa"),
            (RESTORED_FROM_ANNOTATION, "u1"),
        ])));
        assert_eq!(restored_from(&kept, "SHA256:aa").as_deref(), Some("u1"));
        assert_eq!(restored_from(&kept, "SHA256:bb"), None);
    }

    #[test]
    fn earlier_owner_references_are_removed_and_others_kept() {
        let reference = |kind: &str, name: &str, uid: &str| OwnerReference {
            api_version: "keysmith.dev/v1alpha1".to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
            uid: uid.to_owned(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let mut existing = secret(&[OURS, (OWNER_UID_ANNOTATION, "u1")]);
        existing.type_ = Some("kubernetes.io/tls".to_owned());
        existing.metadata.owner_references = Some(vec![
            reference("CertificateKeyPair", "web", "u1"),
            reference("Deployment", "web", "d1"),
        ]);
        let desired = DesiredSecret {
            name: "web".to_owned(),
            namespace: "team".to_owned(),
            type_: "kubernetes.io/tls".to_owned(),
            extra_labels: BTreeMap::new(),
            extra_annotations: BTreeMap::new(),
            owner: owner("u2"),
            fingerprint: "SHA256:aa".to_owned(),
            revision: 1,
            rotation_token: None,
            data: BTreeMap::new(),
        };
        assert!(!desired.is_satisfied_by(&existing));
        let merged = desired.merged_into(&existing);
        let kinds: Vec<&str> = merged
            .metadata
            .owner_references
            .iter()
            .flatten()
            .map(|r| r.kind.as_str())
            .collect();
        assert_eq!(kinds, ["Deployment"]);
        assert_eq!(
            annotation(&merged, OWNER_UID_ANNOTATION).as_deref(),
            Some("u2")
        );
        assert_eq!(
            annotation(&merged, OWNER_NAMESPACE_ANNOTATION).as_deref(),
            Some("team")
        );
        assert!(desired.is_satisfied_by(&merged));
    }
}
