//! Authentication keys for an external KMIP key manager (ONTAP style): a key id, a key tag
//! and a 20 to 32 character passphrase.

use super::{MaterialError, SecretString, random};

/// Shortest passphrase, in characters.
pub const PASSPHRASE_MIN: usize = 20;
/// Longest passphrase, in characters.
pub const PASSPHRASE_MAX: usize = 32;
/// Bytes of a generated key id (80 lowercase hex characters).
const KEY_ID_BYTES: u32 = 40;

/// A new passphrase of `length` characters (20 to 32) from the password alphabet (printable
/// ASCII without characters that need quoting; it includes `=`).
pub fn passphrase(length: u32) -> Result<SecretString, MaterialError> {
    let wanted = usize::try_from(length).unwrap_or(usize::MAX);
    if !(PASSPHRASE_MIN..=PASSPHRASE_MAX).contains(&wanted) {
        return Err(MaterialError::Unsupported(format!(
            "a passphrase of {length} characters is not supported; use {PASSPHRASE_MIN} to {PASSPHRASE_MAX}"
        )));
    }
    random::password(length)
}

/// Checks a brought passphrase: 20 to 32 printable ASCII characters (space to `~`). The
/// message says what is wrong without showing the passphrase.
pub fn check_passphrase(passphrase: &[u8]) -> Result<(), String> {
    if passphrase.ends_with(b"\n") {
        return Err(
            "the passphrase ends with a newline (write the Secret without a trailing newline)"
                .to_owned(),
        );
    }
    if let Some(position) = passphrase.iter().position(|b| !(0x20..=0x7e).contains(b)) {
        return Err(format!(
            "the passphrase has a character that is not printable ASCII at position {}",
            position + 1
        ));
    }
    let length = passphrase.len();
    if !(PASSPHRASE_MIN..=PASSPHRASE_MAX).contains(&length) {
        return Err(format!(
            "the passphrase has {length} characters; it must have {PASSPHRASE_MIN} to {PASSPHRASE_MAX}"
        ));
    }
    Ok(())
}

/// A new key id: 80 random lowercase hex characters.
pub fn key_id() -> Result<String, MaterialError> {
    let bytes = random::psk(KEY_ID_BYTES)?;
    Ok(random::hex(&bytes).expose().to_owned())
}

/// Checks a key id: 2 to 80 lowercase hex characters.
pub fn check_key_id(id: &str) -> Result<(), String> {
    let hex = id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex && (2..=80).contains(&id.len()) {
        Ok(())
    } else {
        Err("the key id must be 2 to 80 lowercase hex characters".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passphrases_have_the_length_and_pass_the_check() {
        for length in [20, 26, 32] {
            let p = passphrase(length).unwrap();
            assert_eq!(p.expose().len(), length as usize);
            check_passphrase(p.expose().as_bytes()).unwrap();
        }
        assert!(passphrase(19).is_err());
        assert!(passphrase(33).is_err());
    }

    #[test]
    fn brought_passphrases_are_checked_without_showing_them() {
        let ok = b"correct-horse=battery staple";
        check_passphrase(ok).unwrap();
        let short = check_passphrase(b"0123456789012345678").unwrap_err();
        assert!(short.contains("19 characters"), "{short}");
        let long = check_passphrase(&[b'a'; 33]).unwrap_err();
        assert!(long.contains("33 characters"), "{long}");
        let accent = "passphrase-with-é-inside".as_bytes();
        let err = check_passphrase(accent).unwrap_err();
        assert!(err.contains("not printable ASCII at position 17"), "{err}");
        assert!(!err.contains("passphrase-with"), "{err}");
        let newline = check_passphrase(b"01234567890123456789\n").unwrap_err();
        assert!(newline.contains("newline"), "{newline}");
    }

    #[test]
    fn key_ids_are_80_lowercase_hex_characters() {
        let id = key_id().unwrap();
        assert_eq!(id.len(), 80);
        check_key_id(&id).unwrap();
        assert_ne!(id, key_id().unwrap());
        assert!(check_key_id("ABCD").is_err());
        assert!(check_key_id("a").is_err());
        assert!(check_key_id(&"a".repeat(81)).is_err());
    }
}
