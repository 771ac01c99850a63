"""The encode stage: stored events made directly from an event's values.

The bytes, topic and ``class_version`` are exactly what the library's mapper writes for the
same `PartnerMembership` event object (the transcoder's bytes, written cheaper by
`domain.json_bytes`; the fields in the event class's own order), so the library reads, upcasts
and projects them unchanged. The ledger refuses a compressor or a cipher at start-up
(`domain.library_settings`); the encoder refuses them too.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic

from domain.errors import ConfigurationError
from domain.json_bytes import LibraryJSON
from domain.membership import PartnerMembership
from domain.notifications import Kind

EVENT_CLASSES: Final[dict[Kind, type[PartnerMembership.Recorded]]] = {
    Kind.LINKED: PartnerMembership.Linked,
    Kind.UPDATED: PartnerMembership.Updated,
    Kind.DELINKED: PartnerMembership.Delinked,
    Kind.REMINDED: PartnerMembership.ExpiryReminded,
}
_ORIGINATOR: Final = ("originator_id", "originator_version")


class EventEncoder:
    """Stored events for `PartnerMembership` events, without the event objects."""

    def __init__(self, mapper: Mapper[UUID]) -> None:
        if mapper.compressor is not None or mapper.cipher is not None:
            raise ConfigurationError(
                "the ledger encodes stored events as plain JSON: it cannot compress or encrypt them"
            )
        self.json = LibraryJSON(mapper.transcoder)
        self.layouts = {
            kind: (
                get_topic(cls),
                tuple(f.name for f in dataclasses.fields(cls) if f.name not in _ORIGINATOR),
                getattr(cls, "class_version", 1),
            )
            for kind, cls in EVENT_CLASSES.items()
        }

    def encode(
        self, kind: Kind, membership_id: UUID, version: int, values: dict[str, Any]
    ) -> StoredEvent:
        """The stored event of kind ``kind`` with ``values`` (all its fields but the
        originator id and version)."""
        topic, names, class_version = self.layouts[kind]
        state = {name: values[name] for name in names}
        if class_version > 1:
            state["class_version"] = class_version
        return StoredEvent(
            originator_id=membership_id,
            originator_version=version,
            topic=topic,
            state=self.json.encode(state),
        )
