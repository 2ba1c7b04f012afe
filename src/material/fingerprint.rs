//! Fingerprints as tools print them.

use std::fmt::Write as _;

use aws_lc_rs::digest::{SHA1_FOR_LEGACY_USE_ONLY, SHA256, digest};

/// `AB:CD:…`: uppercase hex bytes joined by colons, as `openssl x509 -fingerprint`.
pub fn colon_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// SHA-256 of `data`, colon hex.
pub fn sha256_colon(data: &[u8]) -> String {
    colon_hex(digest(&SHA256, data).as_ref())
}

/// SHA-1 of `data`, colon hex.
pub fn sha1_colon(data: &[u8]) -> String {
    colon_hex(sha1(data).as_ref())
}

/// `SHA256:<lowercase hex>`: the canonical `status.fingerprint` of certificates and
/// passphrases.
pub fn sha256_tagged(data: &[u8]) -> String {
    format!("SHA256:{}", lower_hex(digest(&SHA256, data).as_ref()))
}

/// `HMAC-SHA256:<lowercase hex>` of `data` keyed with `salt`: the fingerprint of secret
/// material (a PSK, a passphrase) that only those who hold the salt can test guesses
/// against.
pub fn hmac_sha256_tagged(salt: &[u8], data: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, salt);
    let tag = aws_lc_rs::hmac::sign(&key, data);
    format!("HMAC-SHA256:{}", lower_hex(tag.as_ref()))
}

/// SHA-1 of `data` (PKCS#12 local key ids, legacy fingerprints; not a security measure).
pub(crate) fn sha1(data: &[u8]) -> Vec<u8> {
    digest(&SHA1_FOR_LEGACY_USE_ONLY, data).as_ref().to_vec()
}

/// Lowercase hex without separators.
pub(crate) fn lower_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colon_hex_is_uppercase_with_colons() {
        assert_eq!(colon_hex(&[0x0a, 0xff, 0x00]), "0A:FF:00");
        assert_eq!(colon_hex(&[]), "");
    }

    #[test]
    fn known_digests() {
        // sha256("abc") and sha1("abc") from FIPS 180-2.
        assert_eq!(
            sha256_tagged(b"abc"),
            "SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(sha256_colon(b"abc").starts_with("BA:78:16:BF:"));
        assert_eq!(sha256_colon(b"abc").len(), 32 * 3 - 1);
        assert_eq!(
            sha1_colon(b"abc"),
            "A9:99:3E:36:47:06:81:6A:BA:3E:25:71:78:50:C2:6C:9C:D0:D8:9D"
        );
    }

    #[test]
    fn matches_openssl_dgst() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        std::fs::write(&path, b"keysmith fingerprint test").unwrap();
        let out = std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-c"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let openssl_hex = text.trim().rsplit("= ").next().unwrap().to_uppercase();
        assert_eq!(openssl_hex, sha256_colon(b"keysmith fingerprint test"));
    }
}
