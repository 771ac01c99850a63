"""The Ledger application: every payload is recorded, a duplicate, or quarantined.

A batch of payloads is handled in one transaction: quarantine rows, new membership events and
their inbox rows commit together or not at all. Duplicate detection reads the inbox first and
relies on its unique indexes at commit time; a concurrent writer that wins the race turns our
commit into an ``IntegrityError``, and the whole batch is tried again from the top (optimistic
concurrency), this time seeing the other writer's rows.

When the store refuses a batch's data (`StoreRefusedError`: a data exception or a limit, which
no retry can cure), the batch is split in halves, each recorded on its own, until the payload
the store refuses is alone: that one is quarantined as ``STORE_REFUSED`` and the others commit.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final, Literal, Protocol, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    JSONTranscoder,
    OperationalError,
    StoredEvent,
    Transcoding,
)
from eventsourcing.utils import Environment, EnvType, strtobool

from domain.audit import AuditStore
from domain.errors import (
    ConfigurationError,
    InvalidNotificationError,
    LedgerError,
    MembershipNotFoundError,
    Reason,
    StorageUnavailableError,
    StoreRefusedError,
)
from domain.heads import decode_head, encode_head
from domain.integrity import GENESIS
from domain.membership import MembershipState, PartnerMembership, membership_id
from domain.notifications import Notification, parse_notification

MAX_ATTEMPTS = 20
TRUST_HEADS_ATTEMPTS = 5


@dataclass(frozen=True)
class Outcome:
    """What became of one payload."""

    status: Literal["recorded", "duplicate", "quarantined"]
    position: int | None = None
    reason: str | None = None
    detail: str | None = None
    quarantine_id: str | None = None


@dataclass(frozen=True)
class InboxRow:
    """One recorded notification; ``previous_hash`` is the membership's chain head before
    this batch (the recorder chains several events of one batch itself)."""

    membership_id: UUID
    version: int
    org_id: int
    customer_id: int
    partner_program_id: int
    previous_hash: str
    fingerprint: str
    event_id: str | None
    occurred_at_ms: int
    recorded_at_us: int


@dataclass(frozen=True)
class HeadRow:
    """A membership's head after this batch (see `domain.membership.Head`), encoded; the
    recorder adds the chain hash of its latest event."""

    membership_id: UUID
    version: int
    head: str


@dataclass(frozen=True)
class QuarantineRow:
    id: str
    raw: bytes
    reason: str
    detail: str
    received_at_us: int
    is_receipt: bool = True


@dataclass(frozen=True)
class Resolution:
    id: str
    resolution: Literal["recorded", "duplicate"]
    resolved_at_us: int


class LedgerStore(AuditStore, Protocol):
    """What the ledger needs from its recorder beyond the library's event storage."""

    def find_recorded(
        self, event_ids: Sequence[str], fingerprints: Sequence[str]
    ) -> tuple[dict[str, str], set[str]]: ...

    def select_streams(
        self, membership_ids: Sequence[UUID], *, up_to: int | None = None
    ) -> dict[UUID, list[tuple[int, StoredEvent]]]: ...

    def chain_heads(self, heads: Sequence[tuple[UUID, int]]) -> dict[UUID, str]: ...

    def select_heads(self, membership_ids: Sequence[UUID]) -> dict[UUID, tuple[int, str, str]]: ...

    def writing(self) -> AbstractContextManager[None]: ...

    def seal(self, items: Sequence[tuple[int, int, dict[str, str]]]) -> list[str | None]: ...

    def unseal(self, org: int, customer: int, sealed: str | None) -> dict[str, str] | None: ...

    def forget(self, org: int, customer: int) -> bool: ...

    def positions(self, membership_id: UUID) -> dict[int, int]: ...

    def membership_ids(self) -> list[UUID]: ...

    def membership_keys(
        self,
        *,
        org_id: int | None = None,
        partner_program_id: int | None = None,
        recorded_from_us: int | None = None,
        recorded_to_us: int | None = None,
        occurred_to_ms: int | None = None,
    ) -> list[UUID]: ...

    def quarantined(self, *, include_resolved: bool = False) -> list[dict[str, Any]]: ...

    def quarantine_entry(self, id_prefix: str) -> list[dict[str, Any]]: ...

    def drop_quarantined(self, ids: Sequence[str], *, why: str, at_us: int) -> list[str]: ...

    def keep_sources(self, sources: dict[str, str]) -> None: ...

    def quarantine_payloads(self, ids: Sequence[str]) -> dict[str, bytes]: ...

    def counts(self) -> dict[str, int]: ...


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class ConcurrencyError(LedgerError):
    """A batch kept losing races with other writers; nothing of it was written."""


def quarantine_id(raw: bytes) -> str:
    """Quarantine entries are addressed by content: the same bytes are one entry."""
    return hashlib.sha256(raw).hexdigest()[:16]


def now_us() -> int:
    return time.time_ns() // 1000


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


class Ledger(Application[UUID]):
    """The partner-membership ledger."""

    name = "PartnerLedger"

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self.conflicts = 0

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

    # --- writing -------------------------------------------------------------------------

    def receive(
        self,
        payloads: Sequence[bytes],
        *,
        received_at_us: int | None = None,
        parsed: Sequence[Notification | InvalidNotificationError] | None = None,
        sources: Sequence[str | None] | str | None = None,
    ) -> list[Outcome]:
        """Record a batch of raw payloads atomically; one outcome per payload, in order.
        ``parsed``: the payloads already parsed by `parse_all` (e.g. in another process).
        ``sources``: where each payload came from (or one for all), kept with quarantine rows."""
        received = received_at_us if received_at_us is not None else now_us()
        if parsed is None:
            parsed = parse_all(payloads)
        elif len(parsed) != len(payloads):
            raise ValueError("one parse result per payload")
        if sources is None or isinstance(sources, str):
            sources = [sources] * len(payloads)
        elif len(sources) != len(payloads):
            raise ValueError("one source per payload")
        outcomes = self._record_with_retry(payloads, parsed, received, resolving=None)
        # Where each quarantined payload came from, noted once the batch has committed (the
        # entry and its bytes are in that commit; a crash before this leaves the source unknown).
        found = {
            outcome.quarantine_id: source
            for outcome, source in zip(outcomes, sources, strict=True)
            if outcome.quarantine_id and source
        }
        if found:
            self.store.keep_sources(found)
        return outcomes

    def _record_with_retry(
        self,
        payloads: Sequence[bytes],
        parsed: Sequence[Notification | InvalidNotificationError],
        received_at_us: int,
        resolving: Sequence[str] | None,
    ) -> list[Outcome]:
        with self.store.writing():
            return self._record_splitting(payloads, parsed, received_at_us, resolving)

    def _record_splitting(
        self,
        payloads: Sequence[bytes],
        parsed: Sequence[Notification | InvalidNotificationError],
        received_at_us: int,
        resolving: Sequence[str] | None,
    ) -> list[Outcome]:
        """Record the batch; if the store refuses its data, record each half on its own
        (bisection), and quarantine a payload that the store refuses alone."""
        try:
            return self._record_attempts(payloads, parsed, received_at_us, resolving)
        except StoreRefusedError as refusal:
            if len(payloads) == 1:
                refused = InvalidNotificationError(
                    Reason.STORE_REFUSED, f"the database refused to store it: {refusal}"
                )
                try:
                    return self._record_attempts(payloads, [refused], received_at_us, resolving)
                except StoreRefusedError as again:
                    raise StorageUnavailableError(
                        f"the database refused a payload even as a quarantine entry: {again}"
                    ) from None
            middle = len(payloads) // 2
            halves = [slice(0, middle), slice(middle, None)]
            return [
                outcome
                for half in halves
                for outcome in self._record_splitting(
                    payloads[half],
                    parsed[half],
                    received_at_us,
                    None if resolving is None else resolving[half],
                )
            ]

    def _record_attempts(
        self,
        payloads: Sequence[bytes],
        parsed: Sequence[Notification | InvalidNotificationError],
        received_at_us: int,
        resolving: Sequence[str] | None,
    ) -> list[Outcome]:
        """The batch in one transaction, tried again while it loses races to other writers."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                # Conflicts are other writers committing the same notifications or
                # appending to the same memberships first: the next attempt sees their rows
                # and heads. Only a head behind its events (appended by a release that kept
                # no heads) keeps conflicting; after a few attempts, read whole histories.
                return self._record_batch(
                    payloads,
                    parsed,
                    received_at_us,
                    resolving,
                    use_heads=attempt < TRUST_HEADS_ATTEMPTS,
                )
            except IntegrityError:
                self.conflicts += 1
                # Jittered backoff, so that writers racing on the same rows fall out of step.
                time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))
            except (OperationalError, InterfaceError) as error:
                raise StorageUnavailableError(f"the event store is unavailable: {error}") from None
        raise ConcurrencyError(f"gave up after {MAX_ATTEMPTS} concurrent-write conflicts")

    def _record_batch(
        self,
        payloads: Sequence[bytes],
        parsed: Sequence[Notification | InvalidNotificationError],
        received_at_us: int,
        resolving: Sequence[str] | None,
        *,
        use_heads: bool,
    ) -> list[Outcome]:
        valid = [item for item in parsed if isinstance(item, Notification)]
        known_ids, known_fingerprints = self.store.find_recorded(
            [n.event_id for n in valid if n.event_id], [n.fingerprint for n in valid]
        )
        decisions = [
            self._classify(item, known_ids, known_fingerprints)
            if isinstance(item, Notification)
            else item
            for item in parsed
        ]
        accepted = [item for item in decisions if isinstance(item, Notification)]
        memberships, hashes = self._load_all(accepted, use_heads=use_heads)
        sealed = dict(
            zip(
                map(id, accepted),
                self.store.seal(
                    [
                        (n.org_id, n.customer_id, n.identifiers.model_dump(exclude_none=True))
                        for n in accepted
                    ]
                ),
                strict=True,
            )
        )
        outcomes: list[Outcome] = []
        pending: list[tuple[PartnerMembership, int]] = []
        quarantine: list[QuarantineRow] = []
        for raw, item in zip(payloads, decisions, strict=True):
            if isinstance(item, InvalidNotificationError):
                row = QuarantineRow(
                    quarantine_id(raw),
                    raw,
                    item.reason,
                    item.detail,
                    received_at_us,
                    is_receipt=resolving is None,
                )
                quarantine.append(row)
                outcomes.append(
                    Outcome(
                        "quarantined", reason=item.reason, detail=item.detail, quarantine_id=row.id
                    )
                )
            elif item is None:
                outcomes.append(Outcome("duplicate"))
            else:
                membership = memberships[membership_id(*item.key)]
                membership.record(item, sealed_identifiers=sealed[id(item)])
                pending.append((membership, membership.version))
                outcomes.append(Outcome("recorded"))
        changed = [m for m in memberships.values() if m.pending_count]
        hashes |= self.store.chain_heads(
            [(m.id, m.version - m.pending_count) for m in changed if m.id not in hashes]
        )
        inbox = [
            _inbox_row(membership, version, hashes.get(membership.id, GENESIS))
            for membership, version in pending
        ]
        heads = [HeadRow(m.id, m.version, encode_head(m.head)) for m in changed]
        resolutions = [
            Resolution(qid, outcome.status, received_at_us)
            for qid, outcome in zip(resolving or (), outcomes, strict=False)
            if outcome.status != "quarantined"
        ]
        recordings = self.save(
            *memberships.values(),
            inbox=inbox,
            heads=heads,
            quarantine=quarantine,
            resolutions=resolutions,
        )
        positions = {
            (r.notification.originator_id, r.notification.originator_version): r.notification.id
            for r in recordings
        }
        recorded = iter(pending)
        return [
            Outcome("recorded", position=positions.get(_version_key(*next(recorded))))
            if outcome.status == "recorded"
            else outcome
            for outcome in outcomes
        ]

    def _classify(
        self, notification: Notification, known_ids: dict[str, str], known_fingerprints: set[str]
    ) -> Notification | InvalidNotificationError | None:
        """The notification to record, a collision to quarantine, or None for a duplicate.
        Updates the known sets so later payloads of the same batch see this one."""
        fingerprint = notification.fingerprint
        event_id = notification.event_id
        if event_id is not None and event_id in known_ids:
            if known_ids[event_id] == fingerprint:
                return None
            return InvalidNotificationError(
                Reason.ID_COLLISION,
                f"eventId {event_id!r} was already recorded with different business content "
                f"(fingerprint {known_ids[event_id][:12]}, this one {fingerprint[:12]})",
            )
        if fingerprint in known_fingerprints:
            return None
        known_fingerprints.add(fingerprint)
        if event_id is not None:
            known_ids[event_id] = fingerprint
        return notification

    def _load_all(
        self, notifications: Sequence[Notification], *, use_heads: bool
    ) -> tuple[dict[UUID, PartnerMembership], dict[UUID, str]]:
        """The memberships these notifications are recorded against, with the chain hash of
        those picked up from their heads. A membership whose notifications here all occurred
        no earlier than its head's latest (and in order) is picked up from its head; any
        other is loaded and folded from its events; one never seen before is new."""
        keys: dict[UUID, tuple[int, int, int]] = {}
        first: dict[UUID, datetime] = {}
        latest: dict[UUID, datetime] = {}
        in_order: dict[UUID, bool] = {}
        for notification in notifications:
            aggregate_id = membership_id(*notification.key)
            at = notification.occurred_at
            keys[aggregate_id] = notification.key
            first.setdefault(aggregate_id, at)
            in_order[aggregate_id] = in_order.get(aggregate_id, True) and at >= latest.get(
                aggregate_id, at
            )
            latest[aggregate_id] = max(latest.get(aggregate_id, at), at)
        memberships: dict[UUID, PartnerMembership] = {}
        hashes: dict[UUID, str] = {}
        stored_heads = self.store.select_heads(list(keys)) if use_heads else {}
        for aggregate_id, (version, text, chain_hash) in stored_heads.items():
            head = decode_head(aggregate_id, version, text)
            if (
                head is not None
                and in_order[aggregate_id]
                and first[aggregate_id] >= head.latest_occurrence
            ):
                memberships[aggregate_id] = PartnerMembership.resume(head)
                hashes[aggregate_id] = chain_hash
        streams = self.store.select_streams([k for k in keys if k not in memberships])
        for aggregate_id, key in keys.items():
            if aggregate_id in memberships:
                continue
            membership: PartnerMembership | None = None
            for _, stored in streams.get(aggregate_id, ()):
                event = cast(PartnerMembership.Event, self.mapper.to_domain_event(stored))
                membership = event.mutate(membership)
            memberships[aggregate_id] = membership or PartnerMembership.new(*key)
        return memberships, hashes

    # --- personal data -------------------------------------------------------------------

    def forget(self, org_id: int, customer_id: int) -> bool:
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
        outcomes = self._record_with_retry(
            payloads,
            parse_all(payloads),
            now_us(),
            resolving=[row["id"] for row in rows],
        )
        return [(row["id"], outcome) for row, outcome in zip(rows, outcomes, strict=True)]

    def drop_quarantined(self, id_prefixes: Sequence[str], *, why: str) -> list[str]:
        """Close entries that are not Capillary's (a pasted file, a test), keeping their
        bytes and a record of when and why they were dropped. Returns the ids dropped."""
        if not why.strip():
            raise LedgerError("say why the entries are dropped (--why TEXT)")
        ids = [self.quarantine_entry(prefix)["id"] for prefix in id_prefixes]
        return self.store.drop_quarantined(
            list(dict.fromkeys(ids)), why=why.strip(), at_us=now_us()
        )

    def quarantine_entry(self, id_prefix: str) -> dict[str, Any]:
        rows = self.store.quarantine_entry(id_prefix)
        if len(rows) != 1:
            problem = "matches no" if not rows else "is ambiguous between several"
            raise LedgerError(f"quarantine id {id_prefix!r} {problem} entries")
        return rows[0]

    # --- reading -------------------------------------------------------------------------

    def membership(
        self, org_id: int, customer_id: int, partner_program_id: int
    ) -> PartnerMembership:
        try:
            return self.repository.get(membership_id(org_id, customer_id, partner_program_id))
        except AggregateNotFoundError:
            raise MembershipNotFoundError(
                f"no membership for org {org_id}, customer {customer_id}, "
                f"partner program {partner_program_id}"
            ) from None

    def memberships(self) -> Iterator[MembershipState]:
        """Every membership's state, sorted by (org, customer, partner program)."""
        states: list[MembershipState] = [
            self.repository.get(mid).state for mid in self.store.membership_ids()
        ]
        yield from sorted(states, key=lambda s: (s.org_id, s.customer_id, s.partner_program_id))


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
        if what is None and key.startswith(f"{Ledger.name.upper()}_"):
            what = "settings named after the application"
        if what is not None and value != "":
            raise ConfigurationError(f"the ledger does not support {what} (library setting {key})")


def _true(value: str) -> bool:
    try:
        return bool(strtobool(value))
    except ValueError:
        return True  # neither true nor false: not a value the ledger can vouch for


def parse_all(payloads: Sequence[bytes]) -> list[Notification | InvalidNotificationError]:
    """Each payload parsed, or the reason it cannot be recorded; fingerprints computed."""
    results = [_parse(raw) for raw in payloads]
    for result in results:
        if isinstance(result, Notification):
            result.fingerprint  # noqa: B018 - computed here, cached on the object
    return results


def _parse(raw: bytes) -> Notification | InvalidNotificationError:
    try:
        return parse_notification(raw)
    except InvalidNotificationError as error:
        return error


def _inbox_row(membership: PartnerMembership, version: int, previous_hash: str) -> InboxRow:
    event = membership.event(version)
    return InboxRow(
        membership_id=membership.id,
        version=version,
        org_id=event.org_id,
        customer_id=event.customer_id,
        partner_program_id=event.partner_program_id,
        previous_hash=previous_hash,
        fingerprint=event.fingerprint,
        event_id=event.source.get("event_id"),
        occurred_at_ms=int(event.occurred_at.timestamp() * 1000),
        recorded_at_us=int(event.timestamp.timestamp() * 1_000_000),
    )


def _version_key(membership: PartnerMembership, version: int) -> tuple[UUID, int]:
    return (membership.id, version)


EXPORT_FIELDS = (
    "org_id",
    "customer_id",
    "partner_program_id",
    "loyalty_program_id",
    "partner_program_name",
    "partner_program_type",
    "status",
    "link_inferred",
    "linked_at",
    "delinked_at",
    "tier_number",
    "tier_expiry_date",
    "tier_expiry_at",
    "membership_number",
    "membership_expiry_date",
    "membership_expiry_at",
    "scheduled_expiry_date",
    "last_update_type",
    "last_reminder_at",
    "event_count",
)


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def membership_record(state: MembershipState) -> dict[str, Any]:
    """A membership as exported: exactly the export keys, JSON-ready."""
    return {name: jsonable(getattr(state, name)) for name in EXPORT_FIELDS}
