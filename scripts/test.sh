#!/usr/bin/env bash
# Set up ./.venv with the test tools and run the whole suite: unit tests, then the same
# scenarios on SQLite files and on the PostgreSQL server at 127.0.0.1:5432 (user postgres;
# override with PARTNER_LEDGER_TEST_PG). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
exec .venv/bin/python -m pytest "$@"
