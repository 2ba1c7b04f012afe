//! Finding the pkey_cert a cert_single or cert_chain names by `id`: the pkey_cert
//! KeyringSecret of the same namespace whose keyring id is `id`, else the one named `id`.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, ListParams};

use crate::api::common::reason;
use crate::api::keyring_secret::{KeyringSecret, KeyringSecretType};
use crate::material::x509::TlsMaterial;
use crate::reconcile::certificate_key_pair::tls_material_from_secret;
use crate::reconcile::context::Context;
use crate::reconcile::error::Error;
use crate::reconcile::resource::{is_ready_for_current_spec, namespace, target_secret_name};
use crate::reconcile::secret::Ownership;

use super::decide::{keyring_id, type_name};

/// A Ready pkey_cert and its key and certificate chain.
pub struct PkeyCert {
    /// The pkey_cert KeyringSecret.
    pub resource: KeyringSecret,
    /// Its key and chain, from its Secret.
    pub material: TlsMaterial,
}

/// What looking up a pkey_cert found.
pub enum Found {
    /// Ready, with its material.
    Ready(Box<PkeyCert>),
    /// Not usable now: the Ready reason and message to report.
    Unavailable {
        /// ReferenceNotFound or ReferenceNotReady.
        reason: &'static str,
        /// What is wrong, for a person.
        message: String,
    },
}

/// The keyring id of `krs`, when it has a valid one.
pub fn effective_id(krs: &KeyringSecret) -> Option<String> {
    keyring_id(&krs.spec, &krs.name_any()).ok()
}

/// The `id` a cert_single or cert_chain refers to.
fn referenced_id(krs: &KeyringSecret) -> Option<&str> {
    let params = &krs.spec.params;
    params
        .cert_single
        .as_ref()
        .map(|p| p.id.as_str())
        .or_else(|| params.cert_chain.as_ref().map(|p| p.id.as_str()))
}

/// Whether `dependent` (a cert_single or cert_chain) may refer to `pkey` (same namespace,
/// `id` equal to its keyring id or name): used to reconcile dependents when a pkey_cert
/// changes.
pub fn refers_to(dependent: &KeyringSecret, pkey: &KeyringSecret) -> bool {
    let Some(id) = referenced_id(dependent) else {
        return false;
    };
    dependent.namespace() == pkey.namespace()
        && (effective_id(pkey).as_deref() == Some(id) || pkey.name_any() == id)
}

/// The pkey_cert `krs` names by `id`: by keyring id first, else by name; of several, the
/// oldest.
pub(super) fn choose<'a>(candidates: &'a [KeyringSecret], id: &str) -> Option<&'a KeyringSecret> {
    let oldest = |matches: Vec<&'a KeyringSecret>| {
        matches
            .into_iter()
            .min_by_key(|k| (k.creation_timestamp().map(|t| t.0), k.name_any()))
    };
    let by_id: Vec<_> = candidates
        .iter()
        .filter(|k| effective_id(k).as_deref() == Some(id))
        .collect();
    if !by_id.is_empty() {
        return oldest(by_id);
    }
    oldest(candidates.iter().filter(|k| k.name_any() == id).collect())
}

/// The KeyringSecrets of `ns`: from the controller's cache, else from the API server.
async fn candidates(ctx: &Context, ns: &str) -> Result<Vec<KeyringSecret>, Error> {
    if let Some(cache) = ctx.keyring_cache.get() {
        return Ok(cache
            .state()
            .iter()
            .filter(|k| k.namespace().as_deref() == Some(ns))
            .map(|k| k.as_ref().clone())
            .collect());
    }
    Api::<KeyringSecret>::namespaced(ctx.client.clone(), ns)
        .list(&ListParams::default())
        .await
        .map(|list| list.items)
        .map_err(|source| Error::Read {
            what: format!("the KeyringSecrets of namespace {ns}"),
            source,
        })
}

/// Whether `chosen`, found for `id`, is a pkey_cert; `Err` is the ReferenceNotFound
/// message.
pub(super) fn check_type(chosen: &KeyringSecret, id: &str) -> Result<(), String> {
    if chosen.spec.type_ == KeyringSecretType::pkey_cert {
        return Ok(());
    }
    Err(format!(
        "KeyringSecret {}/{} (keyring id {id:?}) is of type {}, not pkey_cert",
        namespace(chosen),
        chosen.name_any(),
        type_name(chosen.spec.type_)
    ))
}

/// Looks up the pkey_cert `id` for `krs` and reads its key and chain.
pub async fn pkey_cert(ctx: &Context, krs: &KeyringSecret, id: &str) -> Result<Found, Error> {
    let ns = namespace(krs);
    let all = candidates(ctx, &ns).await?;
    let not_found = |message| Found::Unavailable {
        reason: reason::REFERENCE_NOT_FOUND,
        message,
    };
    let Some(chosen) = choose(&all, id) else {
        return Ok(not_found(format!(
            "no KeyringSecret with keyring id or name {id:?} in namespace {ns}"
        )));
    };
    let reference = format!("KeyringSecret {ns}/{}", chosen.name_any());
    if let Err(message) = check_type(chosen, id) {
        return Ok(not_found(message));
    }
    let not_ready = |message| Found::Unavailable {
        reason: reason::REFERENCE_NOT_READY,
        message,
    };
    // The cache may lag the watch event that brought us here: ask the API server before
    // reporting the pkey_cert as not Ready.
    let fresh;
    let chosen = if is_ready_for_current_spec(chosen) {
        chosen
    } else {
        fresh = Api::<KeyringSecret>::namespaced(ctx.client.clone(), &ns)
            .get_opt(&chosen.name_any())
            .await
            .map_err(|source| Error::Read {
                what: reference.clone(),
                source,
            })?;
        match &fresh {
            Some(current) if is_ready_for_current_spec(current) => current,
            _ => return Ok(not_ready(format!("pkey_cert {reference} is not Ready"))),
        }
    };
    let secret_name = target_secret_name(chosen);
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&secret_name)
        .await
        .map_err(|source| Error::Read {
            what: format!("Secret {ns}/{secret_name} of {reference}"),
            source,
        })?;
    let Some(secret) =
        secret.filter(|s| Ownership::is_owned_by(s, &chosen.uid().unwrap_or_default()))
    else {
        return Ok(not_ready(format!(
            "pkey_cert {reference} has no Secret of its own yet"
        )));
    };
    match tls_material_from_secret(&secret, None) {
        Ok(material) => Ok(Found::Ready(Box::new(PkeyCert {
            resource: chosen.clone(),
            material,
        }))),
        Err(why) => Ok(not_ready(format!(
            "the Secret of pkey_cert {reference} does not hold a usable key and certificate: {why}"
        ))),
    }
}
