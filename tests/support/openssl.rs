//! Running the real `openssl` CLI on material taken from Secrets.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch directory for files handed to openssl.
pub struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    /// A new empty directory.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Writes `bytes` to `name` and returns the path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).expect("write file");
        path
    }
}

/// Runs openssl with `args`; returns (success, stdout + stderr).
pub fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Runs openssl and panics with its output when it fails.
pub fn ok(args: &[&str]) -> String {
    let (success, text) = run(args);
    assert!(success, "openssl {} failed:\n{text}", args.join(" "));
    text
}

/// `openssl verify` of `leaf` against `ca` with `untrusted` intermediates; returns output.
pub fn verify(ca: &Path, untrusted: Option<&Path>, leaf: &Path) -> (bool, String) {
    let ca = ca.to_string_lossy();
    let leaf = leaf.to_string_lossy();
    match untrusted {
        Some(chain) => run(&[
            "verify",
            "-CAfile",
            &ca,
            "-untrusted",
            &chain.to_string_lossy(),
            &leaf,
        ]),
        None => run(&["verify", "-CAfile", &ca, &leaf]),
    }
}

/// The certificates of a PEM bundle, one PEM string each.
pub fn split_pem(bundle: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bundle);
    text.split_inclusive("-----END CERTIFICATE-----\n")
        .filter(|block| block.contains("BEGIN CERTIFICATE"))
        .map(|block| block.trim_start().to_owned())
        .collect()
}
