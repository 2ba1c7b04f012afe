//! SSH material: the public key as `ssh-keygen -l` prints it, the private key file's
//! envelope (encrypted or not; never its content), `known_hosts` and the certificate.

use crate::material::describe::{self, SshPublicKeyDetails};
use crate::material::ssh::{
    CertificateType, KNOWN_HOSTS, SSH_CERTIFICATE, SSH_PRIVATE_KEY, SSH_PUBLIC_KEY,
};

use super::{Context, Data, Section, expires, timestamp, yes_no};

/// The sections of the SSH material in `data`.
pub(super) fn sections(data: &Data, ctx: &Context<'_>) -> Vec<Section> {
    let public = data
        .get(SSH_PUBLIC_KEY)
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned());
    let mut out = Vec::new();
    if let Some(line) = &public {
        out.push(public_key(line));
    }
    if let Some(pem) = data.get(SSH_PRIVATE_KEY) {
        out.push(private_key(pem, public.as_deref()));
    }
    if let Some(lines) = data.get(KNOWN_HOSTS) {
        out.push(known_hosts(
            &String::from_utf8_lossy(lines),
            public.as_deref(),
        ));
    }
    if let Some(line) = data.get(SSH_CERTIFICATE) {
        out.push(certificate(
            &String::from_utf8_lossy(line),
            public.as_deref(),
            ctx,
        ));
    }
    out
}

fn public_key(line: &str) -> Section {
    let mut section = Section::new("SSH public key (ssh-publickey)", &[SSH_PUBLIC_KEY]);
    match describe::ssh_public_key(line) {
        Ok(details) => {
            describe_key(&mut section, &details);
            section.canonical = Some(details.fingerprint);
        }
        Err(e) => section.field("Problem", e.to_string()),
    }
    section
}

fn describe_key(section: &mut Section, details: &SshPublicKeyDetails) {
    section.field("ssh-keygen -l", details.keygen_line());
    section.field(
        "Type",
        format!("{}, {} bits", details.key_type, details.bits),
    );
    section.field("Fingerprint", details.fingerprint.clone());
    section.field("Comment", details.comment.clone());
}

/// The fingerprint of an authorized_keys line, if it is one.
fn fingerprint_of(line: Option<&str>) -> Option<String> {
    describe::ssh_public_key(line?).ok().map(|d| d.fingerprint)
}

fn private_key(pem: &[u8], public: Option<&str>) -> Section {
    let mut section = Section::new("SSH private key (ssh-privatekey)", &[SSH_PRIVATE_KEY]);
    match describe::ssh_private_key(pem) {
        Ok(envelope) => {
            let encryption = envelope.encryption.map_or_else(
                || "none".to_owned(),
                |how| format!("{how} (passphrase-protected)"),
            );
            section.field("Encryption", encryption);
            let details = envelope.public;
            section.field(
                "Type",
                format!("{}, {} bits", details.key_type, details.bits),
            );
            section.field("Public key fingerprint", details.fingerprint.clone());
            match fingerprint_of(public) {
                Some(public) => section.field(
                    "Matches ssh-publickey",
                    yes_no(public == details.fingerprint),
                ),
                None => section.canonical = Some(details.fingerprint),
            }
        }
        Err(e) => section.field("Problem", e.to_string()),
    }
    section
}

fn known_hosts(text: &str, public: Option<&str>) -> Section {
    let mut section = Section::new("known_hosts", &[KNOWN_HOSTS]);
    let ours = fingerprint_of(public);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (hosts, key) = line.split_once(' ').unwrap_or((line, ""));
        let value = match describe::ssh_public_key(key) {
            Ok(details) => {
                let matches = match &ours {
                    Some(ours) => format!(
                        ", matches ssh-publickey: {}",
                        yes_no(*ours == details.fingerprint)
                    ),
                    None => String::new(),
                };
                format!("{} {}{matches}", details.key_type, details.fingerprint)
            }
            Err(e) => e.to_string(),
        };
        section.field(&format!("Hosts {hosts}"), value);
    }
    section
}

fn certificate(line: &str, public: Option<&str>, ctx: &Context<'_>) -> Section {
    let mut section = Section::new("SSH certificate (ssh-certificate)", &[SSH_CERTIFICATE]);
    let details = match describe::ssh_certificate(line) {
        Ok(details) => details,
        Err(e) => {
            section.field("Problem", e.to_string());
            return section;
        }
    };
    let info = &details.info;
    let kind = match info.cert_type {
        CertificateType::User => "user certificate",
        CertificateType::Host => "host certificate",
    };
    section.field("Type", kind);
    section.field("Key ID", info.key_id.clone());
    section.field("Serial", info.serial.to_string());
    section.field("Principals", info.principals.join(", "));
    section.field("Valid after", timestamp(info.valid_after));
    section.field(
        "Valid before",
        format!(
            "{} ({})",
            timestamp(info.valid_before),
            expires(ctx.now, info.valid_before)
        ),
    );
    section.field("Extensions", none_if_empty(&info.extensions.join(", ")));
    let options: Vec<String> = info
        .critical_options
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    section.field("Critical options", none_if_empty(&options.join(", ")));
    section.field(
        "Certified key",
        format!("{} {}", details.key.key_type, details.key.fingerprint),
    );
    if let Some(public) = public {
        let certifies = describe::ssh_certificate_certifies(line, public);
        section.field("Certifies ssh-publickey", yes_no(certifies));
    }
    section.field(
        "Signing CA",
        format!("{} {}", details.ca.key_type, details.ca.fingerprint),
    );
    section.field(
        "Signature",
        if details.signature_valid {
            "verifies with the CA key"
        } else {
            "DOES NOT VERIFY"
        },
    );
    section
}

fn none_if_empty(text: &str) -> String {
    if text.is_empty() {
        "none".to_owned()
    } else {
        text.to_owned()
    }
}
