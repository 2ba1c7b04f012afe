use std::collections::HashMap;
use std::process::Command;

use super::*;

/// Writes `content` to a new file in `dir` and returns its path.
fn write(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path
}

#[test]
fn psk_has_the_requested_length_and_bounds() {
    for n in [1, 16, 32, 4096] {
        assert_eq!(psk(n).unwrap().len(), n as usize);
    }
    for n in [0, 4097, u32::MAX] {
        assert!(matches!(psk(n), Err(MaterialError::Unsupported(_))), "{n}");
    }
    assert_ne!(psk(32).unwrap(), psk(32).unwrap());
}

#[test]
fn hex_is_lowercase_and_complete() {
    let bytes = SecretBytes::new(vec![0x00, 0x0f, 0xa5, 0xff]);
    assert_eq!(hex(&bytes).expose(), "000fa5ff");
    assert_eq!(hex(&SecretBytes::default()).expose(), "");
    let key = psk(64).unwrap();
    let h = hex(&key);
    assert_eq!(h.expose().len(), 128);
    assert!(
        h.expose()
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    );
}

#[test]
fn alphabet_is_documented_and_safe() {
    assert_eq!(PASSWORD_ALPHABET.len(), 77);
    let mut seen = std::collections::HashSet::new();
    for &c in PASSWORD_ALPHABET {
        assert!(c.is_ascii_graphic(), "{c}");
        assert!(!b"\"'`$&*;<>|\\()[]{} ".contains(&c), "{}", char::from(c));
        assert!(seen.insert(c), "duplicate {}", char::from(c));
    }
}

#[test]
fn password_length_alphabet_and_bounds() {
    for n in [20, 32, 73, 128] {
        let p = password(n).unwrap();
        assert_eq!(p.expose().len(), n as usize);
        assert!(p.expose().bytes().all(|c| PASSWORD_ALPHABET.contains(&c)));
    }
    for n in [0, 19, 129] {
        assert!(
            matches!(password(n), Err(MaterialError::Unsupported(_))),
            "{n}"
        );
    }
    assert_ne!(password(32).unwrap(), password(32).unwrap());
}

#[test]
fn rejection_sampling_has_no_bias() {
    // Every byte value below 231 maps to an alphabet character exactly 3 times; the rest
    // are rejected.
    let mut counts: HashMap<char, u32> = HashMap::new();
    for b in 0..=255u8 {
        if let Some(c) = alphabet_char(b) {
            *counts.entry(c).or_default() += 1;
        } else {
            assert!(b >= 231, "{b}");
        }
    }
    assert_eq!(counts.len(), 77);
    assert!(counts.values().all(|&n| n == 3));
}

#[test]
fn passwords_use_the_whole_alphabet() {
    // ~200k characters: each of the 77 characters is expected ~2600 times; seeing one fewer
    // than 1300 times (or not at all) is astronomically unlikely for a uniform draw.
    let mut counts: HashMap<u8, u32> = HashMap::new();
    for _ in 0..1600 {
        for c in password(128).unwrap().expose().bytes() {
            *counts.entry(c).or_default() += 1;
        }
    }
    assert_eq!(counts.len(), PASSWORD_ALPHABET.len());
    for (c, n) in counts {
        assert!(
            (1300..4000).contains(&n),
            "{} seen {n} times",
            char::from(c)
        );
    }
}

#[test]
fn htpasswd_verifies_with_apache_htpasswd() {
    let dir = tempfile::tempdir().unwrap();
    for len in [32, 128] {
        let pw = password(len).unwrap();
        let line = htpasswd_line("alice", &pw).unwrap();
        assert!(line.expose().starts_with("alice:$2y$10$"), "{line:?}");
        assert_eq!(line.expose().len(), "alice:".len() + 60);
        let file = write(&dir, "htpasswd", format!("{}\n", line.expose()).as_bytes());
        let ok = Command::new("htpasswd")
            .arg("-vb")
            .arg(&file)
            .arg("alice")
            .arg(pw.expose())
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let wrong = Command::new("htpasswd")
            .arg("-vb")
            .arg(&file)
            .arg("alice")
            .arg("not-the-password-at-all")
            .output()
            .unwrap();
        assert!(!wrong.status.success());
    }
}

#[test]
fn htpasswd_lines_of_a_prohibitive_bcrypt_cost_do_not_verify() {
    let pw = password(24).unwrap();
    let line = htpasswd_line("alice", &pw).unwrap();
    assert!(htpasswd_line_verifies(&line, "alice", &pw));
    // Found reviewing what the `secret` and `material` fuzz targets reach: cost 31 is 2^31
    // bcrypt rounds, days of CPU.
    for cost in ["31", "15", "99", "+9", "1", ""] {
        let costly = SecretString::new(line.expose().replacen("$10$", &format!("${cost}$"), 1));
        // Without the limit, cost 31 would not return for days: the test would hang.
        assert!(!htpasswd_line_verifies(&costly, "alice", &pw), "{cost}");
    }
    assert_eq!(bcrypt_cost("$2y$14$abc"), Some(14));
    assert_eq!(bcrypt_cost("$2b$04$"), Some(4));
    assert_eq!(bcrypt_cost("$1$10$abc"), None);
}

#[test]
fn htpasswd_rejects_bad_usernames() {
    let pw = password(20).unwrap();
    for name in ["", "a:b", "a\nb", "a\rb"] {
        assert!(
            matches!(htpasswd_line(name, &pw), Err(MaterialError::Invalid(_))),
            "{name:?}"
        );
    }
}

#[test]
fn openvpn_key_has_the_genkey_layout() {
    let dir = tempfile::tempdir().unwrap();
    let theirs_path = dir.path().join("theirs.key");
    let out = Command::new("openvpn")
        .args(["--genkey", "secret"])
        .arg(&theirs_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = std::fs::read_to_string(&theirs_path).unwrap();
    let ours = openvpn_static_key().unwrap();
    // Same layout: identical lines except the hex digits.
    let shape = |s: &str| -> Vec<String> {
        s.split_inclusive('\n')
            .map(|l| {
                if l.trim_end().bytes().all(|c| c.is_ascii_hexdigit()) && l.len() > 2 {
                    format!("hex{}", l.len())
                } else {
                    l.to_owned()
                }
            })
            .collect()
    };
    assert_eq!(shape(ours.expose()), shape(&theirs));
    assert_eq!(ours.expose().len(), theirs.len());
    // Both parse to 256 bytes.
    assert_eq!(
        parse_openvpn_static_key(theirs.as_bytes()).unwrap().len(),
        256
    );
    let key = parse_openvpn_static_key(ours.expose().as_bytes()).unwrap();
    assert_eq!(key.len(), 256);
    assert!(ours.expose().contains(&hex(&key).expose()[..32]));
}

#[test]
fn openvpn_accepts_our_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "static.key",
        openvpn_static_key().unwrap().expose().as_bytes(),
    );
    let out = Command::new("openvpn")
        .arg("--test-crypto")
        .arg("--secret")
        .arg(&file)
        .args(["--cipher", "AES-256-CBC", "--auth", "SHA256", "--verb", "0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn openvpn_parse_rejects_garbage() {
    let good = openvpn_static_key().unwrap();
    let good = good.expose();
    let cases: Vec<String> = vec![
        String::new(),
        "garbage".to_owned(),
        good.replace(OPENVPN_END, ""),
        good.replace(OPENVPN_BEGIN, ""),
        // a non-hex digit in the first key line
        {
            let at = good.find("-----\n").unwrap() + 6;
            format!("{}g{}", &good[..at], &good[at + 1..])
        },
        // one line short
        good.replacen(&good[good.find("-----\n").unwrap() + 6..][..33], "", 1),
        // one byte too many
        good.replace(OPENVPN_END, &format!("00\n{OPENVPN_END}")),
        // odd digit count
        good.replace(OPENVPN_END, &format!("0\n{OPENVPN_END}")),
    ];
    for case in &cases {
        let res = parse_openvpn_static_key(case.as_bytes());
        assert!(matches!(res, Err(MaterialError::Invalid(_))), "{res:?}");
    }
    assert!(parse_openvpn_static_key(&[0xff, 0xfe]).is_err());
}

#[test]
fn errors_and_debug_do_not_leak() {
    let pw = password(32).unwrap();
    let shown = format!("{pw:?} {:?}", htpasswd_line("bob", &pw).unwrap());
    assert!(!shown.contains(pw.expose()));
    assert!(!shown.contains("$2y$"));
}
