//! The decide step of a CertificateKeyPair: from the spec, what the target Secret holds, the
//! issuer and the clock, what to do. Pure: no I/O, the clock is a parameter. The checks run
//! in order, first match wins (like cert-manager's issuance policy chain).

use std::time::SystemTime;

use crate::api::certificate_key_pair::{CertificateKeyPairSpec, KeyRotationPolicy};
use crate::api::common::ExistingSecretPolicy;
use crate::material::parse::check_against_spec;
use crate::material::pkey::PrivateKey;
use crate::material::x509::TlsMaterial;
use crate::reconcile::resource::renew_at;
use crate::reconcile::secret::not_taken_back;

/// What the target Secret holds, as far as decide cares.
#[derive(Debug)]
pub enum SecretState {
    /// No Secret.
    Absent,
    /// Our Secret; `material` is what parsing its data gave.
    Owned {
        /// The parsed material, or why it could not be parsed.
        material: Result<TlsMaterial, String>,
        /// The `keysmith.dev/rotate` value the material answers.
        rotation_token: Option<String>,
        /// Written for an earlier resource of this name, gone (a restore): taken back only
        /// when the material is valid and satisfies the spec, else SecretConflict.
        restored: bool,
    },
    /// Someone else's Secret.
    Foreign {
        /// `<Kind>/<name>` of another keysmith resource, if it is one.
        owner: Option<String>,
        /// The Secret's material when it parses (for Adopt).
        material: Option<TlsMaterial>,
    },
}

/// The issuing CA, as far as decide cares.
#[derive(Debug)]
pub enum IssuerState {
    /// No issuerRef: self-signed.
    SelfSigned,
    /// The CA is Ready; its current material.
    Ready(Box<TlsMaterial>),
    /// The CA cannot sign now: the Ready reason and message to report.
    Unavailable {
        /// A reason constant (ReferenceNotFound, ReferenceNotReady, IssuerNotCA,
        /// NamespaceNotAllowed).
        reason: &'static str,
        /// What is wrong, for a person.
        message: String,
    },
}

impl IssuerState {
    fn material(&self) -> Option<&TlsMaterial> {
        match self {
            Self::Ready(m) => Some(m),
            _ => None,
        }
    }
}

/// Why a certificate is (re)issued; becomes the Event reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssueReason {
    /// First issuance: nothing there yet.
    Missing,
    /// The Secret's data is not valid material.
    Invalid(String),
    /// The `keysmith.dev/rotate` annotation asks for new material.
    RotationRequested,
    /// The certificate no longer matches the spec or the issuer.
    SpecChanged(String),
    /// The renewal time has come.
    RenewalDue,
}

impl IssueReason {
    /// The Event reason: `Generated`, `Rotated` or `Renewed`.
    pub fn event_reason(&self) -> &'static str {
        match self {
            Self::Missing | Self::Invalid(_) => "Generated",
            Self::RotationRequested => "Rotated",
            Self::SpecChanged(_) | Self::RenewalDue => "Renewed",
        }
    }

    /// A sentence for the Event note and the logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Missing => "no certificate yet".to_owned(),
            Self::Invalid(why) => format!("the Secret does not hold valid material: {why}"),
            Self::RotationRequested => "rotation requested with keysmith.dev/rotate".to_owned(),
            Self::SpecChanged(why) => format!("the certificate no longer matches: {why}"),
            Self::RenewalDue => "renewal time reached".to_owned(),
        }
    }
}

/// What to do.
#[derive(Debug)]
pub enum Decision {
    /// The Secret holds current material: keep it (the write step may still update metadata).
    Keep(Box<TlsMaterial>),
    /// Take over a foreign Secret whose material satisfies the spec.
    Adopt(Box<TlsMaterial>),
    /// Issue a new certificate, with this key when it is kept.
    Issue {
        /// Why.
        reason: IssueReason,
        /// The existing key to certify again (rotationPolicy: Never), or `None` for a new key.
        reuse_key: Option<PrivateKey>,
    },
    /// Leave the Secret alone and report SecretConflict with this message.
    Conflict(String),
    /// The issuer cannot sign; keep valid material if there is some, else report.
    WaitForIssuer {
        /// The reason constant to report when there is no valid material.
        reason: &'static str,
        /// What is wrong with the issuer.
        message: String,
        /// Current material that is still valid (Ready stays True).
        current: Option<Box<TlsMaterial>>,
    },
    /// The certificate expired and cannot be renewed now.
    Expired {
        /// Why it cannot be renewed.
        message: String,
    },
}

/// Everything decide looks at.
pub struct Inputs<'a> {
    /// The spec.
    pub spec: &'a CertificateKeyPairSpec,
    /// The `keysmith.dev/rotate` annotation of the resource.
    pub rotate_request: Option<&'a str>,
    /// The target Secret.
    pub secret: SecretState,
    /// The issuer.
    pub issuer: &'a IssuerState,
    /// Now.
    pub now: SystemTime,
    /// `<namespace>/<name>` of the target Secret, for messages.
    pub secret_name: &'a str,
    /// The spec is the one the current material was last reported Ready for (unchanged
    /// generation): only then may valid material stay Ready while the issuer is away.
    pub spec_settled: bool,
}

/// Decides what to do.
pub fn decide(inputs: Inputs<'_>) -> Decision {
    let Inputs {
        spec,
        rotate_request,
        secret,
        issuer,
        now,
        secret_name,
        spec_settled,
    } = inputs;
    let (material, token, restored) = match secret {
        SecretState::Foreign { owner, material } => {
            return decide_foreign(spec, issuer, owner, material, secret_name);
        }
        SecretState::Absent => (None, None, false),
        SecretState::Owned {
            material: Err(why),
            restored: true,
            ..
        } => {
            let why = format!("it does not hold valid TLS material ({why})");
            return Decision::Conflict(not_taken_back(secret_name, &why));
        }
        SecretState::Owned {
            material: Err(why), ..
        } => {
            return issue_or_wait(issuer, IssueReason::Invalid(why));
        }
        SecretState::Owned {
            material: Ok(material),
            rotation_token,
            restored,
        } => (Some(material), rotation_token, restored),
    };
    let Some(material) = material else {
        return issue_or_wait(issuer, IssueReason::Missing);
    };
    if let IssuerState::Unavailable { reason, message } = issuer {
        if !spec_settled {
            return Decision::WaitForIssuer {
                reason,
                message: message.clone(),
                current: None,
            };
        }
        return wait_keeping_valid(material, reason, message.clone(), now);
    }
    if restored && let Err(mismatch) = check_against_spec(&material, spec, issuer.material()) {
        let why = format!("its certificate does not satisfy the spec ({})", mismatch.0);
        return Decision::Conflict(not_taken_back(secret_name, &why));
    }
    if rotate_request.is_some() && rotate_request != token.as_deref() {
        return issue(IssueReason::RotationRequested, None);
    }
    if let Err(mismatch) = check_against_spec(&material, spec, issuer.material()) {
        let key = reusable_key(spec, &material);
        return issue(IssueReason::SpecChanged(mismatch.0), key);
    }
    match renewal_time(spec, &material) {
        Some(renew_at) if now >= renew_at => {
            let key = reusable_key(spec, &material);
            issue(IssueReason::RenewalDue, key)
        }
        _ => Decision::Keep(Box::new(material)),
    }
}

fn decide_foreign(
    spec: &CertificateKeyPairSpec,
    issuer: &IssuerState,
    owner: Option<String>,
    material: Option<TlsMaterial>,
    secret_name: &str,
) -> Decision {
    let owned_by = owner
        .as_ref()
        .map(|o| format!(", owned by {o}"))
        .unwrap_or_else(|| ", not created by keysmith".to_owned());
    if owner.is_some() {
        return Decision::Conflict(format!(
            "Secret {secret_name} already exists{owned_by}; it is left untouched (another keysmith resource's Secret is never adopted)"
        ));
    }
    if spec.target.existing_secret != ExistingSecretPolicy::Adopt {
        return Decision::Conflict(format!(
            "Secret {secret_name} already exists{owned_by}; it is left untouched (set target.existingSecret: Adopt to take over valid material, or choose another target.name)"
        ));
    }
    if let IssuerState::Unavailable { reason, message } = issuer {
        // Whether the material satisfies the spec depends on the issuer: wait for it.
        return Decision::WaitForIssuer {
            reason,
            message: message.clone(),
            current: None,
        };
    }
    let Some(material) = material else {
        return Decision::Conflict(format!(
            "Secret {secret_name} already exists{owned_by} and does not hold valid TLS material to adopt; it is left untouched"
        ));
    };
    match check_against_spec(&material, spec, issuer.material()) {
        Ok(()) => Decision::Adopt(Box::new(material)),
        Err(mismatch) => Decision::Conflict(format!(
            "Secret {secret_name} already exists{owned_by}; its certificate does not satisfy the spec ({}), so it is not adopted and left untouched",
            mismatch.0
        )),
    }
}

fn issue(reason: IssueReason, reuse_key: Option<PrivateKey>) -> Decision {
    Decision::Issue { reason, reuse_key }
}

/// Issue a first certificate now if the issuer can sign, else wait for it.
fn issue_or_wait(issuer: &IssuerState, reason: IssueReason) -> Decision {
    match issuer {
        IssuerState::Unavailable { reason, message } => Decision::WaitForIssuer {
            reason,
            message: message.clone(),
            current: None,
        },
        _ => issue(reason, None),
    }
}

/// The issuer cannot sign: keep the current certificate while it is valid.
fn wait_keeping_valid(
    material: TlsMaterial,
    reason: &'static str,
    message: String,
    now: SystemTime,
) -> Decision {
    let expired = not_after(&material).is_none_or(|end| now >= end);
    if expired {
        Decision::Expired {
            message: format!("the certificate has expired and cannot be renewed: {message}"),
        }
    } else {
        Decision::WaitForIssuer {
            reason,
            message,
            current: Some(Box::new(material)),
        }
    }
}

/// With rotationPolicy Never the key is certified again, if it is still of the kind the spec
/// asks for.
fn reusable_key(spec: &CertificateKeyPairSpec, material: &TlsMaterial) -> Option<PrivateKey> {
    if spec.private_key.rotation_policy != KeyRotationPolicy::Never {
        return None;
    }
    let wanted = crate::material::pkey::KeyKind::from_spec(
        spec.private_key.algorithm,
        spec.private_key.size,
    )
    .ok()?;
    (material.key.kind() == wanted).then(|| material.key.clone())
}

fn not_after(material: &TlsMaterial) -> Option<SystemTime> {
    material.chain.first()?.info().ok().map(|i| i.not_after)
}

/// When the certificate is renewed: `renewBefore` before notAfter, or when
/// `renewBeforePercentage` of its validity remains; by default when a third remains.
pub fn renewal_time(spec: &CertificateKeyPairSpec, material: &TlsMaterial) -> Option<SystemTime> {
    let info = material.chain.first()?.info().ok()?;
    renew_at(spec.rotation.as_ref(), info.not_before, info.not_after)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::api::certificate_key_pair::CertificateKeyPairSpec;
    use crate::api::common::reason;
    use crate::material::pkey::KeyKind;
    use crate::material::x509::issue;

    const HOUR: Duration = Duration::from_secs(3600);

    fn spec(yaml: &str) -> CertificateKeyPairSpec {
        serde_norway::from_str(yaml).expect("spec")
    }

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn issued(
        spec: &CertificateKeyPairSpec,
        issuer: Option<&TlsMaterial>,
        at: SystemTime,
    ) -> TlsMaterial {
        let kind =
            KeyKind::from_spec(spec.private_key.algorithm, spec.private_key.size).expect("kind");
        let key = PrivateKey::generate(kind).expect("key");
        issue(spec, key, issuer, at).expect("issue")
    }

    fn owned(material: TlsMaterial, token: Option<&str>) -> SecretState {
        SecretState::Owned {
            material: Ok(material),
            rotation_token: token.map(str::to_owned),
            restored: false,
        }
    }

    fn run(
        spec: &CertificateKeyPairSpec,
        secret: SecretState,
        issuer: &IssuerState,
        rotate: Option<&str>,
        now: SystemTime,
    ) -> Decision {
        decide(Inputs {
            spec,
            rotate_request: rotate,
            secret,
            issuer,
            now,
            secret_name: "ns/web",
            spec_settled: true,
        })
    }

    fn reason_of(decision: &Decision) -> Option<IssueReason> {
        match decision {
            Decision::Issue { reason, .. } => Some(reason.clone()),
            _ => None,
        }
    }

    #[test]
    fn a_restored_certificate_is_taken_back_only_when_it_satisfies_the_spec() {
        let s = spec("commonName: a");
        let restored = |material| SecretState::Owned {
            material,
            rotation_token: None,
            restored: true,
        };
        let current = issued(&s, None, t0());
        let kept = run(
            &s,
            restored(Ok(current)),
            &IssuerState::SelfSigned,
            None,
            t0(),
        );
        assert!(matches!(kept, Decision::Keep(_)), "{kept:?}");
        // Another common name: our own would be issued again; a restored one is left alone.
        let other = issued(&spec("commonName: b"), None, t0());
        let refused = run(
            &s,
            restored(Ok(other)),
            &IssuerState::SelfSigned,
            None,
            t0(),
        );
        assert!(
            matches!(&refused, Decision::Conflict(m) if m.contains("not taken back")),
            "{refused:?}"
        );
        let broken = run(
            &s,
            restored(Err("tls.key is missing".into())),
            &IssuerState::SelfSigned,
            None,
            t0(),
        );
        assert!(
            matches!(&broken, Decision::Conflict(m) if m.contains("tls.key is missing")),
            "{broken:?}"
        );
        // Due for renewal is still the spec's material: taken back, then renewed as usual.
        let old = issued(&s, None, t0() - 80 * 24 * HOUR);
        let due = run(&s, restored(Ok(old)), &IssuerState::SelfSigned, None, t0());
        assert_eq!(reason_of(&due), Some(IssueReason::RenewalDue));
    }

    #[test]
    fn nothing_there_means_first_issuance() {
        let s = spec("commonName: a");
        let d = run(
            &s,
            SecretState::Absent,
            &IssuerState::SelfSigned,
            None,
            t0(),
        );
        assert_eq!(reason_of(&d), Some(IssueReason::Missing));
    }

    #[test]
    fn unparsable_secret_is_reissued() {
        let s = spec("commonName: a");
        let secret = SecretState::Owned {
            material: Err("tls.key is missing".into()),
            rotation_token: None,
            restored: false,
        };
        let d = run(&s, secret, &IssuerState::SelfSigned, None, t0());
        assert!(
            matches!(reason_of(&d), Some(IssueReason::Invalid(why)) if why.contains("tls.key"))
        );
    }

    #[test]
    fn valid_material_is_kept_until_the_renewal_time() {
        let s = spec("commonName: a\nduration: 90h");
        let m = issued(&s, None, t0());
        // Default: renew when a third of 90h remains, i.e. 60h after issuance.
        let d = run(
            &s,
            owned(m.clone(), None),
            &IssuerState::SelfSigned,
            None,
            t0() + 59 * HOUR,
        );
        assert!(matches!(d, Decision::Keep(_)), "{d:?}");
        let d = run(
            &s,
            owned(m, None),
            &IssuerState::SelfSigned,
            None,
            t0() + 60 * HOUR,
        );
        assert_eq!(reason_of(&d), Some(IssueReason::RenewalDue));
    }

    #[test]
    fn renewal_time_follows_renew_before_or_percentage() {
        let s = spec("commonName: a\nduration: 100h\nrotation: {renewBefore: 10h}");
        let m = issued(&s, None, t0());
        assert_eq!(renewal_time(&s, &m), Some(t0() + 90 * HOUR));
        let s = spec("commonName: a\nduration: 100h\nrotation: {renewBeforePercentage: 25}");
        let m = issued(&s, None, t0());
        assert_eq!(renewal_time(&s, &m), Some(t0() + 75 * HOUR));
    }

    #[test]
    fn rotation_policy_never_keeps_the_key_on_renewal() {
        let s = spec("commonName: a\nduration: 3h\nprivateKey: {rotationPolicy: Never}");
        let m = issued(&s, None, t0());
        let public = m.key.public_key_der().expect("public key");
        match run(
            &s,
            owned(m, None),
            &IssuerState::SelfSigned,
            None,
            t0() + 2 * HOUR,
        ) {
            Decision::Issue {
                reason: IssueReason::RenewalDue,
                reuse_key: Some(key),
            } => {
                assert_eq!(key.public_key_der().expect("public key"), public);
            }
            other => panic!("{other:?}"),
        }
        let s = spec("commonName: a\nduration: 3h");
        let m = issued(&s, None, t0());
        let d = run(
            &s,
            owned(m, None),
            &IssuerState::SelfSigned,
            None,
            t0() + 2 * HOUR,
        );
        assert!(
            matches!(
                d,
                Decision::Issue {
                    reuse_key: None,
                    ..
                }
            ),
            "{d:?}"
        );
    }

    #[test]
    fn a_new_rotate_token_rotates_once() {
        let s = spec("commonName: a");
        let m = issued(&s, None, t0());
        let d = run(
            &s,
            owned(m.clone(), None),
            &IssuerState::SelfSigned,
            Some("1"),
            t0(),
        );
        assert_eq!(reason_of(&d), Some(IssueReason::RotationRequested));
        let d = run(
            &s,
            owned(m, Some("1")),
            &IssuerState::SelfSigned,
            Some("1"),
            t0(),
        );
        assert!(matches!(d, Decision::Keep(_)), "{d:?}");
    }

    #[test]
    fn a_changed_spec_reissues() {
        let s = spec("commonName: a\ndnsNames: [a.example.com]");
        let m = issued(&s, None, t0());
        let changed = spec("commonName: a\ndnsNames: [b.example.com]");
        let d = run(
            &changed,
            owned(m, None),
            &IssuerState::SelfSigned,
            None,
            t0(),
        );
        assert!(
            matches!(reason_of(&d), Some(IssueReason::SpecChanged(_))),
            "{d:?}"
        );
    }

    #[test]
    fn a_renewed_ca_reissues_its_leaves() {
        let ca_spec = spec("commonName: ca\nisCA: true");
        let ca = issued(&ca_spec, None, t0());
        let s = spec("commonName: leaf\nissuerRef: {name: ca}");
        let leaf = issued(&s, Some(&ca), t0());
        let same = IssuerState::Ready(Box::new(ca));
        assert!(matches!(
            run(&s, owned(leaf.clone(), None), &same, None, t0()),
            Decision::Keep(_)
        ));
        let renewed = IssuerState::Ready(Box::new(issued(&ca_spec, None, t0() + HOUR)));
        let d = run(&s, owned(leaf, None), &renewed, None, t0() + HOUR);
        assert!(
            matches!(reason_of(&d), Some(IssueReason::SpecChanged(_))),
            "{d:?}"
        );
    }

    #[test]
    fn a_foreign_secret_conflicts_unless_adoptable() {
        let s = spec("commonName: a");
        let foreign = |m: Option<TlsMaterial>| SecretState::Foreign {
            owner: Some("CertificateKeyPair/other".into()),
            material: m,
        };
        let d = run(&s, foreign(None), &IssuerState::SelfSigned, None, t0());
        assert!(
            matches!(&d, Decision::Conflict(m) if m.contains("CertificateKeyPair/other") && m.contains("ns/web")),
            "{d:?}"
        );

        let adopt = spec("commonName: a\ntarget: {existingSecret: Adopt}");
        let m = issued(&adopt, None, t0());
        // Another keysmith resource's Secret is never adopted, even when it would fit.
        let d = run(
            &adopt,
            foreign(Some(m.clone())),
            &IssuerState::SelfSigned,
            None,
            t0(),
        );
        assert!(
            matches!(&d, Decision::Conflict(m) if m.contains("never adopted")),
            "{d:?}"
        );
        let unowned = |m: Option<TlsMaterial>| SecretState::Foreign {
            owner: None,
            material: m,
        };
        assert!(matches!(
            run(
                &adopt,
                unowned(Some(m)),
                &IssuerState::SelfSigned,
                None,
                t0()
            ),
            Decision::Adopt(_)
        ));
        let foreign = unowned;
        let other = issued(&spec("commonName: b"), None, t0());
        let d = run(
            &adopt,
            foreign(Some(other)),
            &IssuerState::SelfSigned,
            None,
            t0(),
        );
        assert!(
            matches!(&d, Decision::Conflict(m) if m.contains("does not satisfy")),
            "{d:?}"
        );
        // With Fail, even matching material is not taken.
        let m = issued(&s, None, t0());
        assert!(matches!(
            run(&s, foreign(Some(m)), &IssuerState::SelfSigned, None, t0()),
            Decision::Conflict(_)
        ));
    }

    #[test]
    fn an_unavailable_issuer_keeps_valid_material_and_reports_expiry() {
        let unavailable = IssuerState::Unavailable {
            reason: reason::REFERENCE_NOT_READY,
            message: "ca not ready".into(),
        };
        let s = spec("commonName: a\nduration: 2h\nissuerRef: {name: ca}");
        let d = run(&s, SecretState::Absent, &unavailable, None, t0());
        assert!(
            matches!(
                d,
                Decision::WaitForIssuer {
                    reason: reason::REFERENCE_NOT_READY,
                    current: None,
                    ..
                }
            ),
            "{d:?}"
        );

        let ca = issued(&spec("commonName: ca\nisCA: true"), None, t0());
        let leaf = issued(&s, Some(&ca), t0());
        let d = run(
            &s,
            owned(leaf.clone(), None),
            &unavailable,
            None,
            t0() + HOUR,
        );
        assert!(
            matches!(
                d,
                Decision::WaitForIssuer {
                    current: Some(_),
                    ..
                }
            ),
            "{d:?}"
        );
        let d = run(&s, owned(leaf, None), &unavailable, None, t0() + 3 * HOUR);
        assert!(matches!(d, Decision::Expired { .. }), "{d:?}");
    }

    #[test]
    fn a_changed_spec_is_not_ready_while_the_issuer_is_away() {
        let unavailable = IssuerState::Unavailable {
            reason: reason::REFERENCE_NOT_READY,
            message: "ca not ready".into(),
        };
        let ca = issued(&spec("commonName: ca\nisCA: true"), None, t0());
        let s = spec("commonName: a\nissuerRef: {name: ca}");
        let leaf = issued(&s, Some(&ca), t0());
        let d = decide(Inputs {
            spec: &s,
            rotate_request: None,
            secret: owned(leaf, None),
            issuer: &unavailable,
            now: t0() + HOUR,
            secret_name: "ns/web",
            spec_settled: false,
        });
        assert!(
            matches!(d, Decision::WaitForIssuer { current: None, .. }),
            "valid old material must not keep a new spec Ready: {d:?}"
        );
    }
}
