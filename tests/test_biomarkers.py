"""biomarkers.py on drawn vessels whose CRAE, CRVE and AVR follow by hand from Knudtson's formulas.

The drawing: a 260 x 260 picture, the disc centred at (130, 130) and 60 px across, so zone B
holds the pixels 60 to 90 px from the centre. Bars of odd width w measure exactly w (calibre
2 (d - 0.5) at their midline) and run from 35 to 110 px from the centre, straight through the ring.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from biomarkers import (
    calibre_biomarkers,
    disc_from_mask,
    knudtson_equivalent,
    zone_b,
    zone_b_radii,
)
from data.av import ARTERY, CROSSING, UNCERTAIN, VEIN

SIZE = 260
CENTRE = (130.0, 130.0)  # x, y
DISC = 60.0
OFFSETS = (-24, 0, 24)  # three bars per direction, side by side


def blank():
    return np.zeros((SIZE, SIZE), np.uint8)


def bar(classes, direction, offset, width, kind):
    """A straight bar `width` px wide from 35 to 110 px from the centre, `offset` px to the side."""
    c, half = 130, width // 2
    across = slice(c + offset - half, c + offset + half + 1)
    if direction == "up":
        classes[c - 110 : c - 35, across] = kind
    elif direction == "down":
        classes[c + 35 : c + 110, across] = kind
    elif direction == "left":
        classes[across, c - 110 : c - 35] = kind
    else:
        classes[across, c + 35 : c + 110] = kind


def six(classes, directions, widths, kind):
    slots = [(d, o) for d in directions for o in OFFSETS]
    for (direction, offset), width in zip(slots, widths, strict=False):
        bar(classes, direction, offset, width, kind)


def biomarkers_of(classes, **kwargs):
    return calibre_biomarkers(classes > 0, classes, CENTRE, DISC, **kwargs)


# Six arterioles 3, 5, 7, 9, 11, 13 px, by hand: round 1 pairs the widest with the narrowest.
A1 = 0.88 * math.sqrt(3**2 + 13**2)  # 11.741
A2 = 0.88 * math.sqrt(5**2 + 11**2)  # 10.633
A3 = 0.88 * math.sqrt(7**2 + 9**2)  # 10.034
# Round 2 on the sorted A3 < A2 < A1: A3 with A1, the middle A2 carried; round 3 joins the two.
CRAE_3_TO_13 = 0.88 * math.sqrt((0.88 * math.sqrt(A3**2 + A1**2)) ** 2 + A2**2)  # 15.185
# Six venules all 9 px: round 1 gives three of V1, round 2 pairs two and carries one.
V1 = 0.95 * math.sqrt(2 * 9**2)
CRVE_ALL_9 = 0.95 * math.sqrt((0.95 * math.sqrt(2 * V1**2)) ** 2 + V1**2)  # 16.26


def test_six_arteries_and_six_veins_give_knudtson_by_hand():
    classes = blank()
    six(classes, ("up", "right"), (3, 5, 7, 9, 11, 13), ARTERY)
    six(classes, ("down", "left"), (9,) * 6, VEIN)
    result = biomarkers_of(classes, um_per_pixel=12.5)
    assert result.artery_widths_px == (13, 11, 9, 7, 5, 3)
    assert result.vein_widths_px == (9,) * 6
    assert result.n_arteries == 6 and result.n_veins == 6 and result.flags == ()
    assert CRAE_3_TO_13 == pytest.approx(15.185, abs=1e-3)
    assert result.crae_px == pytest.approx(CRAE_3_TO_13, rel=1e-9)
    assert result.crve_px == pytest.approx(CRVE_ALL_9, rel=1e-9)
    assert result.avr == pytest.approx(CRAE_3_TO_13 / CRVE_ALL_9, rel=1e-9)
    assert result.crae_um == pytest.approx(12.5 * CRAE_3_TO_13, rel=1e-9)
    assert result.crve_um == pytest.approx(12.5 * CRVE_ALL_9, rel=1e-9)


def test_micrometres_are_nan_without_a_pixel_size():
    classes = blank()
    six(classes, ("up", "right"), (5,) * 6, ARTERY)
    result = biomarkers_of(classes)
    assert np.isfinite(result.crae_px) and np.isnan(result.crae_um)
    assert np.isnan(result.crve_px) and np.isnan(result.avr) and result.n_veins == 0


def test_odd_count_carries_the_middle_value():
    # 2, 3, 10: 2 joins 10, the middle 3 waits for the next round.
    expected = 0.88 * math.hypot(0.88 * math.hypot(2, 10), 3)
    assert knudtson_equivalent([10, 2, 3], 0.88) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(8.3270, abs=1e-4)
    # 1..5: (1, 5) and (2, 4) joined, 3 carried; then sorted 3 < 0.88 sqrt 20 < 0.88 sqrt 26.
    round_1 = (0.88 * math.sqrt(26), 0.88 * math.sqrt(20), 3.0)
    round_2 = (0.88 * math.hypot(3.0, round_1[0]), round_1[1])
    assert knudtson_equivalent([1, 2, 3, 4, 5], 0.88) == pytest.approx(
        0.88 * math.hypot(*round_2), rel=1e-12
    )


def test_only_the_six_widest_count_and_one_width_is_its_own_equivalent():
    assert knudtson_equivalent([1, 3, 5, 7, 9, 11, 13], 0.88) == pytest.approx(CRAE_3_TO_13)
    assert knudtson_equivalent([4.5], 0.95) == 4.5
    assert math.isnan(knudtson_equivalent([], 0.95))


def test_fewer_than_six_arteries_are_used_and_flagged():
    classes = blank()
    six(classes, ("up",), (3, 5, 7), ARTERY)
    bar(classes, "right", 0, 9, ARTERY)
    six(classes, ("down", "left"), (9,) * 6, VEIN)
    result = biomarkers_of(classes)
    assert result.flags == ("fewer_than_6_arteries",)
    assert result.n_arteries == 4 and result.artery_widths_px == (9, 7, 5, 3)
    expected = 0.88 * math.hypot(0.88 * math.hypot(3, 9), 0.88 * math.hypot(5, 7))
    assert result.crae_px == pytest.approx(expected, rel=1e-9)


def test_vessels_of_unknown_type_are_left_out():
    classes = blank()
    six(classes, ("up", "right"), (5,) * 6, ARTERY)
    bar(classes, "down", 0, 13, UNCERTAIN)
    result = biomarkers_of(classes)
    assert result.n_arteries == 6 and result.n_veins == 0
    assert result.artery_widths_px == (5,) * 6


def y_branch(junction_from_centre):
    """An artery 9 px wide going up from the disc that splits into two 5 px daughters
    `junction_from_centre` px from the centre."""
    image = Image.new("L", (SIZE, SIZE), 0)
    draw = ImageDraw.Draw(image)
    top = 130 - junction_from_centre
    draw.rectangle([126, top, 134, 130 - 35], fill=ARTERY)
    draw.line([(130, top), (130 - 60, top - 60)], fill=ARTERY, width=5)
    draw.line([(130, top), (130 + 60, top - 60)], fill=ARTERY, width=5)
    return np.asarray(image).copy()


def test_a_vessel_branching_inside_the_ring_counts_once_by_its_trunk():
    result = biomarkers_of(y_branch(75))  # the junction in the middle of the ring (60-90 px)
    assert result.n_arteries == 1
    assert result.artery_widths_px == (9,)
    assert result.crae_px == 9 and "fewer_than_6_arteries" in result.flags


def test_branches_that_split_before_the_ring_count_twice():
    result = biomarkers_of(y_branch(45))  # the junction inside the inner edge
    assert result.n_arteries == 2
    assert all(3 <= w <= 6 for w in result.artery_widths_px)


def test_an_artery_crossing_a_vein_inside_the_ring_stays_one_of_each():
    classes = blank()
    bar(classes, "up", 0, 7, ARTERY)
    image = Image.new("L", (SIZE, SIZE), 0)
    ImageDraw.Draw(image).line([(100, 80), (180, 20)], fill=1, width=5)  # 58 to 121 px out
    vein = np.asarray(image) > 0
    classes[vein & (classes == ARTERY)] = CROSSING  # the crossing, about 72 px from the centre
    classes[vein & (classes == 0)] = VEIN
    result = biomarkers_of(classes)
    assert result.n_arteries == 1 and result.n_veins == 1
    assert result.artery_widths_px == (7,)
    assert 4 <= result.vein_widths_px[0] <= 6


def test_disc_outside_the_picture_is_flagged_and_gives_nan():
    classes = blank()
    six(classes, ("up", "right"), (5,) * 6, ARTERY)
    six(classes, ("down", "left"), (7,) * 6, VEIN)
    outside = calibre_biomarkers(classes > 0, classes, (-200.0, 130.0), DISC)
    assert "disc_not_in_picture" in outside.flags
    assert np.isnan(outside.crae_px) and np.isnan(outside.avr) and outside.n_arteries == 0
    # The centre inside the FOV, but only about a quarter of the ring: flagged too.
    fov = np.zeros((SIZE, SIZE), bool)
    fov[:135, :135] = True
    assert "disc_not_in_picture" in biomarkers_of(classes, fov=fov).flags
    # Centre outside the FOV.
    fov = np.ones((SIZE, SIZE), bool)
    fov[100:160, 100:160] = False
    assert "disc_not_in_picture" in biomarkers_of(classes, fov=fov).flags


def test_zone_b_runs_from_one_to_one_and_a_half_disc_diameters():
    assert zone_b_radii(80.0) == (80.0, 120.0)
    ring = zone_b((300, 300), (150.0, 150.0), 80.0)
    row = ring[150]
    assert not row[150 + 79] and row[150 + 80] and row[150 + 120] and not row[150 + 121]
    assert not row[150] and row[150 - 100]
    # The ring's area is pi (120^2 - 80^2) = 25,133 px, to within its rim.
    assert ring.sum() == pytest.approx(math.pi * (120**2 - 80**2), rel=0.01)


def test_disc_from_mask_gives_the_centroid_and_equal_area_diameter():
    rows, cols = np.indices((200, 300))
    disc = (rows - 80) ** 2 + (cols - 190) ** 2 <= 30**2
    (x, y), diameter = disc_from_mask(disc)
    assert (x, y) == (190.0, 80.0)
    assert diameter == pytest.approx(60.0, abs=0.2)
    with pytest.raises(ValueError, match="no disc pixels"):
        disc_from_mask(np.zeros((5, 5), bool))


@pytest.mark.realdata
def test_zone_b_matches_the_rite_rings(real_data_root):
    """The RITE test rings (inner radius about 80 px, outer about 118) are our zone B for a disc
    79 px across; centred on the DISC masks' centroids (which lie up to 9 px off the rings'
    centres) the overlap is 0.77-0.96."""
    rings_folder = real_data_root / "RITE" / "test" / "zone_b"
    discs_folder = real_data_root / "DISC" / "DRIVE"
    if not rings_folder.is_dir() or not discs_folder.is_dir():
        pytest.skip(f"RITE zone-B rings or DISC masks not found in {real_data_root}")
    overlaps = []
    for n in range(1, 21):
        ring = np.asarray(Image.open(rings_folder / f"{n:02d}_test_B.png"))[..., 0] > 127
        disc = np.asarray(Image.open(discs_folder / f"{n:02d}_test_gt.tif"))[..., 0] > 127
        centre, _ = disc_from_mask(disc)
        ours = zone_b(ring.shape, centre, 79.0)
        overlaps.append((ours & ring).sum() / (ours | ring).sum())
    assert min(overlaps) > 0.75
    assert np.mean(overlaps) == pytest.approx(0.883, abs=0.005)
