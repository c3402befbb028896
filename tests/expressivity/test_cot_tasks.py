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
    assert b.ids.shape == (500, fmt.length) and fmt.n_target == n
    assert torch.equal(tasks.decode_answer(task, n, b.ids, cot=True), b.answer)
    ids = b.ids
    if task == "parity":  # each CoT token is the parity of the prefix of bits
        bits = ids[:, :n]
        assert torch.equal(ids[:, n + 1 :], torch.cumsum(bits, 1) % 2)
    else:  # replay the permutations on the start position
        pos = ids[:, 0] - 120
        for t in range(n):
            pos = tasks._PERMS[ids[:, 1 + t]].gather(1, pos[:, None])[:, 0]
            assert torch.equal(ids[:, n + 2 + t] - 120, pos)


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
