#!/usr/bin/env bash
# Median wall time of generating fresh DH parameters: `keysmith dhparam` (what a
# KeyringSecret with `group: Generate` runs) next to `openssl dhparam` on this machine.
# Every output is checked with `openssl dhparam -check`.
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

# time_one <label> <command...>: runs the command writing $work/out.pem, prints seconds.
time_one() {
  local start end
  start=$(date +%s.%N)
  "$@" >"$work/out.pem" 2>/dev/null
  end=$(date +%s.%N)
  openssl dhparam -in "$work/out.pem" -check -noout 2>&1 | grep -q "appear to be ok" \
    || { echo "output of $* failed openssl dhparam -check" >&2; exit 1; }
  awk "BEGIN {print $end - $start}"
}

median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m}'; }
range() { sort -n | awk 'NR==1{lo=$1} {hi=$1} END {printf "%.1f-%.1f", lo, hi}'; }

printf "%-8s %-22s %6s %12s %16s\n" bits generator runs "median s" "min-max s"
for bits in "${sizes[@]}"; do
  for gen in keysmith openssl; do
    : >"$work/times"
    for _ in $(seq "$runs"); do
      if [ "$gen" = keysmith ]; then
        time_one "$keysmith" dhparam --bits "$bits" >>"$work/times"
      else
        time_one openssl dhparam "$bits" >>"$work/times"
      fi
    done
    printf "%-8s %-22s %6s %12s %16s\n" "$bits" "$gen" "$runs" \
      "$(median <"$work/times")" "$(range <"$work/times")"
  done
done
