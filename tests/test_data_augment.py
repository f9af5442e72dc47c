"""The 13-fold augmentation: order, determinism per seed, binary labels after rotation."""

import numpy as np
import pytest

from data.augment import N_AUGMENTED, augment_sample
from data.synthetic import make_synthetic


@pytest.fixture(scope="module")
def sample():
    return make_synthetic(1, 0, 96, seed=3)[0][0]


def test_thirteen_outputs_in_documented_order(sample):
    x, y = augment_sample(sample.image, sample.label, seed=42, index=0)
    assert x.shape == (N_AUGMENTED, 96, 96, 3) and y.shape == (N_AUGMENTED, 96, 96)
    assert x.dtype == np.uint8 and y.dtype == np.uint8
    np.testing.assert_array_equal(x[0], sample.image)
    np.testing.assert_array_equal(x[10], sample.image[:, ::-1])
    np.testing.assert_array_equal(x[11], sample.image[::-1])
    np.testing.assert_array_equal(y[12], sample.label[::-1, ::-1])
    for k in range(4, 10):  # colour jitter and noise leave the label alone
        np.testing.assert_array_equal(y[k], sample.label)
    for k in range(7, 10):  # noise of mean 0.2, sigma 0.3 moves pixels by at most a few levels
        assert np.abs(x[k].astype(int) - sample.image).max() <= 3
    for k in range(1, 4):
        assert not np.array_equal(y[k], sample.label)


def test_deterministic_per_seed_and_index(sample):
    a = augment_sample(sample.image, sample.label, 42, 0)
    b = augment_sample(sample.image, sample.label, 42, 0)
    c = augment_sample(sample.image, sample.label, 43, 0)
    d = augment_sample(sample.image, sample.label, 42, 1)
    assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
    assert a[0].tobytes() != c[0].tobytes()
    assert a[0].tobytes() != d[0].tobytes()


def test_labels_stay_binary_after_rotation(sample):
    _, y = augment_sample(sample.image, sample.label * 1, 5, 0)
    assert set(np.unique(y)) <= {0, 1}


def test_real_drive_augmentation_binary_and_deterministic(real_data_root):
    from data import load_dataset

    s = load_dataset({"name": "drive", "data_root": str(real_data_root)}).train[0]
    x1, y1 = augment_sample(s.image, s.label, 42, 0)
    x2, y2 = augment_sample(s.image, s.label, 42, 0)
    assert x1.tobytes() == x2.tobytes() and y1.tobytes() == y2.tobytes()
    assert set(np.unique(y1)) == {0, 1}
    # Rotation keeps roughly the vessel area (the FOV fits inside the rotated frame).
    for k in range(1, 4):
        assert abs(y1[k].mean() - s.label.mean()) < 0.01


def test_artery_vein_class_maps_keep_their_classes(sample):
    """Rotations take labels by nearest neighbour, so a class map (data.av) keeps its values; its
    vessel pixels are exactly the binary label's augmented, and the images are the same."""
    rng = np.random.default_rng(1)
    classes = np.where(sample.label > 0, rng.integers(1, 5, size=sample.label.shape), 0)
    classes = classes.astype(np.uint8)
    x_classes, y_classes = augment_sample(sample.image, classes, 42, 0)
    x_vessels, y_vessels = augment_sample(sample.image, sample.label, 42, 0)
    np.testing.assert_array_equal(x_classes, x_vessels)
    np.testing.assert_array_equal(y_classes != 0, y_vessels == 1)
    assert set(np.unique(y_classes)) == {0, 1, 2, 3, 4}
    for k in range(1, 4):  # each class is where the same rotation puts that class alone
        for value in (1, 4):
            _, alone = augment_sample(sample.image, (classes == value).astype(np.uint8), 42, 0)
            np.testing.assert_array_equal(y_classes[k] == value, alone[k] == 1)
