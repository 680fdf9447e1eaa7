#!/usr/bin/env bash
# tempest.api.network + neutron_tempest_plugin.api against a fresh `neutrino up` configured as the
# plugin's gate job configures Neutron; writes docs/conformance.md. See scripts/conformance.py.
# Usage: scripts/conformance.sh [--concurrency 2] [--regex RE] [--clouds CLOUDS_YAML] [--set S.O=V] ...
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh >&2
exec .venv/bin/python scripts/conformance.py "$@"
