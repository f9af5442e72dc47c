"""Layers of SA-UNetv2 and its baselines, written with `keras.ops` only.

Every layer has `get_config`, is registered for serialization under the
package name "sa_unetv2", and runs on the TensorFlow, JAX and PyTorch
backends. No Lambda layers: a `.keras` file of any model loads with
`safe_mode=True`.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from utils.checks import check_positive_int, check_rate

PACKAGE = "sa_unetv2"


def seed_rate_and_region(rate: float, height, width, block_h: int, block_w: int):
    """DropBlock's seed probability gamma and where seeds may fall, for a map of any (even traced) size.

    gamma = rate * H * W / (block area) / (area where a whole block fits), so about
    `rate` of the units are dropped; the region is a (1, H, W, 1) boolean mask.
    """
    h_f = ops.cast(height, "float32")
    w_f = ops.cast(width, "float32")
    valid_area = ops.maximum((h_f - block_h + 1.0) * (w_f - block_w + 1.0), 1.0)
    gamma = rate * h_f * w_f / float(block_h * block_w) / valid_area
    rows = ops.arange(height)
    cols = ops.arange(width)
    valid_rows = ops.logical_and(rows >= block_h // 2, rows < height - (block_h - 1) // 2)
    valid_cols = ops.logical_and(cols >= block_w // 2, cols < width - (block_w - 1) // 2)
    return gamma, ops.logical_and(valid_rows[:, None], valid_cols[None, :])[None, :, :, None]


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
        height, width = inputs.shape[1], inputs.shape[2]
        if height is None or width is None:
            dropped = self._dropped_dynamic(inputs)
        else:
            dropped = self._dropped(inputs, height, width)
        kept_fraction = ops.maximum(1.0 - ops.mean(dropped), 1e-6)
        scale = ops.where(dropped > 0.0, 0.0, 1.0 / kept_fraction)
        return inputs * ops.cast(scale, inputs.dtype)

    def _dropped(self, inputs, height: int, width: int):
        """1.0 where a unit is dropped, for a map of static size (B, height, width, C).

        Uniform noise is drawn only where a seed can fall (the block fits), and
        the block around each seed is a max-pool of the seeds done one axis at a
        time: the same masks, with a fraction of the noise and comparisons.
        """
        block_h, block_w = min(self.block_size, height), min(self.block_size, width)
        valid_h, valid_w = height - block_h + 1, width - block_w + 1
        gamma = self.rate * height * width / (block_h * block_w) / (valid_h * valid_w)
        channels = inputs.shape[3] if inputs.shape[3] is not None else ops.shape(inputs)[3]
        noise_shape = (ops.shape(inputs)[0], valid_h, valid_w, channels)
        noise = keras.random.uniform(noise_shape, dtype="float32", seed=self.seed_generator)
        seeds = ops.cast(noise < gamma, "float32")
        pads = [
            [0, 0],
            [block_h // 2, (block_h - 1) // 2],
            [block_w // 2, (block_w - 1) // 2],
            [0, 0],
        ]
        dropped = ops.pad(seeds, pads)
        dropped = ops.max_pool(dropped, pool_size=(block_h, 1), strides=1, padding="same")
        return ops.max_pool(dropped, pool_size=(1, block_w), strides=1, padding="same")

    def _dropped_dynamic(self, inputs):
        """As `_dropped`, for maps whose height or width is only known when the graph runs."""
        shape = ops.shape(inputs)
        gamma, valid = seed_rate_and_region(
            self.rate, shape[1], shape[2], self.block_size, self.block_size
        )
        noise = keras.random.uniform(shape, dtype="float32", seed=self.seed_generator)
        seeds = ops.cast(ops.logical_and(valid, noise < gamma), "float32")
        block = (self.block_size, self.block_size)
        return ops.max_pool(seeds, pool_size=block, strides=1, padding="same")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "block_size": self.block_size, "seed": self.seed})
        return config


def _group_mean(per_channel, groups: int):
    """(B, C) -> (B, 1, 1, C): each channel gets the mean of its group's values."""
    channels = per_channel.shape[-1]
    grouped = ops.reshape(per_channel, (-1, groups, channels // groups))
    mean = ops.mean(grouped, axis=-1, keepdims=True)
    return ops.reshape(ops.repeat(mean, channels // groups, axis=-1), (-1, 1, 1, channels))


def _spatial_mean(x):
    """(B, H, W, C) -> (B, C): the mean over a row, then over the rows.

    Two short sums instead of one over H * W values, which TensorFlow's CPU
    kernel accumulates one after another (relative error ~1e-4 at 592 x 592).
    """
    return ops.mean(ops.mean(x, axis=2), axis=1)


def _group_norm_forward(x, gamma, beta, groups: int, epsilon: float):
    """GroupNorm of (B, H, W, C) from per-channel moments: no (B, H, W, G, C/G) reshape.

    Returns the output, the centred input and the per-channel inverse standard deviation.
    """
    centred = x - _group_mean(_spatial_mean(x), groups)
    variance = _group_mean(_spatial_mean(ops.square(centred)), groups)
    inv = ops.rsqrt(variance + epsilon)
    return centred * (inv * gamma) + beta, centred, inv


def _group_norm_with_gradient(x, gamma, beta, groups: int, epsilon: float):
    """GroupNorm whose backward pass is the closed form: two reductions and one pass over the map.

    dx = inv * (g - mean_group(g) - xhat * mean_group(g * xhat)), g = dy * gamma, xhat = centred * inv.
    """

    @ops.custom_gradient
    def forward(x, gamma, beta):
        out, centred, inv = _group_norm_forward(x, gamma, beta, groups, epsilon)

        def grad(*args, upstream=None):
            upstream = args[0] if upstream is None else upstream
            # Per-channel means by the forward pass's two short sums (same precision).
            mean_dy = _spatial_mean(upstream)  # (B, C)
            mean_dy_centred = _spatial_mean(upstream * centred)  # (B, C)
            inv_c = ops.reshape(inv, (-1, inv.shape[-1]))
            pixels = ops.cast(ops.shape(upstream)[1] * ops.shape(upstream)[2], x.dtype)
            d_beta = ops.sum(mean_dy, axis=0) * pixels
            d_gamma = ops.sum(mean_dy_centred * inv_c, axis=0) * pixels
            mean_g = _group_mean(mean_dy * gamma, groups)
            mean_g_xhat = _group_mean(mean_dy_centred * inv_c * gamma, groups)
            d_x = inv * (gamma * upstream - mean_g) - centred * (inv * inv * mean_g_xhat)
            return d_x, d_gamma, d_beta

        return out, grad

    return forward(x, gamma, beta)


@keras.saving.register_keras_serializable(package=PACKAGE)
class GroupNormalization(layers.GroupNormalization):
    """keras.layers.GroupNormalization (same weights, epsilon and result), computed faster.

    It keeps Keras' class name, so a `.keras` file stores its weights under the
    same paths (`layers/group_normalization_N`) as one written with Keras' layer:
    files of either kind load into the other.

    Channels-last (B, H, W, C) with scale and offset: the mean and variance of
    each group come from per-channel moments (no 5-D reshape, whose reduction
    over axes (1, 2, 4) is slow on the CPU), the variance from the centred map
    (two passes, as Keras does), and on TensorFlow and JAX the gradient is the
    closed form (PyTorch, which Keras gives no custom gradients, differentiates
    the forward pass). This is the training path; inference (`training` not
    true) and any other layout use Keras' own computation, so predictions are
    exactly those of Keras' layer.
    """

    def call(self, inputs, training=None):
        fast_path = self.axis in (-1, 3) and len(inputs.shape) == 4 and self.scale and self.center
        if not (training and fast_path):
            return super().call(inputs)
        # At least float32, as Keras does (float16 inputs would overflow the variance).
        dtype = keras.backend.result_type(inputs.dtype, "float32")
        x = ops.cast(inputs, dtype)
        gamma = ops.cast(self.gamma, dtype)
        beta = ops.cast(self.beta, dtype)
        if keras.backend.backend() in ("tensorflow", "jax"):
            out = _group_norm_with_gradient(x, gamma, beta, self.groups, self.epsilon)
        else:
            out = _group_norm_forward(x, gamma, beta, self.groups, self.epsilon)[0]
        return ops.cast(out, self.compute_dtype)


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
    for cls in (
        DropBlock2D,
        GroupNormalization,
        ChannelMean,
        ChannelMax,
        SpatialAttention,
        CrossScaleSpatialAttention,
    )
}
