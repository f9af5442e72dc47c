"""SA-UNetv2 (Guo et al., arXiv 2509.11774): the network of the paper's figure.

    input (H, W, 3)
    e1 = 2 x step(16)                      ----------------------- CSA(e1, d1) --.
    e2 = 2 x step(32)   after MaxPool 2x2  ---------- CSA(e2, d2) --.            |
    e3 = 2 x step(48)   after MaxPool 2x2  - CSA(e3, d3) --.        |            |
    b  = step(64) -> SpatialAttention -> step(64)   after MaxPool   |            |
    d3 = ConvT(48)(b)  -> concat[d3, CSA(e3, d3)] -> 2 x step(48)   |            |
    d2 = ConvT(32)(.)  -> concat[d2, CSA(e2, d2)] -> 2 x step(32) --'            |
    d1 = ConvT(16)(.)  -> concat[d1, CSA(e1, d1)] -> 2 x step(16) --------------'
    output = sigmoid(Conv2D(1, 1x1))       (H, W, 1) vessel probability

step(f) = Conv2D(f, 3x3) -> DropBlock(0.15, 7x7) -> GroupNorm(8) -> SiLU.
260,521 parameters and 21.19 GFLOPs at 592 x 592 (python complexity.py).

`sa_unetv2_av` is the same network with a three-channel head, sigmoid(Conv2D(3, 1x1)):
(H, W, 3) probabilities of vessel, artery and vein, each its own yes/no (a crossing is both
artery and vein); 260,555 parameters (docs/arteries-veins.md). Every layer but the head's
convolution has the vessel network's name and shape, so `copy_vessel_weights` starts it from
trained vessel weights.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from models.blocks import conv_step, conv_steps, encoder, output_head, up_conv
from models.common import check_hparams, model_input
from models.layers import CrossScaleSpatialAttention, SpatialAttention

# The channels of `sa_unetv2_av`'s output, in order.
AV_CHANNELS = ("vessel", "artery", "vein")
HEAD_CONV = "head_conv"


def sa_unetv2_features(
    inputs, *, start_neurons: int, dropblock_rate: float, dropblock_size: int, gn_groups: int
):
    """The SA-UNetv2 trunk: the last decoder step's features (B, H, W, start_neurons) of `inputs`
    (B, H, W, C), everything of the network but its output head."""
    n = start_neurons
    widths = (n, 2 * n, 3 * n, 4 * n)
    check_hparams(widths, dropblock_rate, dropblock_size, gn_groups)
    step = {
        "dropblock_rate": dropblock_rate,
        "dropblock_size": dropblock_size,
        "gn_groups": gn_groups,
    }

    # Encoder: three stages, each two steps then 2x2 max pooling.
    x, skips = encoder(inputs, widths[:3], **step)

    # Bottleneck: step -> spatial attention -> step.
    x = conv_step(x, widths[3], name="bottleneck_step1", **step)
    x = SpatialAttention(7, name="bottleneck_attention")(x)
    x = conv_step(x, widths[3], name="bottleneck_step2", **step)

    # Decoder: up-sample, re-weight the skip with CSA, concatenate, two steps.
    for level, filters in zip((3, 2, 1), widths[2::-1], strict=True):
        up = up_conv(x, filters, name=f"dec{level}_up")
        attended = CrossScaleSpatialAttention(7, name=f"dec{level}_csa")([skips[level - 1], up])
        x = layers.Concatenate(name=f"dec{level}_concat")([up, attended])
        x = conv_steps(x, filters, f"dec{level}", **step)
    return x


def build_sa_unetv2(
    input_shape=(None, None, 3),
    *,
    start_neurons: int = 16,
    dropblock_rate: float = 0.15,
    dropblock_size: int = 7,
    gn_groups: int = 8,
    name: str = "sa_unetv2",
) -> keras.Model:
    """Build SA-UNetv2. Input (B, H, W, C) in [0, 1], H and W multiples of 8; output (B, H, W, 1)."""
    hparams = (start_neurons, dropblock_rate, dropblock_size, gn_groups)
    return _with_head(input_shape, 1, name, *hparams)


def build_sa_unetv2_av(
    input_shape=(None, None, 3),
    *,
    start_neurons: int = 16,
    dropblock_rate: float = 0.15,
    dropblock_size: int = 7,
    gn_groups: int = 8,
    name: str = "sa_unetv2_av",
) -> keras.Model:
    """Build the artery/vein SA-UNetv2. Input (B, H, W, C) in [0, 1], H and W multiples of 8;
    output (B, H, W, 3) float32 in [0, 1]: the probabilities of vessel, artery, vein
    (`AV_CHANNELS`), each an independent sigmoid."""
    hparams = (start_neurons, dropblock_rate, dropblock_size, gn_groups)
    return _with_head(input_shape, len(AV_CHANNELS), name, *hparams)


def _with_head(input_shape, channels, name, start_neurons, dropblock_rate, dropblock_size,
               gn_groups) -> keras.Model:  # fmt: skip
    """The SA-UNetv2 trunk (`sa_unetv2_features`) with a `channels`-channel sigmoid head."""
    inputs = model_input(input_shape)
    features = sa_unetv2_features(
        inputs,
        start_neurons=start_neurons,
        dropblock_rate=dropblock_rate,
        dropblock_size=dropblock_size,
        gn_groups=gn_groups,
    )
    return keras.Model(inputs, output_head(features, channels=channels), name=name)


TYPE_SPREAD = 0.5  # artery/vein head kernels start at vessel +- this x its std, random direction


def copy_vessel_weights(
    av_model: keras.Model, vessel_model: keras.Model, type_spread: float = TYPE_SPREAD, seed: int = 0
) -> list[str]:
    """Start `av_model` (`build_sa_unetv2_av`) from a trained vessel SA-UNetv2, in place.

    Every layer with weights takes the vessel layer of the same name; the head's 1x1 convolution,
    (1, 1, F, 1) there, is copied into each of the three channels, so that in inference mode the
    vessel channel reproduces the vessel network's output. The artery and vein kernels then move
    apart, to k + d and k - d, d a random direction (seeded) of `type_spread` times the kernel's
    standard deviation per weight: with equal kernels the trunk's gradient from the two channels
    depends only on artery + vein, that is on "vessel", and the type is never learnt (a saddle
    training does not leave). `type_spread=0` keeps them equal. An artery/vein network as
    `vessel_model` is copied as it is, head included. Returns the names of the layers copied.
    Raises ValueError, naming the layer, when the two networks differ (a layer missing from
    `vessel_model`, or of another shape).
    """
    copied = []
    for layer in av_model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        try:
            source = vessel_model.get_layer(layer.name).get_weights()
        except ValueError:
            raise ValueError(
                f"the vessel model '{vessel_model.name}' has no layer '{layer.name}'"
            ) from None
        if layer.name == HEAD_CONV and source[0].shape[-1] == 1:  # an A/V file's head as it is
            channels = weights[0].shape[-1]
            source = [np.repeat(w, channels, axis=-1) if w.shape[-1] == 1 else w for w in source]
            if channels == 3 and source[0].ndim == 4 and type_spread:
                kernel = source[0].copy()
                rng = np.random.default_rng(seed)
                apart = rng.standard_normal(kernel[..., 0].shape) * type_spread * kernel[..., 0].std()
                kernel[..., 1] += apart
                kernel[..., 2] -= apart
                source = [kernel, *source[1:]]
        shapes = [w.shape for w in weights], [w.shape for w in source]
        if shapes[0] != shapes[1]:
            raise ValueError(
                f"layer '{layer.name}' holds weights of shapes {shapes[0]} here but {shapes[1]} "
                f"in the vessel model '{vessel_model.name}'"
            )
        layer.set_weights(source)
        copied.append(layer.name)
    return copied
