#!/usr/bin/env bash
# Set up ./.venv and run the main job on the embedded default store (SQLite, ./ledger.db):
# ingest the bundled sample notifications, then print the memberships they produced as a table.
# A rerun skips the install while pyproject.toml is unchanged since the last one.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=.venv/.partner-ledger-installed
wanted="$(.venv/bin/python -c 'import hashlib,sys; print(hashlib.sha256(open("pyproject.toml","rb").read()).hexdigest())')"
if [ ! -x .venv/bin/partner-ledger ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
    echo "$wanted" >"$stamp"
fi
.venv/bin/partner-ledger ingest examples/notifications.jsonl
.venv/bin/partner-ledger export memberships --format table
echo "(as JSON Lines: .venv/bin/partner-ledger export memberships)"
