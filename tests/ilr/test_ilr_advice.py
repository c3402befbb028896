"""The advice (fmtheory.theory.ilr_advice) and ``fmtheory advise`` / ``fmtheory theory ilr-*``."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from fmtheory.cli import main
from fmtheory.theory.ilr import best_ridge_mse, floor_mse, haar_basis, oracle_mse
from fmtheory.theory.ilr_advice import (
    RIDGE_RATIO,
    VERDICTS,
    advise,
    decide,
    estimate_prior_from_tasks,
)


@pytest.mark.parametrize(
    ("bayes", "ridge", "target", "more", "code"),
    [
        (0.5, 0.5, 1.0, 0, "ridge"),
        (0.5, 0.5 * RIDGE_RATIO, 1.0, 0, "ridge"),
        (0.5, 0.5 * RIDGE_RATIO * 1.001, 1.0, 0, "trust"),
        (2.0, 9.0, 1.0, 7, "gather"),
        (2.0, 9.0, 1.0, None, "out_of_reach"),
    ],
)
def test_decide(bayes, ridge, target, more, code):
    got, sentence = decide(bayes_error=bayes, ridge_error=ridge, target_error=target,
                           more_examples_needed=more)  # fmt: skip
    assert got == code
    assert sentence == VERDICTS[code].format(n=more)


def test_every_number_comes_from_the_theory():
    a = advise(dim=10, rank=3, context=6, noise=0.2, prior_scale=1.5, seed=3)
    lam = np.full(3, 2.25)
    ref = oracle_mse(n=6, sigma=0.2, spectrum=lam, x_var=np.ones(10), d=10, n_mc=2000, seed=3)
    assert a.bayes_error == ref.value and a.bayes_error_stderr == ref.stderr
    ridge = best_ridge_mse(n=6, sigma=0.2, cov=np.eye(10) * 6.75 / 10, n_mc=2000, seed=3)
    assert a.ridge_error == ridge.mse
    assert a.prior_variance == pytest.approx(6.75)
    assert a.target_error == pytest.approx(0.675) and a.target_is_default
    assert a.verdict_code == "trust" and a.more_examples_needed == 0


def test_more_examples_needed_is_the_smallest_sufficient_context():
    a = advise(dim=10, rank=8, context=6, noise=0.1, target_error=0.05)
    assert a.verdict_code == "gather" and a.more_examples_needed > 0
    n_star = a.context_needed
    lam = np.ones(8)

    def bayes(n):
        return oracle_mse(n=n, sigma=0.1, spectrum=lam, x_var=np.ones(10), d=10).value

    assert bayes(n_star) <= 0.05 < bayes(n_star - 1)
    assert a.verdict == f"gather {a.more_examples_needed} more examples"
    assert a.floor == floor_mse(spectrum=lam, n=6) == 2.0 and a.relative_floor == 0.25


def test_out_of_reach_when_no_context_within_reach_suffices():
    a = advise(dim=10, rank=8, context=6, noise=0.1, target_error=0.05, max_context=10)
    assert a.verdict_code == "out_of_reach" and a.more_examples_needed is None
    assert a.verdict == "out of reach for any model"


def test_ridge_suffices_for_an_isotropic_full_rank_prior():
    # r = d, w0 = 0, isotropic x: ridge at α = σ²/λ IS the posterior mean
    a = advise(dim=6, rank=6, context=20, noise=0.3)
    assert a.verdict_code == "ridge"
    assert a.ridge_error == pytest.approx(a.bayes_error, rel=0.02)


def test_prior_from_tasks():
    rng = np.random.default_rng(0)
    u = haar_basis(rng, 12, 3)
    w0 = rng.standard_normal(12)
    tasks = w0 + (rng.standard_normal((3000, 3)) * np.array([2.0, 1.0, 0.7])) @ u.T
    p = estimate_prior_from_tasks(tasks)
    assert p.rank == 3 and p.estimated_rank == 3 and p.n_tasks == 3000
    assert np.allclose(p.mean, w0, atol=0.15)
    assert np.allclose(np.sort(p.spectrum), [0.49, 1.0, 4.0], rtol=0.1)
    a = advise(dim=None, rank=None, context=5, noise=0.1, prior=p)
    assert a.prior_source == "tasks" and a.rank == 3 and a.dim == 12
    ref = oracle_mse(n=5, sigma=0.1, spectrum=p.spectrum, basis=p.basis, x_var=np.ones(12),
                     n_mc=a_mc(3), seed=0)  # fmt: skip
    assert a.bayes_error == ref.value
    # ridge shrinks to 0 and pays for ‖w0‖²: far worse than the Bayes estimator here
    assert a.ridge_error > 5 * a.bayes_error
    with pytest.raises(ValueError, match="dim"):
        advise(dim=11, rank=None, context=5, noise=0.1, prior=p)


def a_mc(r: int) -> int:
    """The Monte Carlo size advise() uses for a prior with a basis (see ilr_advice.advise)."""
    return int(np.clip(5e6 / r**3, 20, 2000))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(dim=5, rank=6, context=3, noise=0.1), "rank"),
        (dict(dim=5, rank=2, context=0, noise=0.1), "context"),
        (dict(dim=5, rank=2, context=3, noise=-0.1), "noise"),
        (dict(dim=5, rank=2, context=3, noise=0.1, cond=0.9), "cond"),
        (dict(dim=5, rank=2, context=3, noise=0.1, target_error=0.0), "target_error"),
        (dict(dim=0, rank=1, context=3, noise=0.1), "dim"),
    ],
)
def test_advise_rejects_bad_input(kwargs, field):
    with pytest.raises(ValueError, match=field):
        advise(**kwargs)


def test_advise_is_fast():
    t0 = time.process_time()
    advise(dim=50, rank=10, context=30, noise=0.1)
    advise(dim=20, rank=15, context=8, noise=0.3, target_error=0.01)
    assert time.process_time() - t0 < 2.0


# --------------------------------------------------------------------------- command line
def test_cli_advise_json(capsys):
    assert main(["advise", "--dim", "10", "--rank", "8", "--context", "6", "--noise", "0.1",
                 "--json"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    obj = json.loads(out)  # exactly one JSON object
    assert {"verdict", "bayes_error", "ridge_error", "more_examples_needed"} <= set(obj)
    assert obj["verdict"] == "gather 2 more examples" and obj["more_examples_needed"] == 2


def test_cli_advise_out_of_reach_prints_null(capsys):
    assert main(["advise", "--dim", "10", "--rank", "8", "--context", "6", "--noise", "0.1",
                 "--target-error", "0.05", "--max-context", "9", "--json"]) == 0  # fmt: skip
    obj = json.loads(capsys.readouterr().out)
    assert obj["more_examples_needed"] is None and obj["verdict"] == "out of reach for any model"


def test_cli_advise_human_output(capsys):
    assert main(["advise", "--dim", "10", "--rank", "2", "--context", "6", "--noise", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "verdict: a transformer/Bayes estimator can be trusted here" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--dim", "5", "--rank", "6", "--context", "3", "--noise", "0.1"], "--rank"),
        (["--dim", "5", "--rank", "2", "--context", "0", "--noise", "0.1"], "--context"),
        (["--dim", "5", "--rank", "2", "--context", "3", "--noise", "-1"], "--noise"),
        (
            ["--dim", "5", "--rank", "2", "--context", "3", "--noise", "0.1", "--cond", "0.5"],
            "--cond",
        ),
        (["--context", "3", "--noise", "0.1"], "--dim"),
    ],
)
def test_cli_advise_bad_flags_exit_2(argv, needle, capsys):
    assert main(["advise", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert needle in captured.err


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("", "empty"),
        ("a,b\n", "only a header"),
        ("1,2\n3\n", "ragged"),
        ("1,2\n3,x\n", "'x' is not a number"),
        ("1,2,3\n", "need at least 2"),
        ("1,2\n1,2\n", "no variance"),
    ],
)
def test_cli_advise_malformed_csv_exit_2(tmp_path, content, needle, capsys):
    f = tmp_path / "tasks.csv"
    f.write_text(content)
    assert main(["advise", "--prior-from", str(f), "--context", "3", "--noise", "0.1"]) == 2
    err = capsys.readouterr().err
    assert needle in " ".join(err.split())  # rich may wrap the line


def test_cli_advise_from_csv(tmp_path, capsys):
    rng = np.random.default_rng(1)
    u = haar_basis(rng, 6, 2)
    w = 0.5 + rng.standard_normal((400, 2)) @ u.T
    f = tmp_path / "tasks.csv"
    f.write_text("w1,w2,w3,w4,w5,w6\n" + "\n".join(",".join(f"{v:.6f}" for v in row) for row in w))
    assert main(["advise", "--prior-from", str(f), "--context", "4", "--noise", "0.1",
                 "--json"]) == 0  # fmt: skip
    obj = json.loads(capsys.readouterr().out)
    assert obj["rank"] == 2 and obj["estimated_rank"] == 2 and obj["n_tasks"] == 400
    assert obj["prior_source"] == "tasks"


def test_cli_theory_ilr_oracle(capsys):
    assert main(["theory", "ilr-oracle-mse", "--d", "8", "--n", "5", "--r", "2", "--sigma", "0.2",
                 "--json"]) == 0  # fmt: skip
    obj = json.loads(capsys.readouterr().out)
    ref = oracle_mse(n=5, sigma=0.2, spectrum=np.ones(2), x_var=np.ones(8), d=8)
    assert obj["value"] == ref.value and obj["stderr"] == ref.stderr
    assert main(["theory", "ilr-oracle-mse", "--d", "3", "--n", "5", "--r", "4",
                 "--sigma", "0.2"]) == 2  # fmt: skip
