"""Claim: trained by SGD on next-token prediction, the self-attention of a 1-layer transformer first
*scans* (its attention over context tokens moves away from the common tokens onto the tokens distinct
to the next token, its entropy falls) and then *snaps* (the change decelerates and the token
combination freezes); a faster decoder (larger η_Y) freezes it earlier and less sparse (Tian, Wang,
Chen & Du 2023, "Scan and Snap", NeurIPS, §4–5, Fig. 4 and 6; survey arXiv:2410.11444 Thm 5.2).

Model: the paper's reparameterised 1-layer transformer (its Theorem 1 and the authors' ``Model2``):
no positional encoding, attention logits Z[query, key token], attention output over the T context
tokens ℓ2-normalised, decoder Y, zero initialisation.  Trained by SGD through the one training entry
point; the two learning rates η_Y, η_Z are realised by the parameterisation Y = √η_Y·θ_Y,
Z = √η_Z·θ_Z with SGD at learning rate 1 on θ (for plain SGD this is exactly a step of η on Y or Z).

Prediction: gradient descent on the same model's *population* loss with an infinitely long context
(the paper's assumptions, ``theory/scan_snap.py``), at the same learning rates and steps.  Measured:
every ``eval.every`` steps, on a fixed evaluation set, the entropy of the attention over context
token types (``probes/token_attention.py``) and the attention mass on the class's distinct tokens.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from fmtheory.checks import ci_row, exact_row, inconclusive, not_applicable
from fmtheory.contract import (
    Chapter,
    Check,
    Experiment,
    ExperimentConfig,
    Result,
    RunContext,
    Section,
    register_experiment,
)
from fmtheory.probes.token_attention import token_attention, token_attention_entropy
from fmtheory.theory.scan_snap import DataModel, data_model, population_dynamics
from fmtheory.train.fit import fit, make_generator
from fmtheory.train.loop import TrainSpec

NAME = "scan-snap"
SOURCE = "Tian, Wang, Chen & Du 2023, 'Scan and Snap', NeurIPS, §4–5, Fig. 4, 6; survey Thm 5.2"
PRED = "population GD (T → ∞)"  # its logits Z(t), evaluated on the evaluation contexts

#: Trajectory: at every evaluation step the measured entropy stays within this fraction of the
#: predicted total drop of the entropy (so a run whose attention does not scan at all fails); both
#: curves are read through the same probe on the same evaluation contexts, so the finite-T plug-in
#: bias of the entropy is common to both.
TRAJ_REL_TOL = 0.125
#: Below this predicted drop (nats) the evaluation noise (s.e. ≈ 0.005) is no longer negligible
#: against the tolerance: inconclusive.
MIN_DROP = 0.1
#: Final attention mass on the distinct tokens: measured within this of the prediction.
MASS_TOL = 0.05
#: "Less sparse": the larger-η_Y run's final entropy exceeds the base run's by more than this many
#: standard errors of the difference.  "Frozen earlier": its entropy change over the second half of
#: the run is smaller in magnitude than the base run's.
Z_DIFF = 2.0


class TaskSection(Section):
    """Sequence classes (the paper's §3.2; authors' ``Dataset2``)."""

    n_queries: int = Field(2, ge=1, le=16, description="query tokens (last token of a sequence)")
    next_per_query: int = Field(
        2, ge=2, le=16, description="next tokens per query (≥ 2: the query alone cannot decide)"
    )
    n_common: int = Field(20, ge=0, le=500, description="tokens common to every class")
    n_distinct: int = Field(4, ge=1, le=100, description="tokens distinct to each class")
    distinct_min: float = Field(
        0.1, gt=0.0, le=1.0, description="distinct tokens' weights: linspace(distinct_min, 1)"
    )
    context_len: int = Field(256, ge=2, le=8192, description="context tokens T before the query")


class OptimSection(Section):
    eta_z: float = Field(5.0, gt=0.0, le=100.0, description="self-attention learning rate η_Z")
    eta_y: float = Field(1.0, gt=0.0, le=100.0, description="decoder learning rate η_Y (base run)")
    eta_y_large: float = Field(
        10.0, gt=0.0, le=1000.0, description="decoder learning rate of the comparison run"
    )

    @model_validator(mode="after")
    def _order(self) -> OptimSection:
        if self.eta_y_large <= self.eta_y:
            raise ValueError(
                f"optim.eta_y_large = {self.eta_y_large}: must be > optim.eta_y = {self.eta_y}"
            )
        return self


class RunSection(Section):
    """Plain SGD (learning rate 1 on the rescaled parameters, no momentum, no clipping)."""

    steps: int = Field(400, ge=1, le=1_000_000)
    batch_size: int = Field(128, ge=1, le=65536, description="sequences per SGD step")


class EvalSection(Section):
    every: int = Field(10, ge=1, le=1_000_000, description="steps between measurements")
    sequences_per_class: int = Field(
        64, ge=2, le=100_000, description="fixed evaluation sequences per class"
    )


class Config(ExperimentConfig):
    task: TaskSection = TaskSection()
    optim: OptimSection = OptimSection()
    train: RunSection = RunSection()
    eval: EvalSection = EvalSection()


def label(config: Config) -> str:
    t = config.task
    return (f"1-layer Y/Z transformer, {t.n_queries * t.next_per_query} classes, "
            f"{t.n_common} common + {t.n_distinct} distinct tokens, T = {t.context_len}")  # fmt: skip


def _method(eta_y: float, eta_z: float) -> str:
    return f"SGD η_Y={eta_y:g} η_Z={eta_z:g}"


def _pred(eta_y: float, eta_z: float) -> str:
    return f"{PRED} η_Y={eta_y:g} η_Z={eta_z:g}"


def make_data(config: Config) -> DataModel:
    t = config.task
    return data_model(n_queries=t.n_queries, next_per_query=t.next_per_query, n_common=t.n_common,
                      n_distinct=t.n_distinct, distinct_min=t.distinct_min)  # fmt: skip


class YZTransformer(torch.nn.Module):
    """Tian et al. 2023's reparameterised 1-layer transformer (Theorem 1; authors' ``Model2``).

    forward(ctx (B, T) context token ids, query (B,) query ids) -> (logits (B, K), pattern
    (B, 1, 1, T) attention of the query over the context).  Y = √η_Y·θ_Y (K, M), Z = √η_Z·θ_Z (Q, M),
    both zero at initialisation; the attention output Σ_s a_s e_{x_s} is ℓ2-normalised.
    """

    def __init__(self, *, n_classes: int, n_queries: int, vocab: int, eta_y: float, eta_z: float):
        super().__init__()
        self.vocab = vocab
        self.theta_y = torch.nn.Parameter(torch.zeros(n_classes, vocab, dtype=torch.float64))
        self.theta_z = torch.nn.Parameter(torch.zeros(n_queries, vocab, dtype=torch.float64))
        self.sy, self.sz = math.sqrt(eta_y), math.sqrt(eta_z)

    def forward(self, ctx: torch.Tensor, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = (self.sz * self.theta_z)[query]  # (B, M)
        att = torch.softmax(z.gather(1, ctx), dim=1)  # (B, T)
        c = att.new_zeros(ctx.shape[0], self.vocab).scatter_add(1, ctx, att)  # (B, M)
        f = c / c.norm(dim=1, keepdim=True)
        return f @ (self.sy * self.theta_y).T, att[:, None, None, :]


def sample(
    dm: DataModel, probs: torch.Tensor, classes: torch.Tensor, t: int, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Context (B, T) drawn i.i.d. from P(· | n) for each class n in ``classes`` (B,), and queries."""
    ctx = torch.multinomial(probs[classes], t, replacement=True, generator=g)
    query = torch.as_tensor(dm.query, device=classes.device)[classes]
    return ctx, query


@torch.no_grad()
def measure(model: YZTransformer, ev: dict[str, torch.Tensor], *, step: int, method: str,
            seed: int) -> list[dict]:  # fmt: skip
    logits, pattern = model(ev["ctx"], ev["query"])
    ent = token_attention_entropy(pattern, ev["ctx"], vocab=model.vocab)[:, 0, 0]
    c = token_attention(pattern, ev["ctx"], vocab=model.vocab)[:, 0, 0]  # (B, M)
    mass = (c * ev["distinct"]).sum(1)
    loss = F.cross_entropy(logits, ev["label"], reduction="none")
    return [ci_row(method, "entropy", ent, seed=seed, step=step),
            ci_row(method, "distinct_mass", mass, seed=seed, step=step),
            ci_row(method, "loss", loss, seed=seed, step=step)]  # fmt: skip


def run(config: Config, ctx: RunContext | None = None) -> Result:
    ctx = ctx or RunContext()
    dm = make_data(config)
    k, m = dm.probs.shape
    dev = ctx.device
    probs = torch.as_tensor(dm.probs, device=dev)
    ge = make_generator(config.seed + 101, dev)
    ev_cls = torch.arange(k, device=dev).repeat_interleave(config.eval.sequences_per_class)
    ev_ctx, ev_q = sample(dm, probs, ev_cls, config.task.context_len, ge)
    ev = dict(ctx=ev_ctx, query=ev_q, label=ev_cls,
              distinct=torch.as_tensor(dm.distinct, device=dev, dtype=torch.float64)[ev_cls])  # fmt: skip
    spec = TrainSpec(steps=config.train.steps, lr=1.0, warmup_steps=0, schedule="constant",
                     grad_clip=None, checkpoint_every=max(1, config.train.steps))  # fmt: skip
    rows: list[dict[str, Any]] = []
    every, eta_z = config.eval.every, config.optim.eta_z
    for name, eta_y in (("base", config.optim.eta_y), ("large", config.optim.eta_y_large)):
        method = _method(eta_y, eta_z)
        model = YZTransformer(n_classes=k, n_queries=dm.n_queries, vocab=m, eta_y=eta_y,
                              eta_z=eta_z).to(dev)  # fmt: skip

        def loss_fn(mod: torch.nn.Module, step: int, g: torch.Generator, method: str = method):
            if step % every == 0:
                rows.extend(measure(mod, ev, step=step, method=method, seed=config.seed))
            cls = torch.randint(0, k, (config.train.batch_size,), generator=g, device=g.device)
            x, q = sample(dm, probs, cls, config.task.context_len, g)
            return F.cross_entropy(mod(x, q)[0], cls)

        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        res = fit(model, loss_fn, config.train, seed=config.seed, ctx=ctx, spec=spec,
                  optimizer=opt, name=name)  # fmt: skip
        rows.extend(measure(model, ev, step=spec.steps, method=method, seed=config.seed))
        rows.append(exact_row(method, "steps_per_second", res.steps_per_second,
                              seed=config.seed, step=spec.steps))  # fmt: skip
        # The prediction's logits Z(t), read through the same probe on the same evaluation
        # contexts (so the finite-T plug-in bias of the entropy is common to both).
        traj = population_dynamics(dm, eta_y=eta_y, eta_z=eta_z, steps=spec.steps)
        probe = YZTransformer(n_classes=k, n_queries=dm.n_queries, vocab=m, eta_y=1.0,
                              eta_z=1.0).to(dev)  # fmt: skip
        for s in sorted({*range(0, spec.steps, every), spec.steps}):
            with torch.no_grad():
                probe.theta_z.copy_(torch.as_tensor(traj.z[s], device=dev))
            for r in measure(probe, ev, step=s, method=_pred(eta_y, eta_z), seed=config.seed):
                if r["metric"] != "loss":
                    rows.append(r)
    table = pd.DataFrame(rows).drop_duplicates(subset=["method", "metric", "step"], keep="last")
    table = table.reset_index(drop=True)
    return Result(table=table, checks=checks(table, config), figures=figures(table))


# ---------------------------------------------------------------------------------------------
def _curve(table: pd.DataFrame, method: str, metric: str) -> pd.DataFrame:
    return table[(table["method"] == method) & (table["metric"] == metric)].sort_values("step")


def _paired(table: pd.DataFrame, eta_y: float, eta_z: float, metric: str) -> pd.DataFrame:
    """Measured and predicted ``metric`` at the steps both have: columns step, value, se, pred."""
    meas = _curve(table, _method(eta_y, eta_z), metric)[["step", "value", "se"]]
    pred = _curve(table, _pred(eta_y, eta_z), metric)[["step", "value"]]
    return meas.merge(pred.rename(columns={"value": "pred"}), on="step")


def late_change(c: pd.DataFrame) -> float:
    """Change of the value over the second half of the run (last value minus value at mid-run)."""
    last = float(c["step"].max())
    mid = c[c["step"] >= last / 2].iloc[0]
    return float(c["value"].iloc[-1] - mid["value"])


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    out: list[Check] = []
    o = config.optim
    base = _paired(table, o.eta_y, o.eta_z, "entropy")

    # sanity: the decoder has learned (past the snap, p(correct) > 1/2)
    claim = "by the end of the base run the decoder predicts the next token (loss below ln 2)"
    tol = "final evaluation cross-entropy < ln 2 = 0.693 (p(correct) > 1/2)"
    loss = _curve(table, _method(o.eta_y, o.eta_z), "loss")
    if loss.empty:
        out.append(not_applicable(claim, SOURCE, "sanity", "no base run in the table", tol))
    else:
        v = float(loss["value"].iloc[-1])
        out.append(Check(claim, SOURCE, "sanity", "< 0.693", round(v, 4), tol,
                         "holds" if v < math.log(2) else "fails"))  # fmt: skip

    # claim 1: the entropy trajectory follows the infinite-context prediction
    claim = ("the attention entropy over context tokens falls along the predicted scan-and-snap "
             "trajectory (gradient descent on the infinite-context population loss)")  # fmt: skip
    tol = (f"max over evaluation steps |H_measured − H_predicted| ≤ {TRAJ_REL_TOL:g} × the "
           f"predicted drop of H; inconclusive when that drop is < {MIN_DROP:g} nats")  # fmt: skip
    why_assume = ("theory assumes T → ∞ and the expected gradient; the run has T = "
                  f"{config.task.context_len} and minibatches of {config.train.batch_size}")  # fmt: skip
    if base.empty:
        out.append(not_applicable(claim, SOURCE, "claim", "no base run in the table", tol))
    else:
        dev = float((base["value"] - base["pred"]).abs().max())
        drop = float(base["pred"].iloc[0] - base["pred"].min())
        at = float(base.loc[(base["value"] - base["pred"]).abs().idxmax(), "step"])
        meas = (f"max deviation {dev:.3f} nats (step {at:.0f}); entropy {base['value'].iloc[0]:.3f}"
                f" → {base['value'].iloc[-1]:.3f}, predicted {base['pred'].iloc[0]:.3f} → "
                f"{base['pred'].iloc[-1]:.3f}")  # fmt: skip
        if drop < MIN_DROP:
            out.append(inconclusive(claim, SOURCE, "claim",
                                    f"the predicted entropy falls by only {drop:.3f} nats: the "
                                    "evaluation noise is not negligible against the tolerance",
                                    predicted=f"drop {drop:.3f}", measured=meas, tolerance=tol))  # fmt: skip
        else:
            lim = TRAJ_REL_TOL * drop
            out.append(Check(claim, SOURCE, "claim", f"≤ {lim:.3f} nats from the curve", meas, tol,
                             "holds" if dev <= lim else "fails", why_assume))  # fmt: skip

    # claim 2: attention concentrates on the distinct tokens, as much as predicted
    claim = "attention concentrates on the class's distinct tokens (final mass vs predicted)"
    tol = (f"|final mass − predicted| ≤ {MASS_TOL}, and the final mass exceeds the initial mass "
           "by more than both tolerances")  # fmt: skip
    mass = _paired(table, o.eta_y, o.eta_z, "distinct_mass")
    if mass.empty:
        out.append(not_applicable(claim, SOURCE, "claim", "no base run in the table", tol))
    else:
        m0, m1, p1 = (float(mass["value"].iloc[0]), float(mass["value"].iloc[-1]),
                      float(mass["pred"].iloc[-1]))  # fmt: skip
        meas = f"mass on distinct tokens {m0:.3f} → {m1:.3f} (± {float(mass['se'].iloc[-1]):.3f})"
        ok = abs(m1 - p1) <= MASS_TOL and m1 - m0 > 2 * MASS_TOL
        out.append(Check(claim, SOURCE, "claim", f"{p1:.3f}", meas, tol,
                         "holds" if ok else "fails", why_assume))  # fmt: skip

    # claim 3: larger η_Y freezes attention earlier and less sparse
    claim = (f"a larger decoder learning rate (η_Y = {o.eta_y_large:g} vs {o.eta_y:g}) freezes "
             "the attention earlier and less sparse")  # fmt: skip
    tol = (f"final entropy higher by > {Z_DIFF:g} s.e. of the difference, and a smaller |entropy "
           "change| over the second half of the run (frozen earlier)")  # fmt: skip
    big_m = _curve(table, _method(o.eta_y_large, o.eta_z), "entropy")
    base_m = _curve(table, _method(o.eta_y, o.eta_z), "entropy")
    big_p = _curve(table, _pred(o.eta_y_large, o.eta_z), "entropy")
    base_p = _curve(table, _pred(o.eta_y, o.eta_z), "entropy")
    if big_m.empty or base_m.empty or len(base_m) < 3:
        out.append(not_applicable(claim, SOURCE, "claim", "the two runs are not in the table", tol))
    else:
        d = float(big_m["value"].iloc[-1] - base_m["value"].iloc[-1])
        se = math.hypot(float(big_m["se"].iloc[-1]), float(base_m["se"].iloc[-1]))
        lb, ll = abs(late_change(base_m)), abs(late_change(big_m))
        meas = (f"final entropy {base_m['value'].iloc[-1]:.3f} (η_Y {o.eta_y:g}) vs "
                f"{big_m['value'].iloc[-1]:.3f} (η_Y {o.eta_y_large:g}), difference {d:.3f} ± "
                f"{se:.3f}; late |ΔH| {lb:.3f} vs {ll:.3f}")  # fmt: skip
        pred = "higher and frozen"
        if not big_p.empty and not base_p.empty:
            pred = (f"final entropy {base_p['value'].iloc[-1]:.3f} vs {big_p['value'].iloc[-1]:.3f}; "
                    f"late |ΔH| {abs(late_change(base_p)):.3f} vs {abs(late_change(big_p)):.3f}")  # fmt: skip
        less_sparse = d > Z_DIFF * se
        earlier = ll < lb
        if less_sparse and earlier:
            status = "holds"
        elif d < -Z_DIFF * se or ll > lb:
            status = "fails"
        else:
            out.append(inconclusive(claim, SOURCE, "claim", "the final entropies differ by less "
                                    f"than {Z_DIFF:g} s.e.", predicted=pred, measured=meas,
                                    tolerance=tol))  # fmt: skip
            return out
        out.append(Check(claim, SOURCE, "claim", pred, meas, tol, status))
    return out


# ---------------------------------------------------------------------------------------------
def figures(table: pd.DataFrame) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    figs: dict[str, Any] = {}
    measured = [m for m in table["method"].unique() if not str(m).startswith(PRED)]
    preds = [m for m in table["method"].unique() if str(m).startswith(PRED)]
    for metric, ylabel, key in (("entropy", "attention entropy over context tokens (nats)",
                                 "scan-snap"),
                                ("distinct_mass", "attention mass on distinct tokens",
                                 "distinct-mass")):  # fmt: skip
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for i, m in enumerate(measured):
            c = _curve(table, m, metric)
            ax.plot(c["step"], c["value"], color=f"C{i}", label=f"measured, {m}")
            ax.fill_between(c["step"], c["ci_low"], c["ci_high"], color=f"C{i}", alpha=0.2)
        for i, m in enumerate(preds):
            c = _curve(table, m, metric)
            ax.plot(c["step"], c["value"], "--", color=f"C{i}", label=f"predicted, {m}")
        ax.set_xlabel("SGD step")
        ax.set_ylabel(ylabel)
        ax.set_title("Scan and snap: 1-layer transformer attention")
        ax.legend(fontsize=7)
        fig.tight_layout()
        figs[key] = fig
    return figs


def headline(table: pd.DataFrame, config: Config) -> dict[str, float]:
    o = config.optim
    b = _curve(table, _method(o.eta_y, o.eta_z), "entropy")
    g = _curve(table, _method(o.eta_y_large, o.eta_z), "entropy")
    p = _paired(table, o.eta_y, o.eta_z, "entropy")
    nan = float("nan")
    return {
        "entropy_final": float(b["value"].iloc[-1]) if len(b) else nan,
        "entropy_final_large_eta_y": float(g["value"].iloc[-1]) if len(g) else nan,
        "max_deviation": float((p["value"] - p["pred"]).abs().max()) if len(p) else nan,
    }


EXPERIMENT = register_experiment(Experiment(
    name=NAME,
    claim="A 1-layer transformer's attention scans from common to distinct tokens and then snaps "
          "(freezes); a faster decoder freezes it earlier and less sparse.",
    source=SOURCE,
    chapter=Chapter.DYNAMICS.value,
    config_cls=Config,
    run=run,
    checks=checks,
    figures=figures,
    headline=headline,
    label=label,
    formula="z(t) = κ (η_Z/η_Y) u(t), e^u + (K−1)u = 1 + (K−1)η_Y t: linear before the snap "
            "t0 ∝ 1/η_Y, logarithmic after (Tian et al. 2023 §5)",
    key_figure="scan-snap",
))  # fmt: skip
