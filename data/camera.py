"""What another camera, exposure or file format does to a photograph: one change at a time
(`apply_change`, for `benchmarks/robustness.py`) or a random mix of them (`random_camera`, the
training augmentation `train.camera_augment`).

The changes act on uint8 (H, W, 3) images and return uint8 of the same shape; the label and the
FOV mask are never touched. `brightness`, `contrast` and `color` are Pillow `ImageEnhance`
factors (1 = unchanged), `gamma` maps v in [0, 1] to v ** G, `blur` is a Gaussian of sigma S
pixels (Pillow `GaussianBlur`), `jpeg` a JPEG round trip at quality Q, `noise` additive Gaussian
noise of sigma S grey levels.

Uneven illumination and another white balance, which differ between fundus cameras as much as
exposure does (the `clinic` mix below), multiply each pixel by a smooth gain, computed in float
and rounded back to uint8:

- `vignette:S` (S in [0, 1]): a radial fall-off, gain 1 - S * r ** 2, r the distance from the
  image's centre over its half-diagonal: the centre keeps its brightness, the corners lose the
  share S, and nothing goes black (a square photograph's inscribed field of view loses S / 2 at
  its rim; a training crop, whose vessels stay labelled, keeps 1 - S at its corners).
- `illumination:S` (S in [0, 1]): a planar gradient, gain 1 + S * t, t running linearly from -1
  to 1 between the image's extreme corners along a direction drawn from rng, so one side is
  brighter by S and the other darker by S (the mean kept), as with light entering off-axis.
- `white_balance:S` (S in [0, 1]): the camera's white balance off by a colour temperature and a
  tint: u, t drawn uniformly from [-1, 1] by rng, log gains red +S * u and blue -S * u (warmer,
  reddish-yellow photographs for u > 0, cooler, bluish ones for u < 0) and green +S * t / 2 (a
  smaller green-magenta tint), the three gains scaled together so that a grey pixel's luma
  (0.299 R + 0.587 G + 0.114 B) stays: the colour moves, the brightness of grey does not.

SA-UNet's offline augmentation (`data.augment`) only brightens, raises contrast and adds noise
of 0.3 grey levels, so darker, flatter, noisier and compressed photographs are new to a network
trained with it alone; `random_camera` covers those.
"""

from __future__ import annotations

import io

import numpy as np

KINDS = ("none", "brightness", "contrast", "color", "gamma", "blur", "jpeg", "noise", "vignette",
         "illumination", "white_balance")  # fmt: skip
UNIT_KINDS = ("vignette", "illumination", "white_balance")  # strengths in [0, 1]

# random_camera: each change is applied with its probability, its value drawn uniformly from the
# range, in this order (the file format last, as a camera writes it).
RANDOM_CHANGES = (
    ("brightness", 0.5, (0.6, 1.0)),
    ("contrast", 0.5, (0.6, 1.0)),
    ("gamma", 0.5, (0.67, 1.5)),
    ("color", 0.25, (0.3, 1.0)),
    ("blur", 0.25, (0.3, 1.5)),
    ("noise", 0.5, (1.0, 8.0)),
    ("jpeg", 0.5, (30.0, 90.0)),
)

# The `clinic` mix (train.camera_changes: clinic): light and lens first, then the camera's white
# balance, then RANDOM_CHANGES as they are. The ranges follow what the four training datasets show
# inside the FOV (their first six photographs each, 300 px thumbnails): green at the FOV rim 0.4-1.1
# times the centre's (CHASE_DB1 darkest; a vignette of 0.8 darkens a square photograph's FOV rim by
# 0.4 and a crop's corners by 0.8), a planar trend of up to 0.45 of the mean per FOV radius
# (illumination up to 0.4 at the far corners), and between photographs red/blue ratios of e^0.9 to
# e^3.0 and green/red 0.28-0.61 (a white balance of 0.3 moves log red/blue by up to 0.6 and log
# green/red by up to 0.45). Each with probability 0.5: one camera-changed crop in eight has none.
CLINIC_CHANGES = (
    ("vignette", 0.5, (0.1, 0.8)),
    ("illumination", 0.5, (0.05, 0.4)),
    ("white_balance", 0.5, (0.05, 0.3)),
    *RANDOM_CHANGES,
)

# train.camera_changes: the mix random_camera draws from. "basic": RANDOM_CHANGES, with the draws
# of every run trained before the others existed.
CAMERA_MIXES = {"basic": RANDOM_CHANGES, "clinic": CLINIC_CHANGES}


def parse_change(spec: str) -> tuple[str, float | None]:
    """`name:value` (or `none`) -> (name, value); refuses unknown names and bad values."""
    name, _, value = spec.strip().partition(":")
    if name not in KINDS:
        raise ValueError(f"unknown change '{name}' (known: {', '.join(KINDS)})")
    if name == "none":
        return name, None
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"change '{spec}' needs a number after the colon") from None
    if not np.isfinite(number) or number < 0 or (name in ("gamma", "jpeg") and number <= 0):
        raise ValueError(f"change '{spec}': the value must be a positive number")
    if name == "jpeg" and not 1 <= number <= 95:
        raise ValueError(f"change '{spec}': JPEG quality must be 1-95")
    if name in UNIT_KINDS and number > 1:
        raise ValueError(f"change '{spec}': the strength must be in [0, 1]")
    return name, number


def apply_change(
    image: np.ndarray, name: str, value: float | None, rng: np.random.Generator | int = 0
) -> np.ndarray:
    """The uint8 (H, W, 3) image as the change makes it; rng (or its seed) draws the noise, the
    illumination's direction and the white balance's gains. From a seed, the noise draws from
    `default_rng(seed)` (as it always has) and the other two each from `default_rng([seed, k])`,
    k the kind's index in KINDS, so that one seed gives every change its own draws."""
    from PIL import Image, ImageEnhance, ImageFilter

    if name == "none":
        return image
    if name in UNIT_KINDS:
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng([int(rng), KINDS.index(name)])
        gain = _gain(name, value, image.shape[:2], rng)
        return np.clip(np.round(image * gain), 0, 255).astype(np.uint8)
    if name == "gamma":
        table = np.round(255.0 * (np.arange(256) / 255.0) ** value).astype(np.uint8)
        return table[image]
    if name == "noise":
        noise = np.random.default_rng(rng).normal(0.0, value, image.shape)
        return np.clip(np.round(image + noise), 0, 255).astype(np.uint8)
    pil = Image.fromarray(image)
    if name in ("brightness", "contrast", "color"):
        enhancer = {"brightness": ImageEnhance.Brightness, "contrast": ImageEnhance.Contrast,
                    "color": ImageEnhance.Color}[name]  # fmt: skip
        pil = enhancer(pil).enhance(value)
    elif name == "blur":
        pil = pil.filter(ImageFilter.GaussianBlur(radius=value))
    elif name == "jpeg":
        buffer = io.BytesIO()
        pil.save(buffer, format="JPEG", quality=int(round(value)))
        pil = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    else:
        raise ValueError(f"unknown change '{name}' (known: {', '.join(KINDS)})")
    return np.asarray(pil, dtype=np.uint8)


def _gain(name: str, value: float, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """The float32 gain a vignette, illumination or white balance of strength `value` multiplies an
    image of `shape` (H, W) with: (H, W, 1) for the first two, (1, 1, 3) for the white balance."""
    if name == "white_balance":
        u, t = rng.uniform(-1.0, 1.0, 2)
        gains = np.exp(value * np.array([u, t / 2, -u]))
        return (gains / (gains @ [0.299, 0.587, 0.114])).astype(np.float32)[None, None]
    h, w = shape
    y = np.arange(h, dtype=np.float32)[:, None] - (h - 1) / 2
    x = np.arange(w, dtype=np.float32)[None, :] - (w - 1) / 2
    if name == "vignette":
        r2 = (x**2 + y**2) / max(x[0, 0] ** 2 + y[0, 0] ** 2, 1e-6)
        return (1 - value * r2)[..., None]
    angle = float(rng.uniform(0.0, 2 * np.pi))
    along = x * np.float32(np.cos(angle)) + y * np.float32(np.sin(angle))
    reach = max(abs(along[0, 0]), abs(along[0, -1]), abs(along[-1, 0]), abs(along[-1, -1]), 1e-6)
    return (1 + value * along / reach)[..., None]


def random_camera(
    image: np.ndarray, rng: np.random.Generator, changes: tuple = RANDOM_CHANGES
) -> tuple[np.ndarray, list]:
    """The image through a random mix of `changes` (RANDOM_CHANGES, or another of CAMERA_MIXES),
    and the changes made [(name, value)].

    Every draw is made whatever is applied (a decision and a value per change, then one seed for
    the seeded changes), so the generator's state afterwards does not depend on the image."""
    draws = [(rng.random() < p, rng.uniform(*bounds)) for _, p, bounds in changes]
    seed = int(rng.integers(2**31))
    made = []
    for (name, _, _), (applied, value) in zip(changes, draws, strict=True):
        if applied:
            image = apply_change(image, name, value, seed)
            made.append((name, float(value)))
    return image, made
