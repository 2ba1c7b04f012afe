//! The `kubernetes.io/ssh-auth` Secret data: writing, reading back, and `is_current`.

use std::time::Duration;

use super::*;

fn hostnames() -> Vec<String> {
    vec!["git.example.com".to_owned(), "10.0.0.7".to_owned()]
}

/// A host key with a host certificate by an Ed25519 CA.
fn host_material() -> SshMaterial {
    let key = key(SshKeyKind::EcdsaP256).clone();
    let start = UNIX_EPOCH + Duration::from_secs(1_750_000_000);
    let request = CertificateRequest {
        cert_type: CertificateType::Host,
        key_id: "git".to_owned(),
        principals: hostnames(),
        valid_after: start,
        valid_before: start + Duration::from_secs(3600),
        extensions: Vec::new(),
        critical_options: BTreeMap::new(),
    };
    let certificate = SshCertificate::issue(&key, other_ed25519(), &request).expect("issue");
    SshMaterial {
        key,
        certificate: Some(certificate),
    }
}

/// Secret data as the API server returns it.
fn plain(data: &BTreeMap<String, SecretBytes>) -> BTreeMap<String, Vec<u8>> {
    data.iter()
        .map(|(k, v)| (k.clone(), v.expose().to_vec()))
        .collect()
}

fn written(material: &SshMaterial, output: &SshOutput<'_>) -> BTreeMap<String, Vec<u8>> {
    plain(&ssh_secret_data(material, output).expect("secret data"))
}

fn current(
    existing: &BTreeMap<String, Vec<u8>>,
    material: &SshMaterial,
    output: &SshOutput<'_>,
) -> bool {
    ssh_secret_data_is_current(existing, material, output).expect("is_current")
}

fn text(data: &BTreeMap<String, Vec<u8>>, key: &str) -> String {
    String::from_utf8(data[key].clone()).expect("text")
}

#[test]
fn secret_data_holds_every_entry_and_reads_back() {
    let material = host_material();
    let hosts = hostnames();
    for pass in [None, Some(passphrase("s3cret"))] {
        let output = SshOutput {
            passphrase: pass.as_ref(),
            hostnames: &hosts,
            previous: None,
        };
        let data = written(&material, &output);
        assert_eq!(
            data.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                KNOWN_HOSTS,
                SSH_CERTIFICATE,
                SSH_PRIVATE_KEY,
                SSH_PUBLIC_KEY
            ]
        );
        assert_eq!(
            text(&data, SSH_PUBLIC_KEY),
            format!("{}\n", material.key.authorized_key())
        );
        assert_eq!(
            text(&data, KNOWN_HOSTS),
            format!("{}\n", known_hosts_line(&hosts, &material.key))
        );
        let certificate = material.certificate.as_ref().expect("certificate");
        assert_eq!(
            text(&data, SSH_CERTIFICATE),
            format!("{}\n", certificate.line())
        );
        assert!(text(&data, SSH_PRIVATE_KEY).starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));

        let read = read_ssh_secret(&data, pass.as_ref()).expect("read");
        assert_eq!(read.key.authorized_key(), material.key.authorized_key());
        assert_eq!(read.key.kind(), material.key.kind());
        assert_eq!(read.certificate.as_ref(), Some(certificate));
        assert!(current(&data, &read, &output));
        assert!(current(&data, &material, &output));
        // ssh-keygen reads the files as written.
        let dir = temp_dir();
        let private = write_private(&dir, "id", &data[SSH_PRIVATE_KEY]);
        let mut args = vec!["-y", "-f", path_str(&private)];
        if let Some(p) = &pass {
            args.extend(["-P", p.expose()]);
        }
        assert_eq!(
            ssh_keygen_ok(&args),
            text(&data, SSH_PUBLIC_KEY),
            "{}",
            pass.is_some()
        );
        let cert = write_public(&dir, "id-cert.pub", &data[SSH_CERTIFICATE]);
        assert!(ssh_keygen_ok(&["-L", "-f", path_str(&cert)]).contains("host certificate"));
        let known = write_public(&dir, "known_hosts", &data[KNOWN_HOSTS]);
        ssh_keygen_ok(&["-F", "10.0.0.7", "-f", path_str(&known)]);
    }
}

#[test]
fn minimal_secret_data_and_previous_copies() {
    let material = SshMaterial {
        key: key(SshKeyKind::Ed25519).clone(),
        certificate: None,
    };
    let data = written(&material, &SshOutput::default());
    assert_eq!(
        data.keys().map(String::as_str).collect::<Vec<_>>(),
        [SSH_PRIVATE_KEY, SSH_PUBLIC_KEY]
    );
    // Unencrypted data is deterministic.
    assert_eq!(data, written(&material, &SshOutput::default()));

    let previous = written(
        &host_material(),
        &SshOutput {
            hostnames: &hostnames(),
            ..SshOutput::default()
        },
    );
    let mut previous_with_extra = previous.clone();
    previous_with_extra.insert("unrelated".to_owned(), b"x".to_vec());
    let output = SshOutput {
        previous: Some(&previous_with_extra),
        ..SshOutput::default()
    };
    let data = written(&material, &output);
    assert_eq!(
        data.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "ssh-certificate.previous",
            SSH_PRIVATE_KEY,
            "ssh-privatekey.previous",
            SSH_PUBLIC_KEY,
            "ssh-publickey.previous"
        ]
    );
    for name in [SSH_PRIVATE_KEY, SSH_PUBLIC_KEY, SSH_CERTIFICATE] {
        assert_eq!(data[&format!("{name}.previous")], previous[name]);
    }
    assert!(current(&data, &material, &output));
    let shown = format!("{output:?}");
    assert!(shown.contains("ssh-privatekey"), "{shown}");
    assert!(
        !shown.contains(&format!("{:?}", &previous[SSH_PRIVATE_KEY][..8])),
        "{shown}"
    );
    // Reading ignores the previous copies.
    let read = read_ssh_secret(&data, None).expect("read");
    assert_eq!(
        read.key.fingerprint_sha256(),
        material.key.fingerprint_sha256()
    );
    assert!(read.certificate.is_none());
    // Other previous material, or none, is not current.
    let mut other_previous = previous.clone();
    other_previous.insert(SSH_PUBLIC_KEY.to_owned(), b"changed\n".to_vec());
    for output in [
        SshOutput::default(),
        SshOutput {
            previous: Some(&other_previous),
            ..SshOutput::default()
        },
    ] {
        assert!(!current(&data, &material, &output));
    }
}

#[test]
fn encrypted_data_is_current_despite_the_random_salt() {
    let material = host_material();
    let pass = passphrase("s3cret");
    let hosts = hostnames();
    let output = SshOutput {
        passphrase: Some(&pass),
        hostnames: &hosts,
        previous: None,
    };
    let first = written(&material, &output);
    let second = written(&material, &output);
    assert_ne!(first[SSH_PRIVATE_KEY], second[SSH_PRIVATE_KEY]);
    assert!(current(&first, &material, &output));
    assert!(current(&second, &material, &output));
}

/// Every single-byte change of every entry makes the data not current.
fn assert_byte_changes_detected(
    data: &BTreeMap<String, Vec<u8>>,
    material: &SshMaterial,
    output: &SshOutput<'_>,
    positions_per_entry: usize,
) {
    for (name, value) in data {
        let step = (value.len() / positions_per_entry).max(1);
        let positions = (0..value.len()).step_by(step).chain([value.len() - 1]);
        for at in positions {
            let mut changed = data.clone();
            let entry = changed.get_mut(name).expect("entry");
            entry[at] ^= 0x01;
            assert!(!current(&changed, material, output), "{name}[{at}]");
        }
    }
}

#[test]
fn is_current_detects_every_byte_change() {
    let material = host_material();
    let hosts = hostnames();
    let output = SshOutput {
        passphrase: None,
        hostnames: &hosts,
        previous: None,
    };
    let data = written(&material, &output);
    assert!(current(&data, &material, &output));
    assert_byte_changes_detected(&data, &material, &output, 40);
}

#[test]
fn is_current_detects_byte_changes_of_an_encrypted_key() {
    let material = host_material();
    let pass = passphrase("s3cret");
    let output = SshOutput {
        passphrase: Some(&pass),
        ..SshOutput::default()
    };
    let data = written(&material, &output);
    assert!(current(&data, &material, &output));
    // Checks each byte of the header (cipher, KDF, salt, rounds, public key) and samples of
    // the encrypted part (each of those costs a bcrypt-pbkdf run).
    let pem = text(&data, SSH_PRIVATE_KEY);
    let body_start = pem.find('\n').expect("header line") + 1;
    for at in (body_start..body_start + 200).chain((body_start + 200..pem.len()).step_by(97)) {
        let mut changed = data.clone();
        let entry = changed.get_mut(SSH_PRIVATE_KEY).expect("entry");
        if entry[at] == b'\n' {
            continue;
        }
        entry[at] = if entry[at] == b'A' { b'B' } else { b'A' };
        assert!(
            !current(&changed, &material, &output),
            "ssh-privatekey[{at}]"
        );
    }
}

#[test]
fn is_current_detects_added_and_removed_entries() {
    let material = host_material();
    let hosts = hostnames();
    let output = SshOutput {
        hostnames: &hosts,
        ..SshOutput::default()
    };
    let data = written(&material, &output);
    for name in data.keys() {
        let mut removed = data.clone();
        removed.remove(name);
        assert!(!current(&removed, &material, &output), "without {name}");
    }
    let mut added = data.clone();
    added.insert("extra".to_owned(), Vec::new());
    assert!(!current(&added, &material, &output));
    let mut previous = data.clone();
    previous.insert(
        "ssh-privatekey.previous".to_owned(),
        data[SSH_PRIVATE_KEY].clone(),
    );
    assert!(!current(&previous, &material, &output));
}

#[test]
fn is_current_detects_changed_comment_hostnames_passphrase_certificate_and_key() {
    let material = host_material();
    let hosts = hostnames();
    let pass = passphrase("one");
    let other_pass = passphrase("two");
    for passphrase in [None, Some(&pass)] {
        let output = SshOutput {
            passphrase,
            hostnames: &hosts,
            previous: None,
        };
        let data = written(&material, &output);
        assert!(current(&data, &material, &output));

        let renamed = SshMaterial {
            key: material.key.with_comment("renamed"),
            certificate: material.certificate.clone(),
        };
        assert!(!current(&data, &renamed, &output), "comment");

        let fewer = hosts[..1].to_vec();
        for hostnames in [&fewer[..], &[]] {
            let output = SshOutput {
                hostnames,
                ..output.clone()
            };
            assert!(
                !current(&data, &material, &output),
                "hostnames {hostnames:?}"
            );
        }

        let other_passphrases = match passphrase {
            None => vec![Some(&pass)],
            Some(_) => vec![None, Some(&other_pass)],
        };
        for other in other_passphrases {
            let output = SshOutput {
                passphrase: other,
                ..output.clone()
            };
            assert!(!current(&data, &material, &output), "passphrase");
        }

        let reissued = SshMaterial {
            key: material.key.clone(),
            certificate: Some(host_material().certificate.expect("certificate")),
        };
        let without = SshMaterial {
            key: material.key.clone(),
            certificate: None,
        };
        assert!(!current(&data, &reissued, &output), "certificate");
        assert!(!current(&data, &without, &output), "no certificate");
        assert!(
            !current(&written(&without, &output), &material, &output),
            "certificate added"
        );

        let other_key = SshMaterial {
            key: key(SshKeyKind::EcdsaP384).with_comment(material.key.comment()),
            certificate: None,
        };
        let data_without = written(&without, &output);
        assert!(!current(&data_without, &other_key, &output), "key");
    }
}

#[test]
fn read_ssh_secret_checks_that_everything_belongs_to_the_key() {
    let material = host_material();
    let hosts = hostnames();
    let output = SshOutput {
        hostnames: &hosts,
        ..SshOutput::default()
    };
    let data = written(&material, &output);
    let invalid = |data: &BTreeMap<String, Vec<u8>>, pass: Option<&SecretString>, about: &str| {
        match read_ssh_secret(data, pass) {
            Err(MaterialError::Invalid(message)) => {
                assert!(message.contains(about), "{message}");
                message
            }
            other => panic!("not Invalid: {other:?}"),
        }
    };

    let mut missing = data.clone();
    missing.remove(SSH_PRIVATE_KEY);
    invalid(&missing, None, SSH_PRIVATE_KEY);

    let mut other_public = data.clone();
    other_public.insert(
        SSH_PUBLIC_KEY.to_owned(),
        format!("{}\n", other_ed25519().authorized_key()).into_bytes(),
    );
    invalid(&other_public, None, SSH_PUBLIC_KEY);
    let mut bad_public = data.clone();
    bad_public.insert(SSH_PUBLIC_KEY.to_owned(), b"not a key\n".to_vec());
    invalid(&bad_public, None, SSH_PUBLIC_KEY);

    let foreign = SshCertificate::issue(
        other_ed25519(),
        key(SshKeyKind::Ed25519),
        &CertificateRequest {
            cert_type: CertificateType::User,
            key_id: "x".to_owned(),
            principals: vec!["x".to_owned()],
            valid_after: UNIX_EPOCH + Duration::from_secs(1_750_000_000),
            valid_before: UNIX_EPOCH + Duration::from_secs(1_750_003_600),
            extensions: Vec::new(),
            critical_options: BTreeMap::new(),
        },
    )
    .expect("issue");
    let mut other_cert = data.clone();
    other_cert.insert(
        SSH_CERTIFICATE.to_owned(),
        format!("{}\n", foreign.line()).into_bytes(),
    );
    invalid(&other_cert, None, SSH_CERTIFICATE);
    let mut bad_cert = data.clone();
    bad_cert.insert(SSH_CERTIFICATE.to_owned(), b"garbage\n".to_vec());
    invalid(&bad_cert, None, SSH_CERTIFICATE);
    // ssh_secret_data refuses such a pair as well.
    let mismatched = SshMaterial {
        key: material.key.clone(),
        certificate: Some(foreign),
    };
    assert!(matches!(
        ssh_secret_data(&mismatched, &output),
        Err(MaterialError::Invalid(_))
    ));

    let mut garbage = data.clone();
    garbage.insert(SSH_PRIVATE_KEY.to_owned(), b"garbage".to_vec());
    invalid(&garbage, None, SSH_PRIVATE_KEY);

    // Encrypted: a missing or wrong passphrase names ssh-privatekey and shows no key data.
    let pass = passphrase("right");
    let encrypted = written(
        &material,
        &SshOutput {
            passphrase: Some(&pass),
            ..output.clone()
        },
    );
    let pem = text(&encrypted, SSH_PRIVATE_KEY);
    for wrong in [None, Some(passphrase("wrong"))] {
        let message = invalid(&encrypted, wrong.as_ref(), SSH_PRIVATE_KEY);
        assert!(message.contains("passphrase"), "{message}");
        for line in pem
            .lines()
            .filter(|l| l.len() > 20 && !l.starts_with("-----"))
        {
            assert!(!message.contains(&line[..20]), "{message}");
        }
    }
    assert!(read_ssh_secret(&encrypted, Some(&pass)).is_ok());

    // Only ssh-privatekey (e.g. an adopted Secret): readable, not current.
    let only_key: BTreeMap<String, Vec<u8>> =
        BTreeMap::from([(SSH_PRIVATE_KEY.to_owned(), data[SSH_PRIVATE_KEY].clone())]);
    let read = read_ssh_secret(&only_key, None).expect("read");
    assert!(read.certificate.is_none());
    assert!(!current(&only_key, &read, &SshOutput::default()));
}
