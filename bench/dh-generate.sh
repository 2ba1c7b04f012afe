#!/usr/bin/env bash
# Median wall time of generating fresh DH parameters: `keysmith dhparam` (what a
# KeyringSecret with `group: Generate` runs) next to `openssl dhparam` on this machine, both
# as processes, run alternately (the order swaps every run) so drift of the machine hits
# both alike. The ratio is of the medians. Every output is checked with
# `openssl dhparam -check`. Safe-prime search is random: expect a wide min-max.
#
# usage: bench/dh-generate.sh [runs] [bits...]     (default: 5 runs of 2048 and 3072)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
shift || true
sizes=("${@:-2048 3072}")
read -r -a sizes <<<"${sizes[*]}"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/keysmith/target}
cargo build --release --quiet --bin keysmith
keysmith="$CARGO_TARGET_DIR/release/keysmith"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# time_one <command...>: runs the command writing $work/out.pem, prints seconds.
time_one() {
  local start end
  start=$(date +%s.%N)
  "$@" >"$work/out.pem" 2>/dev/null
  end=$(date +%s.%N)
  openssl dhparam -in "$work/out.pem" -check -noout 2>&1 | grep -q "appear to be ok" \
    || { echo "output of $* failed openssl dhparam -check" >&2; exit 1; }
  awk "BEGIN {print $end - $start}"
}

# run_one <generator> <bits>: one timed generation, seconds appended to $work/<generator>.
run_one() {
  if [ "$1" = keysmith ]; then
    time_one "$keysmith" dhparam --bits "$2" >>"$work/keysmith"
  else
    time_one openssl dhparam "$2" >>"$work/openssl"
  fi
}

# median [printf format]: median of the numbers on standard input.
median() { sort -n | awk -v f="${1:-%.1f}" '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf f, m}'; }
range() { sort -n | awk 'NR==1{lo=$1} {hi=$1} END {printf "%.1f-%.1f", lo, hi}'; }

printf "%-8s %-22s %6s %12s %16s %18s\n" bits generator runs "median s" "min-max s" "keysmith/openssl"
for bits in "${sizes[@]}"; do
  : >"$work/keysmith"
  : >"$work/openssl"
  for run in $(seq "$runs"); do
    if [ $((run % 2)) -eq 1 ]; then
      run_one keysmith "$bits"
      run_one openssl "$bits"
    else
      run_one openssl "$bits"
      run_one keysmith "$bits"
    fi
  done
  ratio=$(awk -v k="$(median %.6f <"$work/keysmith")" -v o="$(median %.6f <"$work/openssl")" \
    'BEGIN {printf "%.2f", (o > 0) ? k / o : 0}')
  printf "%-8s %-22s %6s %12s %16s %18s\n" "$bits" keysmith "$runs" "$(median <"$work/keysmith")" \
    "$(range <"$work/keysmith")" "$ratio"
  printf "%-8s %-22s %6s %12s %16s %18s\n" "$bits" openssl "$runs" "$(median <"$work/openssl")" \
    "$(range <"$work/openssl")" ""
done
