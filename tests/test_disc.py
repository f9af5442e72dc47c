"""The optic disc (data/disc.py): its label readers, `locate_disc` on a drawn photograph and on
real ones, and the statistics of benchmarks/disc.py."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.disc import disc_error, error_summary, without_disc
from data.disc import (
    LOW_CONFIDENCE,
    DiscLabel,
    hrf_stem,
    locate_disc,
    mask_disc,
    read_drive_discs,
    read_hrf_discs,
)

HEADER = "image,Pap. Center x,Pap. Center y,vessel orig. x,vessel orig. y,disk diameter\n"


def drawn_photograph(size=(600, 640), disc=(170.0, 280.0), radius=40.0, vessel_count=6):
    """A fundus photograph drawn by hand: uint8 (H, W, 3) with a dark surround, a circular FOV
    (centre (320, 300), radius 280) of orange retina lit brighter towards the middle, a pale
    yellow disc of `radius` px at `disc` (x, y), and `vessel_count` dark vessels leaving it; plus its FOV
    bool (H, W) and its vessel mask float32 (H, W)."""
    height, width = size
    rows, cols = np.mgrid[:height, :width].astype(np.float32)
    fov = np.hypot(cols - 320, rows - 300) <= 280
    light = 1.0 - 0.3 * (np.hypot(cols - 320, rows - 300) / 280) ** 2
    image = np.stack([170 * light, 80 * light, 30 * light], axis=-1)
    on_disc = np.hypot(cols - disc[0], rows - disc[1]) <= radius
    image[on_disc] = (240, 200, 120)
    vessels = np.zeros(size, np.float32)
    for angle in np.linspace(
        -1.2, 1.2, vessel_count
    ):  # towards the macula (right), as in a left eye
        direction = np.array([np.cos(angle), np.sin(angle)])
        along = (cols - disc[0]) * direction[0] + (rows - disc[1]) * direction[1]
        across = -(cols - disc[0]) * direction[1] + (rows - disc[1]) * direction[0]
        vessels[(np.abs(across) <= 3) & (along > -radius * 0.5) & (along < 260)] = 1.0
    image = image * (1 - 0.5 * vessels[..., None])
    noise = np.random.default_rng(0).normal(0, 3, image.shape)
    image = np.where(fov[..., None], image + noise, 5)
    return np.clip(image, 0, 255).astype(np.uint8), fov, vessels * fov


# ----------------------------------------------------------------------------- labels


def test_mask_disc_centroid_and_equal_area_diameter():
    """A plus of 5 pixels about (x 2, y 1): centroid (2, 1), diameter 2 sqrt(5 / pi) = 2.523."""
    mask = np.zeros((3, 5), bool)
    mask[1, 1:4] = True
    mask[0, 2] = mask[2, 2] = True
    disc = mask_disc(mask)
    assert disc.centre_xy == (2.0, 1.0)
    assert disc.diameter_px == pytest.approx(2.5231, abs=1e-4)
    assert disc.radius_px == pytest.approx(1.2616, abs=1e-4) and not disc.suspect


def test_hrf_stem_has_one_spelling():
    assert [hrf_stem(s) for s in ("01dr", "01_dr", "7g", "15H")] == ["01_dr", "01_dr", "07_g",
                                                                    "15_h"]  # fmt: skip
    with pytest.raises(ValueError, match="not an HRF photograph stem"):
        hrf_stem("01_x")


def test_rows_whose_vessel_origin_is_off_their_disc_are_suspect(tmp_path):
    """Expert B's spelling is normalised; a vessel origin 185 px from the centre of a disc of
    radius 184.5 is off it (suspect), one 184 px away is on it."""
    folder = tmp_path / "DISC" / "HRF"
    folder.mkdir(parents=True)
    (folder / "optic_disk_centers_expert_B.csv").write_text(
        HEADER + "01dr,845,1186,845,1370,369\n02dr,2759,965,2759,1150,369\n", encoding="utf-8"
    )
    labels = read_hrf_discs(tmp_path, "B")
    assert list(labels) == ["01_dr", "02_dr"]
    assert labels["01_dr"] == DiscLabel((845.0, 1186.0), 369.0, False)
    assert labels["02_dr"].suspect


def test_a_disc_folder_without_labels_is_a_user_error(tmp_path):
    from utils.errors import UserError

    with pytest.raises(UserError, match="holds no optic-disc labels"):
        read_drive_discs(tmp_path)


def test_drive_disc_masks(real_data_root):
    """40 masks named as data.readers names DRIVE's photographs; 01_test's centroid within 9 px
    of the centre of its zone-B ring (RITE, an independent group: the centroid of the ring's hole)."""
    from scipy import ndimage

    from data.io import read_image

    if not (real_data_root / "DISC" / "DRIVE").is_dir():
        pytest.skip(f"optic-disc labels not found: expected {real_data_root / 'DISC'}")
    labels = read_drive_discs(real_data_root)
    expected = [f"{i:02d}_test" for i in range(1, 21)] + [f"{i}_training" for i in range(21, 41)]
    assert sorted(labels) == expected
    diameters = [label.diameter_px for label in labels.values()]
    assert 74 < min(diameters) and max(diameters) < 118  # the README: 75-117 px
    ring = read_image(real_data_root / "RITE" / "test" / "zone_b" / "01_test_B.png")[..., 0] > 127
    hole = ndimage.binary_fill_holes(ring) & ~ring
    rows, cols = np.nonzero(hole)
    x, y = labels["01_test"].centre_xy
    assert np.hypot(cols.mean() - x, rows.mean() - y) < 9


def test_hrf_expert_tables(real_data_root):
    """45 photographs each, under the stems of data/splits/hrf.json; only expert A's 02_dr and
    expert B's 02_g are suspect (the README's two mistyped centres)."""
    from data.splits import fixed_split

    if not (real_data_root / "DISC" / "HRF").is_dir():
        pytest.skip(f"optic-disc labels not found: expected {real_data_root / 'DISC'}")
    a, b = read_hrf_discs(real_data_root, "A"), read_hrf_discs(real_data_root, "B")
    train, test = fixed_split("hrf")
    assert sorted(a) == sorted(b) == sorted(train + test)
    assert [k for k, v in a.items() if v.suspect] == ["02_dr"]
    assert [k for k, v in b.items() if v.suspect] == ["02_g"]
    assert a["01_dr"] == DiscLabel((860.0, 1180.0), 385.0, False)
    assert b["01_dr"] == DiscLabel((845.0, 1186.0), 389.0, False)


# ----------------------------------------------------------------------------- locate_disc


@pytest.mark.parametrize(
    "disc, radius, given_vessels",
    [((170.0, 280.0), 40.0, False), ((170.0, 280.0), 40.0, True), ((450.0, 200.0), 25.0, False)],
)
def test_locate_disc_on_a_drawn_photograph(disc, radius, given_vessels):
    """The disc's centre within 3 px, its radius within 10 %, with or without the vessel map."""
    image, fov, vessels = drawn_photograph(disc=disc, radius=radius)
    found = locate_disc(image, fov, vessels if given_vessels else None)
    assert np.hypot(found.centre_xy[0] - disc[0], found.centre_xy[1] - disc[1]) <= 3
    assert found.radius_px == pytest.approx(radius, rel=0.1)
    assert found.confidence > LOW_CONFIDENCE
    assert ("the given map" in found.method) == given_vessels


def test_locate_disc_at_four_times_the_size():
    """The same drawn photograph 4 times as large (2400 x 2560): the same disc, 4 times as far
    out, to within 4 px (one px of the working copy is 5 px here)."""
    image, fov, _ = drawn_photograph()
    large = np.repeat(np.repeat(image, 4, axis=0), 4, axis=1)
    found = locate_disc(large, np.repeat(np.repeat(fov, 4, axis=0), 4, axis=1))
    assert np.hypot(found.centre_xy[0] - 681.5, found.centre_xy[1] - 1121.5) <= 12
    assert found.radius_px == pytest.approx(160, rel=0.1)


def test_a_photograph_without_a_disc_has_a_low_confidence():
    """The drawn retina without disc or vessels: somewhere is brightest, by no margin."""
    image, fov, _ = drawn_photograph(radius=0.0, vessel_count=0)
    assert locate_disc(image, fov).confidence < LOW_CONFIDENCE


def test_without_disc_blacks_out_two_radii():
    """The drawn disc (radius 40 at (170, 280)) and all within 80 px of it black and outside the
    field of view; a pixel 81 px away is kept. Located, it comes with a low confidence."""
    image, fov, _ = drawn_photograph(vessel_count=0)
    blanked, mask = without_disc(image, fov, DiscLabel((170.0, 280.0), 80.0))
    assert not mask[280, 90:251].any() and mask[280, 251] and mask[280, 89]
    assert (blanked[280, 90:251] == 0).all() and (blanked[280, 251] == image[280, 251]).all()
    assert fov[280, 90:251].all()  # the input is left as it was
    assert locate_disc(blanked, mask).confidence < LOW_CONFIDENCE


def test_locate_disc_rejects_a_vessel_map_of_another_size():
    image, fov, vessels = drawn_photograph()
    with pytest.raises(ValueError, match="vessel map must be"):
        locate_disc(image, fov, vessels[:-1])


def test_locate_disc_finds_01_test(real_data_root):
    """DRIVE's 01_test (no vessel map given): within half a disc radius of its mask's centroid."""
    from data.io import read_image, read_mask

    if not (real_data_root / "DISC" / "DRIVE").is_dir():
        pytest.skip(f"optic-disc labels not found: expected {real_data_root / 'DISC'}")
    folder = real_data_root / "DRIVE" / "test"
    label = read_drive_discs(real_data_root)["01_test"]
    found = locate_disc(
        read_image(folder / "images" / "01_test.tif"),
        read_mask(folder / "mask" / "01_test_mask.gif"),
    )
    error = disc_error(found.centre_xy, found.radius_px, label)
    assert error["centre_radii"] < 0.5
    assert abs(error["radius_rel"]) < 0.25


# ----------------------------------------------------------------------------- benchmark statistics


def test_disc_error_by_hand():
    """Found at (13, 24) with radius 11 against (10, 20), radius 10: 5 px, 0.5 radii, +10 %."""
    error = disc_error((13.0, 24.0), 11.0, DiscLabel((10.0, 20.0), 20.0))
    assert error == pytest.approx({"centre_px": 5.0, "centre_radii": 0.5, "radius_rel": 0.1})


def test_error_summary_by_hand():
    errors = [
        {"centre_px": px, "centre_radii": px / 10, "radius_rel": rel, "confidence": conf,
         "seconds": 0.1}
        for px, rel, conf in ((1, 0.1, 3.0), (4, -0.2, 2.0), (6, 0.0, 0.5), (15, 0.3, 2.5))
    ]  # fmt: skip
    summary = error_summary(errors)
    assert summary["n"] == 4
    assert summary["centre_px_median"] == 5.0 and summary["centre_px_mean"] == 6.5
    assert summary["centre_radii_max"] == 1.5
    assert summary["centre_px_p90"] == pytest.approx(12.3)  # 6 + 0.7 * (15 - 6)
    assert summary["within_half"] == 0.5 and summary["within_one"] == 0.75
    assert summary["radius_abs_median"] == pytest.approx(0.15)
    assert summary["radius_signed_median"] == pytest.approx(0.05)
    assert (summary["off"], summary["low_confidence"], summary["off_confident"]) == (1, 1, 1)
