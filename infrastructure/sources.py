"""Where payloads come from: JSON Lines files, one-object or array ``.json`` files, stdin.

Streams: a file of millions of lines is read one batch at a time, so memory stays flat.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from domain.errors import LedgerError

_BETWEEN_ITEMS = re.compile(r"[ \t\n\r,]*")


class SourceError(LedgerError):
    """The input could not be opened or read."""


def open_source(path: str) -> tuple[BinaryIO, int | None]:
    """The binary stream for PATH (``-`` is stdin) and its size when known."""
    if path == "-":
        return sys.stdin.buffer, None
    try:
        stream = Path(path).open("rb")  # noqa: SIM115 - closed by the caller
    except OSError as error:
        raise SourceError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        size = os.fstat(stream.fileno()).st_size
    except OSError:
        size = None
    return stream, size


def payloads(stream: BinaryIO, *, name: str) -> Iterator[tuple[bytes, int]]:
    """Each payload with the number of input bytes it consumed.

    A ``.json`` file holds one object or an array of objects; anything else is JSON Lines,
    where each non-blank line is one payload (the raw bytes, without the line break)."""
    try:
        if name.endswith(".json"):
            yield from _json_document(stream.read())
            return
        for line in stream:
            payload = line.rstrip(b"\r\n")
            if payload.strip():
                yield payload, len(line)
    except OSError as error:
        raise SourceError(f"cannot read {name}: {error.strerror or error}") from None


def _json_document(data: bytes) -> Iterator[tuple[bytes, int]]:
    try:
        document = json.loads(data)
    except ValueError:
        yield data, len(data)  # quarantined as NOT_JSON, bytes kept
        return
    if not isinstance(document, list):
        yield data, len(data)
        return
    # Each element as it was written: re-encoding it would round its numbers through floats
    # (9007199254740993.0 would become 9007199254740992.0).
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = json.dumps(document, ensure_ascii=False)
    decoder = json.JSONDecoder()
    index = text.index("[") + 1
    for _ in document:
        index = _BETWEEN_ITEMS.match(text, index).end()  # type: ignore[union-attr]
        end = decoder.raw_decode(text, index)[1]
        element = text[index:end].encode()
        index = end
        yield element, len(element)
