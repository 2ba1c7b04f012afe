#!/usr/bin/env bash
# Key and certificate generation speed of keysmith next to OpenSSL on this machine
# (issue #8): RSA 2048/3072/4096, ECDSA P-256/P-384 and Ed25519 keys; a fresh key with its
# self-signed certificate as a CertificateKeyPair makes them (P-256 and RSA 2048); and fresh
# DH parameters (a KeyringSecret with `group: Generate`).
#
# Each key/certificate case is measured four ways, interleaved run by run
# (bench/keygen.rs, a `cargo bench` target without harness), as two like-for-like pairs:
#   keysmith in-process  the library calls the controllers make (PrivateKey::generate,
#                        x509::issue) plus PEM encoding, timed inside one running process:
#                        what the operator pays per key
#   openssl in-process   the same with OpenSSL's libcrypto, timed inside a running process
#                        (bench/openssl-inprocess.c, built here with cc -lcrypto)
#   keysmith process     a process doing one generation and writing the PEM to standard
#                        output (`keygen one <case>`), as `openssl genpkey` does
#   openssl process      `openssl genpkey ...` / `openssl req -x509 -newkey ... -nodes ...`
# The in-process pair is what a long-running operator pays per key; the process pair adds
# each process's start-up (for keysmith, AWS-LC's first random draw: see the start-up table).
# DH parameters are generated in-process by both (`keygen dh`, and `BN_generate_prime_ex` as
# `openssl dhparam` calls it), with the candidates each tested: the cost per candidate is
# steady, the number of candidates per prime is random. bench/dh-generate.sh compares the
# `keysmith dhparam` and `openssl dhparam` processes instead.
#
# Every output is parsed back (key type and size; the certificate holds the key) and every
# process output, plus the first in-process output per case, is read by
# `openssl pkey -noout` / `openssl x509 -noout`; DH outputs by `openssl dhparam -check`: a
# failed generation stops the benchmark. Key material is never printed.
#
# usage: bench/keygen.sh [--runs N] [--dh-runs N] [--cases a,b,...]
#   --runs N      timed runs per key/certificate case and generator (default 15)
#   --dh-runs N   DH 2048 generations per generator (default 10; 0 skips DH)
#   --cases LIST  any of rsa2048,rsa3072,rsa4096,p256,p384,ed25519,cert-p256,cert-rsa2048
#                 (default: all)
# Needs a C compiler and OpenSSL's headers (Debian: gcc, libssl-dev). The output is
# Markdown, ready for docs/benchmarks.md. Build output and progress go to standard error.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=15
dh_runs=10
cases=
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=${2:?--runs needs a value}; shift 2 ;;
    --dh-runs) dh_runs=${2:?--dh-runs needs a value}; shift 2 ;;
    --cases) cases=${2:?--cases needs a value}; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/keygen.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for n in "$runs" "$dh_runs"; do
  [[ $n =~ ^[0-9]+$ ]] || { echo "bench/keygen.sh: run counts must be numbers" >&2; exit 2; }
done
[ "$runs" -gt 0 ] || { echo "bench/keygen.sh: --runs must be at least 1" >&2; exit 2; }

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/keysmith/target}
started=$(date +%s)
cargo build --release --quiet --bin keysmith
keysmith="$CARGO_TARGET_DIR/release/keysmith"
# Builds the benchmark (bench profile = release settings) before anything is timed.
cargo bench --quiet --bench keygen --no-run
openssl_inprocess="$CARGO_TARGET_DIR/openssl-inprocess"
cc -O2 -Wall -o "$openssl_inprocess" bench/openssl-inprocess.c -lcrypto || {
  echo "bench/keygen.sh: building bench/openssl-inprocess.c needs cc and OpenSSL's headers (libssl-dev)" >&2
  exit 1
}

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit (with uncommitted changes)"
fi
cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
aws_lc_rs=$(grep -A1 '^name = "aws-lc-rs"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')

echo "## Machine"
echo
echo "- CPU: ${cpu:-unknown} ($(grep -c '^processor' /proc/cpuinfo) logical CPUs, $(nproc) available)"
echo "- Kernel: $(uname -sr)"
echo "- OpenSSL: $(openssl version) (the command and the library both)"
echo "- keysmith: $("$keysmith" --version), commit $commit, aws-lc-rs $aws_lc_rs, $(rustc --version)"
echo "- Command: \`bench/keygen.sh --runs $runs --dh-runs $dh_runs${cases:+ --cases $cases}\`"
echo
echo "## Keys and certificates"
echo
bench_args=(--runs "$runs" --keysmith "$keysmith" --openssl-inprocess "$openssl_inprocess"
  --dh-runs "$dh_runs" --dh-bits 2048)
[ -z "$cases" ] || bench_args+=(--cases "$cases")
cargo bench --quiet --bench keygen -- "${bench_args[@]}"
echo
echo "Total time of this benchmark: $(($(date +%s) - started)) s (builds included)."
