#!/usr/bin/env bash
# Sets up a fresh machine and runs every notebook's tests. The README's test command; `.ci/run` calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check torch==2.13.0   # pinned here, not in the package: a CPU build on CI
python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
python tools/run_tests.py "$@"
