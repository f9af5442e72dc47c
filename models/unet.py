"""The paper's baselines: U-Net and SA-UNet with SA-UNetv2's conv step.

Both are plain U-Nets (concatenation skips, Conv2DTranspose up-sampling,
1x1 sigmoid head); SA-UNet adds spatial attention between the two steps of
the bottleneck.

- U-Net:   n = 32, stages 32/64/128/256, bottleneck 512, no attention
           (8,636,385 parameters, 137.09 GFLOPs at 592 x 592).
- SA-UNet: n = 16, stages 16/32/64, bottleneck 128 with spatial attention
           (537,299 parameters, 26.54 GFLOPs at 592 x 592).
"""

from __future__ import annotations

import keras
from keras import layers

from models.blocks import conv_step, conv_steps, encoder, output_head, up_conv
from models.common import check_hparams, model_input
from models.layers import SpatialAttention


def build_plain_unet(
    input_shape,
    widths: tuple[int, ...],
    bottleneck: int,
    *,
    bottleneck_attention: bool,
    dropblock_rate: float,
    dropblock_size: int,
    gn_groups: int,
    name: str,
) -> keras.Model:
    """U-Net with len(widths) down-samplings; input (B, H, W, C), output (B, H, W, 1)."""
    check_hparams((*widths, bottleneck), dropblock_rate, dropblock_size, gn_groups)
    step = {
        "dropblock_rate": dropblock_rate,
        "dropblock_size": dropblock_size,
        "gn_groups": gn_groups,
    }

    inputs = model_input(input_shape, multiple=2 ** len(widths))
    x, skips = encoder(inputs, widths, **step)

    x = conv_step(x, bottleneck, name="bottleneck_step1", **step)
    if bottleneck_attention:
        x = SpatialAttention(7, name="bottleneck_attention")(x)
    x = conv_step(x, bottleneck, name="bottleneck_step2", **step)

    for level in range(len(widths), 0, -1):
        filters = widths[level - 1]
        up = up_conv(x, filters, name=f"dec{level}_up")
        x = layers.Concatenate(name=f"dec{level}_concat")([up, skips[level - 1]])
        x = conv_steps(x, filters, f"dec{level}", **step)

    return keras.Model(inputs, output_head(x), name=name)


def build_unet(
    input_shape=(None, None, 3),
    *,
    start_neurons: int = 32,
    dropblock_rate: float = 0.15,
    dropblock_size: int = 7,
    gn_groups: int = 8,
    name: str = "unet",
) -> keras.Model:
    """U-Net baseline: four down-samplings (n, 2n, 4n, 8n), bottleneck 16n."""
    n = start_neurons
    return build_plain_unet(
        input_shape,
        (n, 2 * n, 4 * n, 8 * n),
        16 * n,
        bottleneck_attention=False,
        dropblock_rate=dropblock_rate,
        dropblock_size=dropblock_size,
        gn_groups=gn_groups,
        name=name,
    )


def build_sa_unet(
    input_shape=(None, None, 3),
    *,
    start_neurons: int = 16,
    dropblock_rate: float = 0.15,
    dropblock_size: int = 7,
    gn_groups: int = 8,
    name: str = "sa_unet",
) -> keras.Model:
    """SA-UNet baseline (GN + SiLU variant): stages n, 2n, 4n, bottleneck 8n with spatial attention."""
    n = start_neurons
    return build_plain_unet(
        input_shape,
        (n, 2 * n, 4 * n),
        8 * n,
        bottleneck_attention=True,
        dropblock_rate=dropblock_rate,
        dropblock_size=dropblock_size,
        gn_groups=gn_groups,
        name=name,
    )
