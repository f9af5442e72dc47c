"""DICOM photographs (data/io.py): decoding, Pixel Spacing, and predict.py on a clinic's export."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from PIL import Image

from data.io import (
    dicom_mm_per_pixel,
    image_size,
    is_dicom_file,
    read_image,
    read_label,
    read_photograph,
)
from data.synthetic import synthetic_sample
from tests.test_predict import predict
from utils.errors import UserError

OPHTHALMIC_PHOTOGRAPHY_8BIT = "1.2.840.10008.5.1.4.1.1.77.1.5.1"


def dicom(path, pixels: np.ndarray, interpretation: str | None = None, spacing=None,
          jpeg: bool = False, bits: int = 8, frames: int = 1):  # fmt: skip
    """Write `pixels` ((H, W) or (H, W, 3), or (frames, ...)) as a DICOM Part 10 file at `path`,
    natively or as baseline JPEG (YBR_FULL_422, as fundus cameras store colour)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

    colour = pixels.ndim == (4 if frames > 1 else 3)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = OPHTHALMIC_PHOTOGRAPHY_8BIT
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = JPEGBaseline8Bit if jpeg else ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = OPHTHALMIC_PHOTOGRAPHY_8BIT, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = pixels.shape[-3:-1] if colour else pixels.shape[-2:]
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = interpretation or (
        ("YBR_FULL_422" if jpeg else "RGB") if colour else "MONOCHROME2"
    )
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = (16 if bits > 8 else 8), bits, bits - 1
    ds.PixelRepresentation = 0
    if colour:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    if spacing is not None:
        ds.PixelSpacing = list(spacing)
    if jpeg:
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "JPEG", quality=95)
        ds.PixelData = encapsulate([buf.getvalue()])
        ds["PixelData"].VR = "OB"
    else:
        ds.PixelData = pixels.astype(np.uint16 if bits > 8 else np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def fundus(size=64, seed=0) -> np.ndarray:
    return synthetic_sample(size, seed, 1, 0).image


def test_native_rgb_reads_as_stored_with_its_pixel_spacing(tmp_path):
    pixels = fundus()
    path = dicom(tmp_path / "eye.dcm", pixels, spacing=(0.008, 0.008))
    image, orientation = read_photograph(path)
    assert image.dtype == np.uint8 and orientation == 1
    np.testing.assert_array_equal(image, pixels)
    assert image_size(path) == pixels.shape[:2]
    assert dicom_mm_per_pixel(path) == pytest.approx(0.008)
    assert dicom_mm_per_pixel(path.read_bytes(), "eye.dcm") == pytest.approx(0.008)  # read once
    assert dicom_mm_per_pixel(b"\xff\xd8" + bytes(200), "eye.jpg") is None  # not DICOM


def test_jpeg_ybr_colour_comes_out_as_rgb(tmp_path):
    pixels = np.zeros((48, 64, 3), np.uint8)
    pixels[...] = (200, 90, 40)  # orange-red fundus
    pixels[16:32, 8:56] = (110, 40, 20)  # a darker band
    image = read_image(dicom(tmp_path / "eye.dcm", pixels, jpeg=True))
    # Decoded and converted once (twice would turn orange into another colour): away from the
    # band's edges, where JPEG rings, only its rounding is left.
    for rows, cols in ((slice(0, 8), slice(None)), (slice(20, 28), slice(16, 48))):
        assert np.abs(image[rows, cols].astype(int) - pixels[rows, cols]).max() <= 3
    assert dicom_mm_per_pixel(tmp_path / "eye.dcm") is None  # none recorded


def test_jpeg_2000_lossless_reads_exactly(tmp_path):
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEG2000Lossless

    pixels = fundus()
    path = dicom(tmp_path / "eye.dcm", pixels)
    ds = pydicom.dcmread(path)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG2000", irreversible=False, no_jp2=True, mct=0)
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.PixelData = encapsulate([buf.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    np.testing.assert_array_equal(read_image(path), pixels)


def test_grey_16_bit_and_monochrome1(tmp_path):
    ramp = np.tile(np.arange(0, 4096, 64, dtype=np.uint16), (8, 1))  # 12 bits stored
    image = read_image(dicom(tmp_path / "grey.dcm", ramp, bits=12))
    assert image.shape == (8, 64, 3) and image[0, 0, 0] == 0 and image[0, -1, 0] >= 250
    assert (image[..., 0] == image[..., 2]).all()
    flipped = read_image(dicom(tmp_path / "inverted.dcm", ramp, "MONOCHROME1", bits=12))
    np.testing.assert_array_equal(flipped, 255 - image)
    label = np.zeros((16, 16), np.uint8)
    label[4:8] = 255
    assert read_label(dicom(tmp_path / "label.dcm", label)).sum() == 64


def test_palette_colour_is_expanded_through_its_tables(tmp_path):
    import pydicom

    index = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (4, 1))
    path = dicom(tmp_path / "palette.dcm", index, "PALETTE COLOR")
    ds = pydicom.dcmread(path)
    ramp = np.arange(256, dtype=np.uint16)
    for colour, table in (("Red", ramp * 257), ("Green", (255 - ramp) * 257), ("Blue", ramp * 0)):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        ds[f"{colour}PaletteColorLookupTableDescriptor"].VR = "US"
        setattr(ds, f"{colour}PaletteColorLookupTableData", table.astype("<u2").tobytes())
    ds.save_as(path, enforce_file_format=True)
    image = read_image(path)
    np.testing.assert_array_equal(image[..., 0], index)
    np.testing.assert_array_equal(image[..., 1], 255 - index)
    assert (image[..., 2] == 0).all()


def test_bad_dicom_files_are_refused_in_one_sentence(tmp_path):
    two = np.stack([fundus(32, 0), fundus(32, 1)])
    with pytest.raises(UserError, match="holds 2 frames"):
        read_image(dicom(tmp_path / "stereo.dcm", two, frames=2))
    path = dicom(tmp_path / "cut.dcm", fundus(32))
    path.write_bytes(path.read_bytes()[:-500])  # truncated pixel data
    with pytest.raises(UserError, match="cut.dcm"):
        read_image(path)
    (tmp_path / "fake.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"garbage")
    with pytest.raises(UserError, match="fake.dcm"):
        read_image(tmp_path / "fake.dcm")


def test_files_without_a_suffix_are_found_by_their_preamble(tmp_path):
    from inference.pipeline import collect_inputs

    export = tmp_path / "export"
    dicom(export / "IM000001", fundus(32, 0))
    dicom(export / "1.2.826.0.1.3680043.8.498.1", fundus(32, 1))  # a UID as the name
    (export / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM")  # the export's index: no pixels
    (export / "notes.txt").write_text("not a photograph")
    assert is_dicom_file(export / "IM000001") and not is_dicom_file(export / "DICOMDIR")
    names = sorted(job.name for job in collect_inputs([str(export)]))
    assert names == ["1.2.826.0.1.3680043.8.498.1", "IM000001"]


def test_predict_measures_a_dicom_photograph_in_its_own_pixel_spacing(tmp_path, capsys):
    from models import build_model

    tiny_weights = tmp_path / "tiny.keras"  # untrained: the mechanics need no training
    build_model("sa_unetv2", start_neurons=8).save(tiny_weights)
    folder = tmp_path / "clinic"
    dicom(folder / "IM000001", fundus(64, 0), spacing=(0.012, 0.012), jpeg=True)
    dicom(folder / "IM000002", fundus(64, 1))  # no spacing: from --fov-degrees
    out = tmp_path / "out"
    args = ["--weights", tiny_weights, "--out", out, "--engine", "keras", "--scale", "1"]
    code, stdout, stderr = predict([*args, "--measure", folder], capsys)
    assert code == 0, stderr
    assert "2 done" in stdout
    assert (out / "IM000001_binary.png").is_file() and (out / "IM000002_prob.png").is_file()
    with (out / "measurements.csv").open() as handle:
        rows = {row["image"]: row for row in csv.DictReader(handle)}
    assert float(rows["IM000001"]["mm_per_pixel"]) == pytest.approx(0.012)
    assumed = float(rows["IM000002"]["mm_per_pixel"])  # a 45-degree field over its FOV diameter
    assert assumed > 0 and assumed != pytest.approx(0.012)
    # An explicit --mm-per-pixel overrides what the file records.
    out2 = tmp_path / "out2"
    args2 = [*args[:3], out2, *args[4:], "--measure", "--mm-per-pixel", "0.02"]
    code, _, stderr = predict([*args2, folder / "IM000001"], capsys)
    assert code == 0, stderr
    with (out2 / "measurements.csv").open() as handle:
        assert float(next(csv.DictReader(handle))["mm_per_pixel"]) == pytest.approx(0.02)
