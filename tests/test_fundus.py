"""The fundus dataset (DRIVE, STARE, CHASE_DB1 and HRF together): FOV normalisation of the training
photographs, validation from every dataset, dataset-weighted epochs, a tiny run end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from data import load_dataset
from data.prepare import prepare_training_data
from data.splits import load_split, validation_split, weighted_indices
from inference.engines import make_predictor
from inference.segment import segment
from metrics import image_metrics
from models import load_model
from tests.helpers import run_python
from tests.test_data_prepare import fake_drive
from tests.test_data_readers import _encoded, _fake_chase_files, _fake_label, _write_folder
from training.run_folder import read_history
from utils.errors import UserError

HRF_SHAPE = (64, 96)  # the fake HRF photographs (H, W), read at full size here
HRF_DISC = 60  # their field of view's diameter (px)


def _fake_hrf_with_discs(root):
    """HRF's layout with a circular field of view of HRF_DISC px in every photograph and mask."""
    yy, xx = np.mgrid[: HRF_SHAPE[0], : HRF_SHAPE[1]]
    disc = np.hypot(yy - 31.5, xx - 47.5) < HRF_DISC / 2
    groups = ("dr", "g", "h")
    for k, i in enumerate(f"{n:02d}_{g}" for g in groups for n in range(1, 16)):
        photo = np.zeros((*HRF_SHAPE, 3), np.uint8)
        photo[disc] = (150, 70, 30)
        label = _fake_label(k, HRF_SHAPE) & disc
        files = {
            f"images/{i}.jpg": _encoded(photo, "JPEG"),
            f"manual1/{i}.tif": _encoded(label.astype(np.uint8) * 255, "TIFF"),
            f"mask/{i}_mask.tif": _encoded(disc.astype(np.uint8) * 255, "TIFF"),
        }
        _write_folder(root / "HRF", files)


def _fake_stare(root, size=16):
    for sub in ("stare-images", "labels-ah"):
        (root / "STARE" / sub).mkdir(parents=True, exist_ok=True)
    for k, i in enumerate(load_split("stare")["images"]):
        Image.fromarray(np.full((size, size, 3), 80, np.uint8)).save(
            root / "STARE" / "stare-images" / f"{i}.ppm"
        )
        Image.fromarray(_fake_label(k, (size, size)) * 255).save(
            root / "STARE" / "labels-ah" / f"{i}.ah.ppm", format="PPM"
        )


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    """DRIVE, STARE and CHASE_DB1 of 16 x 16 px, HRF of 64 x 96 px with a 60 px field of view."""
    root = tmp_path_factory.mktemp("fundus")
    fake_drive(root)
    _fake_stare(root)
    _write_folder(root / "CHASE_DB1", _fake_chase_files())
    _fake_hrf_with_discs(root)
    return root


FUNDUS = {"name": "fundus", "fold": 5, "downsample": 1, "fov_diameter": 30.0}


def test_fundus_reads_the_four_and_normalises_the_training_photographs(fake_root, tmp_path):
    ds = load_dataset({**FUNDUS, "data_root": str(fake_root)}, tmp_path / "c")
    counts = {}
    for s in ds.train:
        counts[s.source.split("/")[0]] = counts.get(s.source.split("/")[0], 0) + 1
    assert counts == {"drive": 20, "stare": 16, "chase_db1": 20, "hrf": 15}
    assert len(ds.test) == 20 + 4 + 8 + 30 and ds.excluded == []
    assert {s.name for s in ds.test} >= set(load_split("stare")["folds"]["5"]["test"])
    hrf = [s for s in ds.train if s.source.startswith("hrf/")]
    # FOV 60 px brought to 30 px: half size; the photographs without a field of view stay as they are
    assert {s.image.shape for s in hrf} == {(32, 48, 3)} and {s.label.shape for s in hrf} == {
        (32, 48)
    }
    assert {s.image.shape for s in ds.train if not s.source.startswith("hrf/")} == {
        (16, 16, 3),
        (16, 18, 3),
    }
    # the test photographs keep their size; only the training ones set the padded size
    assert {s.image.shape for s in ds.test if s.source.startswith("hrf/")} == {(64, 96, 3)}
    assert ds.pad_shape == (32, 48)


def test_fundus_band_shrinks_only_the_larger_fields_of_view(fake_root, tmp_path):
    """A band of 30-45 px: HRF's 60 px field of view is shrunk to 45, not to 30; the band's two
    ends are what the run records as its scale."""
    cfg = {**FUNDUS, "max_fov_diameter": 45.0, "data_root": str(fake_root), "augment": False}
    data = prepare_training_data(cfg, cache_dir=tmp_path, progress=False)
    assert data.pad_shape == (48, 72)  # HRF's 64 x 96 times 0.75
    assert {tuple(e) for e in data.extents_train} == {(16, 16), (16, 18), (48, 72)}
    s = data.summary
    assert (s["train_fov_diameter"], s["max_fov_diameter"]) == (30.0, 45.0)


def test_any_dataset_trains_at_a_chosen_fov_diameter(fake_root, tmp_path):
    """dataset.fov_diameter on one dataset (HRF here): its training photographs are brought to
    that diameter and set the padded size, its test photographs keep theirs, and the run records
    the diameter (or the band) as its scale; without it nothing changes; a band's top alone is
    refused."""
    hrf = {"name": "hrf", "downsample": 1, "data_root": str(fake_root), "augment": False}
    plain = load_dataset(hrf, tmp_path / "c")
    assert {s.image.shape for s in plain.train} == {(64, 96, 3)}
    ds = load_dataset({**hrf, "fov_diameter": 30.0}, tmp_path / "c")
    assert {s.image.shape for s in ds.train} == {(32, 48, 3)}
    assert {s.label.shape for s in ds.train} == {(32, 48)}
    assert {s.image.shape for s in ds.test} == {(64, 96, 3)} and ds.pad_shape == (32, 48)
    data = prepare_training_data({**hrf, "fov_diameter": 30.0}, cache_dir=tmp_path, progress=False)
    assert abs(data.summary["train_fov_diameter"] - 30.0) < 1.5
    assert data.summary["max_fov_diameter"] is None
    band = prepare_training_data(
        {**hrf, "fov_diameter": 30.0, "max_fov_diameter": 45.0}, cache_dir=tmp_path, progress=False
    )
    assert band.pad_shape == (48, 72)  # 60 px shrunk to the band's top, 45
    assert (band.summary["train_fov_diameter"], band.summary["max_fov_diameter"]) == (30.0, 45.0)
    with pytest.raises(UserError, match="give dataset.fov_diameter, its low end, as well"):
        load_dataset({**hrf, "max_fov_diameter": 45.0}, tmp_path / "c")


def test_validation_from_every_dataset_and_weighted_epochs():
    sizes = {"drive": 20, "stare": 16, "chase_db1": 20, "hrf": 15}
    sources = [f"{d}/{i}" for d, n in sizes.items() for i in range(n) for _ in range(13)]
    train, val = validation_split(sources, "by_source", 0.1, seed=42)
    held = {sources[i] for i in val}
    assert sorted(s.split("/")[0] for s in held) == sorted(
        ["chase_db1", "drive", "hrf", "stare"] * 2
    )
    assert held.isdisjoint(sources[i] for i in train)
    # one dataset's sources: the split is the one before the fundus dataset existed
    single = [f"drive/{i}" for i in range(20) for _ in range(13)]
    _, val_single = validation_split(single, "by_source", 0.1, seed=42)
    assert {single[i] for i in val_single} == {
        "drive/1",
        "drive/5",
    }  # as data/splits.py gave before

    epoch = weighted_indices(sources, train, dict.fromkeys(sizes, 1.0), seed=42)
    per = {d: sum(sources[i].startswith(f"{d}/") for i in epoch) for d in sizes}
    assert len(epoch) == len(train) == 819 and sorted(per.values()) == [204, 205, 205, 205]
    assert set(epoch) <= set(train)  # never a validation image
    drive_only = weighted_indices(sources, train, {"drive": 1}, seed=42)
    assert len(drive_only) == len(train) and all(
        sources[i].startswith("drive/") for i in drive_only
    )
    with pytest.raises(UserError, match="dataset_weights names 'iostar'"):
        weighted_indices(sources, train, {"iostar": 1}, seed=42)


def test_fundus_prepare_summary(fake_root, tmp_path):
    cfg = {**FUNDUS, "data_root": str(fake_root), "augment": False}
    data = prepare_training_data(cfg, cache_dir=tmp_path, progress=False)
    s = data.summary
    assert (s["train"], s["val_images"], s["fold"]) == (71, 8, 5)
    # 63 training photographs, a quarter each: 15.75 -> 16, 16, 16, 15 (largest remainders)
    assert s["train_by_dataset"] == {"chase_db1": 16, "drive": 16, "hrf": 16, "stare": 15}
    assert s["padded_shape"] == [32, 48, 3] and len(data.x_train) == 63
    assert abs(s["train_fov_diameter"] - HRF_DISC / 2) < 1.5  # HRF's, halved; the rest have none
    assert s["max_fov_diameter"] is None  # one diameter, no band


def test_fundus_without_one_dataset_never_reads_it(fake_root, tmp_path):
    """`datasets` leaving CHASE_DB1 out: no CHASE_DB1 photograph in training, validation or test,
    the shares of the three others only, and fundus.yaml's four shares still accepted."""
    cfg = {**FUNDUS, "data_root": str(fake_root), "augment": False}
    cfg["datasets"] = ["hrf", "DRIVE", "stare"]
    cfg["dataset_weights"] = {"drive": 1, "stare": 1, "chase_db1": 1, "hrf": 1}
    data = prepare_training_data(cfg, cache_dir=tmp_path, progress=False)
    s = data.summary
    assert (s["train"], s["val_images"]) == (51, 6)
    assert set(s["train_by_dataset"]) == {"drive", "stare", "hrf"}
    # 45 training photographs, a third each
    assert sorted(s["train_by_dataset"].values()) == [15, 15, 15]
    assert not any(v.startswith("chase_db1/") for v in s["val_sources"])
    dataset = load_dataset(cfg, cache_dir=tmp_path)
    assert not any("Image_" in t.name for t in dataset.train + dataset.test)
    assert len(dataset.test) == 20 + 4 + 30
    for bad, match in (([], "non-empty list"), (["drive", "iostar"], "names 'iostar'")):
        with pytest.raises(UserError, match=match):
            load_dataset({**cfg, "datasets": bad}, cache_dir=tmp_path)


@pytest.mark.slow
def test_fundus_config_trains_end_to_end_from_the_drive_weights(fake_root, tmp_path):
    run = tmp_path / "run"
    result = run_python(
        [
            "train.py",
            "--config",
            "configs/fundus.yaml",
            "--data-root",
            str(fake_root),
            "--out",
            str(run),
            "--quiet",
            "--set",
            "dataset.downsample=1",
            "--set",
            "dataset.fov_diameter=30",
            "--set",
            "dataset.max_fov_diameter=45",
            "--set",
            "train.crop_size=32",
            "--set",
            "dataset.augment=false",
            "--set",
            "train.epochs=1",
            "--set",
            "train.batch_size=4",
            "--set",
            "train.steps_per_epoch=2",
            "--set",
            "train.validation_steps=1",
            "--set",
            "train.tensorboard=false",
            "--set",
            "evaluate.engine=keras",
            "--set",
            "evaluate.save_images=false",
        ],  # fmt: skip
        env={"SAUNETV2_CACHE": str(tmp_path / "cache")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics["n_images"] == 62
    # evaluated in the recorded band: the fake HRF test photographs (60 px) shrunk to 45 px, once
    scaling = metrics["scaling"]
    assert (scaling["train_fov_diameter"], scaling["max_fov_diameter"]) == (30.0, 45.0)
    assert {round(f, 3) for name, f in scaling["factors"].items() if name.endswith("_h")} == {0.75}
    saved = (run / "config.yaml").read_text()
    assert "init_weights: weights/sa_unetv2_drive.keras" in saved
    assert "train_fov_diameter: 30.0" in saved and "max_fov_diameter: 45.0" in saved
    # Validated on the 8 held-out photographs, each whole: the logged F1 is theirs, as scored
    # by the test protocol, and it chose the checkpoint.
    (row,) = read_history(run / "history.csv")
    assert "val_accuracy" not in row and {"val_loss", "val_f1"} <= set(row)
    cfg = {**FUNDUS, "data_root": str(fake_root), "augment": False, "downsample": 1,
           "fov_diameter": 30, "max_fov_diameter": 45}  # fmt: skip
    data = prepare_training_data(cfg, cache_dir=tmp_path / "cache", progress=False)
    predictor = make_predictor(load_model(run / "best.keras"), "keras")
    f1 = [
        image_metrics(segment(predictor, s.image), s.label, s.mask)["f1"]
        for s in data.val_photographs
    ]
    assert len(f1) == 8 and row["val_f1"] == pytest.approx(np.mean(f1), abs=1e-5)
    assert json.loads((run / "state.json").read_text())["best"]["monitor"] == "val_f1"


def test_validation_photographs_are_the_held_out_sources(fake_root, tmp_path):
    cfg = {**FUNDUS, "data_root": str(fake_root)}
    data = prepare_training_data(cfg, cache_dir=tmp_path, progress=False)
    sources = sorted(s.source for s in data.val_photographs)
    assert sources == data.summary["val_sources"] and len(sources) == 8
    assert {s.split("/")[0] for s in sources} == {"drive", "stare", "chase_db1", "hrf"}
    assert all(
        s.mask is not None and s.image.shape[:2] == s.label.shape for s in data.val_photographs
    )


def test_photograph_validation_needs_a_split_by_source(tmp_path):
    from training.config import resolve_run_config
    from training.trainer import train

    overrides = ["train.validation=photographs", "dataset.val_split=random"]
    cfg = resolve_run_config("configs/demo.yaml", overrides)
    with pytest.raises(UserError, match="needs the validation split drawn by source"):
        train(cfg, tmp_path / "run", cache_dir=tmp_path / "cache")
    with pytest.raises(UserError, match="train.validation must be one of images, photographs"):
        resolve_run_config("configs/demo.yaml", ["train.validation=padded"])


def test_a_missing_init_weights_file_is_refused_before_the_data_are_read(tmp_path):
    from training.config import resolve_run_config
    from training.trainer import train

    cfg = resolve_run_config("configs/demo.yaml", ["train.init_weights=nope.keras"])
    with pytest.raises(UserError, match="weights file nope.keras does not exist"):
        train(cfg, tmp_path / "run", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()
