//! The search for a safe prime p = 2q + 1 (q prime) with p ≡ 23 (mod 24), as `openssl
//! dhparam` makes for generator 2.
//!
//! Almost all of the time goes into the tests of candidates, so the search tests as few as
//! it can, as cheaply as it can:
//! - a random start, then the run of numbers ≡ 23 (mod 24) after it, [`RUN`] at a time;
//! - an interval sieve over each run strikes out every candidate where p or q has a prime
//!   factor below [`SIEVE_LIMIT`] (p ≡ 0 or 1 modulo that prime), leaving about one in 75;
//!   the more small primes, the fewer tests (their number falls as the square of the
//!   logarithm of the limit), and striking them out in bulk costs next to nothing;
//! - each survivor gets Euler's test with base 2 first: 2^q ≡ 1 (mod p), true for every
//!   prime p ≡ 7 (mod 8), computed by squaring and doubling (cheaper than a general
//!   exponentiation: a doubling is an addition) and rejecting nearly every composite;
//! - the rare p that passes has q tested with Miller-Rabin base 2, and the rarer pair that
//!   passes both gets the full test of `crypto-primes` (BPSW on both p and q).
//!
//! The sieve and the Euler test are written here because `crypto-primes` sieves with about
//! 2,000 small primes only and tests p with a general Miller-Rabin exponentiation; the
//! arithmetic is `crypto-bigint`'s. Candidates are public once chosen (the prime is
//! published), so the variable-time parts leak nothing worth keeping.

use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Encoding, Odd, RandomBits, Uint, Word};
use crypto_primes::hazmat::MillerRabin;
use crypto_primes::{Flavor, is_prime};

use super::super::MaterialError;
use super::super::progress::Progress;

/// Primes below this bound (the 82,023 from 5 on) are struck out by the sieve.
pub const SIEVE_LIMIT: u32 = 1 << 20;
/// Candidates per run of the sieve (numbers ≡ 23 mod 24); a 2048-bit run holds about one
/// safe prime on average.
pub(super) const RUN: usize = 1 << 18;
/// The step between candidates: p ≡ 23 (mod 24).
const STEP: u32 = 24;

/// A random `bits`-bit safe prime p ≡ 23 (mod 24), as big-endian bytes without leading
/// zeros. Each candidate tested is a step of `progress`; cancellation is checked before
/// each, and before each run of the sieve.
pub(super) fn safe_prime<const LIMBS: usize>(
    bits: u32,
    progress: &Progress,
    rng: &mut super::OsRng,
) -> Result<Vec<u8>, MaterialError>
where
    Uint<LIMBS>: Encoding,
{
    let cancelled =
        || MaterialError::Crypto(format!("generating a {bits}-bit DH prime was cancelled"));
    let primes = small_primes(SIEVE_LIMIT);
    loop {
        if progress.is_cancelled() {
            return Err(cancelled());
        }
        let Some(start) = run_start::<LIMBS>(bits, rng)? else {
            continue;
        };
        let residues: Vec<u32> = primes.iter().map(|&m| residue(&start, m)).collect();
        for k in survivors(&primes, &residues, RUN) {
            if progress.is_cancelled() {
                return Err(cancelled());
            }
            progress.step();
            let candidate = start.wrapping_add(&Uint::from_u64(u64::from(STEP) * k as u64));
            if passes_euler_base_two(&candidate)
                && half_passes_miller_rabin_base_two(&candidate)
                && is_prime(Flavor::Safe, &candidate)
            {
                return Ok(big_endian(&candidate));
            }
        }
    }
}

/// The first candidate of a run: a random `bits`-bit number (top bit set) moved up to the
/// next number ≡ 23 (mod 24); `None` in the (astronomically rare) case that the run would
/// reach past `bits` bits, so the caller draws again.
fn run_start<const LIMBS: usize>(
    bits: u32,
    rng: &mut super::OsRng,
) -> Result<Option<Uint<LIMBS>>, MaterialError> {
    let failed = || MaterialError::Crypto(format!("generating a {bits}-bit DH prime failed"));
    if bits < 64 || bits > Uint::<LIMBS>::BITS {
        return Err(failed());
    }
    let random = Uint::<LIMBS>::try_random_bits(rng, bits).map_err(|_| failed())?;
    let top = Uint::<LIMBS>::ONE.shl_vartime(bits - 1);
    let random = random.bitor(&top);
    let start = random.wrapping_add(&Uint::from_u32(23 + STEP - residue(&random, STEP)));
    let last = start.wrapping_add(&Uint::from_u64(u64::from(STEP) * RUN as u64));
    Ok((last.bits_vartime() == bits).then_some(start))
}

/// The primes 5 ≤ ℓ < `limit` (2 and 3 never divide a number ≡ 23 mod 24, nor its q): with
/// [`SIEVE_LIMIT`], the primes the search sieves with.
pub fn small_primes(limit: u32) -> Vec<u32> {
    let limit = limit as usize;
    let mut composite = vec![false; limit];
    let mut primes = Vec::new();
    for n in 2..limit {
        if composite[n] {
            continue;
        }
        if n >= 5 {
            primes.push(n as u32);
        }
        let Some(square) = n.checked_mul(n) else {
            continue;
        };
        for multiple in (square..limit).step_by(n) {
            composite[multiple] = true;
        }
    }
    primes
}

/// `n` modulo `m` (m > 0).
pub(super) fn residue<const LIMBS: usize>(n: &Uint<LIMBS>, m: u32) -> u32 {
    let m = u128::from(m);
    let r = n
        .as_words()
        .iter()
        .rev()
        .fold(0u128, |r, &word| ((r << Word::BITS) | u128::from(word)) % m);
    r as u32
}

/// The indexes k < `len` of the candidates start + 24k that no prime of `primes` strikes
/// out, where `residues[i]` is start modulo `primes[i]`: a candidate p is struck out when
/// p ≡ 0 (ℓ divides p) or p ≡ 1 (ℓ divides q = (p − 1)/2) modulo ℓ.
pub(super) fn survivors(primes: &[u32], residues: &[u32], len: usize) -> Vec<usize> {
    let mut struck = vec![false; len];
    for (&l, &r) in primes.iter().zip(residues) {
        let l64 = u64::from(l);
        // k with start + 24k ≡ t (mod ℓ): k ≡ (t − r) · 24⁻¹ (mod ℓ).
        let step_inverse = inverse(u64::from(STEP) % l64, l64);
        for t in [0, 1] {
            let difference = (t + l64 - u64::from(r) % l64) % l64;
            let first = (difference * step_inverse % l64) as usize;
            for k in (first..len).step_by(l as usize) {
                struck[k] = true;
            }
        }
    }
    struck
        .iter()
        .enumerate()
        .filter_map(|(k, &out)| (!out).then_some(k))
        .collect()
}

/// The inverse of `a` modulo the prime `m` (a ≢ 0): a^(m−2) mod m.
fn inverse(a: u64, m: u64) -> u64 {
    let (mut base, mut exponent, mut result) = (a % m, m - 2, 1u64);
    while exponent > 0 {
        if exponent & 1 == 1 {
            result = result * base % m;
        }
        base = base * base % m;
        exponent >>= 1;
    }
    result
}

/// Euler's criterion for base 2 on p ≡ 7 (mod 8): 2 is a square modulo a prime p ≡ ±1
/// (mod 8), so a prime p has 2^((p−1)/2) ≡ 1 (mod p). Composites almost never pass.
pub(super) fn passes_euler_base_two<const LIMBS: usize>(p: &Uint<LIMBS>) -> bool {
    let Some(odd) = Odd::new(*p).into_option() else {
        return false;
    };
    let params = FixedMontyParams::new_vartime(odd);
    let one = FixedMontyForm::one(&params);
    let q = p.shr_vartime(1);
    let mut power = one;
    for bit in (0..q.bits_vartime()).rev() {
        power = power.square();
        if q.bit_vartime(bit) {
            power = power.double();
        }
    }
    power == one
}

/// Whether q = (p − 1)/2 passes the Miller-Rabin test with base 2: before the full test,
/// whose Lucas test on p would otherwise run for every p that is prime but whose q is not.
fn half_passes_miller_rabin_base_two<const LIMBS: usize>(p: &Uint<LIMBS>) -> bool {
    Odd::new(p.shr_vartime(1))
        .into_option()
        .is_some_and(|q| MillerRabin::new(q).test_base_two().is_probably_prime())
}

/// `n` as big-endian bytes without leading zeros.
fn big_endian<const LIMBS: usize>(n: &Uint<LIMBS>) -> Vec<u8>
where
    Uint<LIMBS>: Encoding,
{
    let bytes = n.to_be_bytes();
    let bytes = bytes.as_ref();
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default().to_vec()
}

#[cfg(test)]
mod tests;
