"""The one configuration loader: YAML files, command-line overrides, saved resolved copy."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from utils.errors import UserError
from utils.io import write_text


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML config file into a nested dict."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist")
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(cfg, dict):
        raise UserError(
            f"config file {path} must hold a mapping of sections, not {type(cfg).__name__}"
        )
    return cfg


def parse_value(text: str) -> Any:
    """Parse an override value the way YAML would (`8` -> int, `1e-3` -> float, `null` -> None)."""
    value = yaml.safe_load(text)
    # YAML 1.1 reads 1e-3 as a string; accept the usual float spellings.
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def set_key(cfg: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `a.b.c` in `cfg`; the key must already exist, so typos are caught."""
    parts = dotted.split(".")
    node = cfg
    for i, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            where = ".".join(parts[:i]) or "the top level"
            valid = ", ".join(sorted(node)) if isinstance(node, dict) else "none"
            raise UserError(
                f"config key '{dotted}' does not exist ('{part}' is not in {where}; valid: {valid})"
            )
        if i == len(parts) - 1:
            node[part] = value
        else:
            node = node[part]


def apply_overrides(cfg: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Return a copy of `cfg` with `key.path=value` overrides applied."""
    cfg = copy.deepcopy(cfg)
    for item in overrides or []:
        if "=" not in item:
            raise UserError(f"override '{item}' must look like section.key=value")
        key, text = item.split("=", 1)
        set_key(cfg, key.strip(), parse_value(text))
    return cfg


def check_keys(cfg: dict[str, Any], reference: dict[str, Any], prefix: str = "") -> None:
    """Raise a UserError for any key in `cfg` that `reference` does not have."""
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if key not in reference:
            valid = ", ".join(sorted(reference))
            raise UserError(f"config key '{name}' does not exist (valid here: {valid})")
        if isinstance(value, dict) and isinstance(reference[key], dict) and reference[key]:
            check_keys(value, reference[key], prefix=f"{name}.")


def dump_config(cfg: dict[str, Any]) -> str:
    """YAML text of a config, keys in their given order."""
    return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False)


def save_config(cfg: dict[str, Any], path: str | os.PathLike) -> None:
    """Write the resolved config atomically."""
    write_text(path, dump_config(cfg))
