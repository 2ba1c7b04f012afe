use std::time::Duration;

use super::*;
use crate::api::keyring_secret::{CertSingleParams, DhParams, KeyringParams, PskParams};

fn spec(type_: KeyringSecretType, params: KeyringParams) -> KeyringSecretSpec {
    KeyringSecretSpec {
        keyring_id: None,
        type_,
        note: None,
        params,
        issuer_ref: None,
        target: Default::default(),
        rotation: None,
    }
}

fn psk_spec(length: u32) -> KeyringSecretSpec {
    spec(
        KeyringSecretType::psk,
        KeyringParams {
            psk: Some(PskParams { length }),
            ..Default::default()
        },
    )
}

#[test]
fn keyring_id_defaults_to_the_name_with_underscores() {
    let s = psk_spec(32);
    assert_eq!(keyring_id(&s, "vpn-psk.site-a").unwrap(), "vpn_psk_site_a");
    let err = keyring_id(&s, "1-psk").unwrap_err();
    assert!(
        err.contains("\"1_psk\"") && err.contains("spec.keyringId"),
        "{err}"
    );
    let explicit = KeyringSecretSpec {
        keyring_id: Some("Given_id".into()),
        ..psk_spec(32)
    };
    assert_eq!(keyring_id(&explicit, "1-psk").unwrap(), "Given_id");
    assert!(keyring_id(&s, &"a".repeat(129)).is_err());
    assert!(keyring_id(&s, &"a".repeat(128)).is_ok());
}

#[test]
fn plans_follow_the_type_and_its_defaults() {
    assert!(matches!(
        plan(&psk_spec(7), "x").unwrap(),
        Plan::Simple(Recipe::Psk { length: 7 })
    ));
    let dh = spec(
        KeyringSecretType::dhparam,
        KeyringParams {
            dhparam: Some(DhParams {
                group: DhGroup::Generate,
                bits: None,
            }),
            ..Default::default()
        },
    );
    assert!(matches!(
        plan(&dh, "x").unwrap(),
        Plan::Simple(Recipe::Dh(DhRecipe::Generate(2048)))
    ));
    let missing = spec(KeyringSecretType::openvpn, KeyringParams::default());
    let err = plan(&missing, "x").unwrap_err().to_string();
    assert_eq!(err, "params.openvpn is required for type openvpn");
    let single = spec(
        KeyringSecretType::cert_single,
        KeyringParams {
            cert_single: Some(CertSingleParams {
                id: "dev1".into(),
                modifier: Some(CertModifier::openvpn_client),
            }),
            ..Default::default()
        },
    );
    assert!(matches!(
        plan(&single, "x").unwrap(),
        Plan::CertSingle { ref id, modifier: Some(CertModifier::openvpn_client) } if id == "dev1"
    ));
}

#[test]
fn modifiers_map_to_openvpn_usages() {
    let server = modifier_usages(Some(CertModifier::openvpn_server));
    assert!(server.contains(&KeyUsage::ServerAuth) && !server.contains(&KeyUsage::ClientAuth));
    let client = modifier_usages(Some(CertModifier::openvpn_client));
    assert!(client.contains(&KeyUsage::ClientAuth) && !client.contains(&KeyUsage::ServerAuth));
    assert!(modifier_usages(None).is_empty());
}

#[test]
fn the_issuer_is_the_reference_then_the_default_then_none() {
    let reference = IssuerReference {
        name: "ca".into(),
        namespace: None,
    };
    let default = ("pki".to_owned(), "root".to_owned());
    assert_eq!(
        issuer_choice(Some(&reference), "edge", Some(&default)),
        IssuerChoice::Referenced("edge".into(), "ca".into())
    );
    assert_eq!(
        issuer_choice(None, "edge", Some(&default)),
        IssuerChoice::OperatorDefault("pki".into(), "root".into())
    );
    assert_eq!(issuer_choice(None, "edge", None), IssuerChoice::SelfSigned);
}

fn inputs(
    found: Found<u32>,
    rotate: Option<&'static str>,
    rotate_at: Option<SystemTime>,
) -> Inputs<'static, u32> {
    Inputs {
        found,
        rotate_request: rotate,
        rotate_at,
        existing_secret: ExistingSecretPolicy::Fail,
        now: SystemTime::UNIX_EPOCH + Duration::from_secs(1000),
        secret_name: "ns/s",
    }
}

fn owned(material: Result<u32, String>, token: Option<&str>) -> Found<u32> {
    Found::Owned {
        material,
        rotation_token: token.map(str::to_owned),
        generated_at: None,
        restored: false,
    }
}

fn restored(material: Result<u32, String>) -> Found<u32> {
    match owned(material, None) {
        Found::Owned {
            material,
            rotation_token,
            generated_at,
            ..
        } => Found::Owned {
            material,
            rotation_token,
            generated_at,
            restored: true,
        },
        other => other,
    }
}

#[test]
fn restored_material_is_kept_when_valid_and_never_replaced_when_not() {
    // Valid and satisfying the spec: kept as it is (the write takes the Secret back).
    assert!(matches!(
        decide(inputs(restored(Ok(1)), None, None), equals(1)),
        Decision::Keep(1)
    ));
    // Unreadable, or not what the spec asks: left untouched, where our own would be
    // generated again.
    let unreadable = decide(
        inputs(restored(Err("garbled".into())), None, None),
        equals(1),
    );
    assert!(
        matches!(unreadable, Decision::Conflict(ref m) if m.contains("garbled") && m.contains("not taken back"))
    );
    let other = decide(inputs(restored(Ok(2)), None, None), equals(1));
    assert!(matches!(other, Decision::Conflict(ref m) if m.contains("2 is not 1")));
    assert!(matches!(
        decide(inputs(owned(Ok(2), None), None, None), equals(1)),
        Decision::Generate { .. }
    ));
}

fn equals(wanted: u32) -> impl Fn(&u32) -> Result<(), Mismatch> {
    move |m| {
        if *m == wanted {
            Ok(())
        } else {
            Err(Mismatch(format!("{m} is not {wanted}")))
        }
    }
}

#[test]
fn decide_keeps_valid_material_and_generates_for_a_reason() {
    let keep = decide(inputs(owned(Ok(1), None), None, None), equals(1));
    assert!(matches!(keep, Decision::Keep(1)));
    let missing = decide(inputs(Found::Absent, None, None), equals(1));
    assert!(matches!(
        missing,
        Decision::Generate {
            why: Why::Missing,
            current: None
        }
    ));
    let invalid = decide(
        inputs(owned(Err("bad".into()), None), None, None),
        equals(1),
    );
    assert!(matches!(
        invalid,
        Decision::Generate {
            why: Why::Invalid(_),
            current: None
        }
    ));
    let changed = decide(inputs(owned(Ok(2), None), None, None), equals(1));
    assert!(matches!(
        changed,
        Decision::Generate {
            why: Why::SpecChanged(_),
            current: None
        }
    ));
    let requested = decide(inputs(owned(Ok(1), Some("a")), Some("b"), None), equals(1));
    assert!(matches!(
        requested,
        Decision::Generate {
            why: Why::RotationRequested,
            current: Some(1)
        }
    ));
    let answered = decide(inputs(owned(Ok(1), Some("b")), Some("b"), None), equals(1));
    assert!(matches!(answered, Decision::Keep(1)));
    let due = SystemTime::UNIX_EPOCH + Duration::from_secs(999);
    let rotated = decide(inputs(owned(Ok(1), None), None, Some(due)), equals(1));
    assert!(matches!(
        rotated,
        Decision::Generate {
            why: Why::RotationDue,
            current: Some(1)
        }
    ));
    let later = SystemTime::UNIX_EPOCH + Duration::from_secs(1001);
    let kept = decide(inputs(owned(Ok(1), None), None, Some(later)), equals(1));
    assert!(matches!(kept, Decision::Keep(1)));
}

#[test]
fn foreign_secrets_are_adopted_only_when_asked_and_valid() {
    let foreign = |owner: Option<&str>, material| Found::Foreign {
        owner: owner.map(str::to_owned),
        material,
    };
    let refused = decide(inputs(foreign(None, Some(1)), None, None), equals(1));
    assert!(matches!(refused, Decision::Conflict(ref m) if m.contains("existingSecret: Adopt")));
    let mut adopt = inputs(foreign(None, Some(1)), None, None);
    adopt.existing_secret = ExistingSecretPolicy::Adopt;
    assert!(matches!(decide(adopt, equals(1)), Decision::Adopt(1)));
    let mut wrong = inputs(foreign(None, Some(2)), None, None);
    wrong.existing_secret = ExistingSecretPolicy::Adopt;
    assert!(
        matches!(decide(wrong, equals(1)), Decision::Conflict(ref m) if m.contains("2 is not 1"))
    );
    let mut other = inputs(foreign(Some("SshKey/x"), Some(1)), None, None);
    other.existing_secret = ExistingSecretPolicy::Adopt;
    assert!(
        matches!(decide(other, equals(1)), Decision::Conflict(ref m) if m.contains("SshKey/x"))
    );
}
