"""Generated FOV masks (data/fov.py) and their diameters on hard photographs.

The hard cases are `benchmarks.fov.hard_case` (the same as the benchmark's
table in docs/prediction-experiments.md): a synthetic fundus photograph (data/synthetic.py)
or DRIVE's 21_training with its official mask, made 4000 px wide, stretched
4:3, dark, clipped by a 16:9 frame, cropped inside the field of view (no
border), put on a grey or white surround, or given JPEG noise in the border.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.fov import HARD_CASES, hard_case, mask_iou
from data.fov import border_colour, generate_fov_mask
from data.scale import fov_diameter, image_factor
from data.synthetic import synthetic_sample


def check_hard_case(case, image, mask):
    """The generated mask within IoU 0.97 of the true one and the diameter within 2 % of the
    true one, or, with no border, the whole frame and no diameter."""
    hard, truth, diameter = hard_case(case, image, mask)
    generated = generate_fov_mask(hard)
    estimate = fov_diameter(generated)
    assert mask_iou(generated, truth) >= 0.97, case
    if diameter is None:
        assert generated.all() and estimate is None
    else:
        assert estimate == pytest.approx(diameter, rel=0.02), case


@pytest.mark.parametrize("case", HARD_CASES)
def test_hard_case_of_a_synthetic_photograph(case):
    sample = synthetic_sample(256, 0, 0, 1)
    check_hard_case(case, sample.image, sample.mask)


@pytest.mark.parametrize("case", HARD_CASES)
def test_hard_case_of_a_drive_photograph(case, real_data_root):
    """DRIVE's 21_training (565 x 584, its own mask as the truth)."""
    from data.io import read_image, read_mask

    folder = real_data_root / "DRIVE" / "training"
    if not folder.is_dir():
        pytest.skip(f"real DRIVE data not found: expected {folder}")
    image = read_image(folder / "images" / "21_training.tif")
    check_hard_case(case, image, read_mask(folder / "mask" / "21_training_mask.gif"))


def test_border_colour_by_hand():
    """The commonest colour along the border: a grey on a bin's edge (127 and 128) is one colour,
    and it wins over retina-coloured pixels that cover less of the border."""
    image = np.zeros((20, 30, 3), np.uint8)
    image[:] = (127, 127, 127)
    image[::2, ::2] = (128, 128, 128)
    image[:, 10:20] = (180, 90, 40)  # retina at the top and bottom: 20 of 100 border pixels
    colour = border_colour(image)
    assert colour.shape == (3,) and np.all(np.abs(colour - 127.5) <= 0.5)
    image[:, :] = (180, 90, 40)
    np.testing.assert_array_equal(border_colour(image), [180, 90, 40])


def test_retina_filling_the_frame_is_not_found(capsys):
    """No surround (a border of retina's colour): the whole image is the field of view, no
    diameter, and --scale auto says so and keeps factor 1."""
    sample = synthetic_sample(256, 0, 0, 1)
    inside = sample.image[64:192, 64:192]
    mask = generate_fov_mask(inside)
    assert mask.all() and fov_diameter(mask) is None
    assert image_factor("auto", mask, 538.29, "inside.png") == 1.0
    assert "no field of view found in inside.png" in capsys.readouterr().err


def test_small_field_of_view_in_a_large_frame():
    """A field of view a twentieth of the frame (a phone's adapter), dark and on a noisy black
    surround: its 90th percentile is surround, so the retina's level comes from above it."""
    sample = synthetic_sample(128, 0, 0, 1)
    rng = np.random.default_rng(0)
    frame = np.clip(rng.normal(3, 2, (480, 640, 3)), 0, 255)
    frame[176:304, 256:384] = np.where(sample.mask[..., None], sample.image * 0.5, 3)
    truth = np.zeros((480, 640), bool)
    truth[176:304, 256:384] = sample.mask
    generated = generate_fov_mask(frame.astype(np.uint8))
    assert truth.mean() < 0.05 and mask_iou(generated, truth) > 0.97
    assert fov_diameter(generated) == pytest.approx(fov_diameter(truth), rel=0.02)
