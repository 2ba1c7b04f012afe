//! Events on keysmith resources (`events.k8s.io/v1`), published in the background.
//!
//! A repeat of an Event published lately (same object, type, reason and note) is counted on
//! the first one with a patch of its `series`, as client-go does, instead of creating
//! another Event. What is remembered for that is small and bounded ([`recent`]): a few
//! hundred bytes per Event, not the Event itself.

pub mod recent;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Error as KubeError};

pub use kube::runtime::events::{Event as EventNote, EventType};
use recent::{EventKey, Publication, RecentEvents};

/// How long a published Event is remembered for counting repeats after its last use.
pub const REMEMBER_FOR: Duration = Duration::from_secs(6 * 60);
/// At most this many Events are remembered (a few MiB at most).
pub const REMEMBER_AT_MOST: usize = 16_384;

/// Publishes Events as one reporting controller and instance.
#[derive(Clone)]
pub struct EventPublisher {
    client: Client,
    controller: Arc<str>,
    instance: Arc<str>,
    recent: Arc<Mutex<RecentEvents>>,
}

impl EventPublisher {
    /// A publisher reporting as `controller` from `instance` (e.g. the pod name).
    pub fn new(client: Client, controller: &str, instance: &str) -> Self {
        Self {
            client,
            controller: controller.into(),
            instance: instance.into(),
            recent: Arc::new(Mutex::new(RecentEvents::new(
                REMEMBER_FOR,
                REMEMBER_AT_MOST,
            ))),
        }
    }

    /// Publishes `event` on `regarding`: creates it, or counts a repeat on the Event
    /// published for it lately. A repeat whose Event is gone is created anew.
    pub async fn publish(
        &self,
        event: &EventNote,
        regarding: &ObjectReference,
    ) -> Result<(), KubeError> {
        let uid = regarding.uid.as_deref().unwrap_or_default();
        let note = event.note.as_deref().unwrap_or_default();
        let key = EventKey::new(uid, type_name(event.type_), &event.reason, note);
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let events: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let now = Timestamp::now();
        match self.decide(key, uid, regarding, now) {
            Publication::Repeat { name, count } => {
                match count_repeat(&events, &name, count, now).await {
                    Err(KubeError::Api(status)) if status.is_not_found() => {
                        self.forget(key, &name);
                        let name = self.decide_create(key, uid, regarding, now);
                        self.create(&events, key, &name, event, regarding, now)
                            .await
                    }
                    other => other,
                }
            }
            Publication::Create { name } => {
                self.create(&events, key, &name, event, regarding, now)
                    .await
            }
        }
    }

    fn decide(
        &self,
        key: EventKey,
        uid: &str,
        regarding: &ObjectReference,
        now: Timestamp,
    ) -> Publication {
        let new_name = || event_name(regarding, &self.controller, now);
        self.recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .publish(Instant::now(), key, uid, new_name)
    }

    /// Like [`Self::decide`] right after forgetting `key`: always a new name.
    fn decide_create(
        &self,
        key: EventKey,
        uid: &str,
        regarding: &ObjectReference,
        now: Timestamp,
    ) -> String {
        match self.decide(key, uid, regarding, now) {
            Publication::Create { name } | Publication::Repeat { name, .. } => name,
        }
    }

    fn forget(&self, key: EventKey, name: &str) {
        self.recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .forget(key, name);
    }

    async fn create(
        &self,
        events: &Api<Event>,
        key: EventKey,
        name: &str,
        event: &EventNote,
        regarding: &ObjectReference,
        now: Timestamp,
    ) -> Result<(), KubeError> {
        let body = Event {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: regarding.namespace.clone(),
                ..ObjectMeta::default()
            },
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            note: event.note.clone(),
            related: event.secondary.clone(),
            type_: Some(type_name(event.type_).to_owned()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.to_string()),
            reporting_instance: Some(self.instance.to_string()),
            ..Event::default()
        };
        let created = events.create(&PostParams::default(), &body).await;
        if created.is_err() {
            self.forget(key, name);
        }
        created.map(drop)
    }
}

/// Counts a repeat on the Event `name`: its `series` says how often and when last.
async fn count_repeat(
    events: &Api<Event>,
    name: &str,
    count: i32,
    now: Timestamp,
) -> Result<(), KubeError> {
    let series = EventSeries {
        count,
        last_observed_time: MicroTime(now),
    };
    let patch = serde_json::json!({ "series": series });
    events
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(drop)
}

/// A new Event's name: the object's name and the time in hex nanoseconds, unique per object
/// as client-go makes them.
fn event_name(regarding: &ObjectReference, controller: &str, now: Timestamp) -> String {
    let object = regarding.name.as_deref().unwrap_or(controller);
    format!("{object}.{:x}", now.as_nanosecond())
}

/// The API's name of an Event type.
fn type_name(type_: EventType) -> &'static str {
    match type_ {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}
