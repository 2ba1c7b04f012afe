use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crypto_bigint::{U512, U576};
use crypto_primes::{Flavor, is_prime};

use super::*;

const ALL_FFDHE: [(DhGroup, u32); 5] = [
    (DhGroup::ffdhe2048, 2048),
    (DhGroup::ffdhe3072, 3072),
    (DhGroup::ffdhe4096, 4096),
    (DhGroup::ffdhe6144, 6144),
    (DhGroup::ffdhe8192, 8192),
];

/// Runs `openssl dhparam -in <pem> <args>` and returns (success, stdout + stderr).
fn openssl_dhparam(pem: &str, args: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dh.pem");
    std::fs::write(&file, pem).unwrap();
    let out = Command::new("openssl")
        .arg("dhparam")
        .arg("-in")
        .arg(&file)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Asserts that openssl accepts `pem` as safe-prime DH parameters of `bits` bits.
fn assert_openssl_accepts(pem: &str, bits: u32) {
    let (ok, text) = openssl_dhparam(pem, &["-check", "-noout"]);
    assert!(
        ok && text.contains("DH parameters appear to be ok"),
        "{text}"
    );
    let (ok, text) = openssl_dhparam(pem, &["-text", "-noout"]);
    assert!(ok && text.contains(&format!("({bits} bit)")), "{text}");
    // Named groups show as "GROUP: ffdheN", the others with their generator.
    let named = format!("GROUP: ffdhe{bits}");
    assert!(
        text.contains("G:    2 (0x2)") || text.contains(&named),
        "{text}"
    );
}

#[test]
fn ffdhe_groups_pass_openssl_check() {
    for (group, bits) in ALL_FFDHE {
        let pem = ffdhe(group).unwrap();
        assert!(pem.starts_with("-----BEGIN DH PARAMETERS-----\n"), "{pem}");
        assert_openssl_accepts(&pem, bits);
        let (_, text) = openssl_dhparam(&pem, &["-text", "-noout"]);
        assert!(text.contains(&format!("GROUP: ffdhe{bits}")), "{text}");
        assert_eq!(
            parse(pem.as_bytes()).unwrap(),
            DhInfo {
                bits,
                ffdhe: Some(group)
            }
        );
    }
}

#[test]
fn ffdhe_groups_match_openssl_named_groups() {
    // OpenSSL 3 carries the RFC 7919 groups; its PKCS#3 output must be byte-identical.
    for (group, bits) in ALL_FFDHE {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("named.pem");
        let out = Command::new("openssl")
            .args(["genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt"])
            .arg(format!("group:ffdhe{bits}"))
            .arg("-out")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs = std::fs::read_to_string(&file).unwrap();
        assert_eq!(ffdhe(group).unwrap(), theirs, "{group:?}");
    }
}

#[test]
fn ffdhe_constants_have_the_rfc_7919_shape() {
    // p = 2^b - 2^(b-64) + {[2^(b-130) e] + X} * 2^64 - 1: the top and bottom 64 bits are
    // all ones, and all groups share the leading digits of e.
    for (group, bits) in ALL_FFDHE {
        let p = ffdhe_prime(group).unwrap();
        assert_eq!(bit_length(&p), bits, "{group:?}");
        assert_eq!(p.len() * 8, bits as usize);
        assert!(p[..8].iter().chain(&p[p.len() - 8..]).all(|&b| b == 0xff));
        assert_eq!(&p[8..12], &[0xad, 0xf8, 0x54, 0x58], "{group:?}"); // e = 2.b7e15162...
    }
    // Safe-prime check with crypto-primes on the two sizes it has fixed types for.
    let p2048 = U2048::from_be_slice(&ffdhe_prime(DhGroup::ffdhe2048).unwrap());
    assert!(is_prime(Flavor::Safe, &p2048));
    assert_eq!(search::residue(&p2048, 24), 23);
    assert!(search::passes_euler_base_two(&p2048));
    let p4096 = U4096::from_be_slice(&ffdhe_prime(DhGroup::ffdhe4096).unwrap());
    assert!(is_prime(Flavor::Safe, &p4096));
}

#[test]
fn generate_is_not_an_ffdhe_group() {
    assert!(matches!(
        ffdhe(DhGroup::Generate),
        Err(MaterialError::Unsupported(_))
    ));
}

#[test]
fn generate_rejects_other_sizes() {
    let cancel = Progress::default();
    for bits in [0, 1024, 2047, 8192] {
        assert!(
            matches!(generate(bits, &cancel), Err(MaterialError::Unsupported(_))),
            "{bits}"
        );
    }
}

#[test]
fn small_safe_primes_pass_openssl_check() {
    let cancel = Progress::default();
    // openssl 3 refuses moduli below 512 bits.
    for _ in 0..2 {
        let p = safe_prime::<{ U512::LIMBS }>(512, &cancel).unwrap();
        assert_eq!(bit_length(&p), 512);
        let pem = to_pem(&p);
        assert_openssl_accepts(&pem, 512);
        assert_eq!(
            parse(pem.as_bytes()).unwrap(),
            DhInfo {
                bits: 512,
                ffdhe: None
            }
        );
        assert_eq!(p.last().unwrap() % 8, 7);
        let (mut rem, mut q) = (0u32, p.clone());
        for b in q.iter_mut() {
            let cur = rem * 256 + u32::from(*b);
            *b = (cur / 24) as u8;
            rem = cur % 24;
        }
        assert_eq!(rem, 23);
    }
    // Bit lengths that are not a multiple of the limb size still come out exact.
    assert!(cancel.steps() > 0, "every candidate tested is a step");
    let p = safe_prime::<{ U576::LIMBS }>(520, &cancel).unwrap();
    assert_eq!(bit_length(&p), 520);
    assert_openssl_accepts(&to_pem(&p), 520);
}

#[test]
#[ignore = "a 2048-bit safe prime takes minutes in a debug build; run with --release --ignored"]
fn generated_2048_passes_openssl_check() {
    let pem = generate(2048, &Progress::default()).unwrap();
    assert_openssl_accepts(&pem, 2048);
    assert_eq!(
        parse(pem.as_bytes()).unwrap(),
        DhInfo {
            bits: 2048,
            ffdhe: None
        }
    );
}

#[test]
fn cancellation_stops_generation() {
    let cancel = Arc::new(Progress::default());
    let setter = {
        let cancel = Arc::clone(&cancel);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            cancel.cancel();
            Instant::now()
        })
    };
    let res = generate(4096, &cancel);
    let stopped = Instant::now();
    let set_at = setter.join().unwrap();
    let err = res.unwrap_err();
    assert!(err.to_string().contains("cancelled"), "{err}");
    eprintln!(
        "generation stopped {:?} after cancel",
        stopped.saturating_duration_since(set_at)
    );
    // Already cancelled: returns at the first candidate.
    let cancelled = Progress::default();
    cancelled.cancel();
    let err = generate(2048, &cancelled).unwrap_err();
    assert!(err.to_string().contains("cancelled"), "{err}");
}

#[test]
fn parse_rejects_garbage() {
    let cases: [&[u8]; 4] = [
        b"",
        b"not pem",
        b"-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n",
        b"-----BEGIN DH PARAMETERS-----\nMAA=\n-----END DH PARAMETERS-----\n",
    ];
    for case in cases {
        assert!(matches!(parse(case), Err(MaterialError::Invalid(_))));
    }
    // ffdhe2048's prime with generator 5 is not the RFC group.
    let p = ffdhe_prime(DhGroup::ffdhe2048).unwrap();
    let mut body = der_integer(&p);
    body.extend(der_integer(&[5]));
    let mut der = vec![0x30];
    der.extend(der_length(body.len()));
    der.extend(body);
    let pem = pem::encode(&pem::Pem::new(LABEL, der));
    assert_eq!(
        parse(pem.as_bytes()).unwrap(),
        DhInfo {
            bits: 2048,
            ffdhe: None
        }
    );
}

#[test]
fn parse_reads_openssl_output() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dh.pem");
    let out = Command::new("openssl")
        .args(["dhparam", "-out"])
        .arg(&file)
        .arg("512")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info = parse(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        info,
        DhInfo {
            bits: 512,
            ffdhe: None
        }
    );
}

#[test]
fn der_helpers() {
    assert_eq!(der_integer(&[2]), [2, 1, 2]);
    assert_eq!(der_integer(&[0x80]), [2, 2, 0, 0x80]);
    assert_eq!(der_integer(&[0, 0, 1]), [2, 1, 1]);
    assert_eq!(der_integer(&[]), [2, 1, 0]);
    assert_eq!(der_length(0x7f), [0x7f]);
    assert_eq!(der_length(0x80), [0x81, 0x80]);
    assert_eq!(der_length(0x101), [0x82, 1, 1]);
}
