"""Layers of SA-UNetv2 and its baselines, written with `keras.ops` only.

Every layer has `get_config`, is registered for serialization under the
package name "sa_unetv2", and runs on the TensorFlow, JAX and PyTorch
backends. No Lambda layers: a `.keras` file of any model loads with
`safe_mode=True`.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from utils.errors import UserError

PACKAGE = "sa_unetv2"


def check_rate(rate: float, name: str = "rate") -> float:
    """Return `rate` as a float if it lies in [0, 1), else raise a UserError."""
    try:
        value = float(rate)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number in [0, 1), got {rate!r}") from None
    if not 0.0 <= value < 1.0:
        raise UserError(f"{name} must be in [0, 1), got {rate!r}")
    return value


def check_positive_int(value, name: str) -> int:
    """Return `value` as an int if it is a positive integer, else raise a UserError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{name} must be a positive integer, got {value!r}")
    return value


@keras.saving.register_keras_serializable(package=PACKAGE)
class DropBlock2D(layers.Layer):
    """DropBlock (Ghiasi et al., 2018) for channels-last feature maps (B, H, W, C).

    Training: seeds are drawn with probability `gamma` where a whole
    `block_size` x `block_size` block fits, each seed drops the block around
    it (a min-pool of the keep mask), and the kept units are rescaled by
    1 / (kept fraction) so the expected value is preserved. About `rate` of
    the units are dropped. Inference: identity.

    Same algorithm as keras_cv's DropBlock2D (which cannot train on Keras 3).
    """

    def __init__(self, rate: float = 0.15, block_size: int = 7, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate(rate, "DropBlock rate")
        self.block_size = check_positive_int(block_size, "DropBlock block_size")
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        shape = ops.shape(inputs)
        height, width = shape[1], shape[2]
        static_h, static_w = inputs.shape[1], inputs.shape[2]
        # The pooling window must be static; shrink it only for maps known to be smaller.
        block_h = min(self.block_size, static_h) if static_h is not None else self.block_size
        block_w = min(self.block_size, static_w) if static_w is not None else self.block_size

        h_f = ops.cast(height, "float32")
        w_f = ops.cast(width, "float32")
        valid_area = ops.maximum((h_f - block_h + 1.0) * (w_f - block_w + 1.0), 1.0)
        gamma = self.rate * h_f * w_f / float(block_h * block_w) / valid_area

        # Seeds only where the whole block fits inside the map.
        rows = ops.arange(height)
        cols = ops.arange(width)
        valid_rows = ops.logical_and(rows >= block_h // 2, rows < height - (block_h - 1) // 2)
        valid_cols = ops.logical_and(cols >= block_w // 2, cols < width - (block_w - 1) // 2)
        valid = ops.logical_and(valid_rows[:, None], valid_cols[None, :])
        valid = ops.cast(valid, "float32")[None, :, :, None]

        noise = keras.random.uniform(shape, dtype="float32", seed=self.seed_generator)
        keep = ops.cast((1.0 - valid + (1.0 - gamma) + noise) >= 1.0, "float32")
        # Min-pool of the keep mask = every unit within a block of a seed is dropped.
        keep = -ops.max_pool(-keep, pool_size=(block_h, block_w), strides=1, padding="same")
        kept_fraction = ops.maximum(ops.mean(keep), 1e-6)
        scale = keep / kept_fraction
        return inputs * ops.cast(scale, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "block_size": self.block_size, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class ChannelMean(layers.Layer):
    """Mean over the channel axis: (B, H, W, C) -> (B, H, W, 1)."""

    def call(self, inputs):
        return ops.mean(inputs, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ChannelMax(layers.Layer):
    """Maximum over the channel axis: (B, H, W, C) -> (B, H, W, 1)."""

    def call(self, inputs):
        return ops.max(inputs, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)


class _AttentionMap(layers.Layer):
    """Shared part of both attentions: sigmoid(Conv2D(1, k x k, no bias)(2-channel descriptor))."""

    def __init__(self, kernel_size: int = 7, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = check_positive_int(kernel_size, "attention kernel_size")
        self.conv = layers.Conv2D(
            1,
            self.kernel_size,
            padding="same",
            use_bias=False,
            kernel_initializer="he_normal",
            activation="sigmoid",
            dtype=self.dtype_policy,
            name="conv",
        )
        self.channel_mean = ChannelMean(dtype=self.dtype_policy, name="channel_mean")
        self.channel_max = ChannelMax(dtype=self.dtype_policy, name="channel_max")

    def build_conv(self, input_shape):
        self.conv.build((*input_shape[:-1], 2))

    def get_config(self):
        config = super().get_config()
        config.update({"kernel_size": self.kernel_size})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class SpatialAttention(_AttentionMap):
    """Spatial attention of SA-UNet: x * sigmoid(conv7x7([mean_c(x), max_c(x)])).

    Input and output (B, H, W, C).
    """

    def build(self, input_shape):
        self.build_conv(input_shape)

    def call(self, inputs):
        descriptor = ops.concatenate([self.channel_mean(inputs), self.channel_max(inputs)], axis=-1)
        return inputs * self.conv(descriptor)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package=PACKAGE)
class CrossScaleSpatialAttention(_AttentionMap):
    """Cross-scale spatial attention (CSA) of SA-UNetv2, applied in each skip connection.

    Called on `[enc, dec]` (same H and W, any channel counts):
    enc * sigmoid(conv7x7([mean_c(enc), mean_c(dec)])). Mean only, no max.
    Output has the shape of `enc`.
    """

    def build(self, input_shape):
        enc_shape, _ = input_shape
        self.build_conv(enc_shape)

    def call(self, inputs):
        enc, dec = inputs
        descriptor = ops.concatenate([self.channel_mean(enc), self.channel_mean(dec)], axis=-1)
        return enc * self.conv(descriptor)

    def compute_output_shape(self, input_shape):
        return input_shape[0]


CUSTOM_OBJECTS = {
    cls.__name__: cls
    for cls in (DropBlock2D, ChannelMean, ChannelMax, SpatialAttention, CrossScaleSpatialAttention)
}
