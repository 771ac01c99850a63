#!/usr/bin/env bash
# ruff (lint and format check) and mypy over the code; run after scripts/test.sh made .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check domain infrastructure projections scripts tests
.venv/bin/ruff format --check domain infrastructure projections scripts tests
.venv/bin/mypy domain infrastructure projections
