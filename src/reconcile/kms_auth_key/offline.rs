//! A KmsAuthKey's Secret without a cluster (`keysmith generate`): what the controller
//! writes before it registers the key on the servers. The KeyManager's admission is checked
//! when the KeyManager is in the input; a brought passphrase must be in a Secret of the
//! input. Nothing is registered anywhere.

use crate::api::common::reason;
use crate::api::kms_auth_key::KmsAuthKey;
use crate::reconcile::keyring_secret::decide::Decision;
use crate::reconcile::offline::{self, Lookup, Offline, OfflineError};
use crate::reconcile::resource::{namespace, rotate_request};

use super::decide::{AuthKey, Wanted, admit};
use super::{Settled, check_brought, decide_key, new_key, new_salt, position, target_content};

/// Generates the authentication key of `key` as its controller would write it to the
/// target Secret, on a cluster where that Secret is what the input holds.
pub fn generate(
    key: &KmsAuthKey,
    lookup: &mut impl Lookup,
) -> Result<Offline<AuthKey>, OfflineError> {
    let ns = namespace(key);
    let manager_name = &key.spec.key_manager_ref.name;
    if let Some(manager) = lookup.key_manager(&ns, manager_name) {
        let place = position(&lookup.kms_auth_keys(&ns), key);
        admit(Some(&manager), &format!("{ns}/{manager_name}"), place)
            .map_err(|refusal| OfflineError::not_ready(refusal.reason, refusal.message))?;
    }
    let brought = match &key.spec.passphrase_secret_ref {
        Some(selector) => {
            let passphrase = offline::read_selector(
                lookup,
                &ns,
                selector,
                "passphrase",
                "spec.passphraseSecretRef",
            )?;
            check_brought(selector, &passphrase)
                .map_err(|message| OfflineError::not_ready(reason::INVALID_SPEC, message))?;
            Some(passphrase)
        }
        None => None,
    };
    let wanted = Wanted::of(&key.spec, brought);
    let (ownership, qualified) = offline::target(key, lookup)?;
    let now = lookup.now();
    let (auth, revision) = match decide_key(key, &wanted, &ownership, &qualified, now) {
        Decision::Conflict(message) => {
            return Err(OfflineError::not_ready(reason::SECRET_CONFLICT, message));
        }
        Decision::Keep(_) => {
            return Err(OfflineError::Input(format!(
                "Secret {qualified} already holds this resource's key"
            )));
        }
        Decision::Adopt(auth) => (auth, 0),
        Decision::Generate { .. } => (new_key(&wanted)?, ownership.revision() + 1),
    };
    let settled = Settled {
        key: auth,
        salt: new_salt()?,
        revision,
        rotation_token: rotate_request(key).map(str::to_owned),
        generated_at: now,
        previous: None,
        retired: None,
    };
    let content = target_content(&settled);
    Ok(Offline {
        secret: offline::written(key, content, ownership.secret()),
        material: settled.key,
    })
}
