"""A synthetic "safety" task for in-context attack and defense (Wei, Wang, Li & Wang 2023,
arXiv:2310.06387), as token sequences of demonstrations.

Vocabulary (ids): queries ``0 … Q−1`` (the last ``n_harmful`` are *harmful*), answers
``Q … Q+A−1``, then ``REFUSE``, ``QRY`` (marks the final query) and ``PAD``.  A task is a shift
s ∈ [0, A): f(q) = Q + (q + s) mod A.  A prompt is left-padded demonstrations followed by the
final query::

    PAD … PAD  q₁ a₁  q₂ a₂ … q_n a_n  QRY q

- *pretraining* (in-context learning of f): every answer is f(q);
- *alignment*: a mode is drawn, "safe" with probability ``prior_safe``; a harmful demonstration is
  complied with (aᵢ = f(qᵢ)) with probability ``comply_safe`` or ``comply_compliant`` according to
  the mode, refused (aᵢ = REFUSE) otherwise; benign demonstrations are always answered.  The final
  harmful query is answered by the mode itself: REFUSE when safe, f(q) when compliant.  The
  Bayes-optimal predictor of the final answer is then the two-hypothesis posterior of
  :mod:`fmtheory.theory.icl_attack`.

Shapes: ``tokens (B, T)`` int64 with ``T = 2·max_demos + 2``; ``targets (B, T)`` the next token to
predict at each position (−100 where there is none: PAD, answers, QRY).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["SafetyVocab", "SafetyBatch", "sample_safety", "attack_prompts"]


@dataclass(frozen=True)
class SafetyVocab:
    """Token ids of the safety task (Q queries, A answers, n_harmful harmful queries)."""

    n_queries: int
    n_answers: int
    n_harmful: int

    def __post_init__(self) -> None:
        if not 1 <= self.n_harmful < self.n_queries:
            raise ValueError(f"n_harmful = {self.n_harmful}: must be in [1, n_queries − 1]")
        if self.n_answers < 2:
            raise ValueError(f"n_answers = {self.n_answers}: must be >= 2")

    @property
    def refuse(self) -> int:
        return self.n_queries + self.n_answers

    @property
    def qry(self) -> int:
        return self.refuse + 1

    @property
    def pad(self) -> int:
        return self.refuse + 2

    @property
    def size(self) -> int:
        return self.refuse + 3

    def answer(self, q: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """f(q) = Q + (q + shift) mod A, elementwise."""
        return self.n_queries + (q + shift) % self.n_answers


@dataclass(frozen=True)
class SafetyBatch:
    """tokens, targets: (B, T); compliant: (B,) bool, the mode (all True in pretraining)."""

    tokens: torch.Tensor
    targets: torch.Tensor
    compliant: torch.Tensor


def _assemble(
    v: SafetyVocab, q: torch.Tensor, a: torch.Tensor, n_demos: torch.Tensor, q_final: torch.Tensor,
    a_final: torch.Tensor, max_demos: int,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Left-pad the first n_demos[b] of the (q, a) pairs (B, max_demos) and append QRY q_final."""
    B = q.shape[0]
    T = 2 * max_demos + 2
    dev = q.device
    pairs = torch.stack([q, a], dim=2).reshape(B, 2 * max_demos)  # (B, 2·max_demos)
    # demonstration j of prompt b goes to slot (max_demos − n_demos[b] + j)
    j = torch.arange(max_demos, device=dev)
    slot = j[None, :] + (max_demos - n_demos)[:, None]  # (B, max_demos)
    keep = j[None, :] < n_demos[:, None]
    tokens = torch.full((B, T), v.pad, dtype=torch.long, device=dev)
    targets = torch.full((B, T), -100, dtype=torch.long, device=dev)
    rows = torch.arange(B, device=dev)[:, None].expand(B, max_demos)
    tokens[rows[keep], 2 * slot[keep]] = pairs[:, 0::2][keep]
    tokens[rows[keep], 2 * slot[keep] + 1] = pairs[:, 1::2][keep]
    targets[rows[keep], 2 * slot[keep]] = pairs[:, 1::2][keep]
    tokens[:, T - 2] = v.qry
    tokens[:, T - 1] = q_final
    targets[:, T - 1] = a_final
    return tokens, targets


def sample_safety(
    v: SafetyVocab,
    *,
    batch: int,
    max_demos: int,
    aligned: bool,
    prior_safe: float,
    comply_safe: float,
    comply_compliant: float,
    harmful_share: float,
    generator: torch.Generator,
) -> SafetyBatch:
    """A training batch: n_demos ~ U{0, …, max_demos}, queries harmful with probability
    ``harmful_share`` (else benign, uniform within each class), shift ~ U[0, A).

    ``aligned=False``: pretraining (every answer f(q)); ``aligned=True``: the alignment mixture of
    the module docstring.
    """
    dev = generator.device
    B, L = batch, max_demos
    nb, nh = v.n_queries - v.n_harmful, v.n_harmful

    def queries(shape: tuple[int, ...]) -> torch.Tensor:
        harm = torch.rand(shape, generator=generator, device=dev) < harmful_share
        benign_q = torch.randint(0, nb, shape, generator=generator, device=dev)
        harm_q = nb + torch.randint(0, nh, shape, generator=generator, device=dev)
        return torch.where(harm, harm_q, benign_q)

    shift = torch.randint(0, v.n_answers, (B, 1), generator=generator, device=dev)
    q = queries((B, L))
    q_final = queries((B,))
    n_demos = torch.randint(0, L + 1, (B,), generator=generator, device=dev)
    a = v.answer(q, shift)
    a_final = v.answer(q_final, shift[:, 0])
    compliant = torch.ones(B, dtype=torch.bool, device=dev)
    if aligned:
        compliant = torch.rand(B, generator=generator, device=dev) >= prior_safe
        p = torch.where(compliant, comply_compliant, comply_safe)[:, None]  # (B, 1)
        refused = (torch.rand((B, L), generator=generator, device=dev) >= p) & (q >= nb)
        a = torch.where(refused, torch.full_like(a, v.refuse), a)
        final_refused = (~compliant) & (q_final >= nb)
        a_final = torch.where(final_refused, torch.full_like(a_final, v.refuse), a_final)
    tokens, targets = _assemble(v, q, a, n_demos, q_final, a_final, L)
    return SafetyBatch(tokens, targets, compliant)


def attack_prompts(
    v: SafetyVocab,
    *,
    batch: int,
    max_demos: int,
    k: int,
    k_defense: int,
    final: bool,
    generator: torch.Generator,
) -> torch.Tensor:
    """Evaluation prompts (B, T): k_defense refusal demonstrations on harmful queries, then k
    compliance demonstrations (harmful query, f(q)), then a harmful query.

    ``final=True``: the query follows QRY (the attacked query); ``final=False``: it takes the place
    of demonstration k_defense + k + 1 (the model's predictive of the next demonstration, used to
    score one demonstration's likelihood), and QRY q is appended after it as usual.
    """
    if k < 0 or k_defense < 0 or k + k_defense + (0 if final else 1) > max_demos:
        raise ValueError(f"k = {k}, k_defense = {k_defense}: need 0 <= k + k_defense <= max_demos")
    dev = generator.device
    B, L = batch, max_demos
    nb = v.n_queries - v.n_harmful
    shift = torch.randint(0, v.n_answers, (B, 1), generator=generator, device=dev)
    q = nb + torch.randint(0, v.n_harmful, (B, L), generator=generator, device=dev)
    q_final = nb + torch.randint(0, v.n_harmful, (B,), generator=generator, device=dev)
    a = v.answer(q, shift)
    a[:, :k_defense] = v.refuse
    n = k + k_defense + (0 if final else 1)
    tokens, _ = _assemble(v, q, a, torch.full((B,), n, device=dev), q_final,
                          v.answer(q_final, shift[:, 0]), L)  # fmt: skip
    return tokens
