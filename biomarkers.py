"""Calibre biomarkers of the retinal vessels around the optic disc: CRAE, CRVE and AVR.
Pure functions, no I/O.

Definitions (docs/arteries-veins.md), stated once:

- Zone B: the ring from 0.5 to 1 disc diameter D beyond the disc margin, the
  disc being a circle of diameter D: pixel centres at distances from r + 0.5 D
  to r + D from the disc centre, r = D / 2, that is D to 1.5 D.
- Skeleton, junctions, paths and calibre are those of `measurements.py`,
  taken on the whole vessel map inside the FOV (so a vessel's width does not
  depend on where the ring cuts it): calibre 2 (d - 0.5) at skeleton pixels.
- A path's type: the majority of artery against vein pixels of the A/V class
  map (`data.av`) over its skeleton pixels; crossing, uncertain and background
  pixels do not vote; a tie (none included) leaves it unknown and unused.
- One vessel: the paths of one type that meet at a junction inside zone B,
  joined (a vessel branching inside the ring, split by its junction into
  several paths, counts once; an artery crossing a vein stays two vessels, as
  its paths have two types). A vessel counts when its skeleton inside the ring
  reaches both the inner and the outer edge (within `EDGE_TOLERANCE_PX`).
- A vessel's width: per path with at least `MIN_PATH_PX` skeleton pixels in
  the ring, the median calibre over those pixels (the median because one
  pixel's calibre takes few values on the grid and swells next to junctions
  and crossings); the vessel's width is that of its widest path, the trunk
  before it branches.
- CRAE, CRVE (Knudtson et al., Curr Eye Res 2003;27:143-149, the revised
  "big 6" formulas): the six widest arterioles (venules); at each round the
  values are sorted and the widest is combined with the narrowest, the second
  widest with the second narrowest, ..., w = 0.88 sqrt(w1^2 + w2^2) for
  arterioles, 0.95 sqrt(w1^2 + w2^2) for venules, the middle value carried
  unchanged to the next round when the count is odd (6 -> 3 -> 2 -> 1), until
  one value remains. Fewer than six found: all of them, flagged. AVR = CRAE / CRVE.

Units: pixels; micrometres as well where the pixel size is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from data.av import ARTERY, VEIN
from measurements import junction_labels, neighbour_counts, skeleton_calibre, skeleton_paths

ZONE_B_INNER_DD = 0.5  # zone B's inner edge, in disc diameters beyond the disc margin
ZONE_B_OUTER_DD = 1.0  # its outer edge
BIG_SIX = 6  # vessels of each type in Knudtson's formulas
ARTERY_FACTOR = 0.88  # Knudtson's branching coefficient for arterioles
VEIN_FACTOR = 0.95  # and for venules
MIN_PATH_PX = 5  # shorter pieces of path inside the ring give no width
EDGE_TOLERANCE_PX = 2.0  # how near a vessel's skeleton must come to each edge of the ring
MIN_RING_IN_PICTURE = 0.5  # smaller shares of the ring inside the image and FOV: flagged
FLAGS = (
    "fewer_than_6_arteries",
    "fewer_than_6_veins",
    "disc_not_in_picture",  # the disc centre outside the image or FOV, or half the ring or more
)


@dataclass
class RingVessel:
    """One vessel crossing zone B: `kind` ARTERY or VEIN (`data.av`), `width_px` its width,
    `points` (N, 2) int y, x of its skeleton pixels inside the ring."""

    kind: int
    width_px: float
    points: np.ndarray = field(repr=False)


@dataclass
class CalibreBiomarkers:
    """CRAE, CRVE (px; um where the pixel size is given, NaN otherwise) and AVR, NaN where not
    computable; the widths used (px, widest first: n_arteries, n_veins of them); `flags` from
    `FLAGS`."""

    crae_px: float
    crve_px: float
    avr: float
    crae_um: float
    crve_um: float
    n_arteries: int
    n_veins: int
    artery_widths_px: tuple[float, ...]
    vein_widths_px: tuple[float, ...]
    flags: tuple[str, ...]


def disc_from_mask(disc: np.ndarray) -> tuple[tuple[float, float], float]:
    """((x, y) centroid in px, equal-area diameter in px) of a bool (H, W) optic-disc mask."""
    disc = np.asarray(disc, dtype=bool)
    if not disc.any():
        raise ValueError("the optic-disc mask has no disc pixels")
    rows, cols = np.nonzero(disc)
    return (float(cols.mean()), float(rows.mean())), 2.0 * math.sqrt(rows.size / math.pi)


def zone_b_radii(disc_diameter_px: float) -> tuple[float, float]:
    """(inner, outer) radius in px of zone B around a disc `disc_diameter_px` across: D, 1.5 D."""
    disc_radius = disc_diameter_px / 2.0
    return (
        disc_radius + ZONE_B_INNER_DD * disc_diameter_px,
        disc_radius + ZONE_B_OUTER_DD * disc_diameter_px,
    )


def _distance_from(shape: tuple[int, int], centre_xy: tuple[float, float]) -> np.ndarray:
    """float (H, W): each pixel centre's distance (px) from the point (x, y)."""
    rows, cols = np.indices(shape[:2], dtype=np.float64)
    return np.hypot(cols - centre_xy[0], rows - centre_xy[1])


def zone_b(
    shape: tuple[int, int], disc_centre_xy: tuple[float, float], disc_diameter_px: float
) -> np.ndarray:
    """bool (H, W): the pixels of zone B (`zone_b_radii`, edges included) around a disc
    centred at (x, y) px, `disc_diameter_px` across."""
    inner, outer = zone_b_radii(disc_diameter_px)
    distance = _distance_from(shape, disc_centre_xy)
    return (distance >= inner) & (distance <= outer)


def knudtson_equivalent(widths, factor: float) -> float:
    """The central retinal equivalent of the six widest `widths` (any length unit): Knudtson's
    rounds of the module docstring with `factor` (`ARTERY_FACTOR`, `VEIN_FACTOR`); one width is
    its own equivalent; none: NaN."""
    values = sorted((float(w) for w in widths), reverse=True)[:BIG_SIX]
    if not values:
        return float("nan")
    while len(values) > 1:
        values.sort()
        n = len(values)
        combined = [factor * math.hypot(values[i], values[n - 1 - i]) for i in range(n // 2)]
        if n % 2:
            combined.append(values[n // 2])  # the middle value waits for the next round
        values = combined
    return values[0]


def _path_kind(classes: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> int | None:
    """ARTERY or VEIN by majority of the class map at these pixels; None on a tie."""
    arteries = int(np.sum(classes[rows, cols] == ARTERY))
    veins = int(np.sum(classes[rows, cols] == VEIN))
    if arteries == veins:
        return None
    return ARTERY if arteries > veins else VEIN


def _root(parent: list[int], i: int) -> int:
    """The representative of `i` in a union-find forest `parent` (paths halved on the way)."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _end_junctions(junctions: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> set[int]:
    """The junction labels next to (3 x 3 around) the two ends of a path of pixels rows, cols."""
    height, width = junctions.shape
    found = set()
    for y, x in {(rows[0], cols[0]), (rows[-1], cols[-1])}:
        window = junctions[max(0, y - 1) : min(height, y + 2), max(0, x - 1) : min(width, x + 2)]
        found |= set(np.unique(window[window > 0]).tolist())
    return found


def _merge_crossings(
    junctions: np.ndarray, n_junctions: int, paths: list[tuple], calibre: np.ndarray
) -> tuple[np.ndarray, set[int]]:
    """(junction labels with each pair joined by a path no longer than its widest calibre made one,
    the indices of those joining paths). The skeleton of an X-shaped crossing usually has two
    3-way junctions a vessel's width apart, not one 4-way junction."""
    same = list(range(n_junctions + 1))
    links = set()
    for i, (rows, cols) in enumerate(paths):
        ends = _end_junctions(junctions, rows, cols)
        if len(ends) == 2 and rows.size <= calibre[rows, cols].max():
            a, b = ends
            same[_root(same, a)] = _root(same, b)
            links.add(i)
    merged = np.array([_root(same, j) for j in range(n_junctions + 1)], dtype=np.int32)
    return merged[junctions], links


@dataclass
class _Piece:
    """A typed skeleton path's part inside the ring: its (N, 2) points, width (NaN when under
    MIN_PATH_PX pixels) and the ring junctions its ends touch."""

    kind: int
    points: np.ndarray
    width_px: float
    junctions: set[int]


def _joined(pieces: list[_Piece]) -> list[list[_Piece]]:
    """The pieces grouped into vessels: pieces of one kind ending at one junction are joined."""
    parent = list(range(len(pieces)))
    first_at: dict[tuple[int, int], int] = {}  # (kind, junction) -> the first piece ending there
    for i, piece in enumerate(pieces):
        for junction in piece.junctions:
            j = first_at.setdefault((piece.kind, junction), i)
            parent[_root(parent, i)] = _root(parent, j)
    groups: dict[int, list[_Piece]] = {}
    for i, piece in enumerate(pieces):
        groups.setdefault(_root(parent, i), []).append(piece)
    return list(groups.values())


def ring_vessels(
    vessels: np.ndarray,
    classes: np.ndarray,
    disc_centre_xy: tuple[float, float],
    disc_diameter_px: float,
    fov: np.ndarray | None = None,
    skeleton: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[RingVessel]:
    """The arteries and veins crossing zone B (module docstring) in a bool (H, W) vessel map inside
    bool (H, W) `fov` (None: the whole image), typed by the uint8 (H, W) class map `classes`.
    `skeleton`: `measurements.skeleton_calibre(vessels & fov)` where already computed."""
    vessels = np.asarray(vessels, dtype=bool)
    classes = np.asarray(classes)
    fov = np.ones_like(vessels) if fov is None else np.asarray(fov, dtype=bool)
    if classes.shape != vessels.shape or fov.shape != vessels.shape:
        raise ValueError(
            f"vessels {vessels.shape}, classes {classes.shape} and fov {fov.shape} differ in shape"
        )
    skeleton, calibre = skeleton if skeleton is not None else skeleton_calibre(vessels & fov)
    counts = neighbour_counts(skeleton)
    paths = [points.astype(np.intp).T for points, _ in skeleton_paths(skeleton, counts)]
    junctions, links = _merge_crossings(*junction_labels(skeleton, counts), paths, calibre)
    distance = _distance_from(vessels.shape, disc_centre_xy)
    inner, outer = zone_b_radii(disc_diameter_px)
    ring = (distance >= inner) & (distance <= outer)
    ring_junctions = set(np.unique(junctions[ring & (junctions > 0)]).tolist())

    pieces = []
    for i, (rows, cols) in enumerate(paths):
        inside = ring[rows, cols]
        kind = _path_kind(classes, rows, cols)
        if i in links or not inside.any() or kind is None:
            continue
        width = float(np.median(calibre[rows[inside], cols[inside]]))
        pieces.append(
            _Piece(
                kind,
                np.stack([rows[inside], cols[inside]], axis=1),
                width if inside.sum() >= MIN_PATH_PX else float("nan"),
                _end_junctions(junctions, rows, cols) & ring_junctions,
            )
        )

    found = []
    for group in _joined(pieces):
        points = np.concatenate([piece.points for piece in group])
        joints = set().union(*(piece.junctions for piece in group))
        reach = np.concatenate(
            [
                distance[points[:, 0], points[:, 1]],
                distance[ring & np.isin(junctions, list(joints))],
            ]
        )
        widths = [piece.width_px for piece in group if np.isfinite(piece.width_px)]
        crosses = (
            reach.min() <= inner + EDGE_TOLERANCE_PX and reach.max() >= outer - EDGE_TOLERANCE_PX
        )
        if crosses and widths:
            found.append(RingVessel(group[0].kind, max(widths), points))
    return found


def disc_in_picture(
    shape: tuple[int, int],
    disc_centre_xy: tuple[float, float],
    disc_diameter_px: float,
    fov: np.ndarray | None = None,
) -> bool:
    """Whether the disc centre lies inside the image (and `fov`, bool (H, W), where given) and at
    least `MIN_RING_IN_PICTURE` of zone B's area falls on pixels inside them."""
    x, y = disc_centre_xy
    height, width = shape[:2]
    col, row = int(round(x)), int(round(y))
    if not (0 <= row < height and 0 <= col < width):
        return False
    fov = np.ones(shape[:2], bool) if fov is None else np.asarray(fov, dtype=bool)
    if not fov[row, col]:
        return False
    inner, outer = zone_b_radii(disc_diameter_px)
    ring_area = math.pi * (outer**2 - inner**2)
    return float(np.sum(zone_b(shape, disc_centre_xy, disc_diameter_px) & fov)) >= (
        MIN_RING_IN_PICTURE * ring_area
    )


def calibre_biomarkers(
    vessels: np.ndarray,
    classes: np.ndarray,
    disc_centre_xy: tuple[float, float],
    disc_diameter_px: float,
    fov: np.ndarray | None = None,
    um_per_pixel: float | None = None,
    skeleton: tuple[np.ndarray, np.ndarray] | None = None,
) -> CalibreBiomarkers:
    """CRAE, CRVE and AVR (module docstring) of a bool (H, W) vessel map inside bool (H, W) `fov`,
    typed by the uint8 (H, W) A/V class map `classes`, around a disc centred at (x, y) px and
    `disc_diameter_px` across; micrometre values where `um_per_pixel` is given. `skeleton`:
    `measurements.skeleton_calibre(vessels & fov)` where already computed (`predict.py` shares the
    vessel measurements')."""
    vessels = np.asarray(vessels, dtype=bool)
    flags = []
    if disc_in_picture(vessels.shape, disc_centre_xy, disc_diameter_px, fov):
        found = ring_vessels(vessels, classes, disc_centre_xy, disc_diameter_px, fov, skeleton)
    else:
        flags.append("disc_not_in_picture")
        found = []
    arteries = sorted((v.width_px for v in found if v.kind == ARTERY), reverse=True)[:BIG_SIX]
    veins = sorted((v.width_px for v in found if v.kind == VEIN), reverse=True)[:BIG_SIX]
    if len(arteries) < BIG_SIX:
        flags.append("fewer_than_6_arteries")
    if len(veins) < BIG_SIX:
        flags.append("fewer_than_6_veins")
    crae = knudtson_equivalent(arteries, ARTERY_FACTOR)
    crve = knudtson_equivalent(veins, VEIN_FACTOR)
    scale = um_per_pixel if um_per_pixel else float("nan")
    return CalibreBiomarkers(
        crae_px=crae,
        crve_px=crve,
        avr=crae / crve if np.isfinite(crve) and crve > 0 else float("nan"),
        crae_um=crae * scale,
        crve_um=crve * scale,
        n_arteries=len(arteries),
        n_veins=len(veins),
        artery_widths_px=tuple(arteries),
        vein_widths_px=tuple(veins),
        flags=tuple(f for f in FLAGS if f in flags),
    )
