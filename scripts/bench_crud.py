"""CRUD baseline for the webhook benchmark: a minimal receiver that keeps no history.

    python scripts/bench_crud.py --db postgresql://... --port N [--workers N] [--pool N]
        [--host H] [--http httptools|h11] [--webhook-header X-Webhook-Token]
        [--webhook-secrets S1,S2]

The same server stack as ``partner-ledger serve`` (FastAPI on uvicorn, asyncio and httptools,
or h11 with ``--http h11`` as ``serve`` has with ``PARTNER_LEDGER_HTTP_PARSER=h11``; access log
off, with several workers a listening socket bound as TCP so keep-alive answers are not held
back by delayed ACKs), and the same static header check. ``POST /webhooks/capillary`` reads the
body, ``json.loads`` it, picks (org, customer, program, tier) out of a shape A (``attributes``
envelope), B or C (flat) payload, and upserts one row into ``memberships`` with one autocommit
statement (a durable commit: ``synchronous_commit`` on) on a pooled psycopg 3 connection
(prepared after its first uses). It answers 200 ``{"status": "ok"}`` after the commit, 400 when
the body is not JSON, 200 ``{"status": "ignored"}`` (nothing written) when it is JSON without
the keys, 401 on a wrong header, 503 on a database error. No validation, no deduplication, no
history, no quarantine: what is measured is the HTTP stack plus one commit per request.

The secrets may also come from ``BENCH_CRUD_WEBHOOK_SECRETS``.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool, PoolTimeout

SCHEMA = """
CREATE TABLE IF NOT EXISTS memberships (
    org_id bigint NOT NULL,
    customer_id bigint NOT NULL,
    partner_program_id bigint NOT NULL,
    tier_number integer,
    status text NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, customer_id, partner_program_id)
)
"""
UPSERT = """
INSERT INTO memberships AS m
    (org_id, customer_id, partner_program_id, tier_number, status, updated_at)
VALUES (%s, %s, %s, %s, %s, now())
ON CONFLICT (org_id, customer_id, partner_program_id) DO UPDATE SET
    tier_number = COALESCE(EXCLUDED.tier_number, m.tier_number),
    status = EXCLUDED.status,
    updated_at = EXCLUDED.updated_at
"""
ENV = "BENCH_CRUD_"  # settings handed to the worker processes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="postgresql://USER@HOST:PORT/DBNAME")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--pool", type=int, default=64, help="connections per worker")
    parser.add_argument("--http", choices=("httptools", "h11"), default="httptools")
    parser.add_argument("--webhook-header", default="X-Webhook-Token")
    parser.add_argument("--webhook-secrets", default=os.environ.get(f"{ENV}WEBHOOK_SECRETS"))
    args = parser.parse_args()
    if not args.webhook_secrets:
        print("set --webhook-secrets or BENCH_CRUD_WEBHOOK_SECRETS", file=sys.stderr)
        return 1
    with psycopg.connect(args.db, autocommit=True) as conn:
        conn.execute(SCHEMA)  # once, before any worker starts
    os.environ.update(
        {
            f"{ENV}DB": args.db,
            f"{ENV}POOL": str(args.pool),
            f"{ENV}WEBHOOK_HEADER": args.webhook_header,
            f"{ENV}WEBHOOK_SECRETS": args.webhook_secrets,
        }
    )
    config = uvicorn.Config(
        "bench_crud:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        http=args.http,
        access_log=False,
        server_header=False,
        log_level="warning",
    )
    if args.workers <= 1:
        uvicorn.Server(config).run()
        return 0
    from uvicorn.supervisors import Multiprocess

    # As ``serve`` does: a TCP listener, so asyncio sets TCP_NODELAY on accepted connections.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.set_inheritable(True)
    try:
        Multiprocess(config, sockets=[listener]).run()
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
    return 0


def app_from_environment() -> FastAPI:
    env = os.environ
    return create_app(
        env[f"{ENV}DB"],
        pool_size=int(env[f"{ENV}POOL"]),
        header=env[f"{ENV}WEBHOOK_HEADER"],
        secrets=env[f"{ENV}WEBHOOK_SECRETS"].split(","),
    )


def create_app(db: str, *, pool_size: int, header: str, secrets: list[str]) -> FastAPI:
    accepted = [secret.strip().encode() for secret in secrets if secret.strip()]
    pool = AsyncConnectionPool(
        db,
        min_size=pool_size,
        max_size=pool_size,
        kwargs={"autocommit": True, "prepare_threshold": 0},
        open=False,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await pool.open(wait=True)
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        try:
            async with pool.connection(timeout=5) as conn:
                await conn.execute("SELECT 1")
        except (psycopg.Error, PoolTimeout):
            return JSONResponse({"status": "database unreachable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.post("/webhooks/capillary")
    async def receive(request: Request) -> JSONResponse:
        token = request.headers.get(header, "").encode()
        if not any(hmac.compare_digest(token, secret) for secret in accepted):
            return JSONResponse({"detail": f"missing or wrong {header} header"}, status_code=401)
        body = await request.body()
        try:
            row = membership_row(json.loads(body))
        except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            return JSONResponse({"status": "bad request", "reason": "NOT_JSON"}, status_code=400)
        if row is None:
            return JSONResponse({"status": "ignored"})
        try:
            async with pool.connection(timeout=10) as conn:
                await conn.execute(UPSERT, row)
        except (psycopg.Error, PoolTimeout):
            return JSONResponse(
                {"detail": "database error"}, status_code=503, headers={"Retry-After": "5"}
            )
        return JSONResponse({"status": "ok"})

    return app


def membership_row(payload: Any) -> tuple[int, int, int, int | None, str] | None:
    """(org, customer, program, tier, status) of a shape A, B or C payload, or None."""
    payload = _stripped(payload)  # the feed pads keys with spaces: "orgId "
    if not isinstance(payload, dict):
        return None
    inner = payload.get("attributes")
    inner = inner if isinstance(inner, dict) else payload  # shape A: the envelope's attributes
    event = str(inner.get("eventName") or payload.get("eventType") or "")
    data = inner.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("customerIdentifiers"), dict):
        return None
    details = data.get("customerPartnerProgramDetails")
    tier = details.get("partnerTierNumber") if isinstance(details, dict) else None
    try:
        return (
            int(inner["orgId"] if "orgId" in inner else payload["orgId"]),
            int(data["customerIdentifiers"]["customerId"]),
            int(data["partnerProgramId"]),
            None if tier is None else int(tier),
            "DELINKED" if event.endswith("Delinked") else "LINKED",
        )
    except (KeyError, TypeError, ValueError):
        return None


def _stripped(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key).strip(): _stripped(item) for key, item in value.items()}
    return value  # lists and scalars as they are: nothing picked lives in a list


if __name__ == "__main__":
    raise SystemExit(main())
