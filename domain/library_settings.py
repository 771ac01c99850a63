"""The library settings the ledger can run with, and the transcoding it adds.

The pipeline encodes stored events itself (`domain.encode`), byte for byte as the library's
mapper would with these settings: plain JSON, no compressor, no cipher. A setting that would
change those bytes is refused at start-up (`check_library_settings`).
"""

from __future__ import annotations

from datetime import date
from typing import Final

from eventsourcing.persistence import Transcoding
from eventsourcing.utils import strtobool

from domain.errors import ConfigurationError

APPLICATION_NAME: Final = "PartnerLedger"


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


# What the ledger's recorders support of the library's settings: the two stores, each with
# our own recorder, and events stored as plain JSON (the recorders hash, chain and read the
# stored bytes themselves, and write their rows beside the library's own insert).
PERSISTENCE_MODULES: Final = {
    "eventsourcing.sqlite": "infrastructure.recorders:SQLiteLedgerRecorder",
    "eventsourcing.postgres": "infrastructure.recorders:PostgresLedgerRecorder",
}
UNSUPPORTED_SETTINGS: Final = {
    "COMPRESSOR_TOPIC": "compressed events",
    "CIPHER_TOPIC": "encrypted events (identifiers are sealed per customer instead)",
    "CIPHER_KEY": "encrypted events (identifiers are sealed per customer instead)",
    "TRANSCODER_TOPIC": "another transcoder",
    "MAPPER_TOPIC": "another mapper",
    "POSTGRES_SCHEMA": "another PostgreSQL schema",
    "POSTGRES_GET_PASSWORD_TOPIC": "a password function",
    "TRACKING_RECORDER_TOPIC": "a tracking recorder",
    "PROCESS_RECORDER_TOPIC": "a process recorder",
    "INFRASTRUCTURE_FACTORY": "another persistence module",
    "FACTORY_TOPIC": "another persistence module",
}
UNSUPPORTED_FLAGS: Final = {
    "POSTGRES_ENABLE_DB_FUNCTIONS": "PostgreSQL functions for the insert (they bypass the "
    "inbox, heads and quarantine)",
    "IS_SNAPSHOTTING_ENABLED": "snapshots",
}


def check_library_settings(env: dict[str, str]) -> None:
    """Refuse, with one sentence, library settings the ledger's recorders do not support."""
    module = env.get("PERSISTENCE_MODULE", "")
    if module not in PERSISTENCE_MODULES:
        raise ConfigurationError(
            f"the ledger cannot use the persistence module {module or '(none)'!r}: "
            "it stores events in SQLite or PostgreSQL only"
        )
    recorder = env.get("APPLICATION_RECORDER_TOPIC")
    if recorder != PERSISTENCE_MODULES[module]:
        raise ConfigurationError(
            f"the ledger cannot use the application recorder {recorder!r}: "
            f"{module} needs {PERSISTENCE_MODULES[module]}"
        )
    for key, value in sorted(env.items()):
        what = UNSUPPORTED_SETTINGS.get(key)
        if what is None and key in UNSUPPORTED_FLAGS and _true(value):
            what = UNSUPPORTED_FLAGS[key]
        if what is None and key.startswith(f"{APPLICATION_NAME.upper()}_"):
            what = "settings named after the application"
        if what is not None and value != "":
            raise ConfigurationError(f"the ledger does not support {what} (library setting {key})")


def _true(value: str) -> bool:
    try:
        return bool(strtobool(value))
    except ValueError:
        return True  # neither true nor false: not a value the ledger can vouch for
