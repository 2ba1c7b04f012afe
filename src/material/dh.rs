//! Diffie-Hellman parameters (PKCS#3 "DH PARAMETERS" PEM, as `openssl dhparam` reads and
//! writes them): the fixed RFC 7919 groups, freshly generated safe primes, and parsing.
//!
//! Generation (`search`) sieves runs of candidates with the primes below 2^20, tests the
//! survivors with Euler's criterion for base 2 and the rest with `crypto-primes` (BPSW on
//! both p and q = (p-1)/2), over fixed-size `crypto-bigint` integers. The DER of
//! `DHParameter` is two INTEGERs in a SEQUENCE and is written by hand below (a few lines);
//! parsing uses `asn1-rs`.

use std::convert::Infallible;

use crypto_bigint::{Encoding, U2048, U3072, U4096, Uint};
use x509_parser::asn1_rs::{FromDer, Integer, Sequence};

use crate::api::keyring_secret::DhGroup;

use super::MaterialError;
use super::progress::Progress;

mod ffdhe;
mod search;

pub use search::{SIEVE_LIMIT, small_primes};

/// PEM label of PKCS#3 parameters.
const LABEL: &str = "DH PARAMETERS";
/// The generator of every group made here.
const GENERATOR: u8 = 2;
/// Prime sizes [`generate`] accepts.
pub const GENERATE_BITS: [u32; 3] = [2048, 3072, 4096];

/// What [`parse`] found in a PEM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DhInfo {
    /// Bit length of the prime p.
    pub bits: u32,
    /// The RFC 7919 group this is (prime and generator 2), if any.
    pub ffdhe: Option<DhGroup>,
}

/// The RFC 7919 groups with their primes (hex).
const FFDHE_GROUPS: [(DhGroup, &str); 5] = [
    (DhGroup::ffdhe2048, ffdhe::FFDHE2048),
    (DhGroup::ffdhe3072, ffdhe::FFDHE3072),
    (DhGroup::ffdhe4096, ffdhe::FFDHE4096),
    (DhGroup::ffdhe6144, ffdhe::FFDHE6144),
    (DhGroup::ffdhe8192, ffdhe::FFDHE8192),
];

/// The prime of an RFC 7919 group as big-endian bytes; `None` for `Generate`.
fn ffdhe_prime(group: DhGroup) -> Option<Vec<u8>> {
    let (_, hex) = FFDHE_GROUPS.iter().find(|(g, _)| *g == group)?;
    decode_hex(hex)
}

/// Decodes the embedded hex constants.
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    hex.as_bytes()
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

/// The PKCS#3 PEM of an RFC 7919 group (generator 2). `Generate` is not a fixed group and
/// is reported as Unsupported.
pub fn ffdhe(group: DhGroup) -> Result<String, MaterialError> {
    let prime = ffdhe_prime(group).ok_or_else(|| {
        MaterialError::Unsupported(format!("{group:?} is not an RFC 7919 ffdhe group"))
    })?;
    Ok(to_pem(&prime))
}

/// PKCS#3 PEM of `DHParameter { prime, base: 2 }`.
fn to_pem(prime_be: &[u8]) -> String {
    let mut body = der_integer(prime_be);
    body.extend(der_integer(&[GENERATOR]));
    let mut der = vec![0x30];
    der.extend(der_length(body.len()));
    der.extend(body);
    pem::encode_config(
        &pem::Pem::new(LABEL, der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// DER INTEGER of a non-negative big-endian number.
fn der_integer(be: &[u8]) -> Vec<u8> {
    let first = be.iter().position(|&b| b != 0).unwrap_or(be.len());
    let digits = be.get(first..).unwrap_or_default();
    let mut content = Vec::with_capacity(digits.len() + 1);
    if digits.first().is_none_or(|&b| b & 0x80 != 0) {
        content.push(0); // zero itself, or a sign byte so the number stays positive
    }
    content.extend_from_slice(digits);
    let mut out = vec![0x02];
    out.extend(der_length(content.len()));
    out.extend(content);
    out
}

/// DER definite length.
fn der_length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8]; // short form
    }
    let bytes = len.to_be_bytes();
    let first = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len() - 1);
    let significant = bytes.get(first..).unwrap_or_default();
    let mut out = Vec::with_capacity(significant.len() + 1);
    out.push(0x80 | (significant.len() as u8));
    out.extend_from_slice(significant);
    out
}

/// Parses PKCS#3 "DH PARAMETERS" PEM: the prime's bit length and whether it is an RFC 7919
/// group.
pub fn parse(pem: &[u8]) -> Result<DhInfo, MaterialError> {
    let invalid = |what: &str| MaterialError::Invalid(format!("the DH parameters {what}"));
    let block = pem::parse(pem).map_err(|_| invalid("are not a PEM block"))?;
    if block.tag() != LABEL {
        return Err(invalid("are not a \"DH PARAMETERS\" PEM block"));
    }
    let (rest, seq) =
        Sequence::from_der(block.contents()).map_err(|_| invalid("are not a DER SEQUENCE"))?;
    if !rest.is_empty() {
        return Err(invalid("have trailing data"));
    }
    let content = seq.content.as_ref();
    let (content, prime) = Integer::from_der(content).map_err(|_| invalid("have no prime"))?;
    let (content, base) = Integer::from_der(content).map_err(|_| invalid("have no generator"))?;
    // An optional privateValueLength INTEGER may follow; nothing else.
    if !content.is_empty() && Integer::from_der(content).map(|(r, _)| r.is_empty()) != Ok(true) {
        return Err(invalid("have unexpected fields"));
    }
    let prime = magnitude(prime.any().data).ok_or_else(|| invalid("have a negative prime"))?;
    let base = magnitude(base.any().data).ok_or_else(|| invalid("have a negative generator"))?;
    let bits = bit_length(prime);
    if bits < 2 || prime.last().is_none_or(|b| b & 1 == 0) {
        return Err(invalid("have an even or too small prime"));
    }
    let ffdhe = (base == [GENERATOR])
        .then(|| {
            FFDHE_GROUPS
                .iter()
                .find(|(g, _)| ffdhe_prime(*g).as_deref() == Some(prime))
                .map(|(g, _)| *g)
        })
        .flatten();
    Ok(DhInfo { bits, ffdhe })
}

/// The big-endian magnitude of a DER INTEGER's content without leading zeros, or `None`
/// when it is negative.
fn magnitude(content: &[u8]) -> Option<&[u8]> {
    if content.first().is_some_and(|b| b & 0x80 != 0) {
        return None;
    }
    let first = content
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(content.len());
    content.get(first..)
}

/// Bit length of a big-endian number without leading zero bytes.
fn bit_length(be: &[u8]) -> u32 {
    match be.first() {
        None => 0,
        Some(&top) => {
            let bytes = u32::try_from(be.len()).unwrap_or(u32::MAX / 8);
            (bytes - 1) * 8 + (8 - top.leading_zeros())
        }
    }
}

/// Generates a fresh safe prime p = 2q + 1 (q prime) of exactly `bits` bits (2048, 3072 or
/// 4096) with p ≡ 23 (mod 24), so that 2 generates the subgroup of prime order q (as in
/// RFC 7919 and `openssl dhparam`), and returns it with generator 2 as PKCS#3 PEM.
///
/// Slow (seconds to minutes): call it on a blocking thread. Each candidate tested (see the
/// `search` module) is a step of `progress`; cancellation is checked before each, so a cancelled
/// generation returns an error promptly.
pub fn generate(bits: u32, progress: &Progress) -> Result<String, MaterialError> {
    let prime = match bits {
        2048 => safe_prime::<{ U2048::LIMBS }>(bits, progress)?,
        3072 => safe_prime::<{ U3072::LIMBS }>(bits, progress)?,
        4096 => safe_prime::<{ U4096::LIMBS }>(bits, progress)?,
        other => {
            return Err(MaterialError::Unsupported(format!(
                "a DH prime of {other} bits is not supported; use 2048, 3072 or 4096"
            )));
        }
    };
    Ok(to_pem(&prime))
}

/// A safe prime of exactly `bits` bits with p ≡ 23 (mod 24), big-endian, computed in
/// integers of `LIMBS` limbs (at least `bits` wide), from the system's random generator.
fn safe_prime<const LIMBS: usize>(bits: u32, progress: &Progress) -> Result<Vec<u8>, MaterialError>
where
    Uint<LIMBS>: Encoding,
{
    let mut rng = OsRng::default();
    let prime = search::safe_prime::<LIMBS>(bits, progress, &mut rng)?;
    if rng.failed {
        return Err(MaterialError::Crypto(
            "the system random generator failed".to_owned(),
        ));
    }
    if bit_length(&prime) != bits {
        return Err(MaterialError::Crypto(format!(
            "generating a {bits}-bit DH prime failed"
        )));
    }
    Ok(prime)
}

/// The OS CSPRNG (aws-lc-rs) as a `rand_core` generator for crypto-primes. `rand_core`
/// wants an infallible generator: a failure is recorded in `failed` (and the caller
/// discards the result) instead of panicking.
#[derive(Default)]
struct OsRng {
    /// Set when the system generator failed at least once.
    failed: bool,
}

impl rand_core::TryRng for OsRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        if aws_lc_rs::rand::fill(dst).is_err() {
            self.failed = true;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for OsRng {}

#[cfg(test)]
mod tests;
