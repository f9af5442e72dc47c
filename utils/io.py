"""Atomic file writing: a crash or Ctrl-C never leaves a half-written output."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from utils.errors import UserError


def check_weights_file(path: str | os.PathLike) -> Path:
    """`path` as a Path if it is an existing `.keras` file; else one sentence (UserError).

    Keras-free, so the command-line tools refuse a wrong path before TensorFlow's 10-second import.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file {path} does not exist")
    if path.suffix != ".keras":
        raise UserError(f"weights file {path} must be a Keras 3 '.keras' file")
    return path


AV_MODEL_NAMES = ("sa_unetv2_av",)  # networks with vessel, artery and vein outputs


def shipped_weights(folder: str | os.PathLike, kind: str = "vessel") -> list[Path]:
    """The `.keras` files in `folder` (weights/) of one kind, sorted, by the `model.name` of the
    `.yaml` beside each: "vessel" (one-channel vessel networks; a file without a yaml counts as
    one) or "av" (artery/vein networks, `AV_MODEL_NAMES`)."""
    from utils.config import load_config

    if kind not in ("vessel", "av"):
        raise ValueError(f"kind must be 'vessel' or 'av', got {kind!r}")
    found = []
    for path in sorted(Path(folder).glob("*.keras")):
        config = path.with_suffix(".yaml")
        name = load_config(config).get("model", {}).get("name") if config.is_file() else None
        if (name in AV_MODEL_NAMES) == (kind == "av"):
            found.append(path)
    return found


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the same folder; rename it onto `path` on success.

    The temporary name keeps the final suffix so writers that infer the format
    from the extension (Keras, Pillow, NumPy) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600 files; give the output the permissions of an ordinary new file.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _finite(obj):
    """`obj` with NaN and infinities replaced by None (strict JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: _finite(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(value) for value in obj]
    if isinstance(obj, np.generic):
        return _finite(obj.item())
    return obj


def read_json(path: str | os.PathLike) -> dict | None:
    """The JSON object in `path`, or None when there is no such file."""
    path = Path(path)
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def write_json(path: str | os.PathLike, obj) -> None:
    """Write `obj` as indented, strict JSON (NaN -> null) atomically."""
    write_text(path, json.dumps(_finite(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")


def write_image(path: str | os.PathLike, array: np.ndarray, **options) -> None:
    """Write a uint8 (H, W) or (H, W, 3) array as an image (format from the suffix), atomically.

    `options` go to Pillow's `save` (e.g. compress_level=1: a fast, larger PNG)."""
    from PIL import Image

    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise TypeError(f"write_image expects uint8, got {array.dtype}")
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, **options)
