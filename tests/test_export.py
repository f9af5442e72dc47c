"""Exports: ONNX, SavedModel (and TFLite) re-load and reproduce the Keras model; CLI errors exit 2."""

from __future__ import annotations

import importlib.util
import json

import keras
import numpy as np
import pytest

from inference.engines import resolve_engine
from inference.export import FORMATS, export_model, parse_formats, run_onnx, run_savedmodel
from models import build_model
from tests.helpers import ROOT, run_python
from utils.cli import run_cli
from utils.errors import UserError


@pytest.fixture(scope="module")
def small_model_file(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = build_model("sa_unetv2", start_neurons=8)
    path = tmp_path_factory.mktemp("weights") / "small.keras"
    model.save(path)
    return path


@pytest.mark.slow
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


def load_benchmark():
    """benchmarks/inference.py as a module (its name clashes with the inference package)."""
    path = ROOT / "benchmarks" / "inference.py"
    spec = importlib.util.spec_from_file_location("benchmark_inference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tflite_export_or_clear_skip(small_model_file, tmp_path):
    from models import load_model

    (result,) = export_model(load_model(small_model_file), tmp_path, ["tflite"])
    if result["status"] == "ok":
        assert (tmp_path / "model.tflite").is_file() and result["max_abs_diff"] < 1e-4
    else:
        assert result["status"].startswith("skipped: ")


def test_export_cli_missing_weights_exits_2(tmp_path):
    result = run_python(
        ["export.py", "--weights", str(tmp_path / "missing.keras"), "--out", str(tmp_path)]
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: weights file")
    assert "does not exist" in result.stderr


def test_export_cli_writes_and_reports(small_model_file, tmp_path, capsys):
    import export

    assert (
        run_cli(
            export.main,
            ["--weights", str(small_model_file), "--format", "onnx", "--out", str(tmp_path)],
        )
        == 0
    )
    assert "onnx:" in capsys.readouterr().out and (tmp_path / "model.onnx").is_file()


@pytest.mark.parametrize(
    "entry, args, message",
    [
        (
            "export",
            ["--weights", "w.keras", "--format", "pt", "--out", "x"],
            "unknown export format",
        ),
        ("benchmark", ["--engines", "fast"], "unknown engine 'fast'"),
        ("benchmark", ["--runs", "3"], "--runs must be at least 10"),
        ("benchmark", ["--size", "60"], "multiple of 8"),
    ],
)
def test_cli_user_errors(entry, args, message, capsys):
    if entry == "export":
        import export

        main = export.main
    else:
        main = load_benchmark().main
    assert run_cli(main, args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


def test_benchmark_json_small(capsys):
    args = ["--json", "--size", "32", "--runs", "10", "--warmup", "1"]
    assert run_cli(load_benchmark().main, args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["engine"] == "keras"
    assert [row["engine"] for row in rows if row["default"]] == [resolve_engine("auto")]
    for row in rows:
        assert row["median_s"] > 0 and row["min_s"] <= row["median_s"] <= row["max_s"]
        assert row["max_abs_diff_vs_keras"] < 1e-4
