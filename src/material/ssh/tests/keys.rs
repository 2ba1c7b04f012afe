//! Key kinds, generation, the OpenSSH private key format (plain and encrypted),
//! authorized_keys and known_hosts lines and fingerprints, against `ssh-keygen`.

use super::*;

/// The key type `ssh-keygen -l` prints in parentheses.
fn type_name(kind: SshKeyKind) -> &'static str {
    match kind {
        SshKeyKind::Ed25519 => "ED25519",
        SshKeyKind::EcdsaP256 | SshKeyKind::EcdsaP384 | SshKeyKind::EcdsaP521 => "ECDSA",
        SshKeyKind::Rsa(_) => "RSA",
    }
}

/// `ssh-keygen -t … -b …` arguments for a kind.
fn keygen_type_args(kind: SshKeyKind) -> Vec<String> {
    let (t, bits) = match kind {
        SshKeyKind::Ed25519 => return vec!["-t".into(), "ed25519".into()],
        SshKeyKind::EcdsaP256 | SshKeyKind::EcdsaP384 | SshKeyKind::EcdsaP521 => {
            ("ecdsa", kind.size())
        }
        SshKeyKind::Rsa(bits) => ("rsa", bits),
    };
    vec!["-t".into(), t.into(), "-b".into(), bits.to_string()]
}

/// A key made by `ssh-keygen` with `passphrase` ("" for none): (private PEM, .pub line).
pub(super) fn ssh_keygen_key(
    kind: SshKeyKind,
    passphrase: &str,
    comment: &str,
) -> (Vec<u8>, String) {
    let dir = temp_dir();
    let path = dir.path().join("id");
    let mut args: Vec<String> = vec!["-q".into()];
    args.extend(keygen_type_args(kind));
    args.extend(["-N".into(), passphrase.into(), "-C".into(), comment.into()]);
    args.extend(["-f".into(), path_str(&path).into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ssh_keygen_ok(&args);
    let pem = std::fs::read(&path).expect("read private key");
    let public = std::fs::read_to_string(path.with_extension("pub")).expect("read public key");
    (pem, public.trim().to_owned())
}

/// Lines of an OpenSSH PEM body longer than 20 characters (to look for leaks).
fn body_fragments(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .map(|l| l[..20].to_owned())
        .collect()
}

fn assert_no_key_data(message: &str, pem: &str) {
    for fragment in body_fragments(pem) {
        assert!(!message.contains(&fragment), "{message}");
    }
}

#[test]
fn from_spec_applies_the_api_defaults() {
    use SshKeyAlgorithm::{ECDSA, Ed25519, RSA};
    let ok = |a, s| SshKeyKind::from_spec(a, s).expect("supported");
    assert_eq!(ok(Ed25519, None), SshKeyKind::Ed25519);
    assert_eq!(ok(ECDSA, None), SshKeyKind::EcdsaP256);
    assert_eq!(ok(ECDSA, Some(384)), SshKeyKind::EcdsaP384);
    assert_eq!(ok(ECDSA, Some(521)), SshKeyKind::EcdsaP521);
    assert_eq!(ok(RSA, None), SshKeyKind::Rsa(3072));
    assert_eq!(ok(RSA, Some(2048)), SshKeyKind::Rsa(2048));
    assert_eq!(ok(RSA, Some(4096)), SshKeyKind::Rsa(4096));
    for (algorithm, size) in [
        (Ed25519, Some(256)),
        (ECDSA, Some(224)),
        (RSA, Some(1024)),
        (RSA, Some(8192)),
        (RSA, Some(3000)),
    ] {
        assert!(
            matches!(
                SshKeyKind::from_spec(algorithm, size),
                Err(MaterialError::Unsupported(_))
            ),
            "{algorithm:?} {size:?}"
        );
    }
    for kind in ALL_KINDS {
        assert_eq!(
            SshKeyKind::from_spec(kind.algorithm(), Some(kind.size())).ok(),
            { (kind != SshKeyKind::Ed25519).then_some(kind) }
        );
    }
}

#[test]
fn ssh_keygen_derives_the_public_key_and_prints_the_same_fingerprints() {
    for kind in ALL_KINDS {
        let key = key(kind);
        assert_eq!(key.kind(), kind);
        let dir = temp_dir();
        let pem = key.to_openssh(None).expect("encode");
        let private = write_private(&dir, "id", pem.expose().as_bytes());
        let derived = ssh_keygen_ok(&["-y", "-f", path_str(&private)]);
        assert_eq!(derived.trim(), key.authorized_key(), "{kind}");
        let public = write_public(
            &dir,
            "id.pub",
            format!("{}\n", key.authorized_key()).as_bytes(),
        );
        let expected = |fingerprint: String| {
            format!(
                "{} {fingerprint} {} ({})\n",
                kind.size(),
                key.comment(),
                type_name(kind)
            )
        };
        assert_eq!(
            ssh_keygen_ok(&["-l", "-f", path_str(&public)]),
            expected(key.fingerprint_sha256())
        );
        assert_eq!(
            ssh_keygen_ok(&["-l", "-E", "md5", "-f", path_str(&public)]),
            expected(key.fingerprint_md5())
        );
        // The private key file lists the same.
        assert_eq!(
            ssh_keygen_ok(&["-l", "-f", path_str(&private)]),
            expected(key.fingerprint_sha256())
        );
    }
}

#[test]
fn encrypted_keys_open_with_the_passphrase_only() {
    let secret = passphrase("correct horse battery");
    for kind in ALL_KINDS {
        let key = key(kind);
        let dir = temp_dir();
        let pem = key.to_openssh(Some(&secret)).expect("encrypt");
        assert!(
            pem.expose()
                .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n")
        );
        let path = write_private(&dir, "id", pem.expose().as_bytes());
        let path = path_str(&path);
        let derived = ssh_keygen_ok(&["-y", "-P", secret.expose(), "-f", path]);
        assert_eq!(derived.trim(), key.authorized_key(), "{kind}");
        assert!(
            !ssh_keygen(&["-y", "-P", "wrong", "-f", path])
                .status
                .success()
        );
        assert!(!ssh_keygen(&["-y", "-P", "", "-f", path]).status.success());
        // ssh-keygen sees aes256-ctr with bcrypt.
        let listed = ssh_keygen_ok(&["-l", "-f", path]);
        assert!(listed.contains(&key.fingerprint_sha256()), "{listed}");

        let read = SshKeyPair::from_openssh(pem.expose().as_bytes(), Some(&secret)).expect("read");
        assert_eq!(read.authorized_key(), key.authorized_key());
        assert_eq!(read.kind(), kind);
    }
}

#[test]
fn wrong_or_missing_passphrases_are_clear_errors_without_key_data() {
    let key = key(SshKeyKind::Rsa(2048));
    let pem = key.to_openssh(Some(&passphrase("right"))).expect("encrypt");
    let text = pem.expose();
    for given in [None, Some(passphrase("")), Some(passphrase("wrong"))] {
        let err = SshKeyPair::from_openssh(text.as_bytes(), given.as_ref()).expect_err("rejected");
        let MaterialError::Invalid(message) = &err else {
            panic!("not Invalid: {err:?}");
        };
        assert!(message.contains("passphrase"), "{message}");
        assert_no_key_data(message, text);
        assert_no_key_data(&format!("{err:?}"), text);
    }
}

#[test]
fn unencrypted_encoding_is_deterministic_and_round_trips() {
    for kind in ALL_KINDS {
        let key = key(kind);
        let pem = key.to_openssh(None).expect("encode");
        assert_eq!(pem, key.to_openssh(None).expect("encode"));
        assert_eq!(pem, key.to_openssh(Some(&passphrase(""))).expect("encode"));
        let read = SshKeyPair::from_openssh(pem.expose().as_bytes(), None).expect("read");
        assert_eq!(read.to_openssh(None).expect("encode"), pem, "{kind}");
        assert_eq!(read.comment(), key.comment());
        // A passphrase given for a plain key is not needed.
        let read = SshKeyPair::from_openssh(pem.expose().as_bytes(), Some(&passphrase("x")))
            .expect("read");
        assert_eq!(read.fingerprint_sha256(), key.fingerprint_sha256());
    }
}

#[test]
fn keys_made_by_ssh_keygen_are_read_with_their_comment() {
    for kind in ALL_KINDS {
        let (pem, public) = ssh_keygen_key(kind, "", "made by ssh-keygen");
        let key = SshKeyPair::from_openssh(&pem, None).expect("read");
        assert_eq!(key.kind(), kind);
        assert_eq!(key.authorized_key(), public, "{kind}");
        assert_eq!(key.comment(), "made by ssh-keygen");
        // Re-encoding reproduces ssh-keygen's file byte for byte (an adopted Secret stays
        // current), except for a short ECDSA scalar, which ssh-key writes at full size.
        let again = key.to_openssh(None).expect("encode");
        if PrivateKey::from_openssh(&pem).is_ok() {
            assert_eq!(again.expose().as_bytes(), pem.as_slice(), "{kind}");
        }
    }
}

#[test]
fn encrypted_keys_made_by_ssh_keygen_are_read() {
    for kind in ALL_KINDS {
        let (pem, public) = ssh_keygen_key(kind, "secret", "encrypted@ssh-keygen");
        let key = SshKeyPair::from_openssh(&pem, Some(&passphrase("secret")))
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(key.kind(), kind);
        assert_eq!(key.authorized_key(), public, "{kind}");
        if kind == SshKeyKind::Ed25519 {
            let text = String::from_utf8(pem.clone()).expect("PEM is text");
            for wrong in [None, Some(passphrase("Secret"))] {
                let err = SshKeyPair::from_openssh(&pem, wrong.as_ref()).expect_err("rejected");
                assert!(matches!(err, MaterialError::Invalid(_)), "{err:?}");
                assert_no_key_data(&err.to_string(), &text);
            }
        }
    }
}

#[test]
fn with_comment_keeps_the_key() {
    let key = key(SshKeyKind::EcdsaP384);
    let renamed = key.with_comment("renamed@ci");
    assert_eq!(renamed.comment(), "renamed@ci");
    assert_eq!(renamed.fingerprint_sha256(), key.fingerprint_sha256());
    assert_eq!(
        key_part(&renamed.authorized_key()),
        key_part(&key.authorized_key())
    );
    assert!(renamed.authorized_key().ends_with(" renamed@ci"));
    let dir = temp_dir();
    let pem = renamed.to_openssh(None).expect("encode");
    let path = write_private(&dir, "id", pem.expose().as_bytes());
    let derived = ssh_keygen_ok(&["-y", "-f", path_str(&path)]);
    assert_eq!(derived.trim(), renamed.authorized_key());
    let bare = key.with_comment("");
    assert_eq!(bare.authorized_key(), key_part(&key.authorized_key()));
}

#[test]
fn known_hosts_lines_are_found_by_ssh_keygen() {
    let key = key(SshKeyKind::Ed25519);
    let hosts: Vec<String> = ["git.example.com", "10.0.0.7", "[git.example.com]:2222"]
        .map(String::from)
        .to_vec();
    let line = known_hosts_line(&hosts, key);
    assert_eq!(
        line,
        format!(
            "git.example.com,10.0.0.7,[git.example.com]:2222 {}",
            key_part(&key.authorized_key())
        )
    );
    let dir = temp_dir();
    let file = write_public(&dir, "known_hosts", format!("{line}\n").as_bytes());
    for host in ["git.example.com", "10.0.0.7", "[git.example.com]:2222"] {
        let found = ssh_keygen_ok(&["-F", host, "-f", path_str(&file)]);
        assert!(found.contains(&line), "{host}: {found}");
    }
    for host in ["other.example.com", "git.example.com:2222"] {
        let out = ssh_keygen(&["-F", host, "-f", path_str(&file)]);
        assert!(!out.status.success(), "{host} found");
    }
    // ssh-keygen -l reads the line as a host key.
    let listed = ssh_keygen_ok(&["-l", "-f", path_str(&file)]);
    assert!(listed.contains(&key.fingerprint_sha256()), "{listed}");
}

#[test]
fn unusable_keys_are_rejected() {
    for input in [
        &b"garbage"[..],
        b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
    ] {
        let err = SshKeyPair::from_openssh(input, None).expect_err("rejected");
        assert!(matches!(err, MaterialError::Invalid(_)), "{err:?}");
    }
    let (small_rsa, _) = ssh_keygen_key(SshKeyKind::Rsa(1024), "", "small");
    let err = SshKeyPair::from_openssh(&small_rsa, None).expect_err("1024-bit RSA");
    assert!(err.to_string().contains("1024 bits"), "{err}");
    let dir = temp_dir();
    let path = dir.path().join("dsa");
    ssh_keygen_ok(&["-q", "-t", "dsa", "-N", "", "-f", path_str(&path)]);
    let dsa = std::fs::read(&path).expect("read");
    let err = SshKeyPair::from_openssh(&dsa, None).expect_err("DSA");
    assert!(matches!(err, MaterialError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("ssh-dss"), "{err}");
}

#[test]
fn inconsistent_private_keys_are_rejected() {
    // RSA: another key's prime.
    let mut data = key(SshKeyKind::Rsa(2048)).inner.key_data().clone();
    let other = SshKeyPair::generate(SshKeyKind::Rsa(2048), "x").expect("generate");
    if let (KeypairData::Rsa(rsa), KeypairData::Rsa(other)) = (&mut data, other.inner.key_data()) {
        rsa.private.q = other.private.q.clone();
    }
    assert_inconsistent(data);
    // ECDSA: another key's scalar under this key's public point.
    let mut data = key(SshKeyKind::EcdsaP256).inner.key_data().clone();
    let other = SshKeyPair::generate(SshKeyKind::EcdsaP256, "x").expect("generate");
    if let (
        KeypairData::Ecdsa(EcdsaKeypair::NistP256 { private, .. }),
        KeypairData::Ecdsa(EcdsaKeypair::NistP256 {
            private: theirs, ..
        }),
    ) = (&mut data, other.inner.key_data())
    {
        *private = theirs.clone();
    }
    assert_inconsistent(data);
}

fn assert_inconsistent(data: KeypairData) {
    let pem = PrivateKey::new(data, "broken")
        .expect("key")
        .to_openssh(LineEnding::LF)
        .expect("encode");
    let err = SshKeyPair::from_openssh(pem.as_bytes(), None).expect_err("inconsistent");
    assert!(matches!(err, MaterialError::Invalid(_)), "{err:?}");
    assert_no_key_data(&err.to_string(), &pem);
}

#[test]
fn debug_output_shows_no_key_material() {
    for kind in [SshKeyKind::Ed25519, SshKeyKind::Rsa(2048)] {
        let key = key(kind);
        let pem = key.to_openssh(None).expect("encode");
        let shown = format!(
            "{key:?} {:?}",
            SshMaterial {
                key: key.clone(),
                certificate: None
            }
        );
        assert!(shown.contains(&key.fingerprint_sha256()), "{shown}");
        assert_no_key_data(&shown, pem.expose());
        assert!(
            !shown.contains(&key_part(&key.authorized_key())[12..40]),
            "{shown}"
        );
    }
}

/// A generated ECDSA key whose private scalar OpenSSH encodes shorter than the curve size
/// (a minimal mpint: the top byte is zero and the next one has no top bit).
fn ecdsa_key_with_short_scalar(kind: SshKeyKind) -> SshKeyPair {
    (0..20_000)
        .map(|_| SshKeyPair::generate(kind, "short scalar").expect("generate"))
        .find(|key| {
            matches!(key.inner.key_data(), KeypairData::Ecdsa(pair)
                if pair.private_key_bytes()[0] == 0 && pair.private_key_bytes()[1] < 0x80)
        })
        .expect("a scalar with a leading zero byte")
}

#[test]
fn ecdsa_keys_with_a_short_scalar_from_ssh_keygen_are_read() {
    for kind in [SshKeyKind::EcdsaP256, SshKeyKind::EcdsaP521] {
        let key = ecdsa_key_with_short_scalar(kind);
        let dir = temp_dir();
        let pem = key.to_openssh(None).expect("encode");
        let path = write_private(&dir, "id", pem.expose().as_bytes());
        let path = path_str(&path);
        // ssh-keygen rewrites the key in its own encoding: a minimal mpint scalar.
        ssh_keygen_ok(&["-p", "-P", "", "-N", "", "-f", path]);
        let rewritten = std::fs::read(path).expect("read");
        assert_ne!(rewritten, pem.expose().as_bytes());
        assert!(
            PrivateKey::from_openssh(&rewritten).is_err(),
            "{kind} ssh-key reads it now"
        );
        let read = SshKeyPair::from_openssh(&rewritten, None).expect("read");
        assert_eq!(read.authorized_key(), key.authorized_key(), "{kind}");
        assert!(read.inner.key_data() == key.inner.key_data());

        ssh_keygen_ok(&["-p", "-P", "", "-N", "secret", "-f", path]);
        let encrypted = std::fs::read(path).expect("read");
        let read = SshKeyPair::from_openssh(&encrypted, Some(&passphrase("secret"))).expect("read");
        assert_eq!(read.authorized_key(), key.authorized_key(), "{kind}");
        assert!(read.inner.key_data() == key.inner.key_data());
        for wrong in [None, Some(passphrase("wrong"))] {
            let err = SshKeyPair::from_openssh(&encrypted, wrong.as_ref()).expect_err("rejected");
            assert!(err.to_string().contains("passphrase"), "{err}");
        }
    }
}

/// `pem` with its bcrypt-pbkdf rounds set to `rounds`.
fn with_kdf_rounds(pem: &str, rounds: u32) -> String {
    let parsed = PrivateKey::from_openssh(pem).expect("parse");
    let mut bytes = parsed.to_bytes().expect("to bytes").to_vec();
    let length_at = |at: usize| {
        let field: [u8; 4] = bytes[at..at + 4].try_into().expect("four bytes");
        u32::from_be_bytes(field) as usize
    };
    // PROTOCOL.key: "openssh-key-v1\0", string cipher, string kdf, then kdfoptions: its
    // length, string salt, uint32 rounds.
    let mut at = 15;
    at += 4 + length_at(at);
    at += 4 + length_at(at);
    at += 4;
    at += 4 + length_at(at);
    bytes[at..at + 4].copy_from_slice(&rounds.to_be_bytes());
    let patched = PrivateKey::from_bytes(&bytes).expect("from bytes");
    assert!(matches!(patched.kdf(), Kdf::Bcrypt { rounds: r, .. } if *r == rounds));
    patched
        .to_openssh(LineEnding::LF)
        .expect("encode")
        .to_string()
}

#[test]
fn keys_of_too_many_kdf_rounds_are_refused_at_once() {
    // Found by reviewing what the `secret` fuzz target reaches: the rounds come from the
    // Secret, up to 2^32 - 1 (years of bcrypt-pbkdf).
    let key = key(SshKeyKind::Ed25519);
    let secret = passphrase("right");
    let pem = key.to_openssh(Some(&secret)).expect("encrypt");
    let read = SshKeyPair::from_openssh(pem.expose().as_bytes(), Some(&secret)).expect("read");
    assert_eq!(read.fingerprint_sha256(), key.fingerprint_sha256());
    // Other rounds than the key was encrypted with derive another key: decryption is tried
    // (and fails) below the limit, not tried above it.
    let allowed = with_kdf_rounds(pem.expose(), 20);
    let err = SshKeyPair::from_openssh(allowed.as_bytes(), Some(&secret)).expect_err("20");
    assert!(err.to_string().contains("does not decrypt"), "{err}");
    for rounds in [MAX_KDF_ROUNDS + 1, u32::MAX] {
        let costly = with_kdf_rounds(pem.expose(), rounds);
        // Without the limit, u32::MAX rounds would not return for years: the test would hang.
        let err = SshKeyPair::from_openssh(costly.as_bytes(), Some(&secret)).expect_err("refused");
        let MaterialError::Invalid(message) = &err else {
            panic!("not Invalid: {err:?}");
        };
        assert!(
            message.contains(&format!("{rounds} bcrypt-pbkdf rounds")),
            "{message}"
        );
    }
}
