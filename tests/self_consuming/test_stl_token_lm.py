"""The tiny token model of the neural self-consuming loop (fmtheory.models.token_lm)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from fmtheory.models.token_lm import TokenLM, TokenLMConfig
from fmtheory.tasks.generative import ZipfSpec, sample_zipf_tokens
from fmtheory.train.loop import TrainSpec, train


def _model(seed: int = 0, vocab: int = 12) -> TokenLM:
    return TokenLM(
        TokenLMConfig(vocab=vocab, embed_dim=8, hidden=16),
        generator=torch.Generator().manual_seed(seed),
    )


def test_shapes_bigram_dependence_and_loss_reference():
    m = _model()
    tok = torch.randint(0, 12, (5, 6), generator=torch.Generator().manual_seed(1))
    logits = m(tok)
    assert logits.shape == (5, 6, 12)
    # position t depends on token t−1 only: changing token 1 leaves positions 0, 1, 3.. unchanged
    tok2 = tok.clone()
    tok2[:, 1] = (tok2[:, 1] + 1) % 12
    l2 = m(tok2)
    assert torch.allclose(logits[:, :2], l2[:, :2]) and torch.allclose(logits[:, 3:], l2[:, 3:])
    assert not torch.allclose(logits[:, 2], l2[:, 2])
    # loss = mean negative log-softmax of the observed tokens (numpy reference)
    lg = logits.detach().double().numpy()
    logp = lg - np.log(np.exp(lg).sum(-1, keepdims=True))
    ref = -np.take_along_axis(logp, tok.numpy()[..., None], axis=-1).mean()
    assert m.loss(tok).item() == pytest.approx(ref, rel=1e-5)


def test_probabilities_and_sampling():
    m = _model(vocab=6)
    cond = m.conditional_probs()
    assert cond.shape == (7, 6)
    assert torch.allclose(cond.sum(-1), torch.ones(7, dtype=torch.float64))
    assert torch.allclose(m.first_token_probs(), cond[-1])
    g = torch.Generator().manual_seed(3)
    s = m.sample(30_000, 2, generator=g)
    assert s.shape == (30_000, 2) and int(s.max()) < 6
    counts = np.bincount(s[:, 0].numpy(), minlength=6)
    assert stats.chisquare(counts, m.first_token_probs().numpy() * 30_000).pvalue > 1e-3
    assert torch.equal(s, m.sample(30_000, 2, generator=torch.Generator().manual_seed(3)))


def test_init_is_determined_by_the_generator():
    a, b, c = _model(5), _model(5), _model(6)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.embed.weight, c.embed.weight)


def test_training_with_the_shared_loop_learns_the_zipf_law():
    spec = ZipfSpec(vocab=12, exponent=1.0)
    g = torch.Generator().manual_seed(0)
    data = sample_zipf_tokens(spec, batch=4000, seq_len=2, generator=g)
    m = _model(vocab=12)
    p = torch.as_tensor(spec.probs())
    tv0 = 0.5 * (m.first_token_probs() - p).abs().sum().item()

    def loss_fn(model, step, gen):
        idx = torch.randint(0, data.shape[0], (128,), generator=gen)
        return model.loss(data[idx])

    train(m, loss_fn=loss_fn, spec=TrainSpec(steps=150, lr=1e-2), generator=g)
    tv = 0.5 * (m.first_token_probs() - p).abs().sum().item()
    assert tv < 0.1 < tv0


def test_config_validation():
    with pytest.raises(ValueError, match="vocab"):
        TokenLMConfig(vocab=1)
    with pytest.raises(ValueError, match="hidden"):
        TokenLMConfig(vocab=5, hidden=0)
    with pytest.raises(ValueError, match="tokens"):
        _model()(torch.zeros(3, dtype=torch.long))
