//! Containers for secret bytes: zeroed on drop, never printed. `Debug` shows only the length,
//! so a stray `{:?}` or `tracing` field cannot leak material.

use std::fmt;

use zeroize::Zeroizing;

/// Secret bytes (private keys, passphrases, keystores): zeroed on drop, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The bytes, for writing them where they belong (a Secret, a KMIP request).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

impl From<SecretString> for SecretBytes {
    fn from(s: SecretString) -> Self {
        Self::new(s.expose().as_bytes().to_vec())
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<redacted, {} bytes>)", self.len())
    }
}

/// Secret text (PEM private keys, passphrases): zeroed on drop, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Takes ownership of `text`.
    pub fn new(text: String) -> Self {
        Self(Zeroizing::new(text))
    }

    /// The text, for writing it where it belongs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretString {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretString(<redacted, {} bytes>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_content() {
        let bytes = SecretBytes::new(b"-----BEGIN PRIVATE KEY-----".to_vec());
        let text = SecretString::new("hunter2-passphrase".to_owned());
        let shown = format!("{bytes:?} {text:?} {:#?}", (&bytes, &text));
        assert!(!shown.contains("BEGIN"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("27 bytes") && shown.contains("18 bytes"),
            "{shown}"
        );
    }

    #[test]
    fn expose_returns_the_content() {
        assert_eq!(SecretBytes::new(vec![1, 2, 3]).expose(), &[1, 2, 3]);
        assert_eq!(SecretString::new("x".into()).expose(), "x");
    }
}
