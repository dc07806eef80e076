#!/usr/bin/env bash
# Quick start: set up and run the whole stack on embedded PostgreSQL and broker. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "pilotlab: starting the demo (a few seconds; Ctrl-C stops it)" >&2
exec .venv/bin/pilotlab demo "$@"
