//! What the shared machinery needs to know about a keysmith kind, and the helpers every
//! controller uses: names, the Secret owner, Events.

use std::fmt::Debug;
use std::time::{Duration, SystemTime};

use kube::core::NamespaceResourceScope;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::common::{CommonStatus, ConditionStatus, Rotation, Target, condition};
use crate::metrics::ObjectLabels;

use super::context::Context;
use super::events::{EventNote, EventType};
use super::secret::SecretOwner;

pub use super::names::ROTATE_ANNOTATION;

/// A keysmith kind that writes a target Secret.
pub trait KeysmithResource:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    /// The kind name, e.g. `CertificateKeyPair`.
    const KIND: &'static str;
    /// The finalizer keysmith adds once the material is written ([`super::finalizer`]).
    const FINALIZER: &'static str = super::finalizer::MATERIAL_FINALIZER;
    /// The status type.
    type Status: Serialize + PartialEq + Default + Clone + Send + Sync;

    /// The current status.
    fn status(&self) -> Option<&Self::Status>;
    /// The fields every kind reports.
    fn common(&self) -> Option<&CommonStatus>;
    /// `spec.target`.
    fn target(&self) -> &Target;
}

/// The namespace of `object`.
pub fn namespace<K: KeysmithResource>(object: &K) -> String {
    object.namespace().unwrap_or_default()
}

/// The target Secret's name: `spec.target.name`, default the resource's name.
pub fn target_secret_name<K: KeysmithResource>(object: &K) -> String {
    object
        .target()
        .name
        .clone()
        .unwrap_or_else(|| object.name_any())
}

/// The `keysmith.dev/rotate` annotation of `object`.
pub fn rotate_request<K: KeysmithResource>(object: &K) -> Option<&str> {
    object
        .meta()
        .annotations
        .as_ref()?
        .get(ROTATE_ANNOTATION)
        .map(String::as_str)
}

/// Who owns the Secrets written for `object`.
pub fn secret_owner<K: KeysmithResource>(object: &K) -> SecretOwner {
    SecretOwner {
        kind: K::KIND.to_owned(),
        api_version: K::api_version(&()).into_owned(),
        name: object.name_any(),
        uid: object.uid().unwrap_or_default(),
    }
}

/// The metric labels of `object`.
pub fn object_labels<K: KeysmithResource>(object: &K) -> ObjectLabels {
    ObjectLabels {
        kind: K::KIND.into(),
        namespace: namespace(object),
        name: object.name_any(),
    }
}

/// The per-object backoff key of `object`.
pub fn backoff_key<K: KeysmithResource>(object: &K) -> String {
    format!("{}/{}/{}", K::KIND, namespace(object), object.name_any())
}

/// The reason of the Ready condition `object` shows now.
pub fn ready_reason<K: KeysmithResource>(object: &K) -> Option<&str> {
    object
        .common()?
        .conditions
        .iter()
        .find(|c| c.type_ == condition::READY)
        .map(|c| c.reason.as_str())
}

/// Ready for its current spec: Ready=True in a status computed for the current generation
/// (a resource whose spec just changed is not Ready until it has been reconciled).
pub fn is_ready_for_current_spec<K: KeysmithResource>(object: &K) -> bool {
    object.common().is_some_and(|c| {
        c.observed_generation == object.meta().generation
            && c.conditions
                .iter()
                .any(|c| c.type_ == condition::READY && c.status == ConditionStatus::True)
    })
}

/// When material valid from `from` until `until` is renewed: `renewBefore` before the end,
/// or when `renewBeforePercentage` of the validity remains; by default when a third remains.
pub fn renew_at(
    rotation: Option<&Rotation>,
    from: SystemTime,
    until: SystemTime,
) -> Option<SystemTime> {
    let validity = until.duration_since(from).ok()?;
    let before = match (
        rotation.and_then(|r| r.renew_before.as_ref()),
        rotation.and_then(|r| r.renew_before_percentage),
    ) {
        (Some(before), _) => Duration::from(*before),
        (None, Some(percent)) => validity.mul_f64(f64::from(percent) / 100.0),
        (None, None) => validity / 3,
    };
    until.checked_sub(before)
}

/// Publishes an Event on `object` in the background: Events are best-effort, so a reconcile
/// never waits for one (it saves a round trip per reconcile), and a failure to publish is
/// logged, never fatal.
pub fn publish<K: KeysmithResource>(
    ctx: &Context,
    object: &K,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = EventNote {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    let events = ctx.events.clone();
    let regarding = object.object_ref(&());
    tokio::spawn(async move {
        if let Err(e) = events.publish(&event, &regarding).await {
            tracing::debug!(error = %e, "publishing an event failed");
        }
    });
}
