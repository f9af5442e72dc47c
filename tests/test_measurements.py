"""measurements.py on drawn shapes whose answers are known by construction."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from measurements import (
    MM_PER_DEGREE,
    box_counting_dimension,
    calibre_map,
    measure_vessels,
    mm_per_pixel_from_fov,
    neighbour_counts,
)


def canvas(shape=(200, 300)):
    image = Image.new("L", (shape[1], shape[0]), 0)
    return image, ImageDraw.Draw(image)


def as_mask(image):
    return np.asarray(image) > 127


@pytest.mark.parametrize("width", [3, 5, 7])
def test_straight_bar_has_tortuosity_1_and_its_drawn_width(width):
    mask = np.zeros((100, 300), bool)
    mask[50 - width // 2 : 50 + width // 2 + 1, 40:260] = True
    values = measure_vessels(mask).values
    assert values["tortuosity"] == pytest.approx(1.0, abs=0.01)
    assert values["calibre_median_px"] == pytest.approx(width, abs=1.0)
    assert values["calibre_mean_px"] == pytest.approx(width, abs=1.0)
    assert values["skeleton_length_px"] == pytest.approx(220, abs=2 * width)
    assert values["end_points"] == 2 and values["branch_points"] == 0
    assert values["area_fraction"] == pytest.approx(mask.mean())


def test_median_calibre_is_the_paths_not_the_pixel_grid():
    """The median is over paths' mean widths weighted by their pixels: a 7 px bar 200 px long
    and a 3 px bar 80 px long give 7; one vessel narrowing in steps of 60 px from 9 to 3 px
    gives its mean width, 6, which no single skeleton pixel measures."""
    bars = np.zeros((80, 300), bool)
    bars[17:24, 40:240] = True
    bars[50:53, 40:120] = True
    values = measure_vessels(bars).values
    assert values["calibre_median_px"] == pytest.approx(7, abs=0.2)
    assert 3 < values["calibre_mean_px"] < 7
    taper = np.zeros((100, 300), bool)
    for step, width in enumerate((9, 7, 5, 3)):
        taper[50 - width // 2 : 50 + width // 2 + 1, 30 + 60 * step : 90 + 60 * step] = True
    measured = measure_vessels(taper)
    assert measured.values["segments"] == 1
    assert measured.values["calibre_median_px"] == pytest.approx(6, abs=0.3)
    # The median of the skeleton pixels' own widths would be one of their few values.
    assert np.median(measured.calibre[measured.skeleton]) in (5, 7)


def test_calibre_map_gives_every_pixel_of_a_vessel_its_width():
    """Two bars, 3 and 11 px wide: the pixels of a bar carry its width (all but a few at its
    ends, where the skeleton narrows); background and an empty map are 0."""
    mask = np.zeros((80, 200), bool)
    mask[19:22, 20:180] = True
    mask[45:56, 20:180] = True
    widths = calibre_map(mask)
    assert np.all(widths[~mask] == 0) and np.all(widths[mask] >= 1)
    for rows, width in ((slice(19, 22), 3), (slice(45, 56), 11)):
        assert np.mean(widths[rows, 20:180] == width) > 0.9
        assert np.all(widths[rows, 20:180] <= width)
    assert not calibre_map(np.zeros((10, 10), bool)).any()


def test_oblique_bar_is_straight_too():
    """A line at 22.5 degrees: an 8-connected chain alone would say 1.08."""
    image, draw = canvas((300, 300))
    draw.line([(20, 40), (280, 40 + 260 * np.tan(np.radians(22.5)))], fill=255, width=5)
    values = measure_vessels(as_mask(image)).values
    assert values["tortuosity"] == pytest.approx(1.0, abs=0.02)
    assert values["skeleton_length_px"] == pytest.approx(260 / np.cos(np.radians(22.5)), rel=0.03)


def test_half_circle_arc_chord_ratio():
    """A half circle of radius 80: arc / chord = pi / 2."""
    image, draw = canvas((300, 300))
    draw.arc([50, 50, 210, 210], start=180, end=360, fill=255, width=3)
    values = measure_vessels(as_mask(image)).values
    assert values["segments"] == 1
    assert values["tortuosity"] == pytest.approx(np.pi / 2, rel=0.04)
    assert values["skeleton_length_px"] == pytest.approx(np.pi * 79, rel=0.04)


@pytest.mark.parametrize("shape", ["T", "Y"])
def test_branch_and_end_points_of_a_t_and_a_y(shape):
    image, draw = canvas((300, 300))
    if shape == "T":
        draw.line([(30, 60), (270, 60)], fill=255, width=5)
        draw.line([(150, 60), (150, 270)], fill=255, width=5)
    else:
        draw.line([(150, 150), (150, 280)], fill=255, width=5)
        draw.line([(150, 150), (50, 40)], fill=255, width=5)
        draw.line([(150, 150), (250, 40)], fill=255, width=5)
    values = measure_vessels(as_mask(image)).values
    assert values["branch_points"] == 1
    assert values["end_points"] == 3
    assert values["segments"] == 3


def test_fractal_dimension_of_a_square_and_a_line():
    square = np.zeros((300, 300), bool)
    square[22:278, 22:278] = True
    assert box_counting_dimension(square) == pytest.approx(2.0, abs=0.05)
    line = np.zeros((300, 300), bool)
    line[150, 10:290] = True
    assert box_counting_dimension(line) == pytest.approx(1.0, abs=0.05)
    assert np.isnan(box_counting_dimension(np.zeros((50, 50), bool)))


def test_fractal_dimension_depends_on_the_box_sizes():
    """Lines 8 px apart: boxes smaller than the spacing see separate lines (dimension 1), boxes
    of the spacing or larger are all hit (dimension 2)."""
    grid = np.zeros((256, 256), bool)
    grid[::8, :] = True
    assert box_counting_dimension(grid, sizes=[1, 2, 4]) == pytest.approx(1.0, abs=1e-9)
    assert box_counting_dimension(grid, sizes=[8, 16, 32]) == pytest.approx(2.0, abs=1e-9)


def test_an_l_shaped_step_is_one_path_not_a_junction():
    """Three pixels touching by sides and a corner: a bend, not a triangle of three branches."""
    skeleton = np.zeros((5, 5), bool)
    skeleton[1, 1] = skeleton[1, 2] = skeleton[2, 2] = True
    counts = neighbour_counts(skeleton)
    assert counts[1, 1] == 1 and counts[1, 2] == 2 and counts[2, 2] == 1


def test_fov_restricts_and_millimetres_scale():
    mask = np.zeros((100, 300), bool)
    mask[48:53, 40:260] = True
    fov = np.zeros_like(mask)
    fov[:, :150] = True
    inside = measure_vessels(mask, fov, mm_per_pixel=0.01).values
    assert inside["skeleton_length_px"] == pytest.approx(110, abs=6)
    assert inside["area_fraction"] == pytest.approx(5 * 110 / fov.sum())
    assert inside["skeleton_length_mm"] == pytest.approx(inside["skeleton_length_px"] * 0.01)
    assert inside["calibre_median_mm"] == pytest.approx(inside["calibre_median_px"] * 0.01)
    assert np.isnan(measure_vessels(mask).values["calibre_mean_mm"])


def test_mm_per_pixel_from_a_45_degree_field():
    # DRIVE: a 45-degree field about 538 px across -> 45 * 0.291 mm / 538 px = 0.0243 mm.
    assert mm_per_pixel_from_fov(538.0, 45.0) == pytest.approx(45 * MM_PER_DEGREE / 538.0)
    assert mm_per_pixel_from_fov(538.0, 45.0) == pytest.approx(0.0243, abs=2e-4)
    assert mm_per_pixel_from_fov(None, 45.0) is None


def test_empty_map_is_nan_not_an_error():
    values = measure_vessels(np.zeros((40, 40), bool)).values
    assert values["area_fraction"] == 0.0 and values["skeleton_length_px"] == 0.0
    assert np.isnan(values["tortuosity"]) and np.isnan(values["calibre_mean_px"])


@pytest.mark.slow
def test_measurements_of_predicted_maps_follow_the_manual_labels_on_drive(real_data_root):
    """The shipped DRIVE weights on the 20 test photographs against the first observer, inside
    the FOV masks (docs/prediction-experiments.md: area fraction r 0.43, tortuosity r 0.90 measured)."""
    from benchmarks.measure_agreement import agreement, drive_measurements
    from tests.helpers import ROOT

    found = drive_measurements(ROOT / "weights" / "sa_unetv2_drive.keras", real_data_root)
    table = agreement(found["predicted"], found["manual"])
    assert table["area_fraction"]["n"] == 20
    assert table["area_fraction"]["r"] > 0.25, table["area_fraction"]
    assert table["area_fraction"]["mad"] < 0.02, table["area_fraction"]
    assert table["tortuosity"]["r"] > 0.6, table["tortuosity"]
    assert table["fractal_dimension"]["mad"] < 0.05, table["fractal_dimension"]
