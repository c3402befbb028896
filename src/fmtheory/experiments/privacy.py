"""Claim (survey arXiv:2410.11444 §6, privacy): DP-SGD (Abadi et al. 2016) run with Opacus limits
what a membership-inference attacker learns to the DP bound (e^ε − 1 + 2δ)/(e^ε + 1)
(Humphries et al. 2021, Thm 1), while a non-private model leaks measurably (Yeom et al. 2018).

Pipeline: an MLP (64 → hidden → 10) on scikit-learn's bundled digits.  A random half is the
training set (members), the other half the non-members.  For every ε in the config (``null`` =
non-private) the model is trained through ``train.fit``; the private ones with Opacus's
``PrivacyEngine`` (noise multiplier from Opacus's ``get_noise_multiplier`` for the target ε at
δ, Poisson batches of rate q = 1/⌈n/batch⌉ (the rate Opacus records) drawn from the run's generator).  The spent ε is read from
Opacus's RDP and PRV accountants and from the independent accountant of
:mod:`fmtheory.theory.dp_accounting`.  The loss-threshold attack (Yeom et al. 2018) picks its
threshold on one half of members/non-members and is scored on the other half (TPR − FPR with a
binomial s.e.), and by AUC over all examples (Hanley–McNeil s.e.).

Memorization (Feldman 2020; Feldman & Zhang 2020): ``memorization.models`` MLPs, each on a random
half of all digits, non-private and at ``memorization.epsilon``, give mem(i) = P[correct | i in] −
P[correct | i out] (:mod:`fmtheory.probes.memorization`).  Atypicality is defined without any model,
as kNN label disagreement in pixel space.  Removal: the ``memorization.remove`` most-memorized
members against as many random members are dropped from the training set, and the accuracy drop on
their nearest non-members is compared, paired over ``memorization.removal_seeds`` retrainings.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, field_validator
from torch import nn

from fmtheory.checks import (
    Z95,
    bound_check,
    ci_row,
    difference_check,
    exact_row,
    inconclusive,
    not_applicable,
)
from fmtheory.contract import (
    Chapter,
    Check,
    Experiment,
    ExperimentConfig,
    Result,
    RunContext,
    Section,
    register_experiment,
)
from fmtheory.experiments._privacy_canary import (
    CanarySection,
    canary_checks,
    canary_figures,
    canary_rows,
)
from fmtheory.experiments._privacy_icl import ICLPrivacySection, icl_checks, icl_figures, icl_rows
from fmtheory.probes.memorization import (
    knn_label_disagreement,
    memorization_scores,
    nearest_neighbours,
    top_fraction_difference,
)
from fmtheory.sections import TrainSection
from fmtheory.theory.dp_accounting import advantage_bound, dp_sgd_epsilon
from fmtheory.train.fit import fit, make_generator, seeded

NAME = "privacy"
SRC_BOUND = "Humphries et al. 2021, Thm 1; Yeom et al. 2018; survey arXiv:2410.11444 §6"
SRC_MEM = "Feldman 2020; Feldman & Zhang 2020, eq. (1) and §3"
SRC_ACC = "Mironov, Talwar & Zhang 2019 §3; Balle et al. 2020 Thm 21; Opacus RDPAccountant"
#: the issue's tolerance for the independent accountant against Opacus's RDP accountant
ACC_RTOL = 0.01


class DPSection(Section):
    """DP-SGD settings (Opacus)."""

    epsilons: list[float | None] = Field(
        [None, 8.0, 2.0, 1.0], min_length=1, description="target ε per model (null: non-private)"
    )
    delta: float = Field(1e-5, gt=0.0, lt=1.0, description="δ, in (0, 1)")
    max_grad_norm: float = Field(1.0, gt=0.0, le=100.0, description="per-example clipping norm C")

    @field_validator("epsilons")
    @classmethod
    def _eps(cls, v: list[float | None]) -> list[float | None]:
        for e in v:
            if e is not None and not (0.0 < e <= 100.0):
                raise ValueError(f"epsilons contains {e}: every ε must be in (0, 100] (or null)")
        return v


class AttackSection(Section):
    """Membership-inference attacks."""

    methods: list[Literal["loss_threshold", "lira"]] = Field(
        ["loss_threshold", "lira"], min_length=1, description="loss_threshold (Yeom et al. 2018), "
        "lira (Carlini et al. 2022, online, global variance)",
    )  # fmt: skip
    shadows: int = Field(8, ge=2, le=256, description="LiRA shadow models per ε")
    low_fpr: float = Field(0.01, gt=0.0, lt=1.0, description="FPR at which LiRA's TPR is read")


class MemorizationSection(Section):
    """Memorization by subsampling (Feldman & Zhang 2020) and the removal experiment."""

    models: int = Field(32, ge=0, le=2048, description="models per setting, each on a random half "
                        "of all digits (0: skip the memorization part)")  # fmt: skip
    epsilon: float | None = Field(2.0, description="target ε of the private subsampled models "
                                  "(null: no private estimate)")  # fmt: skip
    knn: int = Field(10, ge=1, le=200, description="neighbours for the kNN label-disagreement "
                     "atypicality")  # fmt: skip
    top_frac: float = Field(0.1, gt=0.0, lt=1.0, description="fraction called 'most atypical'")
    remove: int = Field(50, ge=0, le=800, description="training examples removed in the removal "
                        "experiment (0: skip it)")  # fmt: skip
    removal_seeds: int = Field(8, ge=2, le=256, description="paired retrainings per arm")

    @field_validator("epsilon")
    @classmethod
    def _eps(cls, v: float | None) -> float | None:
        if v is not None and not (0.0 < v <= 100.0):
            raise ValueError(f"epsilon is {v}: it must be in (0, 100] (or null)")
        return v


class Config(ExperimentConfig):
    attack: AttackSection = AttackSection()
    memorization: MemorizationSection = MemorizationSection()
    canary: CanarySection = CanarySection()  # canary exposure (Carlini et al. 2019)
    hidden: int = Field(128, ge=4, le=4096, description="hidden width of the MLP")
    dp: DPSection = DPSection()
    train: TrainSection = TrainSection(steps=600, batch_size=64, lr=0.05, warmup_steps=0,
                                       schedule="constant", grad_clip=None,
                                       checkpoint_every=10**6)  # fmt: skip
    icl: ICLPrivacySection | None = None  # the ICL transformer under DP-SGD (_privacy_icl.py)


def load_digits_split(seed: int) -> tuple[torch.Tensor, ...]:
    """(x_in, y_in, x_out, y_out): a random half of scikit-learn's digits and the rest; x in [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.randperm(len(y), generator=make_generator(seed))
    half = len(y) // 2
    return x[perm[:half]], y[perm[:half]], x[perm[half:]], y[perm[half:]]


def _mlp(hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def train_model(config: Config, eps: float | None, x: torch.Tensor, y: torch.Tensor,
                seed: int, ctx: RunContext, name: str = "target"
                ) -> tuple[nn.Module, dict[str, float]]:  # fmt: skip
    """Train one MLP (Opacus DP-SGD when ``eps`` is set); returns the model and its accounting.
    ``name`` (unique within a run) names its checkpoint."""
    n, tr = len(y), config.train
    q = 1.0 / math.ceil(n / tr.batch_size)  # the rate Opacus's accountant records for this loader
    model = seeded(lambda: _mlp(config.hidden), seed)
    info: dict[str, float] = {"sigma": 0.0, "sample_rate": q}
    if eps is None:
        opt = torch.optim.SGD(model.parameters(), lr=tr.lr)

        def loss_fn(m: nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
            idx = torch.randint(0, n, (tr.batch_size,), generator=g)
            return nn.functional.cross_entropy(m(x[idx]), y[idx])

        fit(model, loss_fn, tr, seed=seed, ctx=ctx, name=f"{name}_nonprivate", optimizer=opt)
        return model, info
    from opacus import PrivacyEngine
    from opacus.accountants.utils import get_noise_multiplier

    sigma = get_noise_multiplier(target_epsilon=eps, target_delta=config.dp.delta, sample_rate=q,
                                 steps=tr.steps, accountant="rdp")  # fmt: skip
    engine = PrivacyEngine(accountant="rdp")
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y),
                                         batch_size=tr.batch_size)  # fmt: skip
    pmodel, opt, _ = engine.make_private(
        module=model, optimizer=torch.optim.SGD(model.parameters(), lr=tr.lr), data_loader=loader,
        noise_multiplier=sigma, max_grad_norm=config.dp.max_grad_norm, poisson_sampling=True,
        noise_generator=make_generator(seed + 1),
    )  # fmt: skip

    def dp_loss(m: nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
        mask = torch.rand(n, generator=g) < q  # Poisson sampling, the accountant's assumption
        idx = mask.nonzero().ravel()
        if idx.numel() == 0:
            idx = torch.zeros(1, dtype=torch.long)
        return nn.functional.cross_entropy(m(x[idx]), y[idx], reduction="mean")

    fit(pmodel, dp_loss, tr, seed=seed, ctx=ctx, name=f"{name}_dp_eps{eps:g}", optimizer=opt)
    from opacus.accountants import PRVAccountant

    prv = PRVAccountant()
    prv.history = list(engine.accountant.history)
    info.update(sigma=sigma, eps_rdp=engine.accountant.get_epsilon(config.dp.delta),
                eps_prv=prv.get_epsilon(config.dp.delta))  # fmt: skip
    info["eps_ours"] = dp_sgd_epsilon(sigma=sigma, sample_rate=q, steps=tr.steps,
                                      delta=config.dp.delta)  # fmt: skip
    return pmodel._module, info


def _losses(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return nn.functional.cross_entropy(model(x), y, reduction="none").numpy()


def loss_threshold_attack(loss_in: np.ndarray, loss_out: np.ndarray,
                          rng: np.random.Generator) -> dict[str, float]:  # fmt: skip
    """Yeom et al. 2018: "member" when loss ≤ τ.  τ maximises TPR − FPR on a random half of each
    set; the advantage is measured on the other half (s.e. binomial).  AUC on all, s.e. by
    Hanley & McNeil 1982.  A lookup table (loss 0 on members) gives AUC 1; a constant gives 0.5."""
    from sklearn.metrics import roc_auc_score

    pi, po = rng.permutation(len(loss_in)), rng.permutation(len(loss_out))
    ai, bi = loss_in[pi[: len(pi) // 2]], loss_in[pi[len(pi) // 2 :]]
    ao, bo = loss_out[po[: len(po) // 2]], loss_out[po[len(po) // 2 :]]
    cands = np.unique(np.concatenate([ai, ao]))
    adv_a = [(ai <= t).mean() - (ao <= t).mean() for t in cands]
    tau = cands[int(np.argmax(adv_a))]
    tpr, fpr = float((bi <= tau).mean()), float((bo <= tau).mean())
    adv_se = math.sqrt(tpr * (1 - tpr) / len(bi) + fpr * (1 - fpr) / len(bo))
    labels = np.r_[np.ones(len(loss_in)), np.zeros(len(loss_out))]
    auc = float(roc_auc_score(labels, -np.r_[loss_in, loss_out]))
    n1, n0 = len(loss_in), len(loss_out)
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    auc_se = math.sqrt(max(auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2),
                           0.0) / (n1 * n0))  # fmt: skip
    return {"advantage": tpr - fpr, "advantage_se": adv_se, "auc": auc, "auc_se": auc_se}


def _logit_conf(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """φ = log p_y − log(1 − p_y) (Carlini et al. 2022, §IV.C), computed from the logits."""
    with torch.no_grad():
        z = model(x)
        zy = z.gather(1, y[:, None]).ravel()
        other = z.scatter(1, y[:, None], -math.inf).logsumexp(1)
        return (zy - other).numpy()


def lira_scores(phi_target: np.ndarray, phi_shadow: np.ndarray, in_mask: np.ndarray) -> np.ndarray:
    """Online LiRA with a global variance (Carlini et al. 2022, Alg. 1): phi_shadow, in_mask:
    (shadows, examples).  Score = log N(φ; μ_in, σ_in) − log N(φ; μ_out, σ_out); NaN for an example
    that no shadow saw in (or out)."""
    from scipy import stats

    n_in, n_out = in_mask.sum(0), (~in_mask).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu_in = np.where(in_mask, phi_shadow, 0).sum(0) / n_in
        mu_out = np.where(~in_mask, phi_shadow, 0).sum(0) / n_out
    ok = (n_in > 0) & (n_out > 0)
    r_in = (phi_shadow - mu_in)[in_mask & ok]
    r_out = (phi_shadow - mu_out)[~in_mask & ok]
    s_in, s_out = max(float(r_in.std()), 1e-6), max(float(r_out.std()), 1e-6)
    score = (stats.norm.logpdf(phi_target, mu_in, s_in)
             - stats.norm.logpdf(phi_target, mu_out, s_out))  # fmt: skip
    return np.where(ok, score, np.nan)


def run(config: Config, ctx: RunContext | None = None) -> Result:
    ctx = ctx or RunContext()
    seed = config.seed
    x_in, y_in, x_out, y_out = load_digits_split(seed)
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    for eps in config.dp.epsilons:
        model, info = train_model(config, eps, x_in, y_in, seed, ctx)
        c: dict[str, Any] = dict(seed=seed, target_eps=math.inf if eps is None else eps)
        with torch.no_grad():
            err = float((model(x_out).argmax(1) != y_out).float().mean())
        rows.append(exact_row("mlp", "test_error", err, se=math.sqrt(err * (1 - err) / len(y_out)),
                              **c))  # fmt: skip
        if "loss_threshold" in config.attack.methods:
            att = loss_threshold_attack(_losses(model, x_in, y_in), _losses(model, x_out, y_out),
                                        rng)  # fmt: skip
            rows.append(exact_row("loss_threshold", "advantage", att["advantage"],
                                  se=att["advantage_se"], **c))  # fmt: skip
            rows.append(exact_row("loss_threshold", "auc", att["auc"], se=att["auc_se"], **c))
        if "lira" in config.attack.methods:
            x_all, y_all = torch.cat([x_in, x_out]), torch.cat([y_in, y_out])
            member = np.r_[np.ones(len(y_in), bool), np.zeros(len(y_out), bool)]
            masks, phis = [], []
            for k in range(config.attack.shadows):
                m = rng.random(len(y_all)) < 0.5
                sm, _ = train_model(
                    config, eps, x_all[m], y_all[m], seed + 1000 + k, ctx, name=f"shadow{k}"
                )
                masks.append(m)
                phis.append(_logit_conf(sm, x_all, y_all))
            score = lira_scores(_logit_conf(model, x_all, y_all), np.array(phis), np.array(masks))
            ok = np.isfinite(score)
            att = loss_threshold_attack(-score[ok & member], -score[ok & ~member], rng)
            rows.append(exact_row("lira", "advantage", att["advantage"], se=att["advantage_se"],
                                  **c))  # fmt: skip
            rows.append(exact_row("lira", "auc", att["auc"], se=att["auc_se"], **c))
            s_out = score[ok & ~member]
            thr = np.quantile(s_out, 1 - config.attack.low_fpr)
            tpr = float((score[ok & member] > thr).mean())
            rows.append(exact_row("lira", "tpr_at_low_fpr", tpr, se=math.sqrt(
                tpr * (1 - tpr) / int((ok & member).sum())), **c))  # fmt: skip
        if eps is not None:
            for k in ("eps_rdp", "eps_prv", "eps_ours"):
                rows.append(exact_row(k.removeprefix("eps_"), "epsilon", info[k], **c))
            rows.append(exact_row("opacus", "sigma", info["sigma"], **c))
            rows.append(exact_row("theory", "advantage_bound",
                                  advantage_bound(epsilon=info["eps_rdp"], delta=config.dp.delta),
                                  **c))  # fmt: skip
    rows += memorization_rows(config, x_in, y_in, x_out, y_out, ctx)
    rows += icl_rows(config.icl, seed, config.dp.delta, ctx)
    rows += canary_rows(config.canary, delta=config.dp.delta, max_grad_norm=config.dp.max_grad_norm,
                        seed=seed, ctx=ctx)  # fmt: skip
    table = pd.DataFrame(rows)
    return Result(table=table, checks=checks(table, config), figures=figures(table))


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return (model(x).argmax(1) == y).numpy()


def memorization_rows(config: Config, x_in: torch.Tensor, y_in: torch.Tensor, x_out: torch.Tensor,
                      y_out: torch.Tensor, ctx: RunContext) -> list[dict[str, Any]]:  # fmt: skip
    """Memorization scores by subsampling (Feldman & Zhang 2020) on all digits, non-private and at
    ``memorization.epsilon``; the atypicality comparison; the removal experiment on the
    members/non-members split (train on ``x_in``, neighbours among ``x_out``)."""
    mc, seed = config.memorization, config.seed
    if mc.models == 0:
        return []
    x_all, y_all = torch.cat([x_in, x_out]), torch.cat([y_in, y_out])
    n, n_in = len(y_all), len(y_in)
    atyp = knn_label_disagreement(x_all.numpy(), y_all.numpy(), mc.knn)
    rows: list[dict[str, Any]] = []
    mem_np = None
    for eps in [None] + ([mc.epsilon] if mc.epsilon is not None else []):
        g = make_generator(seed + 7)
        correct, masks = [], []
        for k in range(mc.models):
            m = np.zeros(n, bool)
            m[torch.randperm(n, generator=g)[: n // 2].numpy()] = True
            model, _ = train_model(config, eps, x_all[m], y_all[m], seed + 5000 + k, ctx,
                                   name=f"mem{k}")  # fmt: skip
            correct.append(_accuracy(model, x_all, y_all))
            masks.append(m)
        cor, msk = np.array(correct, float), np.array(masks)
        mem, _ = memorization_scores(cor, msk)
        c: dict[str, Any] = dict(seed=seed, target_eps=math.inf if eps is None else eps)
        gaps = (cor * msk).sum(1) / msk.sum(1) - (cor * ~msk).sum(1) / (~msk).sum(1)
        rows.append(ci_row("memorization", "mean_mem", gaps, **c))
        ok = np.isfinite(mem)
        d, d_se = top_fraction_difference(mem[ok], atyp[ok], mc.top_frac)
        rows.append(exact_row("memorization", "top_atypical_minus_rest", d, se=d_se, **c))
        from scipy.stats import spearmanr

        rho = float(spearmanr(mem[ok], atyp[ok]).statistic)
        rows.append(exact_row("memorization", "spearman_atypicality", rho,
                              se=(1 - rho**2) * math.sqrt(1.06 / (ok.sum() - 3)), **c))  # fmt: skip
        if eps is None:
            mem_np = mem
    if mc.remove == 0 or mem_np is None:
        return rows
    # removal: the most-memorized training examples against random ones (Feldman & Zhang 2020, §3)
    mem_tr = np.nan_to_num(mem_np[:n_in], nan=-np.inf)
    top = np.argsort(-mem_tr, kind="stable")[: mc.remove]
    xo = x_out.numpy()
    nb_top = np.unique(nearest_neighbours(x_in.numpy()[top], xo))
    rng = np.random.default_rng(seed + 11)
    drops_top, drops_rand = [], []
    for r in range(mc.removal_seeds):
        s = seed + 9000 + r
        rand = rng.choice(n_in, mc.remove, replace=False)
        nb_rand = np.unique(nearest_neighbours(x_in.numpy()[rand], xo))
        full, _ = train_model(config, None, x_in, y_in, s, ctx, name=f"rm_full{r}")
        acc_full = _accuracy(full, x_out, y_out)
        keep = np.ones(n_in, bool)
        keep[top] = False
        m_top, _ = train_model(config, None, x_in[keep], y_in[keep], s, ctx, name=f"rm_top{r}")
        keep = np.ones(n_in, bool)
        keep[rand] = False
        m_rand, _ = train_model(config, None, x_in[keep], y_in[keep], s, ctx, name=f"rm_rand{r}")
        drops_top.append(acc_full[nb_top].mean() - _accuracy(m_top, x_out, y_out)[nb_top].mean())
        drops_rand.append(acc_full[nb_rand].mean()
                          - _accuracy(m_rand, x_out, y_out)[nb_rand].mean())  # fmt: skip
    c = dict(seed=seed, target_eps=math.inf)
    rows.append(ci_row("removal", "drop_top_memorized", drops_top, **c))
    rows.append(ci_row("removal", "drop_random", drops_rand, **c))
    rows.append(ci_row("removal", "drop_difference", np.subtract(drops_top, drops_rand), **c))
    return rows


def _rows(table: pd.DataFrame, method: str, metric: str) -> pd.DataFrame:
    return table[(table["method"] == method) & (table["metric"] == metric)]


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    out: list[Check] = []
    # 1. advantage below the DP bound at every finite ε
    claim = "at every ε each attack's advantage stays below (e^ε − 1 + 2δ)/(e^ε + 1)"
    bounds = _rows(table, "theory", "advantage_bound").set_index("target_eps")["value"]
    verdicts, parts = [], []
    for method in ("loss_threshold", "lira"):
        adv = _rows(table, method, "advantage").set_index("target_eps")
        for e, b in bounds.items():
            if e not in adv.index:
                continue
            r = adv.loc[e]
            ck = bound_check(claim, SRC_BOUND, "claim", value=r["value"], value_se=r["se"],
                             bound=b)  # fmt: skip
            verdicts.append(ck.status)
            parts.append(f"{method} ε={e:g}: {r['value']:.3f}+{Z95 * r['se']:.3f} vs {b:.3f}")
    tol = "advantage + 1.96 s.e. ≤ bound at each private ε"
    if not verdicts:
        out.append(inconclusive(claim, SRC_BOUND, "claim", "no private model in the config"))
    else:
        st = ("fails" if "fails" in verdicts else "inconclusive" if "inconclusive" in verdicts
              else "holds")  # fmt: skip
        out.append(Check(claim, SRC_BOUND, "claim", "advantage ≤ bound", "; ".join(parts), tol,
                         st, "an interval straddles a bound" if st == "inconclusive" else ""))  # fmt: skip
    # 2. non-private leaks
    claim = "the non-private model leaks: attack AUC above 0.5 with its interval"
    auc = _rows(table, "lira" if "lira" in config.attack.methods else "loss_threshold", "auc")
    np_row = auc[np.isinf(auc["target_eps"].astype(float))]
    if np_row.empty:
        out.append(inconclusive(claim, SRC_BOUND, "claim", "no non-private model in the config"))
    else:
        r = np_row.iloc[0]
        out.append(bound_check(claim, "Yeom et al. 2018; Carlini et al. 2022", "claim", value=r["value"],
                               value_se=r["se"], bound=0.5, below=False))  # fmt: skip
    # 3. the independent accountant against Opacus's RDP accountant
    ours = _rows(table, "ours", "epsilon").set_index("target_eps")["value"]
    ref = _rows(table, "rdp", "epsilon").set_index("target_eps")["value"]
    common = ours.index.intersection(ref.index)
    if len(common):
        rel = float((abs(ours[common] - ref[common]) / ref[common]).max())
        out.append(Check("the independent RDP accountant agrees with Opacus's RDP accountant",
                         SRC_ACC, "theory", 0.0, rel, f"max relative difference ≤ {ACC_RTOL:g}",
                         "holds" if rel <= ACC_RTOL else "fails"))  # fmt: skip
    out += memorization_checks(table, config)
    out += icl_checks(table, config.icl)
    out += canary_checks(table, config.canary)
    return out


def memorization_checks(table: pd.DataFrame, config: Config) -> list[Check]:
    """The three memorization claims, each from the table's ``memorization``/``removal`` rows."""
    out: list[Check] = []
    mc = config.memorization
    c1 = (f"atypical examples are memorized most: the top {mc.top_frac:g} by kNN label "
          "disagreement have a higher mean memorization score than the rest")  # fmt: skip
    c2 = f"DP-SGD lowers memorization: mean score non-private > at ε = {mc.epsilon}"
    c3 = ("removing the most-memorized training examples costs more accuracy on their nearest "
          "test neighbours than removing random ones")  # fmt: skip
    top = _rows(table, "memorization", "top_atypical_minus_rest")
    top_np = top[np.isinf(top["target_eps"].astype(float))]
    if top_np.empty:
        out.append(not_applicable(c1, SRC_MEM, "claim", "memorization.models = 0"))
    else:
        r = top_np.iloc[0]
        out.append(bound_check(c1, SRC_MEM, "claim", value=r["value"], value_se=r["se"], bound=0.0,
                               below=False, where="difference of means"))  # fmt: skip
    mm = _rows(table, "memorization", "mean_mem")
    a = mm[np.isinf(mm["target_eps"].astype(float))]
    b = mm[~np.isinf(mm["target_eps"].astype(float))]
    if a.empty or b.empty:
        why = "memorization.models = 0" if a.empty else "memorization.epsilon is null"
        out.append(not_applicable(c2, SRC_MEM, "claim", why))
    else:
        out.append(difference_check(c2, SRC_MEM, "claim", a=a.iloc[0]["value"], a_se=a.iloc[0]["se"],
                                    b=b.iloc[0]["value"], b_se=b.iloc[0]["se"], greater=True,
                                    where="mean over models of in-half minus out-half accuracy"))  # fmt: skip
    dd = _rows(table, "removal", "drop_difference")
    if dd.empty:
        out.append(not_applicable(c3, SRC_MEM, "claim",
                                  "memorization.models = 0 or memorization.remove = 0"))  # fmt: skip
    else:
        r = dd.iloc[0]
        out.append(bound_check(c3, SRC_MEM, "claim", value=r["value"], value_se=r["se"], bound=0.0,
                               below=False, where="paired over retraining seeds"))  # fmt: skip
    return out


def figures(table: pd.DataFrame) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    figs: dict[str, Any] = {}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4))
    err = _rows(table, "mlp", "test_error").sort_values("target_eps")
    xs = [f"{e:g}" for e in err["target_eps"]]
    ax1.errorbar(xs, err["value"], yerr=Z95 * err["se"], fmt="o-")
    ax1.set_xlabel("target ε (inf: non-private)")
    ax1.set_ylabel("test error")
    ax1.set_title("utility vs ε (digits MLP)")
    for method in ("loss_threshold", "lira"):
        adv = _rows(table, method, "advantage").sort_values("target_eps")
        if not adv.empty:
            ax2.errorbar([f"{e:g}" for e in adv["target_eps"]], adv["value"],
                         yerr=Z95 * adv["se"], fmt="o", label=f"{method} advantage")  # fmt: skip
    b = _rows(table, "theory", "advantage_bound").sort_values("target_eps")
    ax2.plot([f"{e:g}" for e in b["target_eps"]], b["value"], "k_", ms=20, label="DP bound")
    ax2.set_xlabel("target ε")
    ax2.set_ylabel("TPR − FPR")
    ax2.set_title("membership advantage vs the DP bound")
    ax2.legend()
    figs["privacy"] = fig
    mm = _rows(table, "memorization", "mean_mem")
    if not mm.empty:
        fig, ax = plt.subplots(figsize=(6, 4))
        xs = ["inf" if math.isinf(e) else f"{e:g}" for e in mm["target_eps"]]
        top = _rows(table, "memorization", "top_atypical_minus_rest")
        ax.errorbar(xs, mm["value"], yerr=Z95 * mm["se"], fmt="o", label="mean memorization score")
        ax.errorbar(xs, top["value"], yerr=Z95 * top["se"], fmt="s",
                    label="most atypical decile − rest")  # fmt: skip
        dd = _rows(table, "removal", "drop_difference")
        if not dd.empty:
            ax.errorbar(["removal"], dd["value"], yerr=Z95 * dd["se"], fmt="^",
                        label="neighbour accuracy drop: top-memorized − random")  # fmt: skip
        ax.axhline(0.0, color="k", lw=0.5)
        ax.set_xlabel("target ε of the subsampled models (inf: non-private)")
        ax.set_title("memorization by subsampling (Feldman & Zhang 2020)")
        ax.legend(fontsize=8)
        figs["memorization"] = fig
    figs.update(icl_figures(table))
    figs.update(canary_figures(table))
    return figs


def headline(table: pd.DataFrame, config: Config) -> dict[str, float]:
    out = {}
    for _, r in _rows(table, "mlp", "test_error").iterrows():
        out[f"test_error_eps{r['target_eps']:g}"] = float(r["value"])
    return out


def label(config: Config) -> str:
    parts = [f"MLP 64→{config.hidden}→10 on digits", config.canary.label()]
    if config.icl is not None:
        parts.append(f"ICL {config.icl.model.label()}")
    return "; ".join(parts)


EXPERIMENT = register_experiment(
    Experiment(
        name=NAME,
        claim="DP-SGD (Opacus) keeps a membership attacker's advantage below the DP bound; a "
        "non-private model leaks",
        source=SRC_BOUND,
        chapter=Chapter.ETHICS.value,
        config_cls=Config,
        run=run,
        checks=checks,
        figures=figures,
        headline=headline,
        label=label,
        formula="TPR − FPR ≤ (e^ε − 1 + 2δ)/(e^ε + 1)",
        key_figure="privacy",
    )
)
