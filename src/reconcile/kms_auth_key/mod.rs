//! The KmsAuthKey controller (api.md section 5): the key (id, tag, passphrase) is decided and
//! written to its Secret first, then registered on every server of the KeyManager. The
//! finalizer `keysmith.dev/server-objects`, added once the Secret is written and before the
//! first registration, revokes and destroys the server objects when the resource is deleted
//! (then the Secret goes by `deletionPolicy`, as for every kind: [`super::finalizer`]).

pub mod decide;
pub mod offline;
mod servers;

pub use servers::probe;

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::reconcile::events::EventType;
use kube::ResourceExt;
use kube::api::{Api, ListParams};

use crate::api::common::{CommonStatus, ConditionStatus, SecretKeySelector, Target, reason};
use crate::api::key_manager::KeyManager;
use crate::api::kms_auth_key::{
    KmsAuthKey, KmsAuthKeyServerStatus, KmsAuthKeyStatus, PushState, ServerObjectsPolicy,
};
use crate::material::fingerprint::hmac_sha256_tagged;
use crate::material::{SecretBytes, SecretString, kms, random};
use crate::reconcile::keyring_secret::decide::{Decision, Found, Inputs, decide};

use super::context::Context;
use super::error::Error;
use super::outcome::{MaterialController, Outcome, common_status};
use super::resource::{KeysmithResource, namespace, publish, rotate_request};
use super::secret::{
    GENERATED_AT_ANNOTATION, Ownership, ROTATION_TOKEN_ANNOTATION, TargetContent, annotation,
    data_of, generated_at, read_selector, read_target, write_target,
};
use super::status::time;
use decide::{
    AuthKey, ServerPlan, Wanted, WantedPassphrase, admit, newly_registered, readiness, server_plan,
};

/// The kind name.
pub const KIND: &str = "KmsAuthKey";
/// The finalizer that removes the key from the servers before the resource goes.
pub const FINALIZER: &str = super::names::SERVER_OBJECTS_FINALIZER;
/// Secret key of the passphrase.
pub const PASSPHRASE: &str = "passphrase";
/// Secret key of the key id.
pub const KEY_ID: &str = "key-id";
/// Secret key of the key tag.
pub const KEY_TAG: &str = "key-tag";
pub use super::names::FINGERPRINT_SALT_ANNOTATION;
use super::names::{PREVIOUS_SUFFIX, RETIRED_KEY_ANNOTATION};

impl KeysmithResource for KmsAuthKey {
    const KIND: &'static str = KIND;
    const FINALIZER: &'static str = FINALIZER;
    type Status = KmsAuthKeyStatus;

    fn status(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }

    fn common(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|s| &s.common)
    }

    fn target(&self) -> &Target {
        &self.spec.target
    }
}

/// What a reconcile ends with, for the status.
#[derive(Clone, Debug)]
pub struct Pushed {
    key: AuthKey,
    salt: String,
    servers: Vec<KmsAuthKeyServerStatus>,
}

impl MaterialController for KmsAuthKey {
    type Material = Pushed;

    fn reconcile_material(
        &self,
        ctx: &Context,
    ) -> impl std::future::Future<Output = Result<(Outcome, Option<Pushed>), Error>> + Send {
        reconcile_material(self, ctx)
    }

    fn clean_up(
        &self,
        ctx: &Context,
    ) -> impl std::future::Future<Output = Result<(), Error>> + Send {
        clean_up(self, ctx)
    }

    fn status_of(
        &self,
        outcome: &Outcome,
        material: Option<&Pushed>,
        now: SystemTime,
    ) -> KmsAuthKeyStatus {
        let mut status = KmsAuthKeyStatus {
            common: common_status(self, outcome, now),
            ..KmsAuthKeyStatus::default()
        };
        match material {
            Some(pushed) => {
                status.common.fingerprint = Some(fingerprint(&pushed.key.passphrase, &pushed.salt));
                status.key_id = Some(pushed.key.key_id.clone());
                status.key_tag = Some(pushed.key.key_tag.clone());
                status.servers = pushed.servers.clone();
            }
            // Refused or failed before pushing: what the servers hold is still recorded
            // (deletion destroys it).
            None => {
                if let Some(previous) = &self.status {
                    status.key_id = previous.key_id.clone();
                    status.key_tag = previous.key_tag.clone();
                    status.servers = previous.servers.clone();
                }
            }
        }
        status
    }
}

/// `HMAC-SHA256:<hex>` of the passphrase keyed with the salt kept on the Secret: only
/// readers of the Secret can test guesses of a brought passphrase against it.
pub fn fingerprint(passphrase: &SecretString, salt: &str) -> String {
    hmac_sha256_tagged(salt.as_bytes(), passphrase.expose().as_bytes())
}

async fn reconcile_material(
    key: &KmsAuthKey,
    ctx: &Context,
) -> Result<(Outcome, Option<Pushed>), Error> {
    let ns = namespace(key);
    let manager_name = &key.spec.key_manager_ref.name;
    let manager = Api::<KeyManager>::namespaced(ctx.client.clone(), &ns)
        .get_opt(manager_name)
        .await
        .map_err(|source| Error::Read {
            what: format!("KeyManager {ns}/{manager_name}"),
            source,
        })?;
    let position = position_among_keys(ctx, key).await?;
    if let Err(refusal) = admit(manager.as_ref(), &format!("{ns}/{manager_name}"), position) {
        return Ok((Outcome::not_ready(refusal.reason, refusal.message), None));
    }
    let Some(manager) = manager else {
        // admit() refuses a missing manager.
        return Ok((
            Outcome::not_ready(reason::REFERENCE_NOT_FOUND, String::new()),
            None,
        ));
    };
    let brought = match &key.spec.passphrase_secret_ref {
        Some(selector) => {
            let passphrase = read_selector(&ctx.client, &ns, selector, "passphrase").await?;
            if let Err(message) = check_brought(selector, &passphrase) {
                return Ok((Outcome::not_ready(reason::INVALID_SPEC, message), None));
            }
            Some(passphrase)
        }
        None => None,
    };
    let wanted = Wanted::of(&key.spec, brought);
    let (settled, event) = match settle_key(key, ctx, &wanted).await? {
        Settling::Conflict(message) => {
            return Ok((Outcome::not_ready(reason::SECRET_CONFLICT, message), None));
        }
        Settling::Settled(settled, event) => (settled, event),
    };
    if let Some((reason, note)) = event {
        publish(ctx, key, EventType::Normal, reason, note);
    }
    let servers = push_everywhere(key, ctx, &manager, &settled).await;
    let previous = key.status.as_ref().map(|s| s.servers.as_slice());
    let pushed = newly_registered(previous.unwrap_or_default(), &servers);
    if !pushed.is_empty() {
        let note = format!(
            "authentication key {} registered on {}",
            settled.key.key_id,
            pushed.join(", ")
        );
        publish(ctx, key, EventType::Normal, "Pushed", note);
    }
    let (ready, ready_reason, message) = readiness(&servers);
    let mut outcome = if ready {
        Outcome::ready(ready_reason, message)
    } else {
        Outcome::not_ready(ready_reason, message)
    };
    // Retry the servers that failed, with backoff, while Ready stays True on the others.
    outcome.failed = servers.iter().any(|s| s.state != PushState::Registered);
    outcome.revision = Some(settled.revision);
    outcome.rotation_token = settled.rotation_token.clone();
    outcome.generated_at = Some(settled.generated_at);
    outcome.next_rotation = rotation_every(key).map(|every| settled.generated_at + every);
    if outcome.ready.status == ConditionStatus::True && !outcome.failed {
        tracing::debug!(name = %key.name_any(), namespace = %ns, "authentication key registered everywhere");
    }
    Ok((
        outcome,
        Some(Pushed {
            key: settled.key,
            salt: settled.salt,
            servers,
        }),
    ))
}

/// Whether a passphrase brought in `selector` is one (InvalidSpec message if not).
fn check_brought(selector: &SecretKeySelector, passphrase: &SecretString) -> Result<(), String> {
    kms::check_passphrase(passphrase.expose().as_bytes()).map_err(|why| {
        format!(
            "passphraseSecretRef {}/{}: {why}",
            selector.name, selector.key
        )
    })
}

/// This key's place (0-based) among the KmsAuthKeys of its namespace that refer to the same
/// KeyManager, by creation time then name: the first `maxAuthKeys` are admitted.
async fn position_among_keys(ctx: &Context, key: &KmsAuthKey) -> Result<usize, Error> {
    let ns = namespace(key);
    let keys = Api::<KmsAuthKey>::namespaced(ctx.client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Read {
            what: format!("the KmsAuthKeys of namespace {ns}"),
            source,
        })?
        .items;
    Ok(position(&keys, key))
}

/// The place of `key` among `keys` (its namespace's): see [`position_among_keys`].
fn position(keys: &[KmsAuthKey], key: &KmsAuthKey) -> usize {
    let mut same: Vec<(Option<jiff::Timestamp>, String)> = keys
        .iter()
        .filter(|k| k.spec.key_manager_ref.name == key.spec.key_manager_ref.name)
        .filter(|k| k.metadata.deletion_timestamp.is_none())
        .map(|k| (k.creation_timestamp().map(|t| t.0), k.name_any()))
        .collect();
    same.sort();
    let own = (key.creation_timestamp().map(|t| t.0), key.name_any());
    same.iter().position(|k| *k == own).unwrap_or(same.len())
}

/// The key as written to the Secret.
struct Settled {
    key: AuthKey,
    salt: String,
    revision: i64,
    rotation_token: Option<String>,
    generated_at: SystemTime,
    /// The previous key, kept in the Secret (keepPrevious).
    previous: Option<AuthKey>,
    /// A replaced key id whose server objects are to be destroyed.
    retired: Option<String>,
}

enum Settling {
    Settled(Box<Settled>, Option<(&'static str, String)>),
    Conflict(String),
}

/// Decides the key from the Secret and the spec, generates when needed, writes the Secret.
async fn settle_key(key: &KmsAuthKey, ctx: &Context, wanted: &Wanted) -> Result<Settling, Error> {
    let (ownership, qualified) = read_target(ctx, key, false).await?;
    let now = ctx.clock.now();
    let decision = decide_key(key, wanted, &ownership, &qualified, now);
    let salt_of = |ownership: &Ownership| {
        ownership
            .secret()
            .and_then(|s| annotation(s, FINGERPRINT_SALT_ANNOTATION))
    };
    let (settled, event) = match decision {
        Decision::Conflict(message) => return Ok(Settling::Conflict(message)),
        Decision::Keep(mut k) => {
            // The tag is kept in the Secret only; changing it needs no new key.
            k.key_tag.clone_from(&wanted.key_tag);
            let data = ownership.secret().map(data_of).unwrap_or_default();
            (
                Settled {
                    key: k,
                    salt: match salt_of(&ownership) {
                        Some(salt) => salt,
                        None => new_salt()?,
                    },
                    revision: ownership.revision(),
                    rotation_token: ownership.rotation_token(),
                    generated_at: generated_at(ownership.secret()).unwrap_or(now),
                    previous: read_previous(&data),
                    retired: ownership
                        .secret()
                        .and_then(|s| annotation(s, RETIRED_KEY_ANNOTATION)),
                },
                None,
            )
        }
        Decision::Adopt(k) => (
            Settled {
                key: k,
                salt: new_salt()?,
                revision: 0,
                rotation_token: rotate_request(key).map(str::to_owned),
                generated_at: now,
                previous: None,
                retired: None,
            },
            Some((
                "Adopted",
                format!("adopted the authentication key in Secret {qualified}"),
            )),
        ),
        Decision::Generate { why, .. } => {
            let new_key = new_key(wanted)?;
            // The key being replaced (if our Secret held one): destroyed on the servers once
            // the new one is registered, or with keepPrevious kept until the next rotation.
            let data = ownership.writable().map(data_of).unwrap_or_default();
            let old = read_key(&data).ok();
            let (previous, retired) = if keep_previous(key) {
                (old, read_previous(&data).map(|p| p.key_id))
            } else {
                (None, old.map(|o| o.key_id))
            };
            let note = format!(
                "generated an authentication key into Secret {qualified}: {}",
                why.describe()
            );
            (
                Settled {
                    key: new_key,
                    salt: new_salt()?,
                    revision: ownership.revision() + 1,
                    rotation_token: rotate_request(key).map(str::to_owned),
                    generated_at: now,
                    previous,
                    retired,
                },
                Some((why.event_reason(), note)),
            )
        }
    };
    write_secret(key, ctx, &ownership, &settled).await?;
    Ok(Settling::Settled(Box::new(settled), event))
}

/// Decides about the key from the Secret `ownership` (`qualified`: its name) and the spec.
fn decide_key(
    key: &KmsAuthKey,
    wanted: &Wanted,
    ownership: &Ownership,
    qualified: &str,
    now: SystemTime,
) -> Decision<AuthKey> {
    let found = match ownership {
        Ownership::Absent => Found::Absent,
        Ownership::Owned(secret) | Ownership::Restored { secret, .. } => Found::Owned {
            material: read_key(&data_of(secret)),
            rotation_token: annotation(secret, ROTATION_TOKEN_ANNOTATION),
            generated_at: generated_at(Some(secret)),
            restored: ownership.is_restored(),
        },
        Ownership::Foreign { secret, owner } => Found::Foreign {
            owner: owner.clone(),
            material: read_key(&data_of(secret)).ok(),
        },
    };
    let rotate_at =
        rotation_every(key).and_then(|every| Some(generated_at(ownership.secret())? + every));
    decide(
        Inputs {
            found,
            rotate_request: rotate_request(key),
            rotate_at,
            existing_secret: key.spec.target.existing_secret,
            now,
            secret_name: qualified,
        },
        |k| wanted.check(k),
    )
}

/// A new key as `wanted` asks: the fixed or a generated key id, the tag, the brought or a
/// generated passphrase.
fn new_key(wanted: &Wanted) -> Result<AuthKey, Error> {
    Ok(AuthKey {
        key_id: match &wanted.key_id {
            Some(id) => id.clone(),
            None => kms::key_id().map_err(Error::Generate)?,
        },
        key_tag: wanted.key_tag.clone(),
        passphrase: match &wanted.passphrase {
            WantedPassphrase::Brought(p) => p.clone(),
            WantedPassphrase::Generated(length) => {
                kms::passphrase(*length).map_err(Error::Generate)?
            }
        },
    })
}

/// Reads the key (passphrase, key id, tag) from Secret data; `Err` says what is wrong,
/// never the passphrase.
pub fn read_key(data: &BTreeMap<String, Vec<u8>>) -> Result<AuthKey, String> {
    read_key_with(data, "")
}

/// The previous key kept under `<key>.previous`, if any.
fn read_previous(data: &BTreeMap<String, Vec<u8>>) -> Option<AuthKey> {
    read_key_with(data, PREVIOUS_SUFFIX).ok()
}

fn read_key_with(data: &BTreeMap<String, Vec<u8>>, suffix: &str) -> Result<AuthKey, String> {
    let text = |k: &str| {
        let k = format!("{k}{suffix}");
        let bytes = data.get(&k).ok_or_else(|| format!("{k} is missing"))?;
        String::from_utf8(bytes.clone()).map_err(|_| format!("{k} is not UTF-8 text"))
    };
    let passphrase = SecretString::new(text(PASSPHRASE)?);
    kms::check_passphrase(passphrase.expose().as_bytes())?;
    let key_id = text(KEY_ID)?;
    kms::check_key_id(&key_id)?;
    Ok(AuthKey {
        key_id,
        key_tag: text(KEY_TAG)?,
        passphrase,
    })
}

async fn write_secret(
    key: &KmsAuthKey,
    ctx: &Context,
    ownership: &Ownership,
    settled: &Settled,
) -> Result<(), Error> {
    write_target(ctx, key, ownership, target_content(settled)).await
}

/// What a KmsAuthKey writes to its target Secret: passphrase, key id and tag (and the
/// previous key's), the fingerprint and its salt, when the key was generated and the key
/// id whose server objects are still to be destroyed.
fn target_content(settled: &Settled) -> TargetContent {
    let bytes = |s: &str| SecretBytes::new(s.as_bytes().to_vec());
    let entries = |key: &AuthKey, suffix: &str| {
        [
            (PASSPHRASE, bytes(key.passphrase.expose())),
            (KEY_ID, bytes(&key.key_id)),
            (KEY_TAG, bytes(&key.key_tag)),
        ]
        .map(|(k, v)| (format!("{k}{suffix}"), v))
    };
    let mut data: BTreeMap<String, SecretBytes> = entries(&settled.key, "").into_iter().collect();
    if let Some(previous) = &settled.previous {
        data.extend(entries(previous, PREVIOUS_SUFFIX));
    }
    let mut annotations = BTreeMap::from([
        (
            GENERATED_AT_ANNOTATION.to_owned(),
            time(settled.generated_at).0.to_string(),
        ),
        (FINGERPRINT_SALT_ANNOTATION.to_owned(), settled.salt.clone()),
    ]);
    if let Some(retired) = &settled.retired {
        annotations.insert(RETIRED_KEY_ANNOTATION.to_owned(), retired.clone());
    }
    TargetContent {
        type_: "Opaque",
        fingerprint: fingerprint(&settled.key.passphrase, &settled.salt),
        revision: settled.revision,
        rotation_token: settled.rotation_token.clone(),
        annotations,
        data,
    }
}

fn new_salt() -> Result<String, Error> {
    random::fingerprint_salt().map_err(Error::Generate)
}

fn rotation_every(key: &KmsAuthKey) -> Option<std::time::Duration> {
    let every = key.spec.rotation.as_ref()?.every.as_ref()?;
    Some(std::time::Duration::from(*every))
}

fn keep_previous(key: &KmsAuthKey) -> bool {
    key.spec.rotation.as_ref().is_some_and(|r| r.keep_previous)
}

/// Registers the key on every server that does not have it yet (Locate before Register:
/// never a duplicate), then destroys the objects of the `retired` key there.
async fn push_everywhere(
    key: &KmsAuthKey,
    ctx: &Context,
    manager: &KeyManager,
    settled: &Settled,
) -> Vec<KmsAuthKeyServerStatus> {
    let (auth, retired) = (&settled.key, settled.retired.as_deref());
    let previous = key
        .status
        .as_ref()
        .map(|s| s.servers.as_slice())
        .unwrap_or_default();
    let same_key = key.status.as_ref().is_some_and(|s| {
        s.key_id.as_deref() == Some(auth.key_id.as_str())
            && s.common.fingerprint.as_deref()
                == Some(fingerprint(&auth.passphrase, &settled.salt).as_str())
    });
    let ns = namespace(key);
    let attempts = manager.spec.servers.iter().map(|server| {
        let ns = ns.clone();
        async move {
            let plan = server_plan(same_key, previous, &server.name);
            if let ServerPlan::Done { unique_identifier } = plan {
                let kept = previous.iter().find(|s| s.name == server.name).cloned();
                return kept.unwrap_or(KmsAuthKeyServerStatus {
                    name: server.name.clone(),
                    state: PushState::Registered,
                    unique_identifier: Some(unique_identifier),
                    message: String::new(),
                    last_attempt_time: None,
                });
            }
            let attempt = time(ctx.clock.now());
            let failed = |message: String, uid: Option<String>| KmsAuthKeyServerStatus {
                name: server.name.clone(),
                state: PushState::Failed,
                unique_identifier: uid,
                message,
                last_attempt_time: Some(attempt.clone()),
            };
            let uid = match servers::push(ctx, &ns, server, auth, retired).await {
                Ok(uid) => uid,
                Err(message) => return failed(message, None),
            };
            if let Some(retired) = retired.filter(|r| *r != auth.key_id)
                && let Err(e) = servers::retire(ctx, &ns, server, retired).await
            {
                let message =
                    format!("the new key is registered; destroying the replaced key failed: {e}");
                return failed(message, Some(uid));
            }
            KmsAuthKeyServerStatus {
                name: server.name.clone(),
                state: PushState::Registered,
                unique_identifier: Some(uid),
                message: String::new(),
                last_attempt_time: Some(attempt),
            }
        }
    });
    futures::future::join_all(attempts).await
}

/// How long deletion waits for unreachable servers before it releases the resource.
const CLEANUP_GRACE: std::time::Duration = std::time::Duration::from_secs(120);

/// Deletion: revoke and destroy the key's objects on every server (unless Retain) before the
/// finalizer goes; the Secret is then handled by `deletionPolicy`. A server that stays
/// unreachable past [`CLEANUP_GRACE`] is reported in a Warning Event and given up.
async fn clean_up(key: &KmsAuthKey, ctx: &Context) -> Result<(), Error> {
    if key.spec.server_objects == ServerObjectsPolicy::Retain {
        return Ok(());
    }
    let ns = namespace(key);
    let manager_name = &key.spec.key_manager_ref.name;
    let manager = Api::<KeyManager>::namespaced(ctx.client.clone(), &ns)
        .get_opt(manager_name)
        .await
        .map_err(|source| Error::Read {
            what: format!("KeyManager {ns}/{manager_name}"),
            source,
        })?;
    let Some(manager) = manager else {
        let note = format!(
            "KeyManager {ns}/{manager_name} is gone: the key's server objects cannot be destroyed and are left in place"
        );
        publish(ctx, key, EventType::Warning, "CleanupFailed", note);
        return Ok(());
    };
    let status = key.status.as_ref();
    // Every key id whose objects may exist: the status's, and the Secret's current,
    // previous and retired ones (the Secret stays until the finalizer is gone).
    let (ownership, _) = read_target(ctx, key, false).await?;
    let mut key_ids: Vec<String> = status.and_then(|s| s.key_id.clone()).into_iter().collect();
    if let Ownership::Owned(secret) = &ownership {
        let data = data_of(secret);
        key_ids.extend(read_key(&data).ok().map(|k| k.key_id));
        key_ids.extend(read_previous(&data).map(|k| k.key_id));
        key_ids.extend(annotation(secret, RETIRED_KEY_ANNOTATION));
    }
    key_ids.sort();
    key_ids.dedup();
    let mut failures = Vec::new();
    for server in &manager.spec.servers {
        let recorded: Vec<String> = status
            .iter()
            .flat_map(|s| &s.servers)
            .filter(|s| s.name == server.name)
            .filter_map(|s| s.unique_identifier.clone())
            .collect();
        let mut objects = recorded;
        let mut located = Ok(());
        for id in &key_ids {
            match servers::locate(ctx, &ns, server, id).await {
                Ok(found) => objects.extend(found),
                Err(e) => located = Err(e),
            }
        }
        if let Err(e) = located {
            failures.push(format!("{}: {e}", server.name));
            continue;
        }
        objects.sort();
        objects.dedup();
        if let Err(e) = servers::remove(ctx, &ns, server, &objects).await {
            failures.push(format!("{}: {e}", server.name));
        }
    }
    if failures.is_empty() {
        tracing::info!(name = %key.name_any(), namespace = %ns, "authentication key removed from every server");
        return Ok(());
    }
    let deleting_for = key
        .metadata
        .deletion_timestamp
        .as_ref()
        .and_then(|t| ctx.clock.now().duration_since(SystemTime::from(t.0)).ok())
        .unwrap_or_default();
    if deleting_for >= CLEANUP_GRACE {
        let note = format!(
            "gave up destroying the key's server objects after {}s: {}",
            deleting_for.as_secs(),
            failures.join("; ")
        );
        publish(ctx, key, EventType::Warning, "CleanupFailed", note);
        return Ok(());
    }
    Err(Error::Reference(format!(
        "destroying the key's server objects failed: {}",
        failures.join("; ")
    )))
}
