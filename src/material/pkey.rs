//! Private keys for certificates: generation (RSA through aws-lc-rs), PEM/DER encodings
//! (PKCS#8, PKCS#1 for RSA, SEC1 for ECDSA) and parsing.

use std::fmt;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{self, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, ECDSA_P521_SHA512_ASN1_SIGNING,
    EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair as _,
};
use x509_parser::asn1_rs::{Any, FromDer, Sequence};
use zeroize::Zeroizing;

use crate::api::certificate_key_pair::{KeyAlgorithm, KeyEncoding, RSA_SIZES};

use super::{MaterialError, SecretBytes, SecretString};

/// PEM label of PKCS#8 keys.
const LABEL_PKCS8: &str = "PRIVATE KEY";
/// PEM label of PKCS#1 RSA keys.
const LABEL_PKCS1: &str = "RSA PRIVATE KEY";
/// PEM label of SEC1 (RFC 5915) EC keys.
const LABEL_SEC1: &str = "EC PRIVATE KEY";

/// A concrete key type: algorithm and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA on P-256.
    EcdsaP256,
    /// ECDSA on P-384.
    EcdsaP384,
    /// ECDSA on P-521.
    EcdsaP521,
    /// RSA with a modulus of this many bits (2048, 3072, 4096 or 8192).
    Rsa(u32),
    /// Ed25519.
    Ed25519,
}

impl KeyKind {
    /// The key a spec asks for, with api.md's defaults (ECDSA 256, RSA 2048).
    pub fn from_spec(algorithm: KeyAlgorithm, size: Option<u32>) -> Result<Self, MaterialError> {
        match algorithm {
            KeyAlgorithm::ECDSA => match size.unwrap_or(256) {
                256 => Ok(Self::EcdsaP256),
                384 => Ok(Self::EcdsaP384),
                521 => Ok(Self::EcdsaP521),
                other => Err(MaterialError::Unsupported(format!(
                    "ECDSA key size {other} is not supported; use 256, 384 or 521"
                ))),
            },
            KeyAlgorithm::RSA => {
                let bits = size.unwrap_or(2048);
                if RSA_SIZES.contains(&bits) {
                    Ok(Self::Rsa(bits))
                } else {
                    Err(MaterialError::Unsupported(format!(
                        "RSA key size {bits} is not supported; use 2048, 3072, 4096 or 8192"
                    )))
                }
            }
            KeyAlgorithm::Ed25519 => match size {
                None => Ok(Self::Ed25519),
                Some(_) => Err(MaterialError::Unsupported(
                    "Ed25519 keys have a fixed size; leave privateKey.size unset".to_owned(),
                )),
            },
        }
    }

    /// True for keys whose generation takes long enough (seconds to minutes: RSA 8192) to
    /// run as a tracked slow task.
    pub fn is_slow(self) -> bool {
        matches!(self, Self::Rsa(bits) if bits >= 8192)
    }

    /// True when generating the key costs less than an API round trip (ECDSA, Ed25519: well
    /// under a millisecond; RSA searches primes for tens of milliseconds or more).
    pub fn is_quick(self) -> bool {
        !matches!(self, Self::Rsa(_))
    }

    /// The algorithm as the API names it.
    pub fn algorithm(self) -> KeyAlgorithm {
        match self {
            Self::EcdsaP256 | Self::EcdsaP384 | Self::EcdsaP521 => KeyAlgorithm::ECDSA,
            Self::Rsa(_) => KeyAlgorithm::RSA,
            Self::Ed25519 => KeyAlgorithm::Ed25519,
        }
    }

    /// Size in bits (256 for Ed25519).
    pub fn size(self) -> u32 {
        match self {
            Self::EcdsaP256 | Self::Ed25519 => 256,
            Self::EcdsaP384 => 384,
            Self::EcdsaP521 => 521,
            Self::Rsa(bits) => bits,
        }
    }

    /// The aws-lc-rs signing algorithm that loads keys of this curve (ECDSA only).
    fn ecdsa_algorithm(self) -> Option<&'static EcdsaSigningAlgorithm> {
        match self {
            Self::EcdsaP256 => Some(&ECDSA_P256_SHA256_ASN1_SIGNING),
            Self::EcdsaP384 => Some(&ECDSA_P384_SHA384_ASN1_SIGNING),
            Self::EcdsaP521 => Some(&ECDSA_P521_SHA512_ASN1_SIGNING),
            Self::Rsa(_) | Self::Ed25519 => None,
        }
    }
}

/// `ECDSA P-256`, `RSA 2048`, `Ed25519`: how messages name a key type.
impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EcdsaP256 => f.write_str("ECDSA P-256"),
            Self::EcdsaP384 => f.write_str("ECDSA P-384"),
            Self::EcdsaP521 => f.write_str("ECDSA P-521"),
            Self::Rsa(bits) => write!(f, "RSA {bits}"),
            Self::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// The curves tried, in order, when a key's curve is not known yet.
const ECDSA_KINDS: [KeyKind; 3] = [KeyKind::EcdsaP256, KeyKind::EcdsaP384, KeyKind::EcdsaP521];

/// A private key, held as PKCS#8 DER in zeroizing memory. `Debug` shows only the kind.
#[derive(Clone)]
pub struct PrivateKey {
    kind: KeyKind,
    pkcs8: SecretBytes,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Generates a new key.
    pub fn generate(kind: KeyKind) -> Result<Self, MaterialError> {
        let failed = || MaterialError::Crypto(format!("generating a {kind} key failed"));
        let pkcs8 = match kind {
            KeyKind::Rsa(bits) => {
                let pair = rsa::KeyPair::generate(rsa_key_size(bits)?).map_err(|_| failed())?;
                rsa_pkcs8(&pair)?
            }
            KeyKind::Ed25519 => {
                let pair = Ed25519KeyPair::generate().map_err(|_| failed())?;
                let der: Pkcs8V1Der<'_> = pair.as_der().map_err(|_| failed())?;
                SecretBytes::new(der.as_ref().to_vec())
            }
            KeyKind::EcdsaP256 | KeyKind::EcdsaP384 | KeyKind::EcdsaP521 => {
                let alg = kind.ecdsa_algorithm().ok_or_else(failed)?;
                let pair = EcdsaKeyPair::generate(alg).map_err(|_| failed())?;
                ecdsa_pkcs8(&pair)?
            }
        };
        Ok(Self { kind, pkcs8 })
    }

    /// Parses a PEM key: "PRIVATE KEY" (PKCS#8), "RSA PRIVATE KEY" (PKCS#1) or
    /// "EC PRIVATE KEY" (SEC1).
    ///
    /// PKCS#8 input is kept byte for byte (so a key read back from a Secret encodes exactly
    /// as it was written); PKCS#1 and SEC1 input is converted to PKCS#8 by aws-lc-rs.
    pub fn from_pem(pem: &[u8]) -> Result<Self, MaterialError> {
        let block = pem::parse(pem)
            .map_err(|_| MaterialError::Invalid("the key is not a PEM block".to_owned()))?;
        let label = block.tag().to_owned();
        let der = Zeroizing::new(block.into_contents());
        match label.as_str() {
            LABEL_PKCS8 => Self::from_pkcs8_der(&der),
            LABEL_PKCS1 => Self::from_pkcs1_der(&der),
            LABEL_SEC1 => Self::from_sec1_der(&der),
            other => Err(MaterialError::Invalid(format!(
                "the PEM block is \"{}\", expected \"PRIVATE KEY\", \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\"",
                printable_label(other)
            ))),
        }
    }

    /// Parses PKCS#8 DER, detecting the key type. The bytes are kept as given.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, MaterialError> {
        let kind = detect_pkcs8_kind(der)?;
        Ok(Self {
            kind,
            pkcs8: SecretBytes::new(der.to_vec()),
        })
    }

    /// Parses a PKCS#1 `RSAPrivateKey` (DER) and converts it to PKCS#8.
    fn from_pkcs1_der(der: &[u8]) -> Result<Self, MaterialError> {
        let pair = rsa::KeyPair::from_der(der).map_err(|_| {
            MaterialError::Invalid("the RSA PRIVATE KEY block is not a usable RSA key".to_owned())
        })?;
        Ok(Self {
            kind: rsa_kind(&pair),
            pkcs8: rsa_pkcs8(&pair)?,
        })
    }

    /// Parses a SEC1 `ECPrivateKey` (DER), detecting the curve, and converts it to PKCS#8.
    fn from_sec1_der(der: &[u8]) -> Result<Self, MaterialError> {
        for kind in ECDSA_KINDS {
            let Some(alg) = kind.ecdsa_algorithm() else {
                continue;
            };
            if let Ok(pair) = EcdsaKeyPair::from_private_key_der(alg, der) {
                return Ok(Self {
                    kind,
                    pkcs8: ecdsa_pkcs8(&pair)?,
                });
            }
        }
        Err(MaterialError::Invalid(
            "the EC PRIVATE KEY block is not a P-256, P-384 or P-521 key".to_owned(),
        ))
    }

    /// The key's type.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// PEM in the requested encoding (PKCS1 means SEC1 for ECDSA; Ed25519 is always PKCS#8).
    pub fn to_pem(&self, encoding: KeyEncoding) -> Result<SecretString, MaterialError> {
        let der = self.to_der(encoding)?;
        let label = match (encoding, self.kind) {
            (KeyEncoding::PKCS8, _) | (KeyEncoding::PKCS1, KeyKind::Ed25519) => LABEL_PKCS8,
            (KeyEncoding::PKCS1, KeyKind::Rsa(_)) => LABEL_PKCS1,
            (KeyEncoding::PKCS1, _) => LABEL_SEC1,
        };
        Ok(SecretString::new(pem_encode(label, der.expose())))
    }

    /// DER in the requested encoding.
    pub fn to_der(&self, encoding: KeyEncoding) -> Result<SecretBytes, MaterialError> {
        match (encoding, self.kind) {
            (KeyEncoding::PKCS8, _) | (KeyEncoding::PKCS1, KeyKind::Ed25519) => {
                Ok(self.pkcs8.clone())
            }
            (KeyEncoding::PKCS1, KeyKind::Rsa(_)) => pkcs8_inner_key(self.pkcs8.expose()),
            (KeyEncoding::PKCS1, kind) => {
                let pair = self.ecdsa_pair(kind)?;
                let der = pair.private_key().as_der().map_err(|_| {
                    MaterialError::Crypto(format!("encoding the {kind} key as SEC1 failed"))
                })?;
                Ok(SecretBytes::new(der.as_ref().to_vec()))
            }
        }
    }

    /// The public key as DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> Result<Vec<u8>, MaterialError> {
        let kind = self.kind;
        let failed = || MaterialError::Crypto(format!("encoding the {kind} public key failed"));
        let der: PublicKeyX509Der<'static> = match kind {
            KeyKind::Rsa(_) => self.rsa_pair()?.public_key().as_der(),
            KeyKind::Ed25519 => self.ed25519_pair()?.public_key().as_der(),
            _ => self.ecdsa_pair(kind)?.public_key().as_der(),
        }
        .map_err(|_| failed())?;
        Ok(der.as_ref().to_vec())
    }

    /// The PKCS#8 DER (for signing through rcgen and for keystores).
    pub(crate) fn pkcs8_der(&self) -> &[u8] {
        self.pkcs8.expose()
    }

    fn rsa_pair(&self) -> Result<rsa::KeyPair, MaterialError> {
        rsa::KeyPair::from_pkcs8(self.pkcs8.expose())
            .map_err(|_| MaterialError::Crypto("loading the RSA key failed".to_owned()))
    }

    fn ed25519_pair(&self) -> Result<Ed25519KeyPair, MaterialError> {
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(self.pkcs8.expose())
            .map_err(|_| MaterialError::Crypto("loading the Ed25519 key failed".to_owned()))
    }

    fn ecdsa_pair(&self, kind: KeyKind) -> Result<EcdsaKeyPair, MaterialError> {
        let failed = || MaterialError::Crypto(format!("loading the {kind} key failed"));
        let alg = kind.ecdsa_algorithm().ok_or_else(failed)?;
        EcdsaKeyPair::from_pkcs8(alg, self.pkcs8.expose()).map_err(|_| failed())
    }
}

/// PEM with LF line endings, as OpenSSL writes it.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let block = pem::Pem::new(label, der);
    let text = pem::encode_config(
        &block,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    );
    // The block holds a copy of the DER; clear it (keys pass through here).
    drop(Zeroizing::new(block.into_contents()));
    text
}

/// A PEM label safe to repeat in a message (labels are public, but keep them short and
/// printable).
fn printable_label(label: &str) -> String {
    label
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(40)
        .collect()
}

fn rsa_key_size(bits: u32) -> Result<KeySize, MaterialError> {
    match bits {
        2048 => Ok(KeySize::Rsa2048),
        3072 => Ok(KeySize::Rsa3072),
        4096 => Ok(KeySize::Rsa4096),
        8192 => Ok(KeySize::Rsa8192),
        other => Err(MaterialError::Unsupported(format!(
            "RSA key size {other} is not supported; use 2048, 3072, 4096 or 8192"
        ))),
    }
}

fn rsa_kind(pair: &rsa::KeyPair) -> KeyKind {
    let bits = u32::try_from(pair.public_modulus_len() * 8).unwrap_or(u32::MAX);
    KeyKind::Rsa(bits)
}

fn rsa_pkcs8(pair: &rsa::KeyPair) -> Result<SecretBytes, MaterialError> {
    let der: Pkcs8V1Der<'static> = pair
        .as_der()
        .map_err(|_| MaterialError::Crypto("encoding the RSA key as PKCS#8 failed".to_owned()))?;
    Ok(SecretBytes::new(der.as_ref().to_vec()))
}

fn ecdsa_pkcs8(pair: &EcdsaKeyPair) -> Result<SecretBytes, MaterialError> {
    let doc = pair
        .to_pkcs8v1()
        .map_err(|_| MaterialError::Crypto("encoding the ECDSA key as PKCS#8 failed".to_owned()))?;
    Ok(SecretBytes::new(doc.as_ref().to_vec()))
}

/// The key type of a PKCS#8 key, trying each algorithm aws-lc-rs knows.
fn detect_pkcs8_kind(der: &[u8]) -> Result<KeyKind, MaterialError> {
    if let Ok(pair) = rsa::KeyPair::from_pkcs8(der) {
        return Ok(rsa_kind(&pair));
    }
    for kind in ECDSA_KINDS {
        if let Some(alg) = kind.ecdsa_algorithm()
            && EcdsaKeyPair::from_pkcs8(alg, der).is_ok()
        {
            return Ok(kind);
        }
    }
    if Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).is_ok() {
        return Ok(KeyKind::Ed25519);
    }
    Err(MaterialError::Invalid(
        "the PRIVATE KEY block is not an RSA (2048 to 8192 bits), ECDSA P-256/P-384/P-521 or Ed25519 key"
            .to_owned(),
    ))
}

/// The `privateKey` OCTET STRING of a PKCS#8 `PrivateKeyInfo` (for RSA: the PKCS#1 key).
fn pkcs8_inner_key(pkcs8: &[u8]) -> Result<SecretBytes, MaterialError> {
    let malformed = || MaterialError::Crypto("the PKCS#8 key is malformed".to_owned());
    let (_, info) = Sequence::from_der(pkcs8).map_err(|_| malformed())?;
    let (rest, _version) = Any::from_der(&info.content).map_err(|_| malformed())?;
    let (rest, _algorithm) = Any::from_der(rest).map_err(|_| malformed())?;
    let (_, key) = <&[u8]>::from_der(rest).map_err(|_| malformed())?;
    Ok(SecretBytes::new(key.to_vec()))
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;
    use crate::material::x509::testing::{openssl, openssl_ok, write_file};

    const ALL_KINDS: [KeyKind; 7] = [
        KeyKind::EcdsaP256,
        KeyKind::EcdsaP384,
        KeyKind::EcdsaP521,
        KeyKind::Rsa(2048),
        KeyKind::Rsa(3072),
        KeyKind::Rsa(4096),
        KeyKind::Ed25519,
    ];

    /// What `openssl pkey -text` prints for each kind.
    fn openssl_marker(kind: KeyKind) -> &'static str {
        match kind {
            KeyKind::EcdsaP256 => "NIST CURVE: P-256",
            KeyKind::EcdsaP384 => "NIST CURVE: P-384",
            KeyKind::EcdsaP521 => "NIST CURVE: P-521",
            KeyKind::Rsa(2048) => "Private-Key: (2048 bit, 2 primes)",
            KeyKind::Rsa(3072) => "Private-Key: (3072 bit, 2 primes)",
            KeyKind::Rsa(4096) => "Private-Key: (4096 bit, 2 primes)",
            KeyKind::Rsa(8192) => "Private-Key: (8192 bit, 2 primes)",
            KeyKind::Rsa(_) => "unexpected",
            KeyKind::Ed25519 => "ED25519 Private-Key:",
        }
    }

    /// Checks a PEM key with `openssl pkey -check` and `-text`.
    fn assert_openssl_accepts(key: &PrivateKey) {
        let dir = tempfile::tempdir().unwrap();
        let pem = key.to_pem(KeyEncoding::PKCS8).unwrap();
        assert!(pem.expose().starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let path = write_file(&dir, "k.pem", pem.expose().as_bytes());
        let check = if key.kind() == KeyKind::Ed25519 {
            "-pubcheck"
        } else {
            "-check"
        };
        let out = openssl_ok(&["pkey", "-in", path.to_str().unwrap(), check, "-noout"]);
        if check == "-check" {
            assert!(out.contains("Key is valid"), "{out}");
        }
        let text = openssl_ok(&["pkey", "-in", path.to_str().unwrap(), "-text", "-noout"]);
        assert!(
            text.contains(openssl_marker(key.kind())),
            "{:?}: {text}",
            key.kind()
        );
    }

    #[test]
    fn from_spec_defaults_and_rejections() {
        assert_eq!(
            KeyKind::from_spec(KeyAlgorithm::ECDSA, None).unwrap(),
            KeyKind::EcdsaP256
        );
        assert_eq!(
            KeyKind::from_spec(KeyAlgorithm::RSA, None).unwrap(),
            KeyKind::Rsa(2048)
        );
        assert_eq!(
            KeyKind::from_spec(KeyAlgorithm::ECDSA, Some(521)).unwrap(),
            KeyKind::EcdsaP521
        );
        assert_eq!(
            KeyKind::from_spec(KeyAlgorithm::RSA, Some(8192)).unwrap(),
            KeyKind::Rsa(8192)
        );
        assert_eq!(
            KeyKind::from_spec(KeyAlgorithm::Ed25519, None).unwrap(),
            KeyKind::Ed25519
        );
        for (alg, size) in [
            (KeyAlgorithm::ECDSA, Some(224)),
            (KeyAlgorithm::RSA, Some(1024)),
            (KeyAlgorithm::RSA, Some(2047)),
            (KeyAlgorithm::Ed25519, Some(256)),
        ] {
            let err = KeyKind::from_spec(alg, size).unwrap_err();
            assert!(matches!(err, MaterialError::Unsupported(_)), "{err:?}");
        }
        assert_eq!(KeyKind::Ed25519.size(), 256);
        assert_eq!(KeyKind::Rsa(4096).algorithm(), KeyAlgorithm::RSA);
        assert_eq!(KeyKind::EcdsaP384.to_string(), "ECDSA P-384");
    }

    #[test]
    fn every_kind_is_accepted_by_openssl() {
        for kind in ALL_KINDS {
            let key = PrivateKey::generate(kind).unwrap();
            assert_eq!(key.kind(), kind);
            assert_openssl_accepts(&key);
        }
    }

    #[test]
    fn rsa_8192_is_generated_and_accepted() {
        let key = PrivateKey::generate(KeyKind::Rsa(8192)).unwrap();
        assert_openssl_accepts(&key);
        let back =
            PrivateKey::from_pem(key.to_pem(KeyEncoding::PKCS1).unwrap().expose().as_bytes())
                .unwrap();
        assert_eq!(back.kind(), KeyKind::Rsa(8192));
    }

    #[test]
    fn pkcs1_rsa_pem_is_checked_by_openssl_rsa() {
        let key = PrivateKey::generate(KeyKind::Rsa(2048)).unwrap();
        let pem = key.to_pem(KeyEncoding::PKCS1).unwrap();
        assert!(
            pem.expose()
                .starts_with("-----BEGIN RSA PRIVATE KEY-----\n")
        );
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(&dir, "rsa.pem", pem.expose().as_bytes());
        let out = openssl_ok(&["rsa", "-in", path.to_str().unwrap(), "-check", "-noout"]);
        assert!(out.contains("RSA key ok"), "{out}");
        // The DER form is the same PKCS#1 structure.
        let der_path = write_file(
            &dir,
            "rsa.der",
            key.to_der(KeyEncoding::PKCS1).unwrap().expose(),
        );
        openssl_ok(&[
            "rsa",
            "-inform",
            "DER",
            "-in",
            der_path.to_str().unwrap(),
            "-check",
            "-noout",
        ]);
    }

    #[test]
    fn sec1_ec_pem_has_named_curve_and_is_checked_by_openssl_ec() {
        for kind in ECDSA_KINDS {
            let key = PrivateKey::generate(kind).unwrap();
            let pem = key.to_pem(KeyEncoding::PKCS1).unwrap();
            assert!(pem.expose().starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
            let dir = tempfile::tempdir().unwrap();
            let path = write_file(&dir, "ec.pem", pem.expose().as_bytes());
            let out = openssl_ok(&["ec", "-in", path.to_str().unwrap(), "-check", "-noout"]);
            assert!(out.contains("EC Key valid."), "{out}");
            // The parameters are inside the SEC1 structure: asn1parse shows the curve OID.
            let asn1 = openssl_ok(&["asn1parse", "-in", path.to_str().unwrap()]);
            let curve = match kind {
                KeyKind::EcdsaP256 => "prime256v1",
                KeyKind::EcdsaP384 => "secp384r1",
                _ => "secp521r1",
            };
            assert!(asn1.contains(curve), "{asn1}");
            let text = openssl_ok(&["ec", "-in", path.to_str().unwrap(), "-text", "-noout"]);
            assert!(text.contains(openssl_marker(kind)), "{text}");
        }
    }

    #[test]
    fn ed25519_is_always_pkcs8() {
        let key = PrivateKey::generate(KeyKind::Ed25519).unwrap();
        let pem = key.to_pem(KeyEncoding::PKCS1).unwrap();
        assert!(pem.expose().starts_with("-----BEGIN PRIVATE KEY-----\n"));
    }

    #[test]
    fn from_pem_round_trips_all_three_labels() {
        for kind in [
            KeyKind::Rsa(2048),
            KeyKind::EcdsaP256,
            KeyKind::EcdsaP384,
            KeyKind::EcdsaP521,
            KeyKind::Ed25519,
        ] {
            let key = PrivateKey::generate(kind).unwrap();
            let public = key.public_key_der().unwrap();
            for encoding in [KeyEncoding::PKCS8, KeyEncoding::PKCS1] {
                let pem = key.to_pem(encoding).unwrap();
                let back = PrivateKey::from_pem(pem.expose().as_bytes()).unwrap();
                assert_eq!(back.kind(), kind);
                assert_eq!(
                    back.public_key_der().unwrap(),
                    public,
                    "{kind} {encoding:?}"
                );
                assert_eq!(back.to_pem(encoding).unwrap(), pem, "{kind} {encoding:?}");
            }
        }
    }

    #[test]
    fn from_pem_reads_openssl_keys() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&[&str], KeyKind); 4] = [
            (
                &[
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:3072",
                ],
                KeyKind::Rsa(3072),
            ),
            (
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-384",
                ],
                KeyKind::EcdsaP384,
            ),
            (&["genpkey", "-algorithm", "ED25519"], KeyKind::Ed25519),
            (
                &["ecparam", "-name", "secp521r1", "-genkey", "-noout"],
                KeyKind::EcdsaP521,
            ),
        ];
        for (i, (args, kind)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("k{i}.pem"));
            let mut args = args.to_vec();
            args.extend(["-out", path.to_str().unwrap()]);
            openssl_ok(&args);
            let pem = std::fs::read(&path).unwrap();
            let key = PrivateKey::from_pem(&pem).unwrap();
            assert_eq!(key.kind(), kind);
            // Same public key as openssl derives.
            let pub_der = openssl_ok_bytes(&[
                "pkey",
                "-in",
                path.to_str().unwrap(),
                "-pubout",
                "-outform",
                "DER",
            ]);
            assert_eq!(key.public_key_der().unwrap(), pub_der, "{kind}");
        }
        // A traditional "RSA PRIVATE KEY" written by openssl.
        let rsa = dir.path().join("trad.pem");
        openssl_ok(&[
            "genrsa",
            "-traditional",
            "-out",
            rsa.to_str().unwrap(),
            "2048",
        ]);
        let pem = std::fs::read(&rsa).unwrap();
        assert!(pem.starts_with(b"-----BEGIN RSA PRIVATE KEY-----"));
        assert_eq!(
            PrivateKey::from_pem(&pem).unwrap().kind(),
            KeyKind::Rsa(2048)
        );
    }

    fn openssl_ok_bytes(args: &[&str]) -> Vec<u8> {
        let out = openssl(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    #[test]
    fn from_pem_rejects_garbage_without_echoing_it() {
        let err = PrivateKey::from_pem(b"secret-garbage").unwrap_err();
        assert!(matches!(err, MaterialError::Invalid(_)));
        assert!(!err.to_string().contains("secret-garbage"));
        let cert_pem = pem_encode("CERTIFICATE", b"\x30\x00");
        let err = PrivateKey::from_pem(cert_pem.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("CERTIFICATE"), "{err}");
        let bad = pem_encode("PRIVATE KEY", b"\x30\x03\x02\x01\x00");
        assert!(matches!(
            PrivateKey::from_pem(bad.as_bytes()),
            Err(MaterialError::Invalid(_))
        ));
    }

    #[test]
    fn debug_is_redacted() {
        static KEY: OnceLock<PrivateKey> = OnceLock::new();
        let key = KEY.get_or_init(|| PrivateKey::generate(KeyKind::EcdsaP256).unwrap());
        let shown = format!("{key:?}");
        assert!(shown.contains("EcdsaP256"), "{shown}");
        assert!(!shown.contains("pkcs8"), "{shown}");
    }
}
