//! pkey_cert and cert_single: certificates decided exactly as a CertificateKeyPair's (the
//! same decide step, on the CertificateKeyPair spec the keyring params stand for), signed by
//! the issuerRef, the operator's default CA, or self-signed.

use std::collections::BTreeMap;

use crate::reconcile::events::EventType;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use crate::api::certificate_key_pair::{CertificateKeyPairSpec, KeyUsage};
use crate::api::common::reason;
use crate::api::keyring_secret::{CertModifier, KeyringSecret};
use crate::material::MaterialError;
use crate::material::encode::{CA_CRT, KeyExport, TLS_CRT, tls_secret_data};
use crate::material::parse::read_tls;
use crate::material::pkey::{KeyKind, PrivateKey};
use crate::material::x509::{TlsMaterial, issue};
use crate::reconcile::certificate_key_pair::decide::{
    Decision, Inputs, IssuerState, SecretState, decide, renewal_time,
};
use crate::reconcile::certificate_key_pair::{
    NamespaceCheck, SlowKey, resolve_ca, slow_key, still_serving, tls_material_from_secret,
};
use crate::reconcile::context::Context;
use crate::reconcile::error::Error;
use crate::reconcile::outcome::Outcome;
use crate::reconcile::resource::{is_ready_for_current_spec, namespace, publish, rotate_request};
use crate::reconcile::secret::{
    Ownership, ROTATION_TOKEN_ANNOTATION, TargetContent, annotation, read_target, write_target,
};
use crate::reconcile::slow::timed_generation;
use crate::reconcile::status::time;

use super::decide::{IssuerChoice, certificate_spec, issuer_choice};
use super::reference::{self, Found};
use super::{KIND, KeyringMaterial};

/// Where the certified key comes from.
pub(super) enum KeySource {
    /// pkey_cert: its own key, generated (and kept in its Secret).
    Own,
    /// cert_single: the pkey_cert's key, never copied into this Secret.
    Borrowed(PrivateKey),
}

type Reconciled = (Outcome, Option<KeyringMaterial>);

/// A pkey_cert: key and certificate in a `kubernetes.io/tls` Secret.
pub async fn pkey_cert(
    krs: &KeyringSecret,
    ctx: &Context,
    spec: CertificateKeyPairSpec,
    annotations: BTreeMap<String, String>,
) -> Result<Reconciled, Error> {
    let issuer = resolve_issuer(ctx, krs).await?;
    certificate(krs, ctx, &spec, issuer, KeySource::Own, annotations).await
}

/// A cert_single: a new certificate for the key of the pkey_cert `id`, with the usages of
/// `modifier`.
pub async fn cert_single(
    krs: &KeyringSecret,
    ctx: &Context,
    id: &str,
    modifier: Option<CertModifier>,
    annotations: BTreeMap<String, String>,
) -> Result<Reconciled, Error> {
    let pkey = match reference::pkey_cert(ctx, krs, id).await? {
        Found::Ready(pkey) => pkey,
        Found::Unavailable { reason, message } => {
            return Ok((Outcome::not_ready(reason, message), None));
        }
    };
    let Some(params) = pkey.resource.spec.params.pkey_cert.as_ref() else {
        return Ok((
            Outcome::not_ready(
                reason::REFERENCE_NOT_FOUND,
                format!("pkey_cert {id:?} has no params.pkey_cert"),
            ),
            None,
        ));
    };
    let spec = certificate_spec(&krs.spec, params, Some(modifier));
    let issuer = resolve_issuer(ctx, krs).await?;
    let key = KeySource::Borrowed(pkey.material.key.clone());
    certificate(krs, ctx, &spec, issuer, key, annotations).await
}

/// The CA that signs: issuerRef, else the operator's default CA, else none (self-signed).
async fn resolve_issuer(ctx: &Context, krs: &KeyringSecret) -> Result<IssuerState, Error> {
    let own = namespace(krs);
    let choice = issuer_choice(
        krs.spec.issuer_ref.as_ref(),
        &own,
        ctx.settings.default_issuer.as_ref(),
    );
    match choice {
        IssuerChoice::SelfSigned => Ok(IssuerState::SelfSigned),
        IssuerChoice::Referenced(ns, name) => {
            resolve_ca(
                &ctx.client,
                &ctx.settings,
                &own,
                (ns, name),
                NamespaceCheck::CaPolicy,
            )
            .await
        }
        IssuerChoice::OperatorDefault(ns, name) => {
            let state = resolve_ca(
                &ctx.client,
                &ctx.settings,
                &own,
                (ns, name),
                NamespaceCheck::OperatorDefault,
            )
            .await?;
            Ok(as_default_issuer(state))
        }
    }
}

/// The state of the operator's default CA, with a message that says it is that one.
pub(super) fn as_default_issuer(state: IssuerState) -> IssuerState {
    match state {
        IssuerState::Unavailable { reason, message } => IssuerState::Unavailable {
            reason,
            message: format!("the operator's default CA (--default-issuer): {message}"),
        },
        other => other,
    }
}

async fn certificate(
    krs: &KeyringSecret,
    ctx: &Context,
    spec: &CertificateKeyPairSpec,
    issuer: IssuerState,
    key: KeySource,
    annotations: BTreeMap<String, String>,
) -> Result<Reconciled, Error> {
    let ns = namespace(krs);
    let quick = match &key {
        KeySource::Borrowed(_) => true,
        KeySource::Own => KeyKind::from_spec(spec.private_key.algorithm, spec.private_key.size)
            .is_ok_and(KeyKind::is_quick),
    };
    let (ownership, qualified) = read_target(ctx, krs, quick).await?;
    let decision = decide(Inputs {
        spec,
        rotate_request: rotate_request(krs),
        secret: secret_state(&ownership, &key),
        issuer: &issuer,
        now: ctx.clock.now(),
        secret_name: &qualified,
        spec_settled: is_ready_for_current_spec(krs),
    });
    let previous = ownership.revision();
    let token = ownership.rotation_token();
    let write = |material: TlsMaterial, revision: i64, token: Option<String>| {
        let annotations = annotations.clone();
        let export = export_of(&key);
        let ownership = &ownership;
        async move {
            write_secret(
                krs,
                ctx,
                ownership,
                spec,
                &material,
                export,
                revision,
                token.clone(),
                annotations,
            )
            .await?;
            Ok::<_, Error>(ready(spec, material, revision, token))
        }
    };
    match decision {
        Decision::Keep(material) => write(*material, previous, token).await,
        Decision::Adopt(material) => {
            let token = rotate_request(krs).map(str::to_owned);
            let result = write(*material, 0, token).await?;
            let note = format!("adopted the existing certificate of Secret {qualified}");
            publish(ctx, krs, EventType::Normal, "Adopted", note);
            Ok(result)
        }
        Decision::Issue {
            reason: why,
            reuse_key,
        } => {
            let key = match (&key, reuse_key) {
                (KeySource::Borrowed(key), _) => key.clone(),
                (KeySource::Own, Some(key)) => key,
                (KeySource::Own, None) => match new_key(krs, ctx, spec).await? {
                    Ok(key) => key,
                    Err(progress) => {
                        let current = ownership
                            .secret()
                            .and_then(|s| tls_material_from_secret(s, None).ok());
                        let serving = still_serving(&why, current, ctx.clock.now());
                        let Some(material) = serving else {
                            return Ok((Outcome::generating(progress), None));
                        };
                        let (mut outcome, material) = ready(spec, material, previous, token);
                        outcome.generating = Some(progress);
                        return Ok((outcome, material));
                    }
                },
            };
            let signer = match &issuer {
                IssuerState::Ready(m) => Some(m.as_ref().clone()),
                _ => None,
            };
            let material = sign(spec, key, signer, ctx).await?;
            let revision = previous + 1;
            let token = rotate_request(krs).map(str::to_owned);
            let result = write(material, revision, token).await?;
            let note = format!(
                "issued a new certificate into Secret {qualified}: {}",
                why.describe()
            );
            publish(ctx, krs, EventType::Normal, why.event_reason(), note);
            tracing::info!(name = %krs.name_any(), namespace = %ns, secret = %qualified, revision, "keyring certificate issued");
            Ok(result)
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
            let (mut outcome, material) = ready(spec, *material, previous, token);
            outcome.ready.message = format!("{}; renewal waits: {message}", outcome.ready.message);
            outcome.failed = true;
            Ok((outcome, material))
        }
        Decision::Expired { message } => Ok((Outcome::not_ready(reason::EXPIRED, message), None)),
    }
}

pub(super) fn export_of(key: &KeySource) -> KeyExport {
    match key {
        KeySource::Own => KeyExport::Included,
        KeySource::Borrowed(_) => KeyExport::Omitted,
    }
}

/// The target Secret's material: with its own `tls.key` (pkey_cert), or with the borrowed
/// key (cert_single, whose Secret holds only certificates).
pub(super) fn secret_state(ownership: &Ownership, key: &KeySource) -> SecretState {
    let read = |secret: &Secret| match key {
        KeySource::Own => tls_material_from_secret(secret, None),
        KeySource::Borrowed(key) => certificates_for(secret, key),
    };
    match ownership {
        Ownership::Absent => SecretState::Absent,
        Ownership::Owned(secret) | Ownership::Restored { secret, .. } => SecretState::Owned {
            material: read(secret),
            rotation_token: annotation(secret, ROTATION_TOKEN_ANNOTATION),
            restored: ownership.is_restored(),
        },
        Ownership::Foreign { secret, owner } => SecretState::Foreign {
            owner: owner.clone(),
            material: read(secret).ok(),
        },
    }
}

/// `tls.crt` and `ca.crt` of a cert_single Secret, read as certificates of `key`.
fn certificates_for(secret: &Secret, key: &PrivateKey) -> Result<TlsMaterial, String> {
    let data = secret.data.as_ref();
    let get = |k: &str| data.and_then(|d| d.get(k)).map(|b| b.0.as_slice());
    let crt = get(TLS_CRT).ok_or("tls.crt is missing")?;
    read_tls(crt, key.clone(), get(CA_CRT)).map_err(|e| e.to_string())
}

/// A new key for a pkey_cert; RSA 8192 as a tracked slow task (`Err(progress)` while it
/// runs).
async fn new_key(
    krs: &KeyringSecret,
    ctx: &Context,
    spec: &CertificateKeyPairSpec,
) -> Result<Result<PrivateKey, String>, Error> {
    let kind = KeyKind::from_spec(spec.private_key.algorithm, spec.private_key.size)
        .map_err(Error::Generate)?;
    let label = format!("{:?}-{}", kind.algorithm(), kind.size());
    match slow_key(ctx, krs, kind)? {
        SlowKey::Ready(key) => return Ok(Ok(key)),
        SlowKey::Running(progress) => return Ok(Err(progress)),
        SlowKey::NotSlow => {}
    }
    let key = timed_generation(ctx, KIND, label, move || PrivateKey::generate(kind)).await?;
    Ok(Ok(key))
}

/// Issues the certificate on a blocking thread (RSA signatures take a moment).
async fn sign(
    spec: &CertificateKeyPairSpec,
    key: PrivateKey,
    issuer: Option<TlsMaterial>,
    ctx: &Context,
) -> Result<TlsMaterial, Error> {
    let spec = spec.clone();
    let now = ctx.clock.now();
    tokio::task::spawn_blocking(move || issue(&spec, key, issuer.as_ref(), now))
        .await
        .map_err(|e| Error::Generate(MaterialError::Crypto(format!("signing task failed: {e}"))))?
        .map_err(Error::Generate)
}

#[allow(clippy::too_many_arguments)]
async fn write_secret(
    krs: &KeyringSecret,
    ctx: &Context,
    ownership: &Ownership,
    spec: &CertificateKeyPairSpec,
    material: &TlsMaterial,
    export: KeyExport,
    revision: i64,
    rotation_token: Option<String>,
    annotations: BTreeMap<String, String>,
) -> Result<(), Error> {
    let content = target_content(
        spec,
        material,
        export,
        (revision, rotation_token),
        annotations,
    )
    .map_err(Error::Generate)?;
    write_target(ctx, krs, ownership, content).await
}

/// What a pkey_cert (key `Included`) or cert_single (`Omitted`) writes to its target
/// Secret: the TLS data of `material`, the type, the certificate's fingerprint, the
/// `(revision, rotation token)` and the kind's `annotations`.
pub(super) fn target_content(
    spec: &CertificateKeyPairSpec,
    material: &TlsMaterial,
    export: KeyExport,
    (revision, rotation_token): (i64, Option<String>),
    annotations: BTreeMap<String, String>,
) -> Result<TargetContent, MaterialError> {
    let data = tls_secret_data(material, spec, export, None)?;
    Ok(TargetContent {
        type_: match export {
            KeyExport::Included => "kubernetes.io/tls",
            KeyExport::Omitted => "Opaque",
        },
        fingerprint: KeyringMaterial::Certificate(material.clone()).fingerprint(),
        revision,
        rotation_token,
        annotations,
        data,
    })
}

/// Ready with the certificate now in the Secret, renewed at its renewal time.
fn ready(
    spec: &CertificateKeyPairSpec,
    material: TlsMaterial,
    revision: i64,
    rotation_token: Option<String>,
) -> Reconciled {
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
    let profile = profile_words(&spec.usages);
    let mut outcome = Outcome::ready(reason, format!("{profile}certificate valid until {until}"));
    outcome.revision = Some(revision);
    outcome.rotation_token = rotation_token;
    outcome.expires = info.as_ref().map(|i| i.not_after);
    outcome.next_rotation = renewal_time(spec, &material);
    outcome.generated_at = info.as_ref().map(|i| i.not_before);
    (outcome, Some(KeyringMaterial::Certificate(material)))
}

fn profile_words(usages: &[KeyUsage]) -> &'static str {
    if usages.contains(&KeyUsage::ServerAuth) {
        "server "
    } else if usages.contains(&KeyUsage::ClientAuth) {
        "client "
    } else {
        ""
    }
}
