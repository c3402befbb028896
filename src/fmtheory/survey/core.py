"""``fmtheory survey``: every registered claim run through the sweep executors, one card each.

The chapter of each claim comes from its registration.  A claim whose current run is in the store is
read back (seconds); the others are computed in parallel by a sweep executor (local processes or
Ray).  A claim that crashes becomes an "error" card with its message; the survey goes on.  Ctrl-C
keeps every finished run in the store, so running the survey again resumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fmtheory.contract import (
    CHAPTERS,
    Chapter,
    ConfigError,
    Experiment,
    counts_text,
    list_experiments,
    verdict,
)
from fmtheory.runs.store import CorruptRunError, RunStore, config_hash, load_run

__all__ = ["VERDICTS", "Card", "Survey", "select", "run_survey", "cards_from_store"]

#: what a card can say, in the order the summary shows
VERDICTS = ("holds", "fails", "inconclusive", "n/a", "error", "not run")


@dataclass
class Card:
    """One claim of the survey.  ``verdict``: holds | fails | inconclusive | n/a | error, or
    "not run" (read from the store without computing, and no run there)."""

    name: str
    chapter: str
    claim: str
    source: str
    formula: str
    verdict: str
    reason: str = ""
    counts: str = ""
    model: str = ""
    seconds: float | None = None
    code: dict[str, Any] = field(default_factory=dict)
    stale: bool = False
    run_dir: str = ""
    key_figure: str = ""
    checks: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Survey:
    """The cards in survey order, the preset, and how long the survey took."""

    preset: str
    cards: list[Card]
    seconds: float
    executor: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, dict[str, int]]:
        """``{chapter: {holds, fails, inconclusive, n/a, error}}`` in survey order."""
        out: dict[str, dict[str, int]] = {}
        for c in self.cards:
            row = out.setdefault(c.chapter, dict.fromkeys(VERDICTS, 0))
            row[c.verdict] += 1
        return out

    def findings(self) -> list[Card]:
        """The claims that fail, then the errors: listed first in the report."""
        return [c for c in self.cards if c.verdict == "fails"] + [
            c for c in self.cards if c.verdict == "error"
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "seconds": round(self.seconds, 3),
            "executor": self.executor,
            "summary": self.summary(),
            "findings": [c.name for c in self.findings()],
            "cards": [c.to_dict() for c in self.cards],
        }


def select(only: Sequence[str] | None = None) -> list[Experiment]:
    """The experiments named by ``only`` (chapter names or claim names; None: all), survey order.

    An unknown name is a :class:`ConfigError` listing the chapters and claims.
    """
    exps = list_experiments()
    if not only:
        return exps
    names = {e.name for e in exps}
    for o in only:
        if o not in names and o not in CHAPTERS:
            raise ConfigError(
                "--only",
                o,
                f"a chapter ({', '.join(CHAPTERS)}) or a claim ({', '.join(sorted(names))})",
            )
    return [e for e in exps if e.name in only or e.chapter in only]


def _reason(checks: list[Any]) -> str:
    """One line: the first claim check that fails (or is inconclusive), with its numbers."""
    for status in ("fails", "inconclusive"):
        for c in checks:
            if c.kind == "claim" and c.status == status:
                why = f" ({c.why})" if c.why else ""
                return f"{c.claim}: measured {c.measured}, predicted {c.predicted}{why}"
    return ""


def _card(exp: Experiment, run_dir: Path | None, error: str = "") -> Card:
    base = dict(name=exp.name, chapter=exp.chapter, claim=exp.claim, source=exp.source,
                formula=exp.formula, key_figure=exp.key_figure or "")  # fmt: skip
    if run_dir is None:
        return Card(**base, verdict="error", reason=error or "no run")
    try:
        run = load_run(run_dir)
    except CorruptRunError as e:
        return Card(**base, verdict="error", reason=f"corrupt run folder: {e}")
    key = exp.key_figure or ""
    if not key or not (run.run_dir / "figures" / f"{key}.png").exists():
        figs = sorted((run.run_dir / "figures").glob("*.png"))
        key = figs[0].stem if figs else ""
    return Card(
        **{**base, "key_figure": key},
        verdict=verdict(run.checks),
        reason=_reason(run.checks),
        counts=counts_text(run.checks),
        model=str(run.manifest.get("model", "")),
        seconds=run.manifest.get("seconds"),
        code=run.code,
        stale=run.stale,
        run_dir=str(run.run_dir),
        checks=[c.to_dict() for c in run.checks],
    )


def _order(cards: list[Card]) -> list[Card]:
    rank = {c: i for i, c in enumerate(CHAPTERS)}
    return sorted(cards, key=lambda c: (rank[c.chapter], c.name))


def cards_from_store(
    experiments: Sequence[Experiment], preset: str, root: Path | str
) -> list[Card]:
    """Cards from the store alone (nothing computed): a claim without a current run is an error
    card saying so."""
    store = RunStore(root)
    cards = []
    for exp in experiments:
        try:
            cfg = exp.make_config(preset).model_dump(mode="json")
        except ConfigError as e:
            cards.append(_card(exp, None, f"no {preset} preset: {e}"))
            continue
        d = store.run_dir(exp.name, config_hash(exp.name, cfg, "cpu"))
        if (d / "manifest.json").exists():
            cards.append(_card(exp, d))
        else:
            card = _card(exp, None)
            card.verdict, card.reason = "not run", f"no {preset} run in the store"
            cards.append(card)
    return _order(cards)


def run_survey(
    *,
    preset: str = "quick",
    only: Sequence[str] | None = None,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    threads: int | None = None,
    root: Path | str = "runs",
    progress: bool = False,
    on_card: Callable[[Card], None] | None = None,
) -> Survey:
    """Run (or read back) every selected claim's ``preset`` run; return the survey's cards.

    ``executor``: "local" (``workers`` processes), "ray" (``address`` or a local Ray), "inline".
    Current runs in ``root`` are read back; stale or missing ones are computed.
    """
    from fmtheory.sweep.executors import make_executor
    from fmtheory.sweep.jobs import CellJob

    t0 = time.perf_counter()
    exps = select(only)
    root = Path(root)
    store = RunStore(root)
    cards: dict[str, Card] = {}
    jobs: list[CellJob] = []
    by_index: dict[int, Experiment] = {}
    for exp in exps:
        try:
            cfg = exp.make_config(preset).model_dump(mode="json")
        except ConfigError as e:
            cards[exp.name] = _card(exp, None, f"no {preset} preset: {e}")
            continue
        h = config_hash(exp.name, cfg, "cpu")
        d = store.run_dir(exp.name, h)
        if (d / "manifest.json").exists():
            try:
                if not load_run(d).stale:
                    cards[exp.name] = _card(exp, d)
                    continue
            except CorruptRunError:
                pass
        module = getattr(exp.run, "__module__", None)
        if not module or module.startswith("fmtheory.experiments"):
            module = None
        i = len(jobs)
        jobs.append(CellJob(i, "experiment", exp.name, cfg, h, "cpu", module, preset))
        by_index[i] = exp
    ex = make_executor(executor, workers=workers, address=address, threads=threads)
    if jobs:
        bar = _Progress(len(jobs), progress)

        def on_done(o: Any) -> None:
            exp = by_index[o.index]
            if o.status == "complete":
                cards[exp.name] = _card(exp, Path(o.run_dir))
            else:
                cards[exp.name] = _card(exp, None, o.error or "failed")
            bar.done(exp.name, cards[exp.name].verdict)
            if on_card is not None:
                on_card(cards[exp.name])

        ex.open()
        try:
            ex.run(jobs, root=root, on_start=lambda idx: None, on_done=on_done)
        finally:
            ex.close()
    return Survey(preset, _order(list(cards.values())), time.perf_counter() - t0, ex.describe())


class _Progress:
    """One line per finished claim on stderr (a survey is a handful of long jobs)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.n, self.enabled, self.t0 = total, 0, enabled, time.perf_counter()
        if enabled:
            import sys

            print(f"survey: {total} claim(s) to run", file=sys.stderr, flush=True)

    def done(self, name: str, v: str) -> None:
        self.n += 1
        if self.enabled:
            import sys

            dt = time.perf_counter() - self.t0
            print(f"survey: [{self.n}/{self.total}] {name}: {v} ({dt:.0f} s)", file=sys.stderr,
                  flush=True)  # fmt: skip


def chapter_title(name: str) -> str:
    return Chapter(name).title
