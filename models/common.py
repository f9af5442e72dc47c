"""Checks and the input layer shared by every model builder."""

from __future__ import annotations

from keras import layers

from utils.checks import check_positive_int, check_rate
from utils.errors import UserError


def check_hparams(widths, dropblock_rate, dropblock_size, gn_groups) -> None:
    """Raise a UserError for hyper-parameters the network cannot be built with."""
    check_rate(dropblock_rate, "dropblock_rate")
    check_positive_int(dropblock_size, "dropblock_size")
    check_positive_int(gn_groups, "gn_groups")
    for width in widths:
        check_positive_int(width, "start_neurons")
        if width % gn_groups:
            raise UserError(
                f"gn_groups={gn_groups} must divide every stage width {tuple(widths)}; "
                "choose start_neurons and gn_groups so it does"
            )


def model_input(input_shape, multiple: int = 8):
    """keras.Input for (H, W, C); H and W are None (any size) or multiples of `multiple` (2 to the
    number of down-samplings)."""
    if len(input_shape) != 3:
        raise UserError(f"input_shape must be (H, W, C), got {tuple(input_shape)}")
    height, width, channels = input_shape
    for size in (height, width):
        if size is not None and (not isinstance(size, int) or size < multiple or size % multiple):
            raise UserError(
                f"input height and width must be multiples of {multiple} (got {height} x {width})"
            )
    check_positive_int(channels, "input channels")
    return layers.Input(shape=(height, width, channels), name="image")


def input_multiple(model) -> int:
    """What a model's input height and width must be multiples of: the product of its pooling
    strides (8 for SA-UNetv2, SA-UNet and Attention U-Net, 16 for U-Net's four down-samplings)."""
    multiple = 1
    for layer in model.layers:
        if isinstance(layer, layers.MaxPooling2D):
            multiple *= max(int(s) for s in layer.strides)
    return multiple
