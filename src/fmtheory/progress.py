"""Progress on stderr for long work: a live rich bar on a terminal, plain lines elsewhere.

A leaf utility (imports nothing of fmtheory).  Without a terminal (CI logs, ``nohup``, pipes) a
rich bar would only appear when the work ends, so :func:`progress_bar` then prints one line per
tenth of the work and at least every 30 s, e.g. ``train: step 300/3000 (10%) loss 0.51  elapsed
0:00:21  left 0:03:09``.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

__all__ = ["progress_bar"]


def progress_bar(
    description: str,
    total: int,
    *,
    start: int = 0,
    unit: str = "step",
    loss: bool = False,
    enabled: bool = True,
) -> _Silent | _Lines | _Rich:
    """A bar counting ``start .. total`` ``unit``s; ``loss`` adds the latest loss to the display.

    The returned object has ``update(done, loss=None)``, ``advance(n)``, ``describe(text)`` and
    ``close()``; with ``enabled=False`` they do nothing.
    """
    if not enabled:
        return _Silent()
    from rich.console import Console

    if Console(stderr=True).is_terminal:
        return _Rich(description, total, start, loss)
    return _Lines(description, total, start, unit)


class _Silent:
    def update(self, done: int, loss: float | None = None) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def describe(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


class _Lines:
    """One line on stderr per tenth of the work, and at least every ``every_s`` seconds."""

    def __init__(self, description: str, total: int, start: int, unit: str, every_s: float = 30.0):
        self.description, self.total, self.start, self.unit = description, total, start, unit
        self.every_s = every_s
        self.done = start
        self._t0 = self._last = time.perf_counter()
        self._next = start + max(1, total // 10)

    def update(self, done: int, loss: float | None = None) -> None:
        self.done = done
        now = time.perf_counter()
        if done < self._next and now - self._last < self.every_s and done < self.total:
            return
        self._last = now
        self._next = done + max(1, self.total // 10)
        elapsed = now - self._t0
        worked = done - self.start
        left = elapsed / worked * (self.total - done) if worked > 0 else float("nan")
        pct = 100 * done / self.total if self.total else 100.0
        shown = "" if loss is None else f" loss {loss:.4g}"
        print(
            f"{self.description}: {self.unit} {done}/{self.total} ({pct:.0f}%){shown}  "
            f"elapsed {_hms(elapsed)}  left {_hms(left)}",
            file=sys.stderr,
            flush=True,
        )

    def advance(self, n: int) -> None:
        self.update(self.done + n)

    def describe(self, text: str) -> None:
        self.description = text

    def close(self) -> None:
        pass


def _hms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "-:--:--"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class _Rich:
    """A live rich bar: description, bar, done/total, (loss), elapsed and time left."""

    def __init__(self, description: str, total: int, start: int, loss: bool):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns: list[Any] = [
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
        ]
        if loss:
            columns.append(TextColumn("loss {task.fields[loss]}"))
        columns += [TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn()]
        self._p = Progress(*columns, console=Console(stderr=True), transient=False)
        self._p.start()
        self._task = self._p.add_task(description, total=total, completed=start, loss="   -   ")

    def update(self, done: int, loss: float | None = None) -> None:
        fields = {} if loss is None else {"loss": f"{loss:.4g}"}
        self._p.update(self._task, completed=done, **fields)

    def advance(self, n: int) -> None:
        self._p.advance(self._task, n)

    def describe(self, text: str) -> None:
        self._p.update(self._task, description=text)

    def close(self) -> None:
        self._p.stop()
