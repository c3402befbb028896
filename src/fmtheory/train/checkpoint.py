"""Training checkpoints in safetensors (never pickle).

A checkpoint holds the model's and optimizer's tensors, the data generator's state and a small JSON
metadata block (step, scheduler counters).  Writes are atomic: temp file, fsync, rename.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from fmtheory.atomic import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint", "save_model", "load_model"]


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """safetensors to a temp file, fsync, rename (:func:`fmtheory.atomic.atomic_write`)."""
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for pid, pstate in state["state"].items():
        for key, val in pstate.items():
            name = f"{pid}.{key}"
            if torch.is_tensor(val):
                tensors[name] = val.detach().cpu().contiguous()
            else:
                scalars[name] = val
    return tensors, {"scalars": scalars, "param_groups": state["param_groups"]}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, val in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = val
    for name, val in meta["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = val
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    path: Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    step: int,
    extra: dict[str, Any] | None = None,
) -> None:
    """Atomically write model, optimizer and generator state after ``step`` finished steps."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt_t, opt_meta = _flatten_optimizer(optimizer.state_dict())
    tensors.update({f"optim.{k}": v for k, v in opt_t.items()})
    tensors["generator.state"] = generator.get_state().cpu()
    meta = {"step": step, "optim": opt_meta, "extra": extra or {}}
    _atomic_save(tensors, path, {"fmtheory": json.dumps(meta)})


def load_checkpoint(
    path: Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> dict[str, Any]:
    """Restore the states written by :func:`save_checkpoint`; return its metadata (``step``, ``extra``)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = json.loads(fh.metadata()["fmtheory"])
    tensors = load_file(str(path))
    device = next(model.parameters()).device
    model.load_state_dict(
        {k[len("model.") :]: v.to(device) for k, v in tensors.items() if k.startswith("model.")}
    )
    opt = {k[len("optim.") :]: v.to(device) for k, v in tensors.items() if k.startswith("optim.")}
    optimizer.load_state_dict(_unflatten_optimizer(opt, meta["optim"]))
    generator.set_state(tensors["generator.state"])
    return meta


def save_model(path: Path, model: torch.nn.Module, metadata: dict[str, str] | None = None) -> None:
    """Atomically write the model's weights (safetensors), ``metadata`` as one JSON string with
    sorted keys under the header key "fmtheory" (safetensors writes several header keys in a
    per-process hash order, so the same model would give different bytes in two processes)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    _atomic_save(tensors, path, {"fmtheory": json.dumps(metadata or {}, sort_keys=True)})


def model_metadata(path: Path) -> dict[str, str]:
    """The ``metadata`` that :func:`save_model` wrote with the weights at ``path``."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        header = fh.metadata() or {}
    return json.loads(header.get("fmtheory", "{}"))


def load_model(path: Path, model: torch.nn.Module) -> torch.nn.Module:
    """Load weights written by :func:`save_model` into ``model`` (on its device)."""
    device = next(model.parameters()).device
    model.load_state_dict({k: v.to(device) for k, v in load_file(str(path)).items()})
    return model
