"""Tables for people (``rich``): values as a person reads them, wrapped to the terminal's
width (``COLUMNS`` when stdout is not a terminal), with ids, dates and codes kept whole."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterable, Sequence
from typing import Any


def human(value: Any) -> str:
    """A value as a person reads it: ``-`` for unknown, yes/no, lists joined."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(human(v) for v in value) or "-"
    return str(value)


def print_table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
) -> None:
    """A table with a header row, wrapped to the terminal width."""
    from rich import box
    from rich.console import Console
    from rich.table import Column, Table

    cells = [[human(cell) for cell in row] for row in rows]
    width = shutil.get_terminal_size().columns
    widths = _column_widths(headers, cells, width)
    table = Table(
        *(
            Column(header, overflow="fold", width=column_width)
            for header, column_width in zip(headers, widths, strict=True)
        ),
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        title_justify="left",
    )
    for row in cells:
        table.add_row(*row)
    # Rendered to text first: no trailing padding, and the width of the terminal (or COLUMNS)
    # even when stdout is a file or a pipe.
    rendered = io.StringIO()
    Console(file=rendered, width=width, highlight=False, color_system=None).print(table)
    for line in rendered.getvalue().splitlines():
        print(line.rstrip())


ATOM_WIDTH = 24  # ids, dates, times and codes up to this long are never broken across lines


def _column_widths(
    headers: Sequence[str], cells: Sequence[Sequence[str]], width: int
) -> list[int | None]:
    """Column widths for a table wider than the terminal, or None for each column when it
    fits as it is. Tokens stay whole where the width allows (``2023-05-12`` folded into
    ``2023-0`` / ``5-12`` reads as two values, and so does an id cut in two): the widest
    columns give way first, each down to its longest token (a word of its header or cells,
    up to `ATOM_WIDTH`). Only when not even the tokens fit do they fold. Nothing is cut."""
    columns = [
        [header, *(row[index] for row in cells if index < len(row))]
        for index, header in enumerate(headers)
    ]
    natural = [
        max(len(line) for text in column for line in text.splitlines() or [""])
        for column in columns
    ]
    tokens = [
        min(max((len(word) for text in column for word in text.split()), default=1), ATOM_WIDTH)
        for column in columns
    ]
    budget = width - 2 * len(headers) + 1  # a space of padding and a rule between columns
    if sum(natural) <= budget:
        return [None] * len(headers)
    floors = [min(n, t) for n, t in zip(natural, tokens, strict=True)]
    widths = _narrowed(natural, floors, budget)
    if sum(widths) > budget:  # not even whole tokens fit: the widest tokens fold first
        widths = _narrowed(widths, [min(3, w) for w in widths], budget)
    return list(widths)


def _narrowed(widths: Sequence[int], floors: Sequence[int], budget: int) -> list[int]:
    """``widths`` narrowed to ``budget`` in total, the widest first, none below its floor."""
    narrowed = list(widths)
    for _ in range(max(sum(narrowed) - budget, 0)):
        shrinkable = [i for i in range(len(narrowed)) if narrowed[i] > floors[i]]
        if not shrinkable:
            break
        narrowed[max(shrinkable, key=narrowed.__getitem__)] -= 1
    return narrowed
