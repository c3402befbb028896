"""The one training loop: schedule, resume determinism, non-finite guard, checkpoints."""

import math
import os
import signal
import threading

import pytest
import torch

from fmtheory.tasks import make_generator
from fmtheory.train import NonFiniteLossError, TrainSpec, lr_at, train
from fmtheory.train.checkpoint import load_model, save_model

W = torch.tensor([1.0, -2.0, 3.0])


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Linear(3, 1)


def _loss(m: torch.nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
    x = torch.randn(16, 3, generator=g)
    return ((m(x).squeeze(-1) - x @ W) ** 2).mean()


SPEC = TrainSpec(steps=120, lr=0.05, warmup_steps=10, checkpoint_every=20, log_every=10)


def test_schedule_warmup_and_cosine():
    assert lr_at(SPEC, 0) == pytest.approx(0.05 / 10)
    assert lr_at(SPEC, 9) == pytest.approx(0.05)
    assert lr_at(SPEC, 10) == pytest.approx(0.05)
    mid = 10 + (120 - 10) // 2
    assert lr_at(SPEC, mid) == pytest.approx(0.025, rel=1e-2)
    const = TrainSpec(steps=10, lr=0.1, schedule="constant")
    assert all(lr_at(const, s) == 0.1 for s in range(10))


def test_training_reduces_loss():
    m = _model()
    r = train(m, loss_fn=_loss, spec=SPEC, generator=make_generator(0))
    assert r.losses[-1] < 0.02 * r.losses[0]  # two orders of magnitude in 120 steps
    assert r.loss_steps[-1] == 120


def test_progress_without_a_terminal_prints_lines(capsys):
    # stderr captured by pytest is not a terminal: a line per tenth of the steps, not a live bar
    r = train(_model(), loss_fn=_loss, spec=SPEC, generator=make_generator(0), progress=True)
    lines = capsys.readouterr().err.strip().splitlines()
    assert capsys.readouterr().out == ""
    # the loss is known every 10 steps; a line once >= 12 steps (a tenth) have passed, and the last
    steps = [int(line.split()[2].split("/")[0]) for line in lines]
    assert steps == [20, 40, 60, 80, 100, 120]
    assert lines[-1].startswith("train: step 120/120 (100%) loss ")
    assert f"loss {r.losses[-1]:.4g}" in lines[-1]
    assert all(" elapsed " in line and " left " in line for line in lines)


needs_main_thread = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="SIGINT handlers are installed from the main thread only",
)


@needs_main_thread
@pytest.mark.parametrize(
    ("presses", "resumed_from"),
    [(1, 48), (2, 40)],  # one Ctrl-C: step 47 finishes and is saved; two: mid-step, nothing saved
)
def test_resume_after_ctrl_c_is_bit_identical(tmp_path, presses, resumed_from):
    ref = _model()
    r_ref = train(ref, loss_fn=_loss, spec=SPEC, generator=make_generator(0))

    def interrupting(m, step, g):
        loss = _loss(m, step, g)  # this step's batch is drawn: the generator has moved on
        if step == 47:
            for _ in range(presses):
                os.kill(os.getpid(), signal.SIGINT)
        return loss

    ck = tmp_path / "ck.safetensors"
    found = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN under nohup
    with pytest.raises(KeyboardInterrupt):
        train(
            _model(),
            loss_fn=interrupting,
            spec=SPEC,
            generator=make_generator(0),
            checkpoint_path=ck,
        )
    assert signal.getsignal(signal.SIGINT) is found  # the handler found is restored
    m = _model()
    r = train(m, loss_fn=_loss, spec=SPEC, generator=make_generator(0), checkpoint_path=ck)
    assert r.resumed_from == resumed_from  # checkpoint_every = 20: the periodic one at step 40
    assert torch.equal(m.weight, ref.weight) and torch.equal(m.bias, ref.bias)
    assert r.losses == r_ref.losses


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    def exploding(m, step, g):
        loss = _loss(m, step, g)
        return loss * float("nan") if step >= 45 else loss

    ck = tmp_path / "ck.safetensors"
    with pytest.raises(NonFiniteLossError) as info:
        train(
            _model(), loss_fn=exploding, spec=SPEC, generator=make_generator(0), checkpoint_path=ck
        )
    assert "nan" in str(info.value) and info.value.checkpoint == ck
    # The kept checkpoint is from step 40 (the last one before the NaN) and holds finite weights.
    from safetensors.torch import load_file

    tensors = load_file(str(ck))
    assert all(torch.isfinite(v).all() for k, v in tensors.items() if k.startswith("model."))
    import json

    from safetensors import safe_open

    with safe_open(str(ck), framework="pt") as fh:
        assert json.loads(fh.metadata()["fmtheory"])["step"] == 40


def test_model_roundtrip_safetensors(tmp_path):
    m = _model()
    save_model(tmp_path / "m.safetensors", m)
    m2 = torch.nn.Linear(3, 1)
    load_model(tmp_path / "m.safetensors", m2)
    assert torch.equal(m.weight, m2.weight)
    assert (tmp_path / "m.safetensors").read_bytes()[:8] != b"\x80\x04\x95"  # not a pickle


def test_spec_validation_names_field():
    with pytest.raises(ValueError, match="lr"):
        TrainSpec(steps=1, lr=0.0)
    with pytest.raises(ValueError, match="steps"):
        TrainSpec(steps=-1, lr=0.1)
    assert math.isfinite(lr_at(TrainSpec(steps=1, lr=0.1), 0))
