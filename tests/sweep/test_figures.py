"""Phase diagrams, line plots and the sweep report, drawn from a cells table alone (synthetic)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest

from fmtheory.sweep import phase_diagram, read_cells, sweep_figures, write_cells, write_sweep_report
from fmtheory.sweep.cells import build_table
from fmtheory.sweep.progress import SweepProgress
from fmtheory.sweep.report import summary_by_point

pytestmark = pytest.mark.xdist_group("sweep-theory")


def _spec(axes: dict[str, list], metrics=("err",)) -> dict:
    return {
        "kind": "experiment",
        "target": "demo",
        "grid": {"axes": [{"key": k, "values": v, "spec": None} for k, v in axes.items()],
                 "seeds": [0, 1, 2]},
        "metrics": list(metrics),
        "n_checks": 1,
        "checks": ["err is small"],
    }  # fmt: skip


def _cells(axes: dict[str, list], fail_at=None) -> tuple:
    """err = a * b + seed; checks hold when err < 4; seed 0 of the point ``fail_at`` failed."""
    rows, i = [], 0
    keys = list(axes)
    for combo in np.array(np.meshgrid(*axes.values(), indexing="ij")).reshape(len(keys), -1).T:
        point = dict(zip(keys, [v.item() for v in combo], strict=True))
        for seed in (0, 1, 2):
            err = math.prod(point.values()) + seed
            failed = fail_at is not None and point == fail_at and seed == 0
            rows.append({"cell": i, **point, "seed": seed, "status": "failed" if failed else "complete",
                         "cached": False, "seconds": 1.0, "err": None if failed else err,
                         "claims_hold": None if failed else int(err < 4),
                         "claims_fail": None if failed else int(err >= 4), "claims_undecided": 0,
                         "claims_ok": None if failed else bool(err < 4),
                         "check_1": None if failed else bool(err < 4), "hash": f"h{i}",
                         "run_dir": None, "error": "boom" if failed else None})  # fmt: skip
            i += 1
    spec = _spec(axes)
    return build_table(rows, spec), spec


def test_heat_map_values_and_check_fractions():
    t, spec = _cells({"a": [1, 2, 3], "b": [1, 2]}, fail_at={"a": 2, "b": 2})
    fig = phase_diagram(t, x="a", y="b", x_values=[1, 2, 3], y_values=[1, 2], metric="err")
    img = fig.axes[0].images[0].get_array()
    # mean over the 3 seeds of a*b + seed = a*b + 1; the failed seed is left out
    assert img[0, 0] == pytest.approx(2.0) and img[1, 2] == pytest.approx(7.0)
    assert img[1, 1] == pytest.approx(5.5)  # seeds 1, 2 only: 5, 6
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert "2\n3/3 ✓" in texts  # a=b=1: 1, 2, 3 < 4: every seed's checks hold
    assert "4\n1/3 ✓" in texts and "3\n2/3 ✓" in texts
    assert "5.5\n0/2 ✓" in texts  # the failed seed has no verdict
    plt.close(fig)
    frac = phase_diagram(t, x="a", y="b", x_values=[1, 2, 3], y_values=[1, 2], metric=None)
    arr = frac.axes[0].images[0].get_array()
    assert arr[0, 0] == 1.0 and arr[0, 1] == pytest.approx(2 / 3)
    assert arr[0, 2] == pytest.approx(1 / 3) and arr[1, 1] == 0.0
    plt.close(frac)


def test_figures_per_grid_shape(tmp_path):
    t2, s2 = _cells({"a": [1, 2], "b": [1, 2, 3]})
    assert sorted(sweep_figures(t2, s2)) == ["heatmap_claims_hold", "heatmap_err"]
    t3, s3 = _cells({"a": [1, 2], "b": [1, 2], "c": [1, 3]})
    assert sorted(sweep_figures(t3, s3)) == sorted(
        f"heatmap_{m}__{y}_vs_{x}"
        for m in ("err", "claims_hold")
        for x, y in (("a", "b"), ("a", "c"), ("b", "c"))
    )
    t1, s1 = _cells({"a": [1, 2, 4]})
    figs = sweep_figures(t1, s1)
    assert sorted(figs) == ["line_claims_hold", "line_err"]
    line = figs["line_err"].axes[0].lines[0]
    assert list(line.get_xdata()) == [1, 2, 4]
    assert np.allclose(line.get_ydata(), [2, 3, 5])  # mean over seeds of a + seed
    plt.close("all")


def test_report_from_cells_file_alone(tmp_path):
    t, spec = _cells({"a": [1, 2], "b": [1, 2]}, fail_at={"a": 1, "b": 2})
    write_cells(tmp_path / "cells.parquet", t, spec)
    back = read_cells(tmp_path / "cells.parquet")
    assert back.spec == spec and back.table.equals(t)
    report = write_sweep_report(tmp_path)
    html = report.read_text()
    assert html.count("data:image/png;base64,") == 2
    assert "Failed cells (1)" in html and "boom" in html and "err is small" in html
    summ = summary_by_point(t, spec)
    assert list(summ["seeds_complete"]) == [3, 2, 3, 3] and list(summ["seeds_failed"]) == [
        0,
        1,
        0,
        0,
    ]
    assert summ.loc[0, "claims_hold_fraction"] == 1.0


def test_progress_counts():
    p = SweepProgress(total=5, label="x", enabled=False, slots=2)
    p.finished(failed=False, cached=True, seconds=None, ran=False)
    p.started(2)
    p.finished(failed=False, cached=False, seconds=2.0, ran=True)
    p.finished(failed=True, cached=False, seconds=None, ran=True)
    assert (p.done, p.running, p.failed, p.cached, p.computed) == (3, 0, 1, 1, 1)
    assert p.per_cell() == 2.0 and p.eta() is not None and p.eta() > 0
    p.close()


def test_progress_without_a_terminal_prints_a_line_per_tenth(capsys):
    # pytest's captured stderr is not a terminal: plain lines instead of a live bar
    p = SweepProgress(total=20, label="sweep lsa-gd", enabled=True, slots=2)
    p.started(2)
    for i in range(19):
        p.finished(failed=i == 3, cached=False, seconds=1.0, ran=True)
        p.started(1)
    p.close()  # 19 of 20 done (interrupted): the last count is printed once more
    lines = capsys.readouterr().err.strip().splitlines()
    counts = [line.split(": ")[1].split(" cells")[0] for line in lines]
    assert counts == [f"{k}/20" for k in (2, 4, 6, 8, 10, 12, 14, 16, 18, 19)]
    assert lines[0].startswith("sweep lsa-gd: 2/20 cells (10%) · run ")
    assert "fail 1" in lines[-1] and "/cell" in lines[-1] and "left" in lines[-1]
