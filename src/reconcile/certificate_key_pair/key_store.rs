//! Non-exportable keys (`privateKeyExport: Denied`): the key lives in a Secret of the
//! operator's key namespace, never in the target Secret.
//!
//! The key Secret is named after the resource's namespace and name
//! (`keysmith-key.<namespace>.<name>`), never its uid, so a restored resource (new uid)
//! finds its key again. Releases before 0.2 named it `keysmith-key-<uid>`; such a Secret is
//! found under the resource's uid (an upgrade) or under the uid its target Secret records (a
//! restore of an older backup), and moved to the new name with the same key.
//!
//! A key Secret records its resource (`keysmith.dev/key-owner`, `keysmith.dev/owner-uid`).
//! One written for an earlier resource of this name is used only together with a target
//! Secret of that same earlier resource, when both are taken back; otherwise it is never
//! overwritten (SecretConflict). It goes with its resource by `deletionPolicy`
//! ([`clean_up`], run by the finalizer).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};

use crate::api::certificate_key_pair::{CertificateKeyPair, KeyEncoding, PrivateKeyExport};
use crate::api::common::DeletionPolicy;
use crate::material::fingerprint::sha256_tagged;
use crate::material::pkey::PrivateKey;

use super::{Error, KIND};
use crate::reconcile::finalizer::delete_exactly;
use crate::reconcile::namespaces::WatchedNamespaces;
use crate::reconcile::secret::{
    FIELD_MANAGER, MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_UID_ANNOTATION, annotation,
};

pub use crate::reconcile::names::{KEY_LABEL, KEY_OWNER_ANNOTATION};
const KEY_DATA: &str = "tls.key";
/// Prefix of key Secret names.
const PREFIX: &str = "keysmith-key";
/// Longest name of a Secret (a DNS subdomain).
const MAX_NAME: usize = 253;

/// Name of the key Secret of the CertificateKeyPair `namespace/name`:
/// `keysmith-key.<namespace>.<name>`. A namespace holds no dot, so the name is unambiguous;
/// when it would be longer than a Secret name may be, the resource name is replaced by a
/// hash of it.
pub fn key_secret_name(namespace: &str, name: &str) -> String {
    let full = format!("{PREFIX}.{namespace}.{name}");
    if full.len() <= MAX_NAME {
        return full;
    }
    let digest = sha256_tagged(name.as_bytes());
    let hex = digest.trim_start_matches("SHA256:");
    format!("{PREFIX}.{namespace}.{}", &hex[..32])
}

/// Name of the key Secret releases before 0.2 wrote for the resource with `uid`.
pub fn legacy_key_secret_name(uid: &str) -> String {
    format!("{PREFIX}-{uid}")
}

/// `keysmith.dev/key-owner` of the key Secret of `ckp`.
fn key_owner(ckp: &CertificateKeyPair) -> String {
    format!(
        "{KIND}/{}/{}",
        ckp.namespace().unwrap_or_default(),
        ckp.name_any()
    )
}

/// The key Secret found for a resource.
#[derive(Clone)]
pub struct KeySecret {
    /// The Secret.
    pub secret: Secret,
    /// The uid it was written for.
    pub owner_uid: String,
}

impl std::fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KeySecret({}, owner uid {})",
            self.secret.name_any(),
            self.owner_uid
        )
    }
}

/// Which key Secret a resource may use.
#[derive(Debug)]
pub enum KeyUse {
    /// None is found.
    None,
    /// This resource's, or the one of the earlier resource whose target Secret is taken
    /// back with it.
    Usable(Box<KeySecret>),
    /// Written for an earlier resource of this name whose target Secret is not the one
    /// being taken back: never used, never overwritten.
    Conflict(String),
}

/// Decides whether `found` may be used by the resource with `uid`, whose target Secret is
/// taken back from `restored_uid` (if it is). Pure.
pub fn key_use(found: Option<KeySecret>, uid: &str, restored_uid: Option<&str>) -> KeyUse {
    let Some(found) = found else {
        return KeyUse::None;
    };
    if found.owner_uid == uid || Some(found.owner_uid.as_str()) == restored_uid {
        return KeyUse::Usable(Box::new(found));
    }
    KeyUse::Conflict(format!(
        "key Secret {} was written for an earlier resource of this name (uid {}) and the target Secret is not that resource's; it is left untouched (restore the target Secret it belongs to, or delete the key Secret to have a new key made)",
        found.secret.name_any(),
        found.owner_uid
    ))
}

/// Finds the key Secret of `ckp`: by its name, else under the legacy names of the
/// resource's uid and of `recorded_uid` (the uid the target Secret was written for). Only
/// a Secret whose `keysmith.dev/key-owner` names `ckp` counts.
pub async fn find(
    client: &Client,
    key_namespace: &str,
    ckp: &CertificateKeyPair,
    recorded_uid: Option<&str>,
) -> Result<Option<KeySecret>, Error> {
    let api = Api::<Secret>::namespaced(client.clone(), key_namespace);
    let uid = ckp.uid().unwrap_or_default();
    let mut names = vec![key_secret_name(
        &ckp.namespace().unwrap_or_default(),
        &ckp.name_any(),
    )];
    names.push(legacy_key_secret_name(&uid));
    names.extend(recorded_uid.map(legacy_key_secret_name));
    let owner = key_owner(ckp);
    for name in names {
        let secret = api.get_opt(&name).await.map_err(|source| Error::Read {
            what: format!("key Secret {key_namespace}/{name}"),
            source,
        })?;
        if let Some(secret) =
            secret.filter(|s| annotation(s, KEY_OWNER_ANNOTATION).as_deref() == Some(&owner))
        {
            let owner_uid = annotation(&secret, OWNER_UID_ANNOTATION).unwrap_or_default();
            return Ok(Some(KeySecret { secret, owner_uid }));
        }
    }
    Ok(None)
}

/// The PEM key held by a key Secret.
pub fn key_pem(secret: &Secret) -> Option<&[u8]> {
    secret.data.as_ref()?.get(KEY_DATA).map(|b| b.0.as_slice())
}

/// Stores `key` in the key Secret of `ckp` unless it already holds exactly that, for this
/// resource, under its name. A key found under a legacy name is moved: written under the
/// new name first, then the legacy Secret is deleted (if it is still the one read).
pub async fn write(
    client: &Client,
    key_namespace: &str,
    ckp: &CertificateKeyPair,
    key: &PrivateKey,
    existing: Option<&KeySecret>,
) -> Result<(), Error> {
    let name = key_secret_name(&ckp.namespace().unwrap_or_default(), &ckp.name_any());
    let uid = ckp.uid().unwrap_or_default();
    let pem = key.to_pem(KeyEncoding::PKCS8).map_err(Error::Generate)?;
    let current = existing.is_some_and(|e| {
        e.secret.name_any() == name
            && e.owner_uid == uid
            && key_pem(&e.secret) == Some(pem.expose().as_bytes())
    });
    if current {
        return Ok(());
    }
    let metadata = ObjectMeta {
        name: Some(name.clone()),
        namespace: Some(key_namespace.to_owned()),
        labels: Some(BTreeMap::from([
            (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned()),
            (KEY_LABEL.to_owned(), "true".to_owned()),
        ])),
        annotations: Some(BTreeMap::from([
            (KEY_OWNER_ANNOTATION.to_owned(), key_owner(ckp)),
            (OWNER_UID_ANNOTATION.to_owned(), uid),
        ])),
        ..ObjectMeta::default()
    };
    let data = BTreeMap::from([(
        KEY_DATA.to_owned(),
        ByteString(pem.expose().as_bytes().to_vec()),
    )]);
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "data": data,
    });
    let api = Api::<Secret>::namespaced(client.clone(), key_namespace);
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(body),
    )
    .await
    .map_err(|source| Error::WriteSecret {
        secret: format!("{key_namespace}/{name}"),
        source,
    })?;
    if let Some(legacy) = existing.filter(|e| e.secret.name_any() != name) {
        let legacy_name = legacy.secret.name_any();
        delete_exactly(&api, &legacy.secret)
            .await
            .map_err(|source| Error::WriteSecret {
                secret: format!("{key_namespace}/{legacy_name}"),
                source,
            })?;
        tracing::info!(secret = %legacy_name, moved_to = %name, namespace = key_namespace, "moved a key Secret to its name by namespace and name");
    }
    Ok(())
}

/// Deletes the key Secret of a deleted `ckp` when its `deletionPolicy` is `Delete` and the
/// Secret is this resource's (uid). With `Retain` the key stays, like the target Secret.
pub async fn clean_up(
    client: &Client,
    key_namespace: &str,
    ckp: &CertificateKeyPair,
) -> Result<(), Error> {
    if ckp.spec.target.deletion_policy != DeletionPolicy::Delete {
        return Ok(());
    }
    let uid = ckp.uid().unwrap_or_default();
    let api = Api::<Secret>::namespaced(client.clone(), key_namespace);
    let names = [
        key_secret_name(&ckp.namespace().unwrap_or_default(), &ckp.name_any()),
        legacy_key_secret_name(&uid),
    ];
    for name in names {
        let secret = api.get_opt(&name).await.map_err(|source| Error::Read {
            what: format!("key Secret {key_namespace}/{name}"),
            source,
        })?;
        // Only this resource's: a key Secret of an earlier resource of the name stays.
        let Some(secret) =
            secret.filter(|s| annotation(s, OWNER_UID_ANNOTATION).as_deref() == Some(&uid))
        else {
            continue;
        };
        delete_exactly(&api, &secret)
            .await
            .map_err(|source| Error::WriteSecret {
                secret: format!("{key_namespace}/{name}"),
                source,
            })?;
        tracing::info!(secret = %name, namespace = key_namespace, "deleted the key Secret of a deleted resource (deletionPolicy: Delete)");
    }
    Ok(())
}

/// Deletes the key Secrets in `key_namespace` that are no longer needed: their resource
/// exports its key again and its target Secret holds it, or (a legacy
/// `keysmith-key-<uid>`) the same key for the same resource is under the new name already
/// (a move whose delete failed). A key Secret whose resource is gone is left alone: the
/// finalizer deleted it already (`Delete`), or it is kept (`Retain`), or its resource is
/// about to be restored. Key Secrets of resources outside the `watched` namespaces are not
/// ours to judge. Returns how many were deleted.
pub async fn sweep(
    client: &Client,
    key_namespace: &str,
    watched: &WatchedNamespaces,
) -> Result<usize, kube::Error> {
    let secrets = Api::<Secret>::namespaced(client.clone(), key_namespace);
    let keys = secrets
        .list(&ListParams::default().labels(&format!("{KEY_LABEL}=true")))
        .await?;
    let mut deleted = 0;
    let by_name: BTreeMap<String, &Secret> = keys.items.iter().map(|k| (k.name_any(), k)).collect();
    let moved = |key: &Secret| {
        let owner = annotation(key, KEY_OWNER_ANNOTATION)?;
        let mut parts = owner.splitn(3, '/');
        let (Some(KIND), Some(namespace), Some(name)) = (parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let current = by_name.get(&key_secret_name(namespace, name))?;
        // A byte-identical copy of the key under the new name (a move, maybe after a
        // restore under another uid): the legacy Secret is only a duplicate.
        let same = watched.contains(namespace)
            && key.name_any().starts_with(&format!("{PREFIX}-"))
            && key_pem(current).is_some()
            && key_pem(current) == key_pem(key);
        same.then_some(())
    };
    let mut obsolete = Vec::new();
    for key in &keys.items {
        if moved(key).is_some() || exported_again(client, key, watched).await? {
            obsolete.push(key.clone());
        }
    }
    for key in obsolete {
        delete_exactly(&secrets, &key).await?;
        deleted += 1;
        tracing::info!(secret = %key.name_any(), namespace = key_namespace, "deleted a key Secret no longer needed (its key is in the target Secret, or under the new name)");
    }
    Ok(deleted)
}

/// Whether `key` belongs to a resource (same uid) that now exports its key and whose target
/// Secret holds it.
async fn exported_again(
    client: &Client,
    key: &Secret,
    watched: &WatchedNamespaces,
) -> Result<bool, kube::Error> {
    let (Some(owner), Some(uid)) = (
        annotation(key, KEY_OWNER_ANNOTATION),
        annotation(key, OWNER_UID_ANNOTATION),
    ) else {
        return Ok(false); // not ours to judge
    };
    let mut parts = owner.splitn(3, '/');
    let (Some(KIND), Some(namespace), Some(name)) = (parts.next(), parts.next(), parts.next())
    else {
        return Ok(false);
    };
    if !watched.contains(namespace) {
        return Ok(false);
    }
    let ckp = Api::<CertificateKeyPair>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await?;
    let Some(ckp) = ckp.filter(|c| c.uid().as_deref() == Some(uid.as_str())) else {
        return Ok(false);
    };
    if ckp.spec.private_key_export == PrivateKeyExport::Denied {
        return Ok(false);
    }
    let target = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(&super::target_secret_name(&ckp))
        .await?;
    Ok(target
        .filter(|t| annotation(t, OWNER_UID_ANNOTATION).as_deref() == Some(uid.as_str()))
        .and_then(|t| t.data)
        .and_then(|d| d.get(KEY_DATA).map(|k| k.0.clone()))
        .is_some_and(|k| Some(k.as_slice()) == key_pem(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(uid: &str) -> Option<KeySecret> {
        Some(KeySecret {
            secret: Secret {
                metadata: ObjectMeta {
                    name: Some("keysmith-key.team.web".to_owned()),
                    ..ObjectMeta::default()
                },
                ..Secret::default()
            },
            owner_uid: uid.to_owned(),
        })
    }

    #[test]
    fn key_secrets_are_named_by_namespace_and_name_and_stay_valid_names() {
        assert_eq!(key_secret_name("team", "web"), "keysmith-key.team.web");
        // A namespace holds no dot: team.a-b/c and team/a-b.c cannot meet.
        assert_ne!(key_secret_name("a-b", "c"), key_secret_name("a", "b-c"));
        let long = "n".repeat(253);
        let name = key_secret_name(&"s".repeat(63), &long);
        assert!(name.len() <= MAX_NAME, "{}", name.len());
        assert_ne!(name, key_secret_name(&"s".repeat(63), &"m".repeat(253)));
        assert_eq!(legacy_key_secret_name("u1"), "keysmith-key-u1");
    }

    #[test]
    fn a_key_secret_of_an_earlier_resource_is_used_only_with_its_own_target_secret() {
        assert!(matches!(
            key_use(found("u2"), "u2", None),
            KeyUse::Usable(_)
        ));
        assert!(matches!(
            key_use(found("u1"), "u2", Some("u1")),
            KeyUse::Usable(_)
        ));
        assert!(matches!(
            key_use(found("u1"), "u2", None),
            KeyUse::Conflict(_)
        ));
        assert!(matches!(
            key_use(found("u1"), "u2", Some("u0")),
            KeyUse::Conflict(m) if m.contains("uid u1")
        ));
        assert!(matches!(key_use(None, "u2", Some("u1")), KeyUse::None));
    }
}
