"""Value checks shared by the config and the models, free of Keras: a config is checked
(and a typo reported) before the backend is chosen and TensorFlow is imported."""

from __future__ import annotations

from utils.errors import UserError

# The names `model.name` accepts; models.BUILDERS maps each to its builder (a test keeps them equal).
MODEL_NAMES = ("sa_unetv2", "sa_unet", "unet")


def check_model_name(name: str) -> str:
    """Return `name` if it names a model, else raise a UserError listing the choices."""
    if name not in MODEL_NAMES:
        raise UserError(f"unknown model '{name}'; choose one of: {', '.join(MODEL_NAMES)}")
    return name


def check_rate(rate: float, name: str = "rate") -> float:
    """Return `rate` as a float if it lies in [0, 1), else raise a UserError."""
    try:
        value = float(rate)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number in [0, 1), got {rate!r}") from None
    if not 0.0 <= value < 1.0:
        raise UserError(f"{name} must be in [0, 1), got {rate!r}")
    return value


def check_positive_int(value, name: str) -> int:
    """Return `value` as an int if it is a positive integer, else raise a UserError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{name} must be a positive integer, got {value!r}")
    return value
