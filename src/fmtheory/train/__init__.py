"""One training loop for every experiment, with safetensors checkpoints; :func:`fit` is the entry."""

from fmtheory.train.checkpoint import load_model, model_metadata, save_model
from fmtheory.train.fit import fit, make_generator, seeded
from fmtheory.train.loop import NonFiniteLossError, TrainResult, TrainSpec, lr_at, train

__all__ = [
    "NonFiniteLossError",
    "TrainResult",
    "TrainSpec",
    "fit",
    "load_model",
    "lr_at",
    "make_generator",
    "model_metadata",
    "save_model",
    "seeded",
    "train",
]
