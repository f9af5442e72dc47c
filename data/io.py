"""Reading one image file (or its bytes from an archive) into NumPy arrays.

Formats: JPEG, PNG, TIFF, GIF, PPM/PGM (and any of them gzip-compressed as
`*.gz`, as in the official STARE archives). Pillow opens files by content, so
STARE's PGM labels under `.ppm` names read as grey images. DICOM files (a
clinic's ophthalmic photographs, `.dcm`, or any file with DICOM's `DICM`
preamble, with or without a name suffix) are decoded with pydicom: native,
JPEG and JPEG 2000 pixel data, YBR colour converted to RGB, palette colour
expanded, more than 8 bits scaled to 8, MONOCHROME1 inverted; one frame per
file. `dicom_mm_per_pixel`
reads their Pixel Spacing (0028,0030).

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

DICOM_SUFFIXES = (".dcm", ".dicom")
IMAGE_SUFFIXES = (
    ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".pnm", ".bmp", *DICOM_SUFFIXES,
)  # fmt: skip
DICOM_MAGIC = b"DICM"  # bytes 128-131 of a DICOM file (Part 10), after a 128-byte preamble
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


def is_dicom_bytes(data: bytes) -> bool:
    """True when `data` starts as a DICOM Part 10 file does (`DICM` after 128 bytes)."""
    return data[128:132] == DICOM_MAGIC


def is_dicom_file(path: str | os.PathLike) -> bool:
    """True for a readable file whose first 132 bytes are a DICOM preamble and magic, whatever its
    name (archives export photographs as `IM000001` and the like); False for DICOMDIR, the index
    of such an export, which holds no pixels."""
    path = Path(path)
    if path.name.upper() == "DICOMDIR":
        return False
    try:
        with open(path, "rb") as handle:
            return is_dicom_bytes(handle.read(132))
    except OSError:
        return False


def _dicom_dataset(source, name: str, stop_before_pixels: bool = False):
    """pydicom's Dataset of `source` (bytes or a path), a UserError naming the file otherwise."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        return pydicom.dcmread(handle, stop_before_pixels=stop_before_pixels)
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError) as exc:
        raise UserError(f"{name} could not be read as a DICOM file ({exc})") from exc


def _frames(ds) -> int:
    try:
        return int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        return 1


def _dicom_image(data: bytes, name: str) -> Image.Image:
    """A DICOM photograph as an 8-bit RGB or grey Pillow image (its single frame)."""
    ds = _dicom_dataset(data, name)
    if "PixelData" not in ds:
        raise UserError(f"{name} is a DICOM file without pixel data (no image to read)")
    frames = _frames(ds)
    if frames > 1:
        raise UserError(
            f"{name} holds {frames} frames (a stereo pair or a series); predict.py reads one "
            "photograph per file: export each frame as its own file"
        )
    interpretation = str(ds.get("PhotometricInterpretation", "")).upper()
    try:
        arr = ds.pixel_array  # YBR_FULL and YBR_FULL_422 come out as RGB
    except Exception as exc:  # pydicom raises many kinds for a missing decoder or bad data
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        what = f" (transfer syntax {syntax.name})" if syntax is not None else ""
        raise UserError(
            f"{name}: its pixel data could not be decoded{what}: {exc}; JPEG-LS and "
            "some other compressed syntaxes need `pip install pylibjpeg pylibjpeg-libjpeg`"
        ) from exc
    arr = np.asarray(arr)
    if interpretation == "PALETTE COLOR":  # indices into the file's colour tables
        from pydicom.pixels import apply_color_lut

        arr = np.asarray(apply_color_lut(arr, ds))  # RGB, 8 or 16 bits as the tables are
        bits = 16 if arr.dtype != np.uint8 else 8
        if bits == 16:
            arr = np.clip(np.rint(arr.astype(np.float64) * (255.0 / 65535)), 0, 255)
            arr = arr.astype(np.uint8)
    elif arr.dtype != np.uint8:
        bits = int(ds.get("BitsStored", 8) or 8)
        arr = np.clip(arr.astype(np.float64), 0, None) * (255.0 / (2**bits - 1))
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    if interpretation == "MONOCHROME1":  # 0 is white
        arr = 255 - arr
    if arr.ndim == 2:
        return Image.fromarray(arr, "L")
    if arr.ndim == 3 and arr.shape[2] == 3:
        return Image.fromarray(np.ascontiguousarray(arr), "RGB")
    raise UserError(f"{name}: DICOM pixel data of shape {arr.shape} is not a photograph")


def dicom_mm_per_pixel(source: str | os.PathLike | bytes, name: str | None = None) -> float | None:
    """The size of a pixel in mm from a DICOM file's Pixel Spacing (0028,0030), the geometric mean
    of its row and column spacing; None for a file that is not DICOM or records none. `source` is
    a path or the file's bytes (then give `name`), so a photograph read once serves both."""
    if isinstance(source, bytes):
        if not is_dicom_bytes(source):
            return None
        ds = _dicom_dataset(source, name or "<bytes>", stop_before_pixels=True)
    else:
        if not is_dicom_file(source):
            return None
        ds = _dicom_dataset(str(source), str(source), stop_before_pixels=True)
    spacing = ds.get("PixelSpacing")
    try:
        rows, cols = (float(v) for v in spacing)
    except (TypeError, ValueError):
        return None
    if not (rows > 0 and cols > 0 and np.isfinite(rows) and np.isfinite(cols)):
        return None
    return float(np.sqrt(rows * cols))


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
    if is_dicom_bytes(data):
        return _dicom_image(data, name), 1
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
            "JPEG, PNG, TIFF, GIF or PPM/PGM file (optionally .gz), or a DICOM file"
        ) from exc


def read_bytes(source: str | os.PathLike | bytes, name: str | None = None) -> tuple[bytes, str]:
    """(the file's bytes, the name its messages use): `source` read once, a UserError naming it
    when it cannot be; bytes are passed through (named `name`)."""
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
    if is_dicom_file(path):
        ds = _dicom_dataset(str(path), str(path), stop_before_pixels=True)
        try:
            return int(ds.Rows), int(ds.Columns)
        except (AttributeError, TypeError, ValueError) as exc:
            raise UserError(
                f"{path} is a DICOM file without an image size (Rows, Columns)"
            ) from exc
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
            f"{path} is not an image file (its header is not JPEG, PNG, TIFF, GIF, BMP, PPM/PGM or DICOM)"
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
    data, name = read_bytes(source, name)
    img, orientation = _open(data, name)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "1", "L"):
        grey = _grey(img)
        return np.repeat(grey[:, :, None], 3, axis=2), orientation
    return np.ascontiguousarray(np.asarray(img.convert("RGB"))), orientation


def read_label(source: str | os.PathLike | bytes, name: str | None = None) -> np.ndarray:
    """Vessel label -> uint8 (H, W) in {0, 1}, binarised at grey level > 127."""
    data, name = read_bytes(source, name)
    return (_grey(_open(data, name)[0]) > 127).astype(np.uint8)


def read_mask(source: str | os.PathLike | bytes, name: str | None = None) -> np.ndarray:
    """Field-of-view mask -> bool (H, W), inside where grey level > 127."""
    data, name = read_bytes(source, name)
    return _grey(_open(data, name)[0]) > 127


def default_cache_dir() -> Path:
    """`$SAUNETV2_CACHE`, else `~/.cache/sa-unetv2`: where augmented arrays and FOV masks go."""
    env = os.environ.get("SAUNETV2_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sa-unetv2"


def to_unit_float(images: np.ndarray) -> np.ndarray:
    """uint8 images (any shape) -> float32 in [0, 1], the network's input scale."""
    return np.asarray(images).astype(np.float32) / np.float32(255.0)
