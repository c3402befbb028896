"""Running the ``self-consuming`` experiment: every regime of the config through the loop of its
model family, each finished regime kept in the run folder (``.npz``, keyed by the config and
:func:`fmtheory.version.source_hash`, so a file made by other code is recomputed), then the table.

Generation numbers in the table count fits (1 = the fit on real data), as in the theory registry.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from fmtheory.contract import Result, RunContext
from fmtheory.experiments.self_consuming.checks import checks
from fmtheory.experiments.self_consuming.config import NAME, Config, build_regimes
from fmtheory.experiments.self_consuming.figures import figures
from fmtheory.experiments.self_consuming.loops_density import DensityLoopSpec, run_density_loop
from fmtheory.experiments.self_consuming.loops_exact import (
    GaussianLoopSpec,
    LinregLoopSpec,
    run_gaussian_loop,
    run_linreg_loop,
)
from fmtheory.experiments.self_consuming.regimes import (
    ContractionSums,
    LoopOutput,
    Regime,
    Sizes,
    regime_rng,
)
from fmtheory.experiments.self_consuming.table import build_table, theory_curves
from fmtheory.progress import progress_bar
from fmtheory.tasks.generative import GaussianSpec, ZipfSpec, make_mixture_data
from fmtheory.version import source_hash

__all__ = ["run"]


def _run_regime(
    cfg: Config, sizes: Sizes, regime: Regime, ctx: RunContext, tick: Callable[[int], None]
) -> list[LoopOutput]:
    rng = regime_rng(cfg.seed, regime, cfg.model)
    if cfg.model == "gaussian":
        s = cfg.gaussian
        spec = GaussianLoopSpec(
            real=GaussianSpec(dim=s.dim, mean=s.mean, std=s.std),
            n0=sizes.n0,
            generations=sizes.generations,
            replicates=sizes.replicates,
            estimator=s.estimator,
            fit_covariance=s.fit_covariance,
            record_every=sizes.record_every,
        )
        return [run_gaussian_loop(spec, regime, rng, tick)]
    if cfg.model == "linreg":
        s = cfg.linreg
        spec = LinregLoopSpec(
            dim=s.dim,
            rows=sizes.n0,
            noise_std=s.noise_std,
            generations=sizes.generations,
            replicates=sizes.replicates,
            record_every=sizes.record_every,
        )
        return [run_linreg_loop(spec, regime, rng, tick)]
    if cfg.model in ("gmm", "kde"):
        s = cfg.gmm if cfg.model == "gmm" else cfg.kde
        spec = DensityLoopSpec(
            family=cfg.model,
            data=make_mixture_data(s.data),
            n0=sizes.n0,
            generations=sizes.generations,
            replicates=sizes.replicates,
            components=getattr(s, "components", 1),
            bandwidth=getattr(s, "bandwidth", 1.0),
            eval_samples=s.eval_samples,
            grid=s.grid,
            record_every=sizes.record_every,
            max_n=s.max_n,
        )
        return [run_density_loop(spec, regime, rng, tick)]
    # neural: imported here so that the numpy families never import torch models / train loop
    from fmtheory.experiments.self_consuming.loops_neural import (
        NeuralLoopSpec,
        run_categorical_loop,
        run_neural_loop,
    )
    from fmtheory.models.token_lm import TokenLMConfig

    s = cfg.neural
    spec = NeuralLoopSpec(
        zipf=ZipfSpec(vocab=s.vocab, exponent=s.exponent),
        seq_len=s.seq_len,
        n0=sizes.n0,
        generations=sizes.generations,
        replicates=sizes.replicates,
        head=s.head,
        model=TokenLMConfig(vocab=s.vocab, embed_dim=s.embed_dim, hidden=s.hidden),
        steps=s.steps,
        lr=s.lr,
        batch_size=s.batch_size,
        weight_decay=s.weight_decay,
        warm_start=s.warm_start,
        record_every=sizes.record_every,
        max_n=s.max_n,
    )
    torch_seed = int(rng.integers(0, 2**62))
    cat = run_categorical_loop(replace(spec, replicates=s.mle_replicates), regime, rng)
    net = run_neural_loop(spec, regime, torch_seed, device=ctx.device, tick=tick)
    return [net, cat]


def _ticks_per_generation(cfg: Config, sizes: Sizes) -> int:
    return 1 if cfg.model in ("gaussian", "linreg") else sizes.replicates


def run(config: Config, ctx: RunContext | None = None) -> Result:
    """Run every regime of ``config``; compare with the closed forms (see the module docstring)."""
    ctx = ctx or RunContext()
    config.check_consistency()
    sizes = config.sizes()
    rset = build_regimes(config)
    per_gen = _ticks_per_generation(config, sizes)
    bar = progress_bar(
        NAME, len(rset.regimes) * sizes.generations * per_gen, unit="fits", enabled=ctx.progress
    )
    outputs: dict[str, list[LoopOutput]] = {}
    # A regime file is reused only when made by the same config AND the same code.
    fingerprint = f"{source_hash()}:{config.model_dump_json()}"
    try:
        for regime in rset.regimes:
            bar.describe(f"{config.model}: {regime.label}")
            path = ctx.path(f"self-consuming/regime-{zlib.crc32(regime.label.encode()):08x}.npz")
            done = _load_outputs(path, fingerprint, regime.label)
            if done is None:
                done = _run_regime(config, sizes, regime, ctx, bar.advance)
                _save_outputs(path, fingerprint, regime.label, done)
            else:
                bar.advance(sizes.generations * per_gen)
            outputs[regime.label] = done
    finally:
        bar.close()
    theory = {r.label: theory_curves(config, sizes, r) for r in rset.regimes}
    table = build_table(config, sizes, rset, outputs, theory)
    return Result(table=table, checks=checks(table, config), figures=figures(table))


def _save_outputs(path: Path | None, fingerprint: str, label: str, outs: list[LoopOutput]) -> None:
    """Keep a finished regime in the run's workdir (``.npz``, no pickle), so a run interrupted
    later resumes without redoing it.  Written to a temporary name, then renamed (atomic)."""
    if path is None:
        return
    arrays: dict[str, np.ndarray] = {
        "fingerprint": np.array(fingerprint),
        "label": np.array(label),
        "n_outputs": np.array(len(outs)),
    }
    for i, o in enumerate(outs):
        arrays[f"{i}/method"] = np.array(o.method)
        arrays[f"{i}/generations"] = o.generations
        for k, v in o.metrics.items():
            arrays[f"{i}/metric/{k}"] = v
        for k, v in o.extra.items():
            arrays[f"{i}/extra/{k}"] = np.array(v)
        if o.contraction is not None:
            c = o.contraction
            arrays[f"{i}/contraction"] = np.array([c.sa, c.sb, c.saa, c.sab, c.sbb, c.count])
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def _load_outputs(path: Path | None, fingerprint: str, label: str) -> list[LoopOutput] | None:
    """A regime saved by :func:`_save_outputs` for this exact config, else None."""
    if path is None or not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            if str(f["fingerprint"]) != fingerprint or str(f["label"]) != label:
                return None
            outs = []
            for i in range(int(f["n_outputs"])):
                pre = f"{i}/"
                metrics = {
                    k[len(pre + "metric/") :]: f[k]
                    for k in f.files
                    if k.startswith(pre + "metric/")
                }
                extra = {
                    k[len(pre + "extra/") :]: float(f[k])
                    for k in f.files
                    if k.startswith(pre + "extra/")
                }
                con = None
                if pre + "contraction" in f.files:
                    v = f[pre + "contraction"]
                    con = ContractionSums(*map(float, v[:5]), count=int(v[5]))
                outs.append(
                    LoopOutput(
                        method=str(f[pre + "method"]),
                        generations=f[pre + "generations"],
                        metrics=metrics,
                        contraction=con,
                        extra=extra,
                    )
                )
            return outs
    except (OSError, KeyError, ValueError):
        return None  # unreadable or partial: recompute
