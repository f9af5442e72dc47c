"""Training arrays for a dataset: read, augment (13 per image), pad, cache, split train/validation.

    python -m data.prepare --dataset drive|stare|chase_db1|hrf|rite|hrf_av|synthetic --data-root DIR [--json]

builds the cache and prints a summary (with `--json`, one JSON object on
standard output; the progress bar goes to standard error).

The augmented training set is cached as an uncompressed `.npz` in the cache
folder (`--cache`, else `$SAUNETV2_CACHE`, else `~/.cache/sa-unetv2`), named
`<dataset>-<key>.npz`. The key hashes the training images and labels (their
pixels), the seed, the padded shape, the augmentation parameters and the
source of `data/augment.py`, so any change builds a new file. The file is
written under a temporary name and renamed (a crash leaves no corrupt cache);
an unreadable cache file is rebuilt. The validation split is applied after
loading, so changing it needs no rebuild.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from data import augment as augment_module
from data.augment import AUGMENT_PARAMS, N_AUGMENTED, augment_sample
from data.io import default_cache_dir
from data.readers import (
    DATASET_NAMES,
    FUNDUS_DATASETS,
    fundus_datasets,
    load_dataset,
    resolve_dataset_config,
    training_band,
    trains_in_band,
)
from data.samples import Dataset, Sample
from data.scale import median_fov_diameter
from data.splits import VAL_SPLITS, validation_split, weighted_indices
from utils.checks import SYNTHETIC_DATASETS
from utils.cli import run_cli
from utils.errors import UserError
from utils.io import atomic_path

CACHE_VERSION = 1


@dataclass
class TrainingData:
    """x_* uint8 (N, H, W, 3) and y_* uint8 (N, H, W, 1) in {0, 1} (the artery/vein datasets,
    AV_DATASETS: `data.av` class maps 0..4), padded to `pad_shape`;
    `extents_train`: int (N, 2), each training image's own (h, w) inside the padding;
    `test`: unpadded test samples; `summary`: what `--json` prints; `cache`: the .npz path;
    `val_photographs`: the training samples (unaugmented, unpadded) whose augmented copies form
    the validation split, when it is drawn by source; otherwise empty."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    test: list[Sample]
    pad_shape: tuple[int, int]
    summary: dict
    cache: Path
    extents_train: np.ndarray
    val_photographs: list[Sample] = field(default_factory=list)


def cache_key(dataset: Dataset, cfg: dict) -> str:
    """Hash of everything the augmented training set depends on."""
    h = hashlib.sha256()
    settings = {
        "cache_version": CACHE_VERSION,
        "name": dataset.name,
        "augment": bool(cfg["augment"]),
        "seed": int(cfg["seed"]),
        "pad_shape": list(dataset.pad_shape),
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in AUGMENT_PARAMS.items()},
    }
    h.update(json.dumps(settings, sort_keys=True).encode())
    h.update(Path(augment_module.__file__).read_bytes())
    for s in dataset.train:
        h.update(f"{s.name}|{s.source}|{s.image.shape}".encode())
        h.update(np.ascontiguousarray(s.image).tobytes())
        h.update(np.ascontiguousarray(s.label).tobytes())
    return h.hexdigest()[:16]


def build_augmented(
    dataset: Dataset, augment: bool, seed: int, progress: bool = True
) -> dict[str, np.ndarray]:
    """x uint8 (N, H, W, 3) and y uint8 (N, H, W) padded, sources (N,) str; 13 per image if `augment`."""
    from tqdm import tqdm

    per = N_AUGMENTED if augment else 1
    n = per * len(dataset.train)
    h, w = dataset.pad_shape
    x = np.zeros((n, h, w, 3), dtype=np.uint8)
    y = np.zeros((n, h, w), dtype=np.uint8)
    sources = []
    bar = tqdm(
        dataset.train,
        desc=f"augmenting {dataset.name}",
        unit="image",
        disable=not progress,
        file=sys.stderr,
    )
    for i, s in enumerate(bar):
        if augment:
            images, labels = augment_sample(s.image, s.label, seed, i)
        else:
            images, labels = s.image[None], s.label[None]
        ih, iw = s.image.shape[:2]
        x[i * per : (i + 1) * per, :ih, :iw] = images
        y[i * per : (i + 1) * per, :ih, :iw] = labels
        sources += [s.source] * per
    return {"x": x, "y": y, "sources": np.array(sources)}


def save_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the arrays atomically: labels of 0 and 1 bit-packed, artery/vein class maps
    (values above 1, data.av) as they are (bits would keep only vessel or not)."""
    y = arrays["y"]
    if y.max(initial=0) > 1:
        labels = {"y": y}
    else:
        labels = {"y_bits": np.packbits(y.reshape(-1)), "y_shape": np.array(y.shape)}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, x=arrays["x"], sources=arrays["sources"], **labels)


def load_cache(path: Path) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when the file is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if "y" in z.files:
                y = z["y"]
            else:
                shape = tuple(int(v) for v in z["y_shape"])
                y = np.unpackbits(z["y_bits"], count=int(np.prod(shape))).reshape(shape)
            return {"x": z["x"], "y": y, "sources": z["sources"]}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def training_scale(dataset: Dataset, cfg: dict) -> dict:
    """What train.py records as the weights' scale (`data.scale.training_fov_band` reads it):
    `train_fov_diameter`, the training masks' median FOV diameter, and `max_fov_diameter`, None;
    for a band of training diameters (`dataset.fov_diameter` and `max_fov_diameter`), its two
    ends."""
    if trains_in_band(cfg):
        band = training_band(cfg)
        if not band.single:
            return {"train_fov_diameter": band.low, "max_fov_diameter": band.high}
    median = median_fov_diameter([s.mask for s in dataset.train])
    return {"train_fov_diameter": median, "max_fov_diameter": None}


def prepare_training_data(
    cfg: dict | None = None, cache_dir: str | os.PathLike | None = None, progress: bool = True
) -> TrainingData:
    """Read the dataset that `cfg` names, build or load its augmented cache, split off validation.

    An artery/vein dataset (AV_DATASETS) keeps its class maps through augmentation and the cache."""
    cfg = resolve_dataset_config(cfg)
    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    dataset = load_dataset(cfg, cache_dir=cache_dir)
    if not dataset.train:
        raise UserError(f"dataset '{dataset.name}' has no training images; expected at least 1")
    has_fold = dataset.name in ("stare", "fundus")
    tag = f"-fold{str(cfg['fold']).replace(':', '-')}" if has_fold else ""
    path = cache_dir / f"{dataset.name}{tag}-{cache_key(dataset, cfg)}.npz"
    arrays = load_cache(path)
    hit = arrays is not None
    if arrays is None:
        arrays = build_augmented(dataset, bool(cfg["augment"]), int(cfg["seed"]), progress)
        save_cache(path, arrays)
    sources = [str(s) for s in arrays["sources"]]
    train_idx, val_idx = validation_split(
        sources, cfg["val_split"], float(cfg["val_fraction"]), int(cfg["seed"])
    )
    if dataset.name == "fundus":  # each dataset's share of an epoch, not its number of photographs
        read = fundus_datasets(cfg["datasets"])
        weights = cfg["dataset_weights"] or dict.fromkeys(read, 1.0)
        # Shares of datasets left out of `datasets` go; an unknown name is still refused.
        weights = {n: w for n, w in weights.items() if n not in FUNDUS_DATASETS or n in read}
        train_idx = weighted_indices(sources, train_idx, weights, int(cfg["seed"]))
    x, y = arrays["x"], arrays["y"][..., None]
    # Augmentation keeps each photograph's size: its copies follow it in order.
    extents = np.repeat(
        [s.image.shape[:2] for s in dataset.train], len(sources) // len(dataset.train), axis=0
    )
    by_source = cfg["val_split"] == "by_source"  # else validation shares sources with training
    val_sources = sorted({sources[i] for i in val_idx}) if by_source else None
    held_out = set(val_sources or ())
    h, w = dataset.image_shape
    summary = {
        "dataset": dataset.name,
        "fold": cfg["fold"] if has_fold else None,
        "train": len(dataset.train),
        "test": len(dataset.test),
        "image_shape": [h, w, 3],
        "padded_shape": [*dataset.pad_shape, 3],
        "augmented_train": len(sources),
        "val_split": cfg["val_split"],
        "train_images": int(len(train_idx)),
        "val_images": int(len(val_idx)),
        "val_sources": val_sources,
        "train_by_dataset": {
            name: sum(sources[i].split("/", 1)[0] == name for i in train_idx)
            for name in sorted({s.split("/", 1)[0] for s in sources})
        },
        "vessel_fraction": round(float(np.mean([(s.label != 0).mean() for s in dataset.train])), 4),
        **training_scale(dataset, cfg),
        "seed": int(cfg["seed"]),
        "cache": str(path),
        "cache_hit": hit,
    }
    return TrainingData(
        x_train=x[train_idx],
        y_train=y[train_idx],
        x_val=x[val_idx],
        y_val=y[val_idx],
        test=dataset.test,
        pad_shape=dataset.pad_shape,
        summary=summary,
        cache=path,
        extents_train=extents[train_idx],
        val_photographs=[s for s in dataset.train if s.source in held_out],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m data.prepare",
        description="Build the augmented training cache and print a summary.",
    )
    parser.add_argument(
        "--dataset", required=True, choices=[n for n in DATASET_NAMES if n != "folder"]
    )
    parser.add_argument(
        "--data-root",
        default=None,
        help="folder holding DRIVE/, STARE/, CHASE_DB1/, HRF/, RITE/ or HRF-AV/ (or their archives); "
        "default $SAUNETV2_DATA_ROOT",
    )
    parser.add_argument(
        "--cache", default=None, help="cache folder; default $SAUNETV2_CACHE or ~/.cache/sa-unetv2"
    )
    parser.add_argument(
        "--fold", default="1", help="STARE (and fundus) fold 1..5 or loo:<image id>"
    )
    parser.add_argument(
        "--fov-diameter",
        type=float,
        default=None,
        help="fundus: the FOV diameter (px) the training photographs are brought to (DRIVE's)",
    )
    parser.add_argument(
        "--max-fov-diameter",
        type=float,
        default=None,
        help="fundus: the high end of a band of FOV diameters (configs/fundus.yaml: 900)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--val-split", default="by_source", choices=VAL_SPLITS)
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object on standard output"
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    cfg = {
        "name": args.dataset,
        "seed": args.seed,
        "val_split": args.val_split,
        "fold": int(args.fold) if args.fold.isdigit() else args.fold,
    }
    if args.dataset not in SYNTHETIC_DATASETS:
        cfg["data_root"] = args.data_root
    if args.dataset == "fundus":
        cfg["fov_diameter"], cfg["max_fov_diameter"] = args.fov_diameter, args.max_fov_diameter
    data = prepare_training_data(cfg, cache_dir=args.cache, progress=not args.no_progress)
    s = data.summary
    if args.json:
        print(json.dumps(s))
    else:
        fold = f" (fold {s['fold']})" if s["fold"] is not None else ""
        print(
            f"{s['dataset']}{fold}: {s['train']} train, {s['test']} test images of {s['image_shape'][0]} x {s['image_shape'][1]}, padded to {s['padded_shape'][0]} x {s['padded_shape'][1]}"
        )
        print(
            f"augmented training set: {s['augmented_train']} images -> {s['train_images']} train / {s['val_images']} validation ({s['val_split']})"
        )
        print(f"vessel fraction (training labels): {s['vessel_fraction']:.4f}")
        print(f"cache: {s['cache']} ({'reused' if s['cache_hit'] else 'built'})")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
