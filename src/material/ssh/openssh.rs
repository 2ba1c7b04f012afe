//! Reading OpenSSH private keys that ssh-key 0.6.7 rejects.
//!
//! OpenSSH stores an ECDSA private scalar as a minimal `mpint`, so a scalar whose top byte
//! is zero (and whose next byte has no top bit) is shorter than the curve size: about a
//! quarter of the P-521 keys `ssh-keygen` makes, and 1 in 512 P-256/P-384 keys. ssh-key
//! 0.6.7 insists on the full size (`Encoding(Length)`). When ssh-key fails, the private section is decoded here (and
//! decrypted with ssh-key's own KDF and cipher), the scalar is left-padded to the curve
//! size, and the key is handed back to ssh-key as an unencrypted key (PROTOCOL.key).

use ssh_key::{Cipher, PrivateKey};
use zeroize::Zeroizing;

/// `"openssh-key-v1\0"`, the start of every OpenSSH private key.
const AUTH_MAGIC: &[u8] = b"openssh-key-v1\0";
/// PEM label of OpenSSH private keys.
const PEM_LABEL: &str = "OPENSSH PRIVATE KEY";
/// Padding block of unencrypted keys.
const PLAIN_BLOCK: usize = 8;

/// Why a fallback decryption failed.
pub(super) enum DecryptFailure {
    /// The check numbers differ: the passphrase is wrong.
    WrongPassphrase,
    /// The key cannot be read (also when the fallback does not apply).
    Unreadable,
}

/// Reads an unencrypted key whose ECDSA scalar OpenSSH stored short.
pub(super) fn parse_short_scalar_key(pem: &[u8]) -> Option<PrivateKey> {
    let block = pem::parse(pem).ok()?;
    if block.tag() != PEM_LABEL {
        return None;
    }
    let binary = Zeroizing::new(block.into_contents());
    let mut reader = Reader(binary.as_slice());
    if reader.take(AUTH_MAGIC.len())? != AUTH_MAGIC
        || reader.string()? != b"none"
        || reader.string()? != b"none"
        || !reader.string()?.is_empty()
        || reader.u32()? != 1
    {
        return None;
    }
    let public = reader.string()?;
    let private = reader.string()?;
    if !reader.0.is_empty() {
        return None;
    }
    let section = padded_scalar_section(private)?;
    unencrypted_key(public, &section)
}

/// Decrypts a key (ciphers without authentication tag, e.g. aes256-ctr) whose ECDSA scalar
/// OpenSSH stored short.
pub(super) fn decrypt_short_scalar_key(
    encrypted: &PrivateKey,
    passphrase: &[u8],
) -> Result<PrivateKey, DecryptFailure> {
    let cipher = encrypted.cipher();
    let ciphertext = encrypted.key_data().encrypted();
    let (Some(ciphertext), false) = (ciphertext, cipher.has_tag() || cipher == Cipher::None) else {
        return Err(DecryptFailure::Unreadable);
    };
    let (key, iv) = encrypted
        .kdf()
        .derive_key_and_iv(cipher, passphrase)
        .map_err(|_| DecryptFailure::Unreadable)?;
    let mut plain = Zeroizing::new(ciphertext.to_vec());
    cipher
        .decrypt(&key, &iv, &mut plain, None)
        .map_err(|_| DecryptFailure::Unreadable)?;
    let mut reader = Reader(plain.as_slice());
    if reader.u32() != reader.u32() {
        return Err(DecryptFailure::WrongPassphrase);
    }
    let section = padded_scalar_section(&plain).ok_or(DecryptFailure::Unreadable)?;
    let public = encrypted
        .public_key()
        .to_bytes()
        .map_err(|_| DecryptFailure::Unreadable)?;
    unencrypted_key(&public, &section).ok_or(DecryptFailure::Unreadable)
}

/// The private section (`checkint checkint keytype curve Q d comment padding`) of a single
/// ECDSA key with `d` left-padded to the curve size and the padding redone for an
/// unencrypted key; `None` when the section is something else or needs no change.
fn padded_scalar_section(section: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let mut reader = Reader(section);
    let checkints = reader.take(8)?;
    let key_type = reader.string()?;
    let size = match key_type {
        b"ecdsa-sha2-nistp256" => 32,
        b"ecdsa-sha2-nistp384" => 48,
        b"ecdsa-sha2-nistp521" => 66,
        _ => return None,
    };
    let curve = reader.string()?;
    let point = reader.string()?;
    let scalar = reader.string()?;
    let comment = reader.string()?;
    if scalar.len() >= size {
        return None;
    }
    let mut padded = Zeroizing::new(vec![0u8; size - scalar.len()]);
    padded.extend_from_slice(scalar);
    let mut out = Zeroizing::new(Vec::with_capacity(section.len() + PLAIN_BLOCK));
    out.extend_from_slice(checkints);
    for field in [key_type, curve, point, padded.as_slice(), comment] {
        put_string(&mut out, field)?;
    }
    let padding = (PLAIN_BLOCK - out.len() % PLAIN_BLOCK) % PLAIN_BLOCK;
    out.extend((1..=padding).filter_map(|i| u8::try_from(i).ok()));
    Some(out)
}

/// An unencrypted OpenSSH key from its public key blob and private section.
fn unencrypted_key(public: &[u8], section: &[u8]) -> Option<PrivateKey> {
    let mut binary = Zeroizing::new(Vec::with_capacity(section.len() + public.len() + 64));
    binary.extend_from_slice(AUTH_MAGIC);
    put_string(&mut binary, b"none")?;
    put_string(&mut binary, b"none")?;
    put_string(&mut binary, b"")?;
    binary.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut binary, public)?;
    put_string(&mut binary, section)?;
    PrivateKey::from_bytes(&binary).ok()
}

/// Appends an SSH `string` (big-endian u32 length, bytes).
fn put_string(out: &mut Vec<u8>, bytes: &[u8]) -> Option<()> {
    out.extend_from_slice(&u32::try_from(bytes.len()).ok()?.to_be_bytes());
    out.extend_from_slice(bytes);
    Some(())
}

/// Reads SSH wire-format fields from the front of a slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        let bytes = self.take(4)?;
        Some(u32::from_be_bytes(bytes.try_into().ok()?))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u32()?).ok()?;
        self.take(len)
    }
}
