"""The values that are noted, never quarantined: delivery time, expiry instants, the entity id
and the customer identifiers. An unreadable one adds an anomaly and is left out; the payload
is recorded all the same."""

from __future__ import annotations

from typing import Any, Final

from pydantic_core import PydanticCustomError

from domain.notifications.fields import LATEST_INSTANT_MS, epoch_millis, integer

# The expiry instants, and the detail (date) each one stands beside.
INSTANT_KEYS: Final = {
    "partnerTierExpiryDateInMillis": ("tier_expiry_at", "tier_expiry_date"),
    "membershipExpiryDateInMillis": ("membership_expiry_at", "membership_expiry_date"),
}


def expiry_instants(cpd: dict[str, Any], anomalies: list[str]) -> dict[str, int | None]:
    """The ``...InMillis`` instants present. Like the delivery time they never quarantine a
    payload: an unreadable one is noted (``BAD_EXPIRY_MILLIS``) and left out."""
    instants: dict[str, int | None] = {}
    for key, (name, _) in INSTANT_KEYS.items():
        if key not in cpd:
            continue
        value = cpd[key]
        if value is None or value == "":
            instants[name] = None
            continue
        try:
            millis = integer(value, minimum=0)
        except PydanticCustomError:
            millis = None
        if millis is None or millis >= LATEST_INSTANT_MS:
            anomalies.append("BAD_EXPIRY_MILLIS")
        else:
            instants[name] = millis
    return instants


def delivery_time(value: Any, anomalies: list[str]) -> int | None:
    """Shape A's ``timeStamp``: when Capillary delivered the notification. Delivery metadata,
    so an unreadable one is noted, never a reason to quarantine."""
    if value is None:
        return None
    try:
        return epoch_millis(value)
    except PydanticCustomError:
        anomalies.append("BAD_DELIVERY_TIME")
        return None


def entity_agrees(left: Any, right: Any) -> bool:
    """True when both are the same integer (``entityInformation.entityId`` and the customer)."""
    try:
        return integer(left, minimum=0) == integer(right, minimum=0)
    except PydanticCustomError:
        return False


def identifiers(instore: dict[str, Any]) -> dict[str, str]:
    found = {
        "mobile": instore.get("mobile"),
        "email": instore.get("email"),
        "external_id": instore.get("externalId"),
    }
    identifiers = {
        k: str(v)
        for k, v in found.items()
        if isinstance(v, (str, int)) and not isinstance(v, bool) and v != ""
    }
    if "mobile" in identifiers:
        identifiers["mobile"] = "".join(identifiers["mobile"].split())
    return identifiers
