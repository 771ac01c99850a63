"""Charts drawn on the server as SVG: no script, no library, nothing fetched.

Every text in a chart is escaped here (labels come from Capillary: program names). Each bar is
a ``rect`` with ``data-count`` (and its label in ``data-label``), so tests and assistive
technology read the numbers without parsing geometry; each chart also has a ``title`` and the
page shows the same numbers in a table beside it. Colours come from the stylesheet (classes),
so the Content-Security-Policy needs no inline style.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape


@dataclass(frozen=True)
class Bar:
    label: str
    count: int


@dataclass(frozen=True)
class Group:
    """One position on the x axis (a month) with one count per series."""

    label: str
    counts: tuple[int, ...]


_ROW = 26
_LABEL_WIDTH = 220
_BARS_WIDTH = 540
_WIDTH = 720


def bar_chart(bars: Sequence[Bar], *, chart_id: str, title: str, kind: str) -> Markup:
    """Horizontal bars, one per label, longest count fullest."""
    height = max(len(bars), 1) * _ROW + 8
    most = max((bar.count for bar in bars), default=0) or 1
    room = _BARS_WIDTH - _LABEL_WIDTH - 50
    parts = [
        f'<svg class="chart bars" id="{chart_id}" viewBox="0 0 {_BARS_WIDTH} {height}" '
        f'width="{_BARS_WIDTH}" height="{height}" role="img" '
        f'aria-labelledby="{chart_id}-title" preserveAspectRatio="xMinYMin meet">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
    ]
    for index, bar in enumerate(bars):
        y = 4 + index * _ROW
        width = max(round(room * bar.count / most), 1 if bar.count else 0)
        label = escape(_shorten(bar.label, 28))
        parts.append(
            f'<g class="row"><text class="label" x="{_LABEL_WIDTH - 8}" y="{y + 17}" '
            f'text-anchor="end">{label}</text>'
            f'<rect class="bar {kind}" x="{_LABEL_WIDTH}" y="{y + 3}" width="{width}" '
            f'height="{_ROW - 8}" data-count="{bar.count}" data-label="{escape(bar.label)}">'
            f"<title>{escape(bar.label)}: {bar.count}</title></rect>"
            f'<text class="value" x="{_LABEL_WIDTH + width + 6}" y="{y + 17}">{bar.count}</text>'
            "</g>"
        )
    if not bars:
        parts.append('<text class="label" x="8" y="20">nothing yet</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def grouped_columns(
    groups: Sequence[Group], *, series: Sequence[str], chart_id: str, title: str
) -> Markup:
    """Columns per group (a month), one per series side by side, on a shared scale."""
    height, top, bottom, left = 240, 16, 40, 44
    plot = height - top - bottom
    slot = (_WIDTH - left - 8) / max(len(groups), 1)
    column = max(min((slot - 8) / max(len(series), 1), 24), 2)
    most = max((count for group in groups for count in group.counts), default=0) or 1
    parts = [
        f'<svg class="chart columns" id="{chart_id}" viewBox="0 0 {_WIDTH} {height}" '
        f'width="{_WIDTH}" height="{height}" role="img" '
        f'aria-labelledby="{chart_id}-title" preserveAspectRatio="xMinYMin meet">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<line class="axis" x1="{left}" y1="{top + plot}" x2="{_WIDTH - 4}" y2="{top + plot}"/>',
        f'<text class="tick" x="{left - 6}" y="{top + 4}" text-anchor="end">{most}</text>',
        f'<text class="tick" x="{left - 6}" y="{top + plot}" text-anchor="end">0</text>',
    ]
    for index, group in enumerate(groups):
        x0 = left + index * slot + (slot - column * len(series)) / 2
        for number, (name, count) in enumerate(zip(series, group.counts, strict=True)):
            bar_height = round(plot * count / most, 1)
            x = round(x0 + number * column, 1)
            parts.append(
                f'<rect class="bar {escape(name)}" x="{x}" y="{round(top + plot - bar_height, 1)}" '
                f'width="{round(column - 1, 1)}" height="{bar_height}" data-count="{count}" '
                f'data-label="{escape(group.label)} {escape(name)}">'
                f"<title>{escape(group.label)}: {count} {escape(name)}s</title></rect>"
            )
        parts.append(
            f'<text class="tick" x="{round(left + index * slot + slot / 2, 1)}" '
            f'y="{top + plot + 16}" text-anchor="middle">{escape(group.label[2:])}</text>'
        )
    for number, name in enumerate(series):
        x = left + number * 110
        parts.append(
            f'<rect class="swatch {escape(name)}" x="{x}" y="{height - 14}" width="12" '
            f'height="12"/><text class="label" x="{x + 16}" y="{height - 4}">'
            f"{escape(name)}s</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
