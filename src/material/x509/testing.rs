//! Test helpers shared by the material tests: the real `openssl` CLI, temp files, specs and
//! issued material.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::SystemTime;

use tempfile::TempDir;

use crate::api::certificate_key_pair::CertificateKeyPairSpec;
use crate::material::pkey::{KeyKind, PrivateKey};

use super::{Certificate, TlsMaterial, issue};

/// Runs `openssl` with `args`.
pub(crate) fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs")
}

/// Runs `openssl` and returns stdout (plus stderr, where some commands report), failing
/// the test with openssl's stderr when it exits non-zero.
pub(crate) fn openssl_ok(args: &[&str]) -> String {
    let out = openssl(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{stdout}\n{stderr}"
    );
    stdout + &stderr
}

/// Writes `bytes` to `dir/name`.
pub(crate) fn write_file(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write temp file");
    path
}

/// Writes the PEM of `certs` to `dir/name`.
pub(crate) fn write_pem(dir: &TempDir, name: &str, certs: &[&Certificate]) -> PathBuf {
    let pem: String = certs.iter().map(|c| c.to_pem()).collect();
    write_file(dir, name, pem.as_bytes())
}

/// A spec from JSON (every field of the spec has a default).
pub(crate) fn spec(json: serde_json::Value) -> CertificateKeyPairSpec {
    serde_json::from_value(json).expect("valid spec")
}

/// Issues material for `spec` with a fresh key of the spec's kind.
pub(crate) fn issue_new(
    spec: &CertificateKeyPairSpec,
    issuer: Option<&TlsMaterial>,
) -> TlsMaterial {
    let kind = KeyKind::from_spec(spec.private_key.algorithm, spec.private_key.size).unwrap();
    let key = PrivateKey::generate(kind).unwrap();
    issue(spec, key, issuer, SystemTime::now()).unwrap()
}

/// `openssl x509 -text -noout` of a certificate.
pub(crate) fn x509_text(cert: &Certificate) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write_pem(&dir, "c.pem", &[cert]);
    openssl_ok(&["x509", "-in", path.to_str().unwrap(), "-text", "-noout"])
}
