"""Data flows one way: domain knows nothing of storage, views or doors; the views reach storage
only through the ports they own (`projections.storage`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DRIVERS = {"psycopg", "psycopg_pool", "sqlite3"}


def imported_modules(source: str, *, package: str = "") -> set[str]:
    """Every module a source imports, at any depth (in functions too), relative imports made
    absolute against ``package``."""
    tree = ast.parse(source)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".") if node.level else []
            prefix = parts[: max(len(parts) - node.level + 1, 0)]
            base = ".".join(filter(None, [*prefix, node.module or ""]))
            names.add(base)
            names.update(".".join(filter(None, [base, alias.name])) for alias in node.names)
    names.update(_dynamic_imports(tree))
    return names


def _dynamic_imports(tree: ast.AST) -> set[str]:
    """``importlib.import_module("x")`` and ``__import__("x")`` with a literal name."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in {"import_module", "__import__"} and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


def offending(source: str, forbidden: set[str], *, package: str) -> set[str]:
    return {
        name
        for name in imported_modules(source, package=package)
        if name.split(".")[0] in forbidden
    }


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def package_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])


@pytest.mark.parametrize("path", modules("domain"), ids=lambda p: p.name)
def test_domain_imports_nothing_from_infrastructure_projections_or_database_drivers(
    path: Path,
) -> None:
    forbidden = {"infrastructure", "projections", "fastapi", *DRIVERS}
    assert offending(path.read_text(), forbidden, package=package_of(path)) == set()


@pytest.mark.parametrize("path", modules("projections"), ids=lambda p: p.name)
def test_projections_reach_storage_only_through_their_ports(path: Path) -> None:
    forbidden = {"infrastructure", "fastapi", *DRIVERS}
    assert offending(path.read_text(), forbidden, package=package_of(path)) == set()


@pytest.mark.parametrize(
    "source",
    [
        "from infrastructure.recorders import SCHEMA_LOCK",  # projections/store.py, before
        "from psycopg.rows import tuple_row",  # projections/log.py, before
        "import psycopg",  # projections/locks.py and runner.py, before
        "def f():\n    import sqlite3",
        "from .. import infrastructure",
        "from ..infrastructure.recorders import SCHEMA_LOCK",
        "import importlib\nimportlib.import_module('psycopg')",
    ],
)
def test_the_boundary_check_catches_every_way_of_importing_storage(source: str) -> None:
    assert offending(source, {"infrastructure", *DRIVERS}, package="projections") != set()


@pytest.mark.parametrize("path", modules("projections"), ids=lambda p: p.name)
def test_projections_write_no_sql_of_the_storage_layer(path: Path) -> None:
    """Statements, COPY, advisory locks, LISTEN and DDL belong to `infrastructure.views`."""
    text = path.read_text()
    markers = ("SELECT ", "pg_advisory", "LISTEN ", "COPY ", "CREATE TABLE", "PRAGMA", "BEGIN")
    for marker in markers:
        assert marker not in text, marker
