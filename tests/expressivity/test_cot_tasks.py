"""Samplers of tasks/cot.py: determinism, every CoT trace decodes to the answer, chance levels."""

import math

import pytest
import torch

from fmtheory.tasks import cot as tasks


def _gen(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


@pytest.mark.parametrize("task", tasks.TASKS)
@pytest.mark.parametrize("cot", [False, True])
def test_deterministic_per_seed(task: str, cot: bool) -> None:
    if cot and task not in tasks.COT_TASKS:
        pytest.skip("no CoT format")
    a = tasks.sample(task, 7, 32, cot=cot, generator=_gen(3))
    b = tasks.sample(task, 7, 32, cot=cot, generator=_gen(3))
    c = tasks.sample(task, 7, 32, cot=cot, generator=_gen(4))
    assert torch.equal(a.ids, b.ids) and torch.equal(a.answer, b.answer)
    assert not torch.equal(a.ids, c.ids)


@pytest.mark.parametrize("task", tasks.COT_TASKS)
@pytest.mark.parametrize("n", [1, 5, 16])
def test_every_cot_trace_decodes_to_answer(task: str, n: int) -> None:
    b = tasks.sample(task, n, 500, cot=True, generator=_gen(0))
    fmt = tasks.task_format(task, n, cot=True)
    assert b.ids.shape == (500, fmt.length) and fmt.n_steps == n
    assert torch.equal(tasks.decode_answer(task, n, b.ids, cot=True), b.answer)
    ids = b.ids
    if task == "parity":  # each CoT token is the parity of the prefix of bits
        bits = ids[:, :n]
        assert torch.equal(ids[:, n + 1 :], torch.cumsum(bits, 1) % 2)
    elif task == "s5":  # replay the permutations on the start position (after SEP)
        pos = ids[:, n + 1] - 120
        for t in range(n):
            pos = tasks._PERMS[ids[:, t]].gather(1, pos[:, None])[:, 0]
            assert torch.equal(ids[:, n + 2 + t] - 120, pos)
    elif task == "s5full":  # replay the running product of the permutations
        state = torch.zeros(500, 5, dtype=torch.int64) + torch.arange(5)
        assert torch.equal(ids[:, n + 1], torch.full((500,), 121))
        for t in range(n):
            state = tasks._PERMS[ids[:, t]].gather(1, state)
            got = tasks._PERMS[ids[:, n + 2 + t] - 121]
            assert torch.equal(got, state)
    else:  # arith: every segment is one reduction of the previous expression, the last the value
        _replay_arith(ids, n, fmt, b.answer)


def _evaluate(tokens: list[int], p: int) -> int:
    """Independent evaluator: Python's own arithmetic on the infix string, mod p."""
    text = "".join({p: "+", p + 1: "*", p + 2: "(", p + 3: ")"}.get(t, f"{t}") for t in tokens)
    return eval(text) % p  # noqa: S307 - digits, + * ( ) only


def _replay_arith(ids: torch.Tensor, n: int, fmt, answer: torch.Tensor, p: int = 7) -> None:
    eq = p + 4
    for row, ans in zip(ids.tolist(), answer.tolist(), strict=True):
        expr = row[: fmt.n_prompt - 1]
        assert row[fmt.n_prompt - 1] == eq and len(expr) == 4 * n + 1
        value = _evaluate(expr, p)
        segs, cur = [], []
        for tok in row[fmt.n_prompt :]:
            if tok == eq:
                segs.append(cur)
                cur = []
            else:
                cur.append(tok)
        segs.append(cur)
        assert len(segs) == n  # one segment per reduction step
        prev = expr
        for seg in segs:
            assert len(seg) == len(prev) - 4 and seg == tasks.arith_reduce(prev, p)
            assert _evaluate(seg, p) == value
            prev = seg
        assert segs[-1] == [ans] and ans == value


def test_arith_law_matches_sampler() -> None:
    b = tasks.sample("arith", 4, 20_000, cot=False, generator=_gen(5))
    freq = torch.bincount(b.answer, minlength=7).double() / 20_000
    law = torch.tensor(tasks.arith_distribution(4, 7), dtype=torch.float64)
    se = (law * (1 - law) / 20_000).sqrt()
    assert float(((freq - law).abs() / se).max()) < 4.0
    assert tasks.chance_level("arith", 4) == pytest.approx(float(law.max()))
    assert tasks.mode_class("arith", 4) == 0
    assert tasks.chance_level("s5full", 3) == pytest.approx(1 / 120)


def test_arith_law_one_operation() -> None:  # (x + y) is uniform, (x * y) is 0 w.p. (2p - 1)/p²
    p = 11
    zero = 0.5 / p + 0.5 * (2 * p - 1) / p**2
    assert tasks.arith_distribution(1, p)[0] == pytest.approx(zero)
    assert sum(tasks.arith_distribution(3, p)) == pytest.approx(1.0)


def test_p_not_prime() -> None:
    with pytest.raises(ValueError, match="p = 9: p not prime"):
        tasks.task_format("arith", 3, cot=True, p=9)
    assert tasks.is_prime(97) and not tasks.is_prime(1) and not tasks.is_prime(91)


@pytest.mark.parametrize("task", tasks.TASKS)
def test_answer_format_decodes(task: str) -> None:
    b = tasks.sample(task, 9, 200, cot=False, generator=_gen(1))
    assert torch.equal(tasks.decode_answer(task, 9, b.ids, cot=False), b.answer)


def test_majority_answer_and_chance() -> None:
    b = tasks.sample("majority", 4, 300, cot=False, generator=_gen(2))
    assert torch.equal(b.answer, (b.ids[:, :4].sum(1) > 2).long())
    assert tasks.chance_level("majority", 4) == pytest.approx(11 / 16)
    assert tasks.chance_level("parity", 10) == 0.5 and tasks.chance_level("s5", 3) == 0.2
    assert tasks.chance_level("majority", 5) == pytest.approx(0.5)
    assert math.isclose(tasks.chance_level("majority", 2), 0.75)


def test_bad_task_inputs() -> None:
    with pytest.raises(ValueError, match="task = 'sorting'"):
        tasks.task_format("sorting", 3, cot=False)
    with pytest.raises(ValueError, match="n = 0"):
        tasks.task_format("parity", 0, cot=False)
    with pytest.raises(ValueError, match="no CoT format"):
        tasks.task_format("majority", 3, cot=True)
