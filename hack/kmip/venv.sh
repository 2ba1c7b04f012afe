#!/usr/bin/env bash
# Creates (once) the virtualenv with PyKMIP pinned by requirements.txt beside this script and
# prints its directory as the last line of stdout; does nothing when it is already there.
# Several test processes may call this at once: a lock file serializes creation.
#
#   KEYSMITH_PYTHON        interpreter to build the venv from (default: python3)
#   KEYSMITH_PYKMIP_CACHE  cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/keysmith)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python=${KEYSMITH_PYTHON:-python3}
cache_root=${KEYSMITH_PYKMIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keysmith}

py_id=$("$python" -c 'import platform, sys; print(platform.python_version(), sys.base_prefix)') || {
  echo "venv.sh: $python does not run (hack/install-deps.sh installs python3)" >&2; exit 1; }
# The name changes with the interpreter (a venv links to it) and with the pins, so a venv is
# never rebuilt in place while another test run may be using it.
hash=$({ echo "$py_id"; cat "$here/requirements.txt"; } | sha256sum | cut -c1-12)
venv="$cache_root/pykmip-0.11.0-py${py_id%% *}-$hash"
stamp="$venv/.keysmith-complete"

if [ -e "$stamp" ]; then echo "$venv"; exit 0; fi

mkdir -p "$cache_root"
exec 9>"$venv.lock"
flock 9
if [ ! -e "$stamp" ]; then
  echo "venv.sh: creating $venv" >&2
  rm -rf "$venv" # left over from an interrupted creation
  "$python" -m venv "$venv" >&2 || {
    echo "venv.sh: '$python -m venv' failed (on Debian: apt-get install python3-venv)" >&2; exit 1; }
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --only-binary=:all: -r "$here/requirements.txt" >&2
  "$venv/bin/python" -m pip check >&2
  "$venv/bin/python" -c 'import kmip.services.server, kmip.pie.client' >&2
  touch "$stamp"
fi
echo "$venv"
