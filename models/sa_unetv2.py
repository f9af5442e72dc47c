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
"""

from __future__ import annotations

import keras
from keras import layers

from models.blocks import conv_step, conv_steps, output_head, up_conv
from models.common import check_hparams, model_input
from models.layers import CrossScaleSpatialAttention, SpatialAttention


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
    n = start_neurons
    widths = (n, 2 * n, 3 * n, 4 * n)
    check_hparams(widths, dropblock_rate, dropblock_size, gn_groups)

    step = {
        "dropblock_rate": dropblock_rate,
        "dropblock_size": dropblock_size,
        "gn_groups": gn_groups,
    }

    inputs = model_input(input_shape)

    # Encoder: three stages, each two steps then 2x2 max pooling.
    skips = []
    x = inputs
    for level, filters in enumerate(widths[:3], start=1):
        x = conv_steps(x, filters, f"enc{level}", **step)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"enc{level}_pool")(x)

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

    return keras.Model(inputs, output_head(x), name=name)
