//! The `keysmith` binary's command line.

use std::process::Command;

fn keysmith(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .args(args)
        .output()
        .expect("run keysmith")
}

#[test]
fn version_prints_the_package_version() {
    let out = keysmith(&["--version"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim(),
        format!("keysmith {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_describes_the_command() {
    let out = keysmith(&["--help"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Usage: keysmith"), "{stdout}");
    assert!(stdout.contains("secret material"), "{stdout}");
}

#[test]
fn no_arguments_prints_usage_and_fails() {
    let out = keysmith(&[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage: keysmith"));
}

#[test]
fn unknown_flag_is_rejected() {
    let out = keysmith(&["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
}

#[path = "support/openssl.rs"]
#[allow(dead_code)]
mod openssl;

#[path = "cli/generate.rs"]
mod generate;
