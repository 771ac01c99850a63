"""A quarantined payload as the dashboard shows it: its customer identifiers masked.

A payload that parses as JSON is masked field by field (any key naming a mobile, email,
external id, card number or person's name, at any depth) and pretty-printed. One that does not
parse (the quarantine keeps bytes that are not JSON) is masked by pattern: ``"key": "value"``
pairs with those key names, and anything that looks like an email address. The result is text
for the template to escape, never markup.
"""

from __future__ import annotations

import json
import re
from typing import Any

MASK = "•••"
_IDENTIFIER_KEYS = frozenset(
    {
        "mobile",
        "mobilenumber",
        "phone",
        "phonenumber",
        "email",
        "emailid",
        "externalid",
        "cardnumber",
        "cardnumbers",
        "cardno",
        "cardexternalid",
        "card",
        "cards",
        "name",
        "firstname",
        "lastname",
        "middlename",
        "fullname",
        "customername",
    }
)
_KEY_PATTERN = "|".join(sorted(_IDENTIFIER_KEYS, key=len, reverse=True))
_PAIR = re.compile(
    r'("(?:' + _KEY_PATTERN + r')"\s*:\s*)("(?:[^"\\]|\\.)*"?|[-+0-9.eE]+|\[[^\]]*\]?)',
    re.IGNORECASE,
)
_EMAIL = re.compile(r"[^\s\"'<>@,;:]+@[^\s\"'<>@,;:]+")
MAX_SHOWN = 20_000


def is_identifier_key(key: str) -> bool:
    return key.replace("_", "").replace("-", "").lower() in _IDENTIFIER_KEYS


def masked_payload(raw: bytes) -> str:
    """The payload as text with its identifiers masked; at most ``MAX_SHOWN`` characters."""
    text = raw.decode("utf-8", errors="replace")
    try:
        document = json.loads(text)
    except ValueError:
        shown = _EMAIL.sub(MASK, _PAIR.sub(lambda m: f'{m.group(1)}"{MASK}"', text))
    else:
        shown = json.dumps(_masked(document), indent=2, ensure_ascii=False)
        shown = _EMAIL.sub(MASK, shown)
    if len(shown) > MAX_SHOWN:
        return shown[:MAX_SHOWN] + f"\n… ({len(shown) - MAX_SHOWN} more characters)"
    return shown


def masked_detail(detail: str) -> str:
    """A quarantine reason's detail with anything like an email address masked."""
    return _EMAIL.sub(MASK, detail)


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: (MASK if is_identifier_key(str(key)) and item is not None else _masked(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value
