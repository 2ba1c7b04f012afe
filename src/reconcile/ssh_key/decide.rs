//! The decide step of an SshKey. Pure: the clock is a parameter. The key and its
//! certificate are decided separately: a certificate renews without touching the key, a new
//! key always gets a new certificate.

use std::time::{Duration, SystemTime};

use crate::api::common::ExistingSecretPolicy;
use crate::api::ssh_key::{SshKeySpec, SshKeyType};
use crate::material::ssh::{
    CertificateRequest, CertificateType, DEFAULT_USER_EXTENSIONS, SshCertificate, SshKeyKind,
    SshKeyPair, SshMaterial,
};
use crate::reconcile::resource::renew_at;
use crate::reconcile::secret::not_taken_back;

/// What the target Secret holds.
#[derive(Debug)]
pub enum SecretState {
    /// No Secret.
    Absent,
    /// Our Secret.
    Owned {
        /// The parsed material, or why it could not be read.
        material: Result<SshMaterial, String>,
        /// The `keysmith.dev/rotate` value the material answers.
        rotation_token: Option<String>,
        /// When the key was generated (`keysmith.dev/generated-at`).
        generated_at: Option<SystemTime>,
        /// Written for an earlier resource of this name, gone (a restore): taken back only
        /// when the key reads and satisfies the spec, else SecretConflict.
        restored: bool,
    },
    /// Someone else's Secret.
    Foreign {
        /// `<Kind>/<name>` of another keysmith resource, if it is one.
        owner: Option<String>,
        /// Its material when it reads with our passphrase (for Adopt).
        material: Option<SshMaterial>,
    },
}

/// The CA named by `certificate.authorityRef`.
#[derive(Debug)]
pub enum AuthorityState {
    /// No certificate requested.
    NotNeeded,
    /// The CA key.
    Ready(Box<SshKeyPair>),
    /// The CA cannot sign now.
    Unavailable {
        /// A reason constant.
        reason: &'static str,
        /// What is wrong, for a person.
        message: String,
    },
}

/// Why the key is (re)generated; becomes the Event reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyReason {
    /// Nothing there yet.
    Missing,
    /// The Secret's data is not a usable key (or no longer decrypts with the passphrase).
    Invalid(String),
    /// `keysmith.dev/rotate` asks for a new key.
    RotationRequested,
    /// The key is of another algorithm or size than the spec asks for.
    SpecChanged(String),
    /// `rotation.every` has passed since the key was generated.
    RotationDue,
}

impl KeyReason {
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
            Self::Missing => "no key yet".to_owned(),
            Self::Invalid(why) => format!("the Secret does not hold a usable key: {why}"),
            Self::RotationRequested => "rotation requested with keysmith.dev/rotate".to_owned(),
            Self::SpecChanged(why) => format!("the key no longer matches the spec: {why}"),
            Self::RotationDue => "rotation.every has passed".to_owned(),
        }
    }

    /// Whether the old material is kept as `.previous` (rotations, not repairs).
    pub fn is_rotation(&self) -> bool {
        matches!(
            self,
            Self::RotationRequested | Self::RotationDue | Self::SpecChanged(_)
        )
    }
}

/// What to do with the key.
#[derive(Debug)]
pub enum KeyDecision {
    /// Keep this key (its comment may be updated: that never needs a new key).
    Keep(Box<SshKeyPair>),
    /// Take over a foreign Secret's key.
    Adopt(Box<SshMaterial>),
    /// Generate a new key.
    Generate(KeyReason),
    /// Leave the Secret alone: SecretConflict with this message.
    Conflict(String),
}

/// What to do with the certificate, once the key is settled.
#[derive(Debug, PartialEq, Eq)]
pub enum CertificateDecision {
    /// No certificate is requested.
    None,
    /// The current certificate stays.
    Keep,
    /// Issue a certificate (why, for Events).
    Issue(String),
    /// The CA cannot sign: reason and message (the key is still written).
    Wait {
        /// A reason constant.
        reason: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Everything the key decision looks at.
pub struct KeyInputs<'a> {
    /// The spec.
    pub spec: &'a SshKeySpec,
    /// The `keysmith.dev/rotate` annotation.
    pub rotate_request: Option<&'a str>,
    /// The target Secret.
    pub secret: SecretState,
    /// Now.
    pub now: SystemTime,
    /// `<namespace>/<name>` of the Secret, for messages.
    pub secret_name: &'a str,
}

/// Decides about the key.
pub fn decide_key(inputs: KeyInputs<'_>) -> KeyDecision {
    let KeyInputs {
        spec,
        rotate_request,
        secret,
        now,
        secret_name,
    } = inputs;
    match secret {
        SecretState::Absent => KeyDecision::Generate(KeyReason::Missing),
        SecretState::Foreign { owner, material } => {
            decide_foreign(spec, owner, material, secret_name)
        }
        SecretState::Owned {
            material: Err(why),
            restored: true,
            ..
        } => {
            let why = format!("it does not hold a readable OpenSSH key ({why})");
            KeyDecision::Conflict(not_taken_back(secret_name, &why))
        }
        SecretState::Owned {
            material: Err(why), ..
        } => KeyDecision::Generate(KeyReason::Invalid(why)),
        SecretState::Owned {
            material: Ok(material),
            rotation_token,
            generated_at,
            restored,
        } => {
            if restored && let Err(why) = key_matches(spec, &material.key) {
                let why = format!("its key does not satisfy the spec ({why})");
                return KeyDecision::Conflict(not_taken_back(secret_name, &why));
            }
            if rotate_request.is_some() && rotate_request != rotation_token.as_deref() {
                return KeyDecision::Generate(KeyReason::RotationRequested);
            }
            if let Err(why) = key_matches(spec, &material.key) {
                return KeyDecision::Generate(KeyReason::SpecChanged(why));
            }
            match rotation_time(spec, generated_at) {
                Some(due) if now >= due => KeyDecision::Generate(KeyReason::RotationDue),
                _ => KeyDecision::Keep(Box::new(material.key)),
            }
        }
    }
}

fn decide_foreign(
    spec: &SshKeySpec,
    owner: Option<String>,
    material: Option<SshMaterial>,
    secret_name: &str,
) -> KeyDecision {
    let owned_by = owner
        .as_ref()
        .map(|o| format!(", owned by {o}"))
        .unwrap_or_else(|| ", not created by keysmith".to_owned());
    if owner.is_some() {
        return KeyDecision::Conflict(format!(
            "Secret {secret_name} already exists{owned_by}; it is left untouched (another keysmith resource's Secret is never adopted)"
        ));
    }
    if spec.target.existing_secret != ExistingSecretPolicy::Adopt {
        return KeyDecision::Conflict(format!(
            "Secret {secret_name} already exists{owned_by}; it is left untouched (set target.existingSecret: Adopt to take over a valid key, or choose another target.name)"
        ));
    }
    match material {
        Some(material) => match key_matches(spec, &material.key) {
            Ok(()) => KeyDecision::Adopt(Box::new(material)),
            Err(why) => KeyDecision::Conflict(format!(
                "Secret {secret_name} already exists{owned_by}; its key does not satisfy the spec ({why}), so it is not adopted and left untouched"
            )),
        },
        None => KeyDecision::Conflict(format!(
            "Secret {secret_name} already exists{owned_by} and does not hold a readable OpenSSH key to adopt; it is left untouched"
        )),
    }
}

/// Whether `key` is of the algorithm and size the spec asks for.
pub fn key_matches(spec: &SshKeySpec, key: &SshKeyPair) -> Result<(), String> {
    let wanted =
        SshKeyKind::from_spec(spec.key.algorithm, spec.key.size).map_err(|e| e.to_string())?;
    let have = key.kind();
    if have == wanted {
        Ok(())
    } else {
        Err(format!(
            "key is {:?} {}, spec asks for {:?} {}",
            have.algorithm(),
            have.size(),
            wanted.algorithm(),
            wanted.size()
        ))
    }
}

/// When the key rotates: `rotation.every` after it was generated.
pub fn rotation_time(spec: &SshKeySpec, generated_at: Option<SystemTime>) -> Option<SystemTime> {
    let every = Duration::from(*spec.rotation.as_ref()?.every.as_ref()?);
    generated_at?.checked_add(every)
}

/// The certificate the spec asks for `key_id`, valid from `now`.
pub fn certificate_request(
    spec: &SshKeySpec,
    key_id: &str,
    now: SystemTime,
) -> Option<CertificateRequest> {
    let certificate = spec.certificate.as_ref()?;
    let validity = Duration::from(certificate.validity);
    Some(CertificateRequest {
        cert_type: match spec.key_type {
            SshKeyType::Host => CertificateType::Host,
            SshKeyType::User | SshKeyType::CA => CertificateType::User,
        },
        key_id: key_id.to_owned(),
        principals: certificate.principals.clone(),
        valid_after: now,
        valid_before: now.checked_add(validity).unwrap_or(now),
        extensions: certificate.extensions.clone(),
        critical_options: certificate.critical_options.clone(),
    })
}

/// When the certificate is renewed: `rotation.renewBefore` before it expires, by default
/// when a third of its validity remains.
pub fn certificate_renewal_time(
    spec: &SshKeySpec,
    certificate: &SshCertificate,
) -> Option<SystemTime> {
    let info = certificate.info().ok()?;
    renew_at(spec.rotation.as_ref(), info.valid_after, info.valid_before)
}

/// Decides about the certificate of `key` (the key decision is already made; `current` is
/// the certificate in the Secret, if the key was kept).
pub fn decide_certificate(
    spec: &SshKeySpec,
    key: &SshKeyPair,
    current: Option<&SshCertificate>,
    authority: &AuthorityState,
    key_id: &str,
    now: SystemTime,
) -> CertificateDecision {
    let Some(wanted) = certificate_request(spec, key_id, now) else {
        return CertificateDecision::None;
    };
    let ca = match authority {
        AuthorityState::Ready(ca) => ca,
        AuthorityState::Unavailable { reason, message } => {
            return CertificateDecision::Wait {
                reason,
                message: message.clone(),
            };
        }
        AuthorityState::NotNeeded => {
            return CertificateDecision::Issue("certificate requested".to_owned());
        }
    };
    let Some(current) = current else {
        return CertificateDecision::Issue("no certificate yet".to_owned());
    };
    if !current.is_signed_for(key, ca) {
        return CertificateDecision::Issue(
            "the certificate is not for this key or not signed by the current CA key".to_owned(),
        );
    }
    let Ok(info) = current.info() else {
        return CertificateDecision::Issue("the certificate cannot be read".to_owned());
    };
    let validity = info
        .valid_before
        .duration_since(info.valid_after)
        .unwrap_or_default();
    let wanted_validity = wanted
        .valid_before
        .duration_since(wanted.valid_after)
        .unwrap_or_default();
    let wanted_extensions: Vec<String> =
        if wanted.cert_type == CertificateType::User && wanted.extensions.is_empty() {
            DEFAULT_USER_EXTENSIONS
                .iter()
                .map(|e| (*e).to_owned())
                .collect()
        } else {
            wanted.extensions.clone()
        };
    let changed = info.cert_type != wanted.cert_type
        || info.principals != wanted.principals
        || sorted(&info.extensions) != sorted(&wanted_extensions)
        || info.critical_options != wanted.critical_options
        || validity.as_secs().abs_diff(wanted_validity.as_secs()) > 1;
    if changed {
        return CertificateDecision::Issue(
            "the certificate no longer matches spec.certificate".to_owned(),
        );
    }
    match certificate_renewal_time(spec, current) {
        Some(renew_at) if now >= renew_at => {
            CertificateDecision::Issue("renewal time reached".to_owned())
        }
        _ => CertificateDecision::Keep,
    }
}

fn sorted(items: &[String]) -> Vec<String> {
    let mut items = items.to_vec();
    items.sort();
    items
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::api::common::reason;

    const HOUR: Duration = Duration::from_secs(3600);

    fn spec(yaml: &str) -> SshKeySpec {
        serde_norway::from_str(yaml).expect("spec")
    }

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn key(kind: SshKeyKind) -> SshKeyPair {
        SshKeyPair::generate(kind, "test@ns").expect("key")
    }

    fn owned(pair: SshKeyPair, token: Option<&str>, generated_at: SystemTime) -> SecretState {
        SecretState::Owned {
            material: Ok(SshMaterial {
                key: pair,
                certificate: None,
            }),
            rotation_token: token.map(str::to_owned),
            generated_at: Some(generated_at),
            restored: false,
        }
    }

    fn run(
        spec: &SshKeySpec,
        secret: SecretState,
        rotate: Option<&str>,
        now: SystemTime,
    ) -> KeyDecision {
        decide_key(KeyInputs {
            spec,
            rotate_request: rotate,
            secret,
            now,
            secret_name: "ns/k",
        })
    }

    fn reason_of(d: &KeyDecision) -> Option<KeyReason> {
        match d {
            KeyDecision::Generate(r) => Some(r.clone()),
            _ => None,
        }
    }

    #[test]
    fn a_restored_key_is_taken_back_only_when_it_is_the_spec_s_kind() {
        let s = spec("algorithm: Ed25519");
        let restored = |material| SecretState::Owned {
            material,
            rotation_token: None,
            generated_at: None,
            restored: true,
        };
        let material = |kind| {
            Ok(SshMaterial {
                key: key(kind),
                certificate: None,
            })
        };
        assert!(matches!(
            run(&s, restored(material(SshKeyKind::Ed25519)), None, t0()),
            KeyDecision::Keep(_)
        ));
        let other = run(&s, restored(material(SshKeyKind::EcdsaP256)), None, t0());
        assert!(
            matches!(&other, KeyDecision::Conflict(m) if m.contains("not taken back")),
            "{other:?}"
        );
        let unreadable = run(&s, restored(Err("wrong passphrase".into())), None, t0());
        assert!(
            matches!(&unreadable, KeyDecision::Conflict(m) if m.contains("wrong passphrase")),
            "{unreadable:?}"
        );
    }

    #[test]
    fn a_key_is_generated_once_and_then_kept() {
        let s = spec("algorithm: Ed25519");
        assert_eq!(
            reason_of(&run(&s, SecretState::Absent, None, t0())),
            Some(KeyReason::Missing)
        );
        let d = run(
            &s,
            owned(key(SshKeyKind::Ed25519), None, t0()),
            None,
            t0() + HOUR,
        );
        assert!(matches!(d, KeyDecision::Keep(_)), "{d:?}");
    }

    #[test]
    fn rotation_every_and_the_rotate_token_rotate() {
        let s = spec("algorithm: Ed25519\nrotation: {every: 24h}");
        let pair = key(SshKeyKind::Ed25519);
        let d = run(&s, owned(pair.clone(), None, t0()), None, t0() + 23 * HOUR);
        assert!(matches!(d, KeyDecision::Keep(_)), "{d:?}");
        let d = run(&s, owned(pair.clone(), None, t0()), None, t0() + 24 * HOUR);
        assert_eq!(reason_of(&d), Some(KeyReason::RotationDue));
        let d = run(&s, owned(pair.clone(), None, t0()), Some("1"), t0());
        assert_eq!(reason_of(&d), Some(KeyReason::RotationRequested));
        let d = run(&s, owned(pair, Some("1"), t0()), Some("1"), t0());
        assert!(matches!(d, KeyDecision::Keep(_)), "{d:?}");
    }

    #[test]
    fn another_algorithm_or_size_generates_a_new_key() {
        let s = spec("algorithm: ECDSA\nsize: 384");
        let d = run(
            &s,
            owned(key(SshKeyKind::EcdsaP256), None, t0()),
            None,
            t0(),
        );
        assert!(
            matches!(reason_of(&d), Some(KeyReason::SpecChanged(why)) if why.contains("384")),
            "{d:?}"
        );
    }

    #[test]
    fn unreadable_material_is_replaced_and_foreign_secrets_conflict() {
        let s = spec("algorithm: Ed25519");
        let broken = SecretState::Owned {
            material: Err("ssh-privatekey: wrong passphrase".into()),
            rotation_token: None,
            generated_at: None,
            restored: false,
        };
        assert!(matches!(
            reason_of(&run(&s, broken, None, t0())),
            Some(KeyReason::Invalid(_))
        ));
        let foreign = |owner: Option<&str>, material| SecretState::Foreign {
            owner: owner.map(str::to_owned),
            material,
        };
        let d = run(&s, foreign(None, None), None, t0());
        assert!(
            matches!(&d, KeyDecision::Conflict(m) if m.contains("ns/k")),
            "{d:?}"
        );
        let adopt = spec("algorithm: Ed25519\ntarget: {existingSecret: Adopt}");
        let material = || {
            Some(SshMaterial {
                key: key(SshKeyKind::Ed25519),
                certificate: None,
            })
        };
        assert!(matches!(
            run(&adopt, foreign(None, material()), None, t0()),
            KeyDecision::Adopt(_)
        ));
        let d = run(
            &adopt,
            foreign(Some("SshKey/other"), material()),
            None,
            t0(),
        );
        assert!(
            matches!(d, KeyDecision::Conflict(_)),
            "another keysmith resource's Secret is never adopted"
        );
    }

    #[test]
    fn certificates_renew_before_expiry_and_follow_the_ca() {
        let s = spec("certificate: {authorityRef: {name: ca}, principals: [deploy], validity: 3h}");
        let pair = key(SshKeyKind::Ed25519);
        let ca = key(SshKeyKind::Ed25519);
        let authority = AuthorityState::Ready(Box::new(ca.clone()));
        let request = certificate_request(&s, "ns/k", t0()).expect("request");
        let cert = SshCertificate::issue(&pair, &ca, &request).expect("certificate");
        let decide_at = |now, authority: &AuthorityState| {
            decide_certificate(&s, &pair, Some(&cert), authority, "ns/k", now)
        };
        assert_eq!(
            decide_at(t0() + HOUR, &authority),
            CertificateDecision::Keep
        );
        assert!(
            matches!(
                decide_at(t0() + 2 * HOUR, &authority),
                CertificateDecision::Issue(_)
            ),
            "a third of 3h remains"
        );
        let new_ca = AuthorityState::Ready(Box::new(key(SshKeyKind::Ed25519)));
        assert!(
            matches!(
                decide_at(t0() + HOUR, &new_ca),
                CertificateDecision::Issue(_)
            ),
            "a rotated CA key re-certifies"
        );
        let away = AuthorityState::Unavailable {
            reason: reason::ISSUER_NOT_CA,
            message: "not a CA".into(),
        };
        assert!(matches!(
            decide_at(t0(), &away),
            CertificateDecision::Wait {
                reason: reason::ISSUER_NOT_CA,
                ..
            }
        ));
        let more = spec(
            "certificate: {authorityRef: {name: ca}, principals: [deploy, ops], validity: 3h}",
        );
        let d = decide_certificate(&more, &pair, Some(&cert), &authority, "ns/k", t0() + HOUR);
        assert!(
            matches!(d, CertificateDecision::Issue(_)),
            "changed principals re-issue"
        );
        let none = spec("algorithm: Ed25519");
        assert_eq!(
            decide_certificate(&none, &pair, None, &AuthorityState::NotNeeded, "ns/k", t0()),
            CertificateDecision::None
        );
    }
}
