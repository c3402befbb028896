"""The results browser: one self-contained ``index.html`` at the root of a run store.

Every run folder and sweep folder of the store is a row; filters (experiment, verdict, preset, date,
code version) and the compare view (config diff, checks side by side, the headline curves of two runs
overlaid) are client-side JavaScript in the page itself: no server, no network, no stylesheet to
download.  Links to each run's own ``report.html`` are relative, so a copied store still renders.
A corrupt or incomplete run folder is listed as such, never as a result.

Torch-free.  :func:`write_index` is called after every run (atomically replaced).
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from fmtheory.atomic import write_text
from fmtheory.contract import verdict
from fmtheory.runs.store import CorruptRunError, RunStore, load_run, run_status

__all__ = ["index_rows", "write_index", "INDEX"]

INDEX = "index.html"
#: points per run kept for the compare view's curves (per method and metric)
MAX_CURVE_POINTS = 200


def _curves(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The run's curves: for each (method, metric), value against the first numeric grid column."""
    skip = {"method", "metric", "value", "se", "ci_low", "ci_high", "seed"}
    xs = [c for c in table.columns if c not in skip and pd.api.types.is_numeric_dtype(table[c])]
    out = []
    if not xs:
        return out
    x = xs[0]
    df = table.dropna(subset=[x])
    for (method, metric), g in df.groupby(["method", "metric"], sort=False):
        g = g.groupby(x)["value"].mean().sort_index()
        pts = [[float(a), float(b)] for a, b in g.items() if math.isfinite(b)]
        if len(pts) >= 2:
            out.append({"method": str(method), "metric": str(metric), "x": x,
                        "points": pts[:MAX_CURVE_POINTS]})  # fmt: skip
    return out[:40]


def index_rows(root: Path | str) -> list[dict[str, Any]]:
    """One dict per run folder and sweep folder under ``root`` (newest first)."""
    root = Path(root)
    rows: list[dict[str, Any]] = []
    index = {Path(e["run_dir"]).name: e for e in RunStore(root).entries().values()}
    for d in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "sweeps"):
        if not (d / "config.yaml").exists() and not (d / "manifest.json").exists():
            continue
        st = run_status(d)
        row: dict[str, Any] = {"kind": "run", "dir": d.name, "state": st.state,
                               "reason": st.reason}  # fmt: skip
        if st.state == "complete":
            try:
                run = load_run(d)
            except CorruptRunError as e:
                row.update(state="corrupt", reason=str(e))
            else:
                m = run.manifest
                row.update(
                    experiment=run.experiment,
                    verdict=verdict(run.checks),
                    preset=m.get("preset") or "",
                    date=str(m.get("created", ""))[:10],
                    created=m.get("created", ""),
                    code=(m.get("code") or {}).get("source_hash", ""),
                    stale=run.stale,
                    model=m.get("model", ""),
                    seconds=m.get("seconds"),
                    config=run.config,
                    checks=[c.to_dict() for c in run.checks],
                    curves=_curves(run.table),
                    report=f"{d.name}/report.html",
                )
        else:
            entry = index.get(d.name) or {}
            if st.state == "incomplete" and entry.get("state") in ("failed", "interrupted"):
                row.update(state=entry["state"], reason=str(entry.get("error") or ""))
            row.update(experiment=d.name.rsplit("-", 1)[0], verdict=row["state"])
        rows.append(row)
    for d in sorted((root / "sweeps").glob("*/sweep.yaml")) if (root / "sweeps").is_dir() else []:
        try:
            spec = yaml.safe_load(d.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            rows.append({"kind": "sweep", "dir": f"sweeps/{d.parent.name}", "state": "corrupt",
                         "reason": str(e), "experiment": d.parent.name, "verdict": "corrupt"})  # fmt: skip
            continue
        rep = d.parent / "report.html"
        rows.append({
            "kind": "sweep", "dir": f"sweeps/{d.parent.name}",
            "state": "complete" if rep.exists() else "incomplete",
            "experiment": str(spec.get("target", d.parent.name)), "verdict": "sweep",
            "preset": str(spec.get("preset") or ""), "date": "", "code": "",
            "report": f"sweeps/{d.parent.name}/report.html" if rep.exists() else "",
            "seconds": spec.get("wall_seconds"),
        })  # fmt: skip
    rows.sort(key=lambda r: str(r.get("created", "")), reverse=True)
    return rows


def write_index(root: Path | str) -> Path:
    """Write ``root/index.html`` (atomically) from the store as it is now; return its path."""
    root = Path(root)
    rows = index_rows(root)
    page = _page(rows)
    path = root / INDEX
    write_text(path, page)
    return path


def _json_safe(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {str(k): _json_safe(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_json_safe(v) for v in o]
    return o


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.5em}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f4f4f4}
.holds{background:#e6f4ea}.fails{background:#fce8e6}.inconclusive{background:#fff4d6}
.corrupt,.incomplete,.failed,.interrupted{background:#eee;color:#a00}
label{margin-right:1em}#compare{border-top:2px solid #999;margin-top:1.5em}
.side{display:inline-block;vertical-align:top;width:49%}
"""

_JS = r"""
const RUNS = JSON.parse(document.getElementById('runs-data').textContent);
const SYMBOL = {holds: '✓ holds', fails: '✗ FAILS', inconclusive: '? inconclusive', 'n/a': '– n/a'};
function uniq(key) { return [...new Set(RUNS.map(r => r[key] || ''))].sort(); }
function fill(id, key) {
  const s = document.getElementById(id);
  for (const v of uniq(key)) { const o = document.createElement('option'); o.value = v;
    o.textContent = v || '(none)'; s.appendChild(o); }
  s.addEventListener('change', apply);
}
function apply() {
  const f = {experiment: 'f-experiment', verdict: 'f-verdict', preset: 'f-preset', date: 'f-date',
             code: 'f-code'};
  for (const tr of document.querySelectorAll('#runs tbody tr')) {
    const r = RUNS[+tr.dataset.i];
    let show = true;
    for (const [k, id] of Object.entries(f)) {
      const v = document.getElementById(id).value;
      if (v !== '*' && (r[k] || '') !== v) show = false;
    }
    tr.hidden = !show;
  }
}
function esc(s) { const d = document.createElement('div'); d.textContent = String(s); return d.innerHTML; }
function flat(o, p, out) {
  for (const [k, v] of Object.entries(o || {})) {
    const key = p ? p + '.' + k : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) flat(v, key, out); else out[key] = JSON.stringify(v);
  }
  return out;
}
function svgCurves(a, b) {
  const metrics = [...new Set([...(a.curves || []), ...(b.curves || [])].map(c => c.metric))];
  if (!metrics.length) return '<p>No curves in these runs.</p>';
  const m = metrics[0];
  const series = [];
  for (const [run, dash] of [[a, ''], [b, '5,3']])
    for (const c of (run.curves || []).filter(c => c.metric === m)) series.push({run, c, dash});
  const pts = series.flatMap(s => s.c.points);
  const xs = pts.map(p => p[0]), ys = pts.map(p => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const W = 640, H = 300, P = 40;
  const sx = x => P + (x - x0) / ((x1 - x0) || 1) * (W - 2 * P);
  const sy = y => H - P - (y - y0) / ((y1 - y0) || 1) * (H - 2 * P);
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf'];
  let s = `<svg role="img" aria-label="${esc(m)} of both runs overlaid" width="${W}" height="${H}" ` +
    `xmlns="http://www.w3.org/2000/svg"><rect width="${W}" height="${H}" fill="white" stroke="#ccc"/>`;
  let legend = '';
  series.forEach((q, i) => {
    const col = colors[i % colors.length];
    const d = q.c.points.map((p, j) => (j ? 'L' : 'M') + sx(p[0]).toFixed(1) + ',' + sy(p[1]).toFixed(1)).join('');
    s += `<path d="${d}" fill="none" stroke="${col}" stroke-width="1.5" stroke-dasharray="${q.dash}"/>`;
    legend += `<li style="color:${col}">${esc(q.run.dir)} (${q.dash ? 'dashed' : 'solid'}): ${esc(q.c.method)}</li>`;
  });
  s += `<text x="${W / 2}" y="${H - 8}" font-size="11" text-anchor="middle">${esc(series[0].c.x)}</text>`;
  s += `<text x="8" y="14" font-size="11">${esc(m)}: ${y0.toPrecision(3)} to ${y1.toPrecision(3)}</text></svg>`;
  return s + '<ul>' + legend + '</ul>';
}
function checksTable(r) {
  return '<table><tr><th>kind</th><th>claim</th><th>status</th><th>measured</th></tr>' +
    (r.checks || []).map(c => `<tr class="${c.status === 'n/a' ? '' : c.status}"><td>${esc(c.kind)}</td>` +
      `<td>${esc(c.claim)}</td><td>${SYMBOL[c.status] || esc(c.status)}</td><td>${esc(c.measured)}</td></tr>`).join('') +
    '</table>';
}
function compare() {
  const picked = [...document.querySelectorAll('input.pick:checked')].map(x => RUNS[+x.value]);
  const box = document.getElementById('compare-body');
  if (picked.length !== 2) { box.innerHTML = '<p>Tick exactly two runs of one experiment.</p>'; return; }
  const [a, b] = picked;
  if (a.experiment !== b.experiment) { box.innerHTML = '<p>The two runs are of different experiments.</p>'; return; }
  const fa = flat(a.config, '', {}), fb = flat(b.config, '', {});
  const keys = [...new Set([...Object.keys(fa), ...Object.keys(fb)])].sort().filter(k => fa[k] !== fb[k]);
  let h = `<h3>Config diff</h3><table><tr><th>key</th><th>${esc(a.dir)}</th><th>${esc(b.dir)}</th></tr>` +
    keys.map(k => `<tr><td>${esc(k)}</td><td>${esc(fa[k] ?? '')}</td><td>${esc(fb[k] ?? '')}</td></tr>`).join('') +
    (keys.length ? '' : '<tr><td colspan="3">identical configs</td></tr>') + '</table>';
  h += `<h3>Checks</h3><div class="side"><h4>${esc(a.dir)}</h4>${checksTable(a)}</div>` +
       `<div class="side"><h4>${esc(b.dir)}</h4>${checksTable(b)}</div>`;
  h += '<h3>Headline curves</h3>' + svgCurves(a, b);
  box.innerHTML = h;
}
for (const [id, key] of [['f-experiment', 'experiment'], ['f-verdict', 'verdict'], ['f-preset', 'preset'],
                         ['f-date', 'date'], ['f-code', 'code']]) fill(id, key);
document.getElementById('compare-btn').addEventListener('click', compare);
"""

_STATUS = {"holds": "✓ holds", "fails": "✗ FAILS", "inconclusive": "? inconclusive",
           "n/a": "– n/a"}  # fmt: skip


def _page(rows: list[dict[str, Any]]) -> str:
    e = html.escape
    body = []
    for i, r in enumerate(rows):
        v = str(r.get("verdict", ""))
        shown = _STATUS.get(v, v)
        if r.get("stale"):
            shown += " (stale)"
        link = (f"<a href='{e(r['report'])}'>{e(r['dir'])}</a>" if r.get("report")
                else e(r["dir"]))  # fmt: skip
        if r["state"] != "complete":
            shown = f"{r['state']}: {r.get('reason', '')}"
        pick = (f"<input type='checkbox' class='pick' value='{i}' aria-label='compare {e(r['dir'])}'>"
                if r["kind"] == "run" and r["state"] == "complete" else "")  # fmt: skip
        cls = v if r["state"] == "complete" else r["state"]
        body.append(
            f"<tr data-i='{i}' class='{e(cls)}'><td>{pick}</td><td>{e(r['kind'])}</td>"
            f"<td>{e(str(r.get('experiment', '')))}</td><td>{link}</td><td>{e(shown)}</td>"
            f"<td>{e(str(r.get('preset', '')))}</td><td>{e(str(r.get('date', '')))}</td>"
            f"<td>{e(str(r.get('code', '')))}</td><td>{e(str(r.get('model', '')))}</td></tr>"
        )
    data = json.dumps(_json_safe(rows), allow_nan=False).replace("</", "<\\/")
    filters = "".join(
        f"<label>{name} <select id='f-{key}'><option value='*'>all</option></select></label>"
        for name, key in (("experiment", "experiment"), ("verdict", "verdict"),
                          ("preset", "preset"), ("date", "date"), ("code version", "code"))
    )  # fmt: skip
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>fmtheory results</title><style>{_CSS}</style></head><body>"
        f"<h1>fmtheory results ({len(rows)} folders)</h1>"
        "<p>Every run and sweep of this store. Filters and the compare view run in this page; "
        "nothing is fetched.</p>"
        f"<h2>Runs and sweeps</h2><p>{filters}</p>"
        "<table id='runs'><thead><tr><th>compare</th><th>kind</th><th>experiment</th>"
        "<th>folder</th><th>verdict</th><th>preset</th><th>date</th><th>code</th><th>model</th>"
        f"</tr></thead><tbody>{''.join(body)}</tbody></table>"
        "<section id='compare'><h2>Compare two runs</h2>"
        "<button id='compare-btn' type='button'>Compare the two ticked runs</button>"
        "<div id='compare-body'></div></section>"
        f"<script type='application/json' id='runs-data'>{data}</script>"
        f"<script>{_JS}</script></body></html>"
    )
