//! Tests of the OpenSSH module, checked against the real `ssh-keygen` (OpenSSH 9.2).

mod certificates;
mod keys;
mod secret_data;

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use tempfile::TempDir;

use super::*;

/// Every key kind keysmith generates.
const ALL_KINDS: [SshKeyKind; 7] = [
    SshKeyKind::Ed25519,
    SshKeyKind::EcdsaP256,
    SshKeyKind::EcdsaP384,
    SshKeyKind::EcdsaP521,
    SshKeyKind::Rsa(2048),
    SshKeyKind::Rsa(3072),
    SshKeyKind::Rsa(4096),
];

/// One generated key per kind (comment `<kind>@keysmith`), shared by the tests: RSA 4096
/// generation takes a while.
fn key(kind: SshKeyKind) -> &'static SshKeyPair {
    static KEYS: [OnceLock<SshKeyPair>; 7] = [const { OnceLock::new() }; 7];
    let index = ALL_KINDS
        .iter()
        .position(|k| *k == kind)
        .expect("a generated kind");
    KEYS[index].get_or_init(|| {
        SshKeyPair::generate(kind, &format!("{kind}@keysmith").replace(' ', "-")).expect("generate")
    })
}

/// A second Ed25519 key (another subject or CA).
fn other_ed25519() -> &'static SshKeyPair {
    static KEY: OnceLock<SshKeyPair> = OnceLock::new();
    KEY.get_or_init(|| SshKeyPair::generate(SshKeyKind::Ed25519, "other").expect("generate"))
}

fn passphrase(text: &str) -> SecretString {
    SecretString::new(text.to_owned())
}

/// Runs `ssh-keygen` with `args` (TZ=UTC, so validity times print in UTC).
fn ssh_keygen(args: &[&str]) -> Output {
    Command::new("ssh-keygen")
        .args(args)
        .env("TZ", "UTC")
        .output()
        .expect("ssh-keygen runs")
}

/// Runs `ssh-keygen` and returns its stdout, failing the test with its stderr when it
/// exits non-zero.
fn ssh_keygen_ok(args: &[&str]) -> String {
    let out = ssh_keygen(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ssh-keygen {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Writes `bytes` to `dir/name` with mode 0600 (ssh-keygen refuses readable private keys).
fn write_private(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .expect("create private file");
    file.write_all(bytes).expect("write private file");
    path
}

/// Writes `bytes` to `dir/name`.
fn write_public(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write file");
    path
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// `<algorithm> <base64>` of an authorized_keys line (without its comment).
fn key_part(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn temp_dir() -> TempDir {
    tempfile::tempdir().expect("temp dir")
}
