"""The survey's outputs: ``survey.html`` (self-contained, cards in survey order), ``survey.json``,
and the Markdown summary table the README shows."""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

from fmtheory.atomic import write_text
from fmtheory.contract import CHAPTERS, Chapter
from fmtheory.survey.core import VERDICTS, Card, Survey

__all__ = ["render_survey", "write_survey", "markdown_summary"]

_SYMBOL = {"holds": "✓ holds", "fails": "✗ fails", "inconclusive": "? inconclusive",
           "n/a": "– n/a", "error": "! error", "not run": "· not run"}  # fmt: skip
_COLS = VERDICTS

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222}h1{font-size:1.5em}h2{font-size:1.25em;margin-top:2em}
h3{font-size:1.05em;margin:.2em 0}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .5em}
th{background:#f4f4f4}.card{border:1px solid #ccc;border-radius:6px;padding:.8em 1em;margin:1em 0}
.holds{border-left:6px solid #2e7d32}.fails{border-left:6px solid #c62828}
.inconclusive{border-left:6px solid #f9a825}.n\\/a,.na{border-left:6px solid #9e9e9e}
.error{border-left:6px solid #6a1b9a}.not{border-left:6px solid #ddd}.verdict{font-weight:bold}
img{max-width:100%;border:1px solid #eee}code,pre{background:#f7f7f7}
.meta{color:#555;font-size:.85em}
"""


def _img(card: Card) -> str:
    if not card.run_dir or not card.key_figure:
        return ""
    p = Path(card.run_dir) / "figures" / f"{card.key_figure}.png"
    if not p.exists():
        return ""
    b64 = base64.b64encode(p.read_bytes()).decode()
    alt = f"{card.name}: {card.key_figure.replace('_', ' ')}"
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{b64}'>"


def _card_html(card: Card, out_dir: Path) -> str:
    e = html.escape
    cls = {"n/a": "na", "not run": "not"}.get(card.verdict, card.verdict)
    parts = [
        f"<article class='card {cls}' id='claim-{e(card.name)}'>",
        f"<h3>{e(card.name)}</h3>",
        f"<p>{e(card.claim)}<br><span class='meta'>Source: {e(card.source)}</span></p>",
        f"<p class='verdict'>Verdict: {_SYMBOL[card.verdict]}"
        + (" (stale: made by other code)" if card.stale else "") + "</p>",
    ]  # fmt: skip
    if card.reason:
        parts.append(f"<p>{e(card.reason)}</p>")
    if card.counts:
        parts.append(f"<p class='meta'>All checks: {e(card.counts)}</p>")
    if card.formula:
        parts.append(f"<p><b>Theory.</b> <code>{e(card.formula)}</code></p>")
    parts.append(_img(card))
    meta = []
    if card.model:
        meta.append(f"Model: {e(card.model)}")
    if card.seconds is not None:
        meta.append(f"wall time {card.seconds:.0f} s")
    if card.code:
        meta.append(f"code fmtheory {e(str(card.code.get('fmtheory', '')))}, source "
                    f"{e(str(card.code.get('source_hash', '')))}")  # fmt: skip
    if card.run_dir:
        rel = os.path.relpath(Path(card.run_dir) / "report.html", out_dir)
        meta.append(f"<a href='{e(rel)}'>the run's report</a>")
    if meta:
        parts.append(f"<p class='meta'>{' · '.join(meta)}</p>")
    parts.append("</article>")
    return "\n".join(parts)


def render_survey(survey: Survey, out_dir: Path) -> str:
    """The survey page: summary per chapter, the findings first, then a card per claim."""
    e = html.escape
    summ = survey.summary()
    rows = "".join(
        f"<tr><td>{e(Chapter(ch).title)}</td>" + "".join(f"<td>{summ[ch][k]}</td>" for k in _COLS)
        + "</tr>"
        for ch in CHAPTERS if ch in summ
    )  # fmt: skip
    head = "".join(f"<th>{_SYMBOL[k]}</th>" for k in _COLS)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>fmtheory survey ({e(survey.preset)})</title><style>{_CSS}</style></head><body>",
        f"<h1>Which claims of the theory of foundation models hold? (preset {e(survey.preset)})</h1>",
        f"<p class='meta'>{len(survey.cards)} claims; survey wall time {survey.seconds:.0f} s; "
        "each verdict comes from the claim's <em>claim</em> checks (the trained model against the "
        "theory or the paper).</p>",
        f"<h2>Summary by chapter</h2><table id='summary'><tr><th>chapter</th>{head}</tr>{rows}</table>",
    ]  # fmt: skip
    findings = survey.findings()
    parts.append("<h2>Findings: claims that fail, and errors</h2>")
    if findings:
        parts.append("<ul id='findings'>" + "".join(
            f"<li><a href='#claim-{e(c.name)}'>{e(c.name)}</a>: {_SYMBOL[c.verdict]} — "
            f"{e(c.reason or 'no reason recorded')}</li>" for c in findings) + "</ul>")  # fmt: skip
    else:
        parts.append("<p id='findings'>None: no claim fails and none crashed.</p>")
    chapter = None
    for c in survey.cards:
        if c.chapter != chapter:
            chapter = c.chapter
            parts.append(f"<h2>{e(Chapter(chapter).title)}</h2>")
        parts.append(_card_html(c, out_dir))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_survey(survey: Survey, out_dir: Path | str) -> tuple[Path, Path]:
    """Write ``survey.html`` and ``survey.json`` into ``out_dir`` (atomically); return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    page = out_dir / "survey.html"
    data = out_dir / "survey.json"
    write_text(page, render_survey(survey, out_dir))
    write_text(data, json.dumps(_safe(survey.to_dict()), indent=1, allow_nan=False) + "\n")
    return page, data


def _safe(o):
    import math

    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _safe(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_safe(v) for v in o]
    return o


def markdown_summary(survey: Survey) -> str:
    """The README's table: one row per claim (chapter, claim, verdict, wall time)."""
    lines = ["| chapter | claim | verdict | wall time |", "|---|---|---|---|"]
    for c in survey.cards:
        t = "" if c.seconds is None else f"{c.seconds:.0f} s"
        v = _SYMBOL[c.verdict] + (" (stale: made by other code)" if c.stale else "")
        lines.append(f"| {Chapter(c.chapter).title} | `{c.name}` | {v} | {t} |")
    return "\n".join(lines) + "\n"
