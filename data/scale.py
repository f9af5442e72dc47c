"""Resolution normalisation: a photograph's field-of-view diameter and the factor to the training scale.

A network trained on DRIVE has learnt vessels as wide as they are in DRIVE,
whose field of view is about 539 px across. A photograph is brought to that
scale by the factor `train diameter / its FOV diameter` (`scale_factor`),
predicted there, and its probability map resampled back to the input size,
where it is thresholded (`inference.segment.segment`).

- `fov_diameter`: a circle fitted (least squares) to the left and right ends
  of the mask's rows. Those ends lie on the circle even where the field of
  view is cut off at the top and bottom (wide sensors, STARE), so the
  diameter does not come from the height; rows that touch the image's side
  are left out. A photograph stored with non-square pixels has an ellipse:
  where it is clearly stretched (`MIN_FOV_ASPECT`), the diameter is that of
  the circle of its area (`fit_fov` gives both axes). None where no field of
  view can be found (no border: the retina fills the frame).
- Resampling: the photograph with Pillow's Lanczos filter (antialiased when
  shrinking: the kernel widens with the factor), the probability map back up
  with a bilinear filter on float32 (smooth, no overshoot outside [0, 1]).
- Factors within `UNIT_BAND` of 1 are 1 (DRIVE's own images: 0.998-1.007, so
  every DRIVE result is unchanged; STARE: 0.83, measured to score better
  unscaled; docs/cameras-experiments.md, "Choosing the scale rule").
- `auto` predicts a shrunk photograph twice, at the factor and
  `SECOND_SCALE` (sqrt 2) times milder, and averages the probabilities
  (`prediction_factors`): measured better on DRIVE enlarged 2 and 4 times.
- A diameter band (`FovBand`): weights trained on photographs whose FOV
  diameters span [low, high] (`scale.max_fov_diameter` recorded beside
  `scale.train_fov_diameter`) bring a photograph into that band instead of to
  one diameter: a smaller field of view is enlarged to `low`, a larger one
  shrunk to `high`, one inside it is left as it is; the unit band still
  applies. Such weights have seen the range, so a shrunk photograph is
  predicted once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from utils.errors import UserError

# Median FOV diameter (px) of each dataset's training images, by `fov_diameter` (docs/cameras.md):
# the fallback for configs written before it was recorded. CHASE_DB1: generated masks; HRF: its own
# masks at half resolution (1168 x 1752), the size the hrf dataset is read at.
KNOWN_FOV_DIAMETERS = {"drive": 538.29, "stare": 649.96, "chase_db1": 919.0, "hrf": 1631.06}
DEFAULT_FOV_DIAMETER = KNOWN_FOV_DIAMETERS["drive"]
# Factors in [1 / UNIT_BAND, UNIT_BAND] are taken as exactly 1 (no resampling).
UNIT_BAND = 1.25
# `auto` also predicts a shrunk photograph SECOND_SCALE times larger (at most at its own size)
# and averages the two probability maps (docs/cameras-experiments.md, "Choosing the scale rule").
SECOND_SCALE = 2.0**0.5
MIN_BOUNDARY_ROWS = 16  # row ends inside the image needed for a circle fit
# Ellipses (width / height or height / width) are fitted up to MAX_FOV_ASPECT and taken instead
# of the circle beyond MIN_FOV_ASPECT, where the circle's diameter is off by about 2 %.
MIN_FOV_ASPECT = 1.06
MAX_FOV_ASPECT = 1.5
MIN_SIDE = 8  # the smallest side (px) an image is scaled to


def _boundary_points(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) x, y of the left ends and of the right ends of the rows of `mask`, at the pixel
    edges; ends on the image's side are left out."""
    height, width = mask.shape
    rows = np.flatnonzero(mask.any(axis=1))
    inside = mask[rows]
    left = np.argmax(inside, axis=1)
    right = width - 1 - np.argmax(inside[:, ::-1], axis=1)
    keep_left, keep_right = left > 0, right < width - 1
    return (
        np.c_[left[keep_left] - 0.5, rows[keep_left]].astype(np.float64),
        np.c_[right[keep_right] + 0.5, rows[keep_right]].astype(np.float64),
    )


def _fit_circle(points: np.ndarray) -> tuple[float, float, float]:
    """Least-squares circle (cx, cy, r) through (N, 2) points (algebraic fit)."""
    x, y = points[:, 0], points[:, 1]
    design = np.c_[x, y, np.ones_like(x)]
    (a, b, c), *_ = np.linalg.lstsq(design, x * x + y * y, rcond=None)
    cx, cy = a / 2, b / 2
    return cx, cy, float(np.sqrt(max(c + cx * cx + cy * cy, 0.0)))


def _robust_circle(points: np.ndarray) -> tuple[float, float, float] | None:
    """The circle (cx, cy, r) fitted to `points`, refitted twice without the points more than 3
    median deviations off it; None with too few points or a shape that is not a circle."""
    if len(points) < MIN_BOUNDARY_ROWS:
        return None
    kept = points
    cx, cy, radius = _fit_circle(kept)
    for _ in range(2):
        deviation = np.abs(np.hypot(points[:, 0] - cx, points[:, 1] - cy) - radius)
        kept = points[deviation <= 3 * max(float(np.median(deviation)), 0.5)]
        if len(kept) < MIN_BOUNDARY_ROWS:
            return None
        cx, cy, radius = _fit_circle(kept)
    deviation = np.abs(np.hypot(kept[:, 0] - cx, kept[:, 1] - cy) - radius)
    if radius <= 0 or np.median(deviation) > 0.02 * radius:
        return None
    return float(cx), float(cy), radius


def _fit_ellipse(points: np.ndarray) -> tuple[float, float, float, float] | None:
    """Least-squares ellipse with axes along x and y, (cx, cy, a, b) with semi-axes a along x and
    b along y, through (N, 2) points (algebraic fit: x^2 + p y^2 + q x + r y + s = 0); None where
    the fitted conic is not an ellipse."""
    mean = points.mean(axis=0)  # centred: x^2 of a 4000 px photograph stays well conditioned
    x, y = (points - mean).T
    design = np.c_[y * y, x, y, np.ones_like(x)]
    (p, q, r, s), *_ = np.linalg.lstsq(design, -x * x, rcond=None)
    if p <= 0:
        return None
    cx, cy = -q / 2, -r / (2 * p)
    k = cx * cx + p * cy * cy - s
    if k <= 0:
        return None
    return float(cx + mean[0]), float(cy + mean[1]), float(np.sqrt(k)), float(np.sqrt(k / p))


def _ellipse_deviation(points: np.ndarray, ellipse) -> np.ndarray:
    """Approximate distance (px) of each point from the ellipse (cx, cy, a, b)."""
    cx, cy, a, b = ellipse
    rho = np.hypot((points[:, 0] - cx) / a, (points[:, 1] - cy) / b)
    return np.abs(rho - 1.0) * np.sqrt(a * b)


def _robust_ellipse(points: np.ndarray) -> tuple[float, float, float, float] | None:
    """`_robust_circle` for an ellipse with axes along x and y (non-square pixels): (cx, cy, a,
    b), or None where it is not one or is stretched more than `MAX_FOV_ASPECT`."""
    if len(points) < MIN_BOUNDARY_ROWS:
        return None
    kept = points
    ellipse = _fit_ellipse(kept)
    for _ in range(2):
        if ellipse is None:
            return None
        deviation = _ellipse_deviation(points, ellipse)
        kept = points[deviation <= 3 * max(float(np.median(deviation)), 0.5)]
        if len(kept) < MIN_BOUNDARY_ROWS:
            return None
        ellipse = _fit_ellipse(kept)
    if ellipse is None:
        return None
    _, _, a, b = ellipse
    if not 1 / MAX_FOV_ASPECT <= a / b <= MAX_FOV_ASPECT:
        return None
    if np.median(_ellipse_deviation(kept, ellipse)) > 0.02 * np.sqrt(a * b):
        return None
    return ellipse


@dataclass(frozen=True)
class FovFit:
    """A field of view's outline in pixels: centre (cx, cy) and its extent across (`width`) and
    down (`height`), equal for a circle; a photograph stored with non-square pixels has an
    ellipse."""

    cx: float
    cy: float
    width: float
    height: float

    @property
    def diameter(self) -> float:
        """The diameter of the circle of the same area (px): sqrt(width * height)."""
        return self.width if self.width == self.height else float(np.sqrt(self.width * self.height))

    @property
    def aspect(self) -> float:
        """width / height: 1 for a circle, 4/3 for a circle stored 4:3 wider."""
        return self.width / self.height


def fit_fov(mask: np.ndarray) -> FovFit | None:
    """The outline of the field of view in a bool (H, W) mask: a circle, else an ellipse with
    axes along the image's (non-square pixels), or None where neither is found (`fov_diameter`)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"expected a (H, W) mask, got shape {mask.shape}")
    if not mask.any():
        return None
    points = np.concatenate(_boundary_points(mask))
    circle, ellipse = _robust_circle(points), _robust_ellipse(points)
    # The ellipse where no circle fits or it is clearly stretched; a circle's own ellipse comes
    # out stretched by up to 3.4 % (STARE's fields of view are 1-3 % taller than wide).
    if ellipse is not None and (
        circle is None or max(ellipse[2] / ellipse[3], ellipse[3] / ellipse[2]) > MIN_FOV_ASPECT
    ):
        cx, cy, a, b = ellipse
        return FovFit(cx, cy, 2.0 * a, 2.0 * b)
    if circle is not None:
        cx, cy, radius = circle
        return FovFit(cx, cy, 2.0 * radius, 2.0 * radius)
    return None


def fov_diameter(mask: np.ndarray) -> float | None:
    """Diameter (px) of the circular field of view in a bool (H, W) mask, or None if none is found.

    A circle is fitted to the rows' left and right ends (those on the image's
    side are left out) and refitted without outliers (a notch, a speck); it
    must follow them within a median deviation of 2 % of the radius. An
    ellipse with axes along x and y is fitted the same way; where no circle
    fits or the ellipse is stretched more than `MIN_FOV_ASPECT` (up to
    `MAX_FOV_ASPECT`: a photograph stored with non-square pixels), the
    diameter is that of the circle of the ellipse's area. None when fewer
    than `MIN_BOUNDARY_ROWS` row ends are inside the image (no border: the
    retina fills the frame), or when they follow neither (`fit_fov`).
    """
    fit = fit_fov(mask)
    return None if fit is None else fit.diameter


def median_fov_diameter(masks: Sequence[np.ndarray]) -> float | None:
    """Median `fov_diameter` over masks (those without a field of view left out), rounded to 0.01 px."""
    found = [d for d in (fov_diameter(m) for m in masks) if d is not None]
    return round(float(np.median(found)), 2) if found else None


@dataclass(frozen=True)
class FovBand:
    """The FOV diameters (px) weights were trained at: [low, high]; low == high for one diameter."""

    low: float
    high: float

    def __post_init__(self):
        if not (0 < self.low <= self.high and np.isfinite(self.high)):
            raise UserError(
                f"the FOV diameter band {self.low:g}-{self.high:g} px must have 0 < low <= high"
            )

    @property
    def single(self) -> bool:
        """True for weights trained at one diameter (no band)."""
        return self.high <= self.low

    def target(self, diameter: float) -> float:
        """The diameter a photograph of `diameter` px is brought to: itself clamped into the band."""
        return min(max(float(diameter), self.low), self.high)

    def __str__(self) -> str:
        return f"{self.low:.1f} px" if self.single else f"{self.low:.1f}-{self.high:.1f} px"


def as_band(train: float | FovBand | None) -> FovBand | None:
    """`train` as a FovBand: a number is a band of one diameter; None stays None."""
    if train is None or isinstance(train, FovBand):
        return train
    return FovBand(float(train), float(train))


def training_fov_band(cfg: dict) -> FovBand | None:
    """The FOV diameters the weights of a run were trained at, from its resolved config:
    [`training_fov_diameter`, `scale.max_fov_diameter`] (one diameter where no maximum is
    recorded); None where the training scale is unknown."""
    low = training_fov_diameter(cfg)
    if low is None:
        return None
    high = (cfg.get("scale") or {}).get("max_fov_diameter")
    return FovBand(low, max(low, float(high))) if high else FovBand(low, low)


def training_fov_diameter(cfg: dict) -> float | None:
    """The FOV diameter the weights of a run were trained at, from its resolved config.

    `scale.train_fov_diameter` when recorded (train.py records it); else the
    known value of the config's dataset (`KNOWN_FOV_DIAMETERS`); None for an
    older run of another dataset (synthetic, a folder of images), whose
    training scale is unknown (`--scale auto` then leaves images at factor 1);
    DRIVE's for weights with no config at all.
    """
    recorded = (cfg.get("scale") or {}).get("train_fov_diameter")
    if recorded:
        return float(recorded)
    name = str((cfg.get("dataset") or {}).get("name", "")).lower()
    if not name:
        return DEFAULT_FOV_DIAMETER
    return KNOWN_FOV_DIAMETERS.get(name)


def weights_config(weights: str | os.PathLike) -> dict:
    """The config saved with a `.keras` file: `<stem>.yaml` beside it (shipped weights) or the run
    folder's `config.yaml`; {} when there is none or it cannot be read."""
    from utils.config import load_config

    weights = Path(weights)
    for path in (weights.with_suffix(".yaml"), weights.parent / "config.yaml"):
        if path.is_file():
            try:
                return load_config(path)
            except UserError:
                return {}
    return {}


def weights_fov_band(weights: str | os.PathLike, scale="auto", warn=None) -> FovBand | None:
    """The FOV diameters `weights` were trained at (`training_fov_band` of `weights_config`);
    `scale` itself where it is a FovBand (--scale NNNpx).

    With `scale` "auto" and no config beside the weights (a best.keras copied out of its run
    folder), a warning (to `warn(text)`, default stderr) says that DRIVE's diameter is assumed.
    """
    if isinstance(scale, FovBand):
        return scale  # --scale NNNpx: the diameter given, whatever the weights trained at
    cfg = weights_config(weights)
    if by_diameter(scale) and not cfg:
        text = (
            f"warning: no {Path(weights).with_suffix('.yaml').name} or config.yaml beside "
            f"{weights}: --scale auto assumes the weights were trained at DRIVE's FOV diameter "
            f"({DEFAULT_FOV_DIAMETER:.0f} px); put the run's config.yaml beside them or give --scale"
        )
        _warn(text, warn)
    return training_fov_band(cfg)


def _warn(text: str, warn=None) -> None:
    """Hand a warning line to `warn(text)`, or print it to stderr when `warn` is None."""
    if warn is None:
        print(text, file=sys.stderr)
    else:
        warn(text)


# --scale vessels: the calibre (px) of a map's main vessels, the VESSEL_PERCENTILE-th percentile of
# the calibre over its vessel pixels (`measurements.calibre_map`), is compared with the range the
# weights draw at the sizes they trained at (`scale.vessel_calibre`, recorded by
# tools/ship_weights.py). Main vessels wider than the range are brought to its middle (geometric
# mean), which scored best on cameras left out of training (docs/cameras.md). Narrower ones keep
# the first factor: enlarging a photograph adds no detail, and every enlargement measured lost F1
# (DRIVE left out: 0.7481 enlarged to the range's bottom against 0.7825; the default weights on
# DRIVE: 0.8013 enlarged to its middle against 0.8217). The main vessels are the ones that are there
# in every photograph, and their width in pixels does not depend on the camera's field angle as
# the FOV diameter does. Maps with fewer vessel pixels than MIN_VESSEL_PIXELS keep the first factor.
VESSEL_PERCENTILE = 90.0
MIN_VESSEL_PIXELS = 500
VESSEL_TOLERANCE = 0.1  # main vessels at most 10 % wider than the range's top: no second pass


def vessel_calibre(vessels: np.ndarray, fov: np.ndarray | None = None) -> float | None:
    """The main vessels' calibre (px) of a bool (H, W) vessel map (inside bool `fov`): the
    VESSEL_PERCENTILE-th percentile of `measurements.calibre_map` over its vessel pixels; None
    for fewer than MIN_VESSEL_PIXELS of them."""
    from measurements import calibre_map

    vessels = np.asarray(vessels, dtype=bool)
    if fov is not None:
        vessels = vessels & fov
    if vessels.sum() < MIN_VESSEL_PIXELS:
        return None
    return float(np.percentile(calibre_map(vessels)[vessels], VESSEL_PERCENTILE))


def vessel_calibre_range(samples, maps=None) -> list[float] | None:
    """[low, high]: the lowest and highest of the datasets' median main-vessel calibres
    (`vessel_calibre` of each label, or of each bool map of `maps`, inside its mask) over samples
    at the size they trained at (`Sample.source` "drive/21" groups them by dataset); None
    without vessels."""
    by_dataset: dict[str, list[float]] = {}
    for k, sample in enumerate(samples):
        vessels = sample.label.astype(bool) if maps is None else maps[k]
        value = vessel_calibre(vessels, sample.mask)
        if value is not None:
            by_dataset.setdefault(sample.source.split("/")[0], []).append(value)
    if not by_dataset:
        return None
    medians = [float(np.median(values)) for values in by_dataset.values()]
    return [round(min(medians), 3), round(max(medians), 3)]


def vessel_factor(
    vessels: np.ndarray, fov: np.ndarray, factor: float, calibre_range: Sequence[float]
) -> float:
    """The factor for the main vessels of `vessels` (bool (H, W) at the photograph's size,
    predicted at `factor`): `factor` itself where too few vessels are marked or their calibre
    at the network's scale is at most VESSEL_TOLERANCE above the range's top (or below it: thin
    main vessels are never enlarged); otherwise the factor that brings them to the range's
    geometric middle."""
    shape = scaled_shape(vessels.shape, factor)
    calibre = vessel_calibre(resize_nearest(vessels, shape), resize_nearest(fov, shape))
    if calibre is None:
        return factor
    low, high = calibre_range
    if calibre <= high * (1.0 + VESSEL_TOLERANCE):
        return factor
    return factor * float(np.sqrt(low * high)) / calibre


def weights_vessel_calibre(weights: str | os.PathLike) -> list[float]:
    """The `scale.vessel_calibre` range recorded beside `weights`; a UserError where none is."""
    recorded = (weights_config(weights).get("scale") or {}).get("vessel_calibre")
    if not recorded:
        raise UserError(
            f"--scale vessels needs the main-vessel calibre the weights trained at, and "
            f"{Path(weights).with_suffix('.yaml').name} (or the run's config.yaml) records none; "
            "tools/ship_weights.py records it, or use --scale auto"
        )
    return [float(v) for v in recorded]


def parse_scale(value, what: str = "--scale") -> str | float | FovBand:
    """A `--scale` / `evaluate.scale` value: "auto", "vessels" (auto, then the main vessels'
    calibre brought into the weights' range, `vessel_factor`), a positive finite number (1: off), or a FOV
    diameter to bring every photograph to, whatever the weights' band: "538px" (one diameter) or
    "538-900px" (a band: diameters inside it stay as they are)."""
    text = value.strip().lower() if isinstance(value, str) else None
    if text in ("auto", "vessels"):
        return text
    if text is not None and text.endswith("px"):
        try:
            sides = [float(side) for side in text[:-2].split("-")]
        except ValueError:
            sides = []
        if len(sides) in (1, 2) and all(np.isfinite(sides)) and 0 < sides[0] <= sides[-1]:
            return FovBand(sides[0], sides[-1])
        raise UserError(
            f"{what} {value!r}: a FOV diameter is written NNNpx or LOW-HIGHpx, e.g. 538px"
        )
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not np.isfinite(number) or number <= 0:
        raise UserError(
            f"{what} must be 'auto', 'vessels', a positive number (1 = off) or a FOV diameter "
            f"such as 538px, got {value!r}"
        )
    return number


def scale_text(scale) -> str | float:
    """A parsed scale as `parse_scale` reads it back: "auto", the factor, or "538px"."""
    if isinstance(scale, FovBand):
        return f"{scale.low:g}px" if scale.single else f"{scale.low:g}-{scale.high:g}px"
    return scale


def by_diameter(scale) -> bool:
    """True for a scale set from each photograph's FOV diameter ("auto", "vessels" before its
    second pass, or a FovBand given as --scale NNNpx), False for a fixed factor."""
    return scale in ("auto", "vessels") or isinstance(scale, FovBand)


def scale_factor(diameter: float | None, train_diameter: float | FovBand) -> float:
    """The automatic factor: `train_diameter / diameter` (for a band, its clamp of `diameter` /
    `diameter`), 1 inside the unit band or without a FOV."""
    if diameter is None:
        return 1.0
    factor = as_band(train_diameter).target(diameter) / float(diameter)
    if 1.0 / UNIT_BAND <= factor <= UNIT_BAND:
        return 1.0
    return factor


def image_factor(
    scale, mask: np.ndarray | None, train_diameter: float | FovBand | None, name: str, warn=None
) -> float:
    """The factor for one image: `scale` when it is a number, else from its FOV mask.

    Where no field of view can be found, a warning naming `name` (to `warn(text)`, default
    stderr) and factor 1; where the training scale is unknown (`train_diameter` None), factor 1.
    """
    if not by_diameter(scale):
        return float(scale)
    if isinstance(scale, FovBand):
        train_diameter = scale
    if train_diameter is None:
        return 1.0
    diameter = fov_diameter(mask) if mask is not None else None
    if diameter is None:
        text = (
            f"warning: no field of view found in {name}; predicting it at its own scale (factor 1)"
        )
        _warn(text, warn)
    return scale_factor(diameter, train_diameter)


def prediction_factors(
    scale, factor: float, train: float | FovBand | None = None
) -> tuple[float, ...]:
    """The factors an image is predicted at (their probability maps averaged).

    With `--scale auto` a photograph that is shrunk (factor < 1) is also
    predicted at min(1, SECOND_SCALE * factor), unless the weights were trained
    on a band of diameters (`train`, a FovBand wider than one diameter);
    otherwise only at `factor`.
    """
    band = scale if isinstance(scale, FovBand) else as_band(train)
    if by_diameter(scale) and factor < 1.0 and (band is None or band.single):
        return (factor, min(1.0, SECOND_SCALE * factor))
    return (factor,)


def scaled_shape(shape: tuple[int, int], factor: float) -> tuple[int, int]:
    """(h, w) multiplied by `factor`, rounded, at least MIN_SIDE."""
    return tuple(max(MIN_SIDE, int(round(side * factor))) for side in shape[:2])


def resize_image(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (h, w, 3), Lanczos (antialiased when shrinking)."""
    if tuple(image.shape[:2]) == tuple(shape):
        return image
    resized = Image.fromarray(image).resize((shape[1], shape[0]), Image.Resampling.LANCZOS)
    return np.asarray(resized)


def resize_probability(prob: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """float32 (h, w) in [0, 1] -> float32 (H, W), bilinear (antialiased when shrinking); (h, w, C)
    -> (H, W, C), each channel so."""
    if tuple(prob.shape[:2]) == tuple(shape):
        return prob
    if prob.ndim == 3:
        return np.stack([resize_probability(prob[..., c], shape) for c in range(prob.shape[2])], -1)
    resized = Image.fromarray(np.asarray(prob, dtype=np.float32), mode="F").resize(
        (shape[1], shape[0]), Image.Resampling.BILINEAR
    )
    out = np.array(resized, dtype=np.float32)
    del resized
    return np.clip(out, 0.0, 1.0, out=out)  # in place: no second full-size map


def resize_nearest(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Labels and masks (H, W) of any dtype -> (h, w), nearest neighbour."""
    array = np.asarray(array)
    rows = np.minimum((np.arange(shape[0]) + 0.5) * array.shape[0] / shape[0], array.shape[0] - 1)
    cols = np.minimum((np.arange(shape[1]) + 0.5) * array.shape[1] / shape[1], array.shape[1] - 1)
    return array[rows.astype(int)][:, cols.astype(int)]


def resize_sample(sample, shape: tuple[int, int]):
    """`sample` (a data.Sample) resampled to (h, w) = `shape`: the photograph with Lanczos
    (antialiased when shrinking), the label, mask and second observer with nearest neighbour."""
    import dataclasses

    second = None if sample.second is None else resize_nearest(sample.second, shape)
    return dataclasses.replace(
        sample,
        image=resize_image(sample.image, shape),
        label=resize_nearest(sample.label, shape),
        mask=resize_nearest(sample.mask, shape),
        second=second,
    )


def upsample_sample(sample, times: int):
    """A stand-in for a high-resolution camera: `sample` (a data.Sample) `times` larger
    (`resize_sample`); the name gets a `_x<times>` suffix."""
    import dataclasses

    if times == 1:
        return sample
    shape = (sample.image.shape[0] * times, sample.image.shape[1] * times)
    return dataclasses.replace(resize_sample(sample, shape), name=f"{sample.name}_x{times}")


def normalise_sample(sample, train_diameter: float | FovBand):
    """`sample` (a data.Sample) brought to the FOV diameter `train_diameter` (or into its band)
    by the rule of `--scale auto` (`scale_factor`: unchanged inside the unit band or without a
    field of view), so that training sees photographs as prediction will."""
    factor = scale_factor(fov_diameter(sample.mask), train_diameter)
    if factor == 1.0:
        return sample
    return resize_sample(sample, scaled_shape(sample.image.shape[:2], factor))
