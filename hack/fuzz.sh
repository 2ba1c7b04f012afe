#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (README.md "Fuzzing") for a bounded time and fails if any
# finds a crash: a panic, a timeout (an input that takes longer than FUZZ_TIMEOUT seconds),
# or an allocation or RSS above FUZZ_RSS_MB. Installs the pinned cargo-fuzz into the cache
# outside the checkout when it is missing and builds with a nightly toolchain.
#
#   FUZZ_SECONDS    time per target (default 60)
#   FUZZ_TARGETS    which targets (default: all of fuzz/Cargo.toml)
#   FUZZ_TOOLCHAIN  the nightly toolchain (default nightly; installed when missing)
#
# Seeds come from fuzz/corpus/<target>/ (checked in, never written to); what the fuzzer
# finds on top is kept in the cache, so later runs start from it. A crashing input is
# written to fuzz/artifacts/<target>/; reproduce it with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${XDG_CACHE_HOME:-$HOME/.cache}/keysmith
tools=$cache/tools
target_dir=$cache/target-fuzz-nightly
work=$cache/fuzz-corpus
cargo_fuzz_version=0.13.2
toolchain=${FUZZ_TOOLCHAIN:-nightly}
seconds=${FUZZ_SECONDS:-60}
# The slowest input the parsers legitimately accept is an encrypted OpenSSH key at the
# 256 bcrypt-pbkdf rounds keysmith allows: about 15 s in this AddressSanitizer build (a key of
# 242 rounds the fuzzer found took 14.1 s here; about 1.5 s in the release binary). The limit
# leaves twice that, so only inputs slower than anything accepted count as hangs.
timeout=${FUZZ_TIMEOUT:-30}
rss_mb=${FUZZ_RSS_MB:-2048}
targets=${FUZZ_TARGETS:-$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^keysmith')}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export PATH=$tools/bin:$PATH
# The stable builds' target dir (hack/test.sh exports one) is not for nightly artifacts.
unset CARGO_TARGET_DIR

log() { printf 'fuzz: %s\n' "$*" >&2; }

if ! cargo-fuzz --version 2>/dev/null | grep -qF " $cargo_fuzz_version"; then
  log "installing cargo-fuzz $cargo_fuzz_version into $tools"
  cargo install --locked --quiet --root "$tools" cargo-fuzz --version "$cargo_fuzz_version"
fi
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
  log "installing the $toolchain toolchain"
  rustup toolchain install "$toolchain" --profile minimal
fi
log "$(rustup run "$toolchain" rustc --version), cargo-fuzz $cargo_fuzz_version"

# Release with debug assertions and overflow checks, AddressSanitizer (libFuzzer's malloc
# limit needs its hooks); 16 codegen units build the large dependency graph much faster.
build_flags=(--release --debug-assertions --codegen-units 16 --target-dir "$target_dir")
start=$SECONDS
cargo "+$toolchain" fuzz build "${build_flags[@]}"
log "built in $(( SECONDS - start ))s"

status=0
summary=()
for target in $targets; do
  mkdir -p "$work/$target" "fuzz/corpus/$target"
  out=$(mktemp)
  log "$target: ${seconds}s"
  rc=0
  # The first corpus directory receives new inputs: the cache's, not the checked-in seeds.
  cargo "+$toolchain" fuzz run "${build_flags[@]}" "$target" "$work/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb="$rss_mb" \
    -print_final_stats=1 >"$out" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)
  if [ -z "$runs" ]; then
    runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$out" | tail -1)
  fi
  if [ "$rc" -ne 0 ]; then
    status=1
    log "$target FAILED (exit $rc); the end of its log:"
    tail -n 60 "$out" >&2
    summary+=("$target: FAILED after ${runs:-?} executions")
  else
    summary+=("$target: ${runs:-?} executions in ${seconds}s, no crash")
  fi
  rm -f "$out"
done
printf '%s\n' "${summary[@]}" | sed 's/^/fuzz: /' >&2
exit $status
