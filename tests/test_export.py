"""Exports: ONNX, SavedModel (and TFLite) re-load and reproduce the Keras model; CLI errors exit 2."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from inference.export import FORMATS, export_model, parse_formats, run_onnx, run_savedmodel
from models import build_model
from tests.helpers import run_python
from utils.errors import UserError


@pytest.fixture(scope="module")
def small_model_file(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = build_model("sa_unetv2", start_neurons=8)
    path = tmp_path_factory.mktemp("weights") / "small.keras"
    model.save(path)
    return path


def test_onnx_and_savedmodel_round_trip(small_model_file, tmp_path):
    from models import load_model

    model = load_model(small_model_file)
    results = export_model(model, tmp_path / "out", ["onnx", "savedmodel"])
    assert [r["format"] for r in results] == ["onnx", "savedmodel"]
    assert all(r["status"] == "ok" and r["max_abs_diff"] < 1e-4 for r in results)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.onnx", "saved_model"]

    # Re-load independently of export_model, on a shape it did not check.
    images = np.random.default_rng(7).random((1, 48, 32, 3), dtype=np.float32)
    expected = model.predict_on_batch(images)
    for got in (
        run_onnx(tmp_path / "out" / "model.onnx", images),
        run_savedmodel(tmp_path / "out" / "saved_model", images),
    ):
        assert got.shape == (1, 48, 32, 1)
        assert np.max(np.abs(got - expected)) < 1e-4

    # A second export replaces the first in place.
    export_model(model, tmp_path / "out", ["savedmodel"])
    assert (tmp_path / "out" / "saved_model" / "saved_model.pb").is_file()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_parse_formats():
    assert parse_formats("all") == list(FORMATS)
    assert parse_formats("onnx, savedmodel") == ["onnx", "savedmodel"]
    with pytest.raises(UserError, match="unknown export format 'pt'"):
        parse_formats("onnx,pt")


def test_export_cli_tflite(small_model_file, tmp_path):
    result = run_python(
        [
            "export.py",
            "--weights",
            str(small_model_file),
            "--format",
            "tflite",
            "--out",
            str(tmp_path),
        ]
    )
    assert result.returncode == 0, result.stderr
    assert "tflite:" in result.stdout
    if "skipped" not in result.stdout:
        assert (tmp_path / "model.tflite").is_file()
        assert "max abs diff vs keras" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["export.py", "--weights", "missing.keras", "--format", "onnx", "--out", "x"],
            "does not exist",
        ),
        (
            ["export.py", "--weights", "missing.keras", "--format", "pt", "--out", "x"],
            "unknown export format",
        ),
        (["benchmarks/inference.py", "--engines", "fast"], "unknown engine 'fast'"),
        (["benchmarks/inference.py", "--runs", "3"], "--runs must be at least 10"),
    ],
)
def test_cli_user_errors_exit_2(args, message):
    result = run_python(args)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last


def test_benchmark_json_small():
    result = run_python(
        ["benchmarks/inference.py", "--json", "--size", "32", "--runs", "10", "--warmup", "1"]
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows[0]["engine"] == "keras"
    assert sum(row["default"] for row in rows) == 1
    for row in rows:
        assert row["median_s"] > 0 and row["min_s"] <= row["median_s"] <= row["max_s"]
        assert row["max_abs_diff_vs_keras"] < 1e-4
