"""The training-length analysis of ilr on constructed sweep cells."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fmtheory.experiments.ilr import training_length as tl


def _cells(falling: bool) -> pd.DataFrame:
    steps = np.array([375, 750, 1500, 3000, 6000, 12000])
    rows = []
    for s in steps:
        t_over_ore = 1.3 + 20 * s**-0.5 if falling else 2.0 + 1e-4 * s
        rows.append({"status": "complete", tl.STEPS: s, tl.LOSS: "heldout", "transformer_mse": 0.004 * t_over_ore,
                     "ore_mse": 0.004, "tre_mse": 0.005})  # fmt: skip
    rows.append({"status": "pending", tl.STEPS: 24000, tl.LOSS: "heldout", "transformer_mse": np.nan,
                 "ore_mse": np.nan, "tre_mse": np.nan})  # fmt: skip
    return pd.DataFrame(rows)


def test_asymptote_of_a_falling_gap():
    fits = {f.ratio: f for f in tl.fit_gaps(_cells(True))}
    assert fits["over_ore"].fit.asymptote == pytest.approx(1.3, rel=1e-4)
    assert fits["over_tre"].fit.asymptote == pytest.approx(1.3 * 0.004 / 0.005, rel=1e-4)
    assert len(tl.ratios(_cells(True))) == 6  # the pending cell is left out


def test_no_asymptote_when_the_gap_grows():
    fits = tl.fit_gaps(_cells(False))
    assert all(f.fit is None and f.why.startswith("not falling") for f in fits)
    tl.figure(_cells(False))
