"""Serial tasks with an answer-only and a chain-of-thought (CoT) token format.

Each task samples ``n`` input tokens; a sequence is ``inputs, SEP, targets`` where ``targets`` is
the answer alone (answer-only format) or the ``n`` intermediate states whose last is the answer
(CoT format).  Formats are defined here once; :func:`decode_answer` reads the answer back.

- parity: n bits; CoT = running parity after each bit (Kim & Suzuki 2024).
- s5: n permutations of S5, SEP, then the marked start position in {0..4} (the state before
  step 1, so every CoT step, the first included, reads the previous state from the current token
  and one permutation at the fixed offset n + 1); CoT = the marked element's position after each
  permutation; answer = its final position (Liu et al. 2023; Merrill &
  Sabharwal 2024; NC¹-complete by Barrington's theorem).
- s5full: n permutations of S5, SEP, the identity; answer = the product (120 classes); CoT = the
  running product after each permutation (Liu et al. 2023).
- arith: a fully parenthesised random expression over F_p with n operations (+ or ×) on n + 1
  uniform numbers; CoT = n segments, each the expression with its leftmost innermost operation
  reduced, ended by ``=`` except the last, which is the value (Feng et al. 2023, §3 / App. C).
  The answer is not uniform (× pulls mass to 0): :func:`arith_distribution` gives its exact law.
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
    "arith_distribution",
    "arith_reduce",
    "is_prime",
    "mode_class",
    "COT_TASKS",
    "TASKS",
    "CotBatch",
    "TaskFormat",
    "chance_level",
    "decode_answer",
    "sample",
    "task_format",
]

TASKS = ("parity", "s5", "s5full", "arith", "majority")
COT_TASKS = ("parity", "s5", "s5full", "arith")
_PERMS = torch.tensor(list(itertools.permutations(range(5))), dtype=torch.int64)  # (120, 5)
_INDEX = {tuple(q.tolist()): i for i, q in enumerate(_PERMS)}
# _COMPOSE[a, b] = index of (perm b after perm a): x -> b[a[x]]
_COMPOSE = torch.tensor(
    [[_INDEX[tuple(_PERMS[b][_PERMS[a]].tolist())] for b in range(120)] for a in range(120)],
    dtype=torch.int64,
)


def is_prime(p: int) -> bool:
    """True when ``p`` is a prime."""
    return p >= 2 and all(p % d for d in range(2, math.isqrt(p) + 1))


@dataclass(frozen=True)
class TaskFormat:
    """Token layout: ``vocab_size``; ``n_prompt`` input tokens incl. SEP; ``n_target`` tokens to
    predict; ``answer_offset``: answer class k is token ``answer_offset + k``; ``n_classes``;
    ``n_steps``: serial steps written in the target (n with CoT, 1 answer-only)."""

    vocab_size: int
    n_prompt: int
    n_target: int
    answer_offset: int
    n_classes: int
    n_steps: int = 1

    @property
    def length(self) -> int:
        return self.n_prompt + self.n_target


@dataclass(frozen=True)
class CotBatch:
    """``ids: (batch, length)``; ``answer: (batch,)`` class in [0, n_classes)."""

    ids: torch.Tensor
    answer: torch.Tensor


def _check(task: str, n: int, cot: bool, p: int = 7) -> None:
    if not is_prime(p):
        raise ValueError(f"p = {p}: p not prime (allowed: a prime ≥ 2)")
    if task not in TASKS:
        raise ValueError(f"task = {task!r}: allowed {', '.join(TASKS)}")
    if n < 1:
        raise ValueError(f"n = {n}: must be >= 1")
    if cot and task not in COT_TASKS:
        raise ValueError(
            f"task = {task!r} has no CoT format: CoT allowed for {', '.join(COT_TASKS)}"
        )


def task_format(task: str, n: int, *, cot: bool, p: int = 7) -> TaskFormat:
    """The token layout of ``task`` with ``n`` steps, answer-only or CoT (``p`` for arith)."""
    _check(task, n, cot, p)
    n_target = n if cot else 1
    steps = n if cot else 1
    if task in ("parity", "majority"):  # bits 0/1, SEP = 2, answers are bits
        return TaskFormat(3, n + 1, n_target, 0, 2, steps)
    if task == "arith":  # numbers 0..p-1, + = p, × = p+1, ( = p+2, ) = p+3, "=" = p+4
        n_target = 2 * n * n - 1 if cot else 1  # segments of 4(n-k)+2 tokens, k=1..n-1, then 1
        return TaskFormat(p + 5, 4 * n + 2, n_target, 0, p, steps)
    if task == "s5full":  # perms 0..119, SEP = 120, states 121..240; prompt = perms, SEP, identity
        return TaskFormat(241, n + 2, n_target, 121, 120, steps)
    # s5: permutations 0..119, positions 120..124, SEP = 125; prompt = perms, SEP, start
    return TaskFormat(126, n + 2, n_target, 120, 5, steps)


def arith_distribution(n: int, p: int) -> list[float]:
    """Exact law of the arith answer over F_p, ``(p,)``: the sampler's tree with n operations has
    a left subtree of k ~ U{0..n-1} operations, the root op is + or × with probability 1/2, and
    the leaves are uniform, so the law is the mixture over k and op of the law of op(X_k, X_{n-1-k})
    with independent X's."""
    _check("arith", n, False, p)
    dist = [[1.0 / p] * p]
    for m in range(1, n + 1):
        out = [0.0] * p
        for k in range(m):
            a, b = dist[k], dist[m - 1 - k]
            for x in range(p):
                for y in range(p):
                    w = a[x] * b[y] / (2 * m)
                    out[(x + y) % p] += w
                    out[(x * y) % p] += w
        dist.append(out)
    return dist[n]


def mode_class(task: str, n: int, p: int = 7) -> int:
    """The most frequent answer class (exact; ties go to the smallest class)."""
    if task == "arith":
        d = arith_distribution(n, p)
        return max(range(p), key=lambda k: (d[k], -k))
    _check(task, n, False, p)
    return 0


def chance_level(task: str, n: int, p: int = 7) -> float:
    """Accuracy of always guessing the most frequent answer (exact): 1/2, 1/5, 1/120, the largest
    mass of :func:`arith_distribution` (1/p when no × can occur), or the majority class probability
    P(Binomial(n, 1/2) ≤ n/2)."""
    _check(task, n, False, p)
    if task == "parity":
        return 0.5
    if task == "s5":
        return 0.2
    if task == "s5full":
        return 1 / 120
    if task == "arith":
        return max(arith_distribution(n, p))
    p0 = sum(math.comb(n, k) for k in range(n // 2 + 1)) / 2**n
    return max(p0, 1 - p0)


def _arith_tree(n: int, leaves: list[int], u: list[float], p: int) -> list[int]:
    """Tokens of a fully parenthesised expression with n ops; consumes ``leaves`` and ``u``."""
    if n == 0:
        return [leaves.pop()]
    k = min(int(u.pop() * n), n - 1)
    op = p if u.pop() < 0.5 else p + 1
    left = _arith_tree(k, leaves, u, p)
    right = _arith_tree(n - 1 - k, leaves, u, p)
    return [p + 2, *left, op, *right, p + 3]


def arith_reduce(tokens: list[int], p: int) -> list[int]:
    """One step of Feng et al.'s reduction: the leftmost ``( a op b )`` with numbers a, b becomes
    its value mod p."""
    for i in range(len(tokens) - 4):
        a, op, b, lp, rp = tokens[i + 1], tokens[i + 2], tokens[i + 3], tokens[i], tokens[i + 4]
        if lp == p + 2 and rp == p + 3 and a < p and b < p and op in (p, p + 1):
            v = (a + b) % p if op == p else (a * b) % p
            return tokens[:i] + [v] + tokens[i + 5 :]
    raise ValueError("no reducible ( a op b ) in the expression")


def _sample_arith(n: int, batch: int, cot: bool, generator: torch.Generator, p: int) -> CotBatch:
    dev = generator.device
    leaves = torch.randint(0, p, (batch, n + 1), generator=generator, device=dev).tolist()
    us = torch.rand((batch, 2 * n), generator=generator, device=dev).tolist()
    rows, answers = [], []
    for lv, u in zip(leaves, us, strict=True):
        expr = _arith_tree(n, lv[::-1], u[::-1], p)
        seq = [*expr, p + 4]
        cur = expr
        for k in range(n):
            cur = arith_reduce(cur, p)
            if cot:
                seq += cur if k == n - 1 else [*cur, p + 4]
        if not cot:
            seq.append(cur[0])
        rows.append(seq)
        answers.append(cur[0])
    return CotBatch(
        torch.tensor(rows, dtype=torch.int64, device=dev),
        torch.tensor(answers, dtype=torch.int64, device=dev),
    )


def sample(
    task: str, n: int, batch: int, *, cot: bool, generator: torch.Generator, p: int = 7
) -> CotBatch:
    """``batch`` sequences of ``task`` (see module doc) drawn with ``generator``."""
    fmt = task_format(task, n, cot=cot, p=p)
    dev = generator.device
    if task == "arith":
        return _sample_arith(n, batch, cot, generator, p)
    if task == "s5full":
        perm_ids = torch.randint(0, 120, (batch, n), generator=generator, device=dev)
        comp = _COMPOSE.to(dev)
        state = torch.zeros(batch, dtype=torch.int64, device=dev)  # index 0 is the identity
        states = []
        for t in range(n):
            state = comp[state, perm_ids[:, t]]
            states.append(state)
        st = torch.stack(states, dim=1)
        answer = st[:, -1]
        target = (st if cot else answer[:, None]) + fmt.answer_offset
        sep = torch.full((batch, 1), 120, dtype=torch.int64, device=dev)
        ident = torch.full((batch, 1), fmt.answer_offset, dtype=torch.int64, device=dev)
        return CotBatch(torch.cat([perm_ids, sep, ident, target], dim=1), answer)
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
    ids = torch.cat([perm_ids, sep, (start + 120)[:, None], target], dim=1)
    return CotBatch(ids, answer)


def decode_answer(task: str, n: int, ids: torch.Tensor, *, cot: bool, p: int = 7) -> torch.Tensor:
    """The answer class read from full sequences ``ids: (batch, length)`` (last target token);
    -1 where that token is not an answer token."""
    fmt = task_format(task, n, cot=cot, p=p)
    k = ids[:, fmt.length - 1] - fmt.answer_offset
    return torch.where((k >= 0) & (k < fmt.n_classes), k, torch.full_like(k, -1))
