//! The keyring's own secret types that are not keys with certificates: pre-shared keys, DH
//! parameters, OpenVPN static keys, remote-access credentials and UFTP key pairs. What to
//! make ([`Recipe`]), making it, writing it as Secret data, reading it back and checking it
//! against the recipe.

use std::collections::BTreeMap;

use crate::api::certificate_key_pair::{KeyAlgorithm, KeyEncoding};
use crate::api::keyring_secret::DhGroup;

use super::fingerprint::{hmac_sha256_tagged, sha256_tagged};
use super::parse::Mismatch;
use super::pkey::{KeyKind, PrivateKey};
use super::progress::Progress;
use super::{MaterialError, SecretBytes, SecretString, dh, random};

/// Secret key of a PSK's raw bytes.
pub const PSK: &str = "psk";
/// Secret key of a PSK in lowercase hex.
pub const PSK_HEX: &str = "psk.hex";
/// Secret key of PKCS#3 DH parameters.
pub const DHPARAM_PEM: &str = "dhparam.pem";
/// Secret key of an OpenVPN static key.
pub const STATIC_KEY: &str = "static.key";
/// Secret key of the username (`kubernetes.io/basic-auth`).
pub const USERNAME: &str = "username";
/// Secret key of the password (`kubernetes.io/basic-auth`).
pub const PASSWORD: &str = "password";
/// Secret key of the htpasswd line.
pub const HTPASSWD: &str = "htpasswd";
/// Secret key of the UFTP private key (PKCS#8 PEM).
pub const UFTP_KEY: &str = "uftp.key";
/// Secret key of the UFTP public key (SubjectPublicKeyInfo PEM).
pub const UFTP_PUB: &str = "uftp.pub";

/// Which DH parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DhRecipe {
    /// A fixed RFC 7919 group (never `DhGroup::Generate`).
    Group(DhGroup),
    /// A fresh safe prime of this many bits.
    Generate(u32),
}

/// What to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipe {
    /// Random bytes.
    Psk {
        /// Bytes.
        length: u32,
    },
    /// DH parameters.
    Dh(DhRecipe),
    /// An OpenVPN static key V1.
    OpenVpn,
    /// A username with a random password and its htpasswd line.
    RemoteAccess {
        /// The username.
        username: String,
        /// Password characters.
        password_length: u32,
    },
    /// A UFTP key pair.
    Uftp(KeyKind),
}

impl Recipe {
    /// What is made, in words (progress messages, metrics).
    pub fn describe(&self) -> String {
        match self {
            Self::Psk { length } => format!("a {length}-byte PSK"),
            Self::Dh(DhRecipe::Group(group)) => format!("DH group {group:?}"),
            Self::Dh(DhRecipe::Generate(bits)) => format!("{bits}-bit DH parameters"),
            Self::OpenVpn => "an OpenVPN static key".to_owned(),
            Self::RemoteAccess { .. } => "remote-access credentials".to_owned(),
            Self::Uftp(kind) => format!("a UFTP {:?} {} key", kind.algorithm(), kind.size()),
        }
    }

    /// True when making it takes long enough to run as a tracked task (a fresh safe prime).
    pub fn is_slow(&self) -> bool {
        matches!(self, Self::Dh(DhRecipe::Generate(_)))
            || matches!(self, Self::Uftp(kind) if kind.is_slow())
    }

    /// True when making it costs less than an API round trip (no prime search, no bcrypt):
    /// a reconcile may then guess that a new resource's Secret is absent
    /// (`reconcile::absent_guesses`) and, rarely, make it for nothing.
    pub fn is_quick(&self) -> bool {
        match self {
            Self::Psk { .. } | Self::Dh(DhRecipe::Group(_)) | Self::OpenVpn => true,
            Self::Dh(DhRecipe::Generate(_)) | Self::RemoteAccess { .. } => false,
            Self::Uftp(kind) => kind.is_quick(),
        }
    }

    /// The metric label of the algorithm.
    pub fn algorithm_label(&self) -> String {
        match self {
            Self::Psk { .. } => "psk".to_owned(),
            Self::Dh(DhRecipe::Group(group)) => format!("{group:?}"),
            Self::Dh(DhRecipe::Generate(bits)) => format!("DH-{bits}"),
            Self::OpenVpn => "openvpn-static".to_owned(),
            Self::RemoteAccess { .. } => "bcrypt".to_owned(),
            Self::Uftp(kind) => format!("{:?}-{}", kind.algorithm(), kind.size()),
        }
    }

    /// Makes it. Only DH generation looks at `progress` (steps, cancellation).
    pub fn make(&self, progress: &Progress) -> Result<Material, MaterialError> {
        Ok(match self {
            Self::Psk { length } => Material::Psk(random::psk(*length)?),
            Self::Dh(DhRecipe::Group(group)) => Material::Dh(dh::ffdhe(*group)?),
            Self::Dh(DhRecipe::Generate(bits)) => Material::Dh(dh::generate(*bits, progress)?),
            Self::OpenVpn => Material::OpenVpn(random::openvpn_static_key()?),
            Self::RemoteAccess {
                username,
                password_length,
            } => {
                let password = random::password(*password_length)?;
                let htpasswd = random::htpasswd_line(username, &password)?;
                Material::RemoteAccess {
                    username: username.clone(),
                    password,
                    htpasswd,
                }
            }
            Self::Uftp(kind) => Material::Uftp(PrivateKey::generate(*kind)?),
        })
    }

    /// The Secret type of the material.
    pub fn secret_type(&self) -> &'static str {
        match self {
            Self::RemoteAccess { .. } => "kubernetes.io/basic-auth",
            _ => "Opaque",
        }
    }

    /// Reads the material of this recipe's type from Secret data. Errors name the Secret key
    /// at fault.
    pub fn read(&self, data: &BTreeMap<String, Vec<u8>>) -> Result<Material, MaterialError> {
        let get = |key: &str| {
            data.get(key)
                .map(Vec::as_slice)
                .ok_or_else(|| MaterialError::Invalid(format!("{key} is missing")))
        };
        let text = |key: &str| {
            std::str::from_utf8(get(key)?)
                .map(str::to_owned)
                .map_err(|_| MaterialError::Invalid(format!("{key} is not UTF-8 text")))
        };
        match self {
            Self::Psk { .. } => {
                let psk = SecretBytes::new(get(PSK)?.to_vec());
                if get(PSK_HEX)? != random::hex(&psk).expose().as_bytes() {
                    return Err(MaterialError::Invalid(format!(
                        "{PSK_HEX} is not the hex form of {PSK}"
                    )));
                }
                Ok(Material::Psk(psk))
            }
            Self::Dh(_) => {
                let pem = text(DHPARAM_PEM)?;
                dh::parse(pem.as_bytes())
                    .map_err(|e| MaterialError::Invalid(format!("{DHPARAM_PEM}: {e}")))?;
                Ok(Material::Dh(pem))
            }
            Self::OpenVpn => {
                let key = get(STATIC_KEY)?;
                random::parse_openvpn_static_key(key)
                    .map_err(|e| MaterialError::Invalid(format!("{STATIC_KEY}: {e}")))?;
                Ok(Material::OpenVpn(SecretString::new(text(STATIC_KEY)?)))
            }
            Self::RemoteAccess { .. } => Ok(Material::RemoteAccess {
                username: text(USERNAME)?,
                password: SecretString::new(text(PASSWORD)?),
                htpasswd: SecretString::new(text(HTPASSWD)?),
            }),
            Self::Uftp(_) => {
                let key = PrivateKey::from_pem(get(UFTP_KEY)?)
                    .map_err(|e| MaterialError::Invalid(format!("{UFTP_KEY}: {e}")))?;
                if get(UFTP_PUB)? != public_pem(&key)?.as_bytes() {
                    return Err(MaterialError::Invalid(format!(
                        "{UFTP_PUB} is not the public key of {UFTP_KEY}"
                    )));
                }
                Ok(Material::Uftp(key))
            }
        }
    }

    /// Whether `material` is what this recipe makes (type, sizes, names); `Err` says why
    /// not, without material. Checks the htpasswd line against the password (bcrypt: tens
    /// of milliseconds; call it off the async threads).
    pub fn check(&self, material: &Material) -> Result<(), Mismatch> {
        let mismatch = |m: String| Err(Mismatch(m));
        match (self, material) {
            (Self::Psk { length }, Material::Psk(psk)) => {
                let have = psk.expose().len();
                if u32::try_from(have).ok() != Some(*length) {
                    return mismatch(format!("the PSK has {have} bytes, spec asks for {length}"));
                }
                Ok(())
            }
            (Self::Dh(recipe), Material::Dh(pem)) => check_dh(*recipe, pem),
            (Self::OpenVpn, Material::OpenVpn(_)) => Ok(()),
            (
                Self::RemoteAccess {
                    username,
                    password_length,
                },
                Material::RemoteAccess {
                    username: have_user,
                    password,
                    htpasswd,
                },
            ) => check_remote_access(
                (username, *password_length),
                (have_user, password, htpasswd),
            ),
            (Self::Uftp(kind), Material::Uftp(key)) => {
                if key.kind() != *kind {
                    return mismatch(format!(
                        "the key is {:?} {}, spec asks for {:?} {}",
                        key.kind().algorithm(),
                        key.kind().size(),
                        kind.algorithm(),
                        kind.size()
                    ));
                }
                Ok(())
            }
            _ => mismatch("the Secret holds material of another type".to_owned()),
        }
    }
}

fn check_dh(recipe: DhRecipe, pem: &str) -> Result<(), Mismatch> {
    let info = dh::parse(pem.as_bytes())
        .map_err(|e| Mismatch(format!("the DH parameters cannot be read: {e}")))?;
    match recipe {
        DhRecipe::Group(group) if info.ffdhe != Some(group) => Err(Mismatch(format!(
            "the DH parameters are not group {group:?}"
        ))),
        DhRecipe::Generate(_) if info.ffdhe.is_some() => Err(Mismatch(
            "the DH parameters are a fixed RFC 7919 group, spec asks for generated ones".into(),
        )),
        DhRecipe::Generate(bits) if info.bits != bits => Err(Mismatch(format!(
            "the DH prime has {} bits, spec asks for {bits}",
            info.bits
        ))),
        _ => Ok(()),
    }
}

fn check_remote_access(
    (username, length): (&str, u32),
    (have_user, password, htpasswd): (&str, &SecretString, &SecretString),
) -> Result<(), Mismatch> {
    if have_user != username {
        return Err(Mismatch(format!(
            "the username is {have_user:?}, spec asks for {username:?}"
        )));
    }
    let chars = password.expose().chars().count();
    if u32::try_from(chars).ok() != Some(length) {
        return Err(Mismatch(format!(
            "the password has {chars} characters, spec asks for {length}"
        )));
    }
    if !random::htpasswd_line_verifies(htpasswd, username, password) {
        return Err(Mismatch(
            "the htpasswd line does not verify the username and password".to_owned(),
        ));
    }
    Ok(())
}

/// Material of a [`Recipe`].
#[derive(Clone, Debug)]
pub enum Material {
    /// PSK bytes.
    Psk(SecretBytes),
    /// PKCS#3 PEM (public parameters).
    Dh(String),
    /// The static key file.
    OpenVpn(SecretString),
    /// Credentials.
    RemoteAccess {
        /// Username.
        username: String,
        /// Password.
        password: SecretString,
        /// `username:$2y$10$…`.
        htpasswd: SecretString,
    },
    /// A UFTP private key.
    Uftp(PrivateKey),
}

impl Material {
    /// The Secret data.
    pub fn secret_data(&self) -> Result<BTreeMap<String, SecretBytes>, MaterialError> {
        let bytes = |s: &str| SecretBytes::new(s.as_bytes().to_vec());
        let entries = match self {
            Self::Psk(psk) => vec![
                (PSK, psk.clone()),
                (PSK_HEX, bytes(random::hex(psk).expose())),
            ],
            Self::Dh(pem) => vec![(DHPARAM_PEM, bytes(pem))],
            Self::OpenVpn(key) => vec![(STATIC_KEY, bytes(key.expose()))],
            Self::RemoteAccess {
                username,
                password,
                htpasswd,
            } => vec![
                (USERNAME, bytes(username)),
                (PASSWORD, bytes(password.expose())),
                (HTPASSWD, bytes(htpasswd.expose())),
            ],
            Self::Uftp(key) => vec![
                (UFTP_KEY, bytes(key.to_pem(KeyEncoding::PKCS8)?.expose())),
                (UFTP_PUB, bytes(&public_pem(key)?)),
            ],
        };
        Ok(entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect())
    }

    /// The fingerprint of the material. Public material: `SHA256:<hex>` of the DER of the
    /// DH parameters or of the UFTP public key. Secret material (PSK bytes, the OpenVPN key
    /// bytes, `username:password`): `HMAC-SHA256:<hex>` keyed with `salt`, a random value
    /// kept with the material in its Secret, so that whoever reads only the status cannot
    /// test guesses against it (a PSK of a few bytes would otherwise be found at once).
    pub fn fingerprint(&self, salt: &[u8]) -> Result<String, MaterialError> {
        let keyed = |data: &[u8]| hmac_sha256_tagged(salt, data);
        Ok(match self {
            Self::Psk(psk) => keyed(psk.expose()),
            Self::Dh(pem) => {
                let der = ::pem::parse(pem.as_bytes())
                    .map_err(|_| MaterialError::Invalid("the DH parameters are not PEM".into()))?;
                sha256_tagged(der.contents())
            }
            Self::OpenVpn(key) => {
                keyed(random::parse_openvpn_static_key(key.expose().as_bytes())?.expose())
            }
            Self::RemoteAccess {
                username, password, ..
            } => {
                let mut joined = zeroize::Zeroizing::new(username.clone().into_bytes());
                joined.push(b':');
                joined.extend_from_slice(password.expose().as_bytes());
                keyed(&joined)
            }
            Self::Uftp(key) => sha256_tagged(&key.public_key_der()?),
        })
    }

    /// Size of the material for the status: PSK bytes, DH prime bits, OpenVPN key bits,
    /// password characters, key bits.
    pub fn size(&self) -> Option<u32> {
        match self {
            Self::Psk(psk) => u32::try_from(psk.expose().len()).ok(),
            Self::Dh(pem) => dh::parse(pem.as_bytes()).ok().map(|i| i.bits),
            Self::OpenVpn(_) => Some(2048),
            Self::RemoteAccess { password, .. } => {
                u32::try_from(password.expose().chars().count()).ok()
            }
            Self::Uftp(key) => Some(key.kind().size()),
        }
    }
}

/// `-----BEGIN PUBLIC KEY-----` of `key`.
fn public_pem(key: &PrivateKey) -> Result<String, MaterialError> {
    let pem = ::pem::Pem::new("PUBLIC KEY", key.public_key_der()?);
    let config = ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF);
    Ok(::pem::encode_config(&pem, config))
}

/// The key kind of a UFTP key: ECDSA (default P-256) or RSA (default 2048).
pub fn uftp_key_kind(rsa: bool, size: Option<u32>) -> Result<KeyKind, MaterialError> {
    let algorithm = if rsa {
        KeyAlgorithm::RSA
    } else {
        KeyAlgorithm::ECDSA
    };
    KeyKind::from_spec(algorithm, size)
}

#[cfg(test)]
#[path = "keyring/tests.rs"]
mod tests;
