"""Tests of losses.py: reference values, safe gradients on every backend, Keras integration,
and the artery/vein loss on hand-computed class maps."""

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

from data.av import ARTERY, BACKGROUND, CROSSING, UNCERTAIN, VEIN
from losses import (
    AvBceMccLoss,
    BceMccLoss,
    av_bce_mcc_loss,
    av_targets,
    bce_mcc_loss,
    binary_crossentropy,
    soft_mcc,
)

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


# The artery/vein loss (losses.av_targets, av_bce_mcc_loss, AvBceMccLoss).

B, A, V, X, U = BACKGROUND, ARTERY, VEIN, CROSSING, UNCERTAIN
# A 3 x 3 class map: two artery pixels, two vein pixels, a crossing, an uncertain pixel.
CLASSES_3X3 = np.array([[B, A, A], [B, X, V], [U, V, B]], np.uint8)


def _as_batch(classes):
    return np.asarray(classes, np.float32)[None, ..., None]  # (1, H, W, 1), as training batches


def test_av_targets_of_a_3x3_map():
    target, weight = (keras.ops.convert_to_numpy(t)[0] for t in av_targets(_as_batch(CLASSES_3X3)))
    assert target.shape == weight.shape == (3, 3, 3) and target.dtype == np.float32
    np.testing.assert_array_equal(target[..., 0], [[0, 1, 1], [0, 1, 1], [1, 1, 0]])  # vessel
    np.testing.assert_array_equal(target[..., 1], [[0, 1, 1], [0, 1, 0], [0, 0, 0]])  # artery
    np.testing.assert_array_equal(target[..., 2], [[0, 0, 0], [0, 1, 1], [0, 1, 0]])  # vein
    np.testing.assert_array_equal(weight[..., 0], np.ones((3, 3)))
    typed = [[1, 1, 1], [1, 1, 1], [0, 1, 1]]  # the uncertain pixel says nothing of its type
    np.testing.assert_array_equal(weight[..., 1], typed)
    np.testing.assert_array_equal(weight[..., 2], typed)
    _, weight = (keras.ops.convert_to_numpy(t)[0] for t in av_targets(_as_batch(CLASSES_3X3), True))
    np.testing.assert_array_equal(weight[..., 1], [[1, 1, 1], [1, 0, 1], [0, 1, 1]])
    np.testing.assert_array_equal(weight[..., 0], np.ones((3, 3)))  # still a vessel


def test_av_loss_of_a_3x3_map_by_hand():
    """p = 0.8 on each channel's target pixels, 0.2 elsewhere; the uncertain pixel's artery and vein
    probabilities are set far off (0.99) and must not count.

    Every scored pixel's BCE is -ln 0.8. Vessel: 6 positives, 3 negatives: TP 4.8, FN 1.2, FP 0.6,
    TN 2.4, MCC = (4.8*2.4 - 0.6*1.2) / sqrt(5.4*6*3*3.6) = 10.8 / sqrt(349.92). Artery (8 scored
    pixels, 3 positive with the crossing) and vein alike: TP 2.4, FN 0.6, FP 1.0, TN 4.0,
    MCC = (9.6 - 0.6) / sqrt(3.4*3*5*4.6) = 9 / sqrt(234.6).
    """
    target, _ = av_targets(_as_batch(CLASSES_3X3))
    p = np.where(keras.ops.convert_to_numpy(target) > 0, 0.8, 0.2).astype(np.float32)
    p[0, 2, 0, 1:] = 0.99
    bce = -np.log(0.8)
    mcc_vessel = 10.8 / np.sqrt(349.92)
    mcc_typed = 9.0 / np.sqrt(234.6)
    per_channel = [0.5 * bce + 0.5 * (1 - m) for m in (mcc_vessel, mcc_typed, mcc_typed)]
    batch = _as_batch(CLASSES_3X3)
    np.testing.assert_allclose(float(av_bce_mcc_loss(batch, p)), np.mean(per_channel), rtol=1e-6)
    weighted = (2 * per_channel[0] + per_channel[1]) / 3  # channel weights (2, 1, 0)
    np.testing.assert_allclose(
        float(av_bce_mcc_loss(batch, p, channel_weights=(2, 1, 0))), weighted, rtol=1e-6
    )
    np.testing.assert_allclose(
        float(AvBceMccLoss(bce_weight=1.0, mcc_weight=0.0)(batch, p)), bce, rtol=1e-6
    )


def _random_av_batch(seed, shape=(2, 12, 12)):
    rng = np.random.default_rng(seed)
    classes = rng.choice(5, size=shape, p=[0.6, 0.12, 0.12, 0.06, 0.1]).astype(np.float32)
    return classes[..., None], rng.uniform(0.02, 0.98, (*shape, 3)).astype(np.float32)


@pytest.mark.parametrize("ignore_crossings", [False, True])
def test_av_loss_ignores_what_it_should(ignore_crossings):
    classes, p = _random_av_batch(11)
    loss = AvBceMccLoss(ignore_crossings=ignore_crossings)
    base = float(loss(classes, p))
    uncertain = classes[..., 0] == UNCERTAIN
    crossing = classes[..., 0] == CROSSING
    assert uncertain.sum() > 3 and crossing.sum() > 3

    def changed(where, channels):
        q = p.copy()
        for c in channels:
            q[..., c][where] = 1.0 - q[..., c][where]
        return float(loss(classes, q))

    assert changed(uncertain, (1, 2)) == base  # artery and vein of uncertain pixels: no effect
    assert abs(changed(uncertain, (0,)) - base) > 1e-4  # but they are vessels
    crossing_effect = abs(changed(crossing, (1, 2)) - base)
    assert crossing_effect == 0.0 if ignore_crossings else crossing_effect > 1e-4
    assert abs(changed(classes[..., 0] == ARTERY, (1,)) - base) > 1e-4


def test_av_loss_vessel_channel_is_the_vessel_loss():
    classes, p = _random_av_batch(12)
    vessel_only = float(av_bce_mcc_loss(classes, p, channel_weights=(1, 0, 0)))
    labels = (classes > 0).astype(np.float32)
    np.testing.assert_allclose(vessel_only, float(bce_mcc_loss(labels, p[..., :1])), rtol=1e-6)


def test_pixel_weight_of_ones_changes_nothing_and_zeros_drop_pixels():
    y, p = random_batch(13)
    np.testing.assert_allclose(
        float(bce_mcc_loss(y, p, weight=np.ones_like(y))), float(bce_mcc_loss(y, p)), rtol=1e-6
    )
    keep = np.zeros_like(y)
    keep[0] = 1.0  # weight 1 on the first image only: the loss of that image alone
    np.testing.assert_allclose(
        float(bce_mcc_loss(y, p, weight=keep)), float(bce_mcc_loss(y[:1], p[:1])), rtol=1e-6
    )
    assert float(binary_crossentropy(y, p, weight=np.zeros_like(y))) == 0.0  # nothing scored


def test_av_loss_config_round_trip_and_bad_channel_weights():
    loss = AvBceMccLoss(ignore_crossings=True, channel_weights=(2, 1, 1), mcc_weight=0.6)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(restored, AvBceMccLoss)
    assert restored.get_config() == loss.get_config()
    assert restored.channel_weights == (2.0, 1.0, 1.0) and restored.ignore_crossings
    classes, p = _random_av_batch(14)
    assert float(restored(classes, p)) == float(loss(classes, p))
    for bad in [(1, 1), (1, -1, 1), (0, 0, 0)]:
        with pytest.raises(ValueError, match="channel_weights must be 3 numbers"):
            AvBceMccLoss(channel_weights=bad)


@pytest.mark.slow
def test_av_model_fit_step_on_class_maps():
    from models import build_sa_unetv2_av

    keras.utils.set_random_seed(0)
    model = build_sa_unetv2_av(start_neurons=8)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=AvBceMccLoss())
    rng = np.random.default_rng(15)
    x = rng.random((2, 16, 16, 3)).astype("float32")
    classes = rng.choice(5, size=(2, 16, 16, 1)).astype("float32")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, classes, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    head = model.get_layer("head_conv").get_weights()[0]
    assert not np.array_equal(head, before[-2])  # the head's kernel moved: the gradient flows


# Value and gradient of av_bce_mcc_loss under one backend, in a fresh interpreter.
_AV_GRAD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    import keras
    from losses import av_bce_mcc_loss

    case = json.loads(sys.stdin.read())
    classes = np.array(case["classes"], np.float32)
    p = np.array(case["p"], np.float32)
    loss = lambda q: av_bce_mcc_loss(classes, q, ignore_crossings=case["ignore_crossings"])
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        var = tf.Variable(p)
        with tf.GradientTape() as tape:
            value = loss(var)
        grad = tape.gradient(value, var)
    else:
        import jax
        value, grad = jax.value_and_grad(loss)(p)
    grad = np.asarray(keras.ops.convert_to_numpy(grad), np.float64)
    print(json.dumps({"backend": keras.backend.backend(), "value": float(value),
                      "grad": grad.tolist()}))
    """
)


def _av_value_and_grad(backend, classes, p, ignore_crossings):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    payload = json.dumps(
        {"classes": classes.tolist(), "p": p.tolist(), "ignore_crossings": ignore_crossings}
    )
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, "-c", _AV_GRAD_SCRIPT, str(ROOT)],
        input=payload,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["backend"] == backend
    return out["value"], np.array(out["grad"])


@pytest.mark.slow
def test_av_loss_gradient_and_backends_agree():
    """The gradient is 0 exactly at ignored pixels' artery and vein probabilities and non-zero at
    every scored one; TensorFlow and JAX give the same value and gradient (float32 rounding)."""
    classes, p = _random_av_batch(16, shape=(2, 6, 6))
    value_tf, grad_tf = _av_value_and_grad("tensorflow", classes, p, True)
    np.testing.assert_allclose(value_tf, float(av_bce_mcc_loss(classes, p, True)), rtol=1e-6)
    ignored = np.isin(classes[..., 0], (CROSSING, UNCERTAIN))
    assert ignored.sum() >= 3
    assert np.all(grad_tf[..., 1:][ignored] == 0.0)
    assert np.all(grad_tf[..., 1:][~ignored] != 0.0) and np.all(grad_tf[..., 0] != 0.0)
    value_jax, grad_jax = _av_value_and_grad("jax", classes, p, True)
    np.testing.assert_allclose(value_jax, value_tf, rtol=1e-6)
    np.testing.assert_allclose(grad_jax, grad_tf, rtol=1e-4, atol=1e-9)
