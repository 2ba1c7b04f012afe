//! The KeyringSecret controller (api.md section 4): one plan per keyring type; generated
//! material (psk, dhparam, openvpn, remote_access, uftp, ssh_private, and the cert_chain
//! copied from its pkey_cert) goes through [`generated`], certificates (pkey_cert,
//! cert_single) through [`certificates`].

mod certificates;
pub mod decide;
mod generated;
pub mod offline;
mod reference;

use std::collections::BTreeMap;
use std::time::SystemTime;

use kube::ResourceExt;

use crate::api::common::{CommonStatus, Target, reason};
use crate::api::keyring_secret::{KeyringSecret, KeyringSecretStatus};
use crate::material::fingerprint::sha256_tagged;
use crate::material::keyring::Material;
use crate::material::ssh::{SshKeyKind, SshKeyPair};
use crate::material::x509::{Certificate, TlsMaterial};

use super::context::Context;
use super::error::Error;
use super::outcome::{MaterialController, Outcome, common_status};
use super::resource::{KeysmithResource, namespace};
use super::status::time;
use decide::{Plan, keyring_id, plan};

pub use reference::{effective_id, refers_to};

/// The kind name.
pub const KIND: &str = "KeyringSecret";
pub use super::names::{FINGERPRINT_SALT_ANNOTATION, KEYRING_ID_ANNOTATION, NOTE_ANNOTATION};

impl KeysmithResource for KeyringSecret {
    const KIND: &'static str = KIND;
    type Status = KeyringSecretStatus;

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

/// What a KeyringSecret's Secret holds, for the status.
#[derive(Clone, Debug)]
pub enum KeyringMaterial {
    /// psk, dhparam, openvpn, remote_access, uftp, with the salt of its fingerprint.
    Simple(Material, String),
    /// ssh_private.
    Ssh(Box<SshKeyPair>),
    /// pkey_cert, cert_single: a certificate (and for pkey_cert its key).
    Certificate(TlsMaterial),
    /// cert_chain: leaf to root.
    Chain(Vec<Certificate>),
}

impl KeyringMaterial {
    /// `status.fingerprint`: SSH keys as `ssh-keygen -l`, certificates and chains by the
    /// leaf certificate's DER, the rest as [`Material::fingerprint`].
    pub fn fingerprint(&self) -> String {
        match self {
            Self::Simple(m, salt) => m.fingerprint(salt.as_bytes()).unwrap_or_default(),
            Self::Ssh(key) => key.fingerprint_sha256(),
            Self::Certificate(m) => leaf_fingerprint(&m.chain),
            Self::Chain(chain) => leaf_fingerprint(chain),
        }
    }

    /// When the leaf certificate expires (certificate material only).
    pub fn not_after(&self) -> Option<SystemTime> {
        let leaf = match self {
            Self::Certificate(m) => m.chain.first(),
            Self::Chain(chain) => chain.first(),
            _ => None,
        };
        leaf.and_then(|c| c.info().ok()).map(|i| i.not_after)
    }
}

fn leaf_fingerprint(chain: &[Certificate]) -> String {
    chain
        .first()
        .map(|c| sha256_tagged(c.der()))
        .unwrap_or_default()
}

impl MaterialController for KeyringSecret {
    type Material = KeyringMaterial;

    fn reconcile_material(
        &self,
        ctx: &Context,
    ) -> impl std::future::Future<Output = Result<(Outcome, Option<KeyringMaterial>), Error>> + Send
    {
        reconcile_material(self, ctx)
    }

    fn status_of(
        &self,
        outcome: &Outcome,
        material: Option<&KeyringMaterial>,
        now: SystemTime,
    ) -> KeyringSecretStatus {
        KeyringSecretStatus {
            common: CommonStatus {
                fingerprint: material.map(KeyringMaterial::fingerprint),
                ..common_status(self, outcome, now)
            },
            keyring_id: keyring_id(&self.spec, &self.name_any()).ok(),
            not_after: material.and_then(KeyringMaterial::not_after).map(time),
        }
    }
}

async fn reconcile_material(
    krs: &KeyringSecret,
    ctx: &Context,
) -> Result<(Outcome, Option<KeyringMaterial>), Error> {
    let id = match keyring_id(&krs.spec, &krs.name_any()) {
        Ok(id) => id,
        Err(message) => return Ok((Outcome::not_ready(reason::INVALID_SPEC, message), None)),
    };
    let plan = match plan(&krs.spec, &krs.name_any()) {
        Ok(plan) => plan,
        Err(e) => {
            return Ok((
                Outcome::not_ready(reason::INVALID_SPEC, e.to_string()),
                None,
            ));
        }
    };
    let annotations = secret_annotations(krs, &id);
    match plan {
        Plan::Simple(recipe) => generated::reconcile(krs, ctx, recipe, annotations).await,
        Plan::Ssh(kind) => generated::reconcile(krs, ctx, ssh_plan(krs, kind), annotations).await,
        Plan::CertChain { id } => match reference::pkey_cert(ctx, krs, &id).await? {
            reference::Found::Ready(pkey) => {
                let chain = generated::ChainPlan::of(&pkey.material);
                generated::reconcile(krs, ctx, chain, annotations).await
            }
            reference::Found::Unavailable { reason, message } => {
                Ok((Outcome::not_ready(reason, message), None))
            }
        },
        Plan::PkeyCert(spec) => certificates::pkey_cert(krs, ctx, *spec, annotations).await,
        Plan::CertSingle { id, modifier } => {
            certificates::cert_single(krs, ctx, &id, modifier, annotations).await
        }
    }
}

/// ssh_private: a key of `kind` with the comment `<name>@<namespace>`.
fn ssh_plan(krs: &KeyringSecret, kind: SshKeyKind) -> generated::SshPlan {
    let comment = format!("{}@{}", krs.name_any(), namespace(krs));
    generated::SshPlan { kind, comment }
}

/// The kind-specific annotations of the target Secret: the keyring id and the note.
fn secret_annotations(krs: &KeyringSecret, id: &str) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::from([(KEYRING_ID_ANNOTATION.to_owned(), id.to_owned())]);
    if let Some(note) = &krs.spec.note {
        annotations.insert(NOTE_ANNOTATION.to_owned(), note.clone());
    }
    annotations
}
