"""The convolution step shared by SA-UNetv2 and both baselines."""

from __future__ import annotations

from keras import layers

from models.layers import DropBlock2D, GroupNormalization


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


def output_head(x, name: str = "head"):
    """Conv2D(1, 1x1, he_normal) -> sigmoid, kept in float32 for mixed precision."""
    x = layers.Conv2D(1, 1, kernel_initializer="he_normal", name=f"{name}_conv")(x)
    return layers.Activation("sigmoid", dtype="float32", name=f"{name}_sigmoid")(x)


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
