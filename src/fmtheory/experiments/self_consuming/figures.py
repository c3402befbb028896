"""Figures of the ``self-consuming`` experiment and its headline, from the table alone."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["figures", "headline", "HEADLINE_DISTANCE"]

_YLABEL = {
    "gaussian": "exact W2 to the real Gaussian",
    "linreg": "E||ŵ − w*||² (test error)",
    "gmm": "total variation to the real density (grid)",
    "kde": "total variation to the real density (grid)",
    "neural": "total variation of p(x₀) to the Zipf law",
}
_FIGURE_METRICS = (
    "distance",
    "distance_median",
    "log_var_ratio",
    "log_var_ratio_var",
    "var_ratio_median",
    "mean_sq_err",
    "w2_sq",
    "w1",
    "w2",
    "model_variance",
    "missing_mass",
    "lost_tail",
    "lost_head",
    "log_ratio_tail",
    "log_ratio_head",
    "tail_ratio",
    "cond_tv",
)


def figures(table: pd.DataFrame) -> dict[str, Any]:
    """One figure per metric, every regime on it (lines: mean with 95% band; dashed: theory)."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    figs: dict[str, Any] = {}
    if table.empty:
        return figs
    model = str(table["model"].iloc[0])
    curves = table[table["generation"].notna()]
    regimes = list(dict.fromkeys(curves["regime"]))
    tab10 = colormaps["tab10"]
    colors = {r: tab10(i % 10) for i, r in enumerate(regimes)}
    styles = ["-", ":", "-."]
    for metric in _FIGURE_METRICS:
        sub = curves[curves["metric"] == metric]
        if sub.empty:
            continue
        # layout="constrained": the layout is computed when the figure is drawn, not here
        fig = Figure(figsize=(7.5, 4.5), layout="constrained")  # not registered with pyplot
        ax = fig.subplots()
        groups = {k: g.sort_values("generation") for k, g in sub.groupby(["regime", "method"])}
        methods = [m for m in dict.fromkeys(sub["method"]) if m != "theory"]
        for reg in regimes:
            for mi, method in enumerate(methods):
                s = groups.get((reg, method))
                if s is None:
                    continue
                x = s["generation"].to_numpy(dtype=float)
                name = reg if len(methods) == 1 else f"{reg} ({method})"
                ax.plot(x, s["value"], styles[mi % 3], color=colors[reg], label=name)
                ax.fill_between(x, s["ci_low"], s["ci_high"], color=colors[reg], alpha=0.15)
            t = groups.get((reg, "theory"))
            if t is not None:
                ax.plot(
                    t["generation"].to_numpy(dtype=float),
                    t["value"],
                    "--",
                    color=colors[reg],
                    linewidth=1.0,
                    label=f"{reg} (theory)",
                )
        vals = sub["value"].to_numpy(dtype=float)
        vals = vals[np.isfinite(vals) & (vals > 0)]
        if vals.size and metric != "log_var_ratio" and vals.max() / vals.min() > 100:
            ax.set_yscale("log")
        ax.set_xlabel("generation (1 = fit on real data)")
        ax.set_ylabel(_YLABEL.get(model, "distance") if metric == "distance" else metric)
        ax.set_title(f"self-consuming loop, {model}: {metric}")
        ax.legend(fontsize=7, loc="best")
        figs[metric] = fig
    return figs


#: headline key of the final distance per family, named by its unit (sweeps never mix units)
HEADLINE_DISTANCE = {
    "gaussian": "w2_to_real",
    "linreg": "param_sq_err",
    "gmm": "tv_to_real",
    "kde": "tv_to_real",
    "neural": "tv_first_token",
}


def headline(table: pd.DataFrame, config: Any) -> dict[str, float]:
    """The CONFIGURED regime's numbers (so a sweep over ``mix.*`` or ``samples.*`` shows that key's
    effect): its mean distance at the last generation (key named by the family's unit), the
    distance's paired change since generation 1, and its contraction factor where measured."""
    out: dict[str, float] = {}
    if table.empty:
        return out
    conf = table[table["configured"].astype(bool) & (table["method"] != "theory")]
    if "token-lm" in set(conf["method"]):
        conf = conf[conf["method"] == "token-lm"]
    key = HEADLINE_DISTANCE.get(str(table["model"].iloc[0]), "distance")
    d = conf[(conf["metric"] == "distance") & conf["generation"].notna()]
    if not d.empty:
        last = d.loc[d["generation"].idxmax()]
        out[f"{key}@final"] = float(last["value"])
    for metric in ("distance_change", "contraction"):
        r = conf[conf["metric"] == metric]
        if not r.empty:
            name = f"{key}_change" if metric == "distance_change" else metric
            out[name] = float(r["value"].iloc[0])
    return out
