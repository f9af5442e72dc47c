"""Reading one image file (or its bytes from an archive) into NumPy arrays.

Formats: JPEG, PNG, TIFF, GIF, PPM/PGM (and any of them gzip-compressed as
`*.gz`, as in the official STARE archives). Pillow opens files by content, so
STARE's PGM labels under `.ppm` names read as grey images.

- `read_image` -> uint8 (H, W, 3) RGB; grey inputs are repeated to 3 channels,
  RGBA/LA inputs drop alpha, palette inputs are expanded, 16-bit grey is
  scaled to 8 bits. `read_photograph` also returns the EXIF orientation tag.
- `read_label` -> uint8 (H, W) in {0, 1}: grey level > 127 is vessel. A palette
  GIF (DRIVE's `2nd_manual`, entries (4, 2, 4) and (252, 254, 252)) is
  converted to grey first, which gives 3 and 253, so the same threshold works.
- `read_mask` -> bool (H, W): grey level > 127 is inside the field of view.

Every image is read as a viewer displays it: a file whose EXIF orientation tag
(`EXIF_ORIENTATION`, 2-8) says its stored pixels are turned or mirrored (a
camera or phone held upright stores them that way) is turned back with
Pillow's `ImageOps.exif_transpose`, so maps and measurements come out in the
orientation the user sees. None of the datasets' files carries a tag other
than 1.

Every failure to decode (unknown format, truncated file, bad gzip) becomes a
UserError naming the file.
"""

from __future__ import annotations

import gzip
import io
import os
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from utils.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".pnm", ".bmp")
EXIF_ORIENTATION = 0x0112  # the EXIF tag: how the stored pixels are turned for display, 1-8
TURNED = (5, 6, 7, 8)  # orientations that swap width and height


def file_stem(name: str) -> str:
    """Name without folder, `.gz` and image extension: `im0001.ah.ppm.gz` -> `im0001.ah`."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if base.lower().endswith(".gz"):
        base = base[:-3]
    stem, dot, ext = base.rpartition(".")
    return stem if dot and f".{ext.lower()}" in IMAGE_SUFFIXES else base


def is_image_name(name: str) -> bool:
    """True for names with an image extension (optionally followed by `.gz`)."""
    base = name.lower()
    if base.endswith(".gz"):
        base = base[:-3]
    return base.endswith(IMAGE_SUFFIXES)


def exif_orientation(img: Image.Image) -> int:
    """The EXIF orientation tag (1-8) of an opened image: 1 when it has none, or an unreadable
    or invalid one (the pixels are then taken as stored). Only what Pillow has read so far is
    looked at (`Image.Image.getexif`: a PNG's own would decode the whole file), so on a header
    alone a PNG's eXIf chunk after its pixels is not seen."""
    try:
        value = int(Image.Image.getexif(img).get(EXIF_ORIENTATION, 1))
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, EOFError):
        return 1
    return value if 1 <= value <= 8 else 1


def _open(data: bytes, name: str) -> tuple[Image.Image, int]:
    """Decode `data` fully (so truncation is caught here), un-gzipping `*.gz` first, and turn it
    as its EXIF orientation tag says (`ImageOps.exif_transpose`); returns (image, the tag)."""
    try:
        if name.lower().endswith(".gz"):
            data = gzip.decompress(data)
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # e.g. "Corrupt EXIF data": the error below says it once
            img = Image.open(io.BytesIO(data))
            img.load()
            orientation = exif_orientation(img)
            if orientation != 1:
                img = ImageOps.exif_transpose(img)
        return img, orientation
    except (
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        zlib.error,
        Image.DecompressionBombError,
    ) as exc:
        reason = str(exc).strip().rstrip(".") or exc.__class__.__name__
        if reason.startswith("cannot identify image file"):
            reason = "not a recognised image format"
        raise UserError(
            f"{name} could not be read as an image ({reason}); expected a complete "
            "JPEG, PNG, TIFF, GIF or PPM/PGM file (optionally .gz)"
        ) from exc


def _as_bytes(source: str | os.PathLike | bytes, name: str | None) -> tuple[bytes, str]:
    if isinstance(source, bytes):
        return source, name or "<bytes>"
    path = Path(source)
    try:
        return path.read_bytes(), name or str(path)
    except OSError as exc:
        raise UserError(
            f"{path} could not be read ({exc.strerror or exc}); expected a readable image file"
        ) from exc


def _grey(img: Image.Image) -> np.ndarray:
    """uint8 (H, W) grey levels of any mode."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.int64)
        top = 65535 if arr.max() > 255 else 255
        return (arr * 255 // top).astype(np.uint8)
    if img.mode == "1":
        return np.asarray(img.convert("L"))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA").convert("RGB")
    return np.asarray(img.convert("L"))


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(H, W) of an image file as displayed (its EXIF orientation applied), from its header only
    (nothing decoded); a UserError naming the file when it is not an image Pillow recognises
    (`.gz` files are opened through gzip)."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if path.name.lower().endswith(".gz"):
                with gzip.open(path) as handle, Image.open(handle) as img:
                    width, height = img.size
                    turned = exif_orientation(img) in TURNED
            else:
                with Image.open(path) as img:
                    width, height = img.size
                    turned = exif_orientation(img) in TURNED
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as exc:
        raise UserError(
            f"{path} is not an image file (its header is not JPEG, PNG, TIFF, GIF, BMP or PPM/PGM)"
        ) from exc
    return (width, height) if turned else (height, width)


def read_image(source: str | os.PathLike | bytes, name: str | None = None) -> np.ndarray:
    """Colour image -> uint8 (H, W, 3) as displayed. `source` is a path or the file's bytes (then
    give `name`)."""
    return read_photograph(source, name)[0]


def read_photograph(
    source: str | os.PathLike | bytes, name: str | None = None
) -> tuple[np.ndarray, int]:
    """(`read_image`'s uint8 (H, W, 3) as displayed, the file's EXIF orientation tag 1-8, 1 when
    it has none): predict.py records the tag beside each photograph's measurements."""
    data, name = _as_bytes(source, name)
    img, orientation = _open(data, name)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "1", "L"):
        grey = _grey(img)
        return np.repeat(grey[:, :, None], 3, axis=2), orientation
    return np.ascontiguousarray(np.asarray(img.convert("RGB"))), orientation


def read_label(source: str | os.PathLike | bytes, name: str | None = None) -> np.ndarray:
    """Vessel label -> uint8 (H, W) in {0, 1}, binarised at grey level > 127."""
    data, name = _as_bytes(source, name)
    return (_grey(_open(data, name)[0]) > 127).astype(np.uint8)


def read_mask(source: str | os.PathLike | bytes, name: str | None = None) -> np.ndarray:
    """Field-of-view mask -> bool (H, W), inside where grey level > 127."""
    data, name = _as_bytes(source, name)
    return _grey(_open(data, name)[0]) > 127


def default_cache_dir() -> Path:
    """`$SAUNETV2_CACHE`, else `~/.cache/sa-unetv2`: where augmented arrays and FOV masks go."""
    env = os.environ.get("SAUNETV2_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sa-unetv2"


def to_unit_float(images: np.ndarray) -> np.ndarray:
    """uint8 images (any shape) -> float32 in [0, 1], the network's input scale."""
    return np.asarray(images).astype(np.float32) / np.float32(255.0)
