//! A KeyringSecret's Secret without a cluster (`keysmith generate`): the controller's plan
//! and decide steps, the same generation, issuance and Secret encoding for every type; the
//! issuer and the pkey_cert a cert_single or cert_chain names must be in the input.

use kube::ResourceExt;

use crate::api::certificate_key_pair::CertificateKeyPairSpec;
use crate::api::common::reason;
use crate::api::keyring_secret::KeyringSecret;
use crate::material::pkey::{KeyKind, PrivateKey};
use crate::material::progress::Progress;
use crate::material::x509::TlsMaterial;
use crate::reconcile::certificate_key_pair::NamespaceCheck;
use crate::reconcile::certificate_key_pair::decide::{Inputs, IssuerState, decide};
use crate::reconcile::certificate_key_pair::offline::{ca_state, settle};
use crate::reconcile::offline::{self, Lookup, Offline, OfflineError};
use crate::reconcile::resource::{namespace, rotate_request};

use super::certificates::{KeySource, as_default_issuer, export_of, secret_state, target_content};
use super::decide::{
    Decision, IssuerChoice, Plan, certificate_spec, issuer_choice, keyring_id, plan,
};
use super::generated::{self, ChainPlan, Generated, Prepared, Settled, new_salt};
use super::reference::{check_type, choose};
use super::{KIND, KeyringMaterial, secret_annotations, ssh_plan};

/// Generates the material of `krs` as its controller would on a cluster where the target
/// Secret is what the input holds.
pub fn generate(
    krs: &KeyringSecret,
    lookup: &mut impl Lookup,
) -> Result<Offline<KeyringMaterial>, OfflineError> {
    let name = krs.name_any();
    let id = keyring_id(&krs.spec, &name)
        .map_err(|message| OfflineError::not_ready(reason::INVALID_SPEC, message))?;
    let plan = plan(&krs.spec, &name)
        .map_err(|e| OfflineError::not_ready(reason::INVALID_SPEC, e.to_string()))?;
    let annotations = secret_annotations(krs, &id);
    match plan {
        Plan::Simple(recipe) => made(krs, recipe, annotations, lookup),
        Plan::Ssh(kind) => made(krs, ssh_plan(krs, kind), annotations, lookup),
        Plan::CertChain { id } => {
            let (_, pkey) = pkey_cert(krs, &id, "spec.params.cert_chain.id", lookup)?;
            made(krs, ChainPlan::of(&pkey), annotations, lookup)
        }
        Plan::PkeyCert(spec) => {
            let issuer = issuer(krs, lookup)?;
            certificate(krs, (&spec, issuer), KeySource::Own, annotations, lookup)
        }
        Plan::CertSingle { id, modifier } => {
            let (resource, pkey) = pkey_cert(krs, &id, "spec.params.cert_single.id", lookup)?;
            let Some(params) = resource.spec.params.pkey_cert.as_ref() else {
                return Err(OfflineError::not_ready(
                    reason::REFERENCE_NOT_FOUND,
                    format!("pkey_cert {id:?} has no params.pkey_cert"),
                ));
            };
            let spec = certificate_spec(&krs.spec, params, Some(modifier));
            let issuer = issuer(krs, lookup)?;
            let key = KeySource::Borrowed(pkey.key);
            certificate(krs, (&spec, issuer), key, annotations, lookup)
        }
    }
}

/// Material made from the spec alone (and a cert_chain's copy): decided, made, encoded as
/// the controller does.
fn made<G: Generated>(
    krs: &KeyringSecret,
    plan: G,
    annotations: std::collections::BTreeMap<String, String>,
    lookup: &mut impl Lookup,
) -> Result<Offline<KeyringMaterial>, OfflineError> {
    let (ownership, qualified) = offline::target(krs, lookup)?;
    let now = lookup.now();
    let token = rotate_request(krs).map(str::to_owned);
    let (material, revision) = match Prepared::of(krs, &plan, &ownership)
        .decide(&plan, &qualified, now)
    {
        Decision::Conflict(message) => {
            return Err(OfflineError::not_ready(reason::SECRET_CONFLICT, message));
        }
        Decision::Keep(_) => {
            return Err(OfflineError::Input(format!(
                "Secret {qualified} already holds this resource's material"
            )));
        }
        Decision::Adopt(material) => (material, 0),
        Decision::Generate { .. } => (plan.make(&Progress::default())?, ownership.revision() + 1),
    };
    let settled = Settled {
        material,
        revision,
        rotation_token: token,
        generated_at: now,
        previous: Default::default(),
        salt: new_salt()?,
    };
    let content = generated::target_content(&plan, &settled, annotations)?;
    Ok(Offline {
        secret: offline::written(krs, content, ownership.secret()),
        material: G::wrap(settled.material, &settled.salt),
    })
}

/// A pkey_cert's or cert_single's certificate, for the key of `key`, decided and issued as
/// the controller does.
fn certificate(
    krs: &KeyringSecret,
    (spec, issuer): (&CertificateKeyPairSpec, IssuerState),
    key: KeySource,
    annotations: std::collections::BTreeMap<String, String>,
    lookup: &mut impl Lookup,
) -> Result<Offline<KeyringMaterial>, OfflineError> {
    let (ownership, qualified) = offline::target(krs, lookup)?;
    let now = lookup.now();
    let decision = decide(Inputs {
        spec,
        rotate_request: rotate_request(krs),
        secret: secret_state(&ownership, &key),
        issuer: &issuer,
        now,
        secret_name: &qualified,
        spec_settled: true,
    });
    let export = export_of(&key);
    let new_key = |reuse: Option<PrivateKey>| match (key, reuse) {
        (KeySource::Borrowed(key), _) => Ok(key),
        (KeySource::Own, Some(key)) => Ok(key),
        (KeySource::Own, None) => {
            let kind = KeyKind::from_spec(spec.private_key.algorithm, spec.private_key.size)?;
            Ok(PrivateKey::generate(kind)?)
        }
    };
    let (material, revision) = settle(
        decision,
        (spec, &issuer),
        new_key,
        (ownership.revision(), now),
        &qualified,
    )?;
    let token = rotate_request(krs).map(str::to_owned);
    let content = target_content(spec, &material, export, (revision, token), annotations)?;
    Ok(Offline {
        secret: offline::written(krs, content, ownership.secret()),
        material: KeyringMaterial::Certificate(material),
    })
}

/// The CA that signs: issuerRef, else the `--default-issuer` given, else none
/// (self-signed); a CA must be in the input.
fn issuer(krs: &KeyringSecret, lookup: &mut impl Lookup) -> Result<IssuerState, OfflineError> {
    let own = namespace(krs);
    let default = lookup.default_issuer();
    match issuer_choice(krs.spec.issuer_ref.as_ref(), &own, default.as_ref()) {
        IssuerChoice::SelfSigned => Ok(IssuerState::SelfSigned),
        IssuerChoice::Referenced(ns, name) => ca_state(
            "spec.issuerRef",
            (&ns, &name),
            &own,
            NamespaceCheck::CaPolicy,
            lookup,
        ),
        IssuerChoice::OperatorDefault(ns, name) => ca_state(
            "--default-issuer",
            (&ns, &name),
            &own,
            NamespaceCheck::OperatorDefault,
            lookup,
        )
        .map(as_default_issuer),
    }
}

/// The pkey_cert KeyringSecret of the input that `id` (in `field`) names, and its key and
/// certificates, generated first.
fn pkey_cert(
    krs: &KeyringSecret,
    id: &str,
    field: &str,
    lookup: &mut impl Lookup,
) -> Result<(KeyringSecret, TlsMaterial), OfflineError> {
    let ns = namespace(krs);
    let candidates = lookup.keyring_secrets(&ns);
    let Some(chosen) = choose(&candidates, id) else {
        return Err(OfflineError::not_in_input(
            field,
            format!("the pkey_cert KeyringSecret with keyring id or name {id:?} in namespace {ns}"),
        ));
    };
    check_type(chosen, id)
        .map_err(|message| OfflineError::not_ready(reason::REFERENCE_NOT_FOUND, message))?;
    let name = chosen.name_any();
    let material = lookup.tls_material(KIND, &ns, &name).map_err(|e| {
        OfflineError::not_ready(
            reason::REFERENCE_NOT_READY,
            format!("pkey_cert KeyringSecret {ns}/{name} is not Ready: {e}"),
        )
    })?;
    Ok((chosen.clone(), material))
}
