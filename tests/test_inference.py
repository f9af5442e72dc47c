"""Inference engines: every engine matches the plain Keras path; "auto" never changes predictions."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from inference import engines
from inference.engines import (
    AUTO_ORDER,
    ENGINES,
    KerasPredictor,
    available_engines,
    make_predictor,
    resolve_engine,
)
from models import MODEL_NAMES, build_model
from tests.helpers import run_python
from utils.errors import UserError

SHAPES = [(2, 64, 64), (1, 64, 96)]  # square with batch 2, and non-square


def randomize_group_norms(model, seed=1):
    """Non-trivial GroupNorm scale/offset, so a channel-order mistake shows."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.GroupNormalization):
            layer.gamma.assign(rng.normal(1.0, 0.3, layer.gamma.shape))
            layer.beta.assign(rng.normal(0.0, 0.3, layer.beta.shape))
    return model


@pytest.fixture(scope="module", params=MODEL_NAMES)
def model(request):
    keras.utils.set_random_seed(0)
    return randomize_group_norms(build_model(request.param))


@pytest.mark.parametrize("engine", [e for e in ENGINES if e != "keras"])
def test_engine_matches_keras(model, engine):
    if engine not in available_engines():
        pytest.skip(f"engine {engine} is not installed here")
    predictor = make_predictor(model, engine)
    reference = make_predictor(model, "keras")
    assert predictor.name == engine
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        images = rng.random((*shape, 3), dtype=np.float32)
        got = predictor.predict(images)
        expected = reference.predict(images)
        out = int(model.outputs[0].shape[-1])  # 3 for the A/V network
        assert got.shape == (*shape, out) and got.dtype == np.float32
        assert np.max(np.abs(got - expected)) < 1e-4, (engine, shape)


def test_conv_transpose_padding_matches_keras():
    """Keras 'same' stride-2 k3 transposed conv puts its extra row/column at the end."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((None, None, 2))
    outputs = keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same")(inputs)
    model = keras.Model(inputs, outputs)
    if "onnxruntime" not in available_engines():
        pytest.skip("onnxruntime is not installed here")
    images = np.random.default_rng(0).random((1, 8, 16, 2), dtype=np.float32)
    # Channels 3 would fail check_images' C == input channels, so call the session directly.
    got = make_predictor(model, "onnxruntime").session.run(None, {"image": images})[0]
    np.testing.assert_allclose(got, model.predict_on_batch(images), atol=1e-5)


def test_auto_is_first_available_and_matches_keras():
    keras.utils.set_random_seed(0)
    model = build_model("sa_unetv2", start_neurons=8)
    predictor = make_predictor(model)
    assert predictor.name == resolve_engine("auto")
    assert predictor.name == next(e for e in AUTO_ORDER if e in available_engines())
    images = np.random.default_rng(5).random((1, 32, 40, 3), dtype=np.float32)
    expected = make_predictor(model, "keras").predict(images)
    assert np.max(np.abs(predictor.predict(images) - expected)) < 1e-4


def test_auto_falls_back_when_an_engine_differs(monkeypatch, capsys):
    class Wrong(KerasPredictor):
        name = "wrong"

        def _run(self, images):
            return super()._run(images) + 0.01

    real_build = engines._build

    def build(engine, model, threads):
        if engine != "keras":
            return Wrong(model, 3)
        return real_build(engine, model, threads)

    monkeypatch.setattr(engines, "_build", build)
    keras.utils.set_random_seed(0)
    predictor = make_predictor(build_model("sa_unetv2", start_neurons=8))
    assert predictor.name == "keras"
    if len(available_engines()) > 1:
        assert "differs from keras" in capsys.readouterr().err


def test_make_predictor_from_keras_file(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_model("sa_unetv2", start_neurons=8)
    path = tmp_path / "small.keras"
    model.save(path)
    images = np.random.default_rng(1).random((1, 16, 24, 3), dtype=np.float32)
    got = make_predictor(path, "keras").predict(images)
    np.testing.assert_allclose(got, model.predict_on_batch(images), atol=1e-6)


def test_user_errors(tmp_path):
    model = build_model("sa_unetv2", start_neurons=8)
    with pytest.raises(UserError, match="unknown engine 'fast'"):
        make_predictor(model, "fast")
    with pytest.raises(UserError, match="does not exist"):
        make_predictor(tmp_path / "missing.keras")
    predictor = make_predictor(model, "keras")
    with pytest.raises(UserError, match="multiples of 8"):
        predictor.predict(np.zeros((1, 60, 64, 3), np.float32))
    with pytest.raises(UserError, match=r"\(B, H, W, 3\)"):
        predictor.predict(np.zeros((64, 64, 3), np.float32))


def test_float64_copy_is_float64_with_the_same_weights():
    from inference.precision import float64_copy

    keras.utils.set_random_seed(0)
    model = randomize_group_norms(build_model("sa_unetv2", start_neurons=8))
    exact = float64_copy(model)
    assert {v.dtype for v in exact.weights} == {"float64"}
    images = np.random.default_rng(3).random((1, 32, 48, 3))
    p64 = np.asarray(exact.predict_on_batch(images))
    assert p64.dtype == np.float64
    p32 = model.predict_on_batch(images.astype(np.float32))
    assert np.max(np.abs(p64 - p32)) < 1e-4


@pytest.mark.slow
def test_precision_benchmark_json():
    """benchmarks/precision.py on two synthetic test images: every engine near float64."""
    result = run_python(
        ["benchmarks/precision.py", "--dataset", "synthetic", "--limit", "2", "--json"]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["images"] == 2 and report["shape"] == [96, 96]
    rows = {r["engine"]: r for r in report["engines"]}
    assert set(rows) == set(available_engines())
    for name, row in rows.items():
        assert row["vs_float64"] < 1e-3 and row["vs_keras_batch2"] < 1e-3, (name, row)
    assert rows["keras"]["vs_keras_batch1"] == 0.0
    if "tf_group_mean_relative_error" in report:
        assert report["tf_group_mean_relative_error"]["batch2"] < 1e-6


@pytest.mark.slow
def test_default_engine_is_exact_on_real_drive_images(real_data_root):
    """Two DRIVE test images at 592 x 592: the default engine within 1e-4 of float64 and of
    the Keras path at batch 2 (the plain path at batch 1 has TensorFlow's GroupNorm-mean
    error: docs/inference.md)."""
    from data.geometry import pad_to
    from data.io import to_unit_float
    from data.readers import load_dataset
    from inference.precision import compare_engines

    dataset = load_dataset({"name": "drive", "data_root": str(real_data_root)})
    images = [pad_to(to_unit_float(s.image), dataset.pad_shape) for s in dataset.test[:2]]
    keras.utils.set_random_seed(0)
    model = randomize_group_norms(build_model("sa_unetv2"))
    default = resolve_engine("auto")
    (row,) = compare_engines(model, [default], images)
    assert row["vs_float64"] < 1e-4 and row["vs_keras_batch2"] < 1e-4, row
    assert row["flips"] == 0, row
