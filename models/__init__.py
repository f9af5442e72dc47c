"""Model builders registered by name: `build_model("sa_unetv2")`."""

from __future__ import annotations

import contextlib
import json
import tempfile
import zipfile
from pathlib import Path

import keras

from models.attention_unet import build_attention_unet
from models.layers import CUSTOM_OBJECTS
from models.sa_unetv2 import (
    AV_CHANNELS,
    build_sa_unetv2,
    build_sa_unetv2_av,
    copy_vessel_weights,
)
from models.unet import build_sa_unet, build_unet
from utils.checks import AV_MODEL_NAMES, MODEL_NAMES, VESSEL_MODEL_NAMES, check_model_name
from utils.errors import UserError
from utils.io import check_weights_file

BUILDERS = {
    "sa_unetv2": build_sa_unetv2,
    "sa_unet": build_sa_unet,
    "unet": build_unet,
    "attention_unet": build_attention_unet,
    "sa_unetv2_av": build_sa_unetv2_av,
}
HPARAMS = ("start_neurons", "dropblock_rate", "dropblock_size", "gn_groups")


def build_model(name: str, input_shape=(None, None, 3), **hparams) -> keras.Model:
    """Build a registered model. hparams: start_neurons, dropblock_rate, dropblock_size, gn_groups.

    A value of None keeps the builder's default (the paper's setting).
    """
    check_model_name(name)
    unknown = sorted(set(hparams) - set(HPARAMS))
    if unknown:
        raise UserError(
            f"unknown model setting(s) {', '.join(unknown)}; valid: {', '.join(HPARAMS)}"
        )
    kwargs = {key: value for key, value in hparams.items() if value is not None}
    return BUILDERS[name](tuple(input_shape), **kwargs)


# Files written before the project's GroupNormalization name Keras' own; it holds the same weights.
_UPGRADES = {
    ("keras.layers", "GroupNormalization"): {
        "module": "models.layers",
        "class_name": "GroupNormalization",
        "registered_name": "sa_unetv2>GroupNormalization",
    },
}


def _upgrade_layers(config) -> bool:
    """Rename upgradable layer classes in a saved model config, in place; True if any was."""
    changed = False
    if isinstance(config, dict):
        target = _UPGRADES.get((config.get("module"), config.get("class_name")))
        if target is not None and "config" in config:
            config.update(target)
            changed = True
        for value in config.values():
            changed = _upgrade_layers(value) or changed
    elif isinstance(config, list):
        for value in config:
            changed = _upgrade_layers(value) or changed
    return changed


@contextlib.contextmanager
def upgraded_keras_file(path: Path):
    """`path`, or a temporary copy whose Keras GroupNormalization layers load as the project's.

    Layer names and weights are unchanged, so a checkpoint of an earlier version
    (a run in progress included) loads, predicts and resumes with the faster layer.
    """
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        if not _upgrade_layers(config):
            yield path
            return
        with tempfile.TemporaryDirectory() as folder:
            copy = Path(folder) / path.name
            with zipfile.ZipFile(copy, "w", compression=zipfile.ZIP_STORED) as out:
                for info in archive.infolist():
                    data = archive.read(info.filename)
                    if info.filename == "config.json":
                        data = json.dumps(config).encode()
                    out.writestr(info, data)
            yield copy


def _damaged_archive(path) -> str | None:
    """Why `path` is not a complete zip archive (a `.keras` file is one), or None if it is.

    Keras reports such a file as "File not found", which it is not.
    """
    if not zipfile.is_zipfile(path):
        return "is not a complete zip archive, which a .keras file is"
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        return f"its zip archive cannot be read ({exc})"
    return f"its member {bad} fails its checksum" if bad else None


def load_model(path, compile: bool = False) -> keras.Model:
    """Load a `.keras` file of any registered model in safe mode; one sentence if it cannot be read."""
    path = check_weights_file(path)
    damaged = _damaged_archive(path)
    if damaged:
        raise UserError(
            f"weights file {path} could not be loaded: it exists ({path.stat().st_size} bytes) "
            f"but {damaged}; it is damaged or truncated, so copy or download it again"
        )
    try:
        with upgraded_keras_file(path) as readable:
            return keras.saving.load_model(
                readable, custom_objects=CUSTOM_OBJECTS, compile=compile, safe_mode=True
            )
    except Exception as exc:  # zip, JSON and HDF5 errors of a damaged file all land here
        raise UserError(
            f"weights file {path} could not be loaded as a Keras model ({exc.__class__.__name__}: {exc})"
        ) from exc


def init_from_vessel_weights(model: keras.Model, path) -> list[str]:
    """Start the artery/vein network `model` (`build_sa_unetv2_av`) from the vessel SA-UNetv2 of
    the `.keras` file `path` (e.g. weights/sa_unetv2_fundus.keras), in place: every layer by name,
    the head's vessel kernel into all three channels, artery and vein moved apart from it
    (`models.sa_unetv2.copy_vessel_weights`).
    Returns the names of the layers copied; a file of another network is one clear UserError."""
    vessel = load_model(path)
    try:
        return copy_vessel_weights(model, vessel)
    except ValueError as exc:
        raise UserError(f"weights file {path} cannot start model '{model.name}': {exc}") from None


def is_av_model(model: keras.Model) -> bool:
    """Whether `model` is an artery/vein network: its output has the three channels vessel,
    artery, vein (`build_sa_unetv2_av`); a vessel network's has one."""
    return int(model.outputs[0].shape[-1]) == len(AV_CHANNELS)


__all__ = [
    "AV_MODEL_NAMES",
    "BUILDERS",
    "HPARAMS",
    "MODEL_NAMES",
    "build_model",
    "build_sa_unetv2_av",
    "VESSEL_MODEL_NAMES",
    "init_from_vessel_weights",
    "is_av_model",
    "load_model",
]
