"""Does the gap between the transformer and the Bayes estimators close with training?  Reads the cells
of a training-length sweep of the base cell and fits each ratio's asymptote.

    fmtheory sweep ilr --preset base-cell --grid train.steps=375,750,1500,3000,6000,12000 \\
        --grid model.loss=context,heldout

The ratio transformer / ORE (and / TRE) against training steps S is fitted by
``ratio(S) = a + b·S^(−c)`` (``checks.fit_asymptote``); a is where the gap goes with unlimited
training at this model size and recipe.  A ratio that does not fall (rising at the longest budgets)
has no asymptote of that form, and is reported as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fmtheory.checks import AsymptoteFit, fit_asymptote

__all__ = ["GapFit", "ratios", "fit_gaps", "figure"]

STEPS, LOSS = "train.steps", "model.loss"


def ratios(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per (loss, steps) of the completed cells: ``over_ore``, ``over_tre`` (the base cell's
    transformer error divided by ORE's and TRE's), averaged over seeds."""
    done = cells[cells["status"] == "complete"].copy()
    if LOSS not in done:
        done[LOSS] = "context"
    done["over_ore"] = done["transformer_mse"] / done["ore_mse"]
    done["over_tre"] = done["transformer_mse"] / done["tre_mse"]
    out = done.groupby([LOSS, STEPS], as_index=False)[["over_ore", "over_tre"]].mean()
    return out.sort_values([LOSS, STEPS]).reset_index(drop=True)


@dataclass(frozen=True)
class GapFit:
    """The fit of one ratio for one loss; ``fit`` is None when ``why`` says why there is none."""

    loss: str
    ratio: str
    fit: AsymptoteFit | None
    why: str = ""


def fit_gaps(cells: pd.DataFrame) -> list[GapFit]:
    """The asymptote of ``over_ore`` and ``over_tre`` for each loss (≥ 4 budgets, falling at the
    longest budget); otherwise a ``GapFit`` without fit and the reason."""
    out = []
    r = ratios(cells)
    for loss, g in r.groupby(LOSS):
        for col in ("over_ore", "over_tre"):
            s, v = g[STEPS].to_numpy(float), g[col].to_numpy(float)
            if len(v) < 4:
                out.append(GapFit(loss, col, None, f"{len(v)} budgets, need >= 4"))
                continue
            best = int(np.argmin(v))
            if best < len(v) - 1:
                out.append(GapFit(loss, col, None,
                                  f"not falling: lowest at {int(s[best])} steps ({v[best]:.2f}), "
                                  f"{v[-1]:.2f} at {int(s[-1])}"))  # fmt: skip
                continue
            try:
                out.append(GapFit(loss, col, fit_asymptote(s, v)))
            except (RuntimeError, ValueError) as e:
                out.append(GapFit(loss, col, None, f"no fit: {e}"))
    return out


def figure(cells: pd.DataFrame) -> Any:
    """Transformer / ORE and transformer / TRE against training steps (log axes), one line per loss,
    the fitted asymptote dashed with its 95% band; 1 (the estimator itself) and 1.25 × TRE drawn."""
    import matplotlib.pyplot as plt

    r = ratios(cells)
    fits = {(f.loss, f.ratio): f for f in fit_gaps(cells)}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for ax, col, name in ((axes[0], "over_ore", "ORE (oracle)"), (axes[1], "over_tre", "TRE")):
        for i, (loss, g) in enumerate(r.groupby(LOSS)):
            color = f"C{i}"
            ax.plot(g[STEPS], g[col], "o-", color=color, label=f"{loss} loss")
            f = fits[(loss, col)].fit
            if f is not None:
                s = np.geomspace(g[STEPS].min(), g[STEPS].max() * 4, 60)
                ax.plot(s, f.predict(s), "--", color=color, lw=1)
                lo, hi = f.ci
                ax.axhspan(lo, hi, color=color, alpha=0.12,
                           label=f"asymptote {f.asymptote:.2f} [{lo:.2f}, {hi:.2f}]")  # fmt: skip
        ax.axhline(1.0, color="black", lw=0.8)
        if col == "over_tre":
            ax.axhline(1.25, color="grey", ls=":", lw=1, label="target 1.25 × TRE")
        ax.set(xscale="log", yscale="log", xlabel="training steps", ylabel=f"transformer / {name}",
               title=f"transformer / {name}, base cell")  # fmt: skip
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig
