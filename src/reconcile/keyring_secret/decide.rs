//! The decide step of a KeyringSecret. Pure: the clock is a parameter. What the spec asks
//! for (the keyring id, a [`Plan`] per type, the certificate spec of the certificate types),
//! and for generated material whether to keep, adopt, generate or leave a Secret alone.

use std::time::SystemTime;

use crate::api::certificate_key_pair::{
    CertificateKeyPairSpec, KeyEncoding, KeyRotationPolicy, KeyUsage, PrivateKey as PrivateKeySpec,
    PrivateKeyExport,
};
use crate::api::common::{ExistingSecretPolicy, IssuerReference};
use crate::api::keyring_secret::{
    CertModifier, DhGroup, KEYRING_ID_PATTERN, KeyringSecretSpec, KeyringSecretType,
    PkeyCertParams, UftpAlgorithm,
};
use crate::material::MaterialError;
use crate::material::keyring::{DhRecipe, Recipe, uftp_key_kind};
use crate::material::parse::Mismatch;
use crate::material::ssh::SshKeyKind;
use crate::reconcile::secret::not_taken_back;

/// The keyring id: `spec.keyringId`, or the name with `-` and `.` replaced by `_`; `Err`
/// with a message when the derived id is not a valid keyring id.
pub fn keyring_id(spec: &KeyringSecretSpec, name: &str) -> Result<String, String> {
    if let Some(id) = &spec.keyring_id {
        return Ok(id.clone());
    }
    let derived = name.replace(['-', '.'], "_");
    if is_keyring_id(&derived) {
        Ok(derived)
    } else {
        Err(format!(
            "the keyring id derived from the name, {derived:?}, does not match {KEYRING_ID_PATTERN} (at most 128 characters, starting with a letter); set spec.keyringId"
        ))
    }
}

/// `^[a-zA-Z][a-zA-Z0-9_]{0,127}$`.
fn is_keyring_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && id.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// What a KeyringSecret makes, by type.
#[derive(Clone, Debug)]
pub enum Plan {
    /// psk, dhparam, openvpn, remote_access, uftp.
    Simple(Recipe),
    /// ssh_private: an OpenSSH key.
    Ssh(SshKeyKind),
    /// pkey_cert: a key and a certificate, as a CertificateKeyPair with this spec would.
    PkeyCert(Box<CertificateKeyPairSpec>),
    /// cert_single: another certificate for the key of the pkey_cert with this id.
    CertSingle {
        /// keyringId (or name) of the pkey_cert.
        id: String,
        /// The certificate profile.
        modifier: Option<CertModifier>,
    },
    /// cert_chain: the chain of the pkey_cert with this id.
    CertChain {
        /// keyringId (or name) of the pkey_cert.
        id: String,
    },
}

/// The plan of `spec`; `name` is the resource's name (default username). Errors are
/// `Unsupported` (reported as InvalidSpec): a params block missing for the type, a size the
/// type does not have.
pub fn plan(spec: &KeyringSecretSpec, name: &str) -> Result<Plan, MaterialError> {
    let params = &spec.params;
    let missing = || {
        MaterialError::Unsupported(format!(
            "params.{} is required for type {}",
            type_name(spec.type_),
            type_name(spec.type_)
        ))
    };
    Ok(match spec.type_ {
        KeyringSecretType::psk => {
            let psk = params.psk.as_ref().ok_or_else(missing)?;
            Plan::Simple(Recipe::Psk { length: psk.length })
        }
        KeyringSecretType::dhparam => {
            let dh = params.dhparam.as_ref().ok_or_else(missing)?;
            Plan::Simple(Recipe::Dh(match dh.group {
                DhGroup::Generate => DhRecipe::Generate(dh.bits.unwrap_or(2048)),
                group => DhRecipe::Group(group),
            }))
        }
        KeyringSecretType::openvpn => {
            params.openvpn.as_ref().ok_or_else(missing)?;
            Plan::Simple(Recipe::OpenVpn)
        }
        KeyringSecretType::remote_access => {
            let remote = params.remote_access.as_ref().ok_or_else(missing)?;
            Plan::Simple(Recipe::RemoteAccess {
                username: remote.username.clone().unwrap_or_else(|| name.to_owned()),
                password_length: remote.password_length,
            })
        }
        KeyringSecretType::uftp => {
            let uftp = params.uftp.as_ref().ok_or_else(missing)?;
            let kind = uftp_key_kind(uftp.algorithm == UftpAlgorithm::RSA, uftp.size)?;
            Plan::Simple(Recipe::Uftp(kind))
        }
        KeyringSecretType::ssh_private => {
            let ssh = params.ssh_private.as_ref().ok_or_else(missing)?;
            Plan::Ssh(SshKeyKind::from_spec(ssh.algorithm, ssh.size)?)
        }
        KeyringSecretType::pkey_cert => {
            let pkey = params.pkey_cert.as_ref().ok_or_else(missing)?;
            Plan::PkeyCert(Box::new(certificate_spec(spec, pkey, None)))
        }
        KeyringSecretType::cert_single => {
            let single = params.cert_single.as_ref().ok_or_else(missing)?;
            Plan::CertSingle {
                id: single.id.clone(),
                modifier: single.modifier,
            }
        }
        KeyringSecretType::cert_chain => {
            let chain = params.cert_chain.as_ref().ok_or_else(missing)?;
            Plan::CertChain {
                id: chain.id.clone(),
            }
        }
    })
}

/// The keyring's name of a type (`pkey_cert`, …).
pub fn type_name(type_: KeyringSecretType) -> String {
    format!("{type_:?}")
}

/// The CertificateKeyPair spec a certificate of `spec` is issued and checked against: the
/// pkey_cert's subject, names, duration and key, the KeyringSecret's issuer, target and
/// rotation, and for a cert_single the usages of its modifier (the key is the pkey_cert's,
/// certified again: rotationPolicy Never).
pub fn certificate_spec(
    spec: &KeyringSecretSpec,
    pkey: &PkeyCertParams,
    single: Option<Option<CertModifier>>,
) -> CertificateKeyPairSpec {
    let (usages, rotation_policy) = match single {
        None => (Vec::new(), KeyRotationPolicy::Always),
        Some(modifier) => (modifier_usages(modifier), KeyRotationPolicy::Never),
    };
    CertificateKeyPairSpec {
        common_name: pkey.common_name.clone(),
        subject: None,
        dns_names: pkey.dns_names.clone(),
        ip_addresses: Vec::new(),
        email_addresses: Vec::new(),
        uris: Vec::new(),
        duration: pkey.duration,
        private_key: PrivateKeySpec {
            algorithm: pkey.algorithm,
            size: pkey.size,
            encoding: KeyEncoding::PKCS8,
            rotation_policy,
        },
        digest: None,
        usages,
        is_ca: false,
        max_path_length: None,
        ca: None,
        issuer_ref: spec.issuer_ref.clone(),
        ocsp_servers: Vec::new(),
        issuing_certificate_urls: Vec::new(),
        crl_distribution_points: Vec::new(),
        private_key_export: PrivateKeyExport::Allowed,
        keystores: None,
        additional_output_formats: Vec::new(),
        target: spec.target.clone(),
        rotation: spec.rotation.clone(),
    }
}

/// The usages of a cert_single profile, as OpenVPN's `remote-cert-tls` expects them:
/// server: digitalSignature, keyEncipherment, serverAuth; client: digitalSignature,
/// clientAuth. No modifier: the CertificateKeyPair defaults.
pub fn modifier_usages(modifier: Option<CertModifier>) -> Vec<KeyUsage> {
    match modifier {
        Some(CertModifier::openvpn_server) => vec![
            KeyUsage::DigitalSignature,
            KeyUsage::KeyEncipherment,
            KeyUsage::ServerAuth,
        ],
        Some(CertModifier::openvpn_client) => {
            vec![KeyUsage::DigitalSignature, KeyUsage::ClientAuth]
        }
        None => Vec::new(),
    }
}

/// Where the CA that signs the certificates of a KeyringSecret comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssuerChoice {
    /// `spec.issuerRef`: `(namespace, name)`.
    Referenced(String, String),
    /// The operator's `--default-issuer`.
    OperatorDefault(String, String),
    /// Neither: self-signed.
    SelfSigned,
}

/// The issuer of a KeyringSecret's certificates: its issuerRef, else the operator's
/// default CA, else none.
pub fn issuer_choice(
    issuer_ref: Option<&IssuerReference>,
    own_namespace: &str,
    default_issuer: Option<&(String, String)>,
) -> IssuerChoice {
    match (issuer_ref, default_issuer) {
        (Some(r), _) => IssuerChoice::Referenced(
            r.namespace
                .clone()
                .unwrap_or_else(|| own_namespace.to_owned()),
            r.name.clone(),
        ),
        (None, Some((namespace, name))) => {
            IssuerChoice::OperatorDefault(namespace.clone(), name.clone())
        }
        (None, None) => IssuerChoice::SelfSigned,
    }
}

/// What the target Secret holds, for generated (non-certificate) material `M`.
#[derive(Debug)]
pub enum Found<M> {
    /// No Secret.
    Absent,
    /// Our Secret.
    Owned {
        /// The material, or why it cannot be read.
        material: Result<M, String>,
        /// The `keysmith.dev/rotate` value the material answers.
        rotation_token: Option<String>,
        /// When the material was generated (`keysmith.dev/generated-at`).
        generated_at: Option<SystemTime>,
        /// Written for an earlier resource of this name, gone (a restore): taken back only
        /// when the material reads and satisfies the spec, else SecretConflict.
        restored: bool,
    },
    /// Someone else's Secret.
    Foreign {
        /// `<Kind>/<name>` of another keysmith resource, if it is one.
        owner: Option<String>,
        /// Its material when it reads (for Adopt).
        material: Option<M>,
    },
}

/// Why material is (re)generated; becomes the Event reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// Nothing there yet.
    Missing,
    /// The Secret's data is not usable material.
    Invalid(String),
    /// `keysmith.dev/rotate` asks for new material.
    RotationRequested,
    /// The material does not match the spec any more.
    SpecChanged(String),
    /// `rotation.every` has passed.
    RotationDue,
}

impl Why {
    /// The Event reason.
    pub fn event_reason(&self) -> &'static str {
        match self {
            Self::Missing | Self::Invalid(_) | Self::SpecChanged(_) => "Generated",
            Self::RotationRequested | Self::RotationDue => "Rotated",
        }
    }

    /// A sentence for Events and logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Missing => "nothing generated yet".to_owned(),
            Self::Invalid(why) => format!("the Secret does not hold usable material: {why}"),
            Self::RotationRequested => "rotation requested with keysmith.dev/rotate".to_owned(),
            Self::SpecChanged(why) => format!("the material no longer matches the spec: {why}"),
            Self::RotationDue => "rotation.every has passed".to_owned(),
        }
    }
}

/// What to do with generated material.
#[derive(Debug)]
pub enum Decision<M> {
    /// Keep it.
    Keep(M),
    /// Take over a foreign Secret's material.
    Adopt(M),
    /// Generate new material; `current` is valid material that stays Ready meanwhile (a
    /// rotation, not a repair).
    Generate {
        /// Why.
        why: Why,
        /// The material in the Secret while it is still valid for the spec.
        current: Option<M>,
    },
    /// Leave the Secret alone: SecretConflict with this message.
    Conflict(String),
}

/// Everything the decision looks at.
pub struct Inputs<'a, M> {
    /// The target Secret.
    pub found: Found<M>,
    /// The `keysmith.dev/rotate` annotation.
    pub rotate_request: Option<&'a str>,
    /// When the material is rotated by age (`generatedAt + rotation.every`).
    pub rotate_at: Option<SystemTime>,
    /// `target.existingSecret`.
    pub existing_secret: ExistingSecretPolicy,
    /// Now.
    pub now: SystemTime,
    /// `<namespace>/<name>` of the Secret, for messages.
    pub secret_name: &'a str,
}

/// Decides about generated material; `check` says whether material satisfies the spec.
pub fn decide<M>(inputs: Inputs<'_, M>, check: impl Fn(&M) -> Result<(), Mismatch>) -> Decision<M> {
    let Inputs {
        found,
        rotate_request,
        rotate_at,
        existing_secret,
        now,
        secret_name,
    } = inputs;
    let (material, token, restored) = match found {
        Found::Absent => return generate(Why::Missing, None),
        Found::Foreign { owner, material } => {
            return decide_foreign(owner, material, existing_secret, secret_name, check);
        }
        Found::Owned {
            material: Err(why),
            restored: true,
            ..
        } => {
            let why = format!("it does not hold usable material ({why})");
            return Decision::Conflict(not_taken_back(secret_name, &why));
        }
        Found::Owned {
            material: Err(why), ..
        } => return generate(Why::Invalid(why), None),
        Found::Owned {
            material: Ok(material),
            rotation_token,
            restored,
            ..
        } => (material, rotation_token, restored),
    };
    if let Err(mismatch) = check(&material) {
        if restored {
            let why = format!("its material does not satisfy the spec ({})", mismatch.0);
            return Decision::Conflict(not_taken_back(secret_name, &why));
        }
        return generate(Why::SpecChanged(mismatch.0), None);
    }
    if rotate_request.is_some() && rotate_request != token.as_deref() {
        return generate(Why::RotationRequested, Some(material));
    }
    match rotate_at {
        Some(due) if now >= due => generate(Why::RotationDue, Some(material)),
        _ => Decision::Keep(material),
    }
}

fn generate<M>(why: Why, current: Option<M>) -> Decision<M> {
    Decision::Generate { why, current }
}

fn decide_foreign<M>(
    owner: Option<String>,
    material: Option<M>,
    existing_secret: ExistingSecretPolicy,
    secret_name: &str,
    check: impl Fn(&M) -> Result<(), Mismatch>,
) -> Decision<M> {
    let owned_by = owner
        .as_ref()
        .map(|o| format!(", owned by {o}"))
        .unwrap_or_else(|| ", not created by keysmith".to_owned());
    if owner.is_some() {
        return Decision::Conflict(format!(
            "Secret {secret_name} already exists{owned_by}; it is left untouched (another keysmith resource's Secret is never adopted)"
        ));
    }
    if existing_secret != ExistingSecretPolicy::Adopt {
        return Decision::Conflict(format!(
            "Secret {secret_name} already exists{owned_by}; it is left untouched (set target.existingSecret: Adopt to take over valid material, or choose another target.name)"
        ));
    }
    let Some(material) = material else {
        return Decision::Conflict(format!(
            "Secret {secret_name} already exists{owned_by} and does not hold material of this type to adopt; it is left untouched"
        ));
    };
    match check(&material) {
        Ok(()) => Decision::Adopt(material),
        Err(why) => Decision::Conflict(format!(
            "Secret {secret_name} already exists{owned_by}; its material does not satisfy the spec ({why}), so it is not adopted and left untouched"
        )),
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
