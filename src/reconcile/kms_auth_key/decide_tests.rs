use super::*;
use crate::api::common::{LocalObjectReference, SecretKeySelector};
use crate::api::key_manager::{KeyManagerSpec, KmipServer};

fn manager(enabled: bool, servers: usize, max: u32) -> KeyManager {
    let server = |i: usize| KmipServer {
        name: format!("kmip-{i}"),
        address: "127.0.0.1:5696".into(),
        server_name: None,
        ca_secret_ref: SecretKeySelector {
            name: "ca".into(),
            key: "ca.crt".into(),
        },
        client_certificate_secret_ref: LocalObjectReference {
            name: "client".into(),
        },
    };
    KeyManager::new(
        "ekm",
        KeyManagerSpec {
            enabled,
            max_auth_keys: max,
            servers: (0..servers).map(server).collect(),
        },
    )
}

#[test]
fn the_manager_must_exist_be_enabled_have_servers_and_room() {
    assert_eq!(admit(Some(&manager(true, 2, 2)), "ns/ekm", 1), Ok(()));
    let reason_of = |r: Result<(), Refusal>| r.unwrap_err().reason;
    assert_eq!(
        reason_of(admit(None, "ns/ekm", 0)),
        reason::REFERENCE_NOT_FOUND
    );
    let disabled = admit(Some(&manager(false, 2, 2)), "ns/ekm", 0).unwrap_err();
    assert_eq!(disabled.reason, reason::KEY_MANAGER_DISABLED);
    assert!(
        disabled
            .message
            .starts_with("external key management is not enabled")
    );
    assert_eq!(
        reason_of(admit(Some(&manager(true, 0, 2)), "ns/ekm", 0)),
        reason::NO_KEY_SERVERS
    );
    let full = admit(Some(&manager(true, 2, 2)), "ns/ekm", 2).unwrap_err();
    assert_eq!(full.reason, reason::KEY_MANAGER_LIMIT_REACHED);
    assert!(
        full.message.contains("allows 2") && full.message.contains("number 3"),
        "{}",
        full.message
    );
}

fn key(id: &str, tag: &str, passphrase: &str) -> AuthKey {
    AuthKey {
        key_id: id.into(),
        key_tag: tag.into(),
        passphrase: SecretString::new(passphrase.to_owned()),
    }
}

#[test]
fn the_key_must_match_id_tag_and_passphrase() {
    let generated = Wanted {
        key_id: None,
        key_tag: "tag".into(),
        passphrase: WantedPassphrase::Generated(20),
    };
    assert!(
        generated
            .check(&key("ab", "tag", "01234567890123456789"))
            .is_ok()
    );
    assert!(
        generated
            .check(&key("ab", "other", "01234567890123456789"))
            .is_ok(),
        "a new tag needs no new key"
    );
    let why = generated
        .check(&key("ab", "tag", "0123456789012345678901"))
        .unwrap_err();
    assert!(
        why.0.contains("22 characters") && !why.0.contains("0123"),
        "{why}"
    );
    let brought = Wanted {
        key_id: Some("ab".into()),
        key_tag: String::new(),
        passphrase: WantedPassphrase::Brought(SecretString::new("x".repeat(20))),
    };
    assert!(brought.check(&key("ab", "", &"x".repeat(20))).is_ok());
    assert!(brought.check(&key("cd", "", &"x".repeat(20))).is_err());
    assert!(brought.check(&key("ab", "", &"y".repeat(20))).is_err());
}

fn server(name: &str, state: PushState, uid: Option<&str>) -> KmsAuthKeyServerStatus {
    KmsAuthKeyServerStatus {
        name: name.into(),
        state,
        unique_identifier: uid.map(str::to_owned),
        message: String::new(),
        last_attempt_time: None,
    }
}

#[test]
fn registered_servers_are_not_contacted_again_for_the_same_key() {
    let previous = [
        server("a", PushState::Registered, Some("1")),
        server("b", PushState::Failed, None),
    ];
    assert_eq!(
        server_plan(true, &previous, "a"),
        ServerPlan::Done {
            unique_identifier: "1".into()
        }
    );
    assert_eq!(server_plan(true, &previous, "b"), ServerPlan::Push);
    assert_eq!(
        server_plan(false, &previous, "a"),
        ServerPlan::Push,
        "another key"
    );
    assert_eq!(server_plan(true, &previous, "new"), ServerPlan::Push);
}

#[test]
fn readiness_follows_the_servers() {
    let all = [
        server("a", PushState::Registered, Some("1")),
        server("b", PushState::Registered, Some("2")),
    ];
    assert!(readiness(&all).0);
    assert_eq!(readiness(&all).1, REGISTERED);
    let some = [
        server("a", PushState::Registered, Some("1")),
        server("b", PushState::Failed, None),
    ];
    let (ready, reason, message) = readiness(&some);
    assert!(ready);
    assert_eq!(reason, reason::PARTIALLY_PUSHED);
    assert!(
        message.contains("1 of 2") && message.contains("not on b"),
        "{message}"
    );
    let none = [server("a", PushState::Failed, None)];
    let (ready, reason, message) = readiness(&none);
    assert!(!ready);
    assert_eq!(reason, reason::PUSH_FAILED);
    assert_eq!(
        message,
        "failed to push authentication key to any registered key server"
    );
}

#[test]
fn pushed_names_the_servers_registered_by_this_reconcile() {
    let before = [
        server("a", PushState::Registered, Some("1")),
        server("b", PushState::Failed, None),
        server("c", PushState::Registered, Some("3")),
    ];
    let after = [
        server("a", PushState::Registered, Some("1")),
        server("b", PushState::Registered, Some("2")),
        server("c", PushState::Registered, Some("4")),
        server("d", PushState::Failed, None),
    ];
    assert_eq!(newly_registered(&before, &after), ["b", "c"]);
    assert!(newly_registered(&after, &after).is_empty());
    assert_eq!(newly_registered(&[], &after[..1]), ["a"]);
}
