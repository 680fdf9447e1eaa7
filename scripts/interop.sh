#!/usr/bin/env bash
# OpenStack interop (RefStack) network tests with tempest against `neutrino up`; see scripts/interop.py.
# Usage: scripts/interop.sh [--clouds CLOUDS_YAML] [--include-list FILE] [--keep] ...
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh >&2
exec .venv/bin/python scripts/interop.py "$@"
