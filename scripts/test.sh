#!/usr/bin/env bash
# Set up and run the test suite.
#   PILOTLAB_TEST_DATABASE_URL  admin URL of a PostgreSQL server to make throwaway databases on
#   PILOTLAB_TEST_MQTT_URL      URL of an MQTT v5 broker
# Unset, the tests start an embedded PostgreSQL (pgserver) and broker (mosquitto, else iotcore).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
echo "pilotlab: running the test suite" >&2
exec .venv/bin/python -m pytest "$@"
