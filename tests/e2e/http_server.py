"""A real ``serve`` process on a free loopback port, for the HTTP end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "whk-test-3f9a1c07be"
READ_TOKEN = "read-test-8d2e5b41aa"
STARTUP_SECONDS = 60


@dataclass
class Server:
    """A running service, with clients that carry the right credentials."""

    url: str
    db_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    client: httpx.Client = field(repr=False)

    def post(self, body: bytes, *, headers: dict[str, str] | None = None) -> httpx.Response:
        """Deliver ``body`` as Capillary does, with the webhook secret (unless overridden)."""
        sent = {"X-Webhook-Token": WEBHOOK_SECRET, "Content-Type": "application/json"}
        return self.client.post("/webhooks/capillary", content=body, headers=sent | (headers or {}))

    def get(self, path: str, **params: Any) -> httpx.Response:
        """A read with the read token."""
        return self.client.get(
            path,
            params={k: v for k, v in params.items() if v is not None},
            headers={"Authorization": f"Bearer {READ_TOKEN}"},
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def sql(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Ask the store directly: the tests check what was written, not only what was said."""
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            return conn.execute(text, params).fetchall()

    def stop(self, *, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.client.close()
        return int(self.process.returncode)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_command(db_url: str, *args: str) -> list[str]:
    """The `partner-ledger serve` command line."""
    return [str(Path(sys.executable).parent / "partner-ledger"), "--db", db_url, "serve", *args]


def server_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTNER_LEDGER_")}
    env.update(
        PARTNER_LEDGER_WEBHOOK_SECRETS=WEBHOOK_SECRET,
        PARTNER_LEDGER_READ_TOKEN=READ_TOKEN,
        PARTNER_LEDGER_CONNECT_TIMEOUT_SECONDS="2",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


@contextmanager
def running_server(db_url: str, log_dir: Path, *args: str, **env: str) -> Iterator[Server]:
    """Start ``serve`` against ``db_url``, wait until ``/readyz`` says ready (the process is
    up, the database reachable, the views built), stop it after."""
    port = free_port()
    log_path = log_dir / f"serve-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            serve_command(db_url, "--port", str(port), *args),
            cwd=ROOT,
            env=server_env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    server = Server(url, db_url, process, log_path, httpx.Client(base_url=url, timeout=30))
    try:
        _wait_until_ready(server)
        yield server
    finally:
        server.stop()


def _wait_until_ready(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"serve exited with {server.process.returncode}:\n{server.log()}")
        try:
            if server.client.get("/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"serve was not ready in {STARTUP_SECONDS} s:\n{server.log()}")
