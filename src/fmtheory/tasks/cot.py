"""Serial tasks with an answer-only and a chain-of-thought (CoT) token format.

Each task samples ``n`` input tokens; a sequence is ``inputs, SEP, targets`` where ``targets`` is
the answer alone (answer-only format) or the ``n`` intermediate states whose last is the answer
(CoT format).  Formats are defined here once; :func:`decode_answer` reads the answer back.

- parity: n bits; CoT = running parity after each bit (Kim & Suzuki 2024).
- s5: a marked start position in {0..4} and n permutations of S5; CoT = the marked element's
  position after each permutation; answer = its final position (Liu et al. 2023; Merrill &
  Sabharwal 2024; NC¹-complete by Barrington's theorem).
- majority: n bits, answer 1 when more than n/2 bits are 1 (ties go to 0); no CoT format.  A
  threshold gate: in TC⁰ with one gate, and of low sensitivity.

Shapes: ``ids: (batch, n_prompt + n_target)`` int64; ``answer: (batch,)`` int64.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

__all__ = [
    "COT_TASKS",
    "TASKS",
    "CotBatch",
    "TaskFormat",
    "chance_level",
    "decode_answer",
    "sample",
    "task_format",
]

TASKS = ("parity", "s5", "majority")
COT_TASKS = ("parity", "s5")
_PERMS = torch.tensor(list(itertools.permutations(range(5))), dtype=torch.int64)  # (120, 5)


@dataclass(frozen=True)
class TaskFormat:
    """Token layout: ``vocab_size``; ``n_prompt`` input tokens incl. SEP; ``n_target`` tokens to
    predict; ``answer_offset``: answer class k is token ``answer_offset + k``; ``n_classes``."""

    vocab_size: int
    n_prompt: int
    n_target: int
    answer_offset: int
    n_classes: int

    @property
    def length(self) -> int:
        return self.n_prompt + self.n_target


@dataclass(frozen=True)
class CotBatch:
    """``ids: (batch, length)``; ``answer: (batch,)`` class in [0, n_classes)."""

    ids: torch.Tensor
    answer: torch.Tensor


def _check(task: str, n: int, cot: bool) -> None:
    if task not in TASKS:
        raise ValueError(f"task = {task!r}: allowed {', '.join(TASKS)}")
    if n < 1:
        raise ValueError(f"n = {n}: must be >= 1")
    if cot and task not in COT_TASKS:
        raise ValueError(
            f"task = {task!r} has no CoT format: CoT allowed for {', '.join(COT_TASKS)}"
        )


def task_format(task: str, n: int, *, cot: bool) -> TaskFormat:
    """The token layout of ``task`` with ``n`` steps, answer-only or CoT."""
    _check(task, n, cot)
    n_target = n if cot else 1
    if task in ("parity", "majority"):  # bits 0/1, SEP = 2, answers are bits
        return TaskFormat(3, n + 1, n_target, 0, 2)
    # s5: permutations 0..119, positions 120..124, SEP = 125; prompt = start, perms, SEP
    return TaskFormat(126, n + 2, n_target, 120, 5)


def chance_level(task: str, n: int) -> float:
    """Accuracy of always guessing the most frequent answer (exact): 1/2, 1/5, or the majority
    class probability P(Binomial(n, 1/2) ≤ n/2)."""
    _check(task, n, False)
    if task == "parity":
        return 0.5
    if task == "s5":
        return 0.2
    p0 = sum(math.comb(n, k) for k in range(n // 2 + 1)) / 2**n
    return max(p0, 1 - p0)


def sample(task: str, n: int, batch: int, *, cot: bool, generator: torch.Generator) -> CotBatch:
    """``batch`` sequences of ``task`` (see module doc) drawn with ``generator``."""
    fmt = task_format(task, n, cot=cot)
    dev = generator.device
    if task in ("parity", "majority"):
        bits = torch.randint(0, 2, (batch, n), generator=generator, device=dev)
        sep = torch.full((batch, 1), 2, dtype=torch.int64, device=dev)
        if task == "parity":
            states = torch.cumsum(bits, dim=1) % 2  # (batch, n)
            answer = states[:, -1]
        else:
            answer = (bits.sum(dim=1) * 2 > n).long()
            states = answer[:, None]
        target = states if cot else answer[:, None]
        return CotBatch(torch.cat([bits, sep, target], dim=1), answer)
    start = torch.randint(0, 5, (batch,), generator=generator, device=dev)
    perm_ids = torch.randint(0, 120, (batch, n), generator=generator, device=dev)
    perms = _PERMS.to(dev)[perm_ids]  # (batch, n, 5)
    pos = start
    states = []
    for t in range(n):
        pos = perms[:, t].gather(1, pos[:, None])[:, 0]
        states.append(pos)
    st = torch.stack(states, dim=1)  # (batch, n)
    answer = st[:, -1]
    target = (st if cot else answer[:, None]) + fmt.answer_offset
    sep = torch.full((batch, 1), 125, dtype=torch.int64, device=dev)
    ids = torch.cat([(start + 120)[:, None], perm_ids, sep, target], dim=1)
    return CotBatch(ids, answer)


def decode_answer(task: str, n: int, ids: torch.Tensor, *, cot: bool) -> torch.Tensor:
    """The answer class read from full sequences ``ids: (batch, length)`` (last target token);
    -1 where that token is not an answer token."""
    fmt = task_format(task, n, cot=cot)
    k = ids[:, fmt.length - 1] - fmt.answer_offset
    return torch.where((k >= 0) & (k < fmt.n_classes), k, torch.full_like(k, -1))
