//! RSA for OpenSSH keys through aws-lc-rs: generation, conversion between aws-lc-rs keys and
//! ssh-key's [`RsaKeypair`], and certificate signing with rsa-sha2-512.
//!
//! ssh-key 0.6.7 cannot sign with RSA keys: its conversion to the `rsa` crate passes the
//! primes as `[p, p]` instead of `[p, q]`, which `rsa` 0.9.10 rejects (`p * p != n`). RSA CA
//! signatures are therefore made here with aws-lc-rs (see [`sign_certificate`]).

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeyPairComponents, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::RSA_PKCS1_SHA512;
use ssh_key::certificate::Builder;
use ssh_key::private::{Ed25519Keypair, RsaKeypair, RsaPrivateKey};
use ssh_key::public::{KeyData, RsaPublicKey};
use ssh_key::rand_core::OsRng;
use ssh_key::{Certificate, Mpint, PrivateKey};
use x509_parser::asn1_rs::{Any, FromDer, Tag};
use zeroize::Zeroizing;

use crate::material::MaterialError;

/// The signature algorithm of RSA CA signatures (OpenSSH's default for certificates).
const RSA_SHA2_512: &str = "rsa-sha2-512";

/// A big-endian unsigned integer that is zeroed on drop.
type SecretInt = Zeroizing<Vec<u8>>;

/// Generates an RSA key of `bits` with aws-lc-rs and converts it to ssh-key's form.
pub(super) fn generate(bits: u32) -> Result<RsaKeypair, MaterialError> {
    let failed = || MaterialError::Crypto(format!("generating an RSA {bits} key failed"));
    let pair = KeyPair::generate(key_size(bits)?).map_err(|_| failed())?;
    let pkcs8: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| failed())?;
    keypair_from_pkcs8(pkcs8.as_ref())
}

fn key_size(bits: u32) -> Result<KeySize, MaterialError> {
    match bits {
        2048 => Ok(KeySize::Rsa2048),
        3072 => Ok(KeySize::Rsa3072),
        4096 => Ok(KeySize::Rsa4096),
        other => Err(MaterialError::Unsupported(format!(
            "RSA key size {other} is not supported for SSH keys; use 2048, 3072 or 4096"
        ))),
    }
}

/// The ssh-key form of a PKCS#8 RSA key: n, e, d, iqmp, p, q of its PKCS#1 `RSAPrivateKey`.
fn keypair_from_pkcs8(pkcs8: &[u8]) -> Result<RsaKeypair, MaterialError> {
    let ints = pkcs1_integers(pkcs8_inner_key(pkcs8)?)?;
    // RSAPrivateKey ::= SEQUENCE { version, n, e, d, p, q, dP, dQ, qInv }
    let [_version, n, e, d, p, q, _dp, _dq, iqmp] = ints;
    Ok(RsaKeypair {
        public: RsaPublicKey {
            n: mpint(n)?,
            e: mpint(e)?,
        },
        private: RsaPrivateKey {
            d: mpint(d)?,
            iqmp: mpint(iqmp)?,
            p: mpint(p)?,
            q: mpint(q)?,
        },
    })
}

fn malformed() -> MaterialError {
    MaterialError::Crypto("the generated RSA key is malformed".to_owned())
}

/// The `privateKey` OCTET STRING of a PKCS#8 `PrivateKeyInfo` (for RSA: the PKCS#1 key).
fn pkcs8_inner_key(pkcs8: &[u8]) -> Result<&[u8], MaterialError> {
    let info = sequence_content(pkcs8)?;
    let (rest, _version) = Any::from_der(info).map_err(|_| malformed())?;
    let (rest, _algorithm) = Any::from_der(rest).map_err(|_| malformed())?;
    let (_, key) = <&[u8]>::from_der(rest).map_err(|_| malformed())?;
    Ok(key)
}

/// The content of a DER SEQUENCE, borrowed from `der`.
fn sequence_content(der: &[u8]) -> Result<&[u8], MaterialError> {
    let (_, any) = Any::from_der(der).map_err(|_| malformed())?;
    if any.tag() == Tag::Sequence {
        Ok(any.data)
    } else {
        Err(malformed())
    }
}

/// The nine INTEGERs of a two-prime PKCS#1 `RSAPrivateKey`, as zeroizing copies.
fn pkcs1_integers(pkcs1: &[u8]) -> Result<[SecretInt; 9], MaterialError> {
    let mut rest = sequence_content(pkcs1)?;
    let mut ints: [SecretInt; 9] = Default::default();
    for slot in &mut ints {
        let (next, any) = Any::from_der(rest).map_err(|_| malformed())?;
        if any.tag() != Tag::Integer {
            return Err(malformed());
        }
        *slot = Zeroizing::new(any.data.to_vec());
        rest = next;
    }
    if rest.is_empty() {
        Ok(ints)
    } else {
        Err(malformed())
    }
}

/// An SSH mpint from big-endian unsigned bytes (leading zeros stripped, a zero byte added
/// when the top bit is set), without leaving unzeroed copies behind.
fn mpint(bytes: SecretInt) -> Result<Mpint, MaterialError> {
    let digits = match bytes.iter().position(|b| *b != 0) {
        Some(first) => &bytes[first..],
        None => &[][..],
    };
    let mut encoded = Zeroizing::new(Vec::with_capacity(digits.len() + 1));
    if digits.first().is_some_and(|b| b & 0x80 != 0) {
        encoded.push(0);
    }
    encoded.extend_from_slice(digits);
    Mpint::from_bytes(&encoded).map_err(|_| malformed())
}

/// The aws-lc-rs key of an ssh-key RSA key pair. aws-lc-rs checks that the components are
/// consistent (`n = p·q`, `d·e ≡ 1`, CRT values), so this also validates a key read from a
/// Secret.
pub(super) fn aws_keypair(keypair: &RsaKeypair) -> Result<KeyPair, MaterialError> {
    let public = &keypair.public;
    let private = &keypair.private;
    fn positive(m: &Mpint) -> Result<&[u8], MaterialError> {
        m.as_positive_bytes().ok_or_else(inconsistent)
    }
    let (d, p, q) = (
        positive(&private.d)?,
        positive(&private.p)?,
        positive(&private.q)?,
    );
    let dp = crt_exponent(d, p);
    let dq = crt_exponent(d, q);
    let components = KeyPairComponents {
        public_key: PublicKeyComponents {
            n: positive(&public.n)?,
            e: positive(&public.e)?,
        },
        d,
        p,
        q,
        dP: dp.as_slice(),
        dQ: dq.as_slice(),
        qInv: positive(&private.iqmp)?,
    };
    KeyPair::from_components(&components).map_err(|_| inconsistent())
}

fn inconsistent() -> MaterialError {
    MaterialError::Invalid(
        "the RSA private key is inconsistent (n, e, d, p, q do not match)".to_owned(),
    )
}

/// `d mod (prime - 1)`, the CRT exponent PKCS#1 and aws-lc-rs need but OpenSSH does not
/// store.
fn crt_exponent(d: &[u8], prime: &[u8]) -> SecretInt {
    let mut prime_minus_one = Zeroizing::new(prime.to_vec());
    for byte in prime_minus_one.iter_mut().rev() {
        let (value, borrow) = byte.overflowing_sub(1);
        *byte = value;
        if !borrow {
            break;
        }
    }
    reduce(d, &prime_minus_one)
}

/// Big-endian bytes to little-endian 64-bit limbs (zeroized on drop).
fn limbs(big_endian: &[u8], count: usize) -> Zeroizing<Vec<u64>> {
    let mut out = Zeroizing::new(vec![0u64; count]);
    for (i, byte) in big_endian.iter().rev().enumerate() {
        if let Some(limb) = out.get_mut(i / 8) {
            *limb |= u64::from(*byte) << (8 * (i % 8));
        }
    }
    out
}

/// `a mod m` for big-endian unsigned integers, as big-endian bytes of `m`'s length.
///
/// Binary long division (shift in one bit of `a`, subtract `m` when the remainder reaches
/// it) with a masked, branch-free subtraction, so the time taken depends only on the
/// lengths, and every intermediate is zeroized. `m` must not be zero (the result is then
/// meaningless, and aws-lc-rs rejects the key).
pub(super) fn reduce(a: &[u8], m: &[u8]) -> SecretInt {
    let k = m.len().div_ceil(8);
    let modulus = limbs(m, k + 1);
    let mut rem = Zeroizing::new(vec![0u64; k + 1]);
    let mut diff = Zeroizing::new(vec![0u64; k + 1]);
    for byte in a {
        for shift in (0..8).rev() {
            // rem < m, so 2·rem + 1 < 2m fits in k + 1 limbs.
            let mut carry = u64::from((byte >> shift) & 1);
            for limb in rem.iter_mut() {
                let top = *limb >> 63;
                *limb = (*limb << 1) | carry;
                carry = top;
            }
            let mut borrow = 0u64;
            for ((d, r), m) in diff.iter_mut().zip(rem.iter()).zip(modulus.iter()) {
                let (x, b1) = r.overflowing_sub(*m);
                let (y, b2) = x.overflowing_sub(borrow);
                *d = y;
                borrow = u64::from(b1 | b2);
            }
            // No borrow: rem >= m, keep rem - m.
            let keep_diff = borrow.wrapping_sub(1);
            for (r, d) in rem.iter_mut().zip(diff.iter()) {
                *r = (*d & keep_diff) | (*r & !keep_diff);
            }
        }
    }
    let mut out = Zeroizing::new(vec![0u8; m.len()]);
    for (i, byte) in out.iter_mut().rev().enumerate() {
        let limb = rem.get(i / 8).copied().unwrap_or(0);
        *byte = (limb >> (8 * (i % 8))) as u8;
    }
    out
}

/// Signs the certificate `builder` describes with an RSA CA key (rsa-sha2-512).
///
/// ssh-key's builder can only sign through its own signer (broken for RSA, see the module
/// doc), so the certificate is first signed with a throwaway Ed25519 key; its trailing
/// `signature key` and `signature` fields are then replaced by the CA's public key and an
/// aws-lc-rs signature over the re-formed to-be-signed data (PROTOCOL.certkeys: the
/// signature covers every field up to and including the signature key).
pub(super) fn sign_certificate(
    builder: Builder,
    ca: &RsaKeypair,
    ca_public: &KeyData,
) -> Result<Certificate, MaterialError> {
    let failed =
        |what: &str| MaterialError::Crypto(format!("signing the certificate failed: {what}"));
    let signer = aws_keypair(ca)?;
    let throwaway = PrivateKey::from(Ed25519Keypair::random(&mut OsRng));
    let provisional = builder
        .sign(&throwaway)
        .map_err(|e| failed(&e.to_string()))?;
    let encoded = provisional.to_bytes().map_err(|e| failed(&e.to_string()))?;
    let trailer = certificate_trailer(
        &throwaway
            .public_key()
            .to_bytes()
            .map_err(|e| failed(&e.to_string()))?,
        provisional.signature().algorithm().as_str(),
        provisional.signature().as_bytes(),
    )?;
    let fields = encoded
        .strip_suffix(trailer.as_slice())
        .ok_or_else(|| failed("unexpected certificate encoding"))?;
    let mut tbs = fields.to_vec();
    let ca_blob = ssh_key::PublicKey::from(ca_public.clone())
        .to_bytes()
        .map_err(|e| failed(&e.to_string()))?;
    put_string(&mut tbs, &ca_blob)?;
    let mut signature = vec![0u8; signer.public_modulus_len()];
    signer
        .sign(
            &RSA_PKCS1_SHA512,
            &SystemRandom::new(),
            &tbs,
            &mut signature,
        )
        .map_err(|_| failed("RSA signing failed"))?;
    let mut blob = Vec::new();
    put_string(&mut blob, RSA_SHA2_512.as_bytes())?;
    put_string(&mut blob, &signature)?;
    put_string(&mut tbs, &blob)?;
    Certificate::from_bytes(&tbs).map_err(|e| failed(&e.to_string()))
}

/// The encoding of a certificate's last two fields: `string signature key`,
/// `string signature` (itself `string algorithm`, `string blob`).
fn certificate_trailer(
    key_blob: &[u8],
    algorithm: &str,
    signature: &[u8],
) -> Result<Vec<u8>, MaterialError> {
    let mut sig = Vec::new();
    put_string(&mut sig, algorithm.as_bytes())?;
    put_string(&mut sig, signature)?;
    let mut out = Vec::new();
    put_string(&mut out, key_blob)?;
    put_string(&mut out, &sig)?;
    Ok(out)
}

/// Appends an SSH `string`: a big-endian u32 length, then the bytes.
fn put_string(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), MaterialError> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| MaterialError::Crypto("an SSH field is too long".to_owned()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduce_matches_small_numbers() {
        for (a, m) in [
            (0u128, 7u128),
            (6, 7),
            (7, 7),
            (1 << 100, 12345),
            (u128::MAX, 1 << 64),
        ] {
            let m_bytes = m.to_be_bytes();
            let got = reduce(&a.to_be_bytes(), &m_bytes);
            let mut expected = [0u8; 16];
            expected.copy_from_slice(&got);
            assert_eq!(u128::from_be_bytes(expected), a % m, "{a} mod {m}");
        }
    }

    #[test]
    fn crt_exponents_match_aws_lc() {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("generate");
        let pkcs8: Pkcs8V1Der<'static> = pair.as_der().expect("der");
        let ints = pkcs1_integers(pkcs8_inner_key(pkcs8.as_ref()).expect("pkcs1")).expect("ints");
        let [_, _, _, d, p, q, dp, dq, _] = &ints;
        let strip = |v: &[u8]| {
            v.iter()
                .skip_while(|b| **b == 0)
                .copied()
                .collect::<Vec<u8>>()
        };
        assert_eq!(strip(&crt_exponent(d, p)), strip(dp));
        assert_eq!(strip(&crt_exponent(d, q)), strip(dq));
    }

    #[test]
    fn generated_keys_convert_back_to_aws_lc() {
        let keypair = generate(2048).expect("generate");
        let pair = aws_keypair(&keypair).expect("consistent");
        assert_eq!(pair.public_modulus_len(), 256);
        let mut broken = keypair.clone();
        broken.private.q = broken.private.p.clone();
        assert!(aws_keypair(&broken).is_err());
    }
}
