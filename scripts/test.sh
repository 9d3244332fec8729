#!/usr/bin/env bash
# Install every test dependency (Debian packages and Python packages) and run
# the whole test suite. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
exec python3 -m pytest -ra "$@"
