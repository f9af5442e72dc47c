"""evaluate.py: reports, images, the DRIVE protocol, bad input; the demo's F1 (predict.py: test_predict.py)."""

from __future__ import annotations

import csv
import json
import os
import time

import numpy as np
import pytest
from PIL import Image

from metrics import METRIC_KEYS
from models import build_model
from tests.helpers import DRIVE_WEIGHTS, run_python


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """An untrained SA-UNetv2 saved as .keras (evaluation mechanics need no training)."""
    path = tmp_path_factory.mktemp("weights") / "random.keras"
    build_model("sa_unetv2").save(path)
    return path


@pytest.mark.slow
def test_evaluate_writes_the_report(tmp_path, random_weights):
    out = tmp_path / "eval"
    result = run_python(
        ["evaluate.py", "--config", "configs/demo.yaml", "--weights", str(random_weights), "--out", str(out),
         "--set", "dataset.n_test=3", "--set", "dataset.size=64"]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    for protocol in ("whole_image", "fov"):
        for stat in ("mean", "std", "pooled"):
            assert set(metrics[protocol][stat]) == set(METRIC_KEYS)
    assert len(metrics["per_image"]) == 3
    with (out / "per_image.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 and "whole_image_f1" in rows[0] and "fov_auc" in rows[0]
    report = (out / "results.md").read_text()
    assert "| whole image |" in report
    # The border tolerance (0, 1, 2 px; at 0 px the plain F1) and the threshold curve.
    tolerance = metrics["f1_with_tolerance"]
    assert [row["tolerance_px"] for row in tolerance] == [0, 1, 2]
    assert tolerance[0]["f1"] == pytest.approx(metrics["fov"]["mean"]["f1"])
    assert tolerance[0]["f1"] <= tolerance[1]["f1"] <= tolerance[2]["f1"]
    curve = metrics["fov_f1_by_threshold"]
    assert curve["f1"][curve["grid"].index(0.5)] == pytest.approx(metrics["fov"]["mean"]["f1"])
    assert "with a tolerance at the borders" in report and "FOV by threshold" in report
    for kind in ("prob", "binary", "overlay"):
        files = sorted((out / "images").glob(f"*_{kind}.png"))
        assert len(files) == 3
        assert Image.open(files[0]).size == (64, 64)
    assert "synthetic_test_000" in result.stdout


@pytest.mark.slow
def test_evaluate_scores_the_training_split_when_asked(tmp_path, random_weights):
    """--split train scores every training image (a choice made without the test images), in
    the title and the per-image rows; an unknown split is refused by name."""
    from data.readers import load_dataset
    from evaluate import main
    from inference.evaluation import split_samples
    from utils.errors import UserError

    out = tmp_path / "train"
    sets = ["--set", "dataset.n_train=2", "--set", "dataset.n_test=1", "--set", "dataset.size=64"]
    main(["--config", "configs/demo.yaml", "--weights", str(random_weights), "--out", str(out),
          "--split", "train", "--no-images", *sets])  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    names = [entry["name"] for entry in metrics["per_image"]]
    dataset = load_dataset({"name": "synthetic", "n_train": 2, "n_test": 1, "size": 64})
    assert names == [s.name for s in dataset.train] and len(names) == 2
    assert not set(names) & {s.name for s in dataset.test}
    assert "synthetic train (random.keras)" in (out / "results.md").read_text()
    with pytest.raises(UserError, match="split 'val' is not known; expected one of test, train"):
        split_samples(dataset, "val")


def test_evaluate_bad_input(tmp_path, random_weights):
    missing = run_python(
        ["evaluate.py", "--config", "configs/demo.yaml", "--weights", str(tmp_path / "none.keras")]
    )
    assert missing.returncode == 2 and "none.keras does not exist" in missing.stderr
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    bad = run_python(["evaluate.py", "--config", "configs/demo.yaml", "--weights", str(broken)])
    assert bad.returncode == 2 and "could not be loaded" in bad.stderr
    assert "damaged or truncated" in bad.stderr and "File not found" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    key = run_python(
        [
            "evaluate.py",
            "--config",
            "configs/demo.yaml",
            "--weights",
            str(random_weights),
            "--set",
            "evaluate.thresh=0.3",
        ]
    )
    assert key.returncode == 2 and "does not exist" in key.stderr


@pytest.mark.slow
def test_drive_protocol_on_real_data(real_data_root, tmp_path):
    """The shipped DRIVE weights on the 20 test images at 592 x 592, cropped back, with the second observer row.

    Trained weights, not random ones: an untrained network puts most pixels near the 0.5 threshold, where
    the engines' float32 rounding flips them, so thresholded scores would compare rounding, not engines.
    """
    out = tmp_path / "drive"
    start = time.perf_counter()
    result = run_python(
        ["evaluate.py", "--config", "configs/drive.yaml", "--weights", str(DRIVE_WEIGHTS), "--data-root",
         str(real_data_root), "--out", str(out)]
    )  # fmt: skip
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_images"] == 20 and metrics["fov_mask"] is True
    assert Image.open(out / "images" / "01_test_overlay.png").size == (565, 584)
    # The second human observer against the first, computed by the same code (docs/paper.md: F1 about 0.788).
    second = metrics["second_observer"]["whole_image"]["mean"]
    assert second["f1"] == pytest.approx(0.788, abs=0.01)
    assert second["acc"] == pytest.approx(
        0.9637, abs=0.01
    )  # 2nd observer accuracy, widely reported (FOV 0.947)
    # The paper's "about 1 s" CPU inference per image; the wall time is loose (CI runs tests two at a time).
    assert metrics["timing"]["seconds_per_image"] < 1.0, metrics["timing"]
    assert seconds < 300, f"DRIVE evaluation took {seconds:.0f} s"
    # The shipped weights score what their eval.json (and the README) says they score.
    published = json.loads(DRIVE_WEIGHTS.with_suffix(".eval.json").read_text())
    for protocol in ("whole_image", "fov"):
        for key in ("f1", "jaccard", "auc", "acc"):
            assert metrics[protocol]["mean"][key] == pytest.approx(
                published[protocol]["mean"][key], abs=5e-4
            )

    # The default (fast) engine and the plain Keras path give the same scores to three decimals.
    plain = run_python(
        ["evaluate.py", "--config", "configs/drive.yaml", "--weights", str(DRIVE_WEIGHTS), "--data-root",
         str(real_data_root), "--out", str(tmp_path / "keras"), "--engine", "keras", "--no-images"]
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr[-3000:]
    keras_metrics = json.loads((tmp_path / "keras" / "metrics.json").read_text())
    assert keras_metrics["timing"]["engine"] == "keras"
    for protocol in ("whole_image", "fov"):
        for key in ("f1", "auc", "acc"):
            fast, reference = metrics[protocol]["mean"][key], keras_metrics[protocol]["mean"][key]
            assert abs(fast - reference) < 5e-4, (protocol, key, fast, reference)


@pytest.mark.slow
def test_demo_trains_to_f1_070_within_10_minutes(tmp_path):
    """The README's main job, as the README runs it: train.py on the demo config, which ends by evaluating
    its best checkpoint (evaluate.weights: best) on the test images."""
    run = tmp_path / "demo"
    start = time.perf_counter()
    trained = run_python(
        ["train.py", "--config", "configs/demo.yaml", "--out", str(run), "--quiet"]
    )
    seconds = time.perf_counter() - start
    assert trained.returncode == 0, trained.stderr[-3000:]
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    f1 = metrics["whole_image"]["mean"]["f1"]
    assert f1 >= 0.70, f1
    assert f"{f1:.4f}" in trained.stdout  # the printed result is the saved one
    # Each line is said once (table rows aside: results.md repeats its header per table).
    said = [
        line for line in trained.stdout.splitlines() if line.strip() and not line.startswith("|")
    ]
    assert len(said) == len(set(said)), [line for line in said if said.count(line) > 1]
    assert len(list((run / "eval" / "images").glob("*_overlay.png"))) == 4
    assert seconds < 600, seconds


def test_tensorflow_log_lines_are_hidden_unless_asked(monkeypatch):
    """The entry points' TensorFlow import prints nothing; a user's own level is kept."""
    from utils.cli import quiet_tensorflow_logs

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.setenv("SAUNETV2_TF_LOGS", "1")
    quiet_tensorflow_logs()
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    monkeypatch.setenv("SAUNETV2_TF_LOGS", "0")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    quiet_tensorflow_logs()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    code = (
        "from utils.cli import quiet_tensorflow_logs; quiet_tensorflow_logs(); "
        "from training.backend import select_backend; select_backend('tensorflow'); "
        "import keras; keras.ops.convert_to_tensor([1.0]) + 1"
    )
    env = {"SAUNETV2_TF_LOGS": "0", "KERAS_BACKEND": "tensorflow"}
    result = run_python(["-c", code], env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.strip() == "", result.stderr[-2000:]


@pytest.mark.slow
def test_cross_dataset_hrf_leaves_out_unlabelled_test_images(tmp_path, random_weights):
    """configs/hrf.yaml on a fake HRF without 11_h, 12_h, 13_h's labels: 27 scored, a warning."""
    from tests.test_data_readers import _fake_hrf_files, _write_folder

    _write_folder(tmp_path / "data" / "HRF", _fake_hrf_files())
    for name in ("11_h", "12_h", "13_h"):
        (tmp_path / "data" / "HRF" / "manual1" / f"{name}.tif").unlink()
    out = tmp_path / "eval"
    result = run_python(
        ["evaluate.py", "--config", "configs/hrf.yaml", "--weights", str(random_weights),
         "--data-root", str(tmp_path / "data"), "--out", str(out), "--engine", "keras",
         "--no-images"]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "11_h, 12_h, 13_h" in result.stderr and "27 of 30 test images scored" in result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_images"] == 27
    assert not {"11_h", "12_h", "13_h"} & {entry["name"] for entry in metrics["per_image"]}


# ----------------------------------------------------------------------------- --predictions


def _demo_test_samples():
    from data import load_dataset
    from training.config import resolve_run_config

    cfg = resolve_run_config(
        "configs/demo.yaml", ["dataset.n_test=3", "dataset.size=64", "evaluate.save_images=true"]
    )
    return cfg, load_dataset(cfg["dataset"]).test


def _write_map(path, vessels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(vessels.astype("uint8") * 255).save(path)


def test_prediction_folder_scores_the_maps_as_written(tmp_path):
    """Maps equal to the labels score F1 1, an empty map 0, half the vessels the F1 of its counts;
    maps in sub-folders are found; no probability picture, AUC n/a."""
    import numpy as np

    from inference.evaluation import evaluate_prediction_folder

    cfg, samples = _demo_test_samples()
    first, second, third = samples
    maps = tmp_path / "predictions"
    _write_map(maps / f"{first.name}_binary.png", first.label)
    _write_map(maps / "sub" / f"{second.name}_binary.png", np.zeros_like(second.label))
    half = third.label.astype(bool) & (np.arange(third.label.shape[1])[None, :] % 2 == 0)
    _write_map(maps / f"{third.name}_binary.png", half)
    summary = evaluate_prediction_folder(cfg, maps, tmp_path / "eval", verbose=False)
    f1 = {entry["name"]: entry["whole_image"]["f1"] for entry in summary["per_image"]}
    hits, vessels = int(half.sum()), int(third.label.sum())
    assert 0 < hits < vessels
    assert f1 == pytest.approx(
        {first.name: 1.0, second.name: 0.0, third.name: 2 * hits / (hits + vessels)}
    )
    assert summary["threshold"] is None and summary["predictions"]["resampled_to_label_size"] == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["whole_image"]["mean"]["auc"] is None  # NaN written as null
    assert "Binary maps as written" in (tmp_path / "eval" / "results.md").read_text()
    # The calibre breakdown counts every labelled FOV pixel once and finds those of the maps.
    inside = [s.label.astype(bool).squeeze() & s.mask.astype(bool).squeeze() for s in samples]
    rows = metrics["sensitivity_by_calibre"]
    assert sum(row["labelled"] for row in rows) == sum(int(m.sum()) for m in inside)
    found = int(inside[0].sum()) + int((half.squeeze() & inside[2]).sum())
    assert sum(row["found"] for row in rows) == found
    report = (tmp_path / "eval" / "results.md").read_text()
    assert "Sensitivity by the calibre" in report
    # Binary maps: the border tolerance, but no threshold curve (nothing to threshold).
    assert metrics["f1_with_tolerance"][0]["f1"] == pytest.approx(metrics["fov"]["mean"]["f1"])
    assert "with a tolerance at the borders" in report and "by threshold" not in report
    assert "fov_f1_by_threshold" not in metrics
    written = sorted(p.name for p in (tmp_path / "eval" / "images").iterdir())
    kinds = ("binary", "overlay")
    assert written == sorted(f"{s.name}_{kind}.png" for s in samples for kind in kinds)


def test_prediction_folder_refuses_missing_doubled_and_foreign_maps(tmp_path):
    import numpy as np

    from inference.evaluation import evaluate_prediction_folder
    from utils.errors import UserError

    cfg, samples = _demo_test_samples()
    maps = tmp_path / "predictions"
    with pytest.raises(UserError, match="is not a folder"):
        evaluate_prediction_folder(cfg, maps, tmp_path / "eval", verbose=False)
    for sample in samples[:2]:
        _write_map(maps / f"{sample.name}_binary.png", sample.label)
    with pytest.raises(UserError, match=f"lacks the vessel maps of 1 of the 3 .*{samples[2].name}"):
        evaluate_prediction_folder(cfg, maps, tmp_path / "eval", verbose=False)
    _write_map(maps / f"{samples[2].name}_binary.png", samples[2].label)
    _write_map(maps / "again" / f"{samples[0].name}_binary.png", samples[0].label)
    with pytest.raises(UserError, match="more than once"):
        evaluate_prediction_folder(cfg, maps, tmp_path / "eval", verbose=False)
    (maps / "again" / f"{samples[0].name}_binary.png").unlink()
    _write_map(maps / f"{samples[1].name}_binary.png", np.zeros((64, 80), bool))
    with pytest.raises(UserError, match="another aspect ratio"):
        evaluate_prediction_folder(cfg, maps, tmp_path / "eval", verbose=False)
    assert not (tmp_path / "eval").exists()  # refused before anything is written


@pytest.mark.slow
def test_evaluate_predictions_cli_on_full_size_hrf_maps(tmp_path, random_weights):
    """HRF's labels are read at half size; predict.py's maps of the full-size photographs are
    brought to it (27 resampled, F1 1 for maps equal to the full-size labels); options that
    only apply to a model are refused in one sentence, as is --weights together with it."""
    from data.io import read_label
    from tests.test_data_readers import _fake_hrf_files, _write_folder

    hrf = _write_folder(tmp_path / "data" / "HRF", _fake_hrf_files())
    for name in ("11_h", "12_h", "13_h"):
        (hrf / "manual1" / f"{name}.tif").unlink()
    maps = tmp_path / "predictions"
    for label in (hrf / "manual1").iterdir():
        _write_map(maps / f"{label.stem}_binary.png", read_label(label))
    out = tmp_path / "eval"
    args = ["evaluate.py", "--config", "configs/hrf.yaml", "--data-root", str(tmp_path / "data")]
    result = run_python([*args, "--predictions", str(maps), "--out", str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "27 vessel maps scored (27 resampled to their label's size)" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_images"] == 27 and metrics["fov"]["mean"]["f1"] == pytest.approx(1.0)
    refused = run_python([*args, "--predictions", str(maps), "--threshold", "0.3", "--tta"])
    assert refused.returncode == 2
    assert "--threshold, --tta cannot apply to --predictions" in refused.stderr
    both = run_python([*args, "--predictions", str(maps), "--weights", str(random_weights)])
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def test_evaluate_tta_scores_the_mean_of_each_image_and_its_mirror(tmp_path, random_weights):
    """evaluate_checkpoint(mirror=True), as `--tta` runs it: each image's metrics are those of the
    mean of its map and its mirror image's map; metrics.json and results.md say so."""
    import numpy as np

    from data import load_dataset
    from data.geometry import pad_shape_for
    from inference.engines import make_predictor
    from inference.evaluation import evaluate_checkpoint
    from inference.segment import segment
    from metrics import image_metrics
    from training.config import resolve_run_config

    cfg = resolve_run_config(
        "configs/demo.yaml", ["dataset.n_test=2", "dataset.size=64", "evaluate.save_images=false"]
    )
    runs = {
        mirror: evaluate_checkpoint(cfg, random_weights, tmp_path / str(mirror), engine="keras", verbose=False, scale=1.0, mirror=mirror)
        for mirror in (False, True)
    }  # fmt: skip
    assert runs[True]["test_time_augmentation"] == "mirror" and runs[False]["test_time_augmentation"] is None
    saved = json.loads((tmp_path / "True" / "metrics.json").read_text())
    assert saved["test_time_augmentation"] == "mirror"
    assert "averaged with their mirror images (--tta)" in (tmp_path / "True" / "results.md").read_text()
    predictor = make_predictor(random_weights, "keras")
    dataset = load_dataset(cfg["dataset"])
    for sample, row in zip(dataset.test, runs[True]["per_image"], strict=True):
        pad = pad_shape_for(dataset.name, sample.image.shape[:2])
        plain = segment(predictor, sample.image, pad)
        mirrored = segment(predictor, np.ascontiguousarray(sample.image[:, ::-1]), pad)[:, ::-1]
        expected = image_metrics((plain + mirrored) / 2, sample.label, None, 0.5)
        assert row["whole_image"]["auc"] == pytest.approx(expected["auc"], abs=1e-4)
    assert runs[True]["per_image"][0]["whole_image"]["auc"] != runs[False]["per_image"][0]["whole_image"]["auc"]


def test_av_predictions_are_scored_by_both_protocols_and_painted(tmp_path):
    """One 4 x 6 image scored by hand. Reference row 0: artery, artery, vein, vein; a crossing
    below the first pixel. Predicted: vessels at the four row-0 pixels, artery at the first three.
    (a) artery F1 = 2 * 2 / (2 * 2 + 1) = 0.8, vein F1 = 2 * 1 / (2 * 1 + 1) = 2/3;
    (b) 3 of 4 typed pixels right, se 2/2, sp 1/2; vessel channel: 4 of 5 vessel pixels, F1 8/9."""
    from data.av import ARTERY, COLOURS, CROSSING, VEIN
    from data.samples import Sample
    from inference.evaluation import evaluate_av_predictions

    classes = np.zeros((4, 6), np.uint8)
    classes[0, :4] = [ARTERY, ARTERY, VEIN, VEIN]
    classes[1, 0] = CROSSING
    probs = np.full((4, 6, 3), 0.1, np.float32)
    probs[0, :4, 0] = 0.9
    probs[0, :3, 1], probs[0, 3, 2] = 0.8, 0.8
    sample = Sample("eye", np.full((4, 6, 3), 40, np.uint8), classes, np.ones((4, 6), bool))
    summary = evaluate_av_predictions([sample], [probs], tmp_path, 0.5, "made up", vote=False)
    seg, cls = (summary["av"][p]["mean"] for p in ("segmentation", "classification"))
    assert seg["f1_artery"] == pytest.approx(0.8) and seg["f1_vein"] == pytest.approx(2 / 3)
    assert seg["f1_mean"] == pytest.approx(11 / 15)
    assert (cls["acc"], cls["se"], cls["sp"]) == (0.75, 1.0, 0.5)
    assert summary["fov"]["mean"]["f1"] == pytest.approx(8 / 9)  # the vessel channel
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["av"]["per_image"][0]["segmentation"]["f1_mean"] == pytest.approx(11 / 15)
    assert "| mean over images | 0.8000 | 0.6667 | 0.7333 |" in (tmp_path / "results.md").read_text()
    painted = np.asarray(Image.open(tmp_path / "images" / "eye_av.png"))
    assert painted[0, 0].tolist() == COLOURS[ARTERY].tolist()
    assert painted[0, 3].tolist() == COLOURS[VEIN].tolist()
    assert painted[1, 0].tolist() == [40, 40, 40]  # predicted background keeps the photograph


def test_av_predictions_are_typed_by_segment_unless_told_otherwise(tmp_path):
    """The row of the test above is one vessel segment: voted, its mean (p_artery 0.625 against
    p_vein 0.275) types all four pixels artery: artery F1 2 * 2 / (2 * 2 + 2) = 2/3, vein F1 0;
    (b) both arteries right of the four typed pixels."""
    from data.av import ARTERY, VEIN
    from data.samples import Sample
    from inference.evaluation import evaluate_av_predictions

    classes = np.zeros((4, 6), np.uint8)
    classes[0, :4] = [ARTERY, ARTERY, VEIN, VEIN]
    probs = np.full((4, 6, 3), 0.1, np.float32)
    probs[0, :4, 0] = 0.9
    probs[0, :3, 1], probs[0, 3, 2] = 0.8, 0.8
    sample = Sample("eye", np.full((4, 6, 3), 40, np.uint8), classes, np.ones((4, 6), bool))
    summary = evaluate_av_predictions([sample], [probs], tmp_path, 0.5, "made up")
    seg, cls = (summary["av"][p]["mean"] for p in ("segmentation", "classification"))
    assert seg["f1_artery"] == pytest.approx(2 / 3) and seg["f1_vein"] == 0.0
    assert (cls["acc"], cls["se"], cls["sp"]) == (0.5, 1.0, 0.0)
    assert summary["av_vote"] == "segments"
    assert summary["av_pixels"]["segmentation"]["f1_mean"] == pytest.approx(11 / 15)  # as above
    assert summary["av_pixels"]["classification"]["acc"] == 0.75
    assert "Each pixel typed by itself instead (means over images): (a) A/V F1 0.7333" in (
        tmp_path / "results.md"
    ).read_text()
    assert "Each vessel segment between junctions was typed as a whole" in (
        tmp_path / "results.md"
    ).read_text()
    pixels = evaluate_av_predictions([sample], [probs], tmp_path / "p", 0.5, "made up", vote=False)
    assert pixels["av_vote"] == "pixels" and "av_pixels" not in pixels
    assert "Each pixel was typed by itself" in (tmp_path / "p" / "results.md").read_text()


def test_an_av_network_needs_av_labels_and_no_vessel_scale():
    from inference.evaluation import check_av_evaluation
    from utils.errors import UserError

    check_av_evaluation(True, "rite", "auto", "w.keras")
    check_av_evaluation(False, "drive", "vessels", "w.keras")
    with pytest.raises(UserError, match="dataset 'drive' has no artery/vein labels"):
        check_av_evaluation(True, "drive", "auto", "w.keras")
    with pytest.raises(UserError, match="--scale vessels works with vessel networks"):
        check_av_evaluation(True, "rite", "vessels", "w.keras")
