"""The pictures written for a segmented image: probability and binary maps, overlays.

predict.py writes, per photograph `<name>`, the kinds chosen by `--save`
(`OUTPUT_KINDS`, default all): `<name>_prob.png`, `<name>_binary.png`,
`<name>_overlay.png`, `<name>_fov.png`, with `--measure-images`
`<name>_calibre.png` (`calibre_picture`), with `--disc` `<name>_disc.png`
(`disc_picture`) and with `--av` `<name>_av.png` (`data.av.av_overlay`). PNGs are written with zlib level 1
and its run-length strategy (`PNG_OPTIONS`): the overlay of a 3504 x 2336
photograph takes 0.7 s instead of 3.5 s at Pillow's default (level 6) and is
about 15 % smaller (6.3 instead of 7.4 MB); the pixels are the same.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from utils.errors import UserError

OUTPUT_KINDS = ("prob", "binary", "overlay", "fov")
CALIBRE_KIND = "calibre"
DISC_KIND = "disc"
AV_KIND = "av"
PNG_OPTIONS = {"compress_level": 1, "compress_type": 3}  # zlib level 1, Z_RLE

# Overlay colours (RGB): true positives, false positives, false negatives.
TP_COLOUR = (0, 200, 0)
FP_COLOUR = (255, 40, 40)
FN_COLOUR = (40, 120, 255)
VESSEL_COLOUR = (0, 230, 0)
# The optic disc's circle: cyan, apart from the red-orange retina, the pale disc, A/V red and blue.
DISC_COLOUR = (0, 255, 255)


def probability_png(prob: np.ndarray) -> np.ndarray:
    """(H, W) probabilities -> uint8 grey image 0..255."""
    scaled = prob * 255.0  # one full-size temporary, rounded and clipped in place
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)
    return scaled.astype(np.uint8)


def overlay_errors(image: np.ndarray, pred: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Fundus image with true positives, false positives and false negatives in three colours."""
    out = (image.astype(np.float32) * 0.55).astype(np.uint8)
    pred, label = pred.astype(bool), label.astype(bool)
    out[pred & label] = TP_COLOUR
    out[pred & ~label] = FP_COLOUR
    out[~pred & label] = FN_COLOUR
    return out


def overlay_vessels(image: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Fundus image with the predicted vessels drawn in one colour."""
    out = image.copy()
    out[pred.astype(bool)] = VESSEL_COLOUR
    return out


def parse_save(text: str) -> tuple[str, ...]:
    """A `--save` value: comma-separated kinds of `OUTPUT_KINDS` (or "all"), in that order."""
    names = [name.strip() for name in str(text).split(",") if name.strip()]
    if names == ["all"]:
        return OUTPUT_KINDS
    unknown = [name for name in names if name not in OUTPUT_KINDS]
    if unknown or not names:
        raise UserError(
            f"--save takes a comma-separated list of {', '.join(OUTPUT_KINDS)} (or all), "
            f"got {text!r}"
        )
    return tuple(kind for kind in OUTPUT_KINDS if kind in names)


def output_path(out_dir: str | Path, name: str, kind: str) -> Path:
    """Where the `kind` picture of the photograph `name` (may hold sub-folders) goes."""
    return Path(out_dir) / f"{name}_{kind}.png"


def output_picture(
    kind: str, image: np.ndarray, prob: np.ndarray, vessels: np.ndarray, fov: np.ndarray
) -> np.ndarray:
    """The uint8 picture of one of `OUTPUT_KINDS` for image uint8 (H, W, 3), prob float32
    (H, W), vessels and fov bool (H, W)."""
    if kind == "prob":
        return probability_png(prob)
    if kind == "binary":
        return vessels.astype(np.uint8) * 255
    if kind == "overlay":
        return overlay_vessels(image, vessels)
    if kind == "fov":
        return fov.astype(np.uint8) * 255
    raise ValueError(f"unknown output kind {kind!r}")


def calibre_picture(image: np.ndarray, skeleton: np.ndarray, calibre: np.ndarray) -> np.ndarray:
    """The photograph dimmed, with the vessel skeleton (thickened to 3 px) coloured by calibre:
    blue for the thinnest, through green, to red for the 98th percentile of widths and wider.

    image uint8 (H, W, 3); skeleton bool (H, W); calibre float (H, W), px, 0 off the skeleton.
    """
    from scipy import ndimage

    out = (image.astype(np.float32) * 0.35).astype(np.uint8)
    if not skeleton.any():
        return out
    # Each pixel next to the skeleton takes the largest width among the skeleton pixels around it.
    widths = ndimage.grey_dilation(np.where(skeleton, calibre, 0.0), size=3)
    near = ndimage.binary_dilation(skeleton, iterations=1, structure=np.ones((3, 3)))
    low, high = np.percentile(calibre[skeleton], [2, 98])
    t = np.clip((widths[near] - low) / max(high - low, 1e-6), 0.0, 1.0)
    colour = np.stack(
        [np.clip(2 * t - 1, 0, 1), 1 - np.abs(2 * t - 1), np.clip(1 - 2 * t, 0, 1)], axis=-1
    )
    out[near] = (colour * 255).astype(np.uint8)
    return out


def disc_picture(
    image: np.ndarray, centre_xy: tuple[float, float] | None, radius_px: float | None
) -> np.ndarray:
    """The photograph uint8 (H, W, 3) with the optic disc's circle (centre (x, y) and radius in
    its pixels) and a cross at its centre drawn in `DISC_COLOUR`, lines about 1/300 of the
    shorter side thick (2 px at least); centre None: the photograph as it is (no disc)."""
    from PIL import Image, ImageDraw

    picture = Image.fromarray(np.ascontiguousarray(image[..., :3], dtype=np.uint8))
    if centre_xy is None or radius_px is None:
        return np.asarray(picture)
    width = max(2, round(min(image.shape[:2]) / 300))
    x, y = centre_xy
    draw = ImageDraw.Draw(picture)
    draw.ellipse((x - radius_px, y - radius_px, x + radius_px, y + radius_px),
                 outline=DISC_COLOUR, width=width)  # fmt: skip
    arm = max(3 * width, radius_px / 4)
    draw.line((x - arm, y, x + arm, y), fill=DISC_COLOUR, width=width)
    draw.line((x, y - arm, x, y + arm), fill=DISC_COLOUR, width=width)
    return np.asarray(picture)
