"""Distribution shifts of in-context regression prompts: a registry of named samplers.

A shift changes the law of a prompt relative to a base :class:`~fmtheory.tasks.regression.RegressionSpec`
(the training distribution).  Every sampler returns a :class:`~fmtheory.tasks.regression.RegressionBatch`
with ``n_context + 1`` points — ``x: (batch, n_context + 1, dim)``, ``y: (batch, n_context + 1)``,
``w: (batch, dim)`` — whose LAST pair is the query (its label y_q = <w, x_q> + noise is the target).

The shifts (survey arXiv:2410.11444 §4.3; Garg et al. 2022 §4 "robustness"; Zhang, Frei & Bartlett
2024 §4):

==================  ===========  =====================================================================
name                parameters   what changes
==================  ===========  =====================================================================
none                             nothing (the training distribution)
task-scale          scale        w scaled by ``scale``  (task shift)
task-sparse         k            all but k uniformly chosen coordinates of w zeroed (task shift)
query-scale         c            only the query x_q scaled by c (query shift)
query-orthogonal                 x_q projected onto the orthogonal complement of span{x_1..x_n},
                                 rescaled by sqrt(d / (d - n)) (needs n_context < dim; query shift)
covariate-scale     c            context AND query x scaled by c (covariate shift)
covariate-skewed    cond         x ~ N(0, Λ) with Λ diagonal geometric from 1 to 1/cond, trace d
noisy-labels        sigma        label noise σ on every label, y_q included (replaces the base noise)
orthant             —            every context x_i in one random orthant: x_i = s ⊙ |g_i|, s ∈ {±1}^d
                                 drawn per prompt; the query drawn as in the base (Garg et al. §4)
opposite-quadrant   —            context in orthant s, query in the opposite orthant −s
==================  ===========  =====================================================================

Names come from the registry (:func:`list_shifts`); :func:`get_shift` refuses an unknown name and lists
the valid ones; :meth:`Shift.resolve` refuses unknown parameters and out-of-range values, naming them.

Where the context inputs stay Gaussian and independent of the query, :meth:`Shift.moments` gives the
second moments (Λ_c, Λ_q, E[wwᵀ], σ) that the closed-form LSA risk needs
(:func:`fmtheory.theory.lsa.lsa_risk_of_gamma`); it returns None for the other shifts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from fmtheory.tasks.regression import RegressionBatch, RegressionSpec, sample_regression
from fmtheory.theory.linear_regression import x_variances

__all__ = [
    "ShiftError",
    "ShiftParam",
    "ShiftMoments",
    "Shift",
    "register_shift",
    "get_shift",
    "list_shifts",
    "sample_shift",
]


class ShiftError(ValueError):
    """A shift refused its input; ``field`` names it (``"n_context"``, ``"params.k"``, ``"batch"``)."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class ShiftParam:
    """One parameter of a shift: a float (or int when ``integer``) in [low, high] (``low_open``:
    (low, high])."""

    name: str
    default: float
    low: float
    high: float = math.inf
    low_open: bool = False
    integer: bool = False
    help: str = ""

    def allowed(self) -> str:
        what = "an integer" if self.integer else "a finite number"
        return f"{what} in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}]"

    def coerce(self, shift: str, value: Any) -> float | int:
        where = f"shift '{shift}': parameter '{self.name}'"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where} = {value!r}: expected {self.allowed()}")
        v = float(value)
        bad = not math.isfinite(v) or v > self.high
        bad = bad or (v <= self.low if self.low_open else v < self.low)
        bad = bad or (self.integer and not v.is_integer())
        if bad:
            raise ValueError(f"{where} = {value!r}: expected {self.allowed()}")
        return int(v) if self.integer else v


@dataclass(frozen=True)
class ShiftMoments:
    """Second moments of a Gaussian-input shift, float64 numpy: ``ctx_cov`` Λ_c ``(d, d)`` of the
    context inputs, ``query_cov`` Λ_q ``(d, d)`` of the query, ``w_cov`` E[wwᵀ] ``(d, d)``,
    ``noise_std`` σ of every label (the query's included)."""

    ctx_cov: np.ndarray
    query_cov: np.ndarray
    w_cov: np.ndarray
    noise_std: float


Sampler = Callable[..., RegressionBatch]
MomentsFn = Callable[..., ShiftMoments | None]


@dataclass(frozen=True)
class Shift:
    """A registered shift: ``sample(base, n_context=, batch=, generator=, **params)`` and
    ``moments(base, n_context=, **params)`` (None where the inputs are not Gaussian)."""

    name: str
    summary: str
    params: tuple[ShiftParam, ...]
    sampler: Sampler
    moments_fn: MomentsFn | None = None
    #: the shift needs n_context < dim (query-orthogonal)
    needs_n_below_dim: bool = False
    #: parameters bounded by the base spec (task-sparse: k <= dim): name -> base attribute
    at_most_base: tuple[tuple[str, str], ...] = ()

    def resolve(self, params: Mapping[str, Any] | None = None) -> dict[str, float | int]:
        """Validate ``params`` (names and ranges) and fill the defaults; ValueError naming the field."""
        params = dict(params or {})
        known = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(known))
        if unknown:
            allowed = ", ".join(known) or "(none)"
            raise ValueError(
                f"shift '{self.name}': unknown parameter(s) {', '.join(map(repr, unknown))}; "
                f"allowed: {allowed}"
            )
        return {
            name: p.coerce(self.name, params[name]) if name in params else p.default
            for name, p in known.items()
        }

    def validate(
        self, base: RegressionSpec, n_context: int, params: Mapping[str, Any] | None = None
    ) -> dict[str, float | int]:
        """Resolved parameters, after checking them and ``n_context`` against ``base``.

        Raises :class:`ShiftError` (a ValueError) whose ``field`` names the bad input.
        """
        try:
            p = self.resolve(params)
        except ValueError as err:
            raise ShiftError("params", str(err)) from None
        if isinstance(n_context, bool) or not isinstance(n_context, int) or n_context < 1:
            raise ShiftError("n_context", f"n_context = {n_context!r}: must be an integer >= 1")
        if self.needs_n_below_dim and n_context >= base.dim:
            raise ShiftError(
                "n_context",
                f"n_context = {n_context}: shift '{self.name}' needs n_context < dim = {base.dim} "
                "(a query orthogonal to the span of the context exists only then)",
            )
        for name, attr in self.at_most_base:
            if p[name] > getattr(base, attr):
                raise ShiftError(
                    f"params.{name}",
                    f"shift '{self.name}': parameter '{name}' = {p[name]!r}: must be <= "
                    f"{attr} = {getattr(base, attr)}",
                )
        return p

    def sample(
        self,
        base: RegressionSpec,
        *,
        n_context: int,
        batch: int,
        generator: torch.Generator,
        params: Mapping[str, Any] | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> RegressionBatch:
        """``batch`` prompts of ``n_context`` pairs + 1 query (last) under this shift."""
        p = self.validate(base, n_context, params)
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ShiftError("batch", f"batch = {batch!r}: must be an integer >= 1")
        return self.sampler(
            base, n_context=n_context, batch=batch, generator=generator, dtype=dtype, **p
        )

    def moments(
        self, base: RegressionSpec, *, n_context: int, params: Mapping[str, Any] | None = None
    ) -> ShiftMoments | None:
        """Second moments for the closed-form LSA risk, or None (non-Gaussian inputs)."""
        p = self.validate(base, n_context, params)
        if self.moments_fn is None:
            return None
        return self.moments_fn(base, n_context=n_context, **p)


_REGISTRY: dict[str, Shift] = {}


def register_shift(shift: Shift) -> Shift:
    """Add ``shift`` to the registry (names are unique)."""
    if shift.name in _REGISTRY:
        raise ValueError(f"shift '{shift.name}' is already registered")
    _REGISTRY[shift.name] = shift
    return shift


def list_shifts() -> list[str]:
    """Every registered shift name, sorted."""
    return sorted(_REGISTRY)


def get_shift(name: str) -> Shift:
    """The shift called ``name``; ValueError listing the valid names otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"shift = {name!r}: unknown; valid shifts: {', '.join(list_shifts())}"
        ) from None


def sample_shift(
    name: str,
    base: RegressionSpec,
    *,
    n_context: int,
    batch: int,
    generator: torch.Generator,
    params: Mapping[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
) -> RegressionBatch:
    """``get_shift(name).sample(...)``."""
    return get_shift(name).sample(
        base, n_context=n_context, batch=batch, generator=generator, params=params, dtype=dtype
    )


# ----------------------------------------------------------------------------- helpers


def _base(
    base: RegressionSpec, n_context: int, batch: int, g: torch.Generator, dtype: torch.dtype
) -> RegressionBatch:
    return sample_regression(base, batch=batch, n_points=n_context + 1, generator=g, dtype=dtype)


def _relabel(
    x: torch.Tensor, w: torch.Tensor, noise_std: float, g: torch.Generator
) -> torch.Tensor:
    """y = <w, x> + N(0, σ²) for every point, ``(batch, n_points)``."""
    y = torch.einsum("bnd,bd->bn", x, w)
    if noise_std > 0:
        y = y + noise_std * torch.randn(y.shape, generator=g, device=x.device, dtype=x.dtype)
    return y


def _np_cov(base: RegressionSpec) -> np.ndarray:
    return np.diag(x_variances(d=base.dim, cond=base.x_cond))


def _np_wcov(base: RegressionSpec) -> np.ndarray:
    """E[wwᵀ] = τ² I + μ² 11ᵀ of the dense base prior (sparsity handled by :func:`_sparse_wcov`)."""
    d = base.dim
    m = np.full((d, d), base.w_mean**2) + base.w_scale**2 * np.eye(d)
    if base.sparsity is not None and base.sparsity < d:
        return _sparse_wcov(m, base.sparsity)
    return m


def _sparse_wcov(dense: np.ndarray, k: int) -> np.ndarray:
    """E[(m ⊙ w)(m ⊙ w)ᵀ] for a uniformly random k-subset mask m independent of w."""
    d = dense.shape[0]
    p_one = k / d
    p_two = k * (k - 1) / (d * (d - 1)) if d > 1 else 0.0
    scale = np.full((d, d), p_two)
    np.fill_diagonal(scale, p_one)
    return dense * scale


def _gauss_moments(
    base: RegressionSpec, *, ctx_scale: float = 1.0, query_scale: float = 1.0
) -> ShiftMoments:
    lam = _np_cov(base)
    return ShiftMoments(
        ctx_cov=ctx_scale**2 * lam,
        query_cov=query_scale**2 * lam,
        w_cov=_np_wcov(base),
        noise_std=base.noise_std,
    )


# ----------------------------------------------------------------------------- the shifts


def _none(base, *, n_context, batch, generator, dtype):
    return _base(base, n_context, batch, generator, dtype)


def _none_m(base, *, n_context):
    return _gauss_moments(base)


def _task_scale(base, *, n_context, batch, generator, dtype, scale):
    b = _base(base, n_context, batch, generator, dtype)
    w = b.w * scale
    return RegressionBatch(x=b.x, y=_relabel(b.x, w, base.noise_std, generator), w=w)


def _task_scale_m(base, *, n_context, scale):
    m = _gauss_moments(base)
    return replace(m, w_cov=scale**2 * m.w_cov)


def _task_sparse(base, *, n_context, batch, generator, dtype, k):
    return _base(replace(base, sparsity=int(k)), n_context, batch, generator, dtype)


def _task_sparse_m(base, *, n_context, k):
    return _gauss_moments(replace(base, sparsity=int(k)))


def _query_scale(base, *, n_context, batch, generator, dtype, c):
    b = _base(base, n_context, batch, generator, dtype)
    x = b.x.clone()
    x[:, -1] *= c
    return RegressionBatch(x=x, y=_relabel(x, b.w, base.noise_std, generator), w=b.w)


def _query_scale_m(base, *, n_context, c):
    return _gauss_moments(base, query_scale=c)


def _covariate_scale(base, *, n_context, batch, generator, dtype, c):
    b = _base(base, n_context, batch, generator, dtype)
    x = b.x * c
    return RegressionBatch(x=x, y=_relabel(x, b.w, base.noise_std, generator), w=b.w)


def _covariate_scale_m(base, *, n_context, c):
    return _gauss_moments(base, ctx_scale=c, query_scale=c)


def _covariate_skewed(base, *, n_context, batch, generator, dtype, cond):
    return _base(replace(base, x_cond=float(cond)), n_context, batch, generator, dtype)


def _covariate_skewed_m(base, *, n_context, cond):
    return _gauss_moments(replace(base, x_cond=float(cond)))


def _noisy(base, *, n_context, batch, generator, dtype, sigma):
    return _base(replace(base, noise_std=float(sigma)), n_context, batch, generator, dtype)


def _noisy_m(base, *, n_context, sigma):
    return _gauss_moments(replace(base, noise_std=float(sigma)))


def _orthogonal(base, *, n_context, batch, generator, dtype):
    """x_q ← sqrt(d/(d−n)) · (I − Q Qᵀ) x_q, Q an orthonormal basis of span{x_1..x_n}.

    The projection runs in float64 so that <x_q, x_i> is 0 to float64 rounding before the cast.
    """
    b = _base(base, n_context, batch, generator, dtype)
    d = base.dim
    xc = b.x[:, :n_context].double()  # (B, n, d)
    # (B, d, n): orthonormal columns spanning the context inputs
    q, _ = torch.linalg.qr(xc.transpose(1, 2))
    xq = b.x[:, -1].double()  # (B, d)
    xq = xq - torch.einsum("bdn,bn->bd", q, torch.einsum("bdn,bd->bn", q, xq))
    xq = xq * math.sqrt(d / (d - n_context))
    x = b.x.clone()
    x[:, -1] = xq.to(dtype)
    return RegressionBatch(x=x, y=_relabel(x, b.w, base.noise_std, generator), w=b.w)


def _signs(batch: int, d: int, g: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    bits = torch.randint(0, 2, (batch, d), generator=g, device=g.device)
    return (2 * bits - 1).to(dtype)


def _orthant(base, *, n_context, batch, generator, dtype):
    b = _base(base, n_context, batch, generator, dtype)
    s = _signs(batch, base.dim, generator, dtype).to(b.x.device)
    x = b.x.clone()
    x[:, :n_context] = s[:, None, :] * x[:, :n_context].abs()
    return RegressionBatch(x=x, y=_relabel(x, b.w, base.noise_std, generator), w=b.w)


def _opposite(base, *, n_context, batch, generator, dtype):
    b = _base(base, n_context, batch, generator, dtype)
    s = _signs(batch, base.dim, generator, dtype).to(b.x.device)
    x = b.x.abs()
    x[:, :n_context] *= s[:, None, :]
    x[:, -1] *= -s
    return RegressionBatch(x=x, y=_relabel(x, b.w, base.noise_std, generator), w=b.w)


_C = "scale of x (> 0)"
for _shift in (
    Shift("none", "the training distribution", (), _none, _none_m),
    Shift(
        "task-scale",
        "w scaled by `scale` (task shift)",
        (ShiftParam("scale", 2.0, 0.0, low_open=True, help="factor on w (> 0)"),),
        _task_scale,
        _task_scale_m,
    ),
    Shift(
        "task-sparse",
        "w with k non-zero coordinates (task shift)",
        (ShiftParam("k", 1, 1, integer=True, help="number of non-zero coordinates (<= dim)"),),
        _task_sparse,
        _task_sparse_m,
        at_most_base=(("k", "dim"),),
    ),
    Shift(
        "query-scale",
        "the query x_q scaled by c (query shift)",
        (ShiftParam("c", 2.0, 0.0, low_open=True, help=_C),),
        _query_scale,
        _query_scale_m,
    ),
    Shift(
        "query-orthogonal",
        "x_q orthogonal to the span of the context inputs (query shift; n_context < dim)",
        (),
        _orthogonal,
        None,
        needs_n_below_dim=True,
    ),
    Shift(
        "covariate-scale",
        "context and query x scaled by c (covariate shift)",
        (ShiftParam("c", 2.0, 0.0, low_open=True, help=_C),),
        _covariate_scale,
        _covariate_scale_m,
    ),
    Shift(
        "covariate-skewed",
        "x ~ N(0, Λ), Λ diagonal geometric with condition number `cond`, trace d",
        (ShiftParam("cond", 10.0, 1.0, help="condition number of Λ (>= 1)"),),
        _covariate_skewed,
        _covariate_skewed_m,
    ),
    Shift(
        "noisy-labels",
        "label noise σ on every label (replaces the training noise)",
        (ShiftParam("sigma", 1.0, 0.0, help="noise standard deviation (>= 0)"),),
        _noisy,
        _noisy_m,
    ),
    Shift(
        "orthant",
        "context inputs in one random orthant, query as in training (Garg et al. 2022 §4)",
        (),
        _orthant,
        None,
    ),
    Shift(
        "opposite-quadrant",
        "context inputs in one random orthant, the query in the opposite one",
        (),
        _opposite,
        None,
    ),
):
    register_shift(_shift)


def _in_context(base, *, n_context, batch, generator, dtype):
    """x_q ← x_i for i uniform in the context (Garg et al. 2022 §4, "query matches an in-context
    example"); y_q is relabelled, with fresh noise when σ > 0."""
    b = _base(base, n_context, batch, generator, dtype)
    i = torch.randint(0, n_context, (batch,), generator=generator, device=generator.device)
    x = b.x.clone()
    x[:, -1] = b.x[torch.arange(batch, device=x.device), i.to(x.device)]
    return RegressionBatch(x=x, y=_relabel(x, b.w, base.noise_std, generator), w=b.w)


register_shift(
    Shift(
        "query-in-context",
        "the query equal to one of the context inputs, chosen uniformly (query shift)",
        (),
        _in_context,
        None,
    )
)
