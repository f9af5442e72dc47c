"""Artery/vein labels: one class map for every label set (RITE, HRF-AV) and the predicted maps.

A class map is an (H, W) uint8 array of these values:

- `BACKGROUND` 0: not a vessel.
- `ARTERY` 1, `VEIN` 2.
- `CROSSING` 3: a pixel where an artery and a vein cross (RITE green); HRF-AV's green also
  marks any vessel its annotators called neither artery nor vein.
- `UNCERTAIN` 4: a vessel of uncertain type (RITE white).

Crossing and uncertain pixels are vessel pixels whose type is not scored.
"""

from __future__ import annotations

import numpy as np

BACKGROUND, ARTERY, VEIN, CROSSING, UNCERTAIN = 0, 1, 2, 3, 4
CLASS_NAMES = ("background", "artery", "vein", "crossing", "uncertain")

# Label colours (RGB) of RITE and HRF-AV, in class order.
COLOURS = np.array(
    [(0, 0, 0), (255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 255, 255)], dtype=np.int32
)


def classes_from_colours(label: np.ndarray, colours: np.ndarray = COLOURS) -> np.ndarray:
    """(H, W, 3) uint8 RGB label -> (H, W) uint8 class map, each pixel to its nearest colour.

    Stray and anti-aliased pixels (magenta, cyan, red-blue blends, near-black edges) go to the
    nearest of `colours` (squared RGB distance; ties to the lower class).
    """
    rgb = np.asarray(label)
    if rgb.ndim != 3 or rgb.shape[-1] < 3:
        raise ValueError(f"an A/V label must be (H, W, 3) RGB, got shape {rgb.shape}")
    rgb = rgb[..., :3].astype(np.int32)
    classes = np.zeros(rgb.shape[:2], np.uint8)
    best = np.full(rgb.shape[:2], np.iinfo(np.int32).max, np.int32)
    for index, colour in enumerate(colours):  # one colour at a time: HRF-AV is 8 Mpx
        distance = ((rgb - colour) ** 2).sum(axis=-1)
        closer = distance < best
        classes[closer], best[closer] = index, distance[closer]
    return classes


def vessel_mask(classes: np.ndarray) -> np.ndarray:
    """(H, W) bool: every labelled vessel pixel, of any type."""
    return np.asarray(classes) != BACKGROUND


def av_classes(probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The A/V network's output (H, W, 3) float in [0, 1] (vessel, artery, vein) -> (H, W) uint8
    class map: BACKGROUND where p_vessel <= threshold (a vessel is p > threshold, as the vessel
    metrics count it); of the vessel pixels, ARTERY where p_artery >= p_vein, else VEIN."""
    probs = np.asarray(probs)
    if probs.ndim != 3 or probs.shape[-1] != 3:
        raise ValueError(f"A/V probabilities must be (H, W, 3), got shape {probs.shape}")
    classes = np.where(probs[..., 1] >= probs[..., 2], ARTERY, VEIN).astype(np.uint8)
    classes[probs[..., 0] <= threshold] = BACKGROUND
    return classes


def vote_by_segment(probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The A/V network's output (H, W, 3) (vessel, artery, vein) with each pixel's artery and vein
    probabilities replaced by their means over the vessel segment nearest to it, so a segment
    between two junctions is typed as a whole (`av_classes` then calls it by the mean's larger
    channel); the vessel channel is kept.

    Segments: the skeleton (`measurements.skeleton_of`) of the vessel map (p_vessel > threshold)
    less its junctions (pixels of three or more neighbours) and the skeleton pixels next to them,
    8-connected. Every pixel, vessel or not, belongs to the segment of its nearest segment pixel,
    and a segment's means are taken over its vessel pixels. Junctions are not followed further:
    joining the segments that meet at them spreads one false junction's error over a whole tree.
    A map without a segment is returned unchanged (as a float32 copy).
    """
    from scipy import ndimage

    from measurements import junction_labels, neighbour_counts, skeleton_of

    probs = np.array(probs, dtype=np.float32)
    if probs.ndim != 3 or probs.shape[-1] != 3:
        raise ValueError(f"A/V probabilities must be (H, W, 3), got shape {probs.shape}")
    vessel = probs[..., 0] > threshold
    skeleton = skeleton_of(vessel)
    junctions, _ = junction_labels(skeleton, neighbour_counts(skeleton))
    near_junction = ndimage.binary_dilation(junctions > 0, structure=np.ones((3, 3), bool))
    segments, n = ndimage.label(skeleton & ~near_junction, structure=np.ones((3, 3)))
    if n == 0:
        return probs
    _, (rows, cols) = ndimage.distance_transform_edt(segments == 0, return_indices=True)
    owner = segments[rows, cols]
    index = np.arange(1, n + 1)
    for channel in (1, 2):  # each segment's own skeleton pixels are vessel pixels it owns
        means = ndimage.mean(probs[..., channel][vessel], owner[vessel], index)
        probs[..., channel] = np.concatenate([[0.0], means]).astype(np.float32)[owner]
    return probs


def av_overlay(image: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The photograph (H, W, 3) uint8 with each vessel pixel of the class map (H, W) painted in its
    label colour (`COLOURS`: arteries red, veins blue; crossings green and uncertain white where a
    reference map holds them); background pixels keep the photograph's colour."""
    image, classes = np.asarray(image), np.asarray(classes)
    if image.shape[:2] != classes.shape:
        raise ValueError(f"image {image.shape[:2]} and class map {classes.shape} differ in size")
    out = np.array(image[..., :3], dtype=np.uint8)
    for value in (ARTERY, VEIN, CROSSING, UNCERTAIN):
        out[classes == value] = COLOURS[value]
    return out
