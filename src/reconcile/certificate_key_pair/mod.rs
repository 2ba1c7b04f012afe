//! The CertificateKeyPair controller (api.md section 2): decide, generate, write, report.

pub mod decide;
mod issuer;
pub mod key_store;
pub mod offline;

pub use issuer::{
    NamespaceCheck, chain_reaches, check_ca, issuer_key, issuer_loop_message, resolve_ca,
};

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::reconcile::events::EventType;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use crate::api::certificate_key_pair::{
    CertificateFingerprints, CertificateKeyPair, CertificateKeyPairStatus, PrivateKeyExport,
    PrivateKeyStatus,
};
use crate::api::common::{CommonStatus, Target, reason};
use crate::material::encode::{KeyExport, tls_secret_data, tls_secret_data_is_current};
use crate::material::fingerprint::sha256_tagged;
use crate::material::pkey::{KeyKind, PrivateKey};
use crate::material::x509::{TlsMaterial, issue};
use crate::material::{MaterialError, SecretBytes, SecretString};

use super::context::Context;
pub use super::error::Error;
use super::outcome::{MaterialController, Outcome, common_status};
use super::resource::{
    KeysmithResource, is_ready_for_current_spec, namespace, publish, rotate_request,
    target_secret_name,
};
use super::secret::{
    Ownership, ROTATION_TOKEN_ANNOTATION, TargetContent, annotation, material_data, read_selector,
    read_target, write_target,
};
use super::slow::{Poll, timed_generation, tracked};
use super::status::time;
use decide::{Decision, Inputs, IssueReason, IssuerState, SecretState, decide, renewal_time};
use key_store::{KeySecret, KeyUse};

/// The kind name.
pub const KIND: &str = "CertificateKeyPair";

impl KeysmithResource for CertificateKeyPair {
    const KIND: &'static str = KIND;
    type Status = CertificateKeyPairStatus;

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

impl MaterialController for CertificateKeyPair {
    type Material = TlsMaterial;

    fn reconcile_material(
        &self,
        ctx: &Context,
    ) -> impl std::future::Future<Output = Result<(Outcome, Option<TlsMaterial>), Error>> + Send
    {
        reconcile_material(self, ctx)
    }

    fn status_of(
        &self,
        outcome: &Outcome,
        material: Option<&TlsMaterial>,
        now: SystemTime,
    ) -> CertificateKeyPairStatus {
        status_of(self, outcome, material, now)
    }

    /// The key Secret goes (or stays) with the target Secret, by `deletionPolicy`.
    async fn clean_up(&self, ctx: &Context) -> Result<(), Error> {
        key_store::clean_up(&ctx.client, &ctx.settings.key_namespace, self).await
    }
}

/// Decides, generates and writes; returns the outcome and the material now in the Secret.
async fn reconcile_material(
    ckp: &CertificateKeyPair,
    ctx: &Context,
) -> Result<(Outcome, Option<TlsMaterial>), Error> {
    let namespace = namespace(ckp);
    let secret_name = target_secret_name(ckp);
    // A non-exportable key is stored (server-side applied) before the target Secret is
    // written: a wrong guess that the target is absent would replace that key before the
    // create failed, so those always read the target first.
    let quick = matches!(key_export(ckp), KeyExport::Included)
        && key_kind(ckp).is_ok_and(KeyKind::is_quick);
    let (ownership, qualified) = read_target(ctx, ckp, quick).await?;
    let key_namespace = ctx.settings.key_namespace.as_str();
    // The store also holds the key right after export was allowed again, until the target
    // Secret has it.
    let target_has_key = ownership
        .secret()
        .and_then(|s| s.data.as_ref())
        .is_some_and(|d| d.contains_key("tls.key"));
    let needs_store = match (key_export(ckp), &ownership) {
        (KeyExport::Omitted, _) => true,
        (KeyExport::Included, Ownership::Owned(_) | Ownership::Restored { .. }) => !target_has_key,
        _ => false,
    };
    let restored_uid = match &ownership {
        Ownership::Restored { previous_uid, .. } => Some(previous_uid.as_str()),
        _ => None,
    };
    let stored_key = if needs_store {
        let found = key_store::find(&ctx.client, key_namespace, ckp, restored_uid).await?;
        match key_store::key_use(found, &ckp.uid().unwrap_or_default(), restored_uid) {
            KeyUse::None => None,
            KeyUse::Usable(key) => Some(*key),
            KeyUse::Conflict(message) => {
                return Ok((Outcome::not_ready(reason::SECRET_CONFLICT, message), None));
            }
        }
    } else {
        None
    };
    let key_secret = stored_key.as_ref().map(|k| &k.secret);
    let issuer = issuer::resolve(&ctx.client, &ctx.settings, ckp).await?;
    let decision = decide(Inputs {
        spec: &ckp.spec,
        rotate_request: rotate_request(ckp),
        secret: secret_state(&ownership, key_secret),
        issuer: &issuer,
        now: ctx.clock.now(),
        secret_name: &qualified,
        spec_settled: is_ready_for_current_spec(ckp),
    });
    let previous = ownership.revision();
    let token = ownership.rotation_token();
    match decision {
        Decision::Keep(material) => {
            write_secret(
                ckp,
                ctx,
                &ownership,
                stored_key.as_ref(),
                &material,
                previous,
                token.clone(),
            )
            .await?;
            Ok(ready(ckp, *material, previous, token))
        }
        Decision::Adopt(material) => {
            // Adopted material was not generated by keysmith: revision 0 until it renews it.
            let token = rotate_request(ckp).map(str::to_owned);
            write_secret(
                ckp,
                ctx,
                &ownership,
                stored_key.as_ref(),
                &material,
                0,
                token.clone(),
            )
            .await?;
            let note = format!("adopted the existing material of Secret {qualified}");
            publish(ctx, ckp, EventType::Normal, "Adopted", note);
            Ok(ready(ckp, *material, 0, token))
        }
        Decision::Issue {
            reason: why,
            reuse_key,
        } => {
            let signer = match &issuer {
                IssuerState::Ready(m) => Some(m.as_ref().clone()),
                _ => None,
            };
            let reuse_key = match reuse_key {
                Some(key) => Some(key),
                None => match slow_key(ctx, ckp, key_kind(ckp)?)? {
                    SlowKey::NotSlow => None,
                    SlowKey::Ready(key) => Some(key),
                    SlowKey::Running(progress) => {
                        let current = ownership
                            .secret()
                            .and_then(|s| tls_material_from_secret(s, key_secret).ok());
                        let serving = still_serving(&why, current, ctx.clock.now());
                        let Some(material) = serving else {
                            return Ok((Outcome::generating(progress), None));
                        };
                        let (mut outcome, material) = ready(ckp, material, previous, token);
                        outcome.generating = Some(progress);
                        return Ok((outcome, material));
                    }
                },
            };
            let material = generate(ckp, ctx, reuse_key, signer).await?;
            let revision = previous + 1;
            // New material answers whatever rotation was requested so far.
            let token = rotate_request(ckp).map(str::to_owned);
            write_secret(
                ckp,
                ctx,
                &ownership,
                stored_key.as_ref(),
                &material,
                revision,
                token.clone(),
            )
            .await?;
            let note = format!(
                "issued a new certificate into Secret {qualified}: {}",
                why.describe()
            );
            publish(ctx, ckp, EventType::Normal, why.event_reason(), note);
            tracing::info!(name = %ckp.name_any(), %namespace, secret = %secret_name, revision, cause = %why.describe(), "certificate issued");
            Ok(ready(ckp, material, revision, token))
        }
        Decision::Conflict(message) => {
            Ok((Outcome::not_ready(reason::SECRET_CONFLICT, message), None))
        }
        Decision::WaitForIssuer {
            reason,
            message,
            current: None,
        } => Ok((Outcome::not_ready(reason, message), None)),
        Decision::WaitForIssuer {
            message,
            current: Some(material),
            ..
        } => {
            let (mut outcome, material) = ready(ckp, *material, previous, token);
            outcome.ready.message = format!("{}; renewal waits: {message}", outcome.ready.message);
            outcome.failed = true;
            Ok((outcome, material))
        }
        Decision::Expired { message } => Ok((Outcome::not_ready(reason::EXPIRED, message), None)),
    }
}

/// What decide sees of the target Secret `ownership` (with the key from `key_secret` when
/// the key is not exported).
pub fn secret_state(ownership: &Ownership, key_secret: Option<&Secret>) -> SecretState {
    match ownership {
        Ownership::Absent => SecretState::Absent,
        Ownership::Owned(secret) | Ownership::Restored { secret, .. } => SecretState::Owned {
            material: tls_material_from_secret(secret, key_secret),
            rotation_token: annotation(secret, ROTATION_TOKEN_ANNOTATION),
            restored: ownership.is_restored(),
        },
        Ownership::Foreign { secret, owner } => SecretState::Foreign {
            owner: owner.clone(),
            material: tls_material_from_secret(secret, None).ok(),
        },
    }
}

/// A new key that takes long (RSA 8192), generated as a tracked slow task.
pub enum SlowKey {
    /// Not a slow key: generate it with the certificate.
    NotSlow,
    /// The task finished.
    Ready(PrivateKey),
    /// The task runs: its progress.
    Running(String),
}

/// A new key of `kind` for `object`: RSA 8192 as a tracked slow task.
pub fn slow_key<K: KeysmithResource>(
    ctx: &Context,
    object: &K,
    kind: KeyKind,
) -> Result<SlowKey, Error> {
    if !kind.is_slow() {
        return Ok(SlowKey::NotSlow);
    }
    let job = format!("an RSA {} key", kind.size());
    let algorithm = format!("{:?}-{}", kind.algorithm(), kind.size());
    match tracked(ctx, object, &job, algorithm, move |_| {
        PrivateKey::generate(kind)
    }) {
        Poll::Running(progress) => Ok(SlowKey::Running(progress)),
        Poll::Finished(key) => key.map(SlowKey::Ready).map_err(Error::Generate),
    }
}

/// The certificate that stays Ready while a new key is generated: the current one, when
/// the new one is a renewal or rotation (not a spec change) and it has not expired.
pub fn still_serving(
    why: &IssueReason,
    current: Option<TlsMaterial>,
    now: SystemTime,
) -> Option<TlsMaterial> {
    if !matches!(
        why,
        IssueReason::RenewalDue | IssueReason::RotationRequested
    ) {
        return None;
    }
    current.filter(|m| {
        m.chain
            .first()
            .and_then(|c| c.info().ok())
            .is_some_and(|i| i.not_after > now)
    })
}

fn key_kind(ckp: &CertificateKeyPair) -> Result<KeyKind, Error> {
    KeyKind::from_spec(ckp.spec.private_key.algorithm, ckp.spec.private_key.size)
        .map_err(Error::Generate)
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
    let kind = KeyKind::from_spec(spec.private_key.algorithm, spec.private_key.size)
        .map_err(Error::Generate)?;
    let algorithm = format!("{:?}-{}", kind.algorithm(), kind.size());
    timed_generation(ctx, KIND, algorithm, move || {
        let key = match reuse_key {
            Some(key) => key,
            None => PrivateKey::generate(kind)?,
        };
        issue(&spec, key, issuer.as_ref(), now)
    })
    .await
}

/// `kubernetes.io/tls`, which the API server only accepts with a `tls.key`: without the
/// exported key the Secret is `Opaque`.
fn secret_type(ckp: &CertificateKeyPair) -> &'static str {
    match key_export(ckp) {
        KeyExport::Included => "kubernetes.io/tls",
        KeyExport::Omitted => "Opaque",
    }
}

/// Whether the key goes into the target Secret (`privateKeyExport`).
pub fn key_export(ckp: &CertificateKeyPair) -> KeyExport {
    match ckp.spec.private_key_export {
        PrivateKeyExport::Allowed => KeyExport::Included,
        PrivateKeyExport::Denied => KeyExport::Omitted,
    }
}

/// Stores a non-exportable key first, then writes the target Secret unless it already holds
/// exactly what keysmith wants.
async fn write_secret(
    ckp: &CertificateKeyPair,
    ctx: &Context,
    ownership: &Ownership,
    stored_key: Option<&KeySecret>,
    material: &TlsMaterial,
    revision: i64,
    rotation_token: Option<String>,
) -> Result<(), Error> {
    if key_export(ckp) == KeyExport::Omitted {
        // The key first: a target Secret without its key in the store would lose it.
        let namespace = ctx.settings.key_namespace.as_str();
        key_store::write(&ctx.client, namespace, ckp, &material.key, stored_key).await?;
    }
    let password = match ckp.spec.keystores.as_ref().and_then(|k| k.pkcs12.as_ref()) {
        Some(p12) => {
            let ns = namespace(ckp);
            Some(
                read_selector(
                    &ctx.client,
                    &ns,
                    &p12.password_secret_ref,
                    "keystore password",
                )
                .await?,
            )
        }
        None => None,
    };
    let data = secret_data(ckp, material_data(ownership), material, password).await?;
    let content = target_content(ckp, material, data, revision, rotation_token);
    write_target(ctx, ckp, ownership, content).await
}

/// What a CertificateKeyPair writes to its target Secret: `data` (as
/// [`tls_secret_data`] encodes the material) with the Secret type and the certificate's
/// fingerprint.
pub fn target_content(
    ckp: &CertificateKeyPair,
    material: &TlsMaterial,
    data: BTreeMap<String, SecretBytes>,
    revision: i64,
    rotation_token: Option<String>,
) -> TargetContent {
    TargetContent {
        type_: secret_type(ckp),
        fingerprint: fingerprint(material),
        revision,
        rotation_token,
        annotations: BTreeMap::new(),
        data,
    }
}

/// The data to write: the existing data when it already encodes this material (PKCS#12
/// files carry random salts, so they are compared by content), else a fresh encoding. Runs
/// on a blocking thread: opening and writing keystores costs PBKDF2 rounds.
async fn secret_data(
    ckp: &CertificateKeyPair,
    existing: Option<BTreeMap<String, Vec<u8>>>,
    material: &TlsMaterial,
    password: Option<SecretString>,
) -> Result<BTreeMap<String, SecretBytes>, Error> {
    let spec = ckp.spec.clone();
    let export = key_export(ckp);
    let material = material.clone();
    tokio::task::spawn_blocking(move || {
        let password = password.as_ref();
        if let Some(plain) = existing
            && tls_secret_data_is_current(&plain, &material, &spec, export, password)?
        {
            return Ok(plain
                .into_iter()
                .map(|(k, v)| (k, SecretBytes::new(v)))
                .collect());
        }
        tls_secret_data(&material, &spec, export, password)
    })
    .await
    .map_err(|e| Error::Generate(MaterialError::Crypto(format!("encoding task failed: {e}"))))?
    .map_err(Error::Generate)
}

fn fingerprint(material: &TlsMaterial) -> String {
    material
        .chain
        .first()
        .map(|c| sha256_tagged(c.der()))
        .unwrap_or_default()
}

/// Ready with the material now in the Secret, renewed at its renewal time.
fn ready(
    ckp: &CertificateKeyPair,
    material: TlsMaterial,
    revision: i64,
    rotation_token: Option<String>,
) -> (Outcome, Option<TlsMaterial>) {
    let info = material.chain.first().and_then(|c| c.info().ok());
    let until = info
        .as_ref()
        .map(|i| time(i.not_after).0.to_string())
        .unwrap_or_default();
    let reason = if revision == 0 {
        reason::ADOPTED
    } else {
        reason::ISSUED
    };
    let mut outcome = Outcome::ready(reason, format!("certificate valid until {until}"));
    outcome.revision = Some(revision);
    outcome.rotation_token = rotation_token;
    outcome.expires = info.as_ref().map(|i| i.not_after);
    outcome.next_rotation = renewal_time(&ckp.spec, &material);
    outcome.generated_at = info.as_ref().map(|i| i.not_before);
    (outcome, Some(material))
}

/// The status: the common fields from the outcome, the certificate's from the material.
fn status_of(
    ckp: &CertificateKeyPair,
    outcome: &Outcome,
    material: Option<&TlsMaterial>,
    now: SystemTime,
) -> CertificateKeyPairStatus {
    let mut status = CertificateKeyPairStatus {
        common: common_status(ckp, outcome, now),
        ..CertificateKeyPairStatus::default()
    };
    let Some(material) = material else {
        return status;
    };
    let Some(leaf) = material.chain.first() else {
        return status;
    };
    let Ok(info) = leaf.info() else {
        return status;
    };
    let issuing = material.chain.get(1).unwrap_or(&material.ca);
    let kind = material.key.kind();
    status.common.fingerprint = Some(sha256_tagged(leaf.der()));
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
