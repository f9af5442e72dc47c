"""Vessel measurements of a binary vessel map inside its field of view. Pure functions, no I/O.

Definitions (docs/prediction.md "Measurements"), stated once:

- The skeleton is scikit-image's `skeletonize` of the vessel map (inside the
  FOV). Two skeleton pixels are neighbours when they touch by a side, or by a
  corner that no third skeleton pixel touching both by a side already
  bridges (so an L-shaped step counts as one path, not as a triangle). On
  that graph: an end point has one neighbour, a branch point is a connected
  cluster of pixels with three or more (one per junction, however many
  pixels the junction has).
- Segments: the skeleton without its branch pixels falls into paths, each
  from an end or a junction to an end or a junction (closed loops kept as
  loops). A path's length is that of its pixel centres after a moving
  average over `SMOOTH_PX` pixels (an 8-connected chain alone overstates an
  oblique straight line by up to 8 %); skeleton length is the sum over paths.
- Tortuosity: per path with at least `MIN_SEGMENT_PX` pixels, arc length /
  chord (the distance between its smoothed ends); the mean over paths weighted
  by arc length. 1 for straight vessels; loops are left out.
- Calibre (vessel width): 2 (d - 0.5) at each skeleton pixel, d being the
  Euclidean distance transform (`scipy.ndimage.distance_transform_edt`) to the
  nearest background pixel's centre, the vessel's edge lying half a pixel
  before it: a bar drawn 5 px wide measures 5. The mean is over skeleton pixels. One
  pixel's width takes only a few values on the pixel grid (1, 1.83, 3, 3.47, ... px), so
  the median is that of the paths' mean widths, each path weighted by its pixels: half the
  skeleton (junction pixels aside) lies on paths no wider than it.
- Fractal dimension: box counting on the vessel map (cropped to its bounding
  box), boxes of 2, 4, 8, ... px up to a quarter of its longer side; the
  least-squares slope of log N(boxes hit) against log(1 / box size).
- Area fraction: vessel pixels / FOV pixels.

Units: pixels; millimetres on the retina as well where the pixel size is
known, `mm_per_pixel` directly or from the field of view's angle and its
measured diameter (`mm_per_pixel_from_fov`, `MM_PER_DEGREE`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Millimetres on the retina per degree of visual angle near the posterior pole of an
# emmetropic eye (about 0.29 mm, Drasdo & Fowler, Br J Ophthalmol 1974;58:709-714, the
# conversion fundus-camera makers quote). The field of view's angle (45 degrees for DRIVE's
# Canon CR5) is taken to span the FOV's diameter: an approximation that ignores the eye's own
# length (refraction) and magnification by the camera (about +-10 %).
MM_PER_DEGREE = 0.291
DEFAULT_FOV_DEGREES = 45.0
SMOOTH_PX = 5  # moving-average window (pixels) along a path before its length is taken
MIN_SEGMENT_PX = 10  # shorter paths are left out of the tortuosity
MEASUREMENT_KEYS = (
    "area_fraction",
    "skeleton_length_px",
    "branch_points",
    "end_points",
    "fractal_dimension",
    "calibre_mean_px",
    "calibre_median_px",
    "tortuosity",
    "segments",
)
MM_KEYS = {  # pixel measurement -> its millimetre column
    "skeleton_length_px": "skeleton_length_mm",
    "calibre_mean_px": "calibre_mean_mm",
    "calibre_median_px": "calibre_median_mm",
}
_SIDES = ((0, 1), (1, 0))
_CORNERS = ((1, 1), (1, -1))


@dataclass
class VesselMeasurements:
    """`values`: measurement name -> number (NaN where undefined); `skeleton` bool (H, W);
    `calibre` float32 (H, W): the width (px) at skeleton pixels, 0 elsewhere."""

    values: dict[str, float]
    skeleton: np.ndarray = field(repr=False)
    calibre: np.ndarray = field(repr=False)


def mm_per_pixel_from_fov(fov_diameter_px: float | None, fov_degrees: float) -> float | None:
    """Millimetres on the retina per pixel when a FOV `fov_degrees` wide is `fov_diameter_px` px
    across (`MM_PER_DEGREE`); None without a diameter."""
    if not fov_diameter_px or fov_diameter_px <= 0:
        return None
    return fov_degrees * MM_PER_DEGREE / float(fov_diameter_px)


def skeleton_of(vessels: np.ndarray) -> np.ndarray:
    """bool (H, W) one-pixel-wide skeleton of a bool (H, W) vessel map (scikit-image)."""
    from skimage.morphology import skeletonize

    return skeletonize(np.asarray(vessels, dtype=bool))


def skeleton_calibre(vessels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(skeleton, calibre) of a bool (H, W) vessel map: the skeleton (`skeleton_of`) and float32
    (H, W) the calibre of the module docstring at its pixels, 0 elsewhere."""
    from scipy import ndimage

    vessels = np.asarray(vessels, dtype=bool)
    skeleton = skeleton_of(vessels)
    distance = ndimage.distance_transform_edt(vessels)
    calibre = np.where(skeleton, np.maximum(2.0 * (distance - 0.5), 1.0), 0.0).astype(np.float32)
    return skeleton, calibre


def calibre_map(vessels: np.ndarray) -> np.ndarray:
    """float32 (H, W): each vessel pixel of a bool (H, W) vessel map takes the calibre (px) at its
    nearest skeleton pixel (`skeleton_calibre`), so a whole vessel cross-section carries the
    vessel's width; 0 outside the vessels (and everywhere for a map without vessels)."""
    from scipy import ndimage

    vessels = np.asarray(vessels, dtype=bool)
    skeleton, calibre = skeleton_calibre(vessels)
    if not skeleton.any():
        return np.zeros(vessels.shape, np.float32)
    _, (rows, cols) = ndimage.distance_transform_edt(~skeleton, return_indices=True)
    return np.where(vessels, calibre[rows, cols], 0.0).astype(np.float32)


def _shift(array: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """out[y, x] = array[y + dy, x + dx], False outside."""
    out = np.zeros_like(array)
    h, w = array.shape
    out[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)] = array[
        max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)
    ]
    return out


def _links(skeleton: np.ndarray) -> list[tuple[tuple[int, int], np.ndarray]]:
    """The skeleton graph's edges, each once: [(offset, bool (H, W) of pixels linked to the
    pixel at that offset)], offsets (0, 1), (1, 0), (1, 1), (1, -1)."""
    links = [((dy, dx), skeleton & _shift(skeleton, dy, dx)) for dy, dx in _SIDES]
    for dy, dx in _CORNERS:
        bridged = _shift(skeleton, dy, 0) | _shift(skeleton, 0, dx)
        links.append(((dy, dx), skeleton & _shift(skeleton, dy, dx) & ~bridged))
    return links


def neighbour_counts(skeleton: np.ndarray) -> np.ndarray:
    """int (H, W): each skeleton pixel's number of neighbours in the skeleton graph (0 off it)."""
    skeleton = np.asarray(skeleton, dtype=bool)
    counts = np.zeros(skeleton.shape, dtype=np.int32)
    for (dy, dx), linked in _links(skeleton):
        counts += linked
        counts += _shift(linked, -dy, -dx)  # the pixel at the other end of the link
    return counts


def junction_labels(skeleton: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, int]:
    """(int32 (H, W) labels 1..n of the junctions, n): each junction is a cluster of skeleton
    pixels with three or more neighbours (`counts`, `neighbour_counts`), 8-connected; 0 elsewhere."""
    from scipy import ndimage

    labels, n = ndimage.label(skeleton & (counts >= 3), structure=np.ones((3, 3)))
    return labels.astype(np.int32), int(n)


def skeleton_paths(skeleton: np.ndarray, counts: np.ndarray) -> list[tuple[np.ndarray, bool]]:
    """The skeleton without its branch pixels as ordered paths: [((N, 2) float64 y, x, closed)],
    `counts` from `neighbour_counts`; each open path runs from one end to the other."""
    keep = skeleton & (counts < 3)
    neighbours: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for (dy, dx), linked in _links(skeleton):
        linked = linked & keep & _shift(keep, dy, dx)
        for y, x in zip(*np.nonzero(linked), strict=True):
            a, b = (int(y), int(x)), (int(y) + dy, int(x) + dx)
            neighbours.setdefault(a, []).append(b)
            neighbours.setdefault(b, []).append(a)
    for y, x in zip(*np.nonzero(keep), strict=True):
        neighbours.setdefault((int(y), int(x)), [])
    seen: set[tuple[int, int]] = set()
    paths = []
    # Open paths start at an end (one neighbour or none); what is left are loops.
    starts = [p for p, n in neighbours.items() if len(n) <= 1] + list(neighbours)
    for start in starts:
        if start in seen:
            continue
        closed = len(neighbours[start]) == 2
        order, current, previous = [start], start, None
        seen.add(start)
        while True:
            following = [p for p in neighbours[current] if p != previous and p not in seen]
            if not following:
                break
            previous, current = current, following[0]
            seen.add(current)
            order.append(current)
        paths.append((np.array(order, dtype=np.float64), closed))
    return paths


def _smoothed(points: np.ndarray, closed: bool) -> np.ndarray:
    """(N, 2) points after a moving average over SMOOTH_PX points along the path."""
    if len(points) < 3:
        return points
    half = min(SMOOTH_PX // 2, (len(points) - 1) // 2)
    if half == 0:
        return points
    mode = "wrap" if closed else "nearest"
    from scipy import ndimage

    return ndimage.uniform_filter1d(points, size=2 * half + 1, axis=0, mode=mode)


def _path_length(points: np.ndarray, closed: bool) -> float:
    steps = np.diff(np.vstack([points, points[:1]]) if closed else points, axis=0)
    return float(np.hypot(steps[:, 0], steps[:, 1]).sum())


def box_counting_dimension(vessels: np.ndarray, sizes: list[int] | None = None) -> float:
    """Box-counting (Minkowski-Bouligand) dimension of a bool (H, W) map; NaN if empty or too small.

    Boxes of 2, 4, 8, ... px up to a quarter of the longer side of the map's bounding box
    (or `sizes`, px, to compare with other definitions); the least-squares slope of log N(boxes
    hit, the grid starting at the bounding box's corner) against log(1 / size).
    """
    vessels = np.asarray(vessels, dtype=bool)
    if not vessels.any():
        return float("nan")
    rows, cols = np.flatnonzero(vessels.any(axis=1)), np.flatnonzero(vessels.any(axis=0))
    crop = vessels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    if sizes is None:
        sizes = []
        size = 2
        while size <= max(crop.shape) // 4:
            sizes.append(size)
            size *= 2
    if len(sizes) < 2:
        return float("nan")
    counts = []
    for size in sizes:
        h, w = -(-crop.shape[0] // size) * size, -(-crop.shape[1] // size) * size
        padded = np.zeros((h, w), dtype=bool)
        padded[: crop.shape[0], : crop.shape[1]] = crop
        boxes = padded.reshape(h // size, size, w // size, size).any(axis=(1, 3))
        counts.append(boxes.sum())
    slope, _ = np.polyfit(np.log(1.0 / np.array(sizes)), np.log(np.array(counts)), 1)
    return float(slope)


def _weighted_median(values: list[float], weights: list[float]) -> float:
    """The smallest of `values` with at least half the total weight at or below it."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(np.asarray(weights, dtype=np.float64)[order])
    return float(np.asarray(values)[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def measure_vessels(
    vessels: np.ndarray,
    fov: np.ndarray | None = None,
    mm_per_pixel: float | None = None,
    skeleton: tuple[np.ndarray, np.ndarray] | None = None,
) -> VesselMeasurements:
    """The measurements of the module docstring for a bool (H, W) vessel map inside bool (H, W)
    `fov` (None: the whole image); millimetre columns (`MM_KEYS`) when `mm_per_pixel` is given
    (NaN otherwise). `skeleton`: `skeleton_calibre(vessels & fov)` where already computed."""
    vessels = np.asarray(vessels, dtype=bool)
    fov = np.ones_like(vessels) if fov is None else np.asarray(fov, dtype=bool)
    if fov.shape != vessels.shape:
        raise ValueError(f"fov {fov.shape} and vessels {vessels.shape} differ in shape")
    vessels = vessels & fov
    skeleton, calibre = skeleton if skeleton is not None else skeleton_calibre(vessels)
    counts = neighbour_counts(skeleton)
    _, junctions = junction_labels(skeleton, counts)
    widths = calibre[skeleton]
    lengths, ratios, path_widths, path_pixels = [], [], [], []
    for points, closed in skeleton_paths(skeleton, counts):
        rows, cols = points.astype(np.intp).T
        path_widths.append(float(calibre[rows, cols].mean()))
        path_pixels.append(len(points))
        smooth = _smoothed(points, closed)
        arc = _path_length(smooth, closed)
        lengths.append(arc)
        if not closed and len(points) >= MIN_SEGMENT_PX:
            chord = float(np.hypot(*(smooth[-1] - smooth[0])))
            if chord > 0:
                ratios.append((arc / chord, arc))
    if path_widths:
        median_width = _weighted_median(path_widths, path_pixels)
    else:  # no skeleton, or one of junction pixels only
        median_width = float(np.median(widths)) if widths.size else float("nan")
    values = {
        "area_fraction": float(vessels.sum() / fov.sum()) if fov.any() else float("nan"),
        "skeleton_length_px": float(sum(lengths)),
        "branch_points": float(junctions),
        "end_points": float(np.sum(skeleton & (counts == 1))),
        "fractal_dimension": box_counting_dimension(vessels),
        "calibre_mean_px": float(widths.mean()) if widths.size else float("nan"),
        "calibre_median_px": median_width,
        "tortuosity": (
            float(np.average([r for r, _ in ratios], weights=[w for _, w in ratios]))
            if ratios
            else float("nan")
        ),
        "segments": float(len(ratios)),
    }
    for key, mm_key in MM_KEYS.items():
        values[mm_key] = values[key] * mm_per_pixel if mm_per_pixel else float("nan")
    return VesselMeasurements(values, skeleton, calibre)
