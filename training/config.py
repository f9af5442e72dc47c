"""The experiment configuration: defaults, loading a YAML file, flags, the resolved copy.

Every key a config file may hold is in DEFAULT_CONFIG (the `dataset`
section's keys are checked by `data.load_dataset`). A config file is merged
onto the defaults, then command-line flags and `--set section.key=value`
overrides are applied; the result is saved with the run.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from training.run_folder import CONFIG_FILE
from utils.checks import (
    AV_MODEL_NAMES,
    check_model_name,
    check_positive_int,
    check_rate,
    check_threshold,
)
from utils.config import apply_overrides, check_keys, load_config, set_key
from utils.errors import UserError

DEFAULT_CONFIG: dict[str, Any] = {
    "experiment": {"name": "sa_unetv2"},
    "dataset": {"name": "drive", "data_root": None},
    "model": {
        "name": "sa_unetv2",
        "start_neurons": None,  # None: the builder's default (the paper's)
        "dropblock_rate": 0.15,
        "dropblock_size": 7,
        "gn_groups": 8,
    },
    "train": {
        "epochs": 150,
        "batch_size": 8,
        "learning_rate": 1.0e-3,
        "loss": {"bce_weight": 0.5, "mcc_weight": 0.5},
        # Artery/vein networks only: leave the label's CROSSING pixels out of the artery and vein
        # channels of the loss (HRF-AV, whose green marks crossings and vessels of neither type
        # alike); false: a crossing is both (RITE, whose green marks crossings only).
        "av_ignore_crossings": False,
        # The notebook keeps the weights of the best validation accuracy.
        "checkpoint": {"monitor": "val_accuracy", "mode": "max"},
        # mode "auto": Keras' (max for a monitor named like an accuracy, min otherwise)
        "reduce_lr": {
            "monitor": "val_loss",
            "mode": "auto",
            "factor": 0.5,
            "patience": 10,
            "min_lr": 1.0e-6,
        },
        "early_stopping": {
            "monitor": "val_loss",
            "mode": "auto",
            "patience": 20,
            "restore_best_weights": True,
        },
        "seed": 42,
        "mixed_precision": None,  # None | mixed_bfloat16 | mixed_float16
        "jit_compile": "auto",
        "distribute": False,
        "tensorboard": True,
        "shuffle": True,
        "steps_per_execution": 1,
        # null: whole epochs. A number caps the batches per epoch (quick checks on real data).
        "steps_per_epoch": None,
        "validation_steps": None,
        # A .keras file whose weights the run starts from (fine-tuning; same network); null: random.
        "init_weights": None,
        # null: whole (padded) photographs, the paper's. A number: one random crop_size x crop_size
        # square of each training image per epoch (training.crops; the fundus recipe).
        "crop_size": None,
        # With crop_size: the share of training crops passed through a random mix of camera
        # changes (darker, flatter, gamma, less colour, blur, noise, JPEG: data.camera.random_camera),
        # drawn from the seed and the epoch like the crops. 0: none (the paper's augmentation only).
        "camera_augment": 0.0,
        # The mix camera_augment draws from (data.camera.CAMERA_MIXES). "basic": those changes,
        # with the draws of every run documented before "clinic" existed. "clinic": before them a
        # vignette, an illumination gradient and another white balance, each with probability 0.5.
        "camera_changes": "basic",
        # With crop_size: [low, high] zoom factors; each crop is cut from a window of crop / z px,
        # z drawn log-uniformly from the range, and resized to crop_size, so training sees every
        # camera at a spread of FOV diameters (training.crops). null: none.
        "scale_augment": None,
        # With crop_size: how far (px of the crop) a crop's window may reach past each side of its
        # image into zeros, drawn uniformly with the position; more padding and background per
        # crop, as in whole-image training (docs/cameras-experiments.md, "Why the threshold is
        # folded in"). 0: windows stay inside the image.
        "crop_margin": 0,
        # What validation measures each epoch. "images": the held-out (augmented) images, padded
        # to the dataset's pad shape, through Keras (the paper's). "photographs": the held-out
        # source photographs, each predicted whole at its own size as evaluate.py predicts test
        # images (training.callbacks.PhotographValidation): val_loss and val_f1 (inside the FOV,
        # threshold 0.5); needs dataset.val_split by_source.
        "validation": "images",
    },
    "evaluate": {
        "threshold": 0.5,
        "engine": "auto",
        "weights": "best",
        "save_images": True,
        "scale": "auto",  # "auto", or a number: the factor images are predicted at (1: off)
        # An artery/vein network: each vessel segment between junctions typed as a whole
        # (data.av.vote_by_segment); false: each pixel by itself, as the network gives it.
        "av_vote": True,
        # The threshold of the best mean F1 on the run's validation images, recorded by
        # tools/ship_weights.py; predict.py --threshold auto uses it. null: none chosen.
        "chosen_threshold": None,
        # The threshold tools/ship_weights.py --calibrate folded into the weights' output bias
        # (0.5 on them marks what it marked before); null: none folded.
        "folded_threshold": None,
    },
    # The training images' median FOV diameter (px), recorded by train.py (data.scale);
    # null: the dataset's known value (data.scale.KNOWN_FOV_DIAMETERS). max_fov_diameter: the
    # high end of a band of training diameters (dataset.max_fov_diameter); null: one diameter.
    # vessel_calibre: [low, high] px, the datasets' main-vessel calibres as the weights draw them
    # (recorded by tools/ship_weights.py: data.scale.vessel_calibre_range), for --scale vessels;
    # null: not recorded.
    "scale": {"train_fov_diameter": None, "max_fov_diameter": None, "vessel_calibre": None},
}

MIXED_PRECISION_POLICIES = (None, "mixed_bfloat16", "mixed_float16")
VALIDATIONS = ("images", "photographs")

# What a resumed run may be given anew: how long and how it runs, not what it learns.
# Any other override must match the run's saved config (run folder's config.yaml).
RESUME_KEYS = (
    "train.epochs",
    "train.jit_compile",
    "train.steps_per_execution",
    "train.tensorboard",
    "dataset.data_root",
    "evaluate",
)
_MISSING = object()


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep copy of `base` with `update` merged in (dicts recursively, other values replaced)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "dataset":
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_run_config(
    path: str | os.PathLike, overrides: list[str] | None = None, data_root: str | None = None
) -> dict[str, Any]:
    """Load `path`, check its keys, merge it onto DEFAULT_CONFIG and apply `key=value` overrides.

    data_root (a --data-root flag) is set as given: a path is text, not YAML.
    """
    raw = load_config(path)
    reference = copy.deepcopy(DEFAULT_CONFIG)
    reference["dataset"] = {}  # checked by data.load_dataset
    check_keys(raw, reference)
    cfg = merge(DEFAULT_CONFIG, raw)
    cfg = apply_overrides(cfg, overrides)
    if data_root is not None:
        cfg["dataset"]["data_root"] = data_root
    validate(cfg)
    return cfg


def resolve_resume_config(
    run_dir: str | os.PathLike, cfg: dict[str, Any], overrides: list[str] | None = None
) -> dict[str, Any]:
    """The config a resumed run continues with: its saved one, plus the overrides it may take.

    `cfg` is the command line's config (file, flags, --set) and `overrides` the
    `key=value` items given there. Those under RESUME_KEYS replace the saved
    values; any other must equal the saved value, or one sentence says why it
    cannot apply (a run that changed its recipe half-way is not the run it claims
    to be). Keys added to the project since the run started (a run carried across
    sessions may be older than the code) take their defaults.
    """
    path = Path(run_dir) / CONFIG_FILE
    saved = merge(DEFAULT_CONFIG, load_config(path))
    for item in overrides or []:
        key = item.split("=", 1)[0].strip()
        given, kept = _get_key(cfg, key), _get_key(saved, key)
        if any(key == k or key.startswith(f"{k}.") for k in RESUME_KEYS):
            set_key(saved, key, copy.deepcopy(given))
        elif given != kept:
            kept = "unset" if kept is _MISSING else repr(kept)
            raise UserError(
                f"--resume continues the run with its own {path}, where {key} is {kept}, "
                f"not {given!r}: drop that flag, or start a new run (--overwrite or another --out)"
            )
    validate(saved)
    return saved


def _get_key(cfg: dict[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def validate(cfg: dict[str, Any]) -> None:
    """One sentence for a value the run cannot use."""
    train = cfg["train"]
    for key in ("epochs", "batch_size"):
        check_positive_int(train[key], f"train.{key}")
    if train["crop_size"] is not None:
        check_positive_int(train["crop_size"], "train.crop_size")
    margin = train["crop_margin"]
    if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
        raise UserError(f"train.crop_margin must be a whole number of pixels >= 0, got {margin!r}")
    if margin and train["crop_size"] is None:
        raise UserError("train.crop_margin works on training crops; set train.crop_size too")
    if not isinstance(train["learning_rate"], (int, float)) or train["learning_rate"] <= 0:
        raise UserError(
            f"train.learning_rate must be a positive number, got {train['learning_rate']!r}"
        )
    if train["mixed_precision"] not in MIXED_PRECISION_POLICIES:
        choices = ", ".join(str(p) for p in MIXED_PRECISION_POLICIES)
        raise UserError(
            f"train.mixed_precision must be one of {choices}, got {train['mixed_precision']!r}"
        )
    share = train["camera_augment"]
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
        raise UserError(f"train.camera_augment must be a number in [0, 1], got {share!r}")
    if share and train["crop_size"] is None:
        raise UserError("train.camera_augment works on training crops; set train.crop_size too")
    from data.camera import CAMERA_MIXES

    mix = train["camera_changes"]
    if not isinstance(mix, str) or mix not in CAMERA_MIXES:
        raise UserError(
            f"train.camera_changes must be one of {', '.join(CAMERA_MIXES)}, got {mix!r}"
        )
    if mix != "basic" and not share:
        raise UserError(
            f"train.camera_changes {mix} chooses the mix train.camera_augment draws from; "
            "set train.camera_augment above 0 too"
        )
    zoom = train["scale_augment"]
    if zoom is not None:
        if not (
            isinstance(zoom, (list, tuple))
            and len(zoom) == 2
            and all(isinstance(z, (int, float)) and not isinstance(z, bool) and z > 0 for z in zoom)
            and zoom[0] <= zoom[1]
        ):
            raise UserError(
                f"train.scale_augment must be [low, high] with 0 < low <= high, such as [0.7, 1.4], got {zoom!r}"
            )
        if train["crop_size"] is None:
            raise UserError("train.scale_augment works on training crops; set train.crop_size too")
    if train["validation"] not in VALIDATIONS:
        raise UserError(
            f"train.validation must be one of {', '.join(VALIDATIONS)}, got {train['validation']!r}"
        )
    check_model_name(cfg["model"]["name"])
    check_av_pairing(cfg)
    check_rate(cfg["model"]["dropblock_rate"], "model.dropblock_rate")
    check_threshold(cfg["evaluate"]["threshold"], "evaluate.threshold")
    check_threshold(cfg["evaluate"]["chosen_threshold"], "evaluate.chosen_threshold", True)
    check_threshold(cfg["evaluate"]["folded_threshold"], "evaluate.folded_threshold", True)
    from data.scale import parse_scale

    parse_scale(cfg["evaluate"]["scale"], "evaluate.scale")


def check_av_pairing(cfg: dict[str, Any]) -> None:
    """One sentence when the model and the dataset do not learn the same labels (an artery/vein
    network needs class maps, a vessel network vessel maps) or when an artery/vein run monitors
    the accuracy, which it does not log."""
    from data.readers import AV_DATASETS

    model, dataset = cfg["model"]["name"], str(cfg["dataset"].get("name", "drive")).lower()
    av_model, av_data = model in AV_MODEL_NAMES, dataset in AV_DATASETS
    if av_model and not av_data:
        raise UserError(
            f"model {model} learns artery/vein class maps but dataset '{dataset}' holds vessel "
            f"labels; use one of {', '.join(AV_DATASETS)}"
        )
    if av_data and not av_model:
        raise UserError(
            f"dataset '{dataset}' holds artery/vein class maps; train model "
            f"{' or '.join(AV_MODEL_NAMES)} on it, not {model}"
        )
    if not isinstance(cfg["train"]["av_ignore_crossings"], bool):
        raise UserError(
            f"train.av_ignore_crossings must be true or false, "
            f"got {cfg['train']['av_ignore_crossings']!r}"
        )
    if av_model:
        train = cfg["train"]
        for section in ("checkpoint", "reduce_lr", "early_stopping"):
            monitor = train[section]["monitor"]
            if "accuracy" in monitor:
                raise UserError(
                    f"train.{section}.monitor {monitor} is not logged for {model}; use val_f1 "
                    "(with train.validation: photographs) or val_loss"
                )


def model_hparams(cfg: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for models.build_model from the `model` section."""
    return {key: value for key, value in cfg["model"].items() if key != "name"}
