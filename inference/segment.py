"""One image in, its vessel probability map out: resample, pad, predict, crop, resample back.

`segment` is the one place where the pad/predict/crop protocol lives, used by
evaluate.py, predict.py and the end of train.py: an image is padded
(bottom/right) to the network's size (the dataset's paper size, or the next
multiple of 8; of 16 for U-Net, whose four down-samplings need it), predicted
and cropped back; with a factor it is first
resampled (`data.scale`) and its probabilities resampled back; images over
`MAX_WHOLE_PIXELS` are predicted in overlapping tiles. With `mirror` (test-time
augmentation, `--tta`) the image is also predicted mirrored left-right and the two
maps are averaged.
"""

from __future__ import annotations

import time

import numpy as np

from data.geometry import crop_to, pad_to, padded_shape
from data.io import to_unit_float
from data.scale import resize_image, resize_probability, scaled_shape

# Larger images are predicted in tiles: a 20-megapixel photograph at factor 1 would need
# about 8 GB in one piece. A DRIVE test image upsampled x4 (5.3 Mpx) still goes whole.
MAX_WHOLE_PIXELS = 3072 * 3072
TILE, TILE_MARGIN = 1024, 64


def segment(
    predictor,
    image: np.ndarray,
    pad_shape: tuple[int, int] | None = None,
    factor: float | tuple[float, ...] = 1.0,
    times: dict[str, float] | None = None,
    during_network=None,
    mirror: bool = False,
) -> np.ndarray:
    """Vessel probability of one image.

    image: uint8 (H, W, 3). pad_shape: (Hp, Wp) >= (H, W), multiples of 8
    (None: the next multiples of 8); rounded up to `predictor.multiple` where
    that is larger (16 for U-Net). factor: the image is resampled by it
    (`data.scale.resize_image`), predicted at that size (padded likewise) and
    the probabilities resampled back to (H, W); 1: predicted as it
    is; a tuple of factors (`data.scale.prediction_factors`): the mean of their
    maps. Over MAX_WHOLE_PIXELS it is predicted in tiles. Returns float32 (H, W) in [0, 1]; a
    network of several output channels (the A/V network's vessel, artery, vein) gives (H, W, C).
    times: if given, seconds are added to its "resample", "network" (pad, predict, crop)
    and "resample_back" (including the mean of several maps) entries.
    during_network: called once every resampled image is made, before the first prediction;
    it returns a function called after the last (predict.py overlaps its reading and writing
    with the network this way).
    mirror: also predict the image mirrored left-right at each size and average the two maps
    (test-time augmentation; twice the network time).
    """
    factors = factor if isinstance(factor, tuple) else (factor,)
    height, width = image.shape[:2]
    scaled = []
    for f in factors:  # every resampling first, then the network, then back
        if f == 1.0:
            scaled.append(image)
            continue
        start = time.perf_counter()
        scaled.append(resize_image(image, scaled_shape((height, width), f)))
        _add(times, "resample", start)
    join = during_network() if during_network is not None else None
    try:
        maps = [
            _segment_at_size(predictor, s, pad_shape if f == 1.0 else None, times, mirror)
            for s, f in zip(scaled, factors, strict=True)
        ]
    finally:
        if join is not None:
            join()
    del scaled
    mean = None
    for f, prob in zip(factors, maps, strict=True):
        start = time.perf_counter()
        if f != 1.0:
            prob = resize_probability(prob, (height, width))
        if mean is None:
            mean = prob
        else:  # summed in place as each comes: one full-size map besides the sum
            mean += prob
        del prob
        if f != 1.0 or len(factors) > 1:
            _add(times, "resample_back", start)
    if len(factors) > 1:
        mean /= np.float32(len(factors))
    return mean


def segment_by_vessels(
    predictor,
    image: np.ndarray,
    fov: np.ndarray,
    factors: tuple[float, ...],
    threshold: float,
    calibre_range,
    pad_shape: tuple[int, int] | None = None,
    times: dict[str, float] | None = None,
    during_network=None,
    mirror: bool = False,
) -> tuple[np.ndarray, tuple[float, ...]]:
    """`--scale vessels`: the image segmented at `factors` (those of --scale auto), then, where
    the main vessels of that map (above `threshold`, inside bool `fov`) are wider at the
    network's scale than `calibre_range` (px), segmented again at the factor that brings them to
    its middle (`data.scale.vessel_factor`; narrower ones are never enlarged). Returns (the map,
    the factors it was predicted at).
    A map of several channels is judged by its first, the vessel probability (the A/V network's)."""
    from data.scale import vessel_factor

    prob = segment(predictor, image, pad_shape, factors, times, during_network, mirror)
    vessel = prob if prob.ndim == 2 else prob[..., 0]
    factor = vessel_factor(vessel > threshold, fov, factors[0], calibre_range)
    del vessel
    if factor == factors[0]:
        return prob, factors
    del prob
    return segment(predictor, image, None, factor, times, None, mirror), (factor,)


def _segment_at_size(
    predictor, image: np.ndarray, pad_shape=None, times=None, mirror: bool = False
) -> np.ndarray:
    """The network on an image as it is: whole, or in tiles over MAX_WHOLE_PIXELS; with `mirror`
    the mean of it and of its left-right mirror image's map, mirrored back."""
    prob = _network(predictor, image, pad_shape, times)
    if mirror:
        mirrored = _network(predictor, np.ascontiguousarray(image[:, ::-1]), pad_shape, times)
        start = time.perf_counter()
        prob = (prob + mirrored[:, ::-1]) * np.float32(0.5)  # a new array: outputs may be read-only
        _add(times, "network", start)
    return prob


def _network(predictor, image: np.ndarray, pad_shape=None, times=None) -> np.ndarray:
    """`_segment_at_size` of one image without the mirror."""
    height, width = image.shape[:2]
    if height * width > MAX_WHOLE_PIXELS:
        return _segment_tiles(predictor, image, times)
    return _predict_whole(predictor, image, pad_shape, times)


def _add(times: dict[str, float] | None, key: str, start: float) -> None:
    """Add the seconds since `start` to `times[key]` (no-op without `times`)."""
    if times is not None:
        times[key] = times.get(key, 0.0) + time.perf_counter() - start


def _predict_whole(predictor, image: np.ndarray, pad_shape=None, times=None) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (H, W), or (H, W, C) for a network of C > 1 output channels:
    padded (bottom/right) to `pad_shape`, predicted, cropped."""
    start = time.perf_counter()
    height, width = image.shape[:2]
    # A dataset's paper size (multiples of 8) grows to the network's multiple (16 for U-Net).
    pad_shape = padded_shape(pad_shape or (height, width), getattr(predictor, "multiple", 8))
    batch = to_unit_float(pad_to(image, pad_shape)[None])
    prob = np.asarray(predictor.predict(batch), dtype="float32")[0]
    prob = crop_to(prob[..., 0] if prob.shape[-1] == 1 else prob, (height, width))
    _add(times, "network", start)
    return prob


def _segment_tiles(predictor, image: np.ndarray, times=None) -> np.ndarray:
    """`segment` of a large image in TILE x TILE tiles; each keeps its centre, TILE_MARGIN px of
    context on every side are predicted but dropped (so memory is bounded by one tile)."""
    height, width = image.shape[:2]
    step = TILE - 2 * TILE_MARGIN
    prob = None  # (H, W) or (H, W, C), as the first tile comes
    for top in range(0, height, step):
        for left in range(0, width, step):
            y0, x0 = max(0, top - TILE_MARGIN), max(0, left - TILE_MARGIN)
            y1, x1 = min(height, top + step + TILE_MARGIN), min(width, left + step + TILE_MARGIN)
            tile = _predict_whole(predictor, image[y0:y1, x0:x1], times=times)
            if prob is None:
                prob = np.zeros((height, width, *tile.shape[2:]), dtype=np.float32)
            bottom, right = min(height, top + step), min(width, left + step)
            prob[top:bottom, left:right] = tile[top - y0 : bottom - y0, left - x0 : right - x0]
    return prob
