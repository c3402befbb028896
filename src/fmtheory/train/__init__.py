"""One training loop for every experiment, with safetensors checkpoints."""

from fmtheory.train.checkpoint import load_model, save_model
from fmtheory.train.loop import NonFiniteLossError, TrainResult, TrainSpec, lr_at, train

__all__ = [
    "NonFiniteLossError",
    "TrainResult",
    "TrainSpec",
    "lr_at",
    "load_model",
    "save_model",
    "train",
]
