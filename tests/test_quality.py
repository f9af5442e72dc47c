"""data/quality.py: each check on synthetic photographs made to fail it, and only it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from data.fov import generate_fov_mask
from data.quality import (
    MAX_OVEREXPOSED,
    MAX_UNDEREXPOSED,
    MIN_BRIGHTNESS,
    MIN_SHARPNESS,
    photograph_quality,
    quality_flag,
    quality_reasons,
)
from data.scale import fov_diameter, resize_image
from data.synthetic import synthetic_sample

USUAL_AREA = 0.12  # a vessel area fraction inside the usual range


@pytest.fixture(scope="module")
def fundus():
    """A synthetic fundus photograph 400 px square (FOV about 360 px across) and its FOV."""
    sample = synthetic_sample(400, 3, 1, 0)
    return sample.image, sample.mask


def figures_of(image):
    """`photograph_quality` as predict.py calls it: the FOV generated from the photograph."""
    fov = generate_fov_mask(image)
    return photograph_quality(image, fov, fov_diameter(fov))


def test_a_clean_photograph_passes_every_check(fundus):
    figures = figures_of(fundus[0])
    assert figures["fov_found"] and 340 < figures["fov_width_px"] < 400
    assert quality_reasons(figures, USUAL_AREA) == []
    assert quality_flag([]) == "ok"
    assert figures["sharpness"] > MIN_SHARPNESS and figures["brightness_median"] > MIN_BRIGHTNESS


def test_a_dark_copy_is_dark_and_as_sharp(fundus):
    """A quarter of the brightness: the median luminance a quarter, the sharpness (a ratio of
    detail at two scales) within 10 %."""
    image = fundus[0]
    clean = figures_of(image)
    dark = figures_of(np.round(image * 0.25).astype(np.uint8))
    assert quality_reasons(dark, USUAL_AREA) == ["dark"]
    assert dark["brightness_median"] == pytest.approx(clean["brightness_median"] / 4, rel=0.05)
    assert dark["sharpness"] == pytest.approx(clean["sharpness"], rel=0.1)


def test_a_shadow_over_part_of_the_field_is_dark_though_the_median_is_not(fundus):
    """The field given (as with --mask: a generated one would leave so deep a shadow out)."""
    image, fov = fundus
    shaded = image.copy()
    shaded[:, :140] = shaded[:, :140] // 16  # about the left quarter of the field in shadow
    figures = photograph_quality(shaded, fov, fov_diameter(fov))
    assert figures["brightness_median"] > MIN_BRIGHTNESS
    assert figures["underexposed_fraction"] > MAX_UNDEREXPOSED
    assert quality_reasons(figures, USUAL_AREA) == ["dark"]


def test_a_washed_out_part_of_the_field_is_bright(fundus):
    washed = fundus[0].copy()
    washed[120:220, 120:220] = 255  # about a tenth of the field clipped white
    figures = figures_of(washed)
    assert figures["overexposed_fraction"] > MAX_OVEREXPOSED
    assert quality_reasons(figures, USUAL_AREA) == ["bright"]


def test_blur_lowers_the_sharpness_and_the_pixel_size_does_not(fundus):
    """A Gaussian blur of sigma 2 px (3 px at the normalised scale) is blurred; the same
    photograph three times larger measures the same sharpness (it is measured at one scale)."""
    image = fundus[0]
    clean = figures_of(image)
    blurred = figures_of(ndimage.gaussian_filter(image, (2.0, 2.0, 0)))
    assert quality_reasons(blurred, USUAL_AREA) == ["blurred"]
    assert blurred["sharpness"] < 0.5 * clean["sharpness"]
    larger = figures_of(resize_image(image, (1200, 1200)))
    assert larger["fov_width_px"] == pytest.approx(3 * clean["fov_width_px"], rel=0.01)
    assert larger["sharpness"] == pytest.approx(clean["sharpness"], rel=0.05)
    assert quality_reasons(larger, USUAL_AREA) == []


def test_a_small_field_of_view_is_small(fundus):
    figures = figures_of(resize_image(fundus[0], (240, 240)))  # FOV about 220 px across
    assert figures["fov_width_px"] < 300
    assert "small" in quality_reasons(figures, USUAL_AREA)


def test_no_field_of_view_is_flagged_and_the_shorter_side_stands_in():
    """A photograph with no dark surround: no FOV is found, its shorter side is the width the
    size check and the normalisation use, and the whole image is measured."""
    noise = np.random.default_rng(0).normal(0, 3, (200, 280, 3))
    texture = np.clip(np.array([170, 90, 40]) + noise, 0, 255).astype(np.uint8)
    fov = generate_fov_mask(texture)
    figures = photograph_quality(texture, fov, fov_diameter(fov))
    assert not figures["fov_found"] and figures["fov_width_px"] == 200
    luminance = 0.2125 * 170 + 0.7154 * 90 + 0.0721 * 40  # Rec. 709, as skimage's rgb2gray
    assert figures["brightness_median"] == pytest.approx(luminance, abs=1)
    reasons = quality_reasons(figures, USUAL_AREA)
    assert reasons == ["no_fov", "small"] and quality_flag(reasons) == "check"


def test_vessel_area_outside_the_usual_range(fundus):
    figures = figures_of(fundus[0])
    assert quality_reasons(figures, 0.01) == ["vessel_area"]
    assert quality_reasons(figures, 0.4) == ["vessel_area"]
    assert quality_reasons(figures, float("nan")) == ["vessel_area"]  # an empty field
    assert quality_reasons(figures, None) == []  # not checked without a map


def _flags_on_real_photographs(root, datasets, degraded_limit):
    """{(dataset, copy): [reasons of each photograph]}: every clean test photograph of
    `datasets`, and the dark, blurred and small copies of the first `degraded_limit` of each,
    through benchmarks/quality.py's reading (as predict.py reads them) and copies."""
    from benchmarks.quality import measure, reasons_of

    found: dict = {}
    rows = [
        *measure(root, datasets, ("clean",)),
        *measure(root, datasets, ("dark", "blurred", "small"), limit=degraded_limit),
    ]
    for row in rows:
        found.setdefault((row["dataset"], row["copy"]), []).append(reasons_of(row))
    return found


def _check_flags(found, datasets, counts):
    for dataset in datasets:
        clean = found[(dataset, "clean")]
        assert len(clean) == counts[dataset]
        assert all(reasons == [] for reasons in clean), (dataset, clean)
        for copy, reason in (("dark", "dark"), ("blurred", "blurred"), ("small", "small")):
            assert all(reason in reasons for reasons in found[(dataset, copy)]), (dataset, copy)


def test_drive_clean_photographs_pass_and_degraded_copies_are_flagged(real_data_root):
    """The 20 DRIVE test photographs pass the photograph's checks; a quarter of the brightness,
    a blur of sigma 3 px and a FOV 250 px across are flagged (the vessel area needs the
    network: benchmarks/quality.py --weights, docs/prediction.md)."""
    found = _flags_on_real_photographs(real_data_root, ("drive",), degraded_limit=3)
    _check_flags(found, ("drive",), {"drive": 20})


@pytest.mark.slow
def test_clean_test_photographs_of_four_datasets_pass_and_degraded_copies_are_flagged(
    real_data_root,
):
    """As above for the test photographs of STARE (20), CHASE_DB1 (8) and HRF (30, at full
    size): none of the 58 clean ones flagged, two degraded copies of each kind per dataset."""
    datasets = ("stare", "chase_db1", "hrf")
    for name in ("STARE", "CHASE_DB1", "HRF"):
        if not (real_data_root / name).is_dir():
            pytest.skip(f"real {name} data not found: expected {real_data_root / name}")
    found = _flags_on_real_photographs(real_data_root, datasets, degraded_limit=2)
    _check_flags(found, datasets, {"stare": 20, "chase_db1": 8, "hrf": 30})
