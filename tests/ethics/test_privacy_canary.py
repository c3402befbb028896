"""privacy, canary part (Carlini et al. 2019): exposure on hand-built scores and models with known
ranks, the corpus sampler, the n-gram LM under Opacus, the two claim checks on constructed tables,
bad input, determinism on the tiny preset."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from fmtheory.checks import exact_row
from fmtheory.contract import ConfigError, RunContext, get_experiment
from fmtheory.experiments import _privacy_canary as pc
from fmtheory.experiments import privacy as px
from fmtheory.models.ngram_lm import NGramLM, NGramLMConfig
from fmtheory.probes.exposure import (
    candidate_log_perplexities,
    exposure_from_scores,
    extrapolated_exposure,
    secret_index,
)
from fmtheory.tasks.canary import make_canary_corpus
from fmtheory.train.fit import make_generator

EXP = get_experiment("privacy")


# ---- the exposure probe --------------------------------------------------------------------
def test_exposure_known_ranks() -> None:
    scores = np.array([3.0, 0.5, 2.0, 7.0, 1.0, 9.0, 4.0, 5.0])  # 8 candidates
    assert exposure_from_scores(scores, 1) == pytest.approx(3.0)  # rank 1: log2 8
    assert exposure_from_scores(scores, 5) == pytest.approx(0.0)  # rank 8
    assert exposure_from_scores(scores, 2) == pytest.approx(3.0 - math.log2(3))  # rank 3
    # ties: mid-rank; all equal gives rank (n + 1)/2
    assert exposure_from_scores(np.zeros(8), 4) == pytest.approx(3.0 - math.log2(4.5))
    assert exposure_from_scores(np.array([0.0, 1.0, 1.0, 2.0]), 1) == pytest.approx(
        2.0 - math.log2(2.5)
    )
    with pytest.raises(ValueError):
        exposure_from_scores(scores, 8)


def test_secret_index() -> None:
    assert secret_index([2, 0, 1], 3) == 2 * 9 + 0 + 1
    assert secret_index(torch.tensor([9, 9]), 10) == 99
    with pytest.raises(ValueError):
        secret_index([3], 3)


def _brute_px(log_probs, prefix: torch.Tensor, base: int, k: int, off: int) -> np.ndarray:
    out = []
    for digits in itertools.product(range(base), repeat=k):
        seq = torch.cat([prefix, torch.tensor(digits) + off])[None]
        lp = log_probs(seq)[0]
        p = prefix.numel()
        out.append(-sum(float(lp[p + j, off + d]) for j, d in enumerate(digits)) / math.log(2))
    return np.array(out)


def test_candidate_perplexities_hand_built_model() -> None:
    # next digit = previous digit + 1 (mod 3) with probability 0.7, else 0.15 each; first digit
    # after the prefix is 2 with probability 0.8.  Secret 2 0 1 is then the unique rank-1 candidate.
    base, off, vocab = 3, 5, 8

    def log_probs(t: torch.Tensor) -> torch.Tensor:
        n, length = t.shape
        p = torch.full((n, length, vocab), 1e-9)
        for pos in range(length):
            prev = t[:, pos - 1] - off if pos > 0 else torch.full((n,), -1)
            for b in range(n):
                if pos > 0 and 0 <= int(prev[b]) < base:
                    row = torch.full((base,), 0.15)
                    row[(int(prev[b]) + 1) % base] = 0.7
                else:
                    row = torch.tensor([0.1, 0.1, 0.8])
                p[b, pos, off : off + base] = row
        return p.log()

    prefix = torch.tensor([1, 4])
    px_fast = candidate_log_perplexities(log_probs, prefix, base=base, secret_len=3,
                                         digit_offset=off)  # fmt: skip
    px_slow = _brute_px(log_probs, prefix, base, 3, off)
    np.testing.assert_allclose(px_fast, px_slow, rtol=1e-6)
    j = secret_index([2, 0, 1], base)
    assert px_fast[j] == pytest.approx(-math.log2(0.8 * 0.7 * 0.7), rel=1e-6)
    assert exposure_from_scores(px_fast, j) == pytest.approx(math.log2(27))


def test_candidate_perplexities_match_ngram_lm() -> None:
    torch.manual_seed(0)
    m = NGramLM(NGramLMConfig(vocab=9, context=3, embed_dim=4, hidden=8))

    def lp(t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.log_softmax(m(t), -1)

    prefix = torch.tensor([0, 3])
    fast = candidate_log_perplexities(lp, prefix, base=3, secret_len=3, digit_offset=6, batch=4)
    np.testing.assert_allclose(fast, _brute_px(lp, prefix, 3, 3, 6), rtol=1e-5)
    one = candidate_log_perplexities(lp, prefix, base=3, secret_len=1, digit_offset=6)
    np.testing.assert_allclose(one, _brute_px(lp, prefix, 3, 1, 6), rtol=1e-5)


def test_extrapolated_exposure_known_tail() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(20000)
    fit = extrapolated_exposure(x, -3.0)  # P[N(0,1) ≤ −3] = 1.35e-3: 9.53 bits
    assert fit.exposure == pytest.approx(-math.log2(stats.norm.cdf(-3.0)), abs=0.3)
    y = stats.skewnorm.rvs(4.0, loc=10.0, scale=2.0, size=20000, random_state=1)
    q = float(stats.skewnorm.ppf(1e-4, 4.0, loc=10.0, scale=2.0))
    assert extrapolated_exposure(y, q).exposure == pytest.approx(-math.log2(1e-4), abs=0.5)
    assert math.isinf(extrapolated_exposure(x, -1000.0).exposure)  # the fitted CDF underflows
    with pytest.raises(ValueError):
        extrapolated_exposure(np.zeros(3), 0.0)


# ---- the corpus and the model --------------------------------------------------------------
def test_canary_corpus() -> None:
    kw = dict(vocab=6, alpha=0.5, documents=30, length=9, prefix_len=2, secret_len=3, base=4,
              repetitions=[1, 3, 3], source_seed=1)  # fmt: skip
    c = make_canary_corpus(generator=make_generator(0), **kw)
    assert c.tokens.shape == (37, 9) and c.n_tokens == 10 and c.digit_offset == 6
    assert c.canary_of.tolist() == [-1] * 30 + [0, 1, 1, 1, 2, 2, 2]
    assert int(c.tokens[:30].max()) < 6  # the background never uses digits
    for i in range(3):
        docs = c.tokens[c.canary_of == i]
        assert torch.equal(docs[:, :2], c.prefixes[i].expand(len(docs), 2))
        assert torch.equal(docs[:, 2:5], (c.secrets[i] + 6).expand(len(docs), 3))
    assert len({tuple(p.tolist()) for p in c.prefixes}) == 3
    c2 = make_canary_corpus(generator=make_generator(0), **kw)
    assert torch.equal(c.tokens, c2.tokens) and torch.equal(c.secrets, c2.secrets)
    with pytest.raises(ValueError, match="repetitions"):
        make_canary_corpus(generator=make_generator(0), **{**kw, "repetitions": [0, 1]})
    with pytest.raises(ValueError, match="length"):
        make_canary_corpus(generator=make_generator(0), **{**kw, "length": 4})


def test_ngram_lm_is_causal() -> None:
    torch.manual_seed(0)
    m = NGramLM(NGramLMConfig(vocab=7, context=2))
    t = torch.randint(0, 7, (2, 7))
    u = t.clone()
    u[:, 3] = (u[:, 3] + 1) % 7
    a, b = m(t), m(u)
    assert torch.equal(a[:, :4], b[:, :4])  # positions ≤ 3 do not see token 3
    assert not torch.allclose(a[:, 4], b[:, 4])  # positions 4, 5 see it
    assert not torch.allclose(a[:, 5], b[:, 5])
    assert torch.equal(a[:, 6], b[:, 6])  # context 2: position 6 sees tokens 4, 5 only


def test_ngram_lm_opacus_per_sample_gradients_exact() -> None:
    import copy

    from opacus import GradSampleModule

    torch.manual_seed(0)
    m = NGramLM(NGramLMConfig(vocab=11, context=3, embed_dim=4, hidden=8))
    ref_model = copy.deepcopy(m)
    x = torch.randint(0, 11, (3, 7))
    ce = torch.nn.functional.cross_entropy
    refs = [torch.autograd.grad(ce(ref_model(x[i : i + 1]).flatten(0, 1), x[i], reduction="sum"),
                                list(ref_model.parameters())) for i in range(3)]  # fmt: skip
    g = GradSampleModule(m, loss_reduction="sum")
    ce(g(x).flatten(0, 1), x.flatten(), reduction="sum").backward()
    for i in range(3):
        for p, r in zip(m.parameters(), refs[i], strict=True):
            torch.testing.assert_close(p.grad_sample[i], r, rtol=1e-5, atol=1e-6)


# ---- the checks on constructed tables ------------------------------------------------------
def _table(np_exp: list[float], dp_exp: list[float] | None, se: float = 0.3,
           reps: tuple[int, ...] = (1, 2, 4, 8, 16), max_bits: float = 13.29) -> pd.DataFrame:  # fmt: skip
    rows = []
    for eps, vals in ((math.inf, np_exp), (8.0, dp_exp)):
        if vals is None:
            continue
        rows.append(exact_row(pc.METHOD, "max_exposure", max_bits, seed=0, target_eps=eps))
        for r, v in zip(reps, vals, strict=True):
            rows.append(exact_row(pc.METHOD, "exposure", v, se=se, seed=0, target_eps=eps,
                                  repetitions=r))  # fmt: skip
    return pd.DataFrame(rows)


CFG = pc.CanarySection()


def _st(table: pd.DataFrame, i: int) -> str:
    return pc.canary_checks(table, CFG)[i].status


def test_grows_check() -> None:
    assert _st(_table([2, 4, 7, 10, 12], [1.5] * 5), 0) == "holds"
    assert _st(_table([12, 10, 7, 4, 2], [1.5] * 5), 0) == "fails"
    assert _st(_table([5, 6, 4, 5.5, 5], [1.5] * 5), 0) == "inconclusive"
    sat = pc.canary_checks(_table([13.29] * 5, [1.5] * 5), CFG)[0]
    assert sat.status == "inconclusive" and "saturated" in sat.why


def test_dp_check() -> None:
    assert _st(_table([2, 4, 7, 10, 12], [1.5, 1.4, 2, 2, 2.5]), 1) == "holds"
    assert _st(_table([2, 4, 7, 10, 3], [1.5, 1.4, 2, 2, 12]), 1) == "fails"
    assert _st(_table([2, 4, 7, 10, 12], [1.5, 1.4, 2, 2, 11.8]), 1) == "inconclusive"
    assert _st(_table([2, 4, 7, 10, 12], None), 1) == "n/a"


def test_prefixes_must_fit() -> None:
    with pytest.raises(ConfigError) as e:
        EXP.make_config("quick", {"canary.vocab": 4, "canary.prefix_len": 2})  # 16 < 20 canaries
    assert "prefix_len" in str(e.value)
    assert "8-gram" in EXP.make_config("quick").canary.label()


def test_checks_without_canary_rows_are_na() -> None:
    t = pd.DataFrame([exact_row("mlp", "test_error", 0.1, seed=0, target_eps=math.inf)])
    assert [c.status for c in pc.canary_checks(t, CFG)] == ["n/a", "n/a"]


def test_checks_reach_privacy_checks() -> None:
    cfg = EXP.make_config("tiny")
    claims = {c.claim: c.status for c in px.checks(_table([2, 4, 7, 10, 12], [1, 1, 2, 2, 2]), cfg)}
    assert claims[pc.CLAIM_GROWS] == "holds"


# ---- bad input -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "field,value,word",
    [("canary.repetitions", [0, 1, 2], "repetitions"), ("canary.repetitions", [1, 1, 2], "distinct"),
     ("canary.repetitions", [1, 2, 20000], "repetitions"), ("canary.secret_len", 7, "secret_len"),
     ("canary.secret_len", 0, "secret_len"), ("canary.base", 11, "base"),
     ("canary.per_repetition", 1, "per_repetition"), ("canary.epsilon", 0.0, "epsilon"),
     ("canary.epsilon", -1.0, "epsilon"), ("canary.length", 5, "length"),
     ("canary.models", 0, "models"), ("canary.base", 1, "base"),
     ("canary.prefix_len", 0, "prefix_len"), ("canary.vocab", 3, "vocab")],
)  # fmt: skip
def test_bad_input_canary(field: str, value: object, word: str) -> None:
    with pytest.raises(ConfigError) as e:
        EXP.make_config("quick", {field: value})
    assert word in str(e.value)


# ---- the tiny preset -----------------------------------------------------------------------
def test_tiny_canary_rows_deterministic() -> None:
    cfg = EXP.make_config("tiny")
    kw = dict(delta=cfg.dp.delta, max_grad_norm=cfg.dp.max_grad_norm, seed=0, ctx=RunContext())
    a = pd.DataFrame(pc.canary_rows(cfg.canary, **kw))
    b = pd.DataFrame(pc.canary_rows(cfg.canary, **kw))
    pd.testing.assert_frame_equal(a, b)
    ex = a[a["metric"] == "exposure"]
    bits = cfg.canary.secret_len * math.log2(cfg.canary.base)
    assert len(ex) == 2 * len(set(cfg.canary.repetitions))
    assert ((ex["value"] >= 0) & (ex["value"] <= bits + 1e-9)).all()
    eps = a[a["metric"] == "epsilon_rdp"]["value"].iloc[0]
    assert eps == pytest.approx(cfg.canary.epsilon, rel=0.01)
    assert set(pc.canary_figures(a)) == {"canary"}
