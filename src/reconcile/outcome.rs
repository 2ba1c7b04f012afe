//! The report step every controller shares: from what a reconcile ended with to the common
//! status, a status write only when something changed, metrics, and when to look again.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::reconcile::events::EventType;
use kube::api::Api;
use kube::runtime::controller::Action;

use crate::api::common::reason::{AWAITING_RESTORE, GENERATING, RESTORED};
use crate::api::common::{CommonStatus, ConditionStatus, condition};
use crate::metrics::{KindLabels, ResultLabels};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use super::context::Context;
use super::error::Error;
use super::finalizer;
use super::resource::{
    KeysmithResource, backoff_key, namespace, object_labels, publish, ready_reason,
    target_secret_name,
};
use super::slow::TaskOwner;
use super::status::{ConditionUpdate, apply_if_changed, conditions, time};

/// Reason of `Generating=False`: nothing is being generated.
pub const IDLE: &str = "Idle";
/// How often the progress of a running slow generation is reported.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(30);

/// What one reconcile ended with, before it is reported.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The Ready condition.
    pub ready: ConditionUpdate,
    /// A failure to count (failedAttempts, backoff).
    pub failed: bool,
    /// Generation count of the material in the Secret.
    pub revision: Option<i64>,
    /// The rotate token the material answers.
    pub rotation_token: Option<String>,
    /// When the operator renews or rotates next.
    pub next_rotation: Option<SystemTime>,
    /// When the current material expires.
    pub expires: Option<SystemTime>,
    /// When the current material was generated (from the Secret, never guessed).
    pub generated_at: Option<SystemTime>,
    /// A slow generation is running: its progress (`Generating=True`).
    pub generating: Option<String>,
    /// Look again at this time even if nothing changes (a wait that ends).
    pub wake_at: Option<SystemTime>,
}

impl Outcome {
    /// Ready: current material is in the Secret.
    pub fn ready(reason: &'static str, message: String) -> Self {
        Self {
            ready: ConditionUpdate {
                type_: condition::READY,
                status: ConditionStatus::True,
                reason,
                message,
            },
            failed: false,
            revision: None,
            rotation_token: None,
            next_rotation: None,
            expires: None,
            generated_at: None,
            generating: None,
            wake_at: None,
        }
    }

    /// Not Ready, for `reason`; counts as a failure.
    pub fn not_ready(reason: &'static str, message: String) -> Self {
        Self {
            ready: ConditionUpdate {
                type_: condition::READY,
                status: ConditionStatus::False,
                reason,
                message,
            },
            failed: true,
            ..Self::ready(reason, String::new())
        }
    }

    /// Not Ready yet because the first material is still being generated (not a failure).
    pub fn generating(progress: String) -> Self {
        let mut outcome = Self::ready(GENERATING, progress.clone());
        outcome.ready.status = ConditionStatus::False;
        outcome.generating = Some(progress);
        outcome
    }

    /// Reports a failed step as Ready=False with the step's reason (the Event is published
    /// by [`finish`] when the reason is new).
    pub fn failure<K: KeysmithResource>(object: &K, error: &Error) -> Self {
        tracing::warn!(kind = K::KIND, name = %kube::ResourceExt::name_any(object), namespace = %namespace(object), reason = error.reason(), %error, "reconcile failed");
        Self::not_ready(error.reason(), error.to_string())
    }
}

/// The fields every status has, computed from the outcome. Kind-specific code adds the
/// fingerprint and `generatedAt`.
pub fn common_status<K: KeysmithResource>(
    object: &K,
    outcome: &Outcome,
    now: SystemTime,
) -> CommonStatus {
    let previous = object.common();
    let generation = kube::Resource::meta(object).generation;
    let generating = match &outcome.generating {
        Some(progress) => ConditionUpdate {
            type_: condition::GENERATING,
            status: ConditionStatus::True,
            reason: GENERATING,
            message: progress.clone(),
        },
        None => ConditionUpdate {
            type_: condition::GENERATING,
            status: ConditionStatus::False,
            reason: IDLE,
            message: "no generation running".to_owned(),
        },
    };
    let mut status = CommonStatus {
        observed_generation: generation,
        conditions: conditions(
            previous
                .map(|c| c.conditions.as_slice())
                .unwrap_or_default(),
            &[outcome.ready.clone(), generating],
            generation,
            now,
        ),
        secret_name: Some(target_secret_name(object)),
        revision: outcome.revision,
        last_rotation_token: outcome.rotation_token.clone(),
        next_rotation_time: outcome.next_rotation.map(time),
        generated_at: outcome.generated_at.map(time),
        ..CommonStatus::default()
    };
    if outcome.failed {
        let attempts = previous.and_then(|c| c.failed_attempts).unwrap_or(0);
        status.failed_attempts = Some(attempts.saturating_add(1));
        status.last_failure_time = Some(time(now));
    }
    status
}

/// Writes `status` if it differs from what `object` shows, publishes a Warning Event (its
/// reason is the Ready reason) when the resource becomes not Ready or changes why, records
/// metrics, and returns when to reconcile again: with the per-object backoff after a
/// failure, else at the next rotation.
pub async fn finish<K: KeysmithResource>(
    ctx: &Context,
    object: &K,
    outcome: &Outcome,
    status: K::Status,
    started: Instant,
) -> Result<Action, Error> {
    // Generating and waiting for a restore are progress, not problems: a Normal Event.
    if outcome.ready.status == ConditionStatus::False
        && ready_reason(object) != Some(outcome.ready.reason)
    {
        let note = outcome.ready.message.clone();
        match outcome.ready.reason {
            GENERATING => {}
            AWAITING_RESTORE => {
                publish(ctx, object, EventType::Normal, AWAITING_RESTORE, note);
            }
            reason => publish(ctx, object, EventType::Warning, reason, note),
        }
    }
    let api = Api::<K>::namespaced(ctx.client.clone(), &namespace(object));
    apply_if_changed(
        &api,
        object,
        object.status(),
        &status,
        &ctx.written_statuses,
    )
    .await
    .map_err(Error::WriteStatus)?;
    record_metrics(ctx, object, outcome, started);
    let key = backoff_key(object);
    if outcome.failed {
        return Ok(Action::requeue(ctx.backoff.next_delay(&key)));
    }
    ctx.backoff.reset(&key);
    if outcome.generating.is_some() {
        // The task's end triggers a reconcile; this one only refreshes the progress.
        return Ok(Action::requeue(PROGRESS_INTERVAL));
    }
    let next = match (outcome.next_rotation, outcome.wake_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(requeue_at(next, ctx.clock.now()))
}

/// Retries a reconcile whose report failed, with the per-object backoff.
pub fn retry<K: KeysmithResource>(object: &K, error: &Error, ctx: &Context) -> Action {
    tracing::warn!(kind = K::KIND, name = %kube::ResourceExt::name_any(object), namespace = %namespace(object), reason = error.reason(), %error, "reconcile failed");
    Action::requeue(ctx.backoff.next_delay(&backoff_key(object)))
}

/// Requeue at `when` (at least 1 s away), or only when something changes.
fn requeue_at(when: Option<SystemTime>, now: SystemTime) -> Action {
    match when {
        Some(when) => {
            let wait = when.duration_since(now).unwrap_or_default();
            Action::requeue(wait.max(Duration::from_secs(1)))
        }
        None => Action::await_change(),
    }
}

fn record_metrics<K: KeysmithResource>(
    ctx: &Context,
    object: &K,
    outcome: &Outcome,
    started: Instant,
) {
    let metrics = &ctx.metrics;
    let labels = object_labels(object);
    metrics.track(&labels);
    let ready = outcome.ready.status == ConditionStatus::True;
    metrics.ready.get_or_create(&labels).set(i64::from(ready));
    if let Some(expires) = outcome.expires {
        metrics.expiration.get_or_create(&labels).set(unix(expires));
    }
    if let Some(next) = outcome.next_rotation {
        metrics.next_rotation.get_or_create(&labels).set(unix(next));
    }
    let result = if outcome.failed {
        outcome.ready.reason
    } else {
        "success"
    };
    metrics
        .reconcile_total
        .get_or_create(&ResultLabels {
            kind: K::KIND.into(),
            result: result.into(),
        })
        .inc();
    metrics
        .reconcile_duration
        .get_or_create(&KindLabels {
            kind: K::KIND.into(),
        })
        .observe(started.elapsed().as_secs_f64());
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A controller as the shared reconcile loop drives it: decide, generate and write
/// (`reconcile_material`), then compute the status (`status_of`).
pub trait MaterialController: KeysmithResource {
    /// What the Secret holds after a reconcile, for the status.
    type Material: Send;

    /// Decides, generates and writes; returns the outcome and the material now in the
    /// Secret.
    fn reconcile_material(
        &self,
        ctx: &Context,
    ) -> impl std::future::Future<Output = Result<(Outcome, Option<Self::Material>), Error>> + Send;

    /// The status to report for `outcome` and `material`.
    fn status_of(
        &self,
        outcome: &Outcome,
        material: Option<&Self::Material>,
        now: SystemTime,
    ) -> Self::Status;

    /// The kind's own clean-up when the resource is deleted, before the target Secret is
    /// handled by `deletionPolicy` and the finalizer removed ([`super::finalizer`]).
    fn clean_up(
        &self,
        _ctx: &Context,
    ) -> impl std::future::Future<Output = Result<(), Error>> + Send {
        std::future::ready(Ok(()))
    }
}

/// One reconcile of any kind: skip deleted objects, run the kind's steps, report. Transient
/// read errors go back to the controller's error policy (backoff, status untouched).
pub async fn reconcile<K: MaterialController>(
    object: Arc<K>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let owner = task_owner(object.as_ref());
    if kube::Resource::meta(object.as_ref())
        .deletion_timestamp
        .is_some()
    {
        ctx.metrics.forget(&object_labels(object.as_ref()));
        ctx.slow.settle(&owner, false);
        if object.finalizers().iter().any(|f| f == K::FINALIZER) {
            object.clean_up(&ctx).await?;
            finalizer::finish_deletion(&ctx, object.as_ref()).await?;
        }
        return Ok(Action::await_change());
    }
    if let Some(outcome) = awaiting_restore(object.as_ref(), &ctx).await? {
        let status = object.status_of(&outcome, None, ctx.clock.now());
        return finish(&ctx, object.as_ref(), &outcome, status, started).await;
    }
    let mut attempt = object.reconcile_material(&ctx).await;
    if attempt.as_ref().is_err_and(Error::is_lost_create) {
        attempt = object.reconcile_material(&ctx).await;
    }
    if matches!(attempt, Err(Error::Deleted)) {
        // Deleted before it got the finalizer: what this reconcile wrote goes as the
        // finalizer would have taken it.
        if let Ok(mut taken) = ctx.taken_back.lock() {
            taken.remove(&kube::ResourceExt::uid(object.as_ref()).unwrap_or_default());
        }
        object.clean_up(&ctx).await?;
        finalizer::delete_target(&ctx, object.as_ref()).await?;
        return Ok(Action::await_change());
    }
    let (mut outcome, material) = match attempt {
        Ok(result) => result,
        // A Secret taken back stays noted for the retry that reports it.
        Err(error) if error.is_transient() => return Err(error),
        Err(error) => (Outcome::failure(object.as_ref(), &error), None),
    };
    let taken_back =
        ctx.taken_back.lock().ok().and_then(|mut t| {
            t.remove(&kube::ResourceExt::uid(object.as_ref()).unwrap_or_default())
        });
    if let Some(message) = taken_back
        && outcome.ready.status == ConditionStatus::True
    {
        outcome.ready.reason = RESTORED;
        outcome.ready.message = message;
    }
    if outcome.generating.is_none() {
        ctx.slow.settle(&owner, outcome.failed);
    }
    let status = object.status_of(&outcome, material.as_ref(), ctx.clock.now());
    finish(&ctx, object.as_ref(), &outcome, status, started).await
}

/// The report of a resource that looks restored (keysmith's finalizer, no fingerprint) and
/// whose target Secret is absent, while [`finalizer::awaiting_restore`] says to wait; `None`
/// when it is not one, or the wait is over.
async fn awaiting_restore<K: KeysmithResource>(
    object: &K,
    ctx: &Context,
) -> Result<Option<Outcome>, Error> {
    let has_fingerprint = object.common().is_some_and(|c| c.fingerprint.is_some());
    let created = kube::Resource::meta(object)
        .creation_timestamp
        .as_ref()
        .map(|t| SystemTime::from(t.0));
    let Some(deadline) = finalizer::awaiting_restore(
        finalizer::has_finalizer(ctx, object),
        has_fingerprint,
        created,
        ctx.clock.now(),
        ctx.settings.restore_grace,
    ) else {
        return Ok(None);
    };
    let ns = namespace(object);
    let name = target_secret_name(object);
    let present = Api::<Secret>::namespaced(ctx.client.clone(), &ns)
        .get_metadata_opt(&name)
        .await
        .map_err(|source| Error::Read {
            what: format!("Secret {ns}/{name}"),
            source,
        })?
        .is_some();
    if present {
        return Ok(None);
    }
    let mut outcome = Outcome::not_ready(
        AWAITING_RESTORE,
        format!(
            "this {} carries keysmith's finalizer but shows no material, as a restored resource does: waiting until {} for Secret {ns}/{name} to be restored before generating new material",
            K::KIND,
            time(deadline).0
        ),
    );
    // Waiting is not a failure: no backoff, no failedAttempts; looked at again when the
    // Secret appears (its watch) or when the wait ends.
    outcome.failed = false;
    outcome.wake_at = Some(deadline);
    Ok(Some(outcome))
}

/// Who a slow generation of `object` belongs to.
pub fn task_owner<K: KeysmithResource>(object: &K) -> TaskOwner {
    TaskOwner {
        kind: K::KIND,
        namespace: namespace(object),
        name: kube::ResourceExt::name_any(object),
    }
}

/// The error policy of every controller: retry with the per-object backoff.
pub fn error_policy<K: KeysmithResource>(
    object: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    retry(object.as_ref(), error, &ctx)
}
