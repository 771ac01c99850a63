"""Settings: one validated object, built at the edge and passed in.

``--db`` (or ``PARTNER_LEDGER_DB``) selects the store:

- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (the default is
  ``sqlite:///ledger.db`` in the working directory);
- ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME``.

`Settings.eventsourcing_env` renders the environment the ``eventsourcing`` library reads, and
it is all the library reads: `domain.ledger.Ledger` never merges the process environment
(``COMPRESSOR_TOPIC``, ``POSTGRES_ENABLE_DB_FUNCTIONS``, ``PARTNERLEDGER_SQLITE_DBNAME``... in
it change nothing) and refuses library settings its recorders do not support.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.errors import ConfigurationError

DEFAULT_DB = "sqlite:///ledger.db"


class Settings(BaseSettings):
    """Everything the ledger can be told from outside."""

    model_config = SettingsConfigDict(env_prefix="PARTNER_LEDGER_", extra="ignore")

    db: str = DEFAULT_DB
    connect_timeout_seconds: int = 5
    lock_timeout_seconds: int = 10

    @field_validator("db")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        database_env(value, connect_timeout=5, lock_timeout=10)
        return value

    @property
    def is_postgres(self) -> bool:
        return self.db.startswith(("postgresql://", "postgres://"))

    @property
    def display_db(self) -> str:
        """The database URL without its password, fit for messages and logs."""
        return _redacted(self.db)

    def eventsourcing_env(self) -> dict[str, str]:
        return database_env(
            self.db,
            connect_timeout=self.connect_timeout_seconds,
            lock_timeout=self.lock_timeout_seconds,
        )


def database_env(url: str, *, connect_timeout: int, lock_timeout: int) -> dict[str, str]:
    """The eventsourcing environment for a database URL, or `ConfigurationError`."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)[1:] if parts.path.startswith("/") else ""
        if parts.netloc or not path:
            raise ConfigurationError(
                f"cannot use database URL {url!r}: write sqlite:///relative.db or "
                "sqlite:////absolute/path.db"
            )
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(Path(path)),
            "SQLITE_LOCK_TIMEOUT": str(max(lock_timeout, 30)),
            "APPLICATION_RECORDER_TOPIC": "infrastructure.recorders:SQLiteLedgerRecorder",
        }
    if parts.scheme in ("postgresql", "postgres"):
        dbname = unquote(parts.path.lstrip("/"))
        if not parts.hostname or not dbname:
            raise ConfigurationError(
                f"cannot use database URL {_redacted(url)!r}: write "
                "postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME"
            )
        try:
            port = parts.port or 5432
        except ValueError:
            raise ConfigurationError(f"the port in {_redacted(url)!r} is not a number") from None
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": parts.hostname,
            "POSTGRES_PORT": str(port),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_CONNECT_TIMEOUT": str(connect_timeout),
            "POSTGRES_LOCK_TIMEOUT": str(lock_timeout),
            "POSTGRES_POOL_SIZE": "2",
            "POSTGRES_MAX_OVERFLOW": "8",
            "APPLICATION_RECORDER_TOPIC": "infrastructure.recorders:PostgresLedgerRecorder",
        }
    raise ConfigurationError(
        f"cannot use database URL {_redacted(url)!r}: it must start with sqlite:/// or "
        "postgresql://"
    )


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
