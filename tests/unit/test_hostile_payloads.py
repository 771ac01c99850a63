"""5,000 hostile payloads: the parser answers a notification or a quarantine reason, always."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from domain.errors import InvalidNotificationError, Reason
from domain.notifications import Notification, parse_notification
from tests.hostile import hostile_payloads


@settings(max_examples=5_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=hostile_payloads())
def test_a_hostile_payload_parses_or_gets_a_reason_never_an_exception(raw: bytes) -> None:
    try:
        notification = parse_notification(raw)
    except InvalidNotificationError as error:
        assert error.reason in set(Reason)
        assert error.detail
    else:
        assert isinstance(notification, Notification)
        assert len(notification.fingerprint) == 64
