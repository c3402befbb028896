"""Peer benchmark: training time to reach the same in-context error, fmtheory's model against a Hugging
Face ``transformers`` GPT-2 set up as Garg et al. 2022 do, both timed in this one run.

Task: noiseless linear regression, d = 3, prompts of 2d + 1 = 7 pairs (x ~ N(0, I), w ~ N(0, I)).
Error: squared error of the prediction at context length k = 2d, divided by d, on 2,000 held-out
prompts (the zero predictor scores 1.0).  Target: ``TARGET`` = 0.15.

- ``value``: CPU seconds of training (process time of forward + backward + optimizer step, one
  thread, evaluation excluded: honest under load; wall seconds are reported too) until fmtheory's
  model (``icl-regression``'s quick recipe: 4 layers × 4 heads × width 64, linear attention, "carry"
  tokens, batch 128, lr 2e-3, 100 warm-up steps, gradient clipping at 1) reaches the target.
- ``reference``: the same for ``transformers.GPT2Model`` as in Garg et al.'s ``models.py``
  (``TransformerModel``): interleaved tokens x_1, (y_1, 0, ..., 0), x_2, ...; a linear read-in
  (d → width) and read-out (width → 1) with PyTorch's default initialisation, learned positions,
  dropout 0, the prediction of y_k read at the token of x_k.  Same size (4 layers × 4 heads × width 64),
  same batch; Adam at lr 1e-3 (Garg et al. use 1e-4 over 500k steps; 1e-3 is faster here and keeps
  the reference a fair one), constant schedule, no clipping, as in their ``train.py``.
- ``ratio = reference / value``: how many times faster fmtheory reaches the same error.

Both train on the same prompt stream (same generator seed) with one torch thread, checked every
``EVAL_EVERY`` steps.  A model that has not reached the target after ``MAX_SECONDS`` of training
reports its time as a lower bound (``*_reached = False``); the ratio is then a bound, said so by the
result's ``ratio_kind``.  ``transformers`` is a benchmark-only extra (measured with 5.25.0; the API used —
``GPT2Config``, ``GPT2Model(inputs_embeds=...)`` — is the same across 4.x and 5.x).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from fmtheory.models.icl import build_regression_transformer
from fmtheory.sections import GPTSection
from fmtheory.tasks import RegressionSpec, make_generator, sample_regression

DIM = 3
N_POINTS = 2 * DIM + 1  # the prediction at k = 2d is the last one
TARGET = 0.15  # normalised squared error at k = 2d (zero predictor: 1.0)
EVAL_PROMPTS, EVAL_EVERY, BATCH = 2000, 50, 128
MAX_SECONDS = 300.0  # training-time cap per model
LAYERS, HEADS, WIDTH = 4, 4, 64


class GargGPT2(nn.Module):
    """Garg et al. 2022's ``TransformerModel`` (their ``src/models.py``) on ``transformers.GPT2Model``:
    ``(x: (B, n, d), y: (B, n)) -> (B, n)`` predictions, y_k read at the token of x_k."""

    def __init__(self, dim: int, n_points: int, n_embd: int, n_layer: int, n_head: int):
        super().__init__()
        from transformers import GPT2Config, GPT2Model

        cfg = GPT2Config(n_positions=2 * n_points, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
                         resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, use_cache=False)  # fmt: skip
        self.read_in = nn.Linear(dim, n_embd)
        self.backbone = GPT2Model(cfg)
        self.read_out = nn.Linear(n_embd, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        B, n, d = x.shape
        y_wide = torch.zeros(B, n, d, dtype=x.dtype)  # (y, 0, ..., 0)
        y_wide[:, :, 0] = y
        zs = torch.stack([x, y_wide], dim=2).reshape(B, 2 * n, d)  # (B, 2n, d)
        h = self.backbone(inputs_embeds=self.read_in(zs)).last_hidden_state  # (B, 2n, C)
        return self.read_out(h[:, ::2]).squeeze(-1)  # (B, n)


def _time_to_target(model: nn.Module, opt: torch.optim.Optimizer, *, warmup: int, clip: float | None,
                    lr: float) -> dict[str, Any]:  # fmt: skip
    """Train until the error at k = 2d on held-out prompts is <= TARGET or MAX_SECONDS pass."""
    spec = RegressionSpec(dim=DIM, noise_std=0.0)
    g = make_generator(0)
    held = sample_regression(
        spec, batch=EVAL_PROMPTS, n_points=N_POINTS, generator=make_generator(1)
    )
    seconds, wall, step, err = 0.0, 0.0, 0, float("nan")
    while seconds < MAX_SECONDS:
        model.train()
        t0, w0 = time.process_time(), time.perf_counter()
        for _ in range(EVAL_EVERY):
            for group in opt.param_groups:
                group["lr"] = lr * min(1.0, (step + 1) / warmup) if warmup else lr
            b = sample_regression(spec, batch=BATCH, n_points=N_POINTS, generator=g)
            loss = (model(b.x, b.y) - b.y).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            step += 1
        seconds += time.process_time() - t0
        wall += time.perf_counter() - w0
        model.eval()
        with torch.no_grad():
            err = float(((model(held.x, held.y)[:, -1] - held.y[:, -1]) ** 2).mean()) / DIM
        if err <= TARGET:
            return {"seconds": seconds, "wall": wall, "steps": step, "error": err, "reached": True}
    return {"seconds": seconds, "wall": wall, "steps": step, "error": err, "reached": False}


def bench_peer_garg() -> dict[str, Any]:
    torch.set_num_threads(1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        ours = build_regression_transformer(
            GPTSection(n_layer=LAYERS, n_head=HEADS, n_embd=WIDTH, attention="linear", layout="carry"),
            dim=DIM, n_points=N_POINTS)  # fmt: skip
        torch.manual_seed(0)
        peer = GargGPT2(DIM, N_POINTS, WIDTH, LAYERS, HEADS)
    a = _time_to_target(ours, torch.optim.AdamW(ours.parameters(), lr=2e-3, weight_decay=0.0),
                        warmup=100, clip=1.0, lr=2e-3)  # fmt: skip
    b = _time_to_target(peer, torch.optim.Adam(peer.parameters(), lr=1e-3), warmup=0, clip=None,
                        lr=1e-3)  # fmt: skip
    kind = ("exact" if a["reached"] and b["reached"] else
            "lower bound" if a["reached"] else "upper bound" if b["reached"] else "undecided")  # fmt: skip
    import transformers

    return {
        "name": "peer-garg-gpt2",
        "value": a["seconds"],
        "unit": f"s to error ≤ {TARGET:g} at k = 2d (d = {DIM})",
        "reference": b["seconds"],
        "ratio": b["seconds"] / a["seconds"],
        "ratio_kind": kind,
        "fmtheory_wall_s": a["wall"],
        "gpt2_wall_s": b["wall"],
        "fmtheory_steps": a["steps"],
        "fmtheory_error": a["error"],
        "fmtheory_reached": a["reached"],
        "gpt2_steps": b["steps"],
        "gpt2_error": b["error"],
        "gpt2_reached": b["reached"],
        "transformers": transformers.__version__,
        "threads": 1,
    }


BENCHMARKS = {"peer-garg-gpt2": bench_peer_garg}

if __name__ == "__main__":
    r = bench_peer_garg()
    print(f"CPU seconds: fmtheory {r['value']:.1f} s ({r['fmtheory_steps']} steps, error {r['fmtheory_error']:.4f}); "
          f"transformers GPT-2 {r['reference']:.1f} s ({r['gpt2_steps']} steps, error "
          f"{r['gpt2_error']:.4f}); ratio {r['ratio']:.2f} ({r['ratio_kind']}); wall "
          f"{r['fmtheory_wall_s']:.1f} s vs {r['gpt2_wall_s']:.1f} s")  # fmt: skip
