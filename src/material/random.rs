//! Random secrets for the keyring: pre-shared keys, passwords (with their htpasswd bcrypt
//! line) and OpenVPN static keys. All randomness comes from the OS CSPRNG through aws-lc-rs.

use std::fmt::Write as _;

use zeroize::Zeroizing;

use super::{MaterialError, SecretBytes, SecretString};

/// Smallest pre-shared key, in bytes.
pub const PSK_MIN_BYTES: u32 = 1;
/// Largest pre-shared key, in bytes.
pub const PSK_MAX_BYTES: u32 = 4096;
/// Shortest password, in characters.
pub const PASSWORD_MIN_LENGTH: u32 = 20;
/// Longest password, in characters.
pub const PASSWORD_MAX_LENGTH: u32 = 128;

/// The 77 characters passwords are drawn from: `A-Z`, `a-z`, `0-9` and `!#%+,-./:=?@^_~`.
///
/// Printable ASCII without space and without the characters that need quoting or escaping
/// in shells, YAML or htpasswd/config lines: no quotes (`"'` and backtick), no `$`, `&`,
/// `*`, `;`, `<`, `>`, `|`, no backslash, no brackets or braces (`()[]{}`).
pub const PASSWORD_ALPHABET: &[u8; 77] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#%+,-./:=?@^_~";

/// bcrypt cost of htpasswd lines: 2^10 rounds, the bcrypt crate's default (`htpasswd -B`
/// uses 5).
const BCRYPT_COST: u32 = 10;

/// Highest bcrypt cost of an existing htpasswd line that is checked: 2^14 rounds, about a
/// second. The cost is read from the line, which whoever writes the Secret chooses, and
/// bcrypt allows up to 31 (2^31 rounds: days); `htpasswd -B -C` stops at 17.
const BCRYPT_MAX_VERIFY_COST: u32 = 14;

/// Bytes of an OpenVPN static key V1 (2048 bits).
const OPENVPN_KEY_BYTES: usize = 256;
/// Key bytes per line of an OpenVPN static key file (32 hex digits).
const OPENVPN_LINE_BYTES: usize = 16;
/// First line of the key block.
const OPENVPN_BEGIN: &str = "-----BEGIN OpenVPN Static key V1-----";
/// Last line of the key block.
const OPENVPN_END: &str = "-----END OpenVPN Static key V1-----";
/// The comment header `openvpn --genkey secret` writes before the block.
const OPENVPN_HEADER: &str = "#\n# 2048 bit OpenVPN static key\n#\n";

/// Fills `buf` from the OS CSPRNG.
fn fill(buf: &mut [u8]) -> Result<(), MaterialError> {
    aws_lc_rs::rand::fill(buf)
        .map_err(|_| MaterialError::Crypto("the system random generator failed".to_owned()))
}

/// `n` random bytes.
fn random_bytes(n: usize) -> Result<SecretBytes, MaterialError> {
    let mut bytes = Zeroizing::new(vec![0u8; n]);
    fill(&mut bytes)?;
    Ok(SecretBytes::new(std::mem::take(&mut *bytes)))
}

/// A new fingerprint salt: 16 random bytes as lowercase hex.
pub fn fingerprint_salt() -> Result<String, MaterialError> {
    let bytes = random_bytes(16)?;
    Ok(hex(&bytes).expose().to_owned())
}

/// A random pre-shared key of `length_bytes` bytes (1 to 4096).
pub fn psk(length_bytes: u32) -> Result<SecretBytes, MaterialError> {
    if !(PSK_MIN_BYTES..=PSK_MAX_BYTES).contains(&length_bytes) {
        return Err(MaterialError::Unsupported(format!(
            "a PSK length of {length_bytes} bytes is not supported; use {PSK_MIN_BYTES} to {PSK_MAX_BYTES}"
        )));
    }
    let n = usize::try_from(length_bytes)
        .map_err(|_| MaterialError::Unsupported("the PSK length is too large".to_owned()))?;
    random_bytes(n)
}

/// `bytes` as lowercase hex.
pub fn hex(bytes: &SecretBytes) -> SecretString {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes.expose());
    SecretString::new(out)
}

/// Appends `bytes` to `out` as lowercase hex (never reallocates when `out` has the room).
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

/// A random password of `length` characters (20 to 128), each drawn uniformly from
/// [`PASSWORD_ALPHABET`] (rejection sampling: no modulo bias).
pub fn password(length: u32) -> Result<SecretString, MaterialError> {
    if !(PASSWORD_MIN_LENGTH..=PASSWORD_MAX_LENGTH).contains(&length) {
        return Err(MaterialError::Unsupported(format!(
            "a password length of {length} is not supported; use {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH}"
        )));
    }
    let length = usize::try_from(length)
        .map_err(|_| MaterialError::Unsupported("the password length is too large".to_owned()))?;
    let mut out = Zeroizing::new(String::with_capacity(length));
    let mut pool = Zeroizing::new([0u8; 64]);
    while out.len() < length {
        fill(&mut *pool)?;
        for &b in pool.iter() {
            if out.len() == length {
                break;
            }
            if let Some(c) = alphabet_char(b) {
                out.push(c);
            }
        }
    }
    Ok(SecretString::new(std::mem::take(&mut *out)))
}

/// Maps a random byte to an alphabet character, or `None` when the byte must be rejected
/// (bytes at or above the largest multiple of the alphabet size, 231, would bias the draw).
fn alphabet_char(b: u8) -> Option<char> {
    let size = PASSWORD_ALPHABET.len();
    let limit = 256 - 256 % size;
    let b = usize::from(b);
    (b < limit).then(|| char::from(PASSWORD_ALPHABET[b % size]))
}

/// An htpasswd line `username:$2y$10$...` (bcrypt, cost 10, random salt).
///
/// bcrypt uses only the first 72 bytes of a password, as Apache's does; longer passwords
/// still verify with `htpasswd -v`. Usernames must not be empty nor contain `:`, CR or LF.
pub fn htpasswd_line(
    username: &str,
    password: &SecretString,
) -> Result<SecretString, MaterialError> {
    if username.is_empty() || username.contains([':', '\n', '\r']) {
        return Err(MaterialError::Invalid(
            "an htpasswd username must be non-empty and must not contain ':' or line breaks"
                .to_owned(),
        ));
    }
    let mut salt = Zeroizing::new([0u8; 16]);
    fill(&mut *salt)?;
    let parts = bcrypt::hash_with_salt(password.expose(), BCRYPT_COST, *salt)
        .map_err(|_| MaterialError::Crypto("bcrypt hashing failed".to_owned()))?;
    let mut line = Zeroizing::new(String::with_capacity(username.len() + 61));
    line.push_str(username);
    line.push(':');
    parts
        .write_for_version(bcrypt::Version::TwoY, &mut *line)
        .map_err(|_| MaterialError::Crypto("formatting the bcrypt hash failed".to_owned()))?;
    Ok(SecretString::new(std::mem::take(&mut *line)))
}

/// True when `line` is `username:<bcrypt hash>` and the hash verifies `password` (as
/// `htpasswd -vb` checks it).
pub fn htpasswd_line_verifies(
    line: &SecretString,
    username: &str,
    password: &SecretString,
) -> bool {
    let Some((user, hash)) = line.expose().trim_end().split_once(':') else {
        return false;
    };
    user == username
        && bcrypt_cost(hash).is_some_and(|cost| cost <= BCRYPT_MAX_VERIFY_COST)
        && bcrypt::verify(password.expose(), hash).unwrap_or(false)
}

/// The cost of a bcrypt hash `$2<v>$<cost>$...` (two decimal digits), if it has that form.
fn bcrypt_cost(hash: &str) -> Option<u32> {
    let mut fields = hash.split('$');
    let (Some(""), Some(version), Some(cost)) = (fields.next(), fields.next(), fields.next())
    else {
        return None;
    };
    let digits = cost.len() == 2 && cost.bytes().all(|b| b.is_ascii_digit());
    (version.starts_with('2') && digits)
        .then(|| cost.parse().ok())
        .flatten()
}

/// A new OpenVPN static key V1 (2048 random bits), exactly as `openvpn --genkey secret`
/// writes it: a `#` comment header, then 16 lines of 32 lowercase hex digits between the
/// BEGIN/END lines, each line ending in `\n`.
pub fn openvpn_static_key() -> Result<SecretString, MaterialError> {
    let key = random_bytes(OPENVPN_KEY_BYTES)?;
    let mut out = String::with_capacity(
        OPENVPN_HEADER.len() + OPENVPN_BEGIN.len() + OPENVPN_END.len() + OPENVPN_KEY_BYTES * 2 + 32,
    );
    out.push_str(OPENVPN_HEADER);
    out.push_str(OPENVPN_BEGIN);
    out.push('\n');
    for line in key.expose().chunks(OPENVPN_LINE_BYTES) {
        push_hex(&mut out, line);
        out.push('\n');
    }
    let _ = writeln!(out, "{OPENVPN_END}");
    Ok(SecretString::new(out))
}

/// Reads an OpenVPN static key V1 file and returns its 256 key bytes.
///
/// Like openvpn, ignores anything outside the BEGIN/END lines (comments) and requires
/// exactly 2048 bits of hex inside; blank lines and surrounding whitespace are tolerated.
pub fn parse_openvpn_static_key(text: &[u8]) -> Result<SecretBytes, MaterialError> {
    let invalid = |what: &str| MaterialError::Invalid(format!("the OpenVPN static key {what}"));
    let text = std::str::from_utf8(text).map_err(|_| invalid("is not text"))?;
    let mut lines = text.lines().map(str::trim);
    if !lines.by_ref().any(|l| l == OPENVPN_BEGIN) {
        return Err(invalid(
            "has no \"-----BEGIN OpenVPN Static key V1-----\" line",
        ));
    }
    let mut key = Zeroizing::new(Vec::with_capacity(OPENVPN_KEY_BYTES));
    let mut ended = false;
    for line in lines.by_ref() {
        if line == OPENVPN_END {
            ended = true;
            break;
        }
        if !line.len().is_multiple_of(2) {
            return Err(invalid("has a line with an odd number of hex digits"));
        }
        for pair in line.as_bytes().chunks(2) {
            let byte = hex_pair(pair).ok_or_else(|| invalid("contains a non-hex character"))?;
            if key.len() == OPENVPN_KEY_BYTES {
                return Err(invalid("is longer than 2048 bits"));
            }
            key.push(byte);
        }
    }
    if !ended {
        return Err(invalid(
            "has no \"-----END OpenVPN Static key V1-----\" line",
        ));
    }
    if key.len() != OPENVPN_KEY_BYTES {
        return Err(invalid("is shorter than 2048 bits"));
    }
    Ok(SecretBytes::new(std::mem::take(&mut *key)))
}

/// The byte two hex digits stand for.
fn hex_pair(pair: &[u8]) -> Option<u8> {
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    match pair {
        [hi, lo] => Some(digit(*hi)? << 4 | digit(*lo)?),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
