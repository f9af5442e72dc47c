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


def test_vessel_set_is_unchanged_bit_for_bit():
    """The default set's pixels, pinned: the A/V option must not move a single vessel image."""
    import hashlib

    train, test = make_synthetic()
    digest = hashlib.sha256()
    for s in train + test:
        digest.update(s.image.tobytes())
        digest.update(s.label.tobytes())
    assert digest.hexdigest() == "b67d145c8520f2c9a9bb8c67563351bad810cada42b55efded33aaffa8159953"


def test_synthetic_av_labels_the_same_vessels_as_arteries_and_veins():
    from data.av import ARTERY, VEIN

    vessel_train, _ = make_synthetic(4, 0, 96, seed=3)
    av_train, _ = make_synthetic(4, 0, 96, seed=3, av=True)
    for plain, av in zip(vessel_train, av_train, strict=True):
        assert av.name.startswith("synthetic_av_train_") and av.source.startswith("synthetic_av/")
        assert set(np.unique(av.label)) == {0, ARTERY, VEIN}
        np.testing.assert_array_equal(av.label != 0, plain.label == 1)  # the same vessel pixels
        # Only arteries are drawn differently: lighter, so the images differ nowhere else.
        changed = np.any(av.image != plain.image, axis=-1)
        assert changed.any() and (av.label[changed] == ARTERY).all()
        lighter = av.image[:, :, 1].astype(float) - plain.image[:, :, 1]
        assert (lighter[av.label == ARTERY] >= 0).all() and lighter[av.label == ARTERY].mean() > 5


def test_load_dataset_synthetic_av():
    ds = load_dataset({"name": "synthetic_av", "n_train": 3, "n_test": 2, "size": 64})
    assert (len(ds.train), len(ds.test), ds.pad_shape) == (3, 2, (64, 64))
    assert max(s.label.max() for s in ds.train) == 2
