"""Where payloads come from: JSON Lines files, one-object or array ``.json`` files, stdin,
and any of those files gzip-compressed (``.gz``).

Streams: a file of millions of lines is read one batch at a time, so memory stays flat.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

from domain.errors import SourceError

_BETWEEN_ITEMS = re.compile(r"[ \t\n\r,]*")


def open_source(path: str) -> tuple[BinaryIO, int | None]:
    """The binary stream for PATH (``-`` is stdin) and its size when known (the size of
    what the stream yields: unknown for stdin and for a ``.gz`` file)."""
    if path == "-":
        return sys.stdin.buffer, None
    try:
        stream: BinaryIO = Path(path).open("rb")  # noqa: SIM115 - closed by the caller
    except OSError as error:
        raise SourceError(f"cannot read {path}: {error.strerror or error}") from None
    if path.endswith(".gz"):
        return cast(BinaryIO, _Gunzipped(stream, path)), None
    try:
        size: int | None = os.fstat(stream.fileno()).st_size
    except OSError:
        size = None
    return stream, size


class _Gunzipped(gzip.GzipFile):
    """A gzip stream whose read errors name the file (a truncated or non-gzip file)."""

    def __init__(self, stream: BinaryIO, path: str) -> None:
        super().__init__(fileobj=stream, mode="rb")
        self._raw = stream
        self._path = path

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def payloads(stream: BinaryIO, *, name: str) -> Iterator[tuple[bytes, int, str]]:
    """Each payload with the number of input bytes it consumed and where it was in the input
    (``NAME line N``, ``NAME item N`` of an array, or ``NAME`` for a whole document).

    A ``.json`` (or ``.json.gz``) file holds one object or an array of objects; anything
    else is JSON Lines, where each non-blank line is one payload (the raw bytes, without the
    line break)."""
    try:
        if name.removesuffix(".gz").endswith(".json"):
            for payload, length, item in _json_document(stream.read()):
                yield payload, length, name if item is None else f"{name} item {item}"
            return
        for number, line in enumerate(stream, start=1):
            payload = line.rstrip(b"\r\n")
            if payload.strip():
                yield payload, len(line), f"{name} line {number}"
    except (OSError, EOFError) as error:
        reason = getattr(error, "strerror", None) or error or "the file ends early"
        raise SourceError(f"cannot read {name}: {reason}") from None


def _json_document(data: bytes) -> Iterator[tuple[bytes, int, int | None]]:
    try:
        document = json.loads(data)
    except ValueError:
        yield data, len(data), None  # quarantined as NOT_JSON, bytes kept
        return
    if not isinstance(document, list):
        yield data, len(data), None
        return
    # Each element as it was written: re-encoding it would round its numbers through floats
    # (9007199254740993.0 would become 9007199254740992.0).
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = json.dumps(document, ensure_ascii=False)
    decoder = json.JSONDecoder()
    index = text.index("[") + 1
    for number, _ in enumerate(document, start=1):
        index = _BETWEEN_ITEMS.match(text, index).end()  # type: ignore[union-attr]
        end = decoder.raw_decode(text, index)[1]
        element = text[index:end].encode()
        index = end
        yield element, len(element), number
