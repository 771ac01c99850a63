"""Progress for long work: a bar on a terminal, silence otherwise (or with ``--json``)."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from tqdm import tqdm


class Progress:
    """A tqdm bar on stderr, shown only when stderr is a terminal and not ``quiet``."""

    def __init__(self, *, total: int | None, unit: str, label: str, quiet: bool = False) -> None:
        self._bar = tqdm(
            total=total,
            unit=unit,
            unit_scale=True,
            desc=label,
            file=sys.stderr,
            disable=quiet or not sys.stderr.isatty(),
            leave=False,
            mininterval=0.2,
        )

    def advance(self, amount: int, **figures: Any) -> None:
        self._bar.update(amount)
        if figures:
            self._bar.set_postfix(figures, refresh=False)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._bar.close()
