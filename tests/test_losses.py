"""Tests of losses.py: reference values, safe gradients on every backend, Keras integration."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from losses import BceMccLoss, bce_mcc_loss, binary_crossentropy, soft_mcc

ROOT = Path(__file__).resolve().parents[1]


def reference_terms(y, p):
    """float64 NumPy reference of (BCE, soft MCC) exactly as docs/paper.md section 4 writes them."""
    y = np.asarray(y, np.float64)
    p = np.asarray(p, np.float64)
    bce = -np.mean(y * np.log(np.clip(p, 1e-7, 1)) + (1 - y) * np.log(np.clip(1 - p, 1e-7, 1)))
    tp = np.sum(p * y)
    tn = np.sum((1 - p) * (1 - y))
    fp = np.sum(p * (1 - y))
    fn = np.sum((1 - p) * y)
    product = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    mcc = (tp * tn - fp * fn) / np.sqrt(product) if product > 0 else np.nan
    return bce, mcc


def random_batch(seed, shape=(2, 16, 16, 1), vessel_fraction=0.15):
    rng = np.random.default_rng(seed)
    y = (rng.random(shape) < vessel_fraction).astype("float32")
    p = rng.random(shape).astype("float32")
    return y, p


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_float64_reference(seed):
    y, p = random_batch(seed)
    p[0, 0, :4, 0] = [0.0, 1.0, 0.0, 1.0]  # exact 0 and 1 exercise the BCE clipping
    bce, mcc = reference_terms(y, p)
    np.testing.assert_allclose(float(binary_crossentropy(y, p)), bce, rtol=1e-5)
    np.testing.assert_allclose(float(soft_mcc(y, p)), mcc, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(bce_mcc_loss(y, p)), 0.5 * bce + 0.5 * (1 - mcc), rtol=1e-5)


def test_matches_reference_on_a_realistic_size_batch():
    # 8 DRIVE-sized crops: large soft counts, where float32 sums could drift.
    y, p = random_batch(3, shape=(8, 256, 256, 1), vessel_fraction=0.12)
    p = np.clip(0.7 * y + 0.3 * p, 0, 1).astype("float32")  # informative predictions
    bce, mcc = reference_terms(y, p)
    assert 0.3 < mcc < 0.9
    np.testing.assert_allclose(float(soft_mcc(y, p)), mcc, rtol=1e-5)
    np.testing.assert_allclose(float(bce_mcc_loss(y, p)), 0.5 * bce + 0.5 * (1 - mcc), rtol=1e-5)


def test_perfect_and_inverted_predictions():
    y, _ = random_batch(4)
    assert float(soft_mcc(y, y)) == pytest.approx(1.0, abs=1e-6)
    # only the clipped BCE remains: 0.5 * -log(1 - 1e-7) ~ 5e-8
    assert 0.0 <= float(bce_mcc_loss(y, y)) < 1e-6
    assert float(soft_mcc(y, 1 - y)) == pytest.approx(-1.0, abs=1e-6)
    # BCE of a confidently wrong pixel is -log(1e-7) = 16.118
    assert float(bce_mcc_loss(y, 1 - y)) == pytest.approx(0.5 * 16.1181 + 0.5 * 2.0, rel=1e-4)


@pytest.mark.parametrize("fill", [0.0, 1.0], ids=["all_background", "all_vessel"])
def test_single_class_batch_has_mcc_zero(fill):
    _, p = random_batch(5)
    y = np.full_like(p, fill)
    bce, _ = reference_terms(y, p)
    assert float(soft_mcc(y, p)) == 0.0
    np.testing.assert_allclose(float(bce_mcc_loss(y, p)), 0.5 * bce + 0.5, rtol=1e-5)


def test_weights_are_configurable():
    y, p = random_batch(6)
    bce, mcc = reference_terms(y, p)
    np.testing.assert_allclose(float(bce_mcc_loss(y, p, 1.0, 0.0)), bce, rtol=1e-5)
    np.testing.assert_allclose(float(bce_mcc_loss(y, p, 0.0, 1.0)), 1 - mcc, rtol=1e-5)
    loss = BceMccLoss(bce_weight=0.3, mcc_weight=0.7)
    np.testing.assert_allclose(float(loss(y, p)), 0.3 * bce + 0.7 * (1 - mcc), rtol=1e-5)


def test_bfloat16_predictions_are_computed_in_float32():
    y, p = random_batch(7)
    p16 = keras.ops.cast(p, "bfloat16")
    value = bce_mcc_loss(y, p16)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    p_rounded = keras.ops.convert_to_numpy(keras.ops.cast(p16, "float32"))
    bce, mcc = reference_terms(y, p_rounded)
    np.testing.assert_allclose(float(value), 0.5 * bce + 0.5 * (1 - mcc), rtol=1e-5)


def test_get_config_round_trip():
    loss = BceMccLoss(bce_weight=0.25, mcc_weight=0.75)
    config = loss.get_config()
    assert config["bce_weight"] == 0.25 and config["mcc_weight"] == 0.75
    clone = BceMccLoss.from_config(config)
    assert (clone.bce_weight, clone.mcc_weight, clone.name) == (0.25, 0.75, loss.name)
    serialized = keras.saving.serialize_keras_object(loss)
    restored = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(restored, BceMccLoss)
    y, p = random_batch(8)
    np.testing.assert_allclose(float(restored(y, p)), float(loss(y, p)), rtol=1e-6)


def test_compiled_fit_step_and_saved_model(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    outputs = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=BceMccLoss())
    rng = np.random.default_rng(9)
    x = rng.random((4, 16, 16, 3)).astype("float32")
    y = (rng.random((4, 16, 16, 1)) < 0.2).astype("float32")
    y[2:] = 0.0  # the second batch has no vessel pixel: the notebook's NaN case
    history = model.fit(x, y, batch_size=2, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())

    path = tmp_path / "tiny.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.loss, BceMccLoss)


# Value and gradient of bce_mcc_loss under one backend, run in a fresh interpreter
# because the Keras backend is fixed at import time.
_GRAD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    import keras
    from losses import bce_mcc_loss

    def value_and_grad(y, p):
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf
            var = tf.Variable(p)
            with tf.GradientTape() as tape:
                value = bce_mcc_loss(tf.constant(y), var)
            grad = tape.gradient(value, var)
        elif backend == "jax":
            import jax
            value, grad = jax.value_and_grad(lambda q: bce_mcc_loss(y, q))(p)
        else:
            import torch
            var = torch.tensor(p, requires_grad=True)
            value = bce_mcc_loss(torch.tensor(y), var)
            value.backward()
            grad = var.grad
        return float(value), np.asarray(keras.ops.convert_to_numpy(grad), np.float64)

    cases = json.loads(sys.stdin.read())
    out = {"backend": keras.backend.backend()}
    for name, (y, p) in cases.items():
        value, grad = value_and_grad(np.array(y, np.float32), np.array(p, np.float32))
        out[name] = {"value": value, "grad": grad.tolist()}
    print(json.dumps(out))
    """
)


def _grad_cases():
    rng = np.random.default_rng(10)
    shape = (2, 4, 4, 1)
    p = rng.uniform(0.05, 0.95, shape)
    y_mixed = (rng.random(shape) < 0.3).astype(float)
    y_mixed[0, 0, 0, 0], y_mixed[0, 0, 1, 0] = 1.0, 0.0
    return {
        "all_background": (np.zeros(shape), p),
        "all_vessel": (np.ones(shape), p),
        "all_background_perfect": (np.zeros(shape), np.zeros(shape)),
        "mixed": (y_mixed, p),
    }


def _reference_loss(y, p):
    bce, mcc = reference_terms(y, p)
    return 0.5 * bce + 0.5 * (1 - (0.0 if np.isnan(mcc) else mcc))


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_finite_value_and_gradient_on_every_backend(backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    cases = _grad_cases()
    payload = json.dumps({k: (y.tolist(), p.tolist()) for k, (y, p) in cases.items()})
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, "-c", _GRAD_SCRIPT, str(ROOT)],
        input=payload,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["backend"] == backend

    for name, (y, p) in cases.items():
        value, grad = out[name]["value"], np.array(out[name]["grad"])
        assert np.isfinite(value), name
        assert np.all(np.isfinite(grad)), name
        np.testing.assert_allclose(value, _reference_loss(y, p), rtol=1e-5, err_msg=name)

    # On a normal batch the gradient is the true one: compare with float64 central differences.
    y, p = cases["mixed"]
    grad = np.array(out["mixed"]["grad"])
    step = 1e-6
    for index in [(0, 0, 0, 0), (0, 0, 1, 0), (1, 3, 2, 0)]:
        up, down = p.copy(), p.copy()
        up[index] += step
        down[index] -= step
        numeric = (_reference_loss(y, up) - _reference_loss(y, down)) / (2 * step)
        np.testing.assert_allclose(grad[index], numeric, rtol=1e-3, atol=1e-6)
