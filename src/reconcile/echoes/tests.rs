use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{SecretEchoes, Writer};

fn secret(namespace: &str, name: &str, version: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            namespace: Some(namespace.to_owned()),
            name: Some(name.to_owned()),
            resource_version: Some(version.to_owned()),
            ..ObjectMeta::default()
        },
        ..Secret::default()
    }
}

const WRITER: Writer<'static> = Writer {
    kind: "CertificateKeyPair",
    namespace: "a",
    name: "web",
};

/// What the wake-up stream holds now, without waiting.
fn woken(stream: &mut futures::channel::mpsc::UnboundedReceiver<(String, String)>) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(Some((ns, name))) = stream.next().now_or_never() {
        out.push(format!("{ns}/{name}"));
    }
    out
}

#[test]
fn the_written_version_is_an_echo_once() {
    let echoes = SecretEchoes::default();
    echoes
        .writing("a", "tls")
        .wrote(&secret("a", "tls", "100"), WRITER);
    assert!(echoes.is_own_echo(&secret("a", "tls", "100")));
    assert!(!echoes.is_own_echo(&secret("a", "tls", "100")));
    assert!(echoes.is_empty());
}

#[test]
fn another_version_or_secret_is_not_an_echo() {
    let echoes = SecretEchoes::default();
    echoes
        .writing("a", "tls")
        .wrote(&secret("a", "tls", "100"), WRITER);
    assert!(!echoes.is_own_echo(&secret("b", "tls", "100")));
    assert!(!echoes.is_own_echo(&secret("a", "other", "100")));
    assert_eq!(echoes.len(), 1);
    // A later change by someone else settles the write: it is not an echo, nor is the
    // written version if it shows up after it.
    assert!(!echoes.is_own_echo(&secret("a", "tls", "101")));
    assert!(!echoes.is_own_echo(&secret("a", "tls", "100")));
}

#[test]
fn the_latest_write_is_the_one_expected() {
    let echoes = SecretEchoes::default();
    echoes
        .writing("a", "tls")
        .wrote(&secret("a", "tls", "100"), WRITER);
    echoes
        .writing("a", "tls")
        .wrote(&secret("a", "tls", "105"), WRITER);
    assert!(echoes.is_own_echo(&secret("a", "tls", "105")));
}

#[test]
fn an_echo_that_beats_the_response_is_held_and_then_dropped() {
    let echoes = SecretEchoes::default();
    let mut wakeups = echoes.changed_meanwhile("CertificateKeyPair");
    let write = echoes.writing("a", "tls");
    assert!(echoes.is_own_echo(&secret("a", "tls", "100")), "held back");
    write.wrote(&secret("a", "tls", "100"), WRITER);
    assert!(woken(&mut wakeups).is_empty(), "it was the echo");
    assert!(echoes.is_empty(), "settled");
    assert!(
        !echoes.is_own_echo(&secret("a", "tls", "101")),
        "a later change reaches the controller"
    );
}

#[test]
fn another_change_during_the_write_reconciles_the_writer_again() {
    let echoes = SecretEchoes::default();
    let mut wakeups = echoes.changed_meanwhile("CertificateKeyPair");
    let mut others = echoes.changed_meanwhile("SshKey");
    let write = echoes.writing("a", "tls");
    assert!(echoes.is_own_echo(&secret("a", "tls", "100")));
    assert!(echoes.is_own_echo(&secret("a", "tls", "101")));
    write.wrote(&secret("a", "tls", "100"), WRITER);
    assert_eq!(woken(&mut wakeups), ["a/web"]);
    assert!(woken(&mut others).is_empty(), "only the writer's kind");
    assert!(echoes.is_empty());
}

#[test]
fn a_failed_or_abandoned_write_settles_nothing_and_holds_nothing_back() {
    let echoes = SecretEchoes::default();
    let write = echoes.writing("a", "tls");
    assert!(echoes.is_own_echo(&secret("a", "tls", "100")));
    drop(write);
    assert!(echoes.is_empty());
    assert!(!echoes.is_own_echo(&secret("a", "tls", "101")));
}
