"""compare.py: labels, the side-by-side report, user errors before Keras, end to end on the demo set."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from compare import compare_summaries, format_report, model_labels
from metrics import summarize, summarize_av
from tests.helpers import run_python
from utils.errors import UserError

# compare.py with Keras and TensorFlow unimportable: its own mistakes are refused before them.
NO_KERAS = """
import runpy, sys
sys.path.insert(0, ".")
for name in ("keras", "tensorflow"):
    sys.modules[name] = None
sys.argv = ["compare.py"] + sys.argv[1:]
runpy.run_path("compare.py", run_name="__main__")
"""


def _summary(seed: int, names=("im1", "im2", "im3", "im4")):
    """metrics.summarize of random 8 x 8 probabilities against one fixed set of labels."""
    labels = [np.random.default_rng(100 + i).random((8, 8)) > 0.7 for i in range(len(names))]
    rng = np.random.default_rng(seed)
    probs = [np.clip(label * 0.6 + rng.random((8, 8)) * 0.5, 0, 1) for label in labels]
    return summarize(probs, labels, names=list(names))


def test_model_labels_are_short_and_unique(tmp_path):
    paths = [tmp_path / "a" / "best.keras", tmp_path / "b" / "best.keras", tmp_path / "w.keras"]
    assert model_labels(paths) == ["a_best", "b_best", "w"]
    same = tmp_path / "w.keras"
    assert model_labels([same, same]) == [f"{tmp_path.name}_w_1", f"{tmp_path.name}_w_2"]


def test_report_puts_the_per_image_scores_side_by_side():
    a, b, c = _summary(1), _summary(2), _summary(3)
    result = compare_summaries(["base", "other", "third"], [a, b, c], resamples=200)
    assert result["images"] == ["im1", "im2", "im3", "im4"]
    assert [m["key"] for m in result["models"]] == ["A", "B", "C"]
    f1_b = [entry["whole_image"]["f1"] for entry in b["per_image"]]
    assert result["per_image"]["other"]["f1"] == f1_b
    assert [(c["model"], c["metric"]) for c in result["comparisons"]] == [
        ("other", "f1"), ("other", "jaccard"), ("third", "f1"), ("third", "jaccard"),
    ]  # fmt: skip
    first = result["comparisons"][0]
    f1_a = [entry["whole_image"]["f1"] for entry in a["per_image"]]
    assert first["mean_diff"] == pytest.approx(np.mean(f1_b) - np.mean(f1_a))
    assert first["ci_low"] <= first["mean_diff"] <= first["ci_high"]
    report = format_report(result)
    row = next(line for line in report.splitlines() if line.startswith("| im2 |"))
    assert f"{f1_a[1]:.4f} | {f1_b[1]:.4f}" in row
    assert "| B | F1 |" in report and "| C | Jaccard |" in report
    # Scored inside the FOV instead: the same structure from the other protocol's numbers.
    fov = compare_summaries(["base", "other"], [a, b], protocol="fov", resamples=50)
    assert fov["protocol"] == "fov" and len(fov["comparisons"]) == 2


def _av_summary(seed: int, names=("im1", "im2", "im3", "im4")):
    """What evaluate.py reports for an artery/vein network: a vessel summary with "av"
    (`metrics.summarize_av`) of random (8, 8, 3) probabilities against fixed class maps."""
    rng = np.random.default_rng(seed)
    classes = [np.random.default_rng(200 + i).integers(0, 3, (8, 8)) for i in range(len(names))]
    probs = [rng.random((8, 8, 3)) for _ in names]
    summary = _summary(seed, names)
    summary["av"] = summarize_av(probs, classes, names=list(names))
    return summary


def test_artery_vein_networks_are_compared_on_av_f1_and_accuracy():
    a, b = _av_summary(1), _av_summary(2)
    result = compare_summaries(["rite", "hrf"], [a, b], resamples=200)
    assert result["protocol"] == "artery_vein" and result["metrics"] == ["f1_mean", "acc"]
    f1_b = [entry["segmentation"]["f1_mean"] for entry in b["av"]["per_image"]]
    acc_a = [entry["classification"]["acc"] for entry in a["av"]["per_image"]]
    assert result["per_image"]["hrf"]["f1_mean"] == f1_b
    assert result["per_image"]["rite"]["acc"] == acc_a
    assert result["models"][1]["mean"] == {
        "f1_mean": pytest.approx(np.mean(f1_b)),
        "acc": b["av"]["classification"]["mean"]["acc"],
    }
    assert [(c["model"], c["metric"]) for c in result["comparisons"]] == [
        ("hrf", "f1_mean"), ("hrf", "acc"),
    ]  # fmt: skip
    accuracy = result["comparisons"][1]
    assert accuracy["mean_a"] == pytest.approx(np.mean(acc_a))
    report = format_report(result)
    assert "| B | A/V F1 |" in report and "| B | A/V accuracy |" in report
    assert "protocol (a)" in report.splitlines()[0]
    row = next(line for line in report.splitlines() if line.startswith("| im3 |"))
    assert f"| {f1_b[2]:.4f} |" in row


def test_a_vessel_network_and_an_av_network_are_not_compared():
    with pytest.raises(UserError, match="compare each kind with its own kind"):
        compare_summaries(["vessels", "av"], [_summary(1), _av_summary(2)])


def test_models_scored_on_other_images_are_refused():
    with pytest.raises(UserError, match="other test images"):
        compare_summaries(["a", "b"], [_summary(1), _summary(2, names=("x", "y", "z", "w"))])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["weights/sa_unetv2_drive.keras", "--config", "configs/demo.yaml"], "at least two weights files"),
        (["weights/sa_unetv2_drive.keras", "none.keras", "--config", "configs/demo.yaml"], "none.keras does not exist"),
        (["weights/sa_unetv2_drive.keras", "README.md", "--config", "configs/demo.yaml"], "'.keras' file"),
        (["weights/sa_unetv2_drive.keras", "weights/sa_unetv2_drive.keras", "--config", "configs/demo.yaml",
          "--resamples", "0"], "--resamples must be"),
        (["weights/sa_unetv2_drive.keras", "weights/sa_unetv2_drive.keras", "--config", "configs/drive.yaml",
          "--data-root", "no_such_dir"], "data root no_such_dir does not exist"),
    ],
)  # fmt: skip
def test_user_errors_before_keras(args, message):
    result = run_python(["-c", NO_KERAS, *args])
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.slow
def test_compare_end_to_end_on_the_demo_set(tmp_path):
    import keras

    from models import build_model

    paths = []
    for seed, name in ((0, "sa_unetv2"), (1, "attention_unet")):
        keras.utils.set_random_seed(seed)
        paths.append(tmp_path / f"{name}.keras")
        build_model(name, start_neurons=8).save(paths[-1])
    out = tmp_path / "compare"
    result = run_python(
        ["compare.py", *map(str, paths), "--config", "configs/demo.yaml", "--out", str(out),
         "--set", "dataset.n_test=3", "--set", "dataset.size=64", "--resamples", "1000"]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((out / "compare.json").read_text())
    assert saved["dataset"] == "synthetic" and saved["protocol"] == "whole_image"
    assert saved["images"] == ["synthetic_test_000", "synthetic_test_001", "synthetic_test_002"]
    assert [m["label"] for m in saved["models"]] == ["sa_unetv2", "attention_unet"]
    assert [c["metric"] for c in saved["comparisons"]] == ["f1", "jaccard"]
    assert all(
        c["resamples"] == 1000 and 0.0 <= c["p_wilcoxon"] <= 1.0 for c in saved["comparisons"]
    )
    # The per-image scores are those of the evaluate protocol's own report for each model.
    for model in saved["models"]:
        with (out / model["label"] / "per_image.csv").open() as handle:
            f1 = [float(row["whole_image_f1"]) for row in csv.DictReader(handle)]
        assert saved["per_image"][model["label"]]["f1"] == pytest.approx(f1, abs=1e-6)
        assert not (out / model["label"] / "images").exists()
    assert (out / "compare.png").stat().st_size > 10_000
    assert "| B | F1 |" in result.stdout and "| synthetic_test_001 |" in result.stdout
    assert (out / "compare.md").read_text().startswith("# Comparison on synthetic test")


@pytest.mark.slow
def test_compare_two_av_networks_end_to_end_and_refuse_a_vessel_network(tmp_path):
    """Two random artery/vein networks on the synthetic A/V set: A/V F1 and accuracy per image,
    as evaluate.py's report of each gives them; a vessel network beside them is refused at once."""
    import keras

    from models import build_model

    paths = []
    for seed in (0, 1):
        keras.utils.set_random_seed(seed)
        paths.append(tmp_path / f"av{seed}.keras")
        build_model("sa_unetv2_av", start_neurons=8).save(paths[-1])
    out = tmp_path / "compare"
    common = ["--config", "configs/av_demo.yaml", "--set", "dataset.n_test=2",
              "--set", "dataset.size=64", "--resamples", "500"]  # fmt: skip
    result = run_python(["compare.py", *map(str, paths), "--out", str(out), *common])
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((out / "compare.json").read_text())
    assert saved["protocol"] == "artery_vein" and saved["dataset"] == "synthetic_av"
    assert [c["metric"] for c in saved["comparisons"]] == ["f1_mean", "acc"]
    for model in saved["models"]:
        metrics = json.loads((out / model["label"] / "metrics.json").read_text())
        per_image = metrics["av"]["per_image"]
        assert saved["per_image"][model["label"]]["acc"] == pytest.approx(
            [entry["classification"]["acc"] for entry in per_image]
        )
    assert "| B | A/V F1 |" in result.stdout and "| synthetic_av_test_001 |" in result.stdout

    keras.utils.set_random_seed(2)
    vessel = tmp_path / "vessel.keras"
    build_model("sa_unetv2", start_neurons=8).save(vessel)
    mixed = run_python(["compare.py", str(paths[0]), str(vessel), "--out", str(tmp_path / "m"), *common])
    assert mixed.returncode == 2
    # One sentence, the last line (TensorFlow may log its own lines at import before it).
    assert mixed.stderr.strip().splitlines()[-1].startswith("error: "), mixed.stderr
    assert "compare each kind with its own kind" in mixed.stderr.strip().splitlines()[-1]
    assert [line.startswith("error: ") for line in mixed.stderr.splitlines()].count(True) == 1
    assert not (tmp_path / "m").exists()
