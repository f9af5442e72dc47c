"""Padding and cropping: shapes, zeros at bottom/right, exact inverse."""

import numpy as np
import pytest

from data.geometry import crop_to, pad_shape_for, pad_to, padded_shape


def test_padded_shape_next_multiple_of_8():
    assert padded_shape((584, 565)) == (584, 568)
    assert padded_shape((96, 96)) == (96, 96)
    assert padded_shape((1, 9)) == (8, 16)


def test_paper_sizes_for_drive_and_stare():
    assert pad_shape_for("drive", (584, 565)) == (592, 592)
    assert pad_shape_for("stare", (605, 700)) == (704, 704)
    assert pad_shape_for("folder", (960, 999)) == (960, 1000)


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 3), (2, 5, 7, 1)])
def test_pad_puts_zeros_bottom_right_and_crop_inverts(shape):
    a = np.random.default_rng(0).integers(1, 255, size=shape, dtype=np.uint8)
    p = pad_to(a, (8, 16))
    hw = p.shape[1:3] if a.ndim == 4 else p.shape[:2]
    assert hw == (8, 16)
    core = p[:, :5, :7] if a.ndim == 4 else p[:5, :7]
    np.testing.assert_array_equal(core, a)
    assert p.sum() == a.sum()  # everything else is zero
    np.testing.assert_array_equal(crop_to(p, (5, 7)), a)


def test_pad_to_smaller_size_is_an_error():
    with pytest.raises(ValueError):
        pad_to(np.zeros((10, 10)), (8, 16))


def test_real_round_trip_exact(real_data_root):
    from data import load_dataset

    ds = load_dataset({"name": "drive", "data_root": str(real_data_root)})
    s = ds.test[0]
    for a in (s.image, s.label, s.mask):
        p = pad_to(a, ds.pad_shape)
        assert p.shape[:2] == (592, 592)
        np.testing.assert_array_equal(crop_to(p, a.shape[:2]), a)
