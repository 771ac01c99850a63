"""The fields of the event recorded for a notification: what the aggregate triggers and the
write pipeline folds and encodes (`PartnerMembership.Recorded` declares them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.notifications import Kind, Notification


def event_fields(notification: Notification) -> dict[str, Any]:
    """The recorded event's fields for ``notification`` (all but the recording time, the
    anomalies and the sealed identifiers), its kind's own field included."""
    fields: dict[str, Any] = {
        "org_id": notification.org_id,
        "customer_id": notification.customer_id,
        "partner_program_id": notification.partner_program_id,
        "occurred_at": notification.occurred_at,
        "delivered_at": None
        if notification.delivered_at_ms is None
        else datetime.fromtimestamp(notification.delivered_at_ms / 1000, tz=UTC),
        "loyalty_program_id": notification.loyalty_program_id,
        "partner_program_name": notification.partner_program_name,
        "partner_program_type": notification.partner_program_type,
        "details": notification.details.present(),
        "expiry_instants": {
            name: None if millis is None else datetime.fromtimestamp(millis / 1000, tz=UTC)
            for name, millis in notification.expiry_instants.present().items()
        },
        "fingerprint": notification.fingerprint,
        "source": {
            "event_name": notification.event_name,
            "event_id": notification.event_id,
            "ref_id": notification.ref_id,
            "api_request_id": notification.api_request_id,
            "shape": notification.shape.value,
        },
    }
    if notification.kind is Kind.UPDATED:
        fields["update_type"] = notification.update_type
    elif notification.kind is Kind.REMINDED:
        fields["scheduled_expiry_date"] = notification.scheduled_expiry_date
    return fields
