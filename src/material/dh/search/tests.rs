use crypto_bigint::{NonZero, U64, U128, U512, Uint};

use super::*;

/// Whether `n` is prime, by trial division.
fn is_prime_naive(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

/// `base^exponent mod m` with 128-bit intermediates.
fn pow_mod(base: u64, mut exponent: u64, m: u64) -> u64 {
    let (mut base, mut result) = (u128::from(base) % u128::from(m), 1u128);
    while exponent > 0 {
        if exponent & 1 == 1 {
            result = result * base % u128::from(m);
        }
        base = base * base % u128::from(m);
        exponent >>= 1;
    }
    result as u64
}

#[test]
fn small_primes_are_the_primes_from_5() {
    let expected: Vec<u32> = (5..200).filter(|&n| is_prime_naive(u64::from(n))).collect();
    assert_eq!(small_primes(200), expected);
    let all = small_primes(SIEVE_LIMIT);
    assert_eq!(all.len(), 82_025 - 2, "π(2^20) less 2 and 3");
    assert_eq!(all.last(), Some(&1_048_573));
}

#[test]
fn residues_match_the_division_of_crypto_bigint() {
    let n = U512::from_be_hex(concat!(
        "c90fdaa22168c234c4c6628b80dc1cd129024e088a67cc74020bbea63b139b22",
        "514a08798e3404ddef9519b3cd3a431b302b0a6df25f14374fe1356d6d51c245"
    ));
    for m in [2u32, 3, 24, 65_521, 1_048_573, u32::MAX] {
        let m_nz = NonZero::new(U512::from_u32(m)).expect("non-zero");
        let expected = n.rem_vartime(&m_nz);
        assert_eq!(U512::from_u32(residue(&n, m)), expected, "mod {m}");
    }
    assert_eq!(residue(&U64::from_u64(1_000_003), 1_000), 3);
}

#[test]
fn the_sieve_strikes_out_exactly_the_candidates_with_a_small_factor_in_p_or_q() {
    // start ≡ 23 (mod 24), far above the primes so no candidate is itself a small prime.
    let start: u64 = 1_000_000_000_007;
    assert_eq!(start % 24, 23);
    let primes = small_primes(2_000);
    let residues: Vec<u32> = primes
        .iter()
        .map(|&l| residue(&U64::from_u64(start), l))
        .collect();
    let len = 20_000;
    let kept = survivors(&primes, &residues, len);
    let expected: Vec<usize> = (0..len)
        .filter(|&k| {
            let p = start + 24 * k as u64;
            primes.iter().all(|&l| {
                !p.is_multiple_of(u64::from(l)) && !((p - 1) / 2).is_multiple_of(u64::from(l))
            })
        })
        .collect();
    assert_eq!(kept, expected);
    assert!(
        kept.len() > 100 && kept.len() < len / 10,
        "{} of {len} kept",
        kept.len()
    );
}

#[test]
fn euler_base_two_matches_its_definition() {
    for n in (7u64..50_000).step_by(8) {
        let expected = pow_mod(2, (n - 1) / 2, n) == 1;
        assert_eq!(
            passes_euler_base_two(&U64::from_u64(n)),
            expected,
            "n = {n}"
        );
        if is_prime_naive(n) {
            assert!(expected, "every prime ≡ 7 (mod 8) passes: {n}");
        }
    }
}

#[test]
fn euler_base_two_rejects_large_composites_and_keeps_large_primes() {
    // 2^127 - 1 is prime and ≡ 7 (mod 8); times another prime ≡ 1 (mod 8) it is composite
    // and still ≡ 7 (mod 8).
    let mersenne = U128::MAX.shr_vartime(1);
    assert!(passes_euler_base_two(&mersenne));
    let composite: Uint<4> = mersenne
        .resize::<4>()
        .wrapping_mul(&Uint::<4>::from_u64(17));
    assert_eq!(residue(&composite, 8), 7);
    assert!(!passes_euler_base_two(&composite));
}

#[test]
fn runs_start_at_23_mod_24_with_the_top_bit_set_and_stay_within_the_bits() {
    let mut rng = crate::material::dh::OsRng::default();
    for _ in 0..50 {
        let start = run_start::<{ U512::LIMBS }>(512, &mut rng)
            .expect("random bits")
            .expect("a run inside 512 bits");
        assert_eq!(residue(&start, 24), 23);
        assert_eq!(start.bits_vartime(), 512);
    }
    assert!(
        run_start::<{ U512::LIMBS }>(513, &mut rng).is_err(),
        "too wide"
    );
    assert!(!rng.failed);
}

#[test]
fn a_cancelled_search_stops_before_testing() {
    let progress = Progress::default();
    progress.cancel();
    let mut rng = crate::material::dh::OsRng::default();
    let result = safe_prime::<{ U512::LIMBS }>(512, &progress, &mut rng);
    assert!(matches!(result, Err(MaterialError::Crypto(m)) if m.contains("cancelled")));
    assert_eq!(progress.steps(), 0);
}

#[test]
fn the_half_of_a_safe_prime_passes_miller_rabin_and_a_composite_half_does_not() {
    // 47 = 2·23 + 1; 2·25 + 1 = 51 has the composite half 25 (and is 3·17).
    assert!(half_passes_miller_rabin_base_two(&U64::from_u64(47)));
    assert!(!half_passes_miller_rabin_base_two(&U64::from_u64(51)));
    // 2^127 - 1 is prime; 2^128 - 1 = 2(2^127 - 1) + 1 has it as its half.
    assert!(half_passes_miller_rabin_base_two(&U128::MAX));
}
