"""Value checks shared by the config and the models, free of Keras: a config is checked
(and a typo reported) before the backend is chosen and TensorFlow is imported."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from utils.errors import UserError

# The names `model.name` accepts; models.BUILDERS maps each to its builder (a test keeps them equal).
MODEL_NAMES = ("sa_unetv2", "sa_unet", "unet", "attention_unet", "sa_unetv2_av")
# The artery/vein networks: output (B, H, W, 3), vessel, artery, vein (docs/arteries-veins.md).
AV_MODEL_NAMES = ("sa_unetv2_av",)
# The vessel networks: output (B, H, W, 1), the vessel probability.
VESSEL_MODEL_NAMES = tuple(name for name in MODEL_NAMES if name not in AV_MODEL_NAMES)
# The built-in procedural datasets (data.synthetic): no data folder needed.
SYNTHETIC_DATASETS = ("synthetic", "synthetic_av")


def check_model_name(name: str) -> str:
    """Return `name` if it names a model, else raise a UserError listing the choices."""
    if name not in MODEL_NAMES:
        raise UserError(f"unknown model '{name}'; choose one of: {', '.join(MODEL_NAMES)}")
    return name


def check_data_root(dataset_cfg: dict) -> None:
    """Refuse a missing data folder now, before TensorFlow's import (the synthetic sets need none)."""
    if dataset_cfg.get("name") not in SYNTHETIC_DATASETS:
        from data.readers import resolve_data_root

        resolve_data_root(dataset_cfg.get("data_root"))


def check_threshold(value, name: str, allow_none: bool = False) -> float | None:
    """Return `value` if it is a number in [0, 1] (or None where `allow_none`), else raise a
    UserError."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        also = " or null" if allow_none else ""
        raise UserError(f"{name} must be in [0, 1]{also}, got {value!r}")
    return value


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


_DURATION = re.compile(r"\+(\d+(?:\.\d+)?)([smh])")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_SECONDS = {"s": 1, "m": 60, "h": 3600}


def parse_stop_at(text: str, now: datetime | None = None) -> datetime:
    """The moment `train.py --stop-at` names, as an aware local datetime.

    Accepted: `+90m`, `+2.5h`, `+30s` (from now); `HH:MM` (its next occurrence,
    so 06:00 said at 23:00 is tomorrow morning); an ISO date and time
    (`2026-12-01T11:55`, `2026-12-01 11:55`, with or without an offset), which
    must lie ahead.
    """
    now = (now or datetime.now()).astimezone()
    value = str(text).strip()
    if match := _DURATION.fullmatch(value):
        amount, unit = float(match[1]), match[2]
        if amount <= 0:
            raise UserError(f"--stop-at {value}: the duration must be positive")
        return now + timedelta(seconds=amount * _SECONDS[unit])
    if match := _CLOCK.fullmatch(value):
        hour, minute = int(match[1]), int(match[2])
        if hour > 23 or minute > 59:
            raise UserError(f"--stop-at {value}: not a time of day (00:00 to 23:59)")
        moment = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return moment if moment > now else moment + timedelta(days=1)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UserError(
            f"--stop-at takes HH:MM, an ISO date and time (2026-12-01T11:55) "
            f"or a duration such as +90m or +2h, got {value!r}"
        ) from None
    moment = moment.astimezone() if moment.tzinfo is None else moment
    if moment <= now:
        raise UserError(f"--stop-at {value} is already past (now {now:%Y-%m-%d %H:%M})")
    return moment
