//! Conditions and status writes. A status is written only when it differs from what the
//! resource already shows; conditions keep their lastTransitionTime unless their status
//! flips, so a no-op reconcile changes nothing (api.md 1.5).

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::{DefaultHasher, Hasher};
use std::sync::Mutex;
use std::time::SystemTime;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::common::{Condition, ConditionStatus};

use super::secret::FIELD_MANAGER;

/// A point in time as the API stores it: whole seconds (so a value read back compares equal).
pub fn time(at: SystemTime) -> Time {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    Time(jiff::Timestamp::from_second(secs).unwrap_or(jiff::Timestamp::UNIX_EPOCH))
}

/// The [`SystemTime`] of an API time.
pub fn system_time(t: &Time) -> SystemTime {
    SystemTime::from(t.0)
}

/// What a condition should say now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionUpdate {
    /// Condition type (`Ready`, `Generating`).
    pub type_: &'static str,
    /// Whether it holds.
    pub status: ConditionStatus,
    /// CamelCase reason.
    pub reason: &'static str,
    /// Message for a person (never secret data).
    pub message: String,
}

/// Builds the conditions list from `updates`, keeping the lastTransitionTime of a condition
/// whose status did not change. Conditions of other types are kept as they are.
pub fn conditions(
    previous: &[Condition],
    updates: &[ConditionUpdate],
    generation: Option<i64>,
    now: SystemTime,
) -> Vec<Condition> {
    let mut result: Vec<Condition> = previous
        .iter()
        .filter(|c| !updates.iter().any(|u| u.type_ == c.type_))
        .cloned()
        .collect();
    for update in updates {
        let before = previous.iter().find(|c| c.type_ == update.type_);
        let last_transition_time = match before {
            Some(b) if b.status == update.status => b.last_transition_time.clone(),
            _ => time(now),
        };
        result.push(Condition {
            type_: update.type_.to_owned(),
            status: update.status,
            reason: update.reason.to_owned(),
            message: update.message.clone(),
            observed_generation: generation,
            last_transition_time,
        });
    }
    result.sort_by(|a, b| a.type_.cmp(&b.type_));
    result
}

/// The statuses keysmith wrote, per resource uid, with the resourceVersion the resource had
/// in the cache when they were written. A reconcile that runs before the cache shows its own
/// status write (the Secret's watch event often arrives first) still sees that old version:
/// it must compare with what was written, not with the stale status, or it writes the same
/// status again. Holds a hash per resource, not the status; the hash leaves out the
/// conditions' lastTransitionTime, which a reconcile on the same stale status sets to its
/// own "now" (a second later, the same status would otherwise be written again).
#[derive(Default)]
pub struct WrittenStatuses {
    written: Mutex<HashMap<String, (String, u64)>>,
}

impl WrittenStatuses {
    /// Whether `desired` (hashed) was already written over the version `resource_version` of
    /// resource `uid`. A resource whose cached version moved on is forgotten: from then on
    /// its cached status is the truth.
    fn already_written(&self, uid: &str, resource_version: &str, desired: u64) -> bool {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        match written.get(uid) {
            Some((seen, hash)) if seen == resource_version => *hash == desired,
            Some(_) => {
                written.remove(uid);
                false
            }
            None => false,
        }
    }

    /// Whether a status of resource `uid` was written over the version `resource_version`
    /// that the cache still shows: the status is written, the cache does not show it yet.
    pub fn pending_for(&self, uid: &str, resource_version: &str) -> bool {
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        written
            .get(uid)
            .is_some_and(|(seen, _)| seen == resource_version)
    }

    /// Forgets the statuses of every resource whose uid `live` rejects (deleted resources:
    /// nothing else would remove their entries).
    pub fn retain(&self, mut live: impl FnMut(&str) -> bool) {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        written.retain(|uid, _| live(uid));
    }

    /// Notes that `desired` (hashed) was written over version `resource_version` of `uid`.
    fn record(&self, uid: &str, resource_version: &str, desired: u64) {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        written.insert(uid.to_owned(), (resource_version.to_owned(), desired));
    }
}

/// A hash of `status` without its conditions' `lastTransitionTime`: two statuses computed
/// from the same previous one differ there only in the moment they were computed.
fn hash_of<S: Serialize>(status: &S) -> Result<u64, serde_json::Error> {
    let mut value = serde_json::to_value(status)?;
    let conditions = value
        .get_mut("conditions")
        .and_then(serde_json::Value::as_array_mut);
    for condition in conditions.into_iter().flatten() {
        if let Some(fields) = condition.as_object_mut() {
            fields.remove("lastTransitionTime");
        }
    }
    let mut hasher = DefaultHasher::new();
    hasher.write(&serde_json::to_vec(&value)?);
    Ok(hasher.finish())
}

/// Writes `desired` as the status of `resource` with server-side apply, unless the resource
/// already shows exactly that. Returns whether a write happened.
pub async fn apply_if_changed<K, S>(
    api: &Api<K>,
    resource: &K,
    current: Option<&S>,
    desired: &S,
    written: &WrittenStatuses,
) -> Result<bool, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
    S: Serialize + PartialEq,
{
    if current == Some(desired) {
        return Ok(false);
    }
    let hash = hash_of(desired).map_err(kube::Error::SerdeError)?;
    let version = resource.uid().zip(resource.resource_version());
    if let Some((uid, rv)) = &version
        && written.already_written(uid, rv, hash)
    {
        return Ok(false);
    }
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": desired,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(&resource.name_any(), &params, &Patch::Apply(body))
        .await?;
    if let Some((uid, rv)) = &version {
        written.record(uid, rv, hash);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::api::common::condition::READY;
    use crate::api::common::reason;

    fn ready(status: ConditionStatus, reason: &'static str) -> ConditionUpdate {
        ConditionUpdate {
            type_: READY,
            status,
            reason,
            message: "m".into(),
        }
    }

    #[test]
    fn transition_time_is_kept_while_the_status_holds() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let t1 = t0 + Duration::from_secs(60);
        let first = conditions(
            &[],
            &[ready(ConditionStatus::True, reason::ISSUED)],
            Some(1),
            t0,
        );
        let again = conditions(
            &first,
            &[ready(ConditionStatus::True, reason::ISSUED)],
            Some(1),
            t1,
        );
        assert_eq!(first, again);
        let flipped = conditions(
            &again,
            &[ready(ConditionStatus::False, reason::SECRET_CONFLICT)],
            Some(1),
            t1,
        );
        assert_eq!(flipped[0].last_transition_time, time(t1));
        assert_eq!(flipped[0].reason, reason::SECRET_CONFLICT);
    }

    #[test]
    fn times_are_whole_seconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(
            system_time(&time(t)),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1)
        );
    }

    #[test]
    fn the_hash_ignores_only_the_transition_times() {
        let status = |message: &str, at: &str| {
            serde_json::json!({
                "observedGeneration": 1,
                "conditions": [{"type": "Ready", "status": "True", "reason": "Issued",
                                "message": message, "lastTransitionTime": at}],
                "fingerprint": "SHA256:ab",
            })
        };
        let hash = |v: &serde_json::Value| hash_of(v).expect("serializable");
        let first = hash(&status("m", "2026-12-06T10:00:00Z"));
        assert_eq!(first, hash(&status("m", "2026-12-06T10:00:01Z")));
        assert_ne!(first, hash(&status("other", "2026-12-06T10:00:00Z")));
        let mut refingered = status("m", "2026-12-06T10:00:00Z");
        refingered["fingerprint"] = "SHA256:cd".into();
        assert_ne!(first, hash(&refingered));
    }

    #[test]
    fn a_written_status_counts_until_the_cached_version_moves_on() {
        let written = WrittenStatuses::default();
        assert!(!written.already_written("uid", "1", 7));
        written.record("uid", "1", 7);
        assert!(
            written.already_written("uid", "1", 7),
            "stale cache, same status"
        );
        assert!(
            !written.already_written("uid", "1", 8),
            "stale cache, other status"
        );
        assert!(
            !written.already_written("other", "1", 7),
            "another resource"
        );
        assert!(
            !written.already_written("uid", "2", 7),
            "the cache moved on"
        );
        assert!(
            written.written.lock().expect("lock").is_empty(),
            "and the entry is forgotten"
        );
        assert!(!written.pending_for("uid", "2"));
        written.record("uid", "2", 7);
        assert!(
            written.pending_for("uid", "2"),
            "the cache still shows version 2"
        );
        assert!(!written.pending_for("uid", "3"), "the cache moved on");
        assert!(!written.pending_for("other", "2"));
        written.record("other", "5", 1);
        written.retain(|uid| uid == "other");
        assert!(!written.pending_for("uid", "2"), "forgotten");
        assert!(written.pending_for("other", "5"), "kept");
    }
}
