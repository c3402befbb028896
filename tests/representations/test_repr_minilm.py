"""all-MiniLM-L6-v2 loaded offline from the ``pretrained`` extra; skipped, with the install line as
the reason, when the extra is missing (CI installs it, so these run there)."""

from __future__ import annotations

import pytest
import torch

from fmtheory.models.pretrained import INSTALL_HINT, pretrained_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not pretrained_available(), reason=f"extra 'pretrained' missing: {INSTALL_HINT}"
    ),
]


@pytest.fixture(scope="module")
def minilm():
    from fmtheory.models.pretrained import load_minilm

    return load_minilm()


def test_loads_offline_and_skips_matter(minilm, monkeypatch) -> None:
    from fmtheory.experiments.rank_collapse import sentences
    from fmtheory.models.pretrained import hidden_states, skips_removed
    from fmtheory.probes.rank import masked_rank_collapse_residual

    model, tokenizer = minilm
    assert len(model.encoder.layer) == 6 and model.config.hidden_size == 384
    sents = sentences()[:8]
    with_skips = hidden_states(model, tokenizer, sents)
    with skips_removed(model):
        without = hidden_states(model, tokenizer, sents)
    assert len(with_skips.layers) == 7 and with_skips.layers[0].shape[-1] == 384
    torch.testing.assert_close(with_skips.layers[0], without.layers[0])  # embeddings untouched
    mu_with = masked_rank_collapse_residual(with_skips.layers[-1], with_skips.mask)
    mu_without = masked_rank_collapse_residual(without.layers[-1], without.mask)
    assert (mu_with > 0.3).all() and (mu_without < 1e-2).all()
    again = hidden_states(model, tokenizer, sents)  # hooks removed on exit
    torch.testing.assert_close(again.layers[-1], with_skips.layers[-1])
