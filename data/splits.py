"""Versioned train/test splits (JSON files in `data/splits/`) and the validation split.

- `data/splits/drive.json`: DRIVE's official split (train 21-40, test 01-20).
- `data/splits/chase_db1.json`: the SA-UNet paper's CHASE_DB1 split (train
  Image_01L-Image_10R, test Image_11L-Image_14R).
- `data/splits/hrf.json`: bob.ip.binseg's and lwnet's HRF split (images 01-05
  of each group train, 06-15 test); HRF-AV's artery/vein labels use it too.
- `data/splits/rite.json`: RITE's artery/vein labels, DRIVE's split (train
  21-40, test 01-20).
- `data/splits/stare.json`: the 20 STARE image ids and 5 folds of 4 test images
  (the other 16 train); `fold="loo:im0044"` tests on that one image only;
  `fold="all"` tests on all 20 (cross-dataset evaluation).
- `validation_split`: which augmented training images go to validation.
  `by_source` (default) holds out whole source images with all 13 of their
  augmented copies, so no source image sits on both sides (with sources of
  several datasets, "drive/21", "hrf/01_dr", ..., from each dataset: the
  fundus dataset); `random` is the
  SA-UNet notebook's split (scikit-learn `train_test_split(test_size=0.1,
  random_state=42)` on the augmented set), reproduced here with NumPy's
  legacy RandomState so the indices match exactly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from utils.errors import UserError

SPLIT_DIR = Path(__file__).resolve().parent / "splits"
VAL_SPLITS = ("by_source", "random")


def load_split(dataset: str) -> dict:
    """The JSON split file of `dataset` ("drive", "stare", "chase_db1", "hrf" or "rite") as a dict."""
    path = SPLIT_DIR / f"{dataset}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def fixed_split(dataset: str) -> tuple[list[str], list[str]]:
    """(train ids, test ids) of a dataset with one fixed split ("drive", "chase_db1", "hrf", "rite")."""
    split = load_split(dataset)
    return list(split["train"]), list(split["test"])


def drive_split() -> tuple[list[str], list[str]]:
    """DRIVE's official (train ids, test ids), e.g. ("21", ...), ("01", ...)."""
    return fixed_split("drive")


def stare_split(fold: int | str = 1) -> tuple[list[str], list[str]]:
    """STARE (train ids, test ids) for fold 1..5, "loo:<image id>" or "all" (no training images,
    all 20 to test: weights trained on another dataset)."""
    split = load_split("stare")
    ids = list(split["images"])
    if str(fold) == "all":
        return [], ids
    if isinstance(fold, str) and fold.startswith("loo:"):
        held = fold[4:]
        if held not in ids:
            raise UserError(
                f"dataset.fold '{fold}' names no STARE image; expected loo:<id> with id one of {', '.join(ids)}"
            )
        test = [held]
    else:
        key = str(fold)
        if key not in split["folds"]:
            raise UserError(
                f"dataset.fold {fold!r} is not a STARE fold; expected 1..{len(split['folds'])}, loo:<image id> or all"
            )
        test = list(split["folds"][key]["test"])
    return [i for i in ids if i not in test], test


def validation_split(
    sources: Sequence[str], mode: str = "by_source", fraction: float = 0.1, seed: int = 42
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices) into the augmented training set.

    `sources[i]` is the source image id of augmented image i. `by_source` holds
    out round(fraction * number of sources) source images (at least 1, unless
    fraction is 0) chosen with `seed`, from each dataset when the sources name
    several (the part before "/"); `random` holds out ceil(fraction * N)
    augmented images exactly as scikit-learn's `train_test_split` does.
    """
    n = len(sources)
    if not 0 <= fraction < 1:
        raise UserError(f"dataset.val_fraction {fraction} must be in [0, 1)")
    if fraction == 0 or n == 0:
        return np.arange(n), np.arange(0)
    if mode == "random":
        n_val = math.ceil(fraction * n)
        perm = np.random.RandomState(seed).permutation(n)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])
    if mode == "by_source":
        groups: dict[str, list[str]] = {}
        for source in sorted(set(sources)):
            groups.setdefault(source.split("/", 1)[0] if "/" in source else "", []).append(source)
        rng = np.random.default_rng(seed)
        held: set[str] = set()
        for group in groups.values() if len(groups) > 1 else [sorted(set(sources))]:
            if len(group) < 2:
                raise UserError(
                    "dataset.val_split 'by_source' needs at least 2 training source images"
                )
            n_val = min(max(1, round(fraction * len(group))), len(group) - 1)
            held |= set(rng.choice(group, size=n_val, replace=False).tolist())
        is_val = np.array([s in held for s in sources])
        return np.flatnonzero(~is_val), np.flatnonzero(is_val)
    raise UserError(
        f"dataset.val_split '{mode}' is not known; expected one of {', '.join(VAL_SPLITS)}"
    )


def weighted_indices(
    sources: Sequence[str], indices: np.ndarray, weights: dict[str, float], seed: int = 42
) -> np.ndarray:
    """`indices` (into the augmented training set) redrawn so that each dataset's share of an
    epoch is its weight's share; the epoch keeps len(indices) images.

    Targets are whole numbers by largest remainders. A dataset (the part of `sources[i]` before
    "/") with n images and a target of m takes its n images m // n times and m % n more drawn
    with `seed`; datasets without a weight are left out. Returns the sorted indices (Keras
    shuffles every epoch).
    """
    by_dataset: dict[str, list[int]] = {}
    for i in indices:
        by_dataset.setdefault(str(sources[i]).split("/", 1)[0], []).append(int(i))
    unknown = sorted(set(weights) - set(by_dataset))
    if unknown:
        raise UserError(
            f"dataset.dataset_weights names '{unknown[0]}', which has no training images; "
            f"expected some of {', '.join(sorted(by_dataset))}"
        )
    total = float(sum(weights.values()))
    if total <= 0 or any(w < 0 for w in weights.values()):
        raise UserError("dataset.dataset_weights must be non-negative numbers, not all 0")
    # Largest remainders: the shares' whole parts, then one more for the largest fractions.
    names = sorted(weights)
    quotas = {name: len(indices) * weights[name] / total for name in names}
    targets = {name: int(quotas[name]) for name in names}
    by_fraction = sorted(names, key=lambda n: targets[n] - quotas[n])
    for name in by_fraction[: len(indices) - sum(targets.values())]:
        targets[name] += 1
    rng = np.random.default_rng(seed)
    out: list[int] = []
    for name in names:
        members = np.array(by_dataset[name])
        whole, rest = divmod(targets[name], len(members))
        out += np.tile(members, whole).tolist()
        out += rng.choice(members, size=rest, replace=False).tolist()
    return np.sort(np.array(out, dtype=int))
