"""The one padding and cropping code: zeros at the bottom and right, crop from the top-left.

DRIVE images (584 x 565, also RITE's) are padded to 592 x 592 and STARE images (605 x 700)
to 704 x 704, as in the paper, CHASE_DB1 images (960 x 999) to 1008 x 1008, as
in the SA-UNet paper; any other image goes to the next multiple of 8 in each
direction (HRF at half resolution, 1168 x 1752, already is one; SA-UNetv2
downsamples three times). U-Net downsamples four times and needs multiples of
16: `inference.segment` and the trainer pad further for it
(`models.common.input_multiple`). `crop_to` with the original (h, w) is the exact
inverse of `pad_to`.

Array layouts: (H, W), (H, W, C) or a batch (N, H, W, C).
"""

from __future__ import annotations

import numpy as np

# The papers' padded sizes (H, W): SA-UNetv2 (DRIVE, STARE), SA-UNet (CHASE_DB1).
PAPER_PAD_SHAPES: dict[str, tuple[int, int]] = {
    "drive": (592, 592),
    "stare": (704, 704),
    "chase_db1": (1008, 1008),
    "rite": (592, 592),  # RITE's photographs are DRIVE's
}


def padded_shape(shape: tuple[int, int], multiple: int = 8) -> tuple[int, int]:
    """(h, w) rounded up to the next multiple of `multiple` in each direction."""
    h, w = int(shape[0]), int(shape[1])
    return (-(-h // multiple) * multiple, -(-w // multiple) * multiple)


def pad_shape_for(dataset: str, shape: tuple[int, int]) -> tuple[int, int]:
    """The padded (H, W) used for `dataset`: the paper's size when it fits, else `padded_shape`."""
    paper = PAPER_PAD_SHAPES.get(dataset)
    if paper and shape[0] <= paper[0] and shape[1] <= paper[1]:
        return paper
    return padded_shape(shape)


def _hw_axes(array: np.ndarray) -> tuple[int, int]:
    if array.ndim in (2, 3):
        return 0, 1
    if array.ndim == 4:
        return 1, 2
    raise ValueError(
        f"expected an array of shape (H, W), (H, W, C) or (N, H, W, C), got {array.shape}"
    )


def pad_to(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Zero-pad `array` at the bottom and right to spatial size `shape` = (H, W)."""
    array = np.asarray(array)
    ah, aw = _hw_axes(array)
    h, w = array.shape[ah], array.shape[aw]
    if h > shape[0] or w > shape[1]:
        raise ValueError(
            f"cannot pad an image of {h} x {w} to the smaller size {shape[0]} x {shape[1]}"
        )
    widths = [(0, 0)] * array.ndim
    widths[ah] = (0, shape[0] - h)
    widths[aw] = (0, shape[1] - w)
    return np.pad(array, widths, mode="constant", constant_values=0)


def crop_to(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The top-left `shape` = (h, w) region of `array` (the inverse of `pad_to`)."""
    array = np.asarray(array)
    ah, _ = _hw_axes(array)
    if array.shape[ah] < shape[0] or array.shape[ah + 1] < shape[1]:
        raise ValueError(f"cannot crop {array.shape} to the larger size {shape[0]} x {shape[1]}")
    index = [slice(None)] * array.ndim
    index[ah] = slice(0, shape[0])
    index[ah + 1] = slice(0, shape[1])
    return array[tuple(index)]
