//! An SshKey's Secret without a cluster (`keysmith generate`): the controller's decide
//! steps for the key and its certificate, the same generation, signing and Secret encoding;
//! the passphrase Secret and the CA key must be in the input.

use std::time::SystemTime;

use crate::api::common::reason;
use crate::api::ssh_key::SshKey;
use crate::material::ssh::{
    SshCertificate, SshKeyKind, SshKeyPair, SshMaterial, SshOutput, ssh_secret_data,
};
use crate::reconcile::offline::{self, Lookup, Offline, OfflineError};
use crate::reconcile::resource::{namespace, rotate_request};
use crate::reconcile::secret::Ownership;

use super::decide::{
    AuthorityState, CertificateDecision, KeyDecision, KeyInputs, certificate_request,
    decide_certificate, decide_key,
};
use super::{Settled, check_authority, comment, host_names, key_id, secret_state, target_content};

/// Generates the key (and certificate) of `key` as its controller would on a cluster where
/// the target Secret is what the input holds.
pub fn generate(
    key: &SshKey,
    lookup: &mut impl Lookup,
) -> Result<Offline<SshKeyPair>, OfflineError> {
    let ns = namespace(key);
    let passphrase = match &key.spec.passphrase_secret_ref {
        Some(selector) => Some(offline::read_selector(
            lookup,
            &ns,
            selector,
            "passphrase",
            "spec.passphraseSecretRef",
        )?),
        None => None,
    };
    let authority = authority(key, lookup)?;
    let (ownership, qualified) = offline::target(key, lookup)?;
    let now = lookup.now();
    let decision = decide_key(KeyInputs {
        spec: &key.spec,
        rotate_request: rotate_request(key),
        secret: secret_state(&ownership, passphrase.as_ref()),
        now,
        secret_name: &qualified,
    });
    let mut settled = settle(key, decision, &ownership, &qualified, now)?;
    settled.material.certificate = certificate(key, &settled.material, &authority, now)?;
    let hostnames = host_names(&key.spec);
    let output = SshOutput {
        passphrase: passphrase.as_ref(),
        hostnames: &hostnames,
        previous: None,
    };
    let data = ssh_secret_data(&settled.material, &output)?;
    let content = target_content(&settled, data);
    Ok(Offline {
        secret: offline::written(key, content, ownership.secret()),
        material: settled.material.key,
    })
}

/// The key the decision settles on: adopted from the Secret of the input, or new.
fn settle(
    key: &SshKey,
    decision: KeyDecision,
    ownership: &Ownership,
    qualified: &str,
    now: SystemTime,
) -> Result<Settled, OfflineError> {
    let token = rotate_request(key).map(str::to_owned);
    match decision {
        KeyDecision::Conflict(message) => {
            Err(OfflineError::not_ready(reason::SECRET_CONFLICT, message))
        }
        KeyDecision::Keep(_) => Err(OfflineError::Input(format!(
            "Secret {qualified} already holds this resource's key"
        ))),
        KeyDecision::Adopt(material) => Ok(Settled {
            material: SshMaterial {
                key: material.key.with_comment(&comment(key)),
                certificate: material.certificate,
            },
            revision: 0,
            rotation_token: token,
            generated_at: now,
            previous: None,
        }),
        KeyDecision::Generate(_) => {
            let kind = SshKeyKind::from_spec(key.spec.key.algorithm, key.spec.key.size)?;
            Ok(Settled {
                material: SshMaterial {
                    key: SshKeyPair::generate(kind, &comment(key))?,
                    certificate: None,
                },
                revision: ownership.revision() + 1,
                rotation_token: token,
                generated_at: now,
                previous: None,
            })
        }
    }
}

/// The certificate of the settled key, as the controller decides it.
fn certificate(
    key: &SshKey,
    material: &SshMaterial,
    authority: &AuthorityState,
    now: SystemTime,
) -> Result<Option<SshCertificate>, OfflineError> {
    let decision = decide_certificate(
        &key.spec,
        &material.key,
        material.certificate.as_ref(),
        authority,
        &key_id(key),
        now,
    );
    match decision {
        CertificateDecision::None => Ok(None),
        CertificateDecision::Keep => Ok(material.certificate.clone()),
        CertificateDecision::Wait { reason, message } => Err(OfflineError::not_ready(
            reason,
            format!("the key is written; its certificate waits: {message}"),
        )),
        CertificateDecision::Issue(_) => {
            let AuthorityState::Ready(ca) = authority else {
                return Err(OfflineError::not_ready(
                    reason::REFERENCE_NOT_FOUND,
                    "the certificate authority is not available",
                ));
            };
            let request = certificate_request(&key.spec, &key_id(key), now).ok_or_else(|| {
                OfflineError::not_ready(reason::REFERENCE_NOT_FOUND, "no certificate requested")
            })?;
            Ok(Some(SshCertificate::issue(&material.key, ca, &request)?))
        }
    }
}

/// The CA key of `certificate.authorityRef`: an SshKey of the input, checked as the
/// controller checks it and generated first.
fn authority(key: &SshKey, lookup: &mut impl Lookup) -> Result<AuthorityState, OfflineError> {
    let Some(certificate) = &key.spec.certificate else {
        return Ok(AuthorityState::NotNeeded);
    };
    let ns = namespace(key);
    let name = &certificate.authority_ref.name;
    let reference = format!("{ns}/{name}");
    let Some(ca) = lookup.ssh_key(&ns, name) else {
        return Err(OfflineError::not_in_input(
            "spec.certificate.authorityRef",
            format!("signing by the certificate authority SshKey {reference}"),
        ));
    };
    if let Err(refused) = check_authority(&ca, &reference) {
        return Ok(refused);
    }
    Ok(match lookup.ssh_key_pair(&ns, name) {
        Ok(pair) => AuthorityState::Ready(Box::new(pair)),
        Err(e) => AuthorityState::Unavailable {
            reason: reason::REFERENCE_NOT_READY,
            message: format!("certificate authority SshKey {reference} is not Ready: {e}"),
        },
    })
}
