"""ilr's training: the linear transformer of each pretraining run, and the GPT forward predictor.

Finished models are kept in the run folder (``models/``) with the source hash of the code that trained
them; a model trained by other code is retrained, never reused.
"""

from __future__ import annotations

import json
from typing import Any

import torch

from fmtheory.contract import RunContext
from fmtheory.experiments.ilr.config import NAME, Config, Run, _seed, _spec, train_contexts
from fmtheory.models.icl import build_regression_transformer
from fmtheory.models.linear_transformer import (
    LinearTransformer,
    LinearTransformerConfig,
    supervised_loss,
    unsupervised_loss,
)
from fmtheory.tasks.ilr import ILRPrior, sample_ilr
from fmtheory.train import fit, load_model, model_metadata, save_model, seeded
from fmtheory.train.icl import train_regression_gpt
from fmtheory.version import source_hash

__all__ = ["build_model", "train_run", "train_gpt"]


def build_model(config: Config) -> LinearTransformer:
    m = config.model
    return LinearTransformer(LinearTransformerConfig(dim=config.task.dim, n_layer=m.n_layer,
                                                     n_head=m.n_head, n_embd=m.n_embd,
                                                     layernorm=m.layernorm))  # fmt: skip


def train_run(
    config: Config, run: Run, prior: ILRPrior, ctx: RunContext
) -> tuple[LinearTransformer, list[int], list[float]]:
    """Train (or reload) the linear transformer of ``run``; returns (model, loss steps, losses)."""
    spec, tc, mc = _spec(config, run), config.train, config.model
    model = seeded(lambda: build_model(config), _seed(config.seed, "init", run.key))
    model.to(ctx.device)
    final = ctx.path(f"models/{run.key}.safetensors")
    done = _saved(final)
    if done is not None:
        load_model(final, model)
        model.eval()
        return model, *done
    ns = train_contexts(config)

    def loss_fn(m: torch.nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
        n = ns[step % len(ns)]
        extra = mc.heldout_points if mc.loss == "heldout" else 0
        b = sample_ilr(spec, prior, batch=tc.batch_size, n_points=n + extra, generator=g)
        w_hat = m(b.x[:, :n], b.y[:, :n])
        if mc.loss == "context":
            return unsupervised_loss(w_hat, b.x, b.y)
        if mc.loss == "heldout":
            return unsupervised_loss(w_hat, b.x[:, n:], b.y[:, n:])
        return supervised_loss(w_hat, b.w)

    result = fit(model, loss_fn, tc, seed=_seed(config.seed, "train", run.key), ctx=ctx,
                 name=run.key)  # fmt: skip
    model.eval()
    _save(final, model, list(result.loss_steps), list(result.losses))
    return model, list(result.loss_steps), list(result.losses)


def _saved(path: Any) -> tuple[list[int], list[float]] | None:
    """(loss steps, losses) stored with a finished model at ``path``; None if there is none."""
    if path is None or not path.exists():
        return None
    header = model_metadata(path)
    if header.get("source_hash") != source_hash():
        return None  # trained by other code: train again
    meta = json.loads(header["losses"])
    return list(meta["steps"]), list(meta["losses"])


def _save(path: Any, model: torch.nn.Module, steps: list[int], losses: list[float]) -> None:
    if path is not None:
        save_model(path, model, {"experiment": NAME, "source_hash": source_hash(),
                                 "losses": json.dumps({"steps": steps, "losses": losses})})  # fmt: skip


def train_gpt(
    config: Config, run: Run, prior: ILRPrior, ctx: RunContext
) -> tuple[Any, list[int], list[float]]:
    """The GPT of ``config.gpt`` trained to predict y from the pairs before it (base prior);
    reloaded from ``models/gpt.safetensors`` when a finished one by this code is stored."""
    spec, n = _spec(config, run), config.task.context
    final = ctx.path("models/gpt.safetensors")
    done = _saved(final)
    if done is not None:
        gpt = build_regression_transformer(config.gpt.model, dim=config.task.dim, n_points=n + 1)
        load_model(final, gpt.to(ctx.device))
        gpt.eval()
        return gpt, *done

    def sample(batch: int, pts: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        b = sample_ilr(spec, prior, batch=batch, n_points=pts, generator=g)
        return b.x, b.y

    gpt, res = train_regression_gpt(config.gpt.model, config.gpt.train, spec=spec, n_points=n + 1,
                                    seed=_seed(config.seed, "gpt"), ctx=ctx, name="gpt",
                                    sample=sample)  # fmt: skip
    gpt.eval()
    _save(final, gpt, list(res.loss_steps), list(res.losses))
    return gpt, list(res.loss_steps), list(res.losses)
