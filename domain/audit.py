"""Audit: prove the stored history is what was written, and keep the log digest's checkpoints.

`Auditor.verify` recomputes every membership's hash chain from the stored bytes and the log
digest from the chain hashes, and names each break: which membership, which version and
position, the expected and the found hash. `Auditor.checkpoint` extends the stored digest
checkpoints (one every ``CHECKPOINT_EVERY`` events); `Auditor.digest` gives ``DIGEST@POSITION``
for an operator to publish elsewhere, and `Auditor.verify_against` checks such an anchor.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol
from uuid import UUID

from domain.integrity import GENESIS, Break, chain_hash, next_digest
from domain.keys import MembershipKey

CHECKPOINT_EVERY = 1000
PAGE = 5000


class AuditStore(Protocol):
    def chain_rows(self, *, after: tuple[UUID, int] | None, limit: int) -> list[dict[str, Any]]: ...

    def orphan_inbox_rows(self) -> list[dict[str, Any]]: ...

    def mismatched_snapshots(self) -> list[dict[str, Any]]: ...

    def log_rows(self, *, after: int, up_to: int | None, limit: int) -> list[tuple[int, str]]: ...

    def checkpoints(self) -> list[dict[str, Any]]: ...

    def add_checkpoints(self, rows: Sequence[tuple[int, int, str]]) -> None: ...


class Auditor:
    def __init__(self, store: AuditStore, *, checkpoint_every: int = CHECKPOINT_EVERY) -> None:
        self.store = store
        self.checkpoint_every = checkpoint_every

    # --- chains --------------------------------------------------------------------------

    def verify(self) -> list[Break]:
        """Every break in every chain and in the digest checkpoints; empty when intact."""
        return [*self._chain_breaks(), *self._snapshot_breaks(), *self._checkpoint_breaks()]

    def _snapshot_breaks(self) -> Iterator[Break]:
        """A membership snapshot (what the next write resumes from) must sit on the
        membership's last event: same version, same chain hash (the code keeps its stored
        name, ``HEAD_MISMATCH``)."""
        for row in self.store.mismatched_snapshots():
            yield Break(
                "HEAD_MISMATCH",
                "the membership's head is not at its last recorded event",
                membership=_key(row),
                membership_id=str(UUID(str(row["originator_id"]))),
                version=row["originator_version"],
                expected=row["inbox_hash"],
                found=row["hash"],
            )

    def _chain_breaks(self) -> Iterator[Break]:
        orphans = {
            (UUID(str(r["originator_id"])), r["originator_version"]): r
            for r in self.store.orphan_inbox_rows()
        }
        for (membership, version), row in orphans.items():
            yield Break(
                "EVENT_MISSING",
                "the event was deleted from the event store",
                membership=_key(row),
                membership_id=str(membership),
                version=version,
                expected=row["hash"],
            )
        current: UUID | None = None
        last_hash, expected_version = GENESIS, 1
        for row in self._all_chain_rows():
            membership, version = UUID(str(row["originator_id"])), row["originator_version"]
            if membership != current:
                current, last_hash, expected_version = membership, GENESIS, 1
            for gone in range(expected_version, version):
                if (membership, gone) not in orphans:
                    yield Break(
                        "EVENT_MISSING",
                        "the event and its inbox row were deleted",
                        membership_id=str(membership),
                        version=gone,
                    )
            expected_version = version + 1
            where = {
                "membership": _key(row),
                "membership_id": str(membership),
                "version": version,
                "position": row["position"],
            }
            yield from _link_breaks(row, membership, last_hash, where)
            if row["hash"] is not None:
                last_hash = row["hash"]

    def _all_chain_rows(self) -> Iterator[dict[str, Any]]:
        after: tuple[UUID, int] | None = None
        while True:
            rows = self.store.chain_rows(after=after, limit=PAGE)
            yield from rows
            if len(rows) < PAGE:
                return
            after = (UUID(str(rows[-1]["originator_id"])), rows[-1]["originator_version"])

    # --- the log digest ------------------------------------------------------------------

    def _log(self, *, after: int = 0, up_to: int | None = None) -> Iterator[tuple[int, str]]:
        while True:
            rows = self.store.log_rows(after=after, up_to=up_to, limit=PAGE)
            yield from rows
            if len(rows) < PAGE:
                return
            after = rows[-1][0]

    def digest(self, up_to: int | None = None) -> tuple[str, int, int]:
        """The log digest at ``up_to`` (default: the last position): (digest, position, events)."""
        digest, position, events = GENESIS, 0, 0
        for position, event_hash in self._log(up_to=up_to):
            digest = next_digest(digest, position=position, event_hash=event_hash)
            events += 1
        return digest, position, events

    def verify_against(self, digest: str, position: int) -> list[Break]:
        """Check a published ``DIGEST@POSITION``."""
        found, reached, _ = self.digest(up_to=position)
        if reached != position and position > (last_position := self.digest()[1]):
            return [
                Break(
                    "BEYOND_HEAD",
                    f"the digest names position {position}, beyond the log's head at "
                    f"{last_position}: it is from another ledger, or events were removed",
                    position=position,
                )
            ]
        if reached != position:
            return [
                Break(
                    "DIGEST_MISMATCH",
                    f"the log has no event at position {position} "
                    f"(it ends at {reached} up to there)",
                    position=position,
                    expected=digest,
                    found=found,
                )
            ]
        if found != digest:
            return [
                Break(
                    "DIGEST_MISMATCH",
                    f"the log up to position {position} changed",
                    position=position,
                    expected=digest,
                    found=found,
                )
            ]
        return []

    def checkpoint(self) -> int:
        """Extend the stored checkpoints to the log's last position; returns how many were added."""
        stored = self.store.checkpoints()
        digest, after, events = GENESIS, 0, 0
        if stored:
            last = stored[-1]
            digest, after, events = last["digest"], last["position"], last["events"]
        added: list[tuple[int, int, str]] = []
        for position, event_hash in self._log(after=after):
            digest = next_digest(digest, position=position, event_hash=event_hash)
            events += 1
            if events % self.checkpoint_every == 0:
                added.append((position, events, digest))
        if added:
            self.store.add_checkpoints(added)
        return len(added)

    def uncheckpointed(self) -> int:
        """How many events of the log come after the last stored checkpoint."""
        stored = self.store.checkpoints()
        after = stored[-1]["position"] if stored else 0
        return sum(1 for _ in self._log(after=after))

    def _checkpoint_breaks(self) -> Iterator[Break]:
        stored = self.store.checkpoints()
        if not stored:
            return
        digest, previous = GENESIS, 0
        log = self._log()
        pending: tuple[int, str] | None = None
        for checkpoint in stored:
            while True:
                item = pending or next(log, None)
                pending = None
                if item is None or item[0] > checkpoint["position"]:
                    pending = item
                    break
                digest = next_digest(digest, position=item[0], event_hash=item[1])
            if digest != checkpoint["digest"]:
                yield Break(
                    "DIGEST_MISMATCH",
                    f"the log between positions {previous} and "
                    f"{checkpoint['position']} changed (deleted, inserted, reordered "
                    "or rewritten events)",
                    position=checkpoint["position"],
                    expected=checkpoint["digest"],
                    found=digest,
                )
                digest = checkpoint["digest"]  # re-anchor, to place later breaks precisely
            previous = checkpoint["position"]


def _link_breaks(
    row: dict[str, Any], membership: UUID, last_hash: str, where: dict[str, Any]
) -> Iterator[Break]:
    """One chained event's breaks: untracked, not continuing from ``last_hash`` (the hash of
    the membership's event before), or not what was written."""
    if row["hash"] is None:
        yield Break("UNTRACKED_EVENT", "an event the ledger never recorded", **where)
        return
    if row["previous_hash"] != last_hash:
        yield Break(
            "LINK_BROKEN",
            "the chain does not continue from the event before",
            expected=last_hash,
            found=row["previous_hash"],
            **where,
        )
    recomputed = chain_hash(
        row["previous_hash"],
        membership_id=membership,
        version=row["originator_version"],
        topic=row["topic"],
        state=bytes(row["state"]),
    )
    if recomputed != row["hash"]:
        yield Break(
            "CONTENT_CHANGED",
            "the stored event is not what was written",
            expected=row["hash"],
            found=recomputed,
            **where,
        )


def _key(row: dict[str, Any]) -> MembershipKey | None:
    if row.get("org_id") is None:
        return None
    return MembershipKey(
        int(row["org_id"]), int(row["customer_id"]), int(row["partner_program_id"])
    )
