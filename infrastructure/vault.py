"""Customer identifiers, sealed with a key per customer, and forgotten by destroying the key.

Identifiers (mobile, email, external id) are personal data. Each (org, customer) gets its own
random 256-bit key in ``ledger_customer_keys``; an event stores its identifiers only as
AES-GCM ciphertext bound to that customer. ``forget`` destroys the key (and leaves a tombstone,
so identifiers that arrive later are not stored at all): the ciphertext in the events becomes
unreadable while the events themselves, their hash chains and everything derived from them
(state, history, counts) stay exactly as they were.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.json_bytes import ascii_json
from domain.rows import CustomerKeyRow, Sealed
from infrastructure.dbapi import Datastore
from infrastructure.ledger_queries.base import QueryBase
from infrastructure.retrying import now_us

Customer = tuple[int, int]
PREFIX = "v1."


class IdentifierVault:
    """Keys and sealing, over the ledger's own database (a `LedgerTables` recorder)."""

    def __init__(self, tables: QueryBase[Datastore]) -> None:
        self.tables = tables

    def seal(self, items: Sequence[tuple[int, int, dict[str, str]]]) -> Sealed:
        """Sealed identifiers for each (org, customer, identifiers), None when there is
        nothing to seal or the customer was forgotten; with the keys made for customers seen
        for the first time, which the caller writes in the same transaction as the events
        (`CustomerKeyRow`: a concurrent writer's key for the same customer makes that
        transaction a conflict, tried again with the key that won)."""
        wanted = {(org, customer) for org, customer, identifiers in items if identifiers}
        keys = self._read_keys(sorted(wanted))
        now = now_us()
        new_keys = [
            CustomerKeyRow(org, customer, AESGCM.generate_key(bit_length=256), now)
            for org, customer in sorted(wanted - keys.keys())
        ]
        keys |= {(row.org_id, row.customer_id): row.key for row in new_keys}
        ciphers = {customer: AESGCM(key) for customer, key in keys.items() if key is not None}
        return Sealed(
            [
                _encrypt(ciphers[(org, customer)], org, customer, identifiers)
                if identifiers and (org, customer) in ciphers
                else None
                for org, customer, identifiers in items
            ],
            new_keys,
        )

    def unseal(self, org: int, customer: int, sealed: str | None) -> dict[str, str] | None:
        """The identifiers, or None when the customer was forgotten (or none were sent)."""
        if not sealed:
            return None
        rows = self.tables.query(
            "SELECT key FROM ledger_customer_keys WHERE org_id = %s AND customer_id = %s",
            (org, customer),
        )
        if not rows or rows[0]["key"] is None:
            return None
        return _decrypt(bytes(rows[0]["key"]), org, customer, sealed)

    def forget(self, org: int, customer: int) -> bool:
        """Destroy the customer's key; True if there was one."""
        existed = bool(
            self.tables.query(
                "SELECT 1 AS found FROM ledger_customer_keys WHERE org_id = %s AND "
                "customer_id = %s AND key IS NOT NULL",
                (org, customer),
            )
        )
        now = now_us()
        with self.tables.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                self.tables.sql(
                    "INSERT INTO ledger_customer_keys (org_id, customer_id, key, created_at_us, "
                    "forgotten_at_us) VALUES (%s, %s, NULL, %s, %s) ON CONFLICT (org_id, "
                    "customer_id) DO UPDATE SET key = NULL, forgotten_at_us = %s"
                ),
                (org, customer, now, now, now),
            )
        return existed

    def _read_keys(self, customers: Sequence[Customer]) -> dict[Customer, bytes | None]:
        keys: dict[Customer, bytes | None] = {}
        for condition, params in self.tables.pairs_in(
            ("org_id", "customer_id"), customers, ("bigint", "bigint")
        ):
            for row in self.tables.query(
                f"SELECT org_id, customer_id, key FROM ledger_customer_keys WHERE {condition}",
                params,
            ):
                key = row["key"]
                keys[(row["org_id"], row["customer_id"])] = None if key is None else bytes(key)
        return keys


def _encrypt(cipher: AESGCM, org: int, customer: int, identifiers: dict[str, str]) -> str:
    nonce = os.urandom(12)
    plaintext = ascii_json(identifiers, sort_keys=True).encode()
    sealed = cipher.encrypt(nonce, plaintext, f"{org}/{customer}".encode())
    return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def _decrypt(key: bytes, org: int, customer: int, sealed: str) -> dict[str, str] | None:
    if not sealed.startswith(PREFIX):
        return None
    blob = base64.urlsafe_b64decode(sealed[len(PREFIX) :])
    try:
        plaintext = AESGCM(key).decrypt(blob[:12], blob[12:], f"{org}/{customer}".encode())
    except InvalidTag:
        return None
    identifiers: dict[str, str] = json.loads(plaintext)
    return identifiers
