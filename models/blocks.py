"""The convolution step shared by SA-UNetv2 and both baselines."""

from __future__ import annotations

import math

from keras import layers

from models.layers import DropBlock2D, GroupNormalization
from utils.errors import UserError


def conv_step(
    x, filters: int, *, dropblock_rate: float, dropblock_size: int, gn_groups: int, name: str
):
    """Conv2D(filters, 3x3, same, he_normal) -> DropBlock -> GroupNorm(gn_groups, eps 1e-3) -> SiLU."""
    x = layers.Conv2D(
        filters, 3, padding="same", kernel_initializer="he_normal", name=f"{name}_conv"
    )(x)
    x = DropBlock2D(dropblock_rate, dropblock_size, name=f"{name}_dropblock")(x)
    x = GroupNormalization(groups=gn_groups, epsilon=1e-3, name=f"{name}_gn")(x)
    return layers.Activation("silu", name=f"{name}_silu")(x)


def up_conv(x, filters: int, name: str):
    """Conv2DTranspose(filters, 3x3, stride 2, same): doubles H and W."""
    return layers.Conv2DTranspose(filters, 3, strides=2, padding="same", name=name)(x)


def output_head(x, name: str = "head", channels: int = 1):
    """Conv2D(channels, 1x1, he_normal) -> sigmoid, kept in float32 for mixed precision: one
    independent probability per channel (B, H, W, channels)."""
    x = layers.Conv2D(channels, 1, kernel_initializer="he_normal", name=f"{name}_conv")(x)
    return layers.Activation("sigmoid", dtype="float32", name=f"{name}_sigmoid")(x)


def fold_threshold(model, threshold: float, name: str = "head") -> float:
    """Move the operating point `threshold` of `model`'s output to 0.5, in place: subtract
    logit(threshold) from the bias of the output head's 1x1 convolution, so that the new output
    is sigmoid(z - logit(threshold)) and `new > 0.5` marks exactly the pixels `old > threshold`
    did (the ranking of pixels, hence AUC, is unchanged). Returns the shift added to the bias."""
    if not 0.0 < threshold < 1.0:
        raise UserError(f"a threshold to fold must lie strictly between 0 and 1, got {threshold}")
    try:
        conv = model.get_layer(f"{name}_conv")
    except ValueError:
        raise UserError(f"model '{model.name}' has no output head '{name}_conv' to fold into") from None
    kernel, bias = conv.get_weights()
    shift = -math.log(threshold / (1.0 - threshold))
    conv.set_weights([kernel, bias + shift])
    return shift


def conv_steps(x, filters: int, stage: str, count: int = 2, **step_kwargs):
    """`count` conv steps named `{stage}_step1`, `{stage}_step2`, ..."""
    for i in range(count):
        x = conv_step(x, filters, name=f"{stage}_step{i + 1}", **step_kwargs)
    return x


def encoder(x, widths, **step_kwargs):
    """Two conv steps then a 2x2 max-pool per width (stages `enc1`, `enc2`, ...).

    Returns the pooled output and the skips (each stage's output before pooling).
    """
    skips = []
    for level, filters in enumerate(widths, start=1):
        x = conv_steps(x, filters, f"enc{level}", **step_kwargs)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"enc{level}_pool")(x)
    return x, skips
