#!/usr/bin/env bash
# Set up ./.venv with the test tools and run the whole suite: unit tests, then the same
# scenarios on SQLite files and on the PostgreSQL server at 127.0.0.1:5432 (user postgres;
# override with PARTNER_LEDGER_TEST_PG), and the dashboard in Debian's headless Chromium
# (installed with apt-get when missing). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# The dashboard's browser tests drive Debian's headless Chromium through its chromedriver.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
exec .venv/bin/python -m pytest "$@"
