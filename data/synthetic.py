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

With `av` (the dataset "synthetic_av"), the vessel trees are arteries and veins in turn (the
first an artery), arteries drawn at 0.6 times the contrast (lighter, as in photographs), and the
label is a `data.av` class map (0 background, 1 artery, 2 vein; a later tree drawn over an
earlier one takes its pixels). Without it every image is the vessel set's, bit for bit.

Deterministic per seed: image i of the training set uses
`np.random.default_rng([seed, 0, i])`, test image i `[seed, 1, i]`.
Defaults (12 train, 4 test, 96 x 96) make 156 augmented training images.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from data.av import ARTERY, VEIN
from data.samples import Sample

ARTERY_CONTRAST = 0.6  # synthetic_av: an artery is drawn this much less dark than a vein


def make_synthetic(
    n_train: int = 12, n_test: int = 4, size: int = 96, seed: int = 42, av: bool = False
) -> tuple[list[Sample], list[Sample]]:
    """(train, test) lists of synthetic `Sample`s; with `av`, labels are A/V class maps."""
    train = [synthetic_sample(size, seed, 0, i, av) for i in range(n_train)]
    test = [synthetic_sample(size, seed, 1, i, av) for i in range(n_test)]
    return train, test


def synthetic_sample(size: int, seed: int, part: int, index: int, av: bool = False) -> Sample:
    """One synthetic fundus image (image uint8 (size, size, 3), label {0, 1}, round FOV mask);
    with `av` the label is a uint8 class map of 0 (background), ARTERY and VEIN."""
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
    kinds = Image.new("L", (size, size), 0)  # each vessel pixel's class (av only)
    draw = ImageDraw.Draw(darkness)
    scale = size / 96
    for tree in range(int(rng.integers(3, 6))):
        kind = (ARTERY, VEIN)[tree % 2] if av else None
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
            kind=None if kind is None else (ImageDraw.Draw(kinds), kind),
        )
    dark = np.asarray(darkness, dtype=np.float32) / 255.0
    vessel = (dark > 0) & mask
    label = np.where(vessel, np.asarray(kinds), 0) if av else vessel
    image = image * (1 - dark[:, :, None] * np.array([0.45, 1.0, 0.8], dtype=np.float32))

    image = image + rng.normal(0, 3.0, size=image.shape)
    image = np.where(mask[:, :, None], image, 0)
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    prefix = "synthetic_av" if av else "synthetic"
    return Sample(
        name=f"{prefix}_{'train' if part == 0 else 'test'}_{index:03d}",
        image=image,
        label=label.astype(np.uint8),
        mask=mask,
        second=None,
        source=f"{prefix}/{part}/{index}",
    )


def _grow(draw, rng, start, direction, width, length, depth, scale, kind=None):
    """Draw a wiggly vessel from `start`, branching into two thinner ones. kind: None, or
    (a drawing on the class canvas, ARTERY or VEIN): the same lines drawn there in that class, an
    artery's at ARTERY_CONTRAST times the contrast."""
    lighter = ARTERY_CONTRAST if kind is not None and kind[1] == ARTERY else 1.0
    contrast = int(255 * rng.uniform(0.2, 0.55) * lighter)
    point = start
    steps = max(2, int(length / (4 * scale)))
    step = length / steps
    for _ in range(steps):
        direction += rng.normal(0, 0.25)
        nxt = point + step * np.array([np.cos(direction), np.sin(direction)])
        line_width = max(1, int(round(width)))
        draw.line([tuple(point), tuple(nxt)], fill=contrast, width=line_width)
        if kind is not None:
            kind[0].line([tuple(point), tuple(nxt)], fill=kind[1], width=line_width)
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
                kind,
            )
