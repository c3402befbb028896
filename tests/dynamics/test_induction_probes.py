"""Induction probes on hand-built patterns and hand-built 2-layer weights (answers known exactly)."""

from __future__ import annotations

import math

import pytest
import torch

from fmtheory.models.attn_only import TokenTransformer, TokenTransformerConfig
from fmtheory.models.hooks import run_with_cache
from fmtheory.probes.induction import copying_score, prefix_matching_score, previous_token_score
from fmtheory.tasks.repeats import sample_repeats


def induction_model(
    vocab: int, n_ctx: int, beta: float = 60.0, gain: float = 20.0
) -> TokenTransformer:
    """A 2-layer, 1-head, attention-only model without LayerNorm that implements an induction head.

    Residual subspaces: token one-hot [0, V), position one-hot [V, V+T), previous token [V+T, 2V+T),
    output [2V+T, 3V+T).  Layer 1 attends from t to t − 1 and writes token(t − 1) into "previous
    token"; layer 2 attends from t to every s whose previous token equals token(t) and copies token(s)
    into "output", which the unembedding reads.
    """
    V, T = vocab, n_ctx
    C = 3 * V + T
    model = TokenTransformer(TokenTransformerConfig(vocab=V, n_ctx=T, n_layer=2, n_head=1, n_embd=C,
                                                    layernorm=False))  # fmt: skip
    scale = beta * math.sqrt(C)  # undo the 1/sqrt(D) of softmax attention
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        tok, pos, prv, out = 0, V, V + T, 2 * V + T
        for a in range(V):
            model.embed.weight[a, tok + a] = 1.0
            model.unembed.weight[a, out + a] = gain
        for t in range(T):
            model.pos.weight[t, pos + t] = 1.0
        # layer 1: previous-token head
        w = model.blocks[0].attn.c_attn.weight  # (3C, C): rows q | k | v
        for t in range(1, T):
            w[pos + t - 1, pos + t] = scale  # q_t = scale · e_{t-1}
        for s in range(T):
            w[C + pos + s, pos + s] = 1.0  # k_s = e_s
        for a in range(V):
            w[2 * C + prv + a, tok + a] = 1.0  # v = token one-hot, moved to "previous token"
        model.blocks[0].attn.c_proj.weight.copy_(torch.eye(C))
        # layer 2: induction head
        w = model.blocks[1].attn.c_attn.weight
        for a in range(V):
            w[a, tok + a] = scale  # q = scale · token(t)
            w[C + a, prv + a] = 1.0  # k = previous token of s
            w[2 * C + out + a, tok + a] = 1.0  # v = token(s), moved to "output"
        # position 0 has no previous token (layer 1 wrote token(0) there): keep it out of the match
        for t in range(T):
            w[V, pos + t] = -scale  # a constant query coordinate ...
        w[C + V, pos] = 1.0  # ... met only by the key at position 0
        model.blocks[1].attn.c_proj.weight.copy_(torch.eye(C))
    return model.eval()


def test_prefix_matching_perfect_and_uniform_patterns():
    tokens = torch.tensor([[0, 1, 2, 0, 1, 2]])
    T = tokens.shape[1]
    induction = torch.zeros(1, 1, T, T)
    for t in range(T):
        induction[0, 0, t, t - 2 if t >= 3 else 0] = 1.0  # token after the previous occurrence
    assert prefix_matching_score(induction, tokens).item() == pytest.approx(1.0)
    uniform = torch.tril(torch.ones(T, T)) / torch.arange(1, T + 1)[:, None]
    # queries t = 3, 4, 5 have one matching key each (s = 1, 2, 3): mean of 1/4, 1/5, 1/6
    expected = (1 / 4 + 1 / 5 + 1 / 6) / 3
    assert prefix_matching_score(uniform[None, None], tokens).item() == pytest.approx(expected)


def test_prefix_matching_nan_without_repeats_and_shape_errors():
    tokens = torch.tensor([[0, 1, 2, 3]])
    pattern = torch.eye(4)[None, None]
    assert math.isnan(prefix_matching_score(pattern, tokens).item())
    with pytest.raises(ValueError, match="tokens.shape"):
        prefix_matching_score(pattern, tokens[:, :3])


def test_previous_token_score_exact():
    T = 5
    prev = torch.zeros(T, T)
    prev[0, 0] = 1.0
    for t in range(1, T):
        prev[t, t - 1] = 1.0
    assert previous_token_score(prev[None, None]).item() == pytest.approx(1.0)
    assert previous_token_score(torch.eye(T)[None, None]).item() == pytest.approx(0.0)


def test_copying_score_exact():
    assert copying_score(torch.eye(4)) == pytest.approx(1.0)
    assert copying_score(-torch.eye(4)) == pytest.approx(-1.0)
    assert copying_score(torch.diag(torch.tensor([1.0, -1.0]))) == pytest.approx(0.0)
    assert math.isnan(copying_score(torch.zeros(3, 3)))
    with pytest.raises(ValueError, match="square"):
        copying_score(torch.zeros(2, 3))


def test_probes_find_the_handbuilt_induction_head():
    V, T = 10, 20
    model = induction_model(V, T)
    b = sample_repeats(batch=16, seq_len=T, vocab=V, period_min=3, period_max=10,
                       generator=torch.Generator().manual_seed(0))  # fmt: skip
    with torch.no_grad():
        res = run_with_cache(model, b.tokens, names=lambda n: n.endswith("hook_pattern"))
    p0, p1 = res.cache["blocks.0.attn.hook_pattern"], res.cache["blocks.1.attn.hook_pattern"]
    assert previous_token_score(p0).mean().item() > 0.99
    assert prefix_matching_score(p1, b.tokens).mean().item() > 0.99
    assert prefix_matching_score(p0, b.tokens).nanmean().item() < 0.3
    assert copying_score(model.ov_circuit(1, 0)) == pytest.approx(1.0)
    # the second copy (targets P+1 ..) is predicted exactly
    pred = res.output.argmax(-1)
    for i, P in enumerate(b.period.tolist()):
        assert torch.equal(pred[i, P : T - 1], b.tokens[i, P + 1 :])
