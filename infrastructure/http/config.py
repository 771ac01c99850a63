"""Settings of the HTTP service: the environment (``PARTNER_LEDGER_*``), overridden by flags.

Secrets are `SecretStr`, so they never show in a repr, a log line or an error message.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.errors import ConfigurationError

TRANSIENT_STATUSES = (429, 503)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
NO_SECRET = (
    "no webhook secret is configured: set PARTNER_LEDGER_WEBHOOK_SECRETS to one or more "
    "comma-separated secrets (or pass --webhook-secrets), for example "
    'PARTNER_LEDGER_WEBHOOK_SECRETS="$(openssl rand -hex 32)"'
)


class HttpConfig(BaseSettings):
    """Everything the HTTP service can be told from outside, besides the database."""

    model_config = SettingsConfigDict(env_prefix="PARTNER_LEDGER_", extra="ignore")

    webhook_header: str = "X-Webhook-Token"
    webhook_secrets: SecretStr = SecretStr("")
    read_token: SecretStr = SecretStr("")
    operator_token: SecretStr = SecretStr("")
    dashboard_session_seconds: Annotated[int, Field(gt=0)] = 8 * 3600
    secure_cookies: bool = False
    signing_secret: SecretStr = SecretStr("")
    max_body_bytes: Annotated[int, Field(gt=0)] = 1_048_576
    commit_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    read_wait_seconds: Annotated[float, Field(gt=0)] = 2.0
    drain_seconds: Annotated[float, Field(ge=0)] = 0.0
    max_group_size: Annotated[int, Field(ge=1)] = 100
    group_wait_seconds: Annotated[float, Field(ge=0, le=1)] = 0.005
    max_pending: Annotated[int, Field(ge=1)] = 1000
    max_pending_bytes: Annotated[int, Field(ge=1)] = 16 * 1_048_576
    max_connections: Annotated[int, Field(ge=1)] = 500
    request_read_seconds: Annotated[float, Field(gt=0)] = 10.0
    transient_status: int = 429
    retry_after_seconds: Annotated[int, Field(ge=1, le=3600)] = 5
    max_view_lag_events: Annotated[int, Field(ge=0)] = 10_000
    follow: bool = True
    http_parser: Literal["httptools", "h11"] = "httptools"

    @field_validator("webhook_header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if not _HEADER_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid HTTP header name")
        return value

    @field_validator("transient_status")
    @classmethod
    def _transient(cls, value: int) -> int:
        if value not in TRANSIENT_STATUSES:
            raise ValueError("must be 429 (the default) or 503")
        return value

    @property
    def accepted_secrets(self) -> tuple[bytes, ...]:
        """The webhook secrets accepted now (several while one is being rotated)."""
        return _split(self.webhook_secrets)

    @property
    def read_tokens(self) -> tuple[bytes, ...]:
        return _split(self.read_token)

    @property
    def operator_tokens(self) -> tuple[bytes, ...]:
        """Tokens that allow the dashboard's write actions (quarantine replay)."""
        return _split(self.operator_token)

    @property
    def signing_keys(self) -> tuple[bytes, ...]:
        """Standard Webhooks keys (``whsec_`` + base64), decoded; empty when not signing."""
        return tuple(_signing_key(secret.decode()) for secret in _split(self.signing_secret))

    def check(self) -> None:
        """Refuse to serve without a webhook secret, or with an unusable signing secret."""
        if not self.accepted_secrets:
            raise ConfigurationError(NO_SECRET)
        _ = self.signing_keys


def _signing_key(secret: str) -> bytes:
    """The key of one ``whsec_`` secret. Padding is optional, as in the reference
    ``standardwebhooks`` package; an empty key would make every signature forgeable."""
    text = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            "the signing secret is not a Standard Webhooks secret (whsec_ followed by base64)"
        ) from None
    if not key:
        raise ConfigurationError(
            "the signing secret is empty: a Standard Webhooks secret is whsec_ followed by a "
            "base64 key of at least one byte"
        )
    return key


def _split(secret: SecretStr) -> tuple[bytes, ...]:
    return tuple(
        part.strip().encode() for part in secret.get_secret_value().split(",") if part.strip()
    )
