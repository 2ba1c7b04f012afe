#!/usr/bin/env bash
# Supply-chain checks with cargo-deny (deny.toml; README.md "Supply chain"): licenses,
# bans (banned crates, wildcard requirements, duplicate versions) and sources always, and
# advisories (the RustSec database: vulnerabilities, unsound, unmaintained, yanked) where
# the database can be fetched. Installs the pinned cargo-deny into the cache outside the
# checkout when it is missing.
#
#   DENY_ADVISORIES=auto    check advisories when the database is reachable (default)
#   DENY_ADVISORIES=always  check them, and fail when the database cannot be fetched
#   DENY_ADVISORIES=never   skip them
#
# The RustSec advisory database is a git repository on github.com, and cargo-deny reads
# nothing else; no package registry carries a copy of it. On a machine that reaches the
# registries but not github.com the advisories check is skipped, and the output says so.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${XDG_CACHE_HOME:-$HOME/.cache}/keysmith
tools=$cache/tools
cargo_deny_version=0.20.2
advisory_db=https://github.com/RustSec/advisory-db
mode=${DENY_ADVISORIES:-auto}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export PATH=$tools/bin:$PATH

log() { printf 'deny: %s\n' "$*" >&2; }

if ! cargo-deny --version 2>/dev/null | grep -qF " $cargo_deny_version"; then
  log "installing cargo-deny $cargo_deny_version into $tools"
  cargo install --locked --quiet --root "$tools" cargo-deny --version "$cargo_deny_version"
fi

checks=(licenses bans sources)
case $mode in
  never)
    log "advisories: SKIPPED (DENY_ADVISORIES=never)" ;;
  always)
    checks+=(advisories) ;;
  auto)
    if timeout 20 git ls-remote --exit-code "$advisory_db" HEAD >/dev/null 2>&1; then
      checks+=(advisories)
    else
      log "advisories: NOT CHECKED: the RustSec advisory database ($advisory_db) cannot be"
      log "  fetched from this machine, and no registry it reaches has a copy. Known"
      log "  vulnerabilities, unsound, unmaintained and yanked crates were not looked for."
      log "  Run hack/deny.sh where github.com is reachable (DENY_ADVISORIES=always there)."
    fi ;;
  *)
    log "DENY_ADVISORIES must be auto, always or never, not '$mode'"; exit 2 ;;
esac

log "cargo deny --locked check ${checks[*]}"
cargo-deny --version >&2
# Without the inclusion graphs the duplicate-version warnings take a line each; run
# `cargo deny check bans` to see which crates pull a version in.
cargo deny --locked check --hide-inclusion-graph "${checks[@]}"
