"""The project's faster layers against the straightforward ones: same results, same weights, old files load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import build_model, load_model
from models.layers import DropBlock2D
from models.layers import GroupNormalization as GroupNorm
from models.reference import DirectDropBlock2D, plain_copy
from tests.helpers import ROOT, run_on_backend


def _pair(groups=8, channels=16, seed=0):
    rng = np.random.default_rng(seed)
    fast = GroupNorm(groups=groups, epsilon=1e-3)
    plain = keras.layers.GroupNormalization(groups=groups, epsilon=1e-3)
    weights = [rng.normal(size=channels).astype("float32") for _ in range(2)]
    for layer in (fast, plain):
        layer.build((None, None, None, channels))
        layer.set_weights(weights)
    return fast, plain


def _value_and_grads(layer, x, upstream):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(y * upstream)
    grads = tape.gradient(loss, [x, *layer.trainable_variables])
    return [y.numpy()] + [g.numpy() for g in grads]


@pytest.mark.parametrize(
    "groups, channels, size", [(8, 16, (2, 24, 20)), (8, 48, (1, 9, 13)), (2, 6, (3, 8, 8))]
)
def test_group_norm_matches_keras_values_and_gradients(groups, channels, size):
    rng = np.random.default_rng(1)
    batch, height, width = size
    # Off-centre, wide-ranged inputs, like the output of a convolution.
    x = (rng.normal(size=(batch, height, width, channels)) * 3.0 + 2.0).astype("float32")
    upstream = rng.normal(size=x.shape).astype("float32")
    fast, plain = _pair(groups, channels)
    for name, got, want in zip(
        ("output", "d input", "d gamma", "d beta"),
        _value_and_grads(fast, x, upstream),
        _value_and_grads(plain, x, upstream),
        strict=True,
    ):
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, atol=2e-6 * scale, err_msg=name)


def test_group_norm_gradient_is_the_true_gradient():
    # Finite differences in float64 of the closed-form backward pass.
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 4, 4, 4)) * 2.0 + 1.0
    upstream = rng.normal(size=x.shape)
    layer = GroupNorm(groups=2, epsilon=1e-3, dtype="float64")
    layer.build(x.shape)
    layer.set_weights([rng.normal(size=4), rng.normal(size=4)])
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(tf.cast(layer(xt, training=True), tf.float64) * upstream)
    analytic = tape.gradient(loss, xt).numpy()
    step = 1e-6
    numeric = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        shifted = x.copy()
        shifted[index] += step
        plus = float(np.sum(keras.ops.convert_to_numpy(layer(shifted, training=True)) * upstream))
        shifted[index] -= 2 * step
        minus = float(np.sum(keras.ops.convert_to_numpy(layer(shifted, training=True)) * upstream))
        numeric[index] = (plus - minus) / (2 * step)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-6)


def test_group_norm_differs_from_a_wrong_grouping():
    # The test above must be able to fail: another group count gives other outputs.
    x = np.random.default_rng(3).normal(size=(2, 8, 8, 16)).astype("float32")
    fast, _ = _pair(8, 16)
    _, other = _pair(4, 16)
    assert (
        np.abs(
            keras.ops.convert_to_numpy(fast(x, training=True))
            - keras.ops.convert_to_numpy(other(x))
        ).max()
        > 1e-2
    )


def test_group_norm_config_round_trip():
    layer = GroupNorm(groups=4, epsilon=1e-3, name="gn")
    again = GroupNorm.from_config(layer.get_config())
    assert (again.groups, again.epsilon, again.name) == (4, 1e-3, "gn")


def test_model_outputs_match_the_plain_layers():
    model = build_model("sa_unetv2")
    plain = plain_copy(model)
    kinds = {type(layer) for layer in plain.layers}
    assert GroupNorm not in kinds and keras.layers.GroupNormalization in kinds
    assert DirectDropBlock2D in kinds and DropBlock2D not in kinds
    x = np.random.default_rng(4).random((2, 64, 96, 3), dtype=np.float32)
    got = keras.ops.convert_to_numpy(model(x, training=False))
    want = keras.ops.convert_to_numpy(plain(x, training=False))
    np.testing.assert_array_equal(got, want)  # inference runs Keras' own GroupNorm computation
    # The training path, without DropBlock's randomness: within 1e-5 of Keras' layers.
    model = build_model("sa_unetv2", dropblock_rate=0.0)
    plain = plain_copy(model)
    got = keras.ops.convert_to_numpy(model(x, training=True))
    want = keras.ops.convert_to_numpy(plain(x, training=True))
    assert np.abs(got - want).max() < 1e-5


def _as_old_file(model: keras.Model, path, old_path):
    """Rewrite a saved model so its GroupNorm layers read as Keras' GroupNormalization (an older file)."""
    model.save(path)
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(old_path, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "config.json":
                config = json.loads(data)
                for layer in config["config"]["layers"]:
                    if layer["class_name"] == "GroupNormalization":
                        layer.update(module="keras.layers", registered_name=None)
                data = json.dumps(config).encode()
            dst.writestr(info, data)


@pytest.mark.slow
def test_older_checkpoints_load_with_the_fast_layer_and_resume(tmp_path):
    model = build_model("sa_unetv2")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    x = np.random.default_rng(5).random((2, 32, 32, 3), dtype=np.float32)
    y = (x[..., :1] > 0.7).astype("float32")
    model.train_on_batch(x, y)
    _as_old_file(model, tmp_path / "new.keras", tmp_path / "old.keras")
    with zipfile.ZipFile(tmp_path / "old.keras") as archive:
        assert b"sa_unetv2>GroupNormalization" not in archive.read("config.json")

    loaded = load_model(tmp_path / "old.keras", compile=True)
    assert type(loaded.get_layer("enc1_step1_gn")) is GroupNorm
    reference = keras.saving.load_model(tmp_path / "old.keras", safe_mode=True)
    assert type(reference.get_layer("enc1_step1_gn")) is keras.layers.GroupNormalization
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(reference(x)), atol=1e-5
    )
    # The optimizer state came along: one more step continues from iteration 1.
    assert int(loaded.optimizer.iterations.numpy()) == 1
    loaded.train_on_batch(x, y)
    assert int(loaded.optimizer.iterations.numpy()) == 2


def test_dropblock_masks_have_the_direct_algorithms_statistics():
    x = np.ones((4, 64, 64, 8), dtype="float32")
    fractions = {}
    for cls in (DropBlock2D, DirectDropBlock2D):
        layer = cls(0.15, 7, seed=11)
        fractions[cls.__name__] = np.mean(
            [(keras.ops.convert_to_numpy(layer(x, training=True)) == 0).mean() for _ in range(6)]
        )
    assert abs(fractions["DropBlock2D"] - fractions["DirectDropBlock2D"]) < 0.02, fractions


def test_dropblock_never_seeds_where_a_block_does_not_fit():
    # A single block's worth of rate: every dropped unit must lie in a whole 7 x 7 block inside the map.
    x = np.ones((64, 10, 10, 1), dtype="float32")
    out = keras.ops.convert_to_numpy(DropBlock2D(0.3, 7, seed=2)(x, training=True))
    dropped = out[..., 0] == 0
    for sample in dropped:
        if sample.any():
            rows = np.flatnonzero(sample.any(axis=1))
            cols = np.flatnonzero(sample.any(axis=0))
            assert rows.size >= 7 and cols.size >= 7


BACKEND_SCRIPT = textwrap.dedent(
    """
    import numpy as np, keras
    from models.layers import GroupNormalization as GroupNorm
    assert keras.backend.backend() == "{backend}"
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(2, 12, 10, 16)) * 3 + 1).astype("float32")
    fast = GroupNorm(groups=8, epsilon=1e-3)
    plain = keras.layers.GroupNormalization(groups=8, epsilon=1e-3)
    weights = [rng.normal(size=16).astype("float32") for _ in range(2)]
    for layer in (fast, plain):
        layer.build(x.shape)
        layer.set_weights(weights)
    diff = np.abs(keras.ops.convert_to_numpy(fast(x, training=True)) - keras.ops.convert_to_numpy(plain(x))).max()
    assert diff < 1e-5, diff
    w = rng.normal(size=x.shape).astype("float32")
    if keras.backend.backend() == "jax":
        import jax
        grads = [jax.grad(lambda v, f=f: (f(v, training=True) * w).sum())(x) for f in (fast, plain)]
    else:
        import torch
        grads = []
        for f in (fast, plain):
            v = torch.tensor(x, requires_grad=True)
            (f(v, training=True) * torch.tensor(w)).sum().backward()
            grads.append(v.grad)
    gdiff = np.abs(keras.ops.convert_to_numpy(grads[0]) - keras.ops.convert_to_numpy(grads[1])).max()
    assert gdiff < 1e-5, gdiff
    model = keras.Sequential([keras.Input((12, 10, 16)), fast])
    model.compile(optimizer="sgd", loss="mse")
    before = model.get_weights()[0].copy()
    model.train_on_batch(x, np.zeros_like(x))
    assert np.abs(model.get_weights()[0] - before).max() > 0
    print("ok", diff)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_group_norm_on_other_backends(backend):
    run_on_backend(BACKEND_SCRIPT.format(backend=backend), backend)


ONEDNN_SCRIPT = textwrap.dedent(
    """
    import os
    from training.backend import select_backend
    select_backend({backend!r}, distribute={distribute})
    print("onednn=" + os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"))
    """
)


@pytest.mark.parametrize(
    "backend, distribute, preset, expected",
    [
        ("tensorflow", False, None, "1"),  # the project's default
        ("tensorflow", False, "0", "0"),  # the user's choice is kept
        ("tensorflow", True, None, "0"),  # MirroredStrategy on the CPU needs them off
        ("jax", False, None, "unset"),  # nothing to set without TensorFlow
    ],
)
def test_select_backend_turns_onednn_on_for_tensorflow(backend, distribute, preset, expected):
    env = {"KERAS_BACKEND": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    script = ONEDNN_SCRIPT.format(backend=backend, distribute=distribute)
    base = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if preset is not None:
        base["TF_ENABLE_ONEDNN_OPTS"] = preset
    base.update(env)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=base, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"onednn={expected}" in result.stdout


def test_dropblock_on_maps_of_unknown_size():
    # Inside a graph traced for any height and width, the layer takes its dynamic path.
    layer = DropBlock2D(0.15, 7, seed=5)
    run = tf.function(
        lambda x: layer(x, training=True),
        input_signature=[tf.TensorSpec((None, None, None, 8), tf.float32)],
    )
    x = np.ones((4, 64, 64, 8), dtype="float32")
    out = run(tf.constant(x)).numpy()
    dropped = out == 0
    assert abs(dropped.mean() - 0.15) < 0.04
    np.testing.assert_allclose(np.unique(out[~dropped]), [1.0 / (1.0 - dropped.mean())], rtol=1e-4)
