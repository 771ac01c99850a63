"""The dashboard: the ledger as the people who run a loyalty program read it, served by
``partner-ledger serve`` on the same port (``/dashboard``). See docs/dashboard.md."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from infrastructure.http.dashboard import expiring, membership, pages, quarantine
from infrastructure.http.dashboard.web import PREFIX

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Add the dashboard's pages and its stylesheet (vendored: nothing from a CDN)."""
    for module in (pages, membership, expiring, quarantine):
        app.include_router(module.router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="dashboard-static")


__all__ = ["install"]
