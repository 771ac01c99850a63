"""The Ledger application: every payload is recorded, a duplicate, or quarantined.

A batch of payloads is handled in one transaction by the write pipeline (`domain.batch`):
quarantine rows, new membership events, their inbox rows, snapshots and new customer keys commit
together or not at all; `domain.writing` tries a batch again while it loses races to other
writers, and splits it while the store refuses its data.

The aggregate (`PartnerMembership`) stays the reference model of the rules: reading folds its
events; the pipeline folds plain values the same way (a property test holds them equal).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import JSONTranscoder
from eventsourcing.utils import Environment, EnvType

from domain.batch import Clock, Pipeline
from domain.decode import parse_all
from domain.encode import EventEncoder
from domain.errors import (
    ConcurrencyError,
    ConfigurationError,
    InvalidNotificationError,
    LedgerError,
    MembershipNotFoundError,
)
from domain.export import EXPORT_FIELDS, iso, jsonable, membership_record
from domain.library_settings import (
    APPLICATION_NAME,
    PERSISTENCE_MODULES,
    UNSUPPORTED_FLAGS,
    UNSUPPORTED_SETTINGS,
    DateAsISO,
    check_library_settings,
)
from domain.membership import MembershipKey, PartnerMembership, membership_id
from domain.notifications import Notification
from domain.ports import LedgerStore
from domain.rows import InboxRow, Outcome, QuarantineRow, Resolution, SnapshotRow, quarantine_id
from domain.writing import Attempts, Batch, BatchWriter


class Ledger(Application[UUID]):
    """The partner-membership ledger. ``clock`` and ``attempts`` come from the edge
    (`infrastructure.wiring.open_ledger`): the domain keeps no clock and no back-off."""

    name = APPLICATION_NAME

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        clock: Clock | None = None,
        attempts: Attempts | None = None,
    ) -> None:
        super().__init__(env)
        self._clock = clock
        self._attempts = attempts
        self.encoder = EventEncoder(self.mapper)

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        """The library's settings from ``env`` alone. The library's own version merges the
        whole process environment (``PARTNERLEDGER_SQLITE_DBNAME``, ``COMPRESSOR_TOPIC``...)
        over what the validated settings rendered; here nothing but ``env`` counts, and a
        setting our recorders do not support is refused (`ConfigurationError`)."""
        given = dict(env or {})
        check_library_settings(given)
        return Environment(name, given)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    @property
    def store(self) -> LedgerStore:
        return self.recorder  # type: ignore[return-value]

    @property
    def conflicts(self) -> int:
        """Batches tried again after losing a race to another writer."""
        return self._attempts.conflicts if self._attempts is not None else 0

    @property
    def clock(self) -> Clock:
        if self._clock is None:
            raise ConfigurationError("this ledger was opened without a clock: it cannot record")
        return self._clock

    # --- writing -------------------------------------------------------------------------

    def receive(
        self,
        payloads: Sequence[bytes],
        *,
        received_at_us: int | None = None,
        parsed: Sequence[Notification | InvalidNotificationError] | None = None,
        sources: Sequence[str | None] | str | None = None,
        update_views: bool = False,
    ) -> list[Outcome]:
        """Record a batch of raw payloads atomically; one outcome per payload, in order.
        ``parsed``: the payloads already parsed by `parse_all` (e.g. in another process).
        ``sources``: where each payload came from (or one for all), kept with quarantine rows.
        ``update_views``: the views that stand at the log's head move with the batch, in its
        transaction (the doors ask for it); the others are left to catch up, as always."""
        received = received_at_us if received_at_us is not None else _micros(self.clock())
        if parsed is None:
            parsed = parse_all(payloads)
        elif len(parsed) != len(payloads):
            raise ValueError("one parse result per payload")
        if sources is None or isinstance(sources, str):
            sources = [sources] * len(payloads)
        elif len(sources) != len(payloads):
            raise ValueError("one source per payload")
        return self._record_locked(
            Batch(payloads, parsed, received, update_views=update_views, sources=sources)
        )

    def _record_locked(self, batch: Batch) -> list[Outcome]:
        if self._attempts is None:
            raise ConfigurationError("this ledger was opened without a retry policy")
        writer = BatchWriter(
            Pipeline(self.store, self.mapper.to_domain_event, self.encoder, self.clock),
            self._attempts,
        )
        with self.store.writing():
            return writer.record(batch)

    # --- personal data -------------------------------------------------------------------

    def forget(self, *, org_id: int, customer_id: int) -> bool:
        """Make the customer's identifiers unreadable in every event, for good (crypto-
        shredding); state, history, counts and hash chains are untouched. True if the ledger
        held identifiers of that customer."""
        return self.store.forget(org_id, customer_id)

    # --- quarantine ----------------------------------------------------------------------

    def replay_quarantined(
        self, id_prefixes: Sequence[str] | None = None
    ) -> list[tuple[str, Outcome]]:
        """Parse quarantined payloads again (after a fix) and record those that now pass.
        With no ids, replays every open entry."""
        if id_prefixes:
            rows = [self.quarantine_entry(prefix) for prefix in id_prefixes]
        else:
            rows = [self.quarantine_entry(row["id"]) for row in self.store.quarantined()]
        if not rows:
            return []
        payloads = [row["raw"] for row in rows]
        outcomes = self._record_locked(
            Batch(
                payloads,
                parse_all(payloads),
                _micros(self.clock()),
                resolving=[row["id"] for row in rows],
            )
        )
        return [(row["id"], outcome) for row, outcome in zip(rows, outcomes, strict=True)]

    def drop_quarantined(self, id_prefixes: Sequence[str], *, why: str) -> list[str]:
        """Close entries that are not Capillary's (a pasted file, a test), keeping their
        bytes and a record of when and why they were dropped. Returns the ids dropped."""
        if not why.strip():
            raise LedgerError("say why the entries are dropped (--why TEXT)")
        ids = [self.quarantine_entry(prefix)["id"] for prefix in id_prefixes]
        return self.store.drop_quarantined(
            list(dict.fromkeys(ids)), why=why.strip(), at_us=_micros(self.clock())
        )

    def quarantine_entry(self, id_prefix: str) -> dict[str, Any]:
        rows = self.store.quarantine_entry(id_prefix)
        if len(rows) != 1:
            problem = "matches no" if not rows else "is ambiguous between several"
            raise LedgerError(f"quarantine id {id_prefix!r} {problem} entries")
        return rows[0]

    # --- reading -------------------------------------------------------------------------

    def membership(self, key: MembershipKey) -> PartnerMembership:
        try:
            return self.repository.get(membership_id(key))
        except AggregateNotFoundError:
            raise MembershipNotFoundError(
                f"no membership for org {key.org_id}, customer {key.customer_id}, "
                f"partner program {key.partner_program_id}"
            ) from None


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


__all__ = [
    "EXPORT_FIELDS",
    "PERSISTENCE_MODULES",
    "UNSUPPORTED_FLAGS",
    "UNSUPPORTED_SETTINGS",
    "Attempts",
    "ConcurrencyError",
    "DateAsISO",
    "InboxRow",
    "Ledger",
    "LedgerStore",
    "Outcome",
    "QuarantineRow",
    "Resolution",
    "SnapshotRow",
    "check_library_settings",
    "iso",
    "jsonable",
    "membership_record",
    "parse_all",
    "quarantine_id",
]
