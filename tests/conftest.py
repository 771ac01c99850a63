"""Shared fixtures: real SQLite files and real PostgreSQL databases, made fresh and dropped.

PostgreSQL is reached at ``PARTNER_LEDGER_TEST_PG`` (default: the machine's server on
127.0.0.1:5432 as ``postgres``). A test that needs it fails when it is down; it never skips.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import sys
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import psycopg
import pytest

from domain.ledger import Ledger
from infrastructure.settings import Settings
from infrastructure.wiring import open_ledger

ADMIN_URL = os.environ.get(
    "PARTNER_LEDGER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)
FIXTURES = Path(__file__).parent / "fixtures"
SCRIPTS = Path(__file__).parents[1] / "scripts"
BACKENDS = ["sqlite", "postgres"]


class PostgresServer:
    """Creates databases named after this test session and drops them again."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.prefix = f"pl_test_{os.getpid()}_{secrets.token_hex(3)}"
        self._numbers = count(1)

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5)

    def create(self) -> str:
        name = f"{self.prefix}_{next(self._numbers)}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        base = self.admin_url.rsplit("/", 1)[0]
        return f"{base}/{name}"

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def drop_all(self) -> None:
        with self._admin() as conn:
            names = conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (self.prefix + "%",)
            ).fetchall()
            for (name,) in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer(ADMIN_URL)
    yield server
    server.drop_all()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> Iterator[str]:
    url = postgres.create()
    yield url
    postgres.drop(url)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty ledger database: an SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


@pytest.fixture
def ledger(db_url: str) -> Iterator[Ledger]:
    with open_ledger(Settings(db=db_url)) as opened:
        yield opened


def generated(count: int, *, seed: int, **options: Any) -> list[bytes]:
    """``count`` lines of the project's notification generator, as payloads; ``options`` go
    to its ``generate`` (memberships, malformed_rate, reorder_window...)."""
    spec = importlib.util.spec_from_file_location(
        "generate_notifications", SCRIPTS / "generate_notifications.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return [line.encode() for line in module.generate(count, seed=seed, **options)]


def seed_payloads() -> dict[str, bytes]:
    """The seed document's eight samples, byte for byte, by file name."""
    return {path.name: path.read_bytes() for path in sorted((FIXTURES / "seed").glob("*.json"))}
