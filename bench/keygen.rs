//! Key and certificate generation speed: keysmith next to OpenSSL on the same machine.
//!
//! Run through `bench/keygen.sh`, which builds `bench/openssl-inprocess.c` and prints the
//! machine first. By hand: `cargo bench --bench keygen -- --openssl-inprocess PATH
//! [--runs N] [--cases a,b,...] [--keysmith PATH] [--dh-runs N] [--dh-bits B]`.
//!
//! Every case is measured four ways, interleaved run by run (the order rotates) so that
//! drift of the machine hits all alike, as two like-for-like pairs:
//! - keysmith in-process: the library calls a controller makes (`PrivateKey::generate`,
//!   then `x509::issue` for the certificate cases) plus the PEM encoding, timed inside this
//!   process: what the operator pays per key.
//! - openssl in-process: the same with OpenSSL's libcrypto (`EVP_PKEY_Q_keygen`, then an
//!   `X509` signed with SHA-256, plus PEM), timed inside `openssl-inprocess key <case>`
//!   after one warm-up generation, as keysmith's in-process times are after the first.
//! - keysmith process: this binary started as `keygen one <case>`, doing one generation and
//!   writing the PEM to standard output, as `openssl genpkey` does: fork/exec, dynamic
//!   loading and start-up included.
//! - openssl process: `openssl genpkey` / `openssl req -x509 -newkey ... -nodes`.
//!
//! DH parameters (`--dh-runs`): `keygen dh <bits>` (keysmith's generator) against
//! `openssl-inprocess dh <bits>` (`BN_generate_prime_ex` as `openssl dhparam` calls it),
//! with the time and the number of candidates tested of each run.
//!
//! Every output of every run is parsed back (key type and size, and for certificates that
//! the certificate holds the key's public key); every process output and the first
//! in-process output of each case are also read by `openssl pkey -noout` /
//! `openssl x509 -noout`, and DH output by `openssl dhparam -check`. A failed or wrong
//! generation stops the benchmark. Key material is never printed; `keygen one` and
//! `openssl-inprocess key` refuse to write it to a terminal.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime};

use keysmith::api::certificate_key_pair::CertificateKeyPairSpec;
use keysmith::material::dh::{SIEVE_LIMIT, small_primes};
use keysmith::material::pkey::{KeyKind, PrivateKey};
use keysmith::material::x509;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The ratio keysmith/openssl (like for like) the issue sets as the target.
const TARGET_RATIO: f64 = 1.2;

/// One thing to generate.
#[derive(Clone, Copy, Debug)]
struct Case {
    /// Name on the command line (`keygen one <name>`, `--cases`).
    name: &'static str,
    /// Name in the table.
    label: &'static str,
    /// The key.
    kind: KeyKind,
    /// True: key plus self-signed certificate, as a CertificateKeyPair makes them.
    cert: bool,
}

const CASES: [Case; 8] = [
    Case {
        name: "rsa2048",
        label: "RSA 2048 key",
        kind: KeyKind::Rsa(2048),
        cert: false,
    },
    Case {
        name: "rsa3072",
        label: "RSA 3072 key",
        kind: KeyKind::Rsa(3072),
        cert: false,
    },
    Case {
        name: "rsa4096",
        label: "RSA 4096 key",
        kind: KeyKind::Rsa(4096),
        cert: false,
    },
    Case {
        name: "p256",
        label: "ECDSA P-256 key",
        kind: KeyKind::EcdsaP256,
        cert: false,
    },
    Case {
        name: "p384",
        label: "ECDSA P-384 key",
        kind: KeyKind::EcdsaP384,
        cert: false,
    },
    Case {
        name: "ed25519",
        label: "Ed25519 key",
        kind: KeyKind::Ed25519,
        cert: false,
    },
    Case {
        name: "cert-p256",
        label: "P-256 key + cert",
        kind: KeyKind::EcdsaP256,
        cert: true,
    },
    Case {
        name: "cert-rsa2048",
        label: "RSA 2048 key + cert",
        kind: KeyKind::Rsa(2048),
        cert: true,
    },
];

/// Subject and SAN of the benchmark certificates.
const HOST: &str = "bench.keysmith.test";

fn case_named(name: &str) -> Option<Case> {
    CASES.iter().copied().find(|c| c.name == name)
}

/// The CertificateKeyPair spec of a certificate case: CN and one DNS SAN, everything else
/// defaulted (90 days, key usages DigitalSignature + KeyEncipherment, EKU serverAuth).
fn spec(kind: KeyKind) -> CertificateKeyPairSpec {
    let json = serde_json::json!({
        "commonName": HOST,
        "dnsNames": [HOST],
        "privateKey": {"algorithm": kind.algorithm(), "size": match kind {
            KeyKind::Ed25519 => None,
            other => Some(other.size()),
        }},
    });
    serde_json::from_value(json).expect("the benchmark spec is valid")
}

/// One generation as keysmith does it: the PEM of the key (PKCS#8, as openssl writes it),
/// then of the certificate for certificate cases.
fn generate(case: Case, spec: &CertificateKeyPairSpec) -> String {
    let key = PrivateKey::generate(case.kind).expect("key generation");
    if !case.cert {
        let pem = key.to_pem(spec.private_key.encoding).expect("PEM encoding");
        return pem.expose().to_owned();
    }
    let material = x509::issue(spec, key, None, SystemTime::now()).expect("issuing");
    let key_pem = material
        .key
        .to_pem(spec.private_key.encoding)
        .expect("PEM encoding");
    let cert_pem = material.certificate().expect("certificate").to_pem();
    let mut out = key_pem.expose().to_owned();
    out.push_str(&cert_pem);
    out
}

/// The openssl command line that makes what `case` makes; certificate cases write the key
/// to `key_out`.
fn openssl_args(case: Case, key_out: &Path) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    let key_args: Vec<String> = match case.kind {
        KeyKind::Rsa(bits) => vec![
            "-algorithm".into(),
            "RSA".into(),
            "-pkeyopt".into(),
            format!("rsa_keygen_bits:{bits}"),
        ],
        KeyKind::EcdsaP256 | KeyKind::EcdsaP384 | KeyKind::EcdsaP521 => vec![
            "-algorithm".into(),
            "EC".into(),
            "-pkeyopt".into(),
            format!("ec_paramgen_curve:P-{}", case.kind.size()),
        ],
        KeyKind::Ed25519 => vec!["-algorithm".into(), "ED25519".into()],
    };
    if !case.cert {
        args.push("genpkey".into());
        args.extend(key_args);
        return args;
    }
    let newkey = match case.kind {
        KeyKind::Rsa(bits) => format!("rsa:{bits}"),
        KeyKind::Ed25519 => "ed25519".to_owned(),
        _ => "ec".to_owned(),
    };
    args.extend(
        [
            "req",
            "-x509",
            "-newkey",
            &newkey,
            "-nodes",
            "-keyout",
            key_out.to_str().expect("UTF-8 temp path"),
            "-subj",
            &format!("/CN={HOST}"),
            "-addext",
            &format!("subjectAltName=DNS:{HOST}"),
            "-days",
            "90",
        ]
        .map(String::from),
    );
    if let KeyKind::EcdsaP256 | KeyKind::EcdsaP384 | KeyKind::EcdsaP521 = case.kind {
        args.extend([
            "-pkeyopt".into(),
            format!("ec_paramgen_curve:P-{}", case.kind.size()),
        ]);
    }
    args
}

/// Who generated an output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Generator {
    /// keysmith's library, timed inside this process.
    InProcess,
    /// OpenSSL's libcrypto timed inside a process (`openssl-inprocess key <case>`, built
    /// from bench/openssl-inprocess.c), after a warm-up generation.
    OpensslInProcess,
    /// `keygen one <case>`: a process doing one generation.
    KeysmithProcess,
    /// `openssl genpkey` / `openssl req`: a process doing one generation.
    Openssl,
}

/// Checks an output: a key of the case's kind first, then (certificate cases) a
/// certificate whose public key is that key's. Panics with a message otherwise.
fn check_output(case: Case, generator: Generator, pem: &str) {
    let key = PrivateKey::from_pem(pem.as_bytes())
        .unwrap_or_else(|e| panic!("{} by {generator:?}: no usable key: {e}", case.label));
    assert_eq!(
        key.kind(),
        case.kind,
        "{} by {generator:?}: wrong key type",
        case.label
    );
    if !case.cert {
        return;
    }
    let blocks = pem::parse_many(pem).expect("PEM blocks");
    let cert = blocks
        .iter()
        .find(|b| b.tag() == "CERTIFICATE")
        .unwrap_or_else(|| panic!("{} by {generator:?}: no certificate", case.label));
    let (_, parsed) = X509Certificate::from_der(cert.contents())
        .unwrap_or_else(|e| panic!("{} by {generator:?}: bad certificate: {e}", case.label));
    assert_eq!(
        parsed.public_key().raw,
        key.public_key_der().expect("public key").as_slice(),
        "{} by {generator:?}: the certificate is not for the key",
        case.label
    );
}

/// Has `openssl pkey -noout` (and `openssl x509 -noout` for certificates) read the output.
fn check_with_openssl(case: Case, generator: Generator, pem: &str, dir: &Path) {
    let path = dir.join("check.pem");
    std::fs::write(&path, pem).expect("write temp file");
    let path = path.to_str().expect("UTF-8 temp path");
    let mut commands = vec![vec!["pkey", "-in", path, "-noout"]];
    if case.cert {
        commands.push(vec!["x509", "-in", path, "-noout"]);
    }
    for args in commands {
        let status = Command::new("openssl")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(
            status.success(),
            "{} by {generator:?}: `openssl {}` rejects the output",
            case.label,
            args[0]
        );
    }
    std::fs::remove_file(path).expect("remove temp file");
}

/// Runs a process to completion with standard output captured; returns the wall time and
/// standard output.
fn run_process(program: &Path, args: &[String]) -> (Duration, String) {
    let start = Instant::now();
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("{} does not start: {e}", program.display()));
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        elapsed,
        String::from_utf8(out.stdout).expect("UTF-8 output"),
    )
}

/// Median, min and max of a sample.
#[derive(Clone, Copy, Debug)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

impl Stats {
    /// Of durations, in milliseconds.
    fn of(times: &[Duration]) -> Self {
        let mut ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let n = ms.len();
        assert!(n > 0, "no samples");
        let median = if n % 2 == 1 {
            ms[n / 2]
        } else {
            (ms[n / 2 - 1] + ms[n / 2]) / 2.0
        };
        Self {
            median,
            min: ms[0],
            max: ms[n - 1],
        }
    }

    /// `median (min–max)` in milliseconds.
    fn cell(&self) -> String {
        format!("{} ({}–{})", ms(self.median), ms(self.min), ms(self.max))
    }
}

/// Milliseconds with about three significant digits.
fn ms(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else if value >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// Measured times of one case.
struct Measured {
    case: Case,
    in_process: Vec<Duration>,
    openssl_in_process: Vec<Duration>,
    keysmith_process: Vec<Duration>,
    openssl_process: Vec<Duration>,
}

/// Splits the `ns <nanoseconds>` line that `openssl-inprocess` and `keygen dh` print first
/// from the rest of their output.
fn timed_output(program: &Path, out: &str) -> (Duration, String) {
    let (ns, rest) = first_line_number(program, out, "ns ");
    (Duration::from_nanos(ns), rest.to_owned())
}

/// The number on the first line of `out`, after `prefix`, and the rest of `out`.
fn first_line_number<'a>(program: &Path, out: &'a str, prefix: &str) -> (u64, &'a str) {
    out.split_once('\n')
        .and_then(|(first, rest)| Some((first.strip_prefix(prefix)?.parse().ok()?, rest)))
        .unwrap_or_else(|| panic!("{}: no {prefix:?} line first", program.display()))
}

/// Measures one case `runs` times per generator after one untimed warm-up each.
fn measure(case: Case, runs: usize, me: &Path, openssl_inprocess: &Path, dir: &Path) -> Measured {
    let spec = spec(case.kind);
    let key_out = dir.join("openssl-key.pem");
    let openssl_args = openssl_args(case, &key_out);
    let one_args = vec!["one".to_owned(), case.name.to_owned()];
    let inprocess_args = vec!["key".to_owned(), case.name.to_owned()];
    let openssl = PathBuf::from("openssl");
    let mut measured = Measured {
        case,
        in_process: Vec::with_capacity(runs),
        openssl_in_process: Vec::with_capacity(runs),
        keysmith_process: Vec::with_capacity(runs),
        openssl_process: Vec::with_capacity(runs),
    };
    let order = [
        Generator::InProcess,
        Generator::OpensslInProcess,
        Generator::KeysmithProcess,
        Generator::Openssl,
    ];
    // Run 0 is the warm-up (libraries and binaries in the page cache, CPU feature
    // detection done); its times are dropped.
    for run in 0..=runs {
        for i in 0..order.len() {
            let generator = order[(run + i) % order.len()];
            let (elapsed, pem) = match generator {
                Generator::InProcess => {
                    let start = Instant::now();
                    let pem = generate(case, &spec);
                    (start.elapsed(), pem)
                }
                Generator::OpensslInProcess => {
                    let (_, out) = run_process(openssl_inprocess, &inprocess_args);
                    timed_output(openssl_inprocess, &out)
                }
                Generator::KeysmithProcess => run_process(me, &one_args),
                Generator::Openssl => {
                    let (elapsed, mut pem) = run_process(&openssl, &openssl_args);
                    if case.cert {
                        let key = std::fs::read_to_string(&key_out).expect("openssl's key");
                        std::fs::remove_file(&key_out).expect("remove openssl's key");
                        pem.insert_str(0, &key);
                    }
                    (elapsed, pem)
                }
            };
            check_output(case, generator, &pem);
            if generator != Generator::InProcess || run <= 1 {
                check_with_openssl(case, generator, &pem, dir);
            }
            if run == 0 {
                continue;
            }
            match generator {
                Generator::InProcess => measured.in_process.push(elapsed),
                Generator::OpensslInProcess => measured.openssl_in_process.push(elapsed),
                Generator::KeysmithProcess => measured.keysmith_process.push(elapsed),
                Generator::Openssl => measured.openssl_process.push(elapsed),
            }
        }
    }
    measured
}

/// One generation of DH parameters: how long it took and how many candidates it tested.
#[derive(Clone, Copy, Debug)]
struct DhRun {
    elapsed: Duration,
    candidates: u64,
}

/// Runs `program args` (`keygen dh <bits>` or `openssl-inprocess dh <bits>`), checks its
/// PEM with `openssl dhparam -check` and returns the time and candidates it reports.
fn dh_run(program: &Path, args: &[String], bits: u32, dir: &Path) -> DhRun {
    let (_, out) = run_process(program, args);
    let (elapsed, rest) = timed_output(program, &out);
    let (candidates, pem) = first_line_number(program, &rest, "candidates ");
    let path = dir.join("dhparam.pem");
    std::fs::write(&path, pem).expect("write temp file");
    let check = Command::new("openssl")
        .args(["dhparam", "-check", "-text", "-noout", "-in"])
        .arg(&path)
        .output()
        .expect("openssl runs");
    let report = String::from_utf8_lossy(&check.stdout).into_owned()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(
        check.status.success()
            && report.contains("appear to be ok")
            && report.contains(&format!("({bits} bit)")),
        "{}: `openssl dhparam -check` rejects its {bits}-bit output: {report}",
        program.display()
    );
    std::fs::remove_file(path).expect("remove temp file");
    DhRun {
        elapsed,
        candidates,
    }
}

/// Generates `runs` DH parameter sets of `bits` bits in-process with each generator,
/// alternating which goes first; returns keysmith's runs and OpenSSL's.
fn measure_dh(
    bits: u32,
    runs: usize,
    me: &Path,
    openssl_inprocess: &Path,
    dir: &Path,
) -> (Vec<DhRun>, Vec<DhRun>) {
    let args = |first: &str| vec![first.to_owned(), bits.to_string()];
    let (mut keysmith, mut openssl) = (Vec::new(), Vec::new());
    for run in 0..runs {
        for i in 0..2 {
            if (run + i) % 2 == 0 {
                keysmith.push(dh_run(me, &args("dh"), bits, dir));
            } else {
                openssl.push(dh_run(openssl_inprocess, &args("dh"), bits, dir));
            }
        }
        eprintln!("keygen: DH {bits} run {} of {runs} done", run + 1);
    }
    (keysmith, openssl)
}

/// Seconds spent and candidates tested over all runs.
fn dh_totals(runs: &[DhRun]) -> (f64, u64) {
    let seconds = runs.iter().map(|r| r.elapsed.as_secs_f64()).sum();
    (seconds, runs.iter().map(|r| r.candidates).sum())
}

/// The twin-prime constant C₂.
const TWIN_PRIME_CONSTANT: f64 = 0.660_161_815_846_869_6;

/// How many candidates a search tests per `bits`-bit safe prime p ≡ 23 (mod 24), on
/// average, when its sieve strikes out p ≡ 0 or 1 modulo each of `sieve` (primes from 5;
/// 2 and 3 never divide p or q): the share of numbers ≡ 23 (mod 24) that survive the
/// sieve, ∏(1 − 2/ℓ),
/// over the share that are safe primes, 12·C₂ / ln²(2^bits) (half of all safe primes are
/// ≡ 23 mod 24; their density is the Hardy–Littlewood conjecture for p and (p − 1)/2).
fn expected_candidates(bits: u32, sieve: &[u32]) -> f64 {
    let surviving: f64 = sieve.iter().map(|&l| 1.0 - 2.0 / f64::from(l)).product();
    let log = f64::from(bits) * std::f64::consts::LN_2;
    surviving * log * log / (12.0 * TWIN_PRIME_CONSTANT)
}

/// The primes from 5 that OpenSSL 3's `BN_generate_prime_ex` sieves a `bits`-bit safe
/// prime with (`primes[1]` up to `primes[n - 1]` of its table, n from its
/// `calc_trial_divisions`; `primes[1]` is 3, which is left out here).
fn openssl_sieve(bits: u32) -> Vec<u32> {
    let divisions = match bits {
        0..=512 => 64,
        513..=1024 => 128,
        1025..=2048 => 384,
        2049..=4096 => 1024,
        _ => 2048,
    };
    let mut primes = small_primes(20_000);
    primes.truncate(divisions - 2);
    primes
}

/// The DH table, Markdown.
fn render_dh(bits: u32, keysmith: &[DhRun], openssl: &[DhRun]) -> String {
    let mut out = String::new();
    let keysmith_sieve = small_primes(SIEVE_LIMIT);
    let openssl_sieve = openssl_sieve(bits);
    let _ = writeln!(
        out,
        "{bits}-bit safe primes (p ≡ 23 mod 24, generator 2), both in-process: `keygen dh` \
         (keysmith's generator) and `openssl-inprocess dh` (`BN_generate_prime_ex`, the search \
         `openssl dhparam` runs), alternating; every output passed `openssl dhparam -check`. \
         A candidate is a number past the sieve that gets a primality test. How many a prime \
         takes is random, roughly geometric (its spread is as large as its mean), so a mean \
         over a few runs is uncertain by about ±1/√runs; the cost of one candidate is steady. \
         The expected number of candidates follows from the sieve (keysmith strikes out p \
         and q with a prime factor up to {}, OpenSSL up to {}; the ratio of the two \
         expectations depends on the sieves alone), so expected time per prime = expected \
         candidates × ms per candidate is the steady comparison.",
        keysmith_sieve.last().copied().unwrap_or(0),
        openssl_sieve.last().copied().unwrap_or(0),
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| generator | runs | seconds, median (min–max) | mean s | candidates tested | mean per prime | expected per prime | ms per candidate | expected s per prime |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    let mut per_candidate = [0.0; 2];
    let mut mean_seconds = [0.0; 2];
    let mut expected_seconds = [0.0; 2];
    let generators = [
        ("keysmith", keysmith, &keysmith_sieve),
        ("openssl", openssl, &openssl_sieve),
    ];
    for (i, (name, runs, sieve)) in generators.into_iter().enumerate() {
        let times: Vec<Duration> = runs.iter().map(|r| r.elapsed).collect();
        let stats = Stats::of(&times);
        let (seconds, candidates) = dh_totals(runs);
        let n = runs.len() as f64;
        let expected = expected_candidates(bits, sieve);
        per_candidate[i] = seconds * 1e3 / candidates.max(1) as f64;
        mean_seconds[i] = seconds / n;
        expected_seconds[i] = expected * per_candidate[i] / 1e3;
        let _ = writeln!(
            out,
            "| {name} | {} | {:.1} ({:.1}–{:.1}) | {:.1} | {candidates} | {:.0} | {expected:.0} | {:.2} | {:.1} |",
            runs.len(),
            stats.median / 1e3,
            stats.min / 1e3,
            stats.max / 1e3,
            mean_seconds[i],
            candidates as f64 / n,
            per_candidate[i],
            expected_seconds[i],
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "keysmith/openssl: {:.2} per candidate, {:.2} in expected time per prime, {:.2} in \
         measured mean time per prime.",
        per_candidate[0] / per_candidate[1],
        expected_seconds[0] / expected_seconds[1],
        mean_seconds[0] / mean_seconds[1],
    );
    out
}

/// Process start-up alone: `keygen noop`, `keygen rand`, `keysmith --version`,
/// `openssl version`.
fn measure_startup(runs: usize, me: &Path, keysmith: Option<&Path>) -> Vec<(String, Stats)> {
    let mut rows: Vec<(String, PathBuf, Vec<String>)> = vec![
        (
            "`keygen noop`: start and exit".to_owned(),
            me.to_path_buf(),
            vec!["noop".to_owned()],
        ),
        (
            "`keygen rand`: start, draw 32 random bytes from aws-lc-rs, exit".to_owned(),
            me.to_path_buf(),
            vec!["rand".to_owned()],
        ),
    ];
    if let Some(keysmith) = keysmith {
        rows.push((
            "`keysmith --version`: the operator binary, start and exit".to_owned(),
            keysmith.to_path_buf(),
            vec!["--version".to_owned()],
        ));
    }
    rows.push((
        "`openssl version`: start and exit".to_owned(),
        PathBuf::from("openssl"),
        vec!["version".to_owned()],
    ));
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); rows.len()];
    for run in 0..=runs {
        for (i, (_, program, args)) in rows.iter().enumerate() {
            let (elapsed, _) = run_process(program, args);
            if run > 0 {
                times[i].push(elapsed);
            }
        }
    }
    rows.into_iter()
        .zip(times)
        .map(|((label, _, _), t)| (label, Stats::of(&t)))
        .collect()
}

/// The table of all cases, Markdown.
fn render(measured: &[Measured], runs: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Milliseconds, median (min–max) of {runs} runs each; ratios are of medians. Two \
         like-for-like ratios: in-process (keysmith's library calls against OpenSSL's \
         libcrypto calls, each in a running process after a warm-up: what a long-running \
         operator pays per key) and process (one process per generation, start-up included, \
         as `openssl genpkey` runs)."
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| case | keysmith in-process | openssl in-process | ratio | ≤ {TARGET_RATIO}× | keysmith process | openssl process | ratio | ≤ {TARGET_RATIO}× |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|:-:|--:|--:|--:|:-:|");
    let verdict = |ratio: f64| {
        if ratio <= TARGET_RATIO {
            "yes"
        } else {
            "**no**"
        }
    };
    for m in measured {
        let inp = Stats::of(&m.in_process);
        let oinp = Stats::of(&m.openssl_in_process);
        let kp = Stats::of(&m.keysmith_process);
        let op = Stats::of(&m.openssl_process);
        let (in_ratio, process_ratio) = (inp.median / oinp.median, kp.median / op.median);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {in_ratio:.2} | {} | {} | {} | {process_ratio:.2} | {} |",
            m.case.label,
            inp.cell(),
            oinp.cell(),
            verdict(in_ratio),
            kp.cell(),
            op.cell(),
            verdict(process_ratio),
        );
    }
    out
}

fn render_startup(rows: &[(String, Stats)], runs: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Process start-up alone (no generation), milliseconds, median (min–max) of {runs} runs:"
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "| process | time |");
    let _ = writeln!(out, "|---|--:|");
    for (label, stats) in rows {
        let _ = writeln!(out, "| {label} | {} |", stats.cell());
    }
    out
}

/// Options of the table mode.
struct Options {
    runs: usize,
    cases: Vec<Case>,
    keysmith: Option<PathBuf>,
    openssl_inprocess: PathBuf,
    dh_runs: usize,
    dh_bits: u32,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        runs: 15,
        cases: CASES.to_vec(),
        keysmith: None,
        openssl_inprocess: PathBuf::new(),
        dh_runs: 0,
        dh_bits: 2048,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a value"))
        };
        match arg.as_str() {
            // `cargo bench` passes --bench to benchmarks without a harness.
            "--bench" => {}
            "--runs" => {
                options.runs = value()?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("--runs must be a positive number")?;
            }
            "--cases" => {
                options.cases = value()?
                    .split(',')
                    .map(|name| case_named(name).ok_or_else(|| unknown_case(name)))
                    .collect::<Result<_, _>>()?;
            }
            "--keysmith" => options.keysmith = Some(PathBuf::from(value()?)),
            "--openssl-inprocess" => options.openssl_inprocess = PathBuf::from(value()?),
            "--dh-runs" => {
                options.dh_runs = value()?.parse().map_err(|_| "--dh-runs must be a number")?;
            }
            "--dh-bits" => {
                options.dh_bits = value()?.parse().map_err(|_| "--dh-bits must be a number")?;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if options.openssl_inprocess.as_os_str().is_empty() {
        return Err("--openssl-inprocess PATH is needed (bench/keygen.sh builds it)".to_owned());
    }
    Ok(options)
}

fn unknown_case(name: &str) -> String {
    let names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    format!("unknown case {name}; cases: {}", names.join(","))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("noop") => return ExitCode::SUCCESS,
        Some("rand") => {
            // The first random bytes of a process seed AWS-LC's generator.
            let mut bytes = [0u8; 32];
            return match aws_lc_rs::rand::fill(&mut bytes) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            };
        }
        Some("one") => {
            let Some(case) = args.get(1).and_then(|n| case_named(n)) else {
                eprintln!("usage: keygen one <case>");
                return ExitCode::FAILURE;
            };
            let mut stdout = std::io::stdout().lock();
            if stdout.is_terminal() {
                eprintln!("keygen one: refusing to write a private key to a terminal");
                return ExitCode::FAILURE;
            }
            let pem = generate(case, &spec(case.kind));
            return match stdout.write_all(pem.as_bytes()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("keygen one: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Some("dh") => {
            let Some(bits) = args.get(1).and_then(|b| b.parse::<u32>().ok()) else {
                eprintln!("usage: keygen dh <bits>");
                return ExitCode::FAILURE;
            };
            let progress = keysmith::material::progress::Progress::default();
            let start = Instant::now();
            return match keysmith::material::dh::generate(bits, &progress) {
                Ok(pem) => {
                    let ns = start.elapsed().as_nanos();
                    print!("ns {ns}\ncandidates {}\n{pem}", progress.steps());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("keygen dh: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    let options = match parse_options(&args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("keygen: {e}");
            eprintln!(
                "usage: keygen --openssl-inprocess PATH [--runs N] [--cases a,b,...] [--keysmith PATH] [--dh-runs N] [--dh-bits B]"
            );
            return ExitCode::FAILURE;
        }
    };
    let me = std::env::current_exe().expect("own path");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut measured = Vec::new();
    for case in &options.cases {
        let start = Instant::now();
        measured.push(measure(
            *case,
            options.runs,
            &me,
            &options.openssl_inprocess,
            dir.path(),
        ));
        eprintln!(
            "keygen: {} done in {:.1} s",
            case.label,
            start.elapsed().as_secs_f64()
        );
    }
    let startup = measure_startup(options.runs, &me, options.keysmith.as_deref());
    let dh = (options.dh_runs > 0).then(|| {
        let (bits, runs) = (options.dh_bits, options.dh_runs);
        let inprocess = &options.openssl_inprocess;
        (bits, measure_dh(bits, runs, &me, inprocess, dir.path()))
    });
    println!("{}", render(&measured, options.runs));
    print!("{}", render_startup(&startup, options.runs));
    if let Some((bits, (keysmith, openssl))) = dh {
        println!("\n### DH parameters ({bits} bits)\n");
        print!("{}", render_dh(bits, &keysmith, &openssl));
    }
    ExitCode::SUCCESS
}
