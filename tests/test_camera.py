"""data/camera.py: the camera changes (robustness benchmark) and their random mix (train.camera_augment)."""

import numpy as np
import pytest

from data.camera import RANDOM_CHANGES, apply_change, parse_change, random_camera


def _image(seed=0, shape=(40, 50, 3)):
    return np.random.default_rng(seed).integers(30, 220, shape, dtype=np.uint8)


def test_changes_parse_and_apply():
    """Each change keeps shape and dtype; factor 1 and gamma 1 change nothing; darker is darker,
    blur smooths, noise is seeded; bad specs are refused with the reason."""
    image = _image()
    assert parse_change("none") == ("none", None) and parse_change(" jpeg:30") == ("jpeg", 30.0)
    for spec in ("brightness:1", "contrast:1", "color:1", "gamma:1"):
        assert np.array_equal(apply_change(image, *parse_change(spec)), image), spec
    for spec in ("brightness:0.6", "gamma:1.5", "contrast:0.6", "blur:1.5", "jpeg:30", "noise:8"):
        out = apply_change(image, *parse_change(spec))
        assert out.shape == image.shape and out.dtype == np.uint8, spec
        assert not np.array_equal(out, image), spec
    assert apply_change(image, "brightness", 0.6).mean() < 0.7 * image.mean()
    assert apply_change(image, "gamma", 1.5).mean() < image.mean()
    assert apply_change(image, "blur", 1.5).std() < 0.6 * image.std()
    noisy = apply_change(image, "noise", 8, rng=3)
    assert np.array_equal(noisy, apply_change(image, "noise", 8, rng=3))
    assert not np.array_equal(noisy, apply_change(image, "noise", 8, rng=4))
    assert 6 < np.std(noisy.astype(float) - image) < 10
    for spec, reason in (("sepia:2", "unknown change 'sepia'"), ("blur", "needs a number"),
                         ("gamma:0", "positive"), ("jpeg:100", "1-95")):  # fmt: skip
        with pytest.raises(ValueError, match=reason):
            parse_change(spec)


def test_random_camera_is_seeded_and_mixes_every_change():
    """The same generator state gives the same image and changes; the generator moves by the same
    draws whatever is applied; over many draws every change is made at about its probability,
    with values inside its range, and sometimes nothing is changed."""
    image = _image(1)
    a, made_a = random_camera(image, np.random.default_rng([7, 1]))
    b, made_b = random_camera(image, np.random.default_rng([7, 1]))
    assert np.array_equal(a, b) and made_a == made_b
    assert a.shape == image.shape and a.dtype == np.uint8
    small = _image(2, (8, 8, 3))
    first, second = np.random.default_rng(5), np.random.default_rng(5)
    random_camera(image, first)
    random_camera(small, second)
    assert first.random() == second.random()  # the state after does not depend on the image
    counts = dict.fromkeys([name for name, _, _ in RANDOM_CHANGES], 0)
    untouched = 0
    rng = np.random.default_rng(0)
    for _ in range(400):
        out, made = random_camera(small, rng)
        untouched += not made
        for name, value in made:
            counts[name] += 1
            low, high = dict((n, r) for n, _, r in RANDOM_CHANGES)[name]
            assert low <= value <= high
        if not made:
            assert np.array_equal(out, small)
    for name, p, _ in RANDOM_CHANGES:
        assert abs(counts[name] / 400 - p) < 0.1, (name, counts[name])
    assert untouched > 0
