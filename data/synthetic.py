"""A procedural fundus-like dataset with exact labels: the built-in default where real data is absent.

Each image (size x size, RGB uint8) has a round field of view on a black
surround, an orange-red background with a smooth brightness gradient and
vignetting, a bright optic disc, and 3-5 branching vessel trees growing from
the disc. Every vessel segment has its own width (1-4 px at 96 x 96, scaled
with the size, thinner after each branching) and contrast (darker than the
background by 20-55 % in the green channel, less in red), so contrast and
width vary as in real photographs. Gaussian noise (sigma 3 grey levels) is
added last. The label is exactly the drawn vessel pixels inside the field of
view; the mask is the field of view.

Deterministic per seed: image i of the training set uses
`np.random.default_rng([seed, 0, i])`, test image i `[seed, 1, i]`.
Defaults (12 train, 4 test, 96 x 96) make 156 augmented training images.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from data.samples import Sample


def make_synthetic(
    n_train: int = 12, n_test: int = 4, size: int = 96, seed: int = 42
) -> tuple[list[Sample], list[Sample]]:
    """(train, test) lists of synthetic `Sample`s."""
    train = [synthetic_sample(size, seed, 0, i) for i in range(n_train)]
    test = [synthetic_sample(size, seed, 1, i) for i in range(n_test)]
    return train, test


def synthetic_sample(size: int, seed: int, part: int, index: int) -> Sample:
    """One synthetic fundus image (image uint8 (size, size, 3), label {0, 1}, round FOV mask)."""
    rng = np.random.default_rng([int(seed), int(part), int(index)])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c = (size - 1) / 2
    radius = size * rng.uniform(0.44, 0.49)
    r = np.hypot(yy - c, xx - c)
    mask = r <= radius

    # Background: orange-red with a gradient and vignetting.
    angle = rng.uniform(0, 2 * np.pi)
    gradient = 1 + 0.15 * ((xx - c) * np.cos(angle) + (yy - c) * np.sin(angle)) / size
    vignette = 1 - 0.35 * (r / radius) ** 2
    base = np.array(
        [rng.uniform(170, 220), rng.uniform(80, 110), rng.uniform(30, 50)], dtype=np.float32
    )
    image = base[None, None, :] * (gradient * vignette)[:, :, None]

    # Optic disc, somewhere off-centre.
    disc_r = size * rng.uniform(0.06, 0.09)
    disc_angle = rng.uniform(0, 2 * np.pi)
    disc = np.array([c + 0.5 * radius * np.sin(disc_angle), c + 0.5 * radius * np.cos(disc_angle)])
    d = np.hypot(yy - disc[0], xx - disc[1])
    glow = np.clip(1.2 - d / disc_r, 0, 1)[:, :, None]
    image = image + glow * np.array([50, 90, 60], dtype=np.float32)

    # Vessels: each drawn segment gets a darkness value (its contrast); label = any vessel pixel.
    darkness = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(darkness)
    scale = size / 96
    for _ in range(int(rng.integers(3, 6))):
        direction = rng.uniform(0, 2 * np.pi)
        width = rng.uniform(2.5, 4.0) * scale
        _grow(
            draw,
            rng,
            disc[::-1].copy(),
            direction,
            width,
            size * rng.uniform(0.25, 0.4),
            depth=0,
            scale=scale,
        )
    dark = np.asarray(darkness, dtype=np.float32) / 255.0
    vessel = (dark > 0) & mask
    image = image * (1 - dark[:, :, None] * np.array([0.45, 1.0, 0.8], dtype=np.float32))

    image = image + rng.normal(0, 3.0, size=image.shape)
    image = np.where(mask[:, :, None], image, 0)
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return Sample(
        name=f"synthetic_{'train' if part == 0 else 'test'}_{index:03d}",
        image=image,
        label=vessel.astype(np.uint8),
        mask=mask,
        second=None,
        source=f"synthetic/{part}/{index}",
    )


def _grow(draw, rng, start, direction, width, length, depth, scale):
    """Draw a wiggly vessel from `start`, branching into two thinner ones."""
    contrast = int(255 * rng.uniform(0.2, 0.55))
    point = start
    steps = max(2, int(length / (4 * scale)))
    step = length / steps
    for _ in range(steps):
        direction += rng.normal(0, 0.25)
        nxt = point + step * np.array([np.cos(direction), np.sin(direction)])
        draw.line([tuple(point), tuple(nxt)], fill=contrast, width=max(1, int(round(width))))
        point = nxt
    if depth < 3 and width > 1.2 * scale:
        for sign in (-1, 1):
            _grow(
                draw,
                rng,
                point,
                direction + sign * rng.uniform(0.3, 0.8),
                width * rng.uniform(0.6, 0.8),
                length * rng.uniform(0.6, 0.85),
                depth + 1,
                scale,
            )
