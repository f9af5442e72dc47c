"""Attention U-Net baseline of the paper's table (docs/paper.md section 2).

    input (H, W, 3)
    e1 = 2 x step(64)                      ---------------------- gate(e1, d1) --.
    e2 = 2 x step(128)  after MaxPool 2x2  ---------- gate(e2, d2) --.           |
    e3 = 2 x step(256)  after MaxPool 2x2  - gate(e3, d3) --.        |           |
    b  = 2 x step(512)  after MaxPool 2x2                   |        |           |
    d3 = SiLU(ConvT(256)(b)) -> concat[d3, gate(e3, d3)] -> 2 x step(256)        |
    d2 = SiLU(ConvT(128)(.)) -> concat[d2, gate(e2, d2)] -> 2 x step(128)        |
    d1 = SiLU(ConvT(64)(.))  -> concat[d1, gate(e1, d1)] -> 2 x step(64) --------'
    output = sigmoid(Conv2D(1, 1x1))       (H, W, 1) vessel probability

gate(s, d) = s * sigmoid(psi(ReLU(theta(s) + phi(d)))): theta and phi are 1x1
convolutions with bias from f to f/2 channels, psi a 1x1 convolution with bias
to one channel (the additive attention gate of Oktay et al., 2018, in the
layout of the Keras "att_unet_2d" with filters 64/128/256/512).
step(f) = Conv2D(f, 3x3) -> DropBlock(0.15, 7x7) -> GroupNorm(8) -> SiLU.
8,649,828 parameters and 425.05 GFLOPs at 592 x 592 (python complexity.py).
Built from Keras layers only (Conv2D, Add, Multiply, ...): no Lambda layer.
"""

from __future__ import annotations

import keras
from keras import layers

from models.blocks import conv_steps, encoder, output_head, up_conv
from models.common import check_hparams, model_input


def attention_gate(skip, gating, filters: int, name: str):
    """skip * sigmoid(psi(ReLU(theta(skip) + phi(gating)))); skip (B, H, W, f), gating (B, H, W, *).

    theta and phi: 1x1 convolutions with bias to `filters` // 2 channels; psi: 1x1 to one channel.
    """
    inner = max(filters // 2, 1)
    theta = layers.Conv2D(inner, 1, name=f"{name}_theta")(skip)
    phi = layers.Conv2D(inner, 1, name=f"{name}_phi")(gating)
    x = layers.Add(name=f"{name}_add")([theta, phi])
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    alpha = layers.Conv2D(1, 1, activation="sigmoid", name=f"{name}_psi")(x)
    return layers.Multiply(name=f"{name}_gated")([skip, alpha])


def build_attention_unet(
    input_shape=(None, None, 3),
    *,
    start_neurons: int = 64,
    dropblock_rate: float = 0.15,
    dropblock_size: int = 7,
    gn_groups: int = 8,
    name: str = "attention_unet",
) -> keras.Model:
    """Attention U-Net: stages n, 2n, 4n, bottleneck 8n; input (B, H, W, C), output (B, H, W, 1)."""
    n = start_neurons
    widths = (n, 2 * n, 4 * n)
    check_hparams((*widths, 8 * n), dropblock_rate, dropblock_size, gn_groups)
    step = {
        "dropblock_rate": dropblock_rate,
        "dropblock_size": dropblock_size,
        "gn_groups": gn_groups,
    }

    inputs = model_input(input_shape)
    x, skips = encoder(inputs, widths, **step)

    x = conv_steps(x, 8 * n, "bottleneck", **step)

    for level in range(len(widths), 0, -1):
        filters = widths[level - 1]
        up = up_conv(x, filters, name=f"dec{level}_up")
        up = layers.Activation("silu", name=f"dec{level}_up_silu")(up)
        gated = attention_gate(skips[level - 1], up, filters, name=f"dec{level}_gate")
        x = layers.Concatenate(name=f"dec{level}_concat")([up, gated])
        x = conv_steps(x, filters, f"dec{level}", **step)

    return keras.Model(inputs, output_head(x), name=name)
