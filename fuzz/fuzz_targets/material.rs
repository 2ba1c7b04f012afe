//! Every parser of single pieces of material that keysmith reads from Secrets or files:
//! PEM and DER certificates and keys, OpenSSH keys and certificates, DH parameters, OpenVPN
//! static keys, PKCS#12 keystores, htpasswd lines, KMIP passphrases and key ids. The first
//! byte picks the parser, the rest is its input.
#![no_main]

use keysmith::material::SecretString;
use keysmith::material::describe;
use keysmith::material::pkey::PrivateKey;
use keysmith::material::ssh::{SshCertificate, SshKeyPair};
use keysmith::material::{dh, kms, parse, pkcs12, random};
use keysmith_fuzz::text;
use libfuzzer_sys::fuzz_target;

/// The password and passphrase the seeds' encrypted material was made with.
const PASSWORD: &str = "fuzz-password";

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    match selector % 12 {
        0 => x509_pem(input),
        1 => private_keys(input),
        2 => {
            let _ = describe::key_kind(input);
        }
        3 => ssh_public(&text(input)),
        4 => ssh_private(input),
        5 => {
            let _ = dh::parse(input);
        }
        6 => {
            let _ = random::parse_openvpn_static_key(input);
        }
        7 => pkcs12_file(input),
        8 => htpasswd(&text(input)),
        9 => kms_values(input),
        10 => ssh_certificate(&text(input)),
        _ => {
            let _ = parse::certificates_from_pem(input);
        }
    }
});

/// Certificates of a PEM bundle, described and checked against each other.
fn x509_pem(input: &[u8]) {
    let Ok(certificates) = describe::certificates_among(input) else {
        return;
    };
    for cert in &certificates {
        let _ = describe::certificate(cert);
        let _ = cert.info();
        for issuer in &certificates {
            let _ = describe::signed_by(cert, issuer);
        }
    }
}

/// Private keys as PEM (any label keysmith reads) and as DER.
fn private_keys(input: &[u8]) {
    let _ = PrivateKey::from_pem(input);
    let _ = PrivateKey::from_pkcs8_der(input);
    let _ = describe::private_key_der(input);
    if let Ok(key) = describe::private_key_pem(input)
        && let Ok(certificates) = describe::certificates_among(input)
    {
        for cert in &certificates {
            let _ = describe::key_matches(&key, cert);
        }
    }
}

/// An authorized_keys line.
fn ssh_public(line: &str) {
    if let Ok(details) = describe::ssh_public_key(line) {
        let _ = details.keygen_line();
    }
}

/// An OpenSSH private key, without and with the passphrase.
fn ssh_private(input: &[u8]) {
    let _ = describe::ssh_private_key(input);
    let _ = SshKeyPair::from_openssh(input, None);
    let passphrase = SecretString::new(PASSWORD.to_owned());
    if let Ok(pair) = SshKeyPair::from_openssh(input, Some(&passphrase)) {
        let _ = pair.authorized_key();
        let _ = pair.fingerprint_md5();
    }
}

/// An OpenSSH certificate line, alone and against its own key.
fn ssh_certificate(line: &str) {
    let _ = describe::ssh_certificate(line);
    if let Ok(cert) = SshCertificate::parse(line) {
        let _ = cert.info();
    }
    let _ = describe::ssh_certificate_certifies(line, line);
}

/// A PKCS#12 file: its MAC without a password, and its entries with the password.
fn pkcs12_file(input: &[u8]) {
    let _ = pkcs12::contents(input, None);
    let _ = pkcs12::contents(input, Some(&SecretString::new(PASSWORD.to_owned())));
}

/// An htpasswd line checked against the password it was made with.
fn htpasswd(line: &str) {
    let password = SecretString::new(PASSWORD.to_owned());
    let _ = random::htpasswd_line_verifies(&SecretString::new(line.to_owned()), "fuzz", &password);
}

/// A KMIP passphrase and key id as keysmith checks existing ones.
fn kms_values(input: &[u8]) {
    let _ = kms::check_passphrase(input);
    let _ = kms::check_key_id(&text(input));
}
