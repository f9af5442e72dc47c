"""The built-in synthetic dataset: deterministic, binary, vessels darker, label inside FOV."""

import numpy as np

from data import load_dataset
from data.synthetic import make_synthetic


def test_shapes_types_and_determinism():
    a_train, a_test = make_synthetic(3, 2, 64, seed=7)
    b_train, _ = make_synthetic(3, 2, 64, seed=7)
    c_train, _ = make_synthetic(3, 2, 64, seed=8)
    assert len(a_train) == 3 and len(a_test) == 2
    for a, b, c in zip(a_train, b_train, c_train, strict=True):
        assert a.image.shape == (64, 64, 3) and a.image.dtype == np.uint8
        assert a.label.dtype == np.uint8 and set(np.unique(a.label)) == {0, 1}
        assert a.mask.dtype == bool
        assert a.image.tobytes() == b.image.tobytes() and a.label.tobytes() == b.label.tobytes()
        assert a.image.tobytes() != c.image.tobytes()
    assert {s.source for s in a_train}.isdisjoint({s.source for s in a_test})


def test_vessels_are_darker_in_green_and_inside_fov():
    train, _ = make_synthetic(6, 0, 96, seed=1)
    for s in train:
        assert not s.label[~s.mask].any()
        assert s.image[~s.mask].max() == 0
        fraction = s.label.mean()
        assert 0.01 < fraction < 0.25
        green = s.image[:, :, 1].astype(float)
        background = s.mask & (s.label == 0)
        assert green[s.label == 1].mean() < green[background].mean() - 15


def test_load_dataset_synthetic_defaults():
    ds = load_dataset({"name": "synthetic"})
    assert (len(ds.train), len(ds.test), ds.pad_shape, ds.image_shape) == (
        12,
        4,
        (96, 96),
        (96, 96),
    )
