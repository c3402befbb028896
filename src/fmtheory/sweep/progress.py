"""The sweep's progress display on stderr: cells done / running / failed, time per cell, time left.

A live rich bar when stderr is a terminal; otherwise (CI logs, ``nohup``, pipes) a plain line per
tenth of the cells and at least every 30 s, and one at the end."""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["SweepProgress"]


def _dur(s: float | None) -> str:
    if s is None or s != s:
        return "–"
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


class SweepProgress:
    """Counts cells and shows them; ``enabled=False`` counts silently.

    Time left = cells still to compute / the rate at which this sweep has been finishing computed
    cells (cells read back from the store are not counted in the rate).
    """

    def __init__(self, *, total: int, label: str, enabled: bool, slots: int):
        self.total, self.slots = total, slots
        self.done = self.failed = self.cached = self.running = 0
        self.computed = 0
        self.compute_seconds = 0.0
        self.t_first: float | None = None
        self._p: Any = None
        self.label = label
        self._lines = False
        self._printed = -1
        self._next_line = 0
        self._last_line = time.monotonic()
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            if not Console(stderr=True).is_terminal:
                self._lines = True
                self._next_line = max(1, total // 10)
                return

            # the header line names the sweep; this line stays under 80 columns
            self._p = Progress(
                BarColumn(bar_width=16),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                console=Console(stderr=True),
                transient=False,
                refresh_per_second=4,
            )
            self._p.start()
            self._task = self._p.add_task(label, total=total, info="")
        self._refresh()

    def started(self, n: int) -> None:
        if self.t_first is None:
            self.t_first = time.monotonic()
        self.running += n
        self._refresh()

    def finished(self, *, failed: bool, cached: bool, seconds: float | None, ran: bool) -> None:
        """One cell ended; ``ran``: it was dispatched to a worker (not resolved up front)."""
        self.done += 1
        if ran:
            self.running = max(0, self.running - 1)
        if failed:
            self.failed += 1
        if cached:
            self.cached += 1
        elif ran and not failed:
            self.computed += 1
            self.compute_seconds += float(seconds or 0.0)
        self._refresh()

    def eta(self) -> float | None:
        if self.t_first is None or self.computed == 0:
            return None
        rate = self.computed / max(1e-9, time.monotonic() - self.t_first)
        return (self.total - self.done) / rate

    def per_cell(self) -> float | None:
        return self.compute_seconds / self.computed if self.computed else None

    def _info(self, failed: str) -> str:
        return (
            f"run {self.running} · fail {failed} · cached {self.cached} · "
            f"{_dur(self.per_cell())}/cell · ~{_dur(self.eta())} left"
        )

    def _refresh(self) -> None:
        if self._lines:
            now = time.monotonic()
            if self.done >= self._next_line or (self.done and now - self._last_line >= 30.0):
                self._line()
            return
        if self._p is None:
            return
        failed = f"[red]{self.failed}[/]" if self.failed else "0"
        self._p.update(self._task, completed=self.done, info=self._info(failed))

    def _line(self) -> None:
        self._printed = self.done
        self._last_line = time.monotonic()
        self._next_line = self.done + max(1, self.total // 10)
        pct = 100 * self.done / self.total if self.total else 100.0
        print(
            f"{self.label}: {self.done}/{self.total} cells ({pct:.0f}%) · {self._info(str(self.failed))}",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        if self._lines:
            if self._printed != self.done:  # the final count, once
                self._line()
            self._lines = False
            return
        if self._p is not None:
            self._refresh()
            self._p.stop()
            self._p = None
