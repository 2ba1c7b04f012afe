//! The SshKey controller (api.md section 3): decide, generate, write, report.

pub mod decide;
pub mod offline;

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::reconcile::events::EventType;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;

use crate::api::common::{CommonStatus, ConditionStatus, Target, reason};
use crate::api::ssh_key::{SshCertificateStatus, SshKey, SshKeySpec, SshKeyStatus, SshKeyType};
use crate::material::ssh::{
    SSH_CERTIFICATE, SSH_PRIVATE_KEY, SSH_PUBLIC_KEY, SshCertificate, SshKeyKind, SshKeyPair,
    SshMaterial, SshOutput, read_ssh_secret, ssh_secret_data, ssh_secret_data_is_current,
};
use crate::material::{SecretBytes, SecretString};

use super::context::Context;
use super::error::Error;
use super::outcome::{MaterialController, Outcome, common_status};
use super::resource::{
    KeysmithResource, is_ready_for_current_spec, namespace, publish, rotate_request,
    target_secret_name,
};
use super::secret::{
    GENERATED_AT_ANNOTATION, Ownership, ROTATION_TOKEN_ANNOTATION, TargetContent, annotation,
    data_of, generated_at, material_data, read_selector, read_target, write_target,
};
use super::slow::timed_generation;
use super::status::time;
use decide::{
    AuthorityState, CertificateDecision, KeyDecision, KeyInputs, SecretState,
    certificate_renewal_time, certificate_request, decide_certificate, decide_key, rotation_time,
};

/// The kind name.
pub const KIND: &str = "SshKey";
use crate::reconcile::names::PREVIOUS_SUFFIX;

impl KeysmithResource for SshKey {
    const KIND: &'static str = KIND;
    type Status = SshKeyStatus;

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

impl MaterialController for SshKey {
    type Material = SshMaterial;

    fn reconcile_material(
        &self,
        ctx: &Context,
    ) -> impl std::future::Future<Output = Result<(Outcome, Option<SshMaterial>), Error>> + Send
    {
        reconcile_material(self, ctx)
    }

    fn status_of(
        &self,
        outcome: &Outcome,
        material: Option<&SshMaterial>,
        now: SystemTime,
    ) -> SshKeyStatus {
        status_of(self, outcome, material, now)
    }
}

/// The comment of the key: `spec.comment`, default `<name>@<namespace>`.
fn comment(key: &SshKey) -> String {
    key.spec
        .comment
        .clone()
        .unwrap_or_else(|| format!("{}@{}", key.name_any(), namespace(key)))
}

/// The certificate's key id: `<namespace>/<name>`.
fn key_id(key: &SshKey) -> String {
    format!("{}/{}", namespace(key), key.name_any())
}

/// What the reconcile settled on, to write and report.
struct Settled {
    material: SshMaterial,
    revision: i64,
    rotation_token: Option<String>,
    generated_at: SystemTime,
    previous: Option<BTreeMap<String, Vec<u8>>>,
}

async fn reconcile_material(
    key: &SshKey,
    ctx: &Context,
) -> Result<(Outcome, Option<SshMaterial>), Error> {
    let namespace = namespace(key);
    let secret_name = target_secret_name(key);
    let quick = SshKeyKind::from_spec(key.spec.key.algorithm, key.spec.key.size)
        .is_ok_and(SshKeyKind::is_quick);
    let (ownership, qualified) = read_target(ctx, key, quick).await?;
    let passphrase = match &key.spec.passphrase_secret_ref {
        Some(selector) => {
            Some(read_selector(&ctx.client, &namespace, selector, "passphrase").await?)
        }
        None => None,
    };
    let authority = resolve_authority(ctx, key).await?;
    let now = ctx.clock.now();
    let decision = decide_key(KeyInputs {
        spec: &key.spec,
        rotate_request: rotate_request(key),
        secret: secret_state(&ownership, passphrase.as_ref()),
        now,
        secret_name: &qualified,
    });
    let existing_data = ownership.secret().map(data_of).unwrap_or_default();
    let kept_previous = previous_entries(&existing_data);
    let (settled, key_event) = match decision {
        KeyDecision::Conflict(message) => {
            return Ok((Outcome::not_ready(reason::SECRET_CONFLICT, message), None));
        }
        KeyDecision::Keep(pair) => {
            let current = read_ssh_secret(&existing_data, passphrase.as_ref()).ok();
            let settled = Settled {
                material: SshMaterial {
                    key: pair.with_comment(&comment(key)),
                    certificate: current.and_then(|m| m.certificate),
                },
                revision: ownership.revision(),
                rotation_token: ownership.rotation_token(),
                generated_at: generated_at(ownership.secret()).unwrap_or(now),
                previous: kept_previous,
            };
            (settled, None)
        }
        KeyDecision::Adopt(material) => {
            let settled = Settled {
                material: SshMaterial {
                    key: material.key.with_comment(&comment(key)),
                    certificate: material.certificate,
                },
                revision: 0,
                rotation_token: rotate_request(key).map(str::to_owned),
                generated_at: now,
                previous: None,
            };
            (
                settled,
                Some((
                    "Adopted",
                    format!("adopted the existing key of Secret {qualified}"),
                )),
            )
        }
        KeyDecision::Generate(why) => {
            let pair = generate(key, ctx).await?;
            let previous = why
                .is_rotation()
                .then(|| current_entries(&existing_data))
                .flatten();
            // New material answers whatever rotation was requested so far.
            let token = rotate_request(key).map(str::to_owned);
            let settled = Settled {
                material: SshMaterial {
                    key: pair,
                    certificate: None,
                },
                revision: ownership.revision() + 1,
                rotation_token: token,
                generated_at: now,
                previous: keep_previous(key).then_some(previous).flatten(),
            };
            let note = format!(
                "generated a new key into Secret {qualified}: {}",
                why.describe()
            );
            (settled, Some((why.event_reason(), note)))
        }
    };
    let mut settled = settled;
    let certificate = decide_certificate(
        &key.spec,
        &settled.material.key,
        settled.material.certificate.as_ref(),
        &authority,
        &key_id(key),
        now,
    );
    let mut waiting = None;
    match certificate {
        CertificateDecision::None => settled.material.certificate = None,
        CertificateDecision::Keep => {}
        CertificateDecision::Issue(why) => {
            let AuthorityState::Ready(ca) = &authority else {
                return Err(Error::Reference(
                    "the certificate authority is not available".to_owned(),
                ));
            };
            let request = certificate_request(&key.spec, &key_id(key), now)
                .ok_or_else(|| Error::Reference("no certificate requested".to_owned()))?;
            let certificate = SshCertificate::issue(&settled.material.key, ca, &request)
                .map_err(Error::Generate)?;
            settled.material.certificate = Some(certificate);
            if key_event.is_none() {
                publish(
                    ctx,
                    key,
                    EventType::Normal,
                    "Renewed",
                    format!("issued a new certificate into Secret {qualified}: {why}"),
                );
            }
        }
        CertificateDecision::Wait { reason, message } => {
            settled.material.certificate = None;
            waiting = Some((reason, message));
        }
    }
    write_secret(key, ctx, &ownership, &settled, passphrase.as_ref()).await?;
    if let Some((event, note)) = key_event {
        publish(ctx, key, EventType::Normal, event, note);
        tracing::info!(name = %key.name_any(), %namespace, secret = %secret_name, revision = settled.revision, "ssh key written");
    }
    let mut outcome = ready(key, &settled);
    if let Some((reason, message)) = waiting {
        outcome.ready.status = ConditionStatus::False;
        outcome.ready.reason = reason;
        outcome.ready.message = format!("the key is written; its certificate waits: {message}");
        outcome.failed = true;
    }
    Ok((outcome, Some(settled.material)))
}

fn secret_state(ownership: &Ownership, passphrase: Option<&SecretString>) -> SecretState {
    match ownership {
        Ownership::Absent => SecretState::Absent,
        Ownership::Owned(secret) | Ownership::Restored { secret, .. } => SecretState::Owned {
            material: read_ssh_secret(&data_of(secret), passphrase).map_err(|e| e.to_string()),
            rotation_token: annotation(secret, ROTATION_TOKEN_ANNOTATION),
            generated_at: generated_at(Some(secret)),
            restored: ownership.is_restored(),
        },
        Ownership::Foreign { secret, owner } => SecretState::Foreign {
            owner: owner.clone(),
            material: read_ssh_secret(&data_of(secret), passphrase).ok(),
        },
    }
}

fn keep_previous(key: &SshKey) -> bool {
    key.spec.rotation.as_ref().is_some_and(|r| r.keep_previous)
}

/// The `<key>.previous` entries of existing data, without the suffix.
fn previous_entries(data: &BTreeMap<String, Vec<u8>>) -> Option<BTreeMap<String, Vec<u8>>> {
    let previous: BTreeMap<String, Vec<u8>> = data
        .iter()
        .filter_map(|(k, v)| Some((k.strip_suffix(PREVIOUS_SUFFIX)?.to_owned(), v.clone())))
        .collect();
    (!previous.is_empty()).then_some(previous)
}

/// The current material's entries, to keep as `.previous` after a rotation.
fn current_entries(data: &BTreeMap<String, Vec<u8>>) -> Option<BTreeMap<String, Vec<u8>>> {
    let current: BTreeMap<String, Vec<u8>> = [SSH_PRIVATE_KEY, SSH_PUBLIC_KEY, SSH_CERTIFICATE]
        .into_iter()
        .filter_map(|k| Some((k.to_owned(), data.get(k)?.clone())))
        .collect();
    (!current.is_empty()).then_some(current)
}

/// The CA key of `certificate.authorityRef`, checked to be a Ready SshKey with keyType CA.
async fn resolve_authority(ctx: &Context, key: &SshKey) -> Result<AuthorityState, Error> {
    let Some(certificate) = &key.spec.certificate else {
        return Ok(AuthorityState::NotNeeded);
    };
    let namespace = namespace(key);
    let name = &certificate.authority_ref.name;
    let reference = format!("{namespace}/{name}");
    let unavailable = |reason, message| Ok(AuthorityState::Unavailable { reason, message });
    let ca = Api::<SshKey>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(name)
        .await
        .map_err(|source| Error::Read {
            what: format!("certificate authority SshKey {reference}"),
            source,
        })?;
    let Some(ca) = ca else {
        return unavailable(
            reason::REFERENCE_NOT_FOUND,
            format!("certificate authority SshKey {reference} not found"),
        );
    };
    if let Err(refused) = check_authority(&ca, &reference) {
        return Ok(refused);
    }
    if !is_ready_for_current_spec(&ca) {
        return unavailable(
            reason::REFERENCE_NOT_READY,
            format!("certificate authority SshKey {reference} is not Ready"),
        );
    }
    let secret_name = target_secret_name(&ca);
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(&secret_name)
        .await
        .map_err(|source| Error::Read {
            what: format!("Secret {namespace}/{secret_name} of {reference}"),
            source,
        })?;
    let Some(secret) = secret.filter(|s| Ownership::is_owned_by(s, &ca.uid().unwrap_or_default()))
    else {
        return unavailable(
            reason::REFERENCE_NOT_READY,
            format!("certificate authority {reference} has no Secret of its own yet"),
        );
    };
    let passphrase = match &ca.spec.passphrase_secret_ref {
        Some(selector) => {
            Some(read_selector(&ctx.client, &namespace, selector, "CA passphrase").await?)
        }
        None => None,
    };
    match read_ssh_secret(&data_of(&secret), passphrase.as_ref()) {
        Ok(material) => Ok(AuthorityState::Ready(Box::new(material.key))),
        Err(e) => unavailable(
            reason::REFERENCE_NOT_READY,
            format!("certificate authority {reference}'s key cannot be read: {e}"),
        ),
    }
}

/// Whether `ca` (`reference` = namespace/name), named in `certificate.authorityRef`, is a
/// CA key. `Err` is the state to report.
fn check_authority(ca: &SshKey, reference: &str) -> Result<(), AuthorityState> {
    if ca.spec.key_type == SshKeyType::CA {
        return Ok(());
    }
    Err(AuthorityState::Unavailable {
        reason: reason::ISSUER_NOT_CA,
        message: format!(
            "SshKey {reference} named in certificate.authorityRef has keyType {:?}, not CA",
            ca.spec.key_type
        ),
    })
}

/// Generates a key on a blocking thread (RSA takes a moment).
async fn generate(key: &SshKey, ctx: &Context) -> Result<SshKeyPair, Error> {
    let kind = SshKeyKind::from_spec(key.spec.key.algorithm, key.spec.key.size)
        .map_err(Error::Generate)?;
    let comment = comment(key);
    let algorithm = format!("{:?}-{}", kind.algorithm(), kind.size());
    timed_generation(ctx, KIND, algorithm, move || {
        SshKeyPair::generate(kind, &comment)
    })
    .await
}

async fn write_secret(
    key: &SshKey,
    ctx: &Context,
    ownership: &Ownership,
    settled: &Settled,
    passphrase: Option<&SecretString>,
) -> Result<(), Error> {
    let hostnames = host_names(&key.spec);
    let output = SshOutput {
        passphrase,
        hostnames: &hostnames,
        previous: settled.previous.as_ref(),
    };
    let existing = material_data(ownership).unwrap_or_default();
    let current = !existing.is_empty()
        && ssh_secret_data_is_current(&existing, &settled.material, &output)
            .map_err(Error::Generate)?;
    let data: BTreeMap<String, SecretBytes> = if current {
        existing
            .into_iter()
            .map(|(k, v)| (k, SecretBytes::new(v)))
            .collect()
    } else {
        ssh_secret_data(&settled.material, &output).map_err(Error::Generate)?
    };
    write_target(ctx, key, ownership, target_content(settled, data)).await
}

/// What an SshKey writes to its target Secret: `data` (as [`ssh_secret_data`] encodes the
/// material) with the Secret type, the key's fingerprint and when it was generated.
fn target_content(settled: &Settled, data: BTreeMap<String, SecretBytes>) -> TargetContent {
    TargetContent {
        type_: "kubernetes.io/ssh-auth",
        fingerprint: settled.material.key.fingerprint_sha256(),
        revision: settled.revision,
        rotation_token: settled.rotation_token.clone(),
        annotations: BTreeMap::from([(
            GENERATED_AT_ANNOTATION.to_owned(),
            time(settled.generated_at).0.to_string(),
        )]),
        data,
    }
}

/// Host keys write known_hosts entries for these names.
fn host_names(spec: &SshKeySpec) -> Vec<String> {
    match spec.key_type {
        SshKeyType::Host => spec.hostnames.clone(),
        _ => Vec::new(),
    }
}

/// Ready with the settled material; renewed at the earlier of key rotation and certificate
/// renewal.
fn ready(key: &SshKey, settled: &Settled) -> Outcome {
    let reason = if settled.revision == 0 {
        reason::ADOPTED
    } else {
        reason::GENERATED
    };
    let certificate = settled.material.certificate.as_ref();
    let message = match certificate.and_then(|c| c.info().ok()) {
        Some(info) => format!(
            "key and certificate valid until {}",
            time(info.valid_before).0
        ),
        None => "key generated".to_owned(),
    };
    let mut outcome = Outcome::ready(reason, message);
    outcome.revision = Some(settled.revision);
    outcome.rotation_token = settled.rotation_token.clone();
    let key_rotation = rotation_time(&key.spec, Some(settled.generated_at));
    let certificate_renewal = certificate.and_then(|c| certificate_renewal_time(&key.spec, c));
    outcome.next_rotation = [key_rotation, certificate_renewal]
        .into_iter()
        .flatten()
        .min();
    outcome.expires = certificate
        .and_then(|c| c.info().ok())
        .map(|i| i.valid_before);
    outcome.generated_at = Some(settled.generated_at);
    outcome
}

fn status_of(
    key: &SshKey,
    outcome: &Outcome,
    material: Option<&SshMaterial>,
    now: SystemTime,
) -> SshKeyStatus {
    let mut status = SshKeyStatus {
        common: common_status(key, outcome, now),
        ..SshKeyStatus::default()
    };
    let Some(material) = material else {
        return status;
    };
    let kind = material.key.kind();
    status.common.fingerprint = Some(material.key.fingerprint_sha256());
    status.public_key = Some(material.key.authorized_key());
    status.algorithm = Some(format!("{:?}", kind.algorithm()));
    status.size = Some(kind.size());
    status.certificate = material
        .certificate
        .as_ref()
        .and_then(|c| c.info().ok())
        .map(|info| SshCertificateStatus {
            serial: info.serial.to_string(),
            key_id: info.key_id,
            principals: info.principals,
            valid_after: time(info.valid_after),
            valid_before: time(info.valid_before),
        });
    status
}
