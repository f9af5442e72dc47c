"""SA-UNet's offline augmentation: 13 images per source image, seeded, byte-for-byte reproducible.

Outputs, in this fixed order (index in the returned arrays):

0. the original;
1-3. rotations by an angle drawn uniformly from the integers 1..359 degrees
     (Pillow `rotate`, counter-clockwise about the centre, no expand, fill 0;
     bicubic for the image, nearest for the label, so labels stay in {0, 1});
4-6. colour jitters with Pillow `ImageEnhance`, applied in this order: Color
     (saturation) factor U[0, 3], Brightness U[1, 2], Contrast U[1, 2],
     Sharpness U[0, 3]; the label is unchanged;
7-9. Gaussian noise, mean 0.2 and sigma 0.3 grey levels, added to the image
     as float and then rounded and clipped to 0..255; label unchanged;
10. horizontal flip; 11. vertical flip; 12. both flips.

Randomness comes from `np.random.default_rng([seed, index])` where `index`
is the source image's position in the training list; draws are made in the
order above (3 angles, 3 x 4 factors, 3 noise fields).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageEnhance

N_AUGMENTED = 13
ROTATION_RANGE = (1, 359)
COLOR_RANGE = (0.0, 3.0)
BRIGHTNESS_RANGE = (1.0, 2.0)
CONTRAST_RANGE = (1.0, 2.0)
SHARPNESS_RANGE = (0.0, 3.0)
NOISE_MEAN = 0.2
NOISE_SIGMA = 0.3
AUGMENT_VERSION = 1

# Everything that changes the output; part of the cache key.
AUGMENT_PARAMS = {
    "version": AUGMENT_VERSION,
    "n": N_AUGMENTED,
    "rotation": ROTATION_RANGE,
    "color": COLOR_RANGE,
    "brightness": BRIGHTNESS_RANGE,
    "contrast": CONTRAST_RANGE,
    "sharpness": SHARPNESS_RANGE,
    "noise": (NOISE_MEAN, NOISE_SIGMA),
}


def augment_sample(
    image: np.ndarray, label: np.ndarray, seed: int, index: int
) -> tuple[np.ndarray, np.ndarray]:
    """13 augmented copies of one training image.

    image uint8 (H, W, 3), label uint8 (H, W) in {0, 1} ->
    images uint8 (13, H, W, 3), labels uint8 (13, H, W) in {0, 1}.
    """
    rng = np.random.default_rng([int(seed), int(index)])
    image = np.ascontiguousarray(image, dtype=np.uint8)
    label = np.ascontiguousarray(label, dtype=np.uint8)
    images = np.empty((N_AUGMENTED, *image.shape), dtype=np.uint8)
    labels = np.empty((N_AUGMENTED, *label.shape), dtype=np.uint8)
    images[0], labels[0] = image, label

    pil_image, pil_label = Image.fromarray(image), Image.fromarray(label)
    angles = rng.integers(ROTATION_RANGE[0], ROTATION_RANGE[1] + 1, size=3)
    for k, angle in enumerate(angles, start=1):
        images[k] = np.asarray(
            pil_image.rotate(float(angle), resample=Image.BICUBIC, fillcolor=(0, 0, 0))
        )
        labels[k] = np.asarray(pil_label.rotate(float(angle), resample=Image.NEAREST, fillcolor=0))

    ranges = (COLOR_RANGE, BRIGHTNESS_RANGE, CONTRAST_RANGE, SHARPNESS_RANGE)
    enhancers = (
        ImageEnhance.Color,
        ImageEnhance.Brightness,
        ImageEnhance.Contrast,
        ImageEnhance.Sharpness,
    )
    for k in range(4, 7):
        factors = [rng.uniform(lo, hi) for lo, hi in ranges]
        out = pil_image
        for enhancer, factor in zip(enhancers, factors, strict=True):
            out = enhancer(out).enhance(float(factor))
        images[k], labels[k] = np.asarray(out), label

    for k in range(7, 10):
        noise = rng.normal(NOISE_MEAN, NOISE_SIGMA, size=image.shape)
        images[k] = np.clip(np.rint(image + noise), 0, 255).astype(np.uint8)
        labels[k] = label

    images[10], labels[10] = image[:, ::-1], label[:, ::-1]
    images[11], labels[11] = image[::-1], label[::-1]
    images[12], labels[12] = image[::-1, ::-1], label[::-1, ::-1]
    return images, labels
