"""Datasets as users download them, read into `Sample`s.

`load_dataset(cfg)` takes the `dataset` section of a config. Keys (unknown
keys are a UserError naming the valid ones):

- `name`: "drive" | "stare" | "chase_db1" | "hrf" | "fundus" | "synthetic" |
  "folder" | "rite" | "hrf_av" | "synthetic_av" (default "drive"). "fundus" is
  the four together (`read_fundus`). "rite", "hrf_av" and "synthetic_av" are the
  artery/vein label sets: their labels are `data.av` class maps (0 background,
  1 artery, 2 vein, 3 crossing, 4 uncertain), not vessel maps.
- `data_root`: where the data is; None -> `$SAUNETV2_DATA_ROOT`. May be the
  folder holding `DRIVE/`, `STARE/`, `CHASE_DB1/`, `HRF/`, `RITE/` and/or
  `HRF-AV/` (beside `HRF/`), the dataset
  folder itself, or the official archives (DRIVE's `.zip`, possibly with one
  folder inside; STARE's `stare-images.tar` + `labels-ah.tar` (+
  `labels-vk.tar`), or that folder; CHASE_DB1's `CHASEDB1.zip`; HRF's
  `all.zip`, or its per-group archives `healthy.zip`, `healthy_manualsegm.zip`,
  `healthy_fovmask.zip`, and the same for `glaucoma` and
  `diabetic_retinopathy`). Not needed for "synthetic" and "synthetic_av".
- `fold`: STARE and fundus: 1..5 (4 test images each, `data/splits/stare.json`)
  or "loo:<image id>" (leave one out). Default 1.
- `downsample`: HRF, hrf_av and fundus: 2 (default: half resolution, 1168 x 1752,
  the protocol of bob.ip.binseg and lwnet) or 1 (full resolution, 2336 x 3504).
- `fov_diameter`: the FOV diameter (px) every training photograph is brought
  to; with `max_fov_diameter`, the low end of a band of diameters. fundus:
  default DRIVE's, 538.29; any other dataset: default null, the photographs as
  they are. Test photographs keep their own size (`--scale auto` brings them
  to the weights' diameter at prediction).
- `max_fov_diameter`: the high end of that band (default null: one diameter).
  A photograph whose FOV is larger is shrunk to it, one inside the band is
  left as it is (`data.scale.FovBand`).
- `datasets`: fundus only: which of drive, stare, chase_db1 and hrf it reads
  (default null: all four). Leaving one out trains a model that has never
  seen that camera, to test on it (docs/cameras.md, "Measuring generalisation: leave one
  camera out").
- `dataset_weights`: fundus only: each dataset's share of a training epoch,
  e.g. {drive: 1, stare: 1, chase_db1: 1, hrf: 1} (default: equal shares);
  the shares of datasets that `datasets` leaves out are not used.
- `val_split`: "by_source" (default: whole source images held out) or
  "random" (the notebook's 90/10 split of the augmented set). Used by
  `data.prepare`.
- `val_fraction`: share held out for validation (default 0.1).
- `augment`: build the 13-fold augmented training set (default true).
- `seed`: seed for augmentation, validation split and folder test split (42).
- `n_train`, `n_test`, `size`: synthetic and synthetic_av only (defaults 12, 4, 96).
- `images`, `labels`, `masks`: folder only: sub-folders of `data_root` (or
  absolute paths, or glob patterns such as "imgs/*.jpg"); `masks` optional
  (None -> generated FOV masks).
- `label_pattern`, `mask_pattern`: folder only: the label/mask file stem for an
  image stem, e.g. "{stem}_1stHO" (CHASE_DB1) or "{stem}_mask" (HRF);
  default "{stem}" (same stem).
- `test_fraction`: folder only: share of images, chosen with `seed`, kept
  for test (default 0.2; 1: every image, to score weights or predict.py's maps
  on a labelled set), unless `split` names a JSON file with "train" and
  "test" lists of image stems.

Datasets: DRIVE in its official layout (`training/` and `test/` with
`images/`, `1st_manual/`, `mask/`, and `2nd_manual/` for test; split from
`data/splits/drive.json`); STARE (`stare-images/`, `labels-ah/`, optional
`labels-vk/` as the second observer, `.ppm` or `.ppm.gz`; generated FOV
masks); CHASE_DB1 (one flat folder of `Image_NNX.jpg`, `Image_NNX_1stHO.png`
and `Image_NNX_2ndHO.png`, the second observer; generated FOV masks; split
from `data/splits/chase_db1.json`); HRF (`images/`, `manual1/`, `mask/`;
split from `data/splits/hrf.json`); RITE (`RITE/` with `training/` and `test/`,
each with `images/`, `av/` (A/V labels, `NN_training.png`, `NN_test.png`) and
`mask/`, and `test/zone_b/`; DRIVE's split, `data/splits/rite.json`); HRF-AV
(the `NN_X_AVmanual.png` labels in `HRF-AV/`, on HRF's photographs and FOV
masks, HRF's split); any folder of images; the built-in synthetic set. A
CHASE_DB1 or HRF test image whose label file is missing is left out (a warning
names it; `Dataset.excluded`); a missing training label is an error.
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

from data import fov
from data.av import classes_from_colours
from data.geometry import pad_shape_for
from data.io import default_cache_dir, file_stem, is_image_name, read_image, read_label, read_mask
from data.samples import Dataset, Sample
from data.scale import resize_sample
from data.splits import VAL_SPLITS, drive_split, fixed_split, stare_split
from data.trees import DirTree, MergedTree, TarTree, ZipTree, open_zip, zip_prefix
from utils.errors import UserError

DATASET_NAMES = (
    "drive",
    "stare",
    "chase_db1",
    "hrf",
    "fundus",
    "synthetic",
    "folder",
    "rite",
    "hrf_av",
    "synthetic_av",
)
# The artery/vein label sets: their labels are data.av class maps, not {0, 1} vessel maps.
AV_DATASETS = ("rite", "hrf_av", "synthetic_av")
# The datasets "fundus" combines, in this order.
FUNDUS_DATASETS = ("drive", "stare", "chase_db1", "hrf")

DEFAULTS: dict = {
    "name": "drive",
    "data_root": None,
    "fold": 1,
    "downsample": 2,
    "fov_diameter": None,
    "max_fov_diameter": None,
    "datasets": None,
    "dataset_weights": None,
    "val_split": "by_source",
    "val_fraction": 0.1,
    "augment": True,
    "seed": 42,
    "n_train": 12,
    "n_test": 4,
    "size": 96,
    "images": None,
    "labels": None,
    "masks": None,
    "label_pattern": "{stem}",
    "mask_pattern": "{stem}",
    "test_fraction": 0.2,
    "split": None,
}


def resolve_dataset_config(cfg: dict | None) -> dict:
    """`cfg` with defaults filled in; unknown keys and bad names are UserErrors."""
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise UserError(f"dataset key '{unknown[0]}' does not exist (valid: {', '.join(DEFAULTS)})")
    out = {**DEFAULTS, **cfg}
    out["name"] = str(out["name"]).lower()
    if out["name"] not in DATASET_NAMES:
        raise UserError(
            f"dataset name '{out['name']}' is not known; expected one of {', '.join(DATASET_NAMES)}"
        )
    if out["downsample"] not in (1, 2):
        raise UserError(f"dataset.downsample must be 1 or 2, got {out['downsample']!r}")
    band_top_alone = out["max_fov_diameter"] is not None and out["fov_diameter"] is None
    if band_top_alone and out["name"] != "fundus":
        raise UserError(
            "dataset.max_fov_diameter is the high end of a band of training diameters: give "
            "dataset.fov_diameter, its low end, as well"
        )
    if out["datasets"] is not None:
        out["datasets"] = fundus_datasets(out["datasets"])
    if out["val_split"] not in VAL_SPLITS:
        raise UserError(
            f"dataset.val_split '{out['val_split']}' is not known; expected one of {', '.join(VAL_SPLITS)}"
        )
    return out


def resolve_data_root(value: str | os.PathLike | None = None) -> Path:
    """`value`, else `$SAUNETV2_DATA_ROOT`; a UserError when neither is set or the path is missing."""
    if value in (None, ""):
        value = os.environ.get("SAUNETV2_DATA_ROOT")
    if not value:
        raise UserError("no data folder given; pass --data-root DIR or set SAUNETV2_DATA_ROOT")
    path = Path(value).expanduser()
    if not path.exists():
        raise UserError(
            f"data root {path} does not exist; expected a folder holding DRIVE/, STARE/, CHASE_DB1/ or HRF/, or their archives"
        )
    return path


def load_dataset(cfg: dict | None = None, cache_dir: str | os.PathLike | None = None) -> Dataset:
    """Read the dataset that `cfg` (a config's `dataset` section) names.

    `cache_dir` is where generated FOV masks are cached as PNG files
    (default `data.io.default_cache_dir()`).
    """
    cfg = resolve_dataset_config(cfg)
    name = cfg["name"]
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    excluded: list[str] = []
    if name in ("synthetic", "synthetic_av"):
        from data.synthetic import make_synthetic

        train, test = make_synthetic(
            int(cfg["n_train"]),
            int(cfg["n_test"]),
            int(cfg["size"]),
            int(cfg["seed"]),
            av=name == "synthetic_av",
        )
    else:
        root = resolve_data_root(cfg["data_root"])
        if name == "drive":
            train, test = read_drive(root)
        elif name == "stare":
            train, test = read_stare(root, cfg["fold"], fov_cache=cache / "fov" / "stare")
        elif name == "chase_db1":
            train, test, excluded = read_chase_db1(root, fov_cache=cache / "fov" / "chase_db1")
        elif name == "hrf":
            train, test, excluded = read_hrf(root, int(cfg["downsample"]))
        elif name == "fundus":
            train, test, excluded = read_fundus(root, cfg, cache)
        elif name == "rite":
            train, test = read_rite(root)
        elif name == "hrf_av":
            train, test = read_hrf_av(root, int(cfg["downsample"]))
        else:
            train, test = read_folder(root, cfg, fov_cache=cache / "fov" / "folder")
    normalised = trains_in_band(cfg)
    if normalised and name != "fundus":  # read_fundus brings its own into the band
        train = normalise_training(train, training_band(cfg))
    # Normalised training photographs: the test photographs keep their own sizes (predicted
    # resampled, `--scale auto`); only the training photographs set the padded size.
    shapes = [s.image.shape[:2] for s in (train if normalised else train + test)]
    image_shape = (max(h for h, _ in shapes), max(w for _, w in shapes))
    return Dataset(name, pad_shape_for(name, image_shape), train, test, image_shape, excluded)


# ----------------------------------------------------------------------------- shared helpers


def _stem_index(tree, rel: str, what: str) -> dict[str, str]:
    """{file stem: file name} for the image files in folder `rel` of `tree`."""
    if not tree.is_dir(rel):
        raise UserError(f"folder {tree.where(rel)} is missing; expected the {what} there")
    return {file_stem(n): n for n in tree.listdir(rel) if is_image_name(n)}


def _check_same_size(
    what: str, where: str, array: np.ndarray, image: np.ndarray, image_where: str
) -> None:
    if array.shape[:2] != image.shape[:2]:
        raise UserError(
            f"{what} {where} is {array.shape[0]} x {array.shape[1]} but its image {image_where} is "
            f"{image.shape[0]} x {image.shape[1]}; expected the same size"
        )


def _read_pair(tree, image_rel: str, label_rel: str) -> tuple[np.ndarray, np.ndarray]:
    image = read_image(tree.read(image_rel), tree.where(image_rel))
    label = read_label(tree.read(label_rel), tree.where(label_rel))
    _check_same_size("label", tree.where(label_rel), label, image, tree.where(image_rel))
    return image, label


# ----------------------------------------------------------------------------- DRIVE

DRIVE_HINT = "training/ and test/ folders with images/, 1st_manual/ and mask/"


def find_drive(root: Path):
    """The tree holding DRIVE's `training/` and `test/`: `root`, `root/DRIVE` or a zip in either."""
    root = Path(root)
    if root.is_file():
        if root.suffix.lower() != ".zip":
            raise UserError(
                f"{root} is not a DRIVE zip archive; expected a .zip or a folder with {DRIVE_HINT}"
            )
        prefix = zip_prefix(root, "training/images/")
        if prefix is None:
            raise UserError(
                f"zip archive {root} does not hold the DRIVE layout; expected {DRIVE_HINT}"
            )
        return ZipTree(root, prefix)
    for folder in (root, root / "DRIVE"):
        if (folder / "training").is_dir() or (folder / "test").is_dir():
            return DirTree(folder)
    for folder in (root, root / "DRIVE"):
        for z in sorted(folder.glob("*.zip")) if folder.is_dir() else []:
            prefix = zip_prefix(z, "training/images/")
            if prefix is not None:
                return ZipTree(z, prefix)
    raise UserError(
        f"{root} does not hold DRIVE in its official layout; expected {DRIVE_HINT} in {root}, {root / 'DRIVE'} or a DRIVE .zip there"
    )


def read_drive(root: Path) -> tuple[list[Sample], list[Sample]]:
    """DRIVE's official split: 20 training (21-40) and 20 test (01-20) samples."""
    tree = find_drive(root)
    train_ids, test_ids = drive_split()
    return _read_drive_part(tree, "training", train_ids), _read_drive_part(tree, "test", test_ids)


def _read_drive_part(tree, part: str, ids: list[str]) -> list[Sample]:
    images = _stem_index(tree, f"{part}/images", f"DRIVE {part} images (NN_{part}.tif)")
    if not images:
        raise UserError(
            f"folder {tree.where(part + '/images')} contains no images; expected DRIVE's NN_{part}.tif files"
        )
    labels = _stem_index(tree, f"{part}/1st_manual", "DRIVE labels (NN_manual1.gif)")
    masks = _stem_index(tree, f"{part}/mask", f"DRIVE FOV masks (NN_{part}_mask.gif)")
    seconds = (
        _stem_index(tree, f"{part}/2nd_manual", "")
        if part == "test" and tree.is_dir(f"{part}/2nd_manual")
        else {}
    )
    by_id = {stem.split("_")[0]: name for stem, name in images.items()}
    samples = []
    for i in ids:
        if i not in by_id:
            raise UserError(
                f"DRIVE image {i} (listed in data/splits/drive.json) is missing from {tree.where(part + '/images')}"
            )
        image_rel = f"{part}/images/{by_id[i]}"
        label_name = labels.get(f"{i}_manual1")
        if label_name is None:
            raise UserError(
                f"image {tree.where(image_rel)} has no label; expected {tree.where(f'{part}/1st_manual/{i}_manual1.gif')}"
            )
        image, label = _read_pair(tree, image_rel, f"{part}/1st_manual/{label_name}")
        mask_name = masks.get(f"{i}_{part}_mask")
        if mask_name is None:
            raise UserError(
                f"image {tree.where(image_rel)} has no FOV mask; expected {tree.where(f'{part}/mask/{i}_{part}_mask.gif')}"
            )
        mask_rel = f"{part}/mask/{mask_name}"
        mask = read_mask(tree.read(mask_rel), tree.where(mask_rel))
        _check_same_size("mask", tree.where(mask_rel), mask, image, tree.where(image_rel))
        second = None
        if f"{i}_manual2" in seconds:
            second_rel = f"{part}/2nd_manual/{seconds[f'{i}_manual2']}"
            second = read_label(tree.read(second_rel), tree.where(second_rel))
            _check_same_size("label", tree.where(second_rel), second, image, tree.where(image_rel))
        samples.append(Sample(file_stem(by_id[i]), image, label, mask, second, source=f"drive/{i}"))
    return samples


# ----------------------------------------------------------------------------- STARE

STARE_FOLDERS = ("stare-images", "labels-ah", "labels-vk")
STARE_HINT = (
    "stare-images/ and labels-ah/ folders (imNNNN.ppm[.gz]) or stare-images.tar and labels-ah.tar"
)


def find_stare(root: Path):
    """The tree holding STARE's `stare-images`, `labels-ah` (and `labels-vk`): folders or tars."""
    root = Path(root)
    if root.is_file():
        if not root.name.endswith(".tar"):
            raise UserError(f"{root} is not a STARE tar archive; expected {STARE_HINT}")
        root = root.parent
    for folder in (root, root / "STARE"):
        if (folder / "stare-images").is_dir():
            return DirTree(folder)
        if (folder / "stare-images.tar").is_file():
            tars = {
                f: folder / f"{f}.tar" for f in STARE_FOLDERS if (folder / f"{f}.tar").is_file()
            }
            return TarTree(tars)
    raise UserError(
        f"{root} does not hold STARE; expected {STARE_HINT} in {root} or {root / 'STARE'}"
    )


def read_stare(
    root: Path, fold: int | str = 1, fov_cache: Path | None = None
) -> tuple[list[Sample], list[Sample]]:
    """STARE (labels-ah as reference, labels-vk as second observer) split by `fold`."""
    tree = find_stare(root)
    train_ids, test_ids = stare_split(fold)
    images = _stem_index(tree, "stare-images", "STARE images (imNNNN.ppm.gz)")
    if not images:
        raise UserError(
            f"folder {tree.where('stare-images')} contains no images; expected STARE's imNNNN.ppm.gz files"
        )
    labels = _stem_index(tree, "labels-ah", "STARE labels (imNNNN.ah.ppm.gz)")
    seconds = _stem_index(tree, "labels-vk", "") if tree.is_dir("labels-vk") else {}
    loaded = {}
    for i in train_ids + test_ids:
        if i not in images:
            raise UserError(
                f"STARE image {i} (listed in data/splits/stare.json) is missing from {tree.where('stare-images')}"
            )
        image_rel = f"stare-images/{images[i]}"
        if f"{i}.ah" not in labels:
            raise UserError(
                f"image {tree.where(image_rel)} has no label; expected {tree.where(f'labels-ah/{i}.ah.ppm.gz')}"
            )
        image, label = _read_pair(tree, image_rel, f"labels-ah/{labels[f'{i}.ah']}")
        second = None
        if f"{i}.vk" in seconds:
            second_rel = f"labels-vk/{seconds[f'{i}.vk']}"
            second = read_label(tree.read(second_rel), tree.where(second_rel))
            _check_same_size("label", tree.where(second_rel), second, image, tree.where(image_rel))
        loaded[i] = (image, label, second)
    # Masks only once every file has been read and checked: a bad file writes nothing.
    samples = {
        i: Sample(i, im, lab, fov.cached_fov_mask(im, i, fov_cache), sec, source=f"stare/{i}")
        for i, (im, lab, sec) in loaded.items()
    }
    return [samples[i] for i in train_ids], [samples[i] for i in test_ids]


# ----------------------------------------------------------------------------- CHASE_DB1 and HRF


def _require_split_images(
    dataset: str, split: str, ids: list[str], index: dict, where: str, expected: str = ""
) -> None:
    """A UserError naming the first id of `ids` (from data/splits/<split>.json) not in `index`;
    `expected` is appended with the id in place of {}."""
    for i in ids:
        if i not in index:
            raise UserError(
                f"{dataset} image {i} (listed in data/splits/{split}.json) is missing from "
                f"{where}{expected.format(i)}"
            )


def _labelled_ids(
    dataset: str, train_ids: list[str], test_ids: list[str], labelled: set[str], expected
) -> tuple[list[str], list[str], list[str]]:
    """(train ids, test ids with a label, test ids without): a training image without a label is a
    UserError; test images without one are left out with one warning line naming them.
    `expected(id)` names the missing label file in messages."""
    for i in train_ids:
        if i not in labelled:
            raise UserError(f"{dataset} training image {i} has no label; expected {expected(i)}")
    missing = [i for i in test_ids if i not in labelled]
    if missing:
        files = ", ".join(expected(i) for i in missing)
        print(
            f"warning: {dataset} test images {', '.join(missing)} have no label in this copy of "
            f"the data (expected {files}); they are left out of scoring "
            f"({len(test_ids) - len(missing)} of {len(test_ids)} test images scored)",
            file=sys.stderr,
        )
    return train_ids, [i for i in test_ids if i not in missing], missing


CHASE_FOLDERS = ("CHASE_DB1", "CHASEDB1", "CHASE")
CHASE_LABEL = re.compile(r"Image_\d+[LR]_1stHO\.png$", re.IGNORECASE)
CHASE_HINT = (
    "Image_NNX.jpg with Image_NNX_1stHO.png (and _2ndHO.png) in one folder, or CHASEDB1.zip"
)


def _chase_zip_prefix(path: Path) -> str | None:
    """The folder inside the zip holding CHASE_DB1's `Image_NNX_1stHO.png` files, or None."""
    bases = [(n, n.rsplit("/", 1)[-1]) for n in open_zip(path).namelist()]
    found = [n[: len(n) - len(base)] for n, base in bases if CHASE_LABEL.match(base)]
    return min(found, key=len) if found else None


def find_chase_db1(root: Path):
    """The tree holding CHASE_DB1's flat layout: `root`, `root/CHASE_DB1` (or `CHASEDB1`,
    `CHASE`), or a zip (CHASEDB1.zip) in any of them."""
    root = Path(root)
    if root.is_file():
        prefix = _chase_zip_prefix(root) if root.suffix.lower() == ".zip" else None
        if prefix is None:
            raise UserError(f"{root} is not a CHASE_DB1 zip archive; expected {CHASE_HINT}")
        return ZipTree(root, prefix)
    folders = [root] + [root / name for name in CHASE_FOLDERS]
    for folder in folders:
        if folder.is_dir() and any(CHASE_LABEL.match(p.name) for p in folder.iterdir()):
            return DirTree(folder)
    for folder in folders:
        for z in sorted(folder.glob("*.zip")) if folder.is_dir() else []:
            prefix = _chase_zip_prefix(z)
            if prefix is not None:
                return ZipTree(z, prefix)
    raise UserError(
        f"{root} does not hold CHASE_DB1; expected {CHASE_HINT} in {root} or {root / 'CHASE_DB1'}"
    )


def read_chase_db1(
    root: Path, fov_cache: Path | None = None
) -> tuple[list[Sample], list[Sample], list[str]]:
    """CHASE_DB1 split as in the SA-UNet paper (20 train, 8 test; `data/splits/chase_db1.json`):
    1stHO the reference, 2ndHO the second observer, generated FOV masks; plus the test ids
    left out for want of a label."""
    tree = find_chase_db1(root)
    files = _stem_index(tree, "", "CHASE_DB1 files")
    train_ids, test_ids = fixed_split("chase_db1")
    _require_split_images(
        "CHASE_DB1", "chase_db1", train_ids + test_ids, files, tree.where(""), "; expected {}.jpg"
    )
    labelled = {i for i in train_ids + test_ids if f"{i}_1stHO" in files}
    train_ids, test_ids, missing = _labelled_ids(
        "CHASE_DB1", train_ids, test_ids, labelled, lambda i: tree.where(f"{i}_1stHO.png")
    )
    loaded = {}
    for i in train_ids + test_ids:
        image, label = _read_pair(tree, files[i], files[f"{i}_1stHO"])
        second = None
        if f"{i}_2ndHO" in files:
            second_rel = files[f"{i}_2ndHO"]
            second = read_label(tree.read(second_rel), tree.where(second_rel))
            _check_same_size("label", tree.where(second_rel), second, image, tree.where(files[i]))
        loaded[i] = (image, label, second)
    # Masks only once every file has been read and checked: a bad file writes nothing.
    samples = {
        i: Sample(i, im, lab, fov.cached_fov_mask(im, i, fov_cache), sec, source=f"chase_db1/{i}")
        for i, (im, lab, sec) in loaded.items()
    }
    return [samples[i] for i in train_ids], [samples[i] for i in test_ids], missing


HRF_GROUPS = ("healthy", "glaucoma", "diabetic_retinopathy")
HRF_HINT = (
    "images/, manual1/ and mask/ folders (NN_h.jpg, NN_h.tif, NN_h_mask.tif), all.zip, or the "
    "per-group archives healthy.zip + healthy_manualsegm.zip (+ healthy_fovmask.zip), glaucoma..., "
    "diabetic_retinopathy..."
)


def _hrf_group_sources(folder: Path, suffix: str) -> list[Path]:
    """HRF's per-group archives `<group><suffix>.zip` (or folders of that name) in `folder`."""
    found = []
    for group in HRF_GROUPS:
        for path in (folder / f"{group}{suffix}.zip", folder / f"{group}{suffix}"):
            if path.exists():
                found.append(path)
                break
    return found


def find_hrf(root: Path):
    """The tree holding HRF's `images/`, `manual1/` and `mask/`: folders in `root` or `root/HRF`,
    `all.zip` (any zip holding `manual1/`), or the per-group archives joined into those three."""
    root = Path(root)
    if root.is_file():
        if root.suffix.lower() != ".zip":
            raise UserError(f"{root} is not an HRF zip archive; expected {HRF_HINT}")
        prefix = zip_prefix(root, "manual1/")
        if prefix is not None:
            return ZipTree(root, prefix)
        root = root.parent  # one of the per-group archives: look at its neighbours
    folders = (root, root / "HRF")
    for folder in folders:
        if (folder / "images").is_dir() and (folder / "manual1").is_dir():
            return DirTree(folder)
    for folder in folders:
        for z in sorted(folder.glob("*.zip")) if folder.is_dir() else []:
            prefix = zip_prefix(z, "manual1/")
            if prefix is not None:
                return ZipTree(z, prefix)
    for folder in folders:
        images = _hrf_group_sources(folder, "")
        if images:
            parts = {"images": images, "manual1": _hrf_group_sources(folder, "_manualsegm")}
            masks = _hrf_group_sources(folder, "_fovmask")
            if masks:
                parts["mask"] = masks
            return MergedTree(parts)
    raise UserError(f"{root} does not hold HRF; expected {HRF_HINT} in {root} or {root / 'HRF'}")


def read_hrf(root: Path, downsample: int = 2) -> tuple[list[Sample], list[Sample], list[str]]:
    """HRF split as in bob.ip.binseg and lwnet (15 train, 30 test; `data/splits/hrf.json`) with
    HRF's own FOV masks, each sample `downsample` times smaller (photograph Lanczos, label and
    mask nearest neighbour); plus the test ids left out for want of a label.

    Without any mask folder or archive (the per-group archives without `*_fovmask.zip`), FOV
    masks are generated (`data/fov.py`) and a warning says so.
    """
    tree = find_hrf(root)
    images = _stem_index(tree, "images", "HRF images (NN_h.jpg, NN_g.jpg, NN_dr.JPG)")
    labels = _stem_index(tree, "manual1", "HRF labels (NN_h.tif)") if tree.is_dir("manual1") else {}
    masks = _hrf_masks(tree)
    train_ids, test_ids = fixed_split("hrf")
    _require_split_images("HRF", "hrf", train_ids + test_ids, images, tree.where("images"))
    train_ids, test_ids, missing = _labelled_ids(
        "HRF", train_ids, test_ids, set(labels), lambda i: tree.where(f"manual1/{i}.tif")
    )
    samples = {}
    for i in train_ids + test_ids:
        image_rel = f"images/{images[i]}"
        image, label = _read_pair(tree, image_rel, f"manual1/{labels[i]}")
        mask = _hrf_fov_mask(tree, masks, i, image, image_rel)
        sample = Sample(i, image, label, mask, None, source=f"hrf/{i}")
        if downsample != 1:
            h, w = image.shape[:2]
            sample = resize_sample(sample, (h // downsample, w // downsample))
        samples[i] = sample
    return [samples[i] for i in train_ids], [samples[i] for i in test_ids], missing


def _hrf_masks(tree) -> dict[str, str] | None:
    """{stem: file name} of HRF's FOV masks, or None (with a warning) where the tree has none."""
    if tree.is_dir("mask"):
        return _stem_index(tree, "mask", "HRF FOV masks")
    print(
        f"warning: no HRF FOV masks in {tree.where('')} (mask/ or *_fovmask.zip); "
        "generating them from the photographs",
        file=sys.stderr,
    )
    return None


def _hrf_fov_mask(
    tree, masks: dict[str, str] | None, i: str, image: np.ndarray, image_rel: str
) -> np.ndarray:
    """bool (H, W): HRF photograph `i`'s own FOV mask, generated where `masks` is None."""
    if masks is None:
        return fov.generate_fov_mask(image)
    if f"{i}_mask" not in masks:
        raise UserError(
            f"image {tree.where(image_rel)} has no FOV mask; expected {tree.where(f'mask/{i}_mask.tif')}"
        )
    mask_rel = f"mask/{masks[f'{i}_mask']}"
    mask = read_mask(tree.read(mask_rel), tree.where(mask_rel))
    _check_same_size("mask", tree.where(mask_rel), mask, image, tree.where(image_rel))
    return mask


# ----------------------------------------------------------------------------- artery/vein label sets

RITE_HINT = "training/ and test/ folders with images/, av/ and mask/ (test/zone_b/ optional)"
HRF_AV_FOLDERS = ("HRF-AV", "HRF_AV_GT")  # as shipped here, as named in the authors' repository


def _read_av_label(tree, label_rel: str, image: np.ndarray, image_rel: str) -> np.ndarray:
    """uint8 (H, W) data.av class map of the RGB label file `label_rel`, checked against its
    photograph's size."""
    label = classes_from_colours(read_image(tree.read(label_rel), tree.where(label_rel)))
    _check_same_size("label", tree.where(label_rel), label, image, tree.where(image_rel))
    return label


def find_rite(root: Path) -> DirTree:
    """The folder holding RITE's `training/` and `test/`: `root/RITE` or `root` itself."""
    root = Path(root)
    for folder in (root / "RITE", root):
        if (folder / "training" / "av").is_dir() or (folder / "test" / "av").is_dir():
            return DirTree(folder)
    raise UserError(f"{root} does not hold RITE; expected {RITE_HINT} in {root / 'RITE'} or {root}")


def read_rite(root: Path) -> tuple[list[Sample], list[Sample]]:
    """RITE's artery/vein labels on DRIVE's photographs, DRIVE's split (`data/splits/rite.json`):
    20 training (21-40) and 20 test (01-20) samples. Each label is a data.av class map; names
    and ids as DRIVE's (`21_training`, source `rite/21`). The test labels were drawn on DRIVE's
    second observer's vessel map, not on its first."""
    tree = find_rite(root)
    train_ids, test_ids = fixed_split("rite")
    return _read_rite_part(tree, "training", train_ids), _read_rite_part(tree, "test", test_ids)


def _read_rite_part(tree, part: str, ids: list[str]) -> list[Sample]:
    images = _stem_index(tree, f"{part}/images", f"RITE {part} images (NN_{part}.tif)")
    labels = _stem_index(tree, f"{part}/av", f"RITE A/V labels (NN_{part}.png)")
    masks = _stem_index(tree, f"{part}/mask", f"RITE FOV masks (NN_{part}_mask.gif)")
    samples = []
    for i in ids:
        stem = f"{i}_{part}"
        for index, key, expected in (
            (images, stem, f"images/{stem}.tif"),
            (labels, stem, f"av/{stem}.png"),
            (masks, f"{stem}_mask", f"mask/{stem}_mask.gif"),
        ):
            if key not in index:
                raise UserError(
                    f"RITE {part} image {i} (listed in data/splits/rite.json) is missing; "
                    f"expected {tree.where(f'{part}/{expected}')}"
                )
        image_rel = f"{part}/images/{images[stem]}"
        image = read_image(tree.read(image_rel), tree.where(image_rel))
        label = _read_av_label(tree, f"{part}/av/{labels[stem]}", image, image_rel)
        mask_rel = f"{part}/mask/{masks[f'{stem}_mask']}"
        mask = read_mask(tree.read(mask_rel), tree.where(mask_rel))
        _check_same_size("mask", tree.where(mask_rel), mask, image, tree.where(image_rel))
        samples.append(Sample(stem, image, label, mask, None, source=f"rite/{i}"))
    return samples


def read_rite_zone_b(root: Path, name: str) -> np.ndarray | None:
    """bool (H, W) zone-B ring (0.5 to 1 disc diameter outside the optic-disc margin) of RITE
    test photograph `name` (a Sample name, `01_test`), inside where grey > 127; None for a
    training photograph (`21_training`), which has no ring."""
    tree = find_rite(root)
    if name.endswith("_training"):
        return None
    rel = f"test/zone_b/{name}_B.png"
    if not name.endswith("_test") or not tree.is_dir("test/zone_b"):
        raise UserError(
            f"no zone-B ring for RITE photograph '{name}'; expected a test photograph "
            f"(NN_test) and its ring {tree.where(rel)}"
        )
    return read_mask(tree.read(rel), tree.where(rel))


def find_hrf_av(root: Path) -> DirTree:
    """The folder of HRF-AV's `NN_X_AVmanual.png` labels: `root/HRF-AV` (or `root/HRF_AV_GT`,
    its name in the authors' repository), or `root` itself."""
    root = Path(root)
    for folder in [root / name for name in HRF_AV_FOLDERS] + [root]:
        if folder.is_dir() and any(folder.glob("*_AVmanual.png")):
            return DirTree(folder)
    raise UserError(
        f"{root} does not hold HRF-AV; expected the NN_X_AVmanual.png labels in "
        f"{root / HRF_AV_FOLDERS[0]} or {root}"
    )


def read_hrf_av(root: Path, downsample: int = 2) -> tuple[list[Sample], list[Sample]]:
    """HRF-AV's artery/vein labels on HRF's photographs, with HRF's vessel split
    (`data/splits/hrf.json`, the same 15 training and 30 test photographs; HRF-AV has no split
    file of its own) and HRF's own FOV masks, each sample `downsample` times smaller.

    The photographs come from HRF (`find_hrf`), the labels from HRF-AV (`find_hrf_av`), as
    data.av class maps. Every photograph has a label, 11_h, 12_h and 13_h included (HRF's
    vessel labels for those three may be missing). Downsampling as `read_hrf` downsamples
    (`data.scale.resize_sample`): photograph Lanczos, label and mask nearest neighbour, so the
    vessel pixels at half size are exactly those of the vessel task's HRF labels.
    """
    files = _hrf_av_files(root)
    train_ids, test_ids = fixed_split("hrf")
    samples = {i: _hrf_av_sample(files, i, downsample) for i in train_ids + test_ids}
    return [samples[i] for i in train_ids], [samples[i] for i in test_ids]


def read_hrf_av_photograph(root: Path, stem: str, downsample: int = 2) -> Sample:
    """One sample of `read_hrf_av`: HRF photograph `stem` (`01_dr`) with its HRF-AV label."""
    files = _hrf_av_files(root)
    if stem not in files["images"]:
        raise UserError(
            f"HRF has no photograph '{stem}' in {files['hrf'].where('images')}; expected a stem "
            "such as 01_dr, 07_g or 15_h"
        )
    return _hrf_av_sample(files, stem, downsample)


def _hrf_av_files(root: Path) -> dict:
    """HRF's and HRF-AV's trees and {stem: file name} indexes (`images`, `labels`, `masks`:
    None where HRF has no FOV masks), checked to hold every photograph of `hrf.json`."""
    hrf, av = find_hrf(root), find_hrf_av(root)
    images = _stem_index(hrf, "images", "HRF images (NN_h.jpg, NN_g.jpg, NN_dr.JPG)")
    labels = _stem_index(av, "", "HRF-AV labels (NN_X_AVmanual.png)")
    ids = [i for part in fixed_split("hrf") for i in part]
    _require_split_images("HRF", "hrf", ids, images, hrf.where("images"))
    missing = [i for i in ids if f"{i}_AVmanual" not in labels]
    if missing:
        raise UserError(
            f"HRF-AV label of {missing[0]} (listed in data/splits/hrf.json) is missing; "
            f"expected {av.where(f'{missing[0]}_AVmanual.png')}"
        )
    return {"hrf": hrf, "av": av, "images": images, "labels": labels, "masks": _hrf_masks(hrf)}


def _hrf_av_sample(files: dict, i: str, downsample: int) -> Sample:
    """HRF photograph `i` with its HRF-AV class map and FOV mask, `downsample` times smaller."""
    hrf, av = files["hrf"], files["av"]
    image_rel = f"images/{files['images'][i]}"
    image = read_image(hrf.read(image_rel), hrf.where(image_rel))
    label_name = files["labels"].get(f"{i}_AVmanual")
    if label_name is None:
        raise UserError(
            f"HRF photograph {i} has no label; expected {av.where(f'{i}_AVmanual.png')}"
        )
    label = _read_av_label(av, label_name, image, image_rel)
    mask = _hrf_fov_mask(hrf, files["masks"], i, image, image_rel)
    sample = Sample(i, image, label, mask, None, source=f"hrf_av/{i}")
    if downsample == 1:
        return sample
    h, w = label.shape
    return resize_sample(sample, (h // downsample, w // downsample))


# ----------------------------------------------------------------------------- test photographs as files

TEST_IMAGE_FOLDERS = {"drive": "test/images", "stare": "stare-images", "chase_db1": "", "hrf": "images"}
TRAIN_IMAGE_FOLDERS = {**TEST_IMAGE_FOLDERS, "drive": "training/images"}


def photograph_files(
    name: str, root: str | os.PathLike, fold: int | str = "all", split: str = "test"
) -> list:
    """The photographs of dataset `name`'s test split (`split="train"`: its training split) as
    released (HRF at full size), for predict.py: a list of (stem, tree, rel), `tree.read(rel)`
    giving the file's bytes and `tree.where(rel)` its path (inside an archive where the data is
    one). STARE's `fold` chooses its test images ("all": the 20, for weights that never saw
    STARE; its training split is then empty)."""
    if split not in ("test", "train"):
        raise UserError(f"split must be test or train, got '{split}'")
    root = resolve_data_root(root)
    if name == "drive":
        tree, ids = find_drive(root), drive_split()
    elif name == "stare":
        tree, ids = find_stare(root), stare_split(fold)
    elif name == "chase_db1":
        tree, ids = find_chase_db1(root), fixed_split("chase_db1")
    elif name == "hrf":
        tree, ids = find_hrf(root), fixed_split("hrf")
    else:
        raise UserError(f"no test split of '{name}'; expected one of {', '.join(FUNDUS_DATASETS)}")
    ids = ids[1] if split == "test" else ids[0]
    folder = (TEST_IMAGE_FOLDERS if split == "test" else TRAIN_IMAGE_FOLDERS)[name]
    if not ids:
        return []
    files = _stem_index(tree, folder, f"the {name} photographs")
    # DRIVE's files are NN_test.tif (NN_training.tif) for id NN; the others' stems are their ids.
    by_id = {stem.split("_")[0]: stem for stem in files} if name == "drive" else {s: s for s in files}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise UserError(
            f"{tree.where(folder)} lacks {len(missing)} of the {len(ids)} {name} {split} "
            f"photographs (first: {missing[0]}); expected the dataset as released"
        )
    return [(by_id[i], tree, f"{folder}/{files[by_id[i]]}".lstrip("/")) for i in ids]


# ----------------------------------------------------------------------------- the four together


def fundus_datasets(value) -> tuple[str, ...]:
    """The datasets a `dataset.datasets` value names, in FUNDUS_DATASETS order (null: all four)."""
    if value is None:
        return FUNDUS_DATASETS
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not names:
        raise UserError(
            f"dataset.datasets must be a non-empty list such as [drive, stare, hrf], got {value!r}"
        )
    names = [str(n).lower() for n in names]
    unknown = sorted(set(names) - set(FUNDUS_DATASETS))
    if unknown:
        raise UserError(
            f"dataset.datasets names '{unknown[0]}'; expected some of {', '.join(FUNDUS_DATASETS)}"
        )
    return tuple(n for n in FUNDUS_DATASETS if n in names)


def trains_in_band(cfg: dict) -> bool:
    """Whether the training photographs of the dataset section `cfg` are brought to a FOV
    diameter or band (`training_band`): always for fundus, for any other with `fov_diameter`."""
    return cfg["name"] == "fundus" or cfg["fov_diameter"] is not None


def normalise_training(train: list[Sample], band) -> list[Sample]:
    """Training photographs brought to the data.scale.FovBand `band` (`normalise_sample`: the
    rule `--scale auto` applies at prediction; a photograph without a field of view stays)."""
    from data.scale import normalise_sample

    return [normalise_sample(s, band) for s in train]


def training_band(cfg: dict):
    """The data.scale.FovBand the training photographs are brought into (config keys
    `fov_diameter`, default DRIVE's, and `max_fov_diameter`, default the same: one diameter)."""
    from data.scale import KNOWN_FOV_DIAMETERS, FovBand

    low = float(cfg["fov_diameter"] or KNOWN_FOV_DIAMETERS["drive"])
    high = cfg["max_fov_diameter"]
    return FovBand(low, float(high) if high is not None else low)


def read_fundus(root: Path, cfg: dict, cache: Path) -> tuple[list[Sample], list[Sample], list[str]]:
    """DRIVE, STARE (fold `cfg["fold"]`), CHASE_DB1 and HRF together, for one model of every camera
    (or those of them that `cfg["datasets"]` names).

    Training photographs are brought to one FOV diameter (`cfg["fov_diameter"]`, default
    DRIVE's), or into the band up to `cfg["max_fov_diameter"]`, by
    `data.scale.normalise_sample`, the rule `--scale auto` applies at prediction; test
    photographs keep their own size. Every dataset read must be present under `root`.
    """
    target = training_band(cfg)
    train, test, excluded = [], [], []
    for name in fundus_datasets(cfg.get("datasets")):
        part = {"name": name, "data_root": str(root), "fold": cfg["fold"]}
        part["downsample"] = cfg["downsample"]
        dataset = load_dataset(part, cache_dir=cache)
        train += normalise_training(dataset.train, target)
        test += dataset.test
        excluded += dataset.excluded
    return train, test, excluded


# ----------------------------------------------------------------------------- any folder


def _list_files(root: Path, spec: str | None, key: str) -> dict[str, Path]:
    """{stem: path} for the image files named by `spec` (a folder or a glob, relative to root)."""
    if not spec:
        raise UserError(
            f"dataset.{key} is not set; the folder dataset needs the {key} folder (or glob)"
        )
    pattern = str(spec)
    base = Path(pattern).expanduser()
    if not base.is_absolute():
        base = root / base
    if any(ch in pattern for ch in "*?["):
        paths = [Path(p) for p in sorted(glob.glob(str(base)))]
    else:
        if not base.is_dir():
            raise UserError(
                f"folder {base} (dataset.{key}) does not exist; expected a folder of image files"
            )
        paths = sorted(base.iterdir())
    files = {
        file_stem(p.name): p
        for p in paths
        if p.is_file() and is_image_name(p.name) and not p.name.startswith(".")
    }
    if not files:
        raise UserError(
            f"{base} (dataset.{key}) contains no images; expected JPEG, PNG, TIFF, GIF or PPM files"
        )
    return files


def read_folder(
    root: Path, cfg: dict, fov_cache: Path | None = None
) -> tuple[list[Sample], list[Sample]]:
    """Any folder of images with label files matched by stem (`label_pattern`) and optional masks."""
    images = _list_files(root, cfg["images"], "images")
    labels = _list_files(root, cfg["labels"], "labels")
    masks = _list_files(root, cfg["masks"], "masks") if cfg["masks"] else None
    loaded = {}
    for stem, path in images.items():
        label_stem = cfg["label_pattern"].format(stem=stem)
        if label_stem not in labels:
            raise UserError(
                f"image {path} has no label; expected a file with stem '{label_stem}' in dataset.labels"
            )
        image = read_image(path)
        label = read_label(labels[label_stem])
        _check_same_size("label", str(labels[label_stem]), label, image, str(path))
        mask = None
        if masks is not None:
            mask_stem = cfg["mask_pattern"].format(stem=stem)
            if mask_stem not in masks:
                raise UserError(
                    f"image {path} has no mask; expected a file with stem '{mask_stem}' in dataset.masks"
                )
            mask = read_mask(masks[mask_stem])
            _check_same_size("mask", str(masks[mask_stem]), mask, image, str(path))
        loaded[stem] = (image, label, mask)
    for stem, (image, label, mask) in loaded.items():
        if mask is None:
            mask = fov.cached_fov_mask(image, stem, fov_cache)
        loaded[stem] = Sample(stem, image, label, mask, None, source=f"folder/{stem}")
    train_ids, test_ids = _folder_split(root, cfg, sorted(loaded))
    return [loaded[i] for i in train_ids], [loaded[i] for i in test_ids]


def _folder_split(root: Path, cfg: dict, stems: list[str]) -> tuple[list[str], list[str]]:
    if cfg["split"]:
        path = Path(cfg["split"]).expanduser()
        path = path if path.is_absolute() else root / path
        try:
            split = json.loads(path.read_text(encoding="utf-8"))
            train, test = list(split["train"]), list(split["test"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(
                f"split file {path} could not be read; expected JSON with 'train' and 'test' lists of image stems"
            ) from exc
        missing = [s for s in train + test if s not in stems]
        if missing:
            raise UserError(
                f"split file {path} names image '{missing[0]}' that is not in dataset.images"
            )
        return train, test
    fraction = float(cfg["test_fraction"])
    if not 0 <= fraction <= 1:
        raise UserError(f"dataset.test_fraction {fraction} must be in [0, 1]")
    n_test = round(fraction * len(stems))
    order = np.random.default_rng(int(cfg["seed"])).permutation(len(stems))
    test = {stems[i] for i in order[:n_test]}
    return [s for s in stems if s not in test], [s for s in stems if s in test]


__all__ = ["load_dataset", "resolve_data_root", "resolve_dataset_config"]
