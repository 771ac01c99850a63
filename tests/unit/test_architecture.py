"""Data flows one way: domain knows nothing of storage, views or doors."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "domain").glob("*.py")), ids=lambda p: p.name)
def test_domain_imports_nothing_from_infrastructure_projections_or_database_drivers(
    path: Path,
) -> None:
    forbidden = {"infrastructure", "projections", "psycopg", "sqlite3", "fastapi"}
    offending = {name for name in imported_modules(path) if name.split(".")[0] in forbidden}
    assert offending == set()


@pytest.mark.parametrize("path", sorted((ROOT / "projections").glob("*.py")), ids=lambda p: p.name)
def test_projections_do_not_import_the_command_line(path: Path) -> None:
    assert not {
        n
        for n in imported_modules(path)
        if n.startswith(("infrastructure.cli", "infrastructure.http"))
    }
