"""Conformance suite (in the spirit of scikit-learn's ``check_estimator``): the same named checks
run over EVERY registered estimator, so a new estimator is checked the moment it registers.

An estimator whose hyperparameters have no defaults provides them via ``example_params()``.
"""

from __future__ import annotations

import math
import numbers

import pytest
import torch

from fmtheory.estimators import (
    ICLEstimator,
    NotFittedError,
    create_estimator,
    get_estimator_class,
    list_estimators,
    register_estimator,
)
from fmtheory.estimators.base import check_xy

NAMES = list_estimators()
B, N, D = 5, 7, 3


def make(name: str) -> ICLEstimator:
    cls = get_estimator_class(name)
    return cls(**cls.example_params())


def data(dtype=torch.float64, seed=0, batch=B, n=N, d=D):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n, d, generator=g, dtype=torch.float64)
    w = torch.randn(batch, d, generator=g, dtype=torch.float64)
    y = torch.einsum("bnd,bd->bn", x, w) + 0.2 * torch.randn(
        batch, n, generator=g, dtype=torch.float64
    )
    return x.to(dtype), y.to(dtype)


def test_registry_holds_the_issue_estimators():
    expected = {"zero", "averaging", "knn", "ols", "ridge", "bayes", "gd", "lasso", "dmmse"}
    assert expected <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_check_registered_name_matches_class(name):
    assert get_estimator_class(name).name == name


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_check_output_shape_and_dtype(name, dtype):
    x, y = data(dtype)
    est = make(name)
    out = est.predict_prefixes(x, y)
    assert out.shape == (B, N) and out.dtype == dtype and bool(torch.isfinite(out).all())
    pred = est.fit(x[:, :4], y[:, :4]).predict(x[:, 4:])
    assert pred.shape == (B, N - 4) and pred.dtype == dtype


@pytest.mark.parametrize("name", NAMES)
def test_check_deterministic(name):
    x, y = data()
    est = make(name)
    assert torch.equal(est.predict_prefixes(x, y), est.predict_prefixes(x, y))
    a = est.fit(x, y).predict(x)
    assert torch.equal(a, make(name).fit(x, y).predict(x))


@pytest.mark.parametrize("name", NAMES)
def test_check_prefix_equals_fit_on_prefix(name):
    x, y = data(seed=1)
    est = make(name)
    prefixes = est.predict_prefixes(x, y)
    for k in (0, 1, D - 1, D, N - 1):  # empty, under-, exactly and over-determined contexts
        single = est.fit(x[:, :k], y[:, :k]).predict(x[:, k : k + 1])[:, 0]
        assert torch.allclose(prefixes[:, k], single, rtol=1e-7, atol=1e-7), f"k = {k}"


@pytest.mark.parametrize("name", NAMES)
def test_check_batch_independence(name):
    x, y = data(seed=2)
    est = make(name)
    perm = torch.tensor([3, 0, 4, 2, 1])
    out = est.predict_prefixes(x, y)
    out_perm = est.predict_prefixes(x[perm], y[perm])
    assert torch.allclose(out_perm, out[perm], rtol=1e-10, atol=1e-12)
    # changing one prompt changes no other prompt's predictions
    x2, y2 = x.clone(), y.clone()
    x2[0], y2[0] = 3.0 * x2[0] + 1.0, -y2[0]
    out2 = est.predict_prefixes(x2, y2)
    assert torch.allclose(out2[1:], out[1:], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_check_init_stores_hyperparameters_only(name):
    cls = get_estimator_class(name)
    params = cls.example_params()
    est = cls(**params)
    names = cls._param_names()
    assert sorted(vars(est)) == sorted(names), "__init__ must store exactly its hyperparameters"
    assert not [a for a in vars(est) if a.endswith("_")]
    got = est.get_params()
    for key, value in params.items():
        assert got[key] is value, f"{name}.{key} must be stored unchanged"
    for p in names:
        assert hasattr(est, p)


@pytest.mark.parametrize("name", NAMES)
def test_check_fit_returns_self_and_learns_underscore_state(name):
    x, y = data()
    est = make(name)
    before = dict(vars(est))
    assert est.fit(x, y) is est
    learned = set(vars(est)) - set(before)
    assert learned and all(a.endswith("_") for a in learned)
    assert {"n_prompts_", "n_context_", "n_features_in_"} <= learned
    for k, v in before.items():
        assert vars(est)[k] is v, f"fit must not change hyperparameter {k}"


@pytest.mark.parametrize("name", NAMES)
def test_check_predict_prefixes_is_stateless(name):
    x, y = data()
    est = make(name)
    before = dict(vars(est))
    est.predict_prefixes(x, y)
    assert vars(est).keys() == before.keys()
    assert all(vars(est)[k] is v for k, v in before.items())


@pytest.mark.parametrize("name", NAMES)
def test_check_predict_before_fit_raises(name):
    x, _ = data()
    with pytest.raises(NotFittedError, match="fit"):
        make(name).predict(x)


@pytest.mark.parametrize("name", NAMES)
def test_check_bad_inputs_raise_value_error_naming_the_argument(name):
    x, y = data()
    est = make(name)
    with pytest.raises(ValueError, match=r"x\.shape"):
        est.predict_prefixes(x[0], y)
    with pytest.raises(ValueError, match=r"y\.shape"):
        est.predict_prefixes(x, y[:, :-1])
    with pytest.raises(ValueError, match=r"x\.dtype"):
        est.predict_prefixes(x.long(), y)
    bad = y.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        est.fit(x, bad)
    est.fit(x, y)
    with pytest.raises(ValueError, match=r"x\.shape"):
        est.predict(x[:2])  # another batch than fit's


@pytest.mark.parametrize("name", NAMES)
def test_check_short_prompts(name):
    # one point: only the k = 0 (prior) prediction; equals fitting on an empty context
    x, y = data(n=1)
    est = make(name)
    out = est.predict_prefixes(x, y)
    assert out.shape == (B, 1)
    assert torch.allclose(out[:, 0], est.fit(x[:, :0], y[:, :0]).predict(x)[:, 0])


@pytest.mark.parametrize("name", NAMES)
def test_check_numeric_hyperparameters_reject_nan(name):
    cls = get_estimator_class(name)
    base = cls.example_params()
    defaults = make(name).get_params()
    for field, value in defaults.items():
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            bad_value = float("nan") if isinstance(value, float) else -(10**6)
            with pytest.raises(ValueError, match=field):
                cls(**{**base, field: bad_value})


#: (estimator, hyperparameters, field the error must name): the issue's estimators.  Estimators
#: added later are covered by test_check_numeric_hyperparameters_reject_nan automatically.
INVALID = [
    ("ridge", {"alpha": -1.0}, "alpha"),
    ("ridge", {"alpha": "big"}, "alpha"),
    ("gd", {"steps": -1}, "steps"),
    ("gd", {"steps": 1.5}, "steps"),
    ("gd", {"lr": 0.0}, "lr"),
    ("knn", {"n_neighbors": 0}, "n_neighbors"),
    ("lasso", {"alpha": 0.0}, "alpha"),
    ("lasso", {"alpha": -0.1}, "alpha"),
    ("lasso", {"max_iter": 0}, "max_iter"),
    ("lasso", {"tol": -1e-3}, "tol"),
    ("bayes", {"noise_std": -0.1}, "noise_std"),
    ("bayes", {"prior_cov": -1.0}, "prior_cov"),
    ("bayes", {"prior_cov": torch.tensor([[1.0, 2.0], [2.0, 1.0]])}, "prior_cov"),
    ("bayes", {"prior_cov": torch.tensor([[1.0, 0.5], [0.0, 1.0]])}, "prior_cov"),
    ("bayes", {"prior_mean": torch.zeros(2, 2)}, "prior_mean"),
    ("bayes", {"prior_mean": torch.zeros(3), "prior_cov": torch.eye(2)}, "prior_mean"),
    ("dmmse", {"noise_std": 0.0}, "noise_std"),
    ("dmmse", {"pool": torch.zeros(4)}, "pool"),
]


@pytest.mark.parametrize(("name", "params", "field"), INVALID)
def test_invalid_hyperparameters_raise_naming_the_field(name, params, field):
    cls = get_estimator_class(name)
    with pytest.raises(ValueError, match=field):
        cls(**{**cls.example_params(), **params})


def test_unknown_estimator_name_lists_the_valid_names():
    with pytest.raises(ValueError) as info:
        create_estimator("ridgeless")
    for name in NAMES:
        assert name in str(info.value)


def test_create_estimator_rejects_unknown_and_missing_hyperparameters():
    with pytest.raises(ValueError, match="lambda_"):
        create_estimator("ridge", lambda_=1.0)
    with pytest.raises(ValueError, match="pool"):
        create_estimator("dmmse", noise_std=0.5)
    est = create_estimator("ridge", alpha=0.5)
    assert est.get_params() == {"alpha": 0.5} and "alpha=0.5" in repr(est)


def test_register_estimator_rejects_clashes_and_mismatched_names():
    ridge_cls = get_estimator_class("ridge")

    class Other(ridge_cls):  # type: ignore[misc, valid-type]
        name = "ridge"

    with pytest.raises(ValueError, match="already registered"):
        register_estimator("ridge", Other)
    with pytest.raises(ValueError, match="must equal"):
        register_estimator("ridge_two", Other)
    with pytest.raises(ValueError, match="subclass"):
        register_estimator("thing", dict)  # type: ignore[arg-type]
    assert register_estimator("ridge", ridge_cls) is ridge_cls  # re-registering is idempotent
    assert get_estimator_class("ridge") is ridge_cls


def test_example_params_are_valid_for_every_estimator():
    for name in NAMES:
        est = create_estimator(name, **get_estimator_class(name).example_params())
        assert isinstance(est, ICLEstimator)
        assert not math.isnan(float(est.predict_prefixes(*data())[0, 1]))


def test_finite_check_sees_inf_and_nan_but_accepts_a_sum_that_overflows():
    x = torch.full((2, 3, 4), 3e38)  # finite float32 entries whose float32 sum is inf
    y = torch.zeros(2, 3)
    assert check_xy(x, y)[0] is x
    for bad in (float("inf"), float("-inf"), float("nan")):
        x2 = torch.zeros(2, 3, 4)
        x2[1, 2, 3] = bad
        with pytest.raises(ValueError, match="x holds NaN or inf"):
            check_xy(x2, y)
