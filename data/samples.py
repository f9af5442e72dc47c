"""The data classes every reader returns: `Sample` (one image and its references) and `Dataset`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Sample:
    """One image with its reference: image uint8 (H, W, 3), label uint8 (H, W) in {0, 1} for
    vessel datasets and a data.av class map (0 background, 1 artery, 2 vein, 3 crossing,
    4 uncertain) for the artery/vein datasets (rite, hrf_av), mask bool (H, W) field of view,
    second uint8 (H, W) in {0, 1} or None (second observer), source: the source image id."""

    name: str
    image: np.ndarray
    label: np.ndarray
    mask: np.ndarray
    second: np.ndarray | None = None
    source: str = ""


@dataclass
class Dataset:
    """A dataset split into train and test samples; `image_shape` is the largest (H, W),
    `pad_shape` the (H, W) every image is zero-padded to (bottom/right); `excluded`: the
    test images of the split left out because this copy of the data has no label for them."""

    name: str
    pad_shape: tuple[int, int]
    train: list[Sample] = field(default_factory=list)
    test: list[Sample] = field(default_factory=list)
    image_shape: tuple[int, int] = (0, 0)
    excluded: list[str] = field(default_factory=list)
