#!/usr/bin/env bash
# Set up ./.venv and run the main job on the embedded default store (SQLite, ./ledger.db):
# ingest the bundled sample notifications, then print the memberships they produced.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
.venv/bin/partner-ledger ingest examples/notifications.jsonl
.venv/bin/partner-ledger export memberships
