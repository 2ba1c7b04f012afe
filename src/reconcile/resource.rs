//! What the shared machinery needs to know about a keysmith kind, and the helpers every
//! controller uses: names, the Secret owner, Events.

use std::fmt::Debug;

use kube::core::NamespaceResourceScope;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::common::{CommonStatus, Target, condition};
use crate::metrics::ObjectLabels;

use super::context::Context;
use super::secret::SecretOwner;

/// Annotation on a resource that requests a rotation when its value changes.
pub const ROTATE_ANNOTATION: &str = "keysmith.dev/rotate";

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

/// Publishes an Event on `object`; a failure to publish is logged, never fatal.
pub async fn publish<K: KeysmithResource>(
    ctx: &Context,
    object: &K,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
        tracing::debug!(error = %e, "publishing an event failed");
    }
}
