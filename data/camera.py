"""What another camera, exposure or file format does to a photograph: one change at a time
(`apply_change`, for `benchmarks/robustness.py`) or a random mix of them (`random_camera`, the
training augmentation `train.camera_augment`).

The changes act on uint8 (H, W, 3) images and return uint8 of the same shape; the label and the
FOV mask are never touched. `brightness`, `contrast` and `color` are Pillow `ImageEnhance`
factors (1 = unchanged), `gamma` maps v in [0, 1] to v ** G, `blur` is a Gaussian of sigma S
pixels (Pillow `GaussianBlur`), `jpeg` a JPEG round trip at quality Q, `noise` additive Gaussian
noise of sigma S grey levels.

SA-UNet's offline augmentation (`data.augment`) only brightens, raises contrast and adds noise
of 0.3 grey levels, so darker, flatter, noisier and compressed photographs are new to a network
trained with it alone; `random_camera` covers those.
"""

from __future__ import annotations

import io

import numpy as np

KINDS = ("none", "brightness", "contrast", "color", "gamma", "blur", "jpeg", "noise")

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
    return name, number


def apply_change(
    image: np.ndarray, name: str, value: float | None, rng: np.random.Generator | int = 0
) -> np.ndarray:
    """The uint8 (H, W, 3) image as the change makes it; rng (or its seed) draws the noise."""
    from PIL import Image, ImageEnhance, ImageFilter

    if name == "none":
        return image
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


def random_camera(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """The image through a random mix of `RANDOM_CHANGES`, and the changes made [(name, value)].

    Every draw is made whatever is applied (7 decisions, 7 values, one noise seed), so the
    generator's state afterwards does not depend on the image."""
    draws = [(rng.random() < p, rng.uniform(*bounds)) for _, p, bounds in RANDOM_CHANGES]
    noise_seed = int(rng.integers(2**31))
    made = []
    for (name, _, _), (applied, value) in zip(RANDOM_CHANGES, draws, strict=True):
        if applied:
            image = apply_change(image, name, value, noise_seed)
            made.append((name, float(value)))
    return image, made
