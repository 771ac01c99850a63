"""``partner-ledger serve``: the HTTP service on uvicorn, one ledger per worker process.

Flags override the environment (``PARTNER_LEDGER_WEBHOOK_HEADER``, ``_WEBHOOK_SECRETS``,
``_READ_TOKEN``, ``_OPERATOR_TOKEN``, ``_MAX_BODY_BYTES``, ``_SIGNING_SECRET``,
``_DRAIN_SECONDS``, ``_TRANSIENT_STATUS``). Prefer the environment for secrets: command lines are
visible to every user of the machine. A bad flag, a port in use or an address that cannot be
listened on is one sentence on stderr and exit status 1.

Also runnable as ``python -m infrastructure.http.serve [--db URL] [flags]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr, ValidationError

from domain.errors import ConfigurationError, LedgerError
from infrastructure.http.config import HttpConfig
from infrastructure.http.logs import log_config
from infrastructure.settings import Settings
from infrastructure.wiring import open_ledger

if TYPE_CHECKING:
    import uvicorn

FLAGS = (
    "webhook_header",
    "webhook_secrets",
    "read_token",
    "operator_token",
    "max_body_bytes",
    "signing_secret",
    "drain_seconds",
    "transient_status",
)
MAX_WORKERS = 64


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="default 8080")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parser.add_argument(
        "--webhook-header", help="header carrying the webhook secret (default X-Webhook-Token)"
    )
    parser.add_argument(
        "--webhook-secrets", help="accepted secrets, comma-separated (rotate by listing two)"
    )
    parser.add_argument("--read-token", help="bearer token(s) for the read endpoints")
    parser.add_argument(
        "--operator-token", help="token(s) for the dashboard's quarantine replay (default: off)"
    )
    parser.add_argument("--max-body-bytes", type=int, help="larger bodies get 413 (default 1 MiB)")
    parser.add_argument(
        "--signing-secret",
        help="Standard Webhooks secret(s) whsec_...: when set, signatures are required",
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        help="on SIGTERM, answer the transient status for this long before closing the "
        "listener (default 0)",
    )
    parser.add_argument(
        "--transient-status",
        type=int,
        help="the status of our own transient failures: 429 (default) or 503",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Check the configuration and the database, then serve until SIGTERM or SIGINT."""
    import uvicorn  # here, not at the top: every other CLI command would pay for it

    from infrastructure.http.protocol import PROTOCOLS
    from infrastructure.http.service import GRACE_SECONDS

    _check_listen_flags(args)
    config = _config(args)
    config.check()
    with open_ledger(settings):
        pass  # reachable, tables created once: workers then start on a ready database
    listener = _listen(args.host, args.port)
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "http": PROTOCOLS[config.http_parser],
        "log_config": log_config(),
        "access_log": False,
        "server_header": False,
        "timeout_graceful_shutdown": GRACE_SECONDS,
    }
    try:
        if args.workers == 1:
            from infrastructure.http.app import create_app

            server = uvicorn.Server(uvicorn.Config(create_app(config, settings), **options))
            server.run(sockets=[listener])
            return 0 if server.started else 1
        os.environ.update(_environment(config, settings))
        with _metrics_directory():
            _run_workers(
                uvicorn.Config(
                    "infrastructure.http.app:app_from_environment",
                    factory=True,
                    workers=args.workers,
                    **options,
                ),
                listener,
            )
        return 0
    finally:
        listener.close()


def _check_listen_flags(args: argparse.Namespace) -> None:
    if not 1 <= args.port <= 65535:
        raise ConfigurationError(f"--port must be from 1 to 65535, not {args.port}")
    if not 1 <= args.workers <= MAX_WORKERS:
        raise ConfigurationError(f"--workers must be from 1 to {MAX_WORKERS}, not {args.workers}")
    if not args.host or any(c.isspace() for c in args.host):
        raise ConfigurationError(f"--host {args.host!r} is not a host name or address")


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here rather than by uvicorn: a bind failure is then one
    sentence, and the socket is TCP. uvicorn binds it with ``proto`` 0, so asyncio never sets
    TCP_NODELAY on accepted connections and every keep-alive response after the first waits
    ~40 ms for a delayed ACK (uvicorn issue #3149, open in 0.54)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as error:
        raise ConfigurationError(f"cannot listen on {host}:{port}: {_reason(error)}") from None
    family, kind, proto, _, address = infos[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(2048)
    except OSError as error:
        listener.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {_reason(error)}") from None
    listener.set_inheritable(True)
    return listener


def _reason(error: BaseException) -> str:
    return (getattr(error, "strerror", None) or str(error) or type(error).__name__).lower()


def _run_workers(config: uvicorn.Config, listener: socket.socket) -> None:
    """What ``uvicorn.run`` does for several workers, on our listening socket."""
    from uvicorn.supervisors import Multiprocess

    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on http://%s:%d with %d workers", config.host, config.port, config.workers
    )
    with suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[listener]).run()


def _config(args: argparse.Namespace) -> HttpConfig:
    overrides = {
        name: getattr(args, name) for name in FLAGS if getattr(args, name, None) is not None
    }
    try:
        return HttpConfig(**overrides)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise ConfigurationError(f"invalid HTTP settings: {problems}") from None


def _environment(config: HttpConfig, settings: Settings) -> dict[str, str]:
    """The settings as ``PARTNER_LEDGER_*`` variables, for the worker processes."""
    env = {
        "PARTNER_LEDGER_DB": settings.db,
        "PARTNER_LEDGER_CONNECT_TIMEOUT_SECONDS": str(settings.connect_timeout_seconds),
        "PARTNER_LEDGER_LOCK_TIMEOUT_SECONDS": str(settings.lock_timeout_seconds),
    }
    for name, value in config:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        env[f"PARTNER_LEDGER_{name.upper()}"] = (
            str(text).lower() if isinstance(text, bool) else str(text)
        )
    return env


@contextmanager
def _metrics_directory() -> Iterator[None]:
    """A scratch PROMETHEUS_MULTIPROC_DIR so a scrape sums all workers' counters."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    directory = tempfile.mkdtemp(prefix="partner-ledger-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        yield
    finally:
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]
        shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="partner-ledger serve", description=__doc__)
    parser.add_argument("--db", help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        settings = Settings(db=args.db) if args.db else Settings()
        return run(args, settings)
    except LedgerError as error:
        print(f"partner-ledger: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
