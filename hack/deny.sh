#!/usr/bin/env bash
# Supply-chain checks with cargo-deny (deny.toml; README.md "Supply chain"): licenses,
# bans (banned crates, wildcard requirements, duplicate versions) and sources always, and
# advisories (the RustSec database: vulnerabilities, unsound, unmaintained, yanked).
# Installs the pinned cargo-deny into the cache outside the checkout when it is missing.
#
# Where the advisories come from, first that is available:
#   1. the upstream RustSec database (a git repository on github.com), fetched by cargo-deny
#      as usual, when github.com answers;
#   2. a snapshot of it, checked offline: the tarball $KEYSMITH_ADVISORY_DB_SNAPSHOT, by
#      default ../shared/supply-chain/rustsec-advisory-db.tar.gz beside the checkout (a
#      depth-1 clone of RustSec/advisory-db that unpacks to advisory-db/). It is unpacked
#      into ${XDG_CACHE_HOME:-~/.cache}/keysmith/advisory-db/<hash of the tarball>/, so a
#      newer tarball replaces the old copy; the output names the snapshot's commit and date.
#      Advisories published after that date are not known to this check.
#   3. neither: the advisories check is skipped, loudly.
#
#   DENY_ADVISORIES=auto    check advisories against upstream or the snapshot; skip them,
#                           saying so, when neither is available (default)
#   DENY_ADVISORIES=always  check them, and fail when neither is available
#   DENY_ADVISORIES=never   skip them
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${XDG_CACHE_HOME:-$HOME/.cache}/keysmith
tools=$cache/tools
cargo_deny_version=0.20.2
advisory_db=https://github.com/RustSec/advisory-db
snapshot=${KEYSMITH_ADVISORY_DB_SNAPSHOT:-${PWD%/*}/shared/supply-chain/rustsec-advisory-db.tar.gz}
# cargo-deny 0.20 opens a database at <db-path>/<last URL segment>-<XxHash64 of the
# lower-cased URL>; for its default URL (https://github.com/rustsec/advisory-db, which
# deny.toml keeps) that is this name. A wrong name fails the check ("failed to get HEAD
# timestamp"), it does not skip it.
snapshot_db_name=advisory-db-3157b0e258782691
mode=${DENY_ADVISORIES:-auto}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export PATH=$tools/bin:$PATH

log() { printf 'deny: %s\n' "$*" >&2; }

case $mode in
  auto | always | never) ;;
  *) log "DENY_ADVISORIES must be auto, always or never, not '$mode'"; exit 2 ;;
esac

if ! cargo-deny --version 2>/dev/null | grep -qF " $cargo_deny_version"; then
  log "installing cargo-deny $cargo_deny_version into $tools"
  cargo install --locked --quiet --root "$tools" cargo-deny --version "$cargo_deny_version"
fi

# Unpacks the snapshot (once per tarball content) and sets snapshot_root (the db-path for
# cargo-deny), snapshot_commit, snapshot_date and snapshot_days (its age in whole days).
unpack_snapshot() {
  local base=$cache/advisory-db sum dir tmp old
  sum=$(sha256sum "$snapshot" | cut -c1-16)
  dir=$base/$sum
  if [[ ! -d $dir/$snapshot_db_name/.git ]]; then
    log "unpacking $snapshot into $dir"
    mkdir -p "$base"
    tmp=$(mktemp -d "$base/.unpack.XXXXXX")
    # File times are kept: cargo-deny dates a database without FETCH_HEAD by the later of
    # its HEAD commit and the mtime of .git/HEAD (when the snapshot was cloned), not by
    # when it was unpacked here. --no-same-owner: git refuses a repository owned by
    # another user, and cargo-deny asks git for the HEAD commit's date.
    if ! tar -xzf "$snapshot" -C "$tmp" --no-same-owner || [[ ! -d $tmp/advisory-db/.git ]]; then
      rm -rf "$tmp"
      log "$snapshot is not a git clone of the advisory database (no advisory-db/.git)"
      exit 1
    fi
    mv "$tmp/advisory-db" "$tmp/$snapshot_db_name"
    # Another run may have unpacked the same tarball meanwhile; either copy will do.
    mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
  fi
  for old in "$base"/*; do
    [[ $old == "$dir" ]] || rm -rf "$old"
  done
  snapshot_root=$dir
  local epoch
  read -r snapshot_commit epoch snapshot_date < <(
    git -C "$dir/$snapshot_db_name" log -1 --format='%H %ct %cI')
  snapshot_days=$(( ($(date +%s) - epoch) / 86400 ))
}

# The configuration for an offline run against the snapshot: deny.toml with db-path and
# maximum-db-staleness set in [advisories] (two lines inserted after its header, so lines
# after it are numbered two higher in diagnostics). cargo-deny --offline refuses a
# database older than maximum-db-staleness (default P90D) with "repository is stale";
# a snapshot is as old as it is, and refusing it would leave advisories unchecked
# altogether, so the limit is set just above the age of the snapshot's commit (never less
# than the age cargo-deny computes, see unpack_snapshot) and the age is reported here
# instead, with a warning beyond those 90 days. (The snapshot of 2026-08-21 is refused in
# December with the default once its .git/HEAD is dated like its commit.)
offline_config() {
  awk -v root="$snapshot_root" -v days="$((snapshot_days + 1))" '
    /^\[/ { in_adv = ($0 == "[advisories]") }
    in_adv && /^(db-path|maximum-db-staleness)[ \t]*=/ { next }
    { print }
    $0 == "[advisories]" {
      found = 1
      printf "db-path = '\''%s'\''\nmaximum-db-staleness = \"P%dD\"\n", root, days
    }
    END { if (!found) { print "deny.toml has no [advisories] table" > "/dev/stderr"; exit 1 } }
  ' deny.toml
}

checks=(licenses bans sources)
offline=()
config=()
snapshot_used=
if [[ $mode != never ]]; then
  if timeout 20 git ls-remote --exit-code "$advisory_db" HEAD >/dev/null 2>&1; then
    log "advisories: checked against the upstream RustSec database ($advisory_db)"
    checks+=(advisories)
  elif [[ -f $snapshot ]]; then
    # A snapshot that is present but unusable fails the run (set -e), it is not skipped.
    unpack_snapshot
    snapshot_used="RustSec advisory-db snapshot ${snapshot_commit:0:12} (committed $snapshot_date, $snapshot_days days old)"
    log "advisories: $advisory_db cannot be fetched from this machine; checking OFFLINE"
    log "  against the $snapshot_used,"
    log "  from $snapshot (commit $snapshot_commit)."
    if ((snapshot_days > 90)); then
      log "  WARNING: the snapshot is older than 90 days: advisories published after"
      log "  $snapshot_date are not looked for. Use a newer snapshot or run where github.com"
      log "  is reachable."
    fi
    tmpconfig=$(mktemp "${TMPDIR:-/tmp}/keysmith-deny.XXXXXX.toml")
    trap 'rm -f "$tmpconfig"' EXIT
    offline_config >"$tmpconfig"
    config=(--config "$tmpconfig")
    offline=(--offline)
    checks+=(advisories)
    # --offline also keeps cargo metadata from downloading crates: fetch them first (the
    # registries are reachable where github.com is not; the crates.io index cache this
    # refreshes is also what the yanked check reads).
    cargo fetch --locked --quiet ||
      log "cargo fetch failed; continuing with the crates already downloaded"
  else
    log "advisories: NOT CHECKED: the RustSec advisory database ($advisory_db) cannot be"
    log "  fetched from this machine, and there is no snapshot of it at $snapshot"
    log "  (set KEYSMITH_ADVISORY_DB_SNAPSHOT). Known vulnerabilities, unsound, unmaintained"
    log "  and yanked crates were not looked for. Run hack/deny.sh where github.com is"
    log "  reachable or a snapshot is present (DENY_ADVISORIES=always there)."
    if [[ $mode == always ]]; then
      log "DENY_ADVISORIES=always: failing"
      exit 1
    fi
  fi
else
  log "advisories: SKIPPED (DENY_ADVISORIES=never)"
fi

log "cargo deny --locked${offline:+ ${offline[*]}} check ${checks[*]}"
cargo-deny --version >&2
# Without the inclusion graphs the duplicate-version warnings take a line each; run
# `cargo deny check bans` to see which crates pull a version in.
status=0
cargo deny --locked "${offline[@]}" "${config[@]}" check --hide-inclusion-graph "${checks[@]}" ||
  status=$?
if [[ -n $snapshot_used ]]; then
  log "advisories were checked against the $snapshot_used"
fi
exit "$status"
