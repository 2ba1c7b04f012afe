//! Conditions and status writes. A status is written only when it differs from what the
//! resource already shows; conditions keep their lastTransitionTime unless their status
//! flips, so a no-op reconcile changes nothing (api.md 1.5).

use std::fmt::Debug;
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

/// Writes `desired` as the status of `resource` with server-side apply, unless the resource
/// already shows exactly that. Returns whether a write happened.
pub async fn apply_if_changed<K, S>(
    api: &Api<K>,
    resource: &K,
    current: Option<&S>,
    desired: &S,
) -> Result<bool, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
    S: Serialize + PartialEq,
{
    if current == Some(desired) {
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
}
