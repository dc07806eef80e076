#!/usr/bin/env bash
# Create .venv (Python >= 3.11) and install pilotlab into it, editable, with the given extras.
# Usage: scripts/setup.sh [EXTRAS]   e.g. scripts/setup.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"
say() { echo "pilotlab: $*" >&2; }
started=$SECONDS
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "pilotlab needs Python >= 3.11 (found: $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
    exit 2
fi
if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $("$python" --version 2>&1)"
    "$python" -m venv .venv
fi
target="."
[ -n "$extras" ] && target=".[$extras]"
# Quiet unless it fails: the build backend's notices are not for the person starting a demo.
# One line per step instead, so a first run (80-100 s of downloads) does not look stuck.
log=.venv/install.log
say "installing pilotlab${extras:+ with its $extras extras} and its dependencies into .venv" \
    "(the first run takes ~1-2 min; pip's output: $log)..."
if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip \
       && .venv/bin/python -m pip install --disable-pip-version-check -e "$target"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "pilotlab: installing into .venv failed (log above, also in $log)" >&2
    exit 1
fi
# A .venv made before pilotlab dropped grafana-client still holds niquests' urllib3-future, whose .pth
# hook rewrites the urllib3 package at every interpreter start (requests and schemathesis then fail):
# remove it and put the real urllib3 back.
if [ -d "$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/urllib3_future" ]; then
    say "removing urllib3-future (left by an older pilotlab) from .venv"
    if ! { .venv/bin/python -m pip uninstall --disable-pip-version-check -y grafana-client verlib2 niquests wassima urllib3-future jh2 qh3 \
           && .venv/bin/python -m pip install --disable-pip-version-check --force-reinstall --no-deps urllib3; } >>"$log" 2>&1; then
        cat "$log" >&2
        echo "pilotlab: removing urllib3-future from .venv failed (log above, also in $log)" >&2
        exit 1
    fi
fi
say ".venv ready in $((SECONDS - started)) s"
