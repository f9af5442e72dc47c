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


def model_input(input_shape):
    """keras.Input for (H, W, C); H and W are None (any size) or multiples of 8."""
    if len(input_shape) != 3:
        raise UserError(f"input_shape must be (H, W, C), got {tuple(input_shape)}")
    height, width, channels = input_shape
    for size in (height, width):
        if size is not None and (not isinstance(size, int) or size < 8 or size % 8):
            raise UserError(
                f"input height and width must be multiples of 8 (got {height} x {width})"
            )
    check_positive_int(channels, "input channels")
    return layers.Input(shape=(height, width, channels), name="image")
