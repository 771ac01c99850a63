"""``partner-ledger serve``: the HTTP service on uvicorn, one ledger per worker process.

Flags override the environment (``PARTNER_LEDGER_WEBHOOK_HEADER``, ``_WEBHOOK_SECRETS``,
``_READ_TOKEN``, ``_OPERATOR_TOKEN``, ``_MAX_BODY_BYTES``, ``_SIGNING_SECRET``,
``_DRAIN_SECONDS``). Prefer the environment for secrets: command lines are visible to every
user of the machine.

Also runnable as ``python -m infrastructure.http.serve [--db URL] [flags]``.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr, ValidationError

from domain.errors import ConfigurationError, LedgerError
from infrastructure.http.config import HttpConfig
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
)


def add_serve_command(commands: Any) -> argparse.ArgumentParser:
    """Register ``serve`` on the CLI's subparsers. Its ``serve`` default is called as
    ``args.serve(args, settings)``: the service opens its own ledger in each worker."""
    serve: argparse.ArgumentParser = commands.add_parser(
        "serve", help="receive webhooks and answer queries over HTTP"
    )
    add_arguments(serve)
    serve.set_defaults(serve=run)
    return serve


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
        help="on SIGTERM, answer 503 for this long before closing the listener (default 0)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Check the configuration and the database, then serve until SIGTERM or SIGINT."""
    import uvicorn  # here, not at the top: every other CLI command would pay for it

    config = _config(args)
    config.check()
    with open_ledger(settings):
        pass  # reachable, tables created once: workers then start on a ready database
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_config": _log_config(),
        "access_log": False,
        "server_header": False,
        "timeout_graceful_shutdown": int(
            config.commit_timeout_seconds + config.read_wait_seconds + 5
        ),
    }
    if args.workers <= 1:
        from infrastructure.http.app import create_app

        uvicorn.run(create_app(config, settings), **options)
        return 0
    os.environ.update(_environment(config, settings))
    with _metrics_directory():
        _run_workers(
            uvicorn.Config(
                "infrastructure.http.app:app_from_environment",
                factory=True,
                workers=args.workers,
                **options,
            )
        )
    return 0


def _run_workers(config: uvicorn.Config) -> None:
    """What ``uvicorn.run`` does for several workers, but with the listener bound as a TCP
    socket: uvicorn binds it with ``proto`` 0, so asyncio never sets TCP_NODELAY on accepted
    connections and every keep-alive response after the first waits ~40 ms for a delayed ACK
    (uvicorn issue #3149, open in 0.54)."""
    from uvicorn.supervisors import Multiprocess

    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((config.host, config.port))
    except OSError as error:
        raise ConfigurationError(f"cannot listen on {config.host}:{config.port}: {error}") from None
    listener.set_inheritable(True)
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on http://%s:%d with %d workers", config.host, config.port, config.workers
    )
    try:
        Multiprocess(config, sockets=[listener]).run()
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()


def _config(args: argparse.Namespace) -> HttpConfig:
    overrides = {name: getattr(args, name) for name in FLAGS if getattr(args, name) is not None}
    if getattr(args, "drain_seconds", None) is not None:
        overrides["drain_seconds"] = args.drain_seconds
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


def _log_config() -> dict[str, Any]:
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["partner_ledger"] = {
        "handlers": ["default"],
        "level": "INFO",
        "propagate": False,
    }
    return config


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
