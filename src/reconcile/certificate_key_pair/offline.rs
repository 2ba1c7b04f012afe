//! A CertificateKeyPair's Secret without a cluster (`keysmith generate`): the controller's
//! decide step on the target Secret of the input, the same key generation, issuance and
//! Secret encoding; the issuer must be a CA of the input.

use std::time::SystemTime;

use kube::ResourceExt;

use crate::api::certificate_key_pair::{CertificateKeyPair, CertificateKeyPairSpec};
use crate::api::common::reason;
use crate::material::SecretString;
use crate::material::encode::{KeyExport, tls_secret_data};
use crate::material::pkey::PrivateKey;
use crate::material::x509::{TlsMaterial, issue};
use crate::reconcile::offline::{self, Lookup, Offline, OfflineError};
use crate::reconcile::resource::{namespace, rotate_request};

use super::decide::{Decision, Inputs, IssuerState, decide};
use super::{KIND, NamespaceCheck, check_ca, issuer_key, issuer_loop_message};
use super::{key_export, key_kind, secret_state, target_content};

/// Generates the key and certificate of `ckp` as its controller would on a cluster where
/// the target Secret is what the input holds.
pub fn generate(
    ckp: &CertificateKeyPair,
    lookup: &mut impl Lookup,
) -> Result<Offline<TlsMaterial>, OfflineError> {
    if key_export(ckp) == KeyExport::Omitted {
        return Err(OfflineError::needs_cluster(
            "spec.privateKeyExport",
            "Denied: a key Secret in the operator's namespace, named after the resource's uid,",
        ));
    }
    let issuer = issuer_state(ckp, lookup)?;
    let password = keystore_password(ckp, lookup)?;
    let (ownership, qualified) = offline::target(ckp, lookup)?;
    let now = lookup.now();
    let decision = decide(Inputs {
        spec: &ckp.spec,
        rotate_request: rotate_request(ckp),
        secret: secret_state(&ownership, None),
        issuer: &issuer,
        now,
        secret_name: &qualified,
        spec_settled: true,
    });
    let token = rotate_request(ckp).map(str::to_owned);
    let new_key = |reuse: Option<PrivateKey>| match reuse {
        Some(key) => Ok(key),
        None => Ok(PrivateKey::generate(key_kind(ckp)?)?),
    };
    let (material, revision) = settle(
        decision,
        (&ckp.spec, &issuer),
        new_key,
        (ownership.revision(), now),
        &qualified,
    )?;
    let data = tls_secret_data(&material, &ckp.spec, key_export(ckp), password.as_ref())?;
    let content = target_content(ckp, &material, data, revision, token);
    Ok(Offline {
        secret: offline::written(ckp, content, ownership.secret()),
        material,
    })
}

/// The material a certificate decision settles on offline, with its revision: issued now
/// by `issuer` for `spec`, with the key `key` returns (given the key the decision keeps, if
/// any), or adopted from the Secret of the input. `previous` is the revision of that
/// Secret. Every other decision is the error the controller reports.
pub fn settle(
    decision: Decision,
    (spec, issuer): (&CertificateKeyPairSpec, &IssuerState),
    key: impl FnOnce(Option<PrivateKey>) -> Result<PrivateKey, OfflineError>,
    (previous, now): (i64, SystemTime),
    qualified: &str,
) -> Result<(TlsMaterial, i64), OfflineError> {
    match decision {
        Decision::Issue { reuse_key, .. } => {
            let signer = match issuer {
                IssuerState::Ready(ca) => Some(ca.as_ref()),
                _ => None,
            };
            Ok((issue(spec, key(reuse_key)?, signer, now)?, previous + 1))
        }
        Decision::Adopt(material) => Ok((*material, 0)),
        Decision::Keep(_) => Err(OfflineError::Input(format!(
            "Secret {qualified} already holds this resource's material"
        ))),
        Decision::Conflict(message) => {
            Err(OfflineError::not_ready(reason::SECRET_CONFLICT, message))
        }
        Decision::WaitForIssuer {
            reason, message, ..
        } => Err(OfflineError::not_ready(reason, message)),
        Decision::Expired { message } => Err(OfflineError::not_ready(reason::EXPIRED, message)),
    }
}

/// The issuer of `ckp`: self-signed, or its issuerRef, which must be in the input.
fn issuer_state(
    ckp: &CertificateKeyPair,
    lookup: &mut impl Lookup,
) -> Result<IssuerState, OfflineError> {
    let Some((ns, name)) = issuer_key(ckp) else {
        return Ok(IssuerState::SelfSigned);
    };
    let own = (namespace(ckp), ckp.name_any());
    if leads_back(&own, (ns.clone(), name.clone()), lookup) {
        return Err(OfflineError::not_ready(
            reason::INVALID_SPEC,
            issuer_loop_message(&own),
        ));
    }
    ca_state(
        "spec.issuerRef",
        (&ns, &name),
        &own.0,
        NamespaceCheck::CaPolicy,
        lookup,
    )
}

/// Whether the issuer chain of the input starting at `first` comes back to `own` (the
/// controller follows it the same way, up to eight issuers).
fn leads_back(own: &(String, String), first: (String, String), lookup: &impl Lookup) -> bool {
    let mut next = Some(first);
    for _ in 0..8 {
        let Some(current) = next.take() else {
            return false;
        };
        if current == *own {
            return true;
        }
        next = lookup
            .certificate_key_pair(&current.0, &current.1)
            .as_ref()
            .and_then(issuer_key);
    }
    false
}

/// The CA CertificateKeyPair `namespace/name` of the input, named by `field`, checked as
/// the controller checks it and generated first, for a requester in `own_namespace`.
pub fn ca_state(
    field: &str,
    (namespace, name): (&str, &str),
    own_namespace: &str,
    check: NamespaceCheck,
    lookup: &mut impl Lookup,
) -> Result<IssuerState, OfflineError> {
    let ca_ref = format!("{namespace}/{name}");
    let Some(ca) = lookup.certificate_key_pair(namespace, name) else {
        return Err(OfflineError::not_in_input(
            field,
            format!("signing by CertificateKeyPair {ca_ref}"),
        ));
    };
    if let Err(refused) = check_ca(&ca, namespace, own_namespace, check) {
        return Ok(refused);
    }
    Ok(match lookup.tls_material(KIND, namespace, name) {
        Ok(material) => IssuerState::Ready(Box::new(material)),
        Err(e) => IssuerState::Unavailable {
            reason: reason::REFERENCE_NOT_READY,
            message: format!("issuer CertificateKeyPair {ca_ref} is not Ready: {e}"),
        },
    })
}

/// The keystore password, from a Secret of the input.
fn keystore_password(
    ckp: &CertificateKeyPair,
    lookup: &impl Lookup,
) -> Result<Option<SecretString>, OfflineError> {
    let Some(p12) = ckp.spec.keystores.as_ref().and_then(|k| k.pkcs12.as_ref()) else {
        return Ok(None);
    };
    offline::read_selector(
        lookup,
        &namespace(ckp),
        &p12.password_secret_ref,
        "keystore password",
        "spec.keystores.pkcs12.passwordSecretRef",
    )
    .map(Some)
}
