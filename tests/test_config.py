"""training.config: defaults, unknown keys, overrides, validation."""

from __future__ import annotations

import numpy as np
import pytest

from training.config import DEFAULT_CONFIG, resolve_run_config
from utils.config import load_config
from utils.errors import UserError

CONFIGS = [
    "configs/drive.yaml",
    "configs/stare.yaml",
    "configs/demo.yaml",
    "configs/chase_db1.yaml",
    "configs/hrf.yaml",
    "configs/folder.yaml",
    "configs/fundus.yaml",
    "configs/fundus_stage2.yaml",
]


@pytest.mark.parametrize("path", CONFIGS)
def test_shipped_configs_resolve(path):
    cfg = resolve_run_config(path)
    assert set(cfg) == set(DEFAULT_CONFIG)
    assert cfg["model"]["name"] == "sa_unetv2"
    # fundus.yaml starts from the DRIVE weights, fundus_stage2.yaml from fundus.yaml's checkpoint
    rates = {"configs/fundus.yaml": 2.5e-4, "configs/fundus_stage2.yaml": 6.25e-5}
    assert cfg["train"]["learning_rate"] == pytest.approx(rates.get(path, 1e-3))


def test_paper_settings():
    drive = resolve_run_config("configs/drive.yaml")["train"]
    stare = resolve_run_config("configs/stare.yaml")["train"]
    assert (drive["batch_size"], stare["batch_size"]) == (8, 2)
    assert drive["epochs"] == stare["epochs"] == 150
    assert drive["reduce_lr"] == {
        "monitor": "val_loss",
        "mode": "auto",
        "factor": 0.5,
        "patience": 10,
        "min_lr": 1e-6,
    }
    assert stare["reduce_lr"] == {
        "monitor": "val_loss",
        "mode": "auto",
        "factor": 0.5,
        "patience": 20,
        "min_lr": 1e-8,
    }
    assert (drive["early_stopping"]["patience"], stare["early_stopping"]["patience"]) == (20, 30)
    assert drive["checkpoint"]["monitor"] == "val_accuracy"


def test_overrides_and_types():
    cfg = resolve_run_config(
        "configs/drive.yaml",
        ["train.epochs=3", "train.learning_rate=5e-4", "dataset.val_split=random"],
    )
    assert cfg["train"]["epochs"] == 3
    assert cfg["train"]["learning_rate"] == pytest.approx(5e-4)
    assert cfg["dataset"]["val_split"] == "random"


@pytest.mark.parametrize(
    "override,match",
    [
        ("train.epoch=3", "'train.epoch' does not exist"),
        ("trainer.epochs=3", "'trainer.epochs' does not exist"),
        ("train.epochs=0", "positive integer"),
        ("train.mixed_precision=fp8", "mixed_precision"),
        ("evaluate.threshold=2", r"\[0, 1\]"),
        ("evaluate.chosen_threshold=-0.1", r"evaluate.chosen_threshold must be in \[0, 1\] or null"),
        ("evaluate.folded_threshold=1.5", r"evaluate.folded_threshold must be in \[0, 1\] or null"),
        ("train.epochs", "section.key=value"),
        ("model.name=resnet", "sa_unetv2, sa_unet, unet"),
        ("model.dropblock_rate=1.5", r"model.dropblock_rate must be in \[0, 1\)"),
        ("train.camera_augment=1.5", r"train.camera_augment must be a number in \[0, 1\]"),
        ("train.camera_augment=0.5", "works on training crops; set train.crop_size too"),
        ("train.camera_changes=studio", "train.camera_changes must be one of basic, clinic"),
        ("train.camera_changes=clinic", "set train.camera_augment above 0 too"),
    ],
)
def test_bad_overrides(override, match):
    with pytest.raises(ValueError, match=match):
        resolve_run_config("configs/drive.yaml", [override])


def test_unknown_key_in_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochz: 3\n")
    with pytest.raises(ValueError, match="'train.epochz' does not exist"):
        resolve_run_config(bad)
    with pytest.raises(ValueError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        load_config(tmp_path / "list.yaml")


def test_chase_db1_and_hrf_configs_name_their_datasets():
    chase = resolve_run_config("configs/chase_db1.yaml")
    hrf = resolve_run_config("configs/hrf.yaml")
    assert (chase["dataset"]["name"], hrf["dataset"]["name"]) == ("chase_db1", "hrf")
    assert hrf["dataset"]["downsample"] == 2  # half resolution, as bob.ip.binseg and lwnet
    assert (chase["train"]["batch_size"], hrf["train"]["batch_size"]) == (2, 1)


def test_fundus_stage2_changes_only_its_own_settings():
    """configs/fundus_stage2.yaml is configs/fundus.yaml but for what its header names: a copy
    that drifted (a new band, another validation split) would no longer be the second stage of
    the shipped fundus weights."""
    first = resolve_run_config("configs/fundus.yaml")
    second = resolve_run_config("configs/fundus_stage2.yaml")
    changed = {
        ("experiment", "name"): "fundus_stage2",
        ("dataset", "dataset_weights"): {"drive": 1, "stare": 2, "chase_db1": 2, "hrf": 1},
        ("train", "epochs"): 20,
        ("train", "learning_rate"): 6.25e-5,
        ("train", "init_weights"): "runs/fundus/best.keras",
    }
    for (section, key), value in changed.items():
        assert second[section][key] == value
        first[section][key] = value
    first["train"]["reduce_lr"]["patience"] = 2
    first["train"]["early_stopping"]["patience"] = 5
    assert second == first


def test_own_data_template_reads_a_chase_like_folder(tmp_path):
    from PIL import Image

    from data import load_dataset
    from data.synthetic import synthetic_sample

    for i in range(5):
        sample = synthetic_sample(64, 0, 0, i)
        Image.fromarray(sample.image).save(tmp_path / f"Image_0{i}L.jpg")
        Image.fromarray(sample.label * 255).save(tmp_path / f"Image_0{i}L_1stHO.png")
    cfg = resolve_run_config("configs/folder.yaml")
    cfg["dataset"]["data_root"] = str(tmp_path)
    dataset = load_dataset(cfg["dataset"])
    assert len(dataset.train) + len(dataset.test) == 5 and len(dataset.test) == 1
    assert set(np.unique(dataset.train[0].label)) <= {0, 1}


def test_model_names_match_the_builders():
    from models import BUILDERS
    from utils.checks import MODEL_NAMES

    assert tuple(BUILDERS) == MODEL_NAMES


# Run an entry point with Keras and TensorFlow made unimportable: what it refuses before choosing the
# backend it refuses with its own sentence (exit 2), in a fraction of a second, not after TF's import.
NO_KERAS = """
import runpy, sys
sys.path.insert(0, ".")
for name in ("keras", "tensorflow"):
    sys.modules[name] = None  # any import of these now fails
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train.py", "--config", "configs/demo.yaml", "--set", "train.epochz=2"], "'train.epochz' does not exist"),
        (["train.py", "--config", "nope.yaml"], "nope.yaml does not exist"),
        (["train.py", "--config", "configs/demo.yaml", "--set", "model.name=unet3"], "unknown model 'unet3'"),
        (["evaluate.py", "--config", "configs/demo.yaml", "--weights", "none.keras"], "none.keras does not exist"),
        (["evaluate.py", "--config", "configs/demo.yaml", "--weights", "README.md"], "Keras 3 '.keras' file"),
        (["predict.py", "--weights", "none.keras", "x.png"], "none.keras does not exist"),
        (["predict.py", "--weights", "weights/sa_unetv2_drive_interim.keras", "x.png"], "input x.png does not exist"),
        (["train.py", "--config", "configs/demo.yaml", "--stop-at", "noon"], "--stop-at takes HH:MM"),
        (["train.py", "--config", "configs/drive.yaml", "--data-root", "no_such_dir"], "data root no_such_dir does not exist"),
        (["evaluate.py", "--config", "configs/drive.yaml", "--weights", "weights/sa_unetv2_drive.keras",
          "--data-root", "no_such_dir"], "data root no_such_dir does not exist"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_before_keras_is_imported(args, message):
    from tests.helpers import run_python

    result = run_python(["-c", NO_KERAS, *args])
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_run_folder_mistakes_are_refused_before_keras_is_imported(tmp_path):
    from tests.helpers import run_python

    held = tmp_path / "held"
    held.mkdir()
    (held / "config.yaml").write_text("experiment: {name: x}\n")
    cases = [
        (["--out", str(held)], "already holds a run; pass --resume"),
        (["--out", str(tmp_path / "empty"), "--resume"], "holds no run to resume"),
    ]
    # Flags are checked before the run folder: a bad --stop-at is named even where --out holds a
    # run (a newcomer's runs/demo, left by the README's first command).
    cases.append((["--out", str(held), "--stop-at", "noon"], "--stop-at takes HH:MM"))
    for extra, message in cases:
        result = run_python(["-c", NO_KERAS, "train.py", "--config", "configs/demo.yaml", *extra])
        assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "empty").exists()  # a refused run leaves nothing behind


def test_stop_at_forms():
    from datetime import datetime, timedelta

    from utils.checks import parse_stop_at

    now = datetime(2026, 12, 1, 9, 30, 15).astimezone()
    assert parse_stop_at("+90m", now) == now + timedelta(minutes=90)
    assert parse_stop_at("+2.5h", now) == now + timedelta(hours=2.5)
    assert parse_stop_at("+30s", now) == now + timedelta(seconds=30)
    # HH:MM is its next occurrence: later today, or tomorrow once it has passed.
    assert parse_stop_at("11:55", now) == now.replace(hour=11, minute=55, second=0)
    assert parse_stop_at("06:00", now) == now.replace(hour=6, minute=0, second=0) + timedelta(
        days=1
    )
    assert parse_stop_at("2026-12-01T11:55", now) == now.replace(hour=11, minute=55, second=0)
    assert parse_stop_at("2026-12-02 00:10", now) == now.replace(day=2, hour=0, minute=10, second=0)
    offset = parse_stop_at("2026-12-01T12:00+00:00", now)
    assert offset == datetime.fromisoformat("2026-12-01T12:00+00:00")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("+0m", "must be positive"),
        ("25:00", "not a time of day"),
        ("9:75", "not a time of day"),
        ("2026-11-30T23:00", "already past"),
        ("+5d", "takes HH:MM"),
        ("tomorrow", "takes HH:MM"),
    ],
)
def test_stop_at_mistakes(text, message):
    from datetime import datetime

    from utils.checks import parse_stop_at
    from utils.errors import UserError

    with pytest.raises(UserError, match=message):
        parse_stop_at(text, datetime(2026, 12, 1, 9, 30).astimezone())


@pytest.mark.parametrize(
    "path,dataset,crossings,init",
    [
        ("configs/av_rite.yaml", "rite", False, "weights/sa_unetv2_drive.keras"),
        ("configs/av_hrf.yaml", "hrf_av", True, "weights/sa_unetv2_av.keras"),
        ("configs/av_demo.yaml", "synthetic_av", False, None),
    ],
)
def test_av_configs_train_the_av_network_on_class_maps(path, dataset, crossings, init):
    cfg = resolve_run_config(path)
    assert (cfg["model"]["name"], cfg["dataset"]["name"]) == ("sa_unetv2_av", dataset)
    assert cfg["train"]["av_ignore_crossings"] is crossings
    assert cfg["train"]["init_weights"] == init
    assert cfg["train"]["validation"] == "photographs"
    monitors = {cfg["train"][key]["monitor"] for key in ("checkpoint", "reduce_lr", "early_stopping")}
    assert monitors == {"val_f1"}


@pytest.mark.parametrize(
    "overrides,match",
    [
        (["model.name=sa_unetv2_av"], "dataset 'synthetic' holds vessel labels"),
        (["dataset.name=synthetic_av"], "train model sa_unetv2_av on it, not sa_unetv2"),
        (
            ["dataset.name=synthetic_av", "model.name=sa_unetv2_av"],  # demo monitors val_accuracy
            "train.checkpoint.monitor val_accuracy is not logged for sa_unetv2_av",
        ),
        (["train.av_ignore_crossings=1"], "must be true or false"),
    ],
)
def test_av_model_and_dataset_must_match(overrides, match):
    with pytest.raises(UserError, match=match):
        resolve_run_config("configs/demo.yaml", overrides)


def test_shipped_weights_by_kind(tmp_path):
    """utils.io.shipped_weights sorts weights/ into vessel and artery/vein networks by their yaml."""
    from utils.io import shipped_weights

    for stem, model in (("b_vessel", "sa_unetv2"), ("a_av", "sa_unetv2_av"), ("c_sa", "sa_unet")):
        (tmp_path / f"{stem}.keras").write_bytes(b"")
        (tmp_path / f"{stem}.yaml").write_text(f"model:\n  name: {model}\n", encoding="utf-8")
    (tmp_path / "d_bare.keras").write_bytes(b"")  # no yaml: a vessel network
    names = {kind: [p.stem for p in shipped_weights(tmp_path, kind)] for kind in ("vessel", "av")}
    assert names == {"vessel": ["b_vessel", "c_sa", "d_bare"], "av": ["a_av"]}
    with pytest.raises(ValueError, match="'vessel' or 'av'"):
        shipped_weights(tmp_path, "disc")
