//! The decide steps of a KmsAuthKey. Pure: whether the KeyManager admits the key, whether
//! the Secret's key satisfies the spec, which servers need a registration, and the Ready
//! condition from the per-server results.

use crate::api::common::reason;
use crate::api::key_manager::KeyManager;
use crate::api::kms_auth_key::{KmsAuthKeyServerStatus, KmsAuthKeySpec, PushState};
use crate::material::SecretString;
use crate::material::parse::Mismatch;

/// Why a KmsAuthKey cannot be pushed now: the Ready reason and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// A reason constant.
    pub reason: &'static str,
    /// What is wrong, for a person.
    pub message: String,
}

/// Whether `manager` admits a key that is number `position` (0-based, by creation time)
/// among the KmsAuthKeys referring to it.
pub fn admit(
    manager: Option<&KeyManager>,
    reference: &str,
    position: usize,
) -> Result<(), Refusal> {
    let refuse = |reason, message| Err(Refusal { reason, message });
    let Some(manager) = manager else {
        return refuse(
            reason::REFERENCE_NOT_FOUND,
            format!("KeyManager {reference} not found"),
        );
    };
    if !manager.spec.enabled {
        return refuse(
            reason::KEY_MANAGER_DISABLED,
            format!(
                "external key management is not enabled (KeyManager {reference} has enabled: false)"
            ),
        );
    }
    if manager.spec.servers.is_empty() {
        return refuse(
            reason::NO_KEY_SERVERS,
            format!("KeyManager {reference} has no key servers configured"),
        );
    }
    let limit = usize::try_from(manager.spec.max_auth_keys).unwrap_or(usize::MAX);
    if position >= limit {
        return refuse(
            reason::KEY_MANAGER_LIMIT_REACHED,
            format!(
                "KeyManager {reference} allows {limit} authentication keys (maxAuthKeys) and this is key number {} by creation time",
                position + 1
            ),
        );
    }
    Ok(())
}

/// An authentication key: what the Secret holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthKey {
    /// Key id (the KMIP object's name).
    pub key_id: String,
    /// Key tag.
    pub key_tag: String,
    /// Passphrase.
    pub passphrase: SecretString,
}

/// What the spec asks of the key: a fixed key id, the tag, and the passphrase (brought) or
/// its length (generated).
#[derive(Clone, Debug)]
pub struct Wanted {
    /// `spec.keyId`, when set.
    pub key_id: Option<String>,
    /// `spec.keyTag` (empty when unset).
    pub key_tag: String,
    /// The brought passphrase, or the length of a generated one.
    pub passphrase: WantedPassphrase,
}

/// The passphrase the spec asks for.
#[derive(Clone, Debug)]
pub enum WantedPassphrase {
    /// Generated, this many characters.
    Generated(u32),
    /// Brought in a Secret: exactly this.
    Brought(SecretString),
}

impl Wanted {
    /// What `spec` asks for; `brought` is the passphrase read from passphraseSecretRef.
    pub fn of(spec: &KmsAuthKeySpec, brought: Option<SecretString>) -> Self {
        let passphrase = match brought {
            Some(p) => WantedPassphrase::Brought(p),
            None => WantedPassphrase::Generated(spec.passphrase.as_ref().map_or(32, |p| p.length)),
        };
        Self {
            key_id: spec.key_id.clone(),
            key_tag: spec.key_tag.clone().unwrap_or_default(),
            passphrase,
        }
    }

    /// Whether `key` satisfies the spec. The tag is not part of the key: a new tag is
    /// written without generating a new key.
    pub fn check(&self, key: &AuthKey) -> Result<(), Mismatch> {
        if let Some(id) = &self.key_id
            && *id != key.key_id
        {
            return Err(Mismatch("the key id differs from spec.keyId".to_owned()));
        }
        match &self.passphrase {
            WantedPassphrase::Brought(p) if p != &key.passphrase => Err(Mismatch(
                "the passphrase differs from the one in passphraseSecretRef".to_owned(),
            )),
            WantedPassphrase::Generated(length)
                if key.passphrase.expose().len() != usize::try_from(*length).unwrap_or(0) =>
            {
                Err(Mismatch(format!(
                    "the passphrase has {} characters, spec asks for {length}",
                    key.passphrase.expose().len()
                )))
            }
            _ => Ok(()),
        }
    }
}

/// What to do on one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerPlan {
    /// Registered earlier for this key id: nothing to do.
    Done {
        /// The object's unique identifier.
        unique_identifier: String,
    },
    /// Locate, then register if absent.
    Push,
}

/// For each server, whether the current key still needs pushing: a server whose previous
/// status shows it registered is done, when the previous status was for this very key
/// (`same_key`: same key id and passphrase fingerprint).
pub fn server_plan(
    same_key: bool,
    previous: &[KmsAuthKeyServerStatus],
    server: &str,
) -> ServerPlan {
    let registered = previous
        .iter()
        .find(|s| s.name == server && s.state == PushState::Registered)
        .and_then(|s| s.unique_identifier.clone());
    match registered {
        Some(unique_identifier) if same_key => ServerPlan::Done { unique_identifier },
        _ => ServerPlan::Push,
    }
}

/// The Ready condition from the servers' states: registered everywhere → `Registered`
/// (True); on some → `PartiallyPushed` (True, retried); on none → `PushFailed` (False).
pub fn readiness(servers: &[KmsAuthKeyServerStatus]) -> (bool, &'static str, String) {
    let registered = servers
        .iter()
        .filter(|s| s.state == PushState::Registered)
        .count();
    let failed: Vec<&str> = servers
        .iter()
        .filter(|s| s.state != PushState::Registered)
        .map(|s| s.name.as_str())
        .collect();
    match (registered, failed.is_empty()) {
        (0, _) => (
            false,
            reason::PUSH_FAILED,
            "failed to push authentication key to any registered key server".to_owned(),
        ),
        (n, true) => (
            true,
            REGISTERED,
            format!("authentication key registered on all {n} key servers"),
        ),
        (n, false) => (
            true,
            reason::PARTIALLY_PUSHED,
            format!(
                "authentication key registered on {n} of {} key servers; not on {}",
                servers.len(),
                failed.join(", ")
            ),
        ),
    }
}

/// The servers the key was registered on by this reconcile (the `Pushed` Event): registered
/// now, and before not registered or registered as another object.
pub fn newly_registered<'a>(
    previous: &[KmsAuthKeyServerStatus],
    now: &'a [KmsAuthKeyServerStatus],
) -> Vec<&'a str> {
    now.iter()
        .filter(|s| s.state == PushState::Registered)
        .filter(|s| {
            !previous.iter().any(|p| {
                p.name == s.name
                    && p.state == PushState::Registered
                    && p.unique_identifier == s.unique_identifier
            })
        })
        .map(|s| s.name.as_str())
        .collect()
}

/// Ready reason: the key is registered on every server.
pub const REGISTERED: &str = "Registered";

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
