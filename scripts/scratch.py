"""A scratch PostgreSQL database for the scripts that measure (bench.py, compare_old_new.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg


@contextmanager
def scratch_database(admin_url: str, label: str) -> Iterator[str]:
    """A new database on the admin URL's server, its URL, dropped afterwards whatever happens."""
    name = f"pl_{label}_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
