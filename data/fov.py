"""Generated field-of-view masks for datasets that ship none (STARE, your own images).

Method (NumPy + Pillow). The surround's colour is the commonest colour along
the image's border (`border_colour`). Then:

- a dark surround (every channel at most `FOV_DARK_SURROUND`, as with nearly
  every camera): the red channel, smoothed with a 5-pixel median filter, is
  thresholded at `FOV_THRESHOLD_FRACTION` of the way from the surround's
  level (the 2nd percentile; the border colour's red where that is more than
  `FOV_MIN_LEVEL` darker: a field of view that nearly fills the frame leaves
  under 2 % of surround) to the bright level (90th percentile). Where that
  puts the threshold under `FOV_MIN_LEVEL` above the surround (a dim
  photograph, or a field of view under a tenth of the frame, whose 90th
  percentile is surround), the bright level is taken from the pixels more
  than `FOV_NOISE_LEVEL` above the surround, and the threshold is at least
  that far up (`_level`);
- a grey or bright surround: the same on the image's distance from the
  surround's colour (the largest difference over the three channels),
  smoothed likewise, from 0 (the surround);
- a border of retina's colour (not dark, red above green and blue by
  `FOV_RETINA_RED` levels and a quarter): the retina fills the frame and has
  no border to find, so the whole image is the field of view (its diameter is
  then not found, `data.scale.fov_diameter`, and `--scale auto` uses factor 1).

The result is cleaned by an opening (removes specks and text in the
surround), its holes are filled (dark lesions or the macula inside the field
stay inside) and, if `FOV_ERODE` > 0, it is eroded by that many pixels. On
DRIVE's 40 images this agrees with DRIVE's own masks at intersection-over-union
0.989 or better (median 0.996), on HRF's 45 at 0.999; benchmarks/fov.py
measures all four public datasets and hard cases made from them, and
docs/prediction.md ("How the field of view is found") gives its tables and
the cases that still fail.

A photograph whose longer side exceeds `FOV_WORK_SIDE` is masked on its red
channel (or its three channels, for a surround that is not dark) reduced by
a whole factor (box average) to at most that side, and the mask is enlarged
back (bilinear, thresholded at half): a 3504 x 2336 photograph takes about
0.3 s instead of 5-8 s (median and min/max filters at full size), and the
mask differs from the full-size method's on the rim only (HRF 01_h:
intersection-over-union 0.9993, diameter 3264.1 px instead of 3263.5 px).
Images up to that side (DRIVE, STARE, CHASE_DB1) are masked at full size.

Masks are cached as PNG files (0/255) so they can be inspected:
`<cache>/fov/<dataset>/<image name>.png`, keyed by a hash of the image
pixels and these parameters (a change writes a new file).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from utils.io import write_image

FOV_THRESHOLD_FRACTION = 0.15
FOV_MIN_LEVEL = 12  # a threshold closer than this to the surround's level is checked (`_level`)
FOV_NOISE_LEVEL = 4  # the closest a threshold comes to the surround's level
FOV_OPEN = 7
FOV_ERODE = 0
FOV_WORK_SIDE = 1024  # longer sides above this are masked on a reduced copy
FOV_DARK_SURROUND = 40  # a border colour with every channel at most this is a dark surround
FOV_RETINA_RED = 20  # a border colour with red this far above green and blue is retina
FOV_COLOUR_BIN = 16  # grey levels per bin when finding the border's commonest colour
FOV_BORDER_DEPTH = 5  # pixels from each side whose median is the border's colour there
# 2: photographs over FOV_WORK_SIDE masked on a reduced copy; 3: the surround's colour from the
# border (grey and bright surrounds; no border at all)
FOV_VERSION = 3


def generate_fov_mask(image: np.ndarray) -> np.ndarray:
    """Field of view of a fundus photograph: uint8 (H, W, 3) -> bool (H, W); all True where the
    retina fills the frame (no surround)."""
    height, width = image.shape[:2]
    surround = border_colour(image)
    dark = surround.max() <= FOV_DARK_SURROUND
    if not dark and surround[0] - surround[1:].max() >= max(FOV_RETINA_RED, surround[0] / 4):
        return np.ones((height, width), bool)
    work = Image.fromarray(np.ascontiguousarray(image[:, :, 0] if dark else image))
    times = -(-max(height, width) // FOV_WORK_SIDE)  # ceil: the whole reduction factor
    if times > 1:
        work = work.reduce(times)
    small = (
        _red_channel_mask(work, surround[0]) if dark else _surround_distance_mask(work, surround)
    )
    if times <= 1:
        return small
    # `box` maps the reduced grid exactly onto the full one (its last block may be partial).
    enlarged = Image.fromarray(small.astype(np.uint8) * 255).resize(
        (width, height), Image.Resampling.BILINEAR, box=(0, 0, width / times, height / times)
    )
    return np.asarray(enlarged) > 127


def border_colour(image: np.ndarray) -> np.ndarray:
    """The commonest colour along the border of uint8 (H, W, 3): float (3,).

    The border is each side's outermost `FOV_BORDER_DEPTH` pixels, their median across that
    depth (less noise); its colours are binned by `FOV_COLOUR_BIN` levels per channel, and of
    the four fullest bins' median colours the one with the most border pixels within half a bin
    (every channel) wins: the median of those pixels (a colour on a bin's edge is not split).
    """
    depth = max(1, min(FOV_BORDER_DEPTH, *image.shape[:2]))
    ring = np.concatenate([
        np.median(image[:depth], axis=0), np.median(image[-depth:], axis=0),
        np.median(image[:, :depth], axis=1), np.median(image[:, -depth:], axis=1),
    ])  # fmt: skip
    bins = (ring // FOV_COLOUR_BIN).astype(np.int64)
    keys = (bins[:, 0] * 256 + bins[:, 1]) * 256 + bins[:, 2]
    values, counts = np.unique(keys, return_counts=True)
    best, support = None, -1
    for key in values[np.argsort(counts)[::-1][:4]]:
        near = np.abs(ring - np.median(ring[keys == key], axis=0)).max(axis=1) <= FOV_COLOUR_BIN / 2
        if near.sum() > support:
            best, support = np.median(ring[near], axis=0), near.sum()
    return best


def _red_channel_mask(red: Image.Image, surround_red: float) -> np.ndarray:
    """The dark-surround method of the module docstring on the red channel ("L" image) -> bool
    (H, W); `surround_red` is the border colour's red."""
    smooth = np.asarray(red.filter(ImageFilter.MedianFilter(5)), dtype=np.float32)
    low = float(np.percentile(smooth, 2))
    if low > surround_red + FOV_MIN_LEVEL:
        low = surround_red  # under 2 % of surround: the 2nd percentile is retina
    return _clean(smooth > _level(smooth, low))


def _surround_distance_mask(rgb: Image.Image, surround: np.ndarray) -> np.ndarray:
    """The grey or bright surround's method of the module docstring on an "RGB" image -> bool
    (H, W): the largest channel difference from `surround`, smoothed, thresholded."""
    difference = np.abs(np.asarray(rgb, dtype=np.int16) - np.round(surround).astype(np.int16))
    distance = Image.fromarray(difference.max(axis=2).astype(np.uint8))
    smooth = np.asarray(distance.filter(ImageFilter.MedianFilter(5)), dtype=np.float32)
    return _clean(smooth > _level(smooth, 0.0))


def _level(smooth: np.ndarray, low: float) -> float:
    """The threshold between the surround's level `low` and the retina's in a smoothed float
    (H, W) image: `FOV_THRESHOLD_FRACTION` of the way to the 90th percentile. Where that is
    under `FOV_MIN_LEVEL` above `low` (a dim photograph, or a field of view under a tenth of the
    frame, whose 90th percentile is surround) the retina's level is the 90th percentile of the
    pixels more than `FOV_NOISE_LEVEL` above `low`, and the threshold at least that far up."""
    high = float(np.percentile(smooth, 90))
    if FOV_THRESHOLD_FRACTION * (high - low) >= FOV_MIN_LEVEL:
        return low + FOV_THRESHOLD_FRACTION * (high - low)
    above = smooth[smooth > low + FOV_NOISE_LEVEL]
    if above.size:
        high = float(np.percentile(above, 90))
    return low + max(FOV_THRESHOLD_FRACTION * (high - low), FOV_NOISE_LEVEL)


def _clean(mask: np.ndarray) -> np.ndarray:
    """Opening, hole filling and (`FOV_ERODE`) erosion of a bool (H, W) mask."""
    # In SciPy: the same pixels as Pillow's Min/MaxFilter and a border flood fill (edges
    # replicated, 4-connected), 30 times faster.
    from scipy import ndimage

    mask = ndimage.minimum_filter(mask, size=FOV_OPEN, mode="nearest")
    mask = ndimage.maximum_filter(mask, size=FOV_OPEN, mode="nearest")
    mask = ndimage.binary_fill_holes(mask)
    if FOV_ERODE:
        mask = ndimage.minimum_filter(mask, size=2 * FOV_ERODE + 1, mode="nearest")
    return mask


def fov_key(image: np.ndarray) -> str:
    """Hash of the image pixels and the mask parameters (names the cached PNG)."""
    h = hashlib.sha256()
    h.update(
        repr(
            (
                FOV_VERSION,
                FOV_THRESHOLD_FRACTION,
                FOV_MIN_LEVEL,
                FOV_NOISE_LEVEL,
                FOV_OPEN,
                FOV_ERODE,
                FOV_DARK_SURROUND,
                FOV_RETINA_RED,
                FOV_COLOUR_BIN,
                FOV_BORDER_DEPTH,
                image.shape,
            )
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
