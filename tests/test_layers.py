"""Layers: config round trips, DropBlock statistics, attention shapes, all backends."""

from __future__ import annotations

import json
import textwrap

import keras
import numpy as np
import pytest

from models.layers import (
    ChannelMax,
    ChannelMean,
    CrossScaleSpatialAttention,
    DropBlock2D,
    SpatialAttention,
)
from tests.helpers import run_on_backend

LAYERS = [
    (DropBlock2D, {"rate": 0.2, "block_size": 5, "seed": 3}),
    (ChannelMean, {}),
    (ChannelMax, {}),
    (SpatialAttention, {"kernel_size": 5}),
    (CrossScaleSpatialAttention, {"kernel_size": 3}),
]


@pytest.mark.parametrize("cls,kwargs", LAYERS, ids=[c.__name__ for c, _ in LAYERS])
def test_config_round_trip(cls, kwargs):
    layer = cls(name="probe", **kwargs)
    config = layer.get_config()
    json.dumps(config)  # serialisable
    clone = cls.from_config(config)
    assert clone.get_config() == config
    for key, value in kwargs.items():
        assert config[key] == value
    # Registered under the project's package name, so safe-mode loading finds it.
    assert keras.saving.get_registered_name(cls) == f"sa_unetv2>{cls.__name__}"


def test_channel_reductions():
    x = np.arange(2 * 3 * 4 * 5, dtype="float32").reshape(2, 3, 4, 5)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ChannelMean()(x)), x.mean(-1, keepdims=True)
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ChannelMax()(x)), x.max(-1, keepdims=True)
    )


def test_spatial_attention_is_x_times_sigmoid_map():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 16, 16, 6)).astype("float32")
    layer = SpatialAttention(7)
    out = keras.ops.convert_to_numpy(layer(x))
    kernel = keras.ops.convert_to_numpy(layer.conv.kernel)
    assert kernel.shape == (7, 7, 2, 1) and len(layer.weights) == 1  # no bias
    descriptor = np.concatenate([x.mean(-1, keepdims=True), x.max(-1, keepdims=True)], -1)
    attention = keras.ops.convert_to_numpy(layer.conv(descriptor))
    np.testing.assert_allclose(out, x * attention, rtol=1e-5, atol=1e-6)
    assert attention.min() > 0 and attention.max() < 1


def test_cross_scale_attention_uses_means_of_both_inputs():
    rng = np.random.default_rng(1)
    enc = rng.normal(size=(2, 8, 8, 4)).astype("float32")
    dec = rng.normal(size=(2, 8, 8, 6)).astype("float32")
    layer = CrossScaleSpatialAttention(7)
    out = keras.ops.convert_to_numpy(layer([enc, dec]))
    assert out.shape == enc.shape
    descriptor = np.concatenate([enc.mean(-1, keepdims=True), dec.mean(-1, keepdims=True)], -1)
    attention = keras.ops.convert_to_numpy(layer.conv(descriptor))
    np.testing.assert_allclose(out, enc * attention, rtol=1e-5, atol=1e-6)
    # Changing the decoder's channel maximum without its mean leaves the output unchanged (mean only).
    dec2 = dec - dec.mean(-1, keepdims=True)
    dec2[..., 0] += 10.0
    dec2[..., 1] -= 10.0
    dec2 += dec.mean(-1, keepdims=True)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer([enc, dec2])), out, rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("cls", [SpatialAttention, CrossScaleSpatialAttention])
def test_attention_sublayers_follow_the_layer_dtype(cls):
    """A float64 attention (e.g. a float64 copy of a model, for precision checks) runs in float64."""
    layer = cls(3, dtype="float64")
    x = np.random.default_rng(2).normal(size=(1, 8, 8, 4))
    out = layer(x) if cls is SpatialAttention else layer([x, x[..., :2]])
    assert keras.backend.standardize_dtype(out.dtype) == "float64"
    assert layer.conv.kernel.dtype == "float64"


def test_dropblock_identity_at_inference():
    x = np.random.default_rng(2).normal(size=(2, 32, 32, 3)).astype("float32")
    layer = DropBlock2D(0.3, 7, seed=1)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)


def _covered_by_full_blocks(zero: np.ndarray, block: int) -> bool:
    """True if every zero of a 2-D map lies in some block x block window of zeros."""
    h, w = zero.shape
    full = np.zeros_like(zero, dtype=bool)
    for i in range(h - block + 1):
        for j in range(w - block + 1):
            if zero[i : i + block, j : j + block].all():
                full[i : i + block, j : j + block] = True
    return bool((full == zero).all())


def test_dropblock_training_statistics():
    rate, block = 0.15, 7
    x = np.ones((4, 96, 96, 8), dtype="float32")
    layer = DropBlock2D(rate, block, seed=123)
    fractions, means = [], []
    for _ in range(5):
        out = keras.ops.convert_to_numpy(layer(x, training=True))
        dropped = out == 0
        fractions.append(dropped.mean())
        means.append(out.mean())
        # Kept units are rescaled by 1 / kept fraction: all share one value.
        kept_values = np.unique(out[~dropped])
        assert kept_values.size == 1
        np.testing.assert_allclose(kept_values[0], 1.0 / (1.0 - dropped.mean()), rtol=1e-4)
        for b, c in [(0, 0), (3, 7)]:
            assert _covered_by_full_blocks(dropped[b, :, :, c], block)
    assert abs(np.mean(fractions) - rate) < 0.03, fractions
    # Expected value preserved (exactly, since the rescale uses the realised kept fraction).
    np.testing.assert_allclose(means, 1.0, rtol=1e-4)
    # Successive calls draw new masks.
    assert len(set(np.round(fractions, 6))) > 1


def test_dropblock_rate_zero_is_identity_in_training():
    x = np.ones((1, 16, 16, 2), dtype="float32")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(DropBlock2D(0.0, 7)(x, training=True)), x
    )


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "a"])
def test_dropblock_rejects_bad_rate(rate):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        DropBlock2D(rate, 7)


BACKEND_SCRIPT = textwrap.dedent(
    """
    import numpy as np, keras
    from models.layers import DropBlock2D, SpatialAttention, CrossScaleSpatialAttention
    assert keras.backend.backend() == "{backend}"
    x = np.ones((2, 48, 48, 4), dtype="float32")
    out = keras.ops.convert_to_numpy(DropBlock2D(0.15, 7, seed=0)(x, training=True))
    frac = float((out == 0).mean())
    assert 0.05 < frac < 0.3, frac
    assert abs(out.mean() - 1.0) < 1e-4
    assert SpatialAttention(7)(x).shape == x.shape
    assert CrossScaleSpatialAttention(7)([x, x[..., :2]]).shape == x.shape
    print("ok", frac)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_layers_on_other_backends(backend):
    run_on_backend(BACKEND_SCRIPT.format(backend=backend), backend)
