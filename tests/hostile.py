"""A hypothesis strategy of hostile payloads: the seed's samples, mutated.

Mutations: drop a key, retype a value, pad keys and text with whitespace and odd unicode, nest a
value, put huge strings, deep nesting, numbers out of range, SQL metacharacters, or replace the
whole body with the wrong shape. Shared by the parser, ledger, CLI and HTTP tests.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

from tests.conftest import seed_payloads

SEEDS: list[Any] = [json.loads(raw) for raw in seed_payloads().values()]
SQL_METACHARACTERS = ["'; DROP TABLE ledger_inbox; --", '" OR 1=1 --', "\\x00'", "%s%s", "?;--"]
ODD_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["\u200b", "\u202e", "\ufeff", "\U0001f600", "\x00", "\ud800", "\t \n"]),
    st.sampled_from(SQL_METACHARACTERS),
    st.just("x" * 100_000),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    ODD_TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _nodes(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _nodes(item, (*path, index))
    return found


def _parent(body: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        body = body[part]
    return body


@st.composite
def mutation(draw: st.DrawFn, body: Any) -> Any:
    nodes = [p for p in _nodes(body) if p]
    if not nodes:
        return draw(VALUES)
    path = draw(st.sampled_from(nodes))
    parent, key = _parent(body, path), path[-1]
    kind = draw(st.sampled_from(["drop", "retype", "pad", "nest", "deep", "metachar", "rename"]))
    if kind == "drop" and isinstance(parent, dict):
        del parent[key]
    elif kind == "retype":
        parent[key] = draw(VALUES)
    elif kind == "pad" and isinstance(parent[key], str):
        parent[key] = draw(st.sampled_from([" ", "\t", "\u00a0", "\u3000"])) + parent[key] + " "
    elif kind == "nest":
        parent[key] = draw(st.sampled_from([[parent[key]], {"value": parent[key]}]))
    elif kind == "deep":
        nested: Any = parent[key]
        for _ in range(draw(st.integers(10, 200))):
            nested = [nested]
        parent[key] = nested
    elif kind == "metachar":
        parent[key] = draw(st.sampled_from(SQL_METACHARACTERS))
    elif kind == "rename" and isinstance(parent, dict):
        parent[f" {key} "] = parent.pop(key)
    return body


@st.composite
def hostile_payloads(draw: st.DrawFn) -> bytes:
    """Raw bytes of a mutated seed sample (or, now and then, of something else entirely)."""
    if draw(st.integers(0, 19)) == 0:
        body: Any = draw(VALUES)
    else:
        body = copy.deepcopy(draw(st.sampled_from(SEEDS)))
        for _ in range(draw(st.integers(1, 4))):
            body = draw(mutation(body))
    text = json.dumps(body, ensure_ascii=draw(st.booleans()))
    if draw(st.integers(0, 29)) == 0:
        text = text[: draw(st.integers(0, len(text)))]  # truncated on the wire
    return text.encode("utf-8", "surrogatepass")
