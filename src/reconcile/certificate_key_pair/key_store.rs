//! Non-exportable keys (`privateKeyExport: Denied`): the key lives in a Secret
//! `keysmith-key-<uid>` in the operator's key namespace, never in the target Secret.
//!
//! A key Secret cannot carry an ownerReference to a resource in another namespace, so the
//! ones whose resource is gone (or now exports its key) are removed by [`sweep`].

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};

use crate::api::certificate_key_pair::{CertificateKeyPair, KeyEncoding, PrivateKeyExport};
use crate::material::pkey::PrivateKey;

use super::{Error, KIND};
use crate::reconcile::namespaces::WatchedNamespaces;
use crate::reconcile::secret::{
    FIELD_MANAGER, MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_UID_ANNOTATION,
};

/// Label marking key Secrets (value `true`).
pub const KEY_LABEL: &str = "keysmith.dev/private-key";
/// `<Kind>/<namespace>/<name>` of the resource a key Secret belongs to.
pub const KEY_OWNER_ANNOTATION: &str = "keysmith.dev/key-owner";
const KEY_DATA: &str = "tls.key";

/// Name of the key Secret of `ckp`.
pub fn key_secret_name(ckp: &CertificateKeyPair) -> String {
    format!("keysmith-key-{}", ckp.uid().unwrap_or_default())
}

/// Reads the key Secret of `ckp`, if there is one.
pub async fn read(
    client: &Client,
    key_namespace: &str,
    ckp: &CertificateKeyPair,
) -> Result<Option<Secret>, Error> {
    let name = key_secret_name(ckp);
    Api::<Secret>::namespaced(client.clone(), key_namespace)
        .get_opt(&name)
        .await
        .map_err(|source| Error::Read {
            what: format!("key Secret {key_namespace}/{name}"),
            source,
        })
}

/// The PEM key held by a key Secret.
pub fn key_pem(secret: &Secret) -> Option<&[u8]> {
    secret.data.as_ref()?.get(KEY_DATA).map(|b| b.0.as_slice())
}

/// Stores `key` in the key Secret of `ckp` unless it already holds exactly that key.
pub async fn write(
    client: &Client,
    key_namespace: &str,
    ckp: &CertificateKeyPair,
    key: &PrivateKey,
    existing: Option<&Secret>,
) -> Result<(), Error> {
    let name = key_secret_name(ckp);
    let pem = key.to_pem(KeyEncoding::PKCS8).map_err(Error::Generate)?;
    if existing.and_then(key_pem) == Some(pem.expose().as_bytes()) {
        return Ok(());
    }
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(key_namespace.to_owned()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned()),
                (KEY_LABEL.to_owned(), "true".to_owned()),
            ])),
            annotations: Some(BTreeMap::from([
                (
                    KEY_OWNER_ANNOTATION.to_owned(),
                    format!(
                        "{KIND}/{}/{}",
                        ckp.namespace().unwrap_or_default(),
                        ckp.name_any()
                    ),
                ),
                (
                    OWNER_UID_ANNOTATION.to_owned(),
                    ckp.uid().unwrap_or_default(),
                ),
            ])),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(
            KEY_DATA.to_owned(),
            ByteString(pem.expose().as_bytes().to_vec()),
        )])),
        ..Secret::default()
    };
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": secret.metadata,
        "type": secret.type_,
        "data": secret.data,
    });
    Api::<Secret>::namespaced(client.clone(), key_namespace)
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(body),
        )
        .await
        .map(|_| ())
        .map_err(|source| Error::WriteSecret {
            secret: format!("{key_namespace}/{name}"),
            source,
        })
}

/// Deletes the key Secrets in `key_namespace` whose resource no longer exists, has another
/// uid, or now exports its key. Key Secrets of resources outside the `watched` namespaces
/// are left alone (not ours to judge; the operator may not read there). Returns how many
/// were deleted.
pub async fn sweep(
    client: &Client,
    key_namespace: &str,
    watched: &WatchedNamespaces,
) -> Result<usize, kube::Error> {
    let secrets = Api::<Secret>::namespaced(client.clone(), key_namespace);
    let keys = secrets
        .list_metadata(&ListParams::default().labels(&format!("{KEY_LABEL}=true")))
        .await?;
    let mut deleted = 0;
    for key in keys {
        if still_needed(client, &key.metadata, watched).await? {
            continue;
        }
        let name = key.name_any();
        match secrets.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                deleted += 1;
                tracing::info!(secret = %name, namespace = key_namespace, "deleted the key Secret of a removed resource");
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

async fn still_needed(
    client: &Client,
    meta: &ObjectMeta,
    watched: &WatchedNamespaces,
) -> Result<bool, kube::Error> {
    let annotations = meta.annotations.clone().unwrap_or_default();
    let (Some(owner), Some(uid)) = (
        annotations.get(KEY_OWNER_ANNOTATION),
        annotations.get(OWNER_UID_ANNOTATION),
    ) else {
        return Ok(true); // not ours to judge
    };
    let mut parts = owner.splitn(3, '/');
    let (Some(KIND), Some(namespace), Some(name)) = (parts.next(), parts.next(), parts.next())
    else {
        return Ok(true);
    };
    if !watched.contains(namespace) {
        return Ok(true);
    }
    let ckp = Api::<CertificateKeyPair>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await?;
    let Some(ckp) = ckp.filter(|c| c.uid().as_ref() == Some(uid)) else {
        return Ok(false);
    };
    if ckp.spec.private_key_export == PrivateKeyExport::Denied {
        return Ok(true);
    }
    // Export allowed again: needed until the target Secret holds the key.
    let target = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(&super::target_secret_name(&ckp))
        .await?;
    Ok(!target
        .and_then(|t| t.data)
        .is_some_and(|d| d.contains_key(KEY_DATA)))
}
