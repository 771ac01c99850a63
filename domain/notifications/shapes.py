"""Shape extraction: the fields of a notification picked out of whichever shape it came in.

Every object the reader opens (the body, ``attributes``, ``data``, ``customerIdentifiers``,
``instore``, ``customerPartnerProgramDetails``, ``entityInformation``) is cleaned first: its
keys and string values stripped. What is absent, of the wrong JSON type or of an unknown event
raises `InvalidNotificationError`; the values themselves are validated afterwards, by the
models or the fast path. Payload key names live here and in the sentences built from them.
"""

from __future__ import annotations

import re
from typing import Any, Final

from domain.errors import InvalidNotificationError, Reason
from domain.notifications.exact_json import UNSTORABLE
from domain.notifications.fields import shown
from domain.notifications.lenient import delivery_time, entity_agrees, expiry_instants, identifiers
from domain.notifications.model import EVENT_KINDS, RENEWAL_JOB, Kind, Shape

_ORG_PREFIX = re.compile(r"^\d+_")


def json_type(value: Any) -> str:
    names = {list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


class Reading:
    """One payload being read: the anomalies found so far, and whether its text still needs
    checking for characters that cannot be stored."""

    def __init__(self, *, check_text: bool) -> None:
        self.anomalies: list[str] = []
        self.check_text = check_text

    def clean(self, value: dict[str, Any]) -> dict[str, Any]:
        """Strip whitespace around the keys and string values of one object. The parser
        cleans every object it reads, at whatever depth, and never looks at the others (a raw
        event-log payload carries large profile trees that the ledger does not keep)."""
        if self.check_text:
            _check_storable(value)
        stripped: dict[str, Any] = {}
        for key, item in value.items():
            clean = key.strip()
            if clean in stripped:
                # Two keys that differ only in whitespace: the first one wins.
                self.anomalies.append("KEY_COLLISION")
                continue
            if type(item) is str:  # not a LongNumber or DecimalNumber, kept as sent
                item = item.strip()
            stripped[clean] = item
        return stripped


def _check_storable(value: dict[str, Any]) -> None:
    for key, item in value.items():
        if UNSTORABLE.search(key):
            raise InvalidNotificationError(
                Reason.BAD_VALUE,
                f"the key {shown(key)} holds a NUL or an unpaired surrogate escape",
            )
        if isinstance(item, str) and UNSTORABLE.search(item):
            raise InvalidNotificationError(
                Reason.BAD_VALUE,
                f"the text {shown(item)} holds a NUL or an unpaired surrogate escape",
            )


def _event_name(body: dict[str, Any], envelope: dict[str, Any], prefix: str) -> str:
    name = envelope.get("eventName") or body.get("eventName")
    if name is None and isinstance(body.get("eventType"), str):
        name = _ORG_PREFIX.sub("", body["eventType"])
    if name is None or name == "":
        raise InvalidNotificationError(Reason.MISSING_FIELD, f"{prefix}eventName is absent")
    if not isinstance(name, str) or name not in EVENT_KINDS:
        raise InvalidNotificationError(
            Reason.UNKNOWN_EVENT,
            f"{prefix}eventName {shown(name)} is not one of {', '.join(EVENT_KINDS)}",
        )
    return name


def _shape(body: dict[str, Any]) -> Shape:
    if isinstance(body.get("attributes"), dict):
        return Shape.A
    if "eventLogId" in body or "traceAttributes" in body:
        return Shape.R
    if "eventSearchKey" in body:
        return Shape.C
    return Shape.B


def _object(parent: dict[str, Any], key: str, path: str, reading: Reading) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidNotificationError(
            Reason.BAD_VALUE, f"{path} is a JSON {json_type(value)}, not an object"
        )
    return reading.clean(value)


_DETAIL_KEYS: Final = {
    "partnerTierNumber": "tier_number",
    "partnerTierExpiryDate": "tier_expiry_date",
    "membershipNumber": "membership_number",
    "membershipExpiryDate": "membership_expiry_date",
}


_PATHS: Final = {
    "org_id": "orgId",
    "occurred_at_ms": "createdAt",
    "customer_id": "data.customerIdentifiers.customerId",
    "partner_program_id": "data.partnerProgramId",
    "loyalty_program_id": "data.loyaltyProgramId",
    "partner_program_name": "data.partnerProgramName",
    "partner_program_type": "data.partnerProgramType",
    "update_type": "data.updateType",
    "scheduled_expiry_date": "data.scheduledExpiryDate",
    "ref_id": "refId",
    "api_request_id": "apiRequestId",
    "identifiers.mobile": "data.customerIdentifiers.instore.mobile",
    "identifiers.email": "data.customerIdentifiers.instore.email",
    "identifiers.external_id": "data.customerIdentifiers.instore.externalId",
    **{
        f"details.{name}": f"data.customerPartnerProgramDetails.{key}"
        for key, name in _DETAIL_KEYS.items()
    },
}


def payload_path(field: str, prefix: str) -> str:
    """Where a field was read in the payload, for error sentences (``eventId`` is read at the
    top level in every shape)."""
    if field == "event_id":
        return "eventId"
    return prefix + _PATHS[field] if field in _PATHS else field


def extract(body: dict[str, Any], reading: Reading) -> tuple[dict[str, Any], str]:
    """Pick the fields out of whichever shape this is; return them with the prefix of their
    payload paths."""
    shape = _shape(body)
    anomalies = reading.anomalies
    envelope, prefix = (
        (reading.clean(body["attributes"]), "attributes.") if shape is Shape.A else (body, "")
    )
    event_name = _event_name(body, envelope, prefix)
    data = _object(envelope, "data", f"{prefix}data", reading)
    customer = _object(data, "customerIdentifiers", f"{prefix}data.customerIdentifiers", reading)
    instore = _object(customer, "instore", f"{prefix}data.customerIdentifiers.instore", reading)
    cpd_path = f"{prefix}data.customerPartnerProgramDetails"
    cpd = _object(data, "customerPartnerProgramDetails", cpd_path, reading)

    fields: dict[str, Any] = {
        "event_name": event_name,
        "kind": EVENT_KINDS[event_name],
        "shape": shape,
        "org_id": envelope.get("orgId"),
        "occurred_at_ms": envelope.get("createdAt"),
        "customer_id": customer.get("customerId"),
        "partner_program_id": data.get("partnerProgramId"),
        "loyalty_program_id": data.get("loyaltyProgramId"),
        "partner_program_name": data.get("partnerProgramName"),
        "partner_program_type": data.get("partnerProgramType"),
        "update_type": data.get("updateType"),
        "details": {name: cpd[key] for key, name in _DETAIL_KEYS.items() if key in cpd},
        "expiry_instants": expiry_instants(cpd, anomalies),
        "scheduled_expiry_date": data.get("scheduledExpiryDate"),
        "event_id": body.get("eventId", envelope.get("eventId")),
        "ref_id": envelope.get("refId"),
        "api_request_id": envelope.get("apiRequestId"),
        "identifiers": identifiers(instore),
    }
    required = ["org_id", "occurred_at_ms", "customer_id", "partner_program_id"]
    required += ["loyalty_program_id"]
    if fields["kind"] is Kind.REMINDED:
        required.append("scheduled_expiry_date")
    missing = [payload_path(name, prefix) for name in required if fields[name] in (None, "")]
    if missing:
        raise InvalidNotificationError(
            Reason.MISSING_FIELD,
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} absent or empty",
        )
    if event_name == RENEWAL_JOB:
        sent = fields["update_type"]
        if isinstance(sent, str) and sent and sent.upper() != "RENEW":
            anomalies.append("RENEWAL_JOB_UPDATE_TYPE_OVERRIDDEN")
        fields["update_type"] = "RENEW"
    fields["delivered_at_ms"] = delivery_time(body.get("timeStamp"), anomalies)
    entity = data.get("entityInformation")
    entity_id = reading.clean(entity).get("entityId") if isinstance(entity, dict) else None
    if entity_id not in (None, "") and not entity_agrees(entity_id, fields["customer_id"]):
        anomalies.append("ENTITY_ID_MISMATCH")
    fields["anomalies"] = tuple(anomalies)
    return fields, prefix
