//! The CertificateKeyPair controller (api.md section 2): decide, generate, write, report.

pub mod decide;
mod issuer;
pub mod key_store;

pub use issuer::issuer_key;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

use crate::api::certificate_key_pair::{
    CertificateFingerprints, CertificateKeyPair, CertificateKeyPairStatus, PrivateKeyExport,
    PrivateKeyStatus,
};
use crate::api::common::{CommonStatus, ConditionStatus, condition, reason};
use crate::material::encode::{KeyExport, tls_secret_data, tls_secret_data_is_current};
use crate::material::fingerprint::sha256_tagged;
use crate::material::pkey::{KeyKind, PrivateKey};
use crate::material::x509::{TlsMaterial, issue};
use crate::material::{MaterialError, SecretBytes};
use crate::metrics::{GenerateLabels, KindLabels, ObjectLabels, ResultLabels};

use super::context::Context;
use super::secret::{
    DesiredSecret, Ownership, REVISION_ANNOTATION, ROTATION_TOKEN_ANNOTATION, SecretOwner,
};
use super::status::{ConditionUpdate, apply_if_changed, conditions, time};
use decide::{Decision, Inputs, IssueReason, IssuerState, SecretState, decide, renewal_time};

/// The kind name.
pub const KIND: &str = "CertificateKeyPair";
/// Annotation on a resource that requests a rotation when its value changes.
pub const ROTATE_ANNOTATION: &str = "keysmith.dev/rotate";

/// A failed step of a reconcile. Messages name objects, never material.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading an object failed.
    #[error("reading {what}: {}", api_message(.source))]
    Read {
        /// What was read.
        what: String,
        /// The API error.
        source: kube::Error,
    },
    /// Generating the key or certificate failed.
    #[error("generating the certificate: {0}")]
    Generate(MaterialError),
    /// Writing the target Secret failed.
    #[error("writing Secret {secret}: {}", api_message(.source))]
    WriteSecret {
        /// `<namespace>/<name>`.
        secret: String,
        /// The API error.
        source: kube::Error,
    },
    /// Writing the status failed.
    #[error("writing the status: {}", api_message(.0))]
    WriteStatus(kube::Error),
}

/// The API server's own message (without the Debug dump kube adds), or the error text.
fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("{} (HTTP {})", status.message, status.code),
        other => other.to_string(),
    }
}

impl Error {
    /// The Ready reason (and metric label) of this failure.
    pub fn reason(&self) -> &'static str {
        let forbidden = |e: &kube::Error| matches!(e, kube::Error::Api(s) if s.code == 403);
        match self {
            Self::Read { source, .. } | Self::WriteSecret { source, .. } if forbidden(source) => {
                reason::FORBIDDEN
            }
            Self::WriteStatus(source) if forbidden(source) => reason::FORBIDDEN,
            Self::Generate(MaterialError::Unsupported(_)) => reason::INVALID_SPEC,
            Self::Generate(_) => reason::GENERATION_FAILED,
            Self::Read { .. } | Self::WriteSecret { .. } | Self::WriteStatus(_) => {
                reason::SECRET_WRITE_FAILED
            }
        }
    }
}

/// The target Secret's name.
pub fn target_secret_name(ckp: &CertificateKeyPair) -> String {
    ckp.spec
        .target
        .name
        .clone()
        .unwrap_or_else(|| ckp.name_any())
}

/// Reads TLS material from a Secret's data (`tls.crt`, `ca.crt`), with the key from the key
/// Secret when there is one (privateKeyExport: Denied), else from `tls.key`.
pub fn tls_material_from_secret(
    secret: &Secret,
    key_secret: Option<&Secret>,
) -> Result<TlsMaterial, String> {
    let data = secret.data.as_ref();
    let get = |key: &str| data.and_then(|d| d.get(key)).map(|b| b.0.as_slice());
    let crt = get("tls.crt").ok_or("tls.crt is missing")?;
    let key_pem = key_secret
        .and_then(key_store::key_pem)
        .or_else(|| get("tls.key"))
        .ok_or("tls.key is missing")?;
    let key = PrivateKey::from_pem(key_pem).map_err(|e| format!("tls.key: {e}"))?;
    crate::material::parse::read_tls(crt, key, get("ca.crt")).map_err(|e| e.to_string())
}

/// What one reconcile ended with, before it is reported.
struct Outcome {
    ready: ConditionUpdate,
    /// The material the Secret now holds (None when there is none of ours).
    material: Option<TlsMaterial>,
    /// Annotations of the Secret now (revision, rotation token).
    revision: Option<i64>,
    rotation_token: Option<String>,
    /// A failure to count (failedAttempts, backoff).
    failed: bool,
}

/// Reconciles one CertificateKeyPair.
pub async fn reconcile(ckp: Arc<CertificateKeyPair>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    if ckp.meta().deletion_timestamp.is_some() {
        ctx.metrics.forget(&object_labels(&ckp));
        return Ok(Action::await_change());
    }
    let outcome = match reconcile_material(&ckp, &ctx).await {
        Ok(outcome) => outcome,
        Err(error) => failure_outcome(&ckp, &ctx, &error).await,
    };
    let action = report(&ckp, &ctx, outcome).await;
    ctx.metrics
        .reconcile_duration
        .get_or_create(&KindLabels { kind: KIND.into() })
        .observe(started.elapsed().as_secs_f64());
    action
}

/// Retries a reconcile that failed to write its status, with the per-object backoff.
pub fn error_policy(ckp: Arc<CertificateKeyPair>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(name = %ckp.name_any(), namespace = ?ckp.namespace(), reason = error.reason(), %error, "reconcile failed");
    Action::requeue(ctx.backoff.next_delay(&backoff_key(&ckp)))
}

async fn reconcile_material(ckp: &CertificateKeyPair, ctx: &Context) -> Result<Outcome, Error> {
    let namespace = ckp.namespace().unwrap_or_default();
    let secret_name = target_secret_name(ckp);
    let secrets = Api::<Secret>::namespaced(ctx.client.clone(), &namespace);
    let existing = secrets
        .get_opt(&secret_name)
        .await
        .map_err(|source| Error::Read {
            what: format!("Secret {namespace}/{secret_name}"),
            source,
        })?;
    let ownership = Ownership::of(existing, &ckp.uid().unwrap_or_default());
    let key_namespace = ctx.settings.key_namespace.as_str();
    let key_secret = match key_export(ckp) {
        KeyExport::Omitted => key_store::read(&ctx.client, key_namespace, ckp).await?,
        KeyExport::Included => None,
    };
    let issuer = issuer::resolve(&ctx.client, key_namespace, ckp).await?;
    let qualified = format!("{namespace}/{secret_name}");
    let decision = decide(Inputs {
        spec: &ckp.spec,
        rotate_request: ckp.annotations().get(ROTATE_ANNOTATION).map(String::as_str),
        secret: secret_state(&ownership, key_secret.as_ref()),
        issuer: &issuer,
        now: ctx.clock.now(),
        secret_name: &qualified,
    });
    let previous = previous_revision(&ownership);
    match decision {
        Decision::Keep(material) => {
            let token = current_token(&ownership);
            write_secret(ckp, ctx, &secrets, &ownership, &material, previous, token).await?;
            Ok(ready_outcome(
                *material,
                previous,
                current_token(&ownership),
            ))
        }
        Decision::Adopt(material) => {
            // Adopted material was not generated by keysmith: revision 0 until it renews it.
            let revision = 0;
            write_secret(ckp, ctx, &secrets, &ownership, &material, revision, None).await?;
            publish(
                ctx,
                ckp,
                EventType::Normal,
                "Adopted",
                format!("adopted the existing material of Secret {qualified}"),
            )
            .await;
            Ok(ready_outcome(*material, revision, None))
        }
        Decision::Issue {
            reason: why,
            reuse_key,
        } => {
            let issuer_material = match &issuer {
                IssuerState::Ready(m) => Some(m.as_ref().clone()),
                _ => None,
            };
            let material = generate(ckp, ctx, reuse_key, issuer_material).await?;
            let revision = previous + 1;
            let token = match why {
                IssueReason::RotationRequested => ckp.annotations().get(ROTATE_ANNOTATION).cloned(),
                _ => current_token(&ownership),
            };
            write_secret(
                ckp,
                ctx,
                &secrets,
                &ownership,
                &material,
                revision,
                token.clone(),
            )
            .await?;
            publish(
                ctx,
                ckp,
                EventType::Normal,
                why.event_reason(),
                format!(
                    "issued a new certificate into Secret {qualified}: {}",
                    why.describe()
                ),
            )
            .await;
            tracing::info!(name = %ckp.name_any(), %namespace, secret = %secret_name, revision, cause = %why.describe(), "certificate issued");
            Ok(ready_outcome(material, revision, token))
        }
        Decision::Conflict(message) => Ok(not_ready(reason::SECRET_CONFLICT, message)),
        Decision::WaitForIssuer {
            reason,
            message,
            current: None,
        } => Ok(not_ready(reason, message)),
        Decision::WaitForIssuer {
            message,
            current: Some(material),
            ..
        } => {
            let mut outcome = ready_outcome(*material, previous, current_token(&ownership));
            outcome.ready.message = format!("{}; renewal waits: {message}", outcome.ready.message);
            outcome.failed = true;
            Ok(outcome)
        }
        Decision::Expired { message } => Ok(not_ready(reason::EXPIRED, message)),
    }
}

fn secret_state(ownership: &Ownership, key_secret: Option<&Secret>) -> SecretState {
    match ownership {
        Ownership::Absent => SecretState::Absent,
        Ownership::Owned(secret) => SecretState::Owned {
            material: tls_material_from_secret(secret, key_secret),
            rotation_token: annotation(secret, ROTATION_TOKEN_ANNOTATION),
        },
        Ownership::Foreign { secret, owner } => SecretState::Foreign {
            owner: owner.clone(),
            material: tls_material_from_secret(secret, None).ok(),
        },
    }
}

fn annotation(secret: &Secret, key: &str) -> Option<String> {
    secret.metadata.annotations.as_ref()?.get(key).cloned()
}

fn previous_revision(ownership: &Ownership) -> i64 {
    match ownership {
        Ownership::Owned(secret) => annotation(secret, REVISION_ANNOTATION)
            .and_then(|r| r.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

fn current_token(ownership: &Ownership) -> Option<String> {
    match ownership {
        Ownership::Owned(secret) => annotation(secret, ROTATION_TOKEN_ANNOTATION),
        _ => None,
    }
}

/// Generates the key (unless kept) and issues the certificate on a blocking thread.
async fn generate(
    ckp: &CertificateKeyPair,
    ctx: &Context,
    reuse_key: Option<PrivateKey>,
    issuer: Option<TlsMaterial>,
) -> Result<TlsMaterial, Error> {
    let spec = ckp.spec.clone();
    let now = ctx.clock.now();
    let started = Instant::now();
    let kind = KeyKind::from_spec(spec.private_key.algorithm, spec.private_key.size)
        .map_err(Error::Generate)?;
    let material = tokio::task::spawn_blocking(move || {
        let key = match reuse_key {
            Some(key) => key,
            None => PrivateKey::generate(kind)?,
        };
        issue(&spec, key, issuer.as_ref(), now)
    })
    .await
    .map_err(|e| {
        Error::Generate(MaterialError::Crypto(format!(
            "generation task failed: {e}"
        )))
    })?
    .map_err(Error::Generate)?;
    ctx.metrics
        .generate_duration
        .get_or_create(&GenerateLabels {
            kind: KIND.into(),
            algorithm: format!("{:?}-{}", kind.algorithm(), kind.size()),
        })
        .observe(started.elapsed().as_secs_f64());
    Ok(material)
}

/// `kubernetes.io/tls`, which the API server only accepts with a `tls.key`: without the
/// exported key the Secret is `Opaque`.
fn secret_type(ckp: &CertificateKeyPair) -> &'static str {
    match key_export(ckp) {
        KeyExport::Included => "kubernetes.io/tls",
        KeyExport::Omitted => "Opaque",
    }
}

fn key_export(ckp: &CertificateKeyPair) -> KeyExport {
    match ckp.spec.private_key_export {
        PrivateKeyExport::Allowed => KeyExport::Included,
        PrivateKeyExport::Denied => KeyExport::Omitted,
    }
}

/// Writes the Secret unless it already holds exactly what keysmith wants.
async fn write_secret(
    ckp: &CertificateKeyPair,
    ctx: &Context,
    secrets: &Api<Secret>,
    ownership: &Ownership,
    material: &TlsMaterial,
    revision: i64,
    rotation_token: Option<String>,
) -> Result<(), Error> {
    if key_export(ckp) == KeyExport::Omitted {
        // The key first: a target Secret without its key in the store would lose it.
        let namespace = ctx.settings.key_namespace.as_str();
        let stored = key_store::read(&ctx.client, namespace, ckp).await?;
        key_store::write(&ctx.client, namespace, ckp, &material.key, stored.as_ref()).await?;
    }
    let existing = ownership.secret();
    let password = keystore_password(ckp, ctx).await?;
    let data = secret_data(ckp, existing, material, password.as_ref())?;
    let desired = DesiredSecret {
        name: target_secret_name(ckp),
        namespace: ckp.namespace().unwrap_or_default(),
        type_: secret_type(ckp).to_owned(),
        extra_labels: ckp.spec.target.labels.clone(),
        extra_annotations: ckp.spec.target.annotations.clone(),
        owner: secret_owner(ckp),
        garbage_collected: ckp.spec.target.deletion_policy
            == crate::api::common::DeletionPolicy::Delete,
        fingerprint: fingerprint(material),
        revision,
        rotation_token,
        data,
    };
    if existing.is_some_and(|s| desired.is_satisfied_by(s)) {
        return Ok(());
    }
    super::secret::write(secrets, &desired, existing)
        .await
        .map(|_| ())
        .map_err(|source| Error::WriteSecret {
            secret: format!("{}/{}", desired.namespace, desired.name),
            source,
        })
}

/// The data to write: the existing data when it already encodes this material (PKCS#12
/// files carry random salts, so they are compared by content), else a fresh encoding.
fn secret_data(
    ckp: &CertificateKeyPair,
    existing: Option<&Secret>,
    material: &TlsMaterial,
    password: Option<&crate::material::SecretString>,
) -> Result<BTreeMap<String, SecretBytes>, Error> {
    let export = key_export(ckp);
    if let Some(data) = existing.and_then(|s| s.data.as_ref()) {
        let plain: BTreeMap<String, Vec<u8>> =
            data.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect();
        let current = tls_secret_data_is_current(&plain, material, &ckp.spec, export, password)
            .map_err(Error::Generate)?;
        if current {
            return Ok(plain
                .into_iter()
                .map(|(k, v)| (k, SecretBytes::new(v)))
                .collect());
        }
    }
    tls_secret_data(material, &ckp.spec, export, password).map_err(Error::Generate)
}

/// The PKCS#12 password from `keystores.pkcs12.passwordSecretRef`, if keystores are wanted.
async fn keystore_password(
    ckp: &CertificateKeyPair,
    ctx: &Context,
) -> Result<Option<crate::material::SecretString>, Error> {
    let Some(pkcs12) = ckp.spec.keystores.as_ref().and_then(|k| k.pkcs12.as_ref()) else {
        return Ok(None);
    };
    let namespace = ckp.namespace().unwrap_or_default();
    let reference = &pkcs12.password_secret_ref;
    let what = format!(
        "keystore password Secret {namespace}/{} key {}",
        reference.name, reference.key
    );
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(&reference.name)
        .await
        .map_err(|source| Error::Read {
            what: what.clone(),
            source,
        })?;
    let value = secret
        .and_then(|s| s.data)
        .and_then(|mut d| d.remove(&reference.key))
        .ok_or_else(|| Error::Generate(MaterialError::Unsupported(format!("{what} not found"))))?;
    let text = String::from_utf8(value.0).map_err(|_| {
        Error::Generate(MaterialError::Unsupported(format!(
            "{what} is not UTF-8 text"
        )))
    })?;
    Ok(Some(crate::material::SecretString::new(text)))
}

fn secret_owner(ckp: &CertificateKeyPair) -> SecretOwner {
    SecretOwner {
        kind: KIND.to_owned(),
        api_version: CertificateKeyPair::api_version(&()).into_owned(),
        name: ckp.name_any(),
        uid: ckp.uid().unwrap_or_default(),
    }
}

fn fingerprint(material: &TlsMaterial) -> String {
    material
        .chain
        .first()
        .map(|c| sha256_tagged(c.der()))
        .unwrap_or_default()
}

fn ready_outcome(material: TlsMaterial, revision: i64, rotation_token: Option<String>) -> Outcome {
    let until = material
        .chain
        .first()
        .and_then(|c| c.info().ok())
        .map(|i| time(i.not_after).0.to_string())
        .unwrap_or_default();
    Outcome {
        ready: ConditionUpdate {
            type_: condition::READY,
            status: ConditionStatus::True,
            reason: if revision == 0 {
                reason::ADOPTED
            } else {
                reason::ISSUED
            },
            message: format!("certificate valid until {until}"),
        },
        material: Some(material),
        revision: Some(revision),
        rotation_token,
        failed: false,
    }
}

fn not_ready(reason: &'static str, message: String) -> Outcome {
    Outcome {
        ready: ConditionUpdate {
            type_: condition::READY,
            status: ConditionStatus::False,
            reason,
            message,
        },
        material: None,
        revision: None,
        rotation_token: None,
        failed: true,
    }
}

async fn failure_outcome(ckp: &CertificateKeyPair, ctx: &Context, error: &Error) -> Outcome {
    tracing::warn!(name = %ckp.name_any(), namespace = ?ckp.namespace(), reason = error.reason(), %error, "reconcile failed");
    let event_reason = match error.reason() {
        reason::INVALID_SPEC => "InvalidSpec",
        _ => "GenerationFailed",
    };
    publish(
        ctx,
        ckp,
        EventType::Warning,
        event_reason,
        error.to_string(),
    )
    .await;
    not_ready(error.reason(), error.to_string())
}

/// Computes the status from the outcome, writes it if it changed, updates metrics and
/// decides when to look again.
async fn report(
    ckp: &CertificateKeyPair,
    ctx: &Context,
    outcome: Outcome,
) -> Result<Action, Error> {
    let now = ctx.clock.now();
    let previous = ckp.status.as_ref();
    let previous_common = previous.map(|s| &s.common);
    let generation = ckp.meta().generation;
    let next_renewal = outcome
        .material
        .as_ref()
        .and_then(|m| renewal_time(&ckp.spec, m));
    let mut status = match &outcome.material {
        Some(material) => material_status(ckp, material),
        None => CertificateKeyPairStatus::default(),
    };
    status.common.observed_generation = generation;
    status.common.conditions = conditions(
        previous_common
            .map(|c| c.conditions.as_slice())
            .unwrap_or_default(),
        &[outcome.ready.clone(), generating_done()],
        generation,
        now,
    );
    status.common.secret_name = Some(target_secret_name(ckp));
    status.common.revision = outcome.revision;
    status.common.last_rotation_token = outcome.rotation_token.clone();
    status.common.next_rotation_time = next_renewal.map(time);
    if outcome.failed {
        let attempts = previous_common.and_then(|c| c.failed_attempts).unwrap_or(0);
        status.common.failed_attempts = Some(attempts.saturating_add(1));
        status.common.last_failure_time = Some(time(now));
    }
    if outcome.ready.reason == reason::SECRET_CONFLICT
        && previous_ready_reason(ckp).as_deref() != Some(reason::SECRET_CONFLICT)
    {
        publish(
            ctx,
            ckp,
            EventType::Warning,
            "SecretConflict",
            outcome.ready.message.clone(),
        )
        .await;
    }
    let api = Api::<CertificateKeyPair>::namespaced(
        ctx.client.clone(),
        &ckp.namespace().unwrap_or_default(),
    );
    apply_if_changed(&api, ckp, previous, &status)
        .await
        .map_err(Error::WriteStatus)?;
    record_metrics(ckp, ctx, &outcome, next_renewal);
    let key = backoff_key(ckp);
    if outcome.failed {
        return Ok(Action::requeue(ctx.backoff.next_delay(&key)));
    }
    ctx.backoff.reset(&key);
    Ok(requeue_at(next_renewal, now))
}

fn generating_done() -> ConditionUpdate {
    ConditionUpdate {
        type_: condition::GENERATING,
        status: ConditionStatus::False,
        reason: reason::ISSUED,
        message: "no generation running".to_owned(),
    }
}

fn previous_ready_reason(ckp: &CertificateKeyPair) -> Option<String> {
    ckp.status
        .as_ref()?
        .common
        .conditions
        .iter()
        .find(|c| c.type_ == condition::READY)
        .map(|c| c.reason.clone())
}

/// Requeue at the renewal time (at least 1 s away), or when something changes.
fn requeue_at(when: Option<SystemTime>, now: SystemTime) -> Action {
    match when {
        Some(when) => {
            let wait = when.duration_since(now).unwrap_or_default();
            Action::requeue(wait.max(Duration::from_secs(1)))
        }
        None => Action::await_change(),
    }
}

fn material_status(ckp: &CertificateKeyPair, material: &TlsMaterial) -> CertificateKeyPairStatus {
    let mut status = CertificateKeyPairStatus::default();
    let Some(leaf) = material.chain.first() else {
        return status;
    };
    let Ok(info) = leaf.info() else {
        return status;
    };
    let issuing = material.chain.get(1).unwrap_or(&material.ca);
    let kind = material.key.kind();
    status.common = CommonStatus {
        fingerprint: Some(sha256_tagged(leaf.der())),
        generated_at: Some(time(info.not_before)),
        ..CommonStatus::default()
    };
    status.not_before = Some(time(info.not_before));
    status.not_after = Some(time(info.not_after));
    status.serial_number = Some(info.serial_hex.clone());
    status.subject = Some(info.subject.clone());
    status.issuer = Some(info.issuer.clone());
    status.fingerprints = Some(CertificateFingerprints {
        sha256: info.sha256.clone(),
        sha1: info.sha1.clone(),
    });
    status.private_key = Some(PrivateKeyStatus {
        algorithm: format!("{:?}", kind.algorithm()),
        size: kind.size(),
        available: key_export(ckp) == KeyExport::Included,
    });
    status.issuer_fingerprint = issuing.info().ok().map(|i| i.sha256);
    status
}

fn record_metrics(
    ckp: &CertificateKeyPair,
    ctx: &Context,
    outcome: &Outcome,
    next_renewal: Option<SystemTime>,
) {
    let labels = object_labels(ckp);
    let ready = outcome.ready.status == ConditionStatus::True;
    ctx.metrics
        .ready
        .get_or_create(&labels)
        .set(i64::from(ready));
    let unix = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    };
    if let Some(info) = outcome
        .material
        .as_ref()
        .and_then(|m| m.chain.first())
        .and_then(|c| c.info().ok())
    {
        ctx.metrics
            .expiration
            .get_or_create(&labels)
            .set(unix(info.not_after));
    }
    if let Some(next) = next_renewal {
        ctx.metrics
            .next_rotation
            .get_or_create(&labels)
            .set(unix(next));
    }
    let result = if outcome.failed {
        outcome.ready.reason
    } else {
        "success"
    };
    ctx.metrics
        .reconcile_total
        .get_or_create(&ResultLabels {
            kind: KIND.into(),
            result: result.into(),
        })
        .inc();
}

fn object_labels(ckp: &CertificateKeyPair) -> ObjectLabels {
    ObjectLabels {
        kind: KIND.into(),
        namespace: ckp.namespace().unwrap_or_default(),
        name: ckp.name_any(),
    }
}

fn backoff_key(ckp: &CertificateKeyPair) -> String {
    format!(
        "{KIND}/{}/{}",
        ckp.namespace().unwrap_or_default(),
        ckp.name_any()
    )
}

async fn publish(
    ctx: &Context,
    ckp: &CertificateKeyPair,
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
    if let Err(e) = ctx.recorder.publish(&event, &ckp.object_ref(&())).await {
        tracing::debug!(error = %e, "publishing an event failed");
    }
}
