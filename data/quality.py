"""Whether a fundus photograph can be trusted: exposure, sharpness and size of its field of view,
and whether its vessel map covers a usual share of it. Pure functions, no I/O.

predict.py --measure writes these figures and the verdict into each photograph's row of
measurements.csv (docs/prediction.md, "Quality"), so a cohort table never mixes good and
unusable rows silently; nothing is dropped.

- `photograph_quality(image, fov, diameter)`: the figures of the photograph alone, measured
  at a normalised scale: the photograph resampled (`data.scale.resize_image`) so that its field
  of view is `REFERENCE_FOV_DIAMETER` px across (the shorter side standing in for the diameter
  where no field of view is found), so they do not depend on the photograph's pixel size.
  `brightness_median`: the median luminance (scikit-image `rgb2gray`, Rec. 709 weights, grey
  levels 0-255) inside the field of view; `underexposed_fraction`, `overexposed_fraction`: the
  shares of it under `UNDEREXPOSED_LEVEL` and over `OVEREXPOSED_LEVEL`; `sharpness`: the spread
  (standard deviation) of the green channel's Laplacian of Gaussian at sigma `FINE_SIGMA` over
  that at `COARSE_SIGMA` (SciPy `gaussian_laplace`), inside the field of view eroded by `RIM_PX`
  (its rim is an edge of the photograph, not of the retina). Fine detail (vessels 1-10 px wide
  at this scale) over coarse: a ratio, so exposure and contrast cancel; blur lowers it.
- `quality_reasons(figures, area_fraction)`: the checks that fail, in `REASONS` order;
  `quality_flag`: "ok" when none does, else "check".

Each threshold below comes from the figures of the clean test photographs of DRIVE, STARE,
CHASE_DB1 and HRF and of degraded copies of them (`benchmarks/quality.py`; the table is in
docs/prediction.md), its comment saying which figures.
"""

from __future__ import annotations

import numpy as np

from data.scale import DEFAULT_FOV_DIAMETER, resize_image, resize_nearest, scaled_shape

# The scale the figures are measured at: DRIVE's FOV diameter (px), the one predict.py's default
# weights are trained at the low end of; DRIVE's photographs are measured as they are.
REFERENCE_FOV_DIAMETER = DEFAULT_FOV_DIAMETER
RIM_PX = 12  # sharpness leaves out this much of the FOV's rim: 4 x COARSE_SIGMA, its edge's reach
FINE_SIGMA, COARSE_SIGMA = 1.0, 3.0  # px at the normalised scale: thin vessels; wide vessels, disc
UNDEREXPOSED_LEVEL = 15  # luminance (0-255) below which a fundus shows no vessel contrast
OVEREXPOSED_LEVEL = 240  # luminance above which it is washed out (the green channel clips too)

# Thresholds, from the figures of the 78 clean test photographs (DRIVE 20, STARE 20, CHASE_DB1 8,
# HRF 30 at full size) and of degraded copies of each (benchmarks/quality.py, docs/prediction.md
# "Quality"). None of the clean photographs fails any check.
# A FOV under 300 px across: vessels 2 px wide at DRIVE's scale (538 px) shrink to about one pixel
# (the copies at 250 px are flagged); the smallest clean FOV is DRIVE's, 537 px.
MIN_FOV_DIAMETER_PX = 300.0
# Median luminance: the darkest clean photograph (CHASE_DB1) has 52.5, the brightest copy at a
# quarter of the brightness 37.5; 45 is about their geometric middle (44.4).
MIN_BRIGHTNESS = 45.0
# A fifth of the field too dark to show vessels (a shadow from a small pupil; a dark copy reaches
# 0.65): clean photographs have at most 0.029 (CHASE_DB1's vignetting).
MAX_UNDEREXPOSED = 0.20
# A twentieth of the field washed out: clean photographs have at most 0.018 (a STARE disc); the
# copies at 2.5 times the brightness up to 0.98, those of dim photographs (most of HRF) little,
# and their vessel maps stay in the usual range.
MAX_OVEREXPOSED = 0.05
# Sharpness: clean photographs 3.99 and up (STARE), copies blurred by sigma 3 px at the normalised
# scale 2.23 and down; 3.0 is their geometric middle (2.98).
MIN_SHARPNESS = 3.0
# Vessel area fraction of the binary map inside the FOV with predict.py's default weights and
# threshold: clean photographs 0.071 (STARE) to 0.139 (DRIVE); the band reaches 1.4 times beyond
# both ends. Under it the network lost the vessels (13 of HRF's 30 blurred copies), over it it
# drew something else as vessels.
MIN_AREA_FRACTION, MAX_AREA_FRACTION = 0.05, 0.20

# The checks, in the order `quality_reasons` lists them.
REASONS = ("no_fov", "small", "dark", "bright", "blurred", "vessel_area")
QUALITY_KEYS = (
    "fov_found",
    "brightness_median",
    "underexposed_fraction",
    "overexposed_fraction",
    "sharpness",
)


def normalised_photograph(
    image: np.ndarray, fov: np.ndarray, diameter: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """(image, fov) resampled so the FOV is `REFERENCE_FOV_DIAMETER` px across: uint8 (H, W, 3)
    and bool (H, W) in, uint8 (h, w, 3) and bool (h, w) out (Lanczos, nearest neighbour). Without
    a `diameter` the shorter side stands in for it."""
    width = diameter or min(image.shape[:2])
    shape = scaled_shape(image.shape[:2], REFERENCE_FOV_DIAMETER / float(width))
    return resize_image(image, shape), resize_nearest(np.asarray(fov, dtype=bool), shape)


def photograph_quality(image: np.ndarray, fov: np.ndarray, diameter: float | None) -> dict:
    """The figures of the module docstring for uint8 (H, W, 3) `image`, its bool (H, W) field of
    view `fov` and the FOV's diameter (px; None where none was found): {"fov_found": bool,
    "fov_width_px": the diameter, or the shorter side without one, "brightness_median",
    "underexposed_fraction", "overexposed_fraction", "sharpness"}. An empty `fov` counts as the
    whole image."""
    from scipy import ndimage
    from skimage.color import rgb2gray

    small, inside = normalised_photograph(image, fov, diameter)
    if not inside.any():
        inside = np.ones(inside.shape, dtype=bool)
    luminance = rgb2gray(small)[inside] * 255.0
    green = small[:, :, 1].astype(np.float32)
    core = ndimage.distance_transform_edt(inside) > RIM_PX
    if not core.any():  # a field too small to erode: all of it
        core = inside
    fine = ndimage.gaussian_laplace(green, FINE_SIGMA)[core].std()
    coarse = ndimage.gaussian_laplace(green, COARSE_SIGMA)[core].std()
    return {
        "fov_found": diameter is not None,
        "fov_width_px": float(diameter or min(image.shape[:2])),
        "brightness_median": float(np.median(luminance)),
        "underexposed_fraction": float(np.mean(luminance < UNDEREXPOSED_LEVEL)),
        "overexposed_fraction": float(np.mean(luminance > OVEREXPOSED_LEVEL)),
        "sharpness": float(fine / coarse) if coarse > 0 else 0.0,
    }


def quality_reasons(figures: dict, area_fraction: float | None = None) -> list[str]:
    """The checks of `REASONS` that `figures` (`photograph_quality`) and the vessel map's
    `area_fraction` (None: not checked) fail."""
    failed = {
        "no_fov": not figures["fov_found"],
        "small": figures["fov_width_px"] < MIN_FOV_DIAMETER_PX,
        "dark": figures["brightness_median"] < MIN_BRIGHTNESS
        or figures["underexposed_fraction"] > MAX_UNDEREXPOSED,
        "bright": figures["overexposed_fraction"] > MAX_OVEREXPOSED,
        "blurred": figures["sharpness"] < MIN_SHARPNESS,
        "vessel_area": area_fraction is not None
        and not MIN_AREA_FRACTION <= area_fraction <= MAX_AREA_FRACTION,
    }
    return [reason for reason in REASONS if failed[reason]]


def quality_flag(reasons: list[str]) -> str:
    """ "ok" when no check failed, "check" otherwise: the column a user filters a cohort on."""
    return "check" if reasons else "ok"
