"""data/camera.py: the camera changes (robustness benchmark) and their random mix (train.camera_augment)."""

import hashlib

import numpy as np
import pytest

from data.camera import (
    CAMERA_MIXES,
    CLINIC_CHANGES,
    RANDOM_CHANGES,
    apply_change,
    parse_change,
    random_camera,
)


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


def test_vignette_darkens_the_rim_more_than_the_centre():
    """Gain 1 - S r^2 on a flat grey: the centre kept, the corners at 1 - S, monotone outwards along
    a row, the same whatever the seed; strength 0 changes nothing."""
    grey = np.full((41, 61, 3), 200, np.uint8)
    out = apply_change(grey, *parse_change("vignette:0.5")).astype(int)
    assert out.shape == grey.shape and apply_change(grey, "vignette", 0.5).dtype == np.uint8
    assert (out[20, 30] == 200).all()
    for corner in (out[0, 0], out[0, -1], out[-1, 0], out[-1, -1]):
        assert (corner == 100).all()  # 200 * (1 - 0.5)
    row = out[20, 30:, 0]
    assert (np.diff(row) <= 0).all() and row[-1] < row[0]
    assert np.array_equal(out, apply_change(grey, "vignette", 0.5, rng=9))
    assert np.array_equal(apply_change(grey, "vignette", 0.0), grey)
    assert apply_change(grey, "vignette", 1.0)[0, 0].max() == 0


def test_illumination_makes_one_side_brighter_along_a_drawn_direction():
    """A planar gain 1 + S t on a flat grey: the brightest and darkest corners 2 S apart and
    opposite, the mean kept, the image a plane; the seed draws the direction."""
    grey = np.full((40, 60, 3), 100, np.uint8)
    out = apply_change(grey, *parse_change("illumination:0.3"), rng=4).astype(float)
    assert out.shape == grey.shape and (out[..., 0] == out[..., 2]).all()
    corners = np.array([out[0, 0, 0], out[0, -1, 0], out[-1, -1, 0], out[-1, 0, 0]])
    bright = int(np.argmax(corners))
    assert corners[bright] == pytest.approx(130, abs=1)
    assert corners[(bright + 2) % 4] == pytest.approx(70, abs=1)  # the opposite corner
    assert abs(out.mean() - 100) < 0.6
    rows, cols = np.mgrid[:40, :60]
    design = np.stack([np.ones(rows.size), rows.ravel(), cols.ravel()], axis=1)
    fit = np.linalg.lstsq(design, out[..., 0].ravel(), rcond=None)
    assert np.abs(design @ fit[0] - out[..., 0].ravel()).max() <= 0.6  # a plane, rounded
    again = apply_change(grey, "illumination", 0.3, rng=4)
    assert np.array_equal(out, again)
    directions = set()
    for seed in range(12):
        shifted = apply_change(grey, "illumination", 0.3, rng=seed).astype(float)[..., 0]
        directions.add((np.sign(shifted[:, -1].mean() - shifted[:, 0].mean()),
                        np.sign(shifted[-1].mean() - shifted[0].mean())))  # fmt: skip
    assert len(directions) == 4  # brighter right or left, below or above
    assert np.array_equal(apply_change(grey, "illumination", 0.0, rng=4), grey)


def test_white_balance_changes_the_channel_ratios_not_the_grey_luma():
    """Per-channel gains, the same at every pixel: the red/blue ratio moves either way (warmer or
    cooler) by up to e^(2 S), green/red by up to e^(1.5 S), a grey's luma kept; seeded; strength
    0 changes nothing."""
    image = _image(3)
    grey = np.full((10, 12, 3), 120, np.uint8)
    warmer = cooler = 0
    for seed in range(16):
        out = apply_change(image, *parse_change("white_balance:0.3"), rng=seed)
        assert out.shape == image.shape and out.dtype == np.uint8
        ratio = out.astype(float).sum((0, 1)) / image.astype(float).sum((0, 1))
        # red against blue: the temperature, up to e^(2 S); green against red: up to e^(1.5 S)
        assert 1.001 < max(ratio[0] / ratio[2], ratio[2] / ratio[0]) < np.exp(0.6) + 0.02
        assert max(ratio[1] / ratio[0], ratio[0] / ratio[1]) < np.exp(0.45) + 0.02
        warmer += ratio[0] > ratio[2]
        cooler += ratio[0] < ratio[2]
        flat = apply_change(grey, "white_balance", 0.3, rng=seed).astype(float)
        assert (flat == flat[0, 0]).all()  # one gain per channel
        assert abs(flat[0, 0] @ [0.299, 0.587, 0.114] - 120) < 1
    assert warmer >= 3 and cooler >= 3
    assert np.array_equal(apply_change(image, "white_balance", 0.3, rng=2),
                          apply_change(image, "white_balance", 0.3, rng=2))  # fmt: skip
    assert np.array_equal(apply_change(image, "white_balance", 0.0, rng=2), image)


def test_new_strengths_are_refused_outside_zero_to_one():
    assert parse_change("vignette:0.4") == ("vignette", 0.4)
    assert parse_change("white_balance:0") == ("white_balance", 0.0)
    for spec, reason in (("vignette:1.5", r"strength must be in \[0, 1\]"),
                         ("white_balance:2", r"strength must be in \[0, 1\]"),
                         ("illumination:-0.1", "positive"), ("illumination", "needs a number"),
                         ("vignette:nan", "positive")):  # fmt: skip
        with pytest.raises(ValueError, match=reason):
            parse_change(spec)


def test_the_basic_mix_draws_what_it_drew_before_the_clinic_mix():
    """Digests recorded with the code before `clinic` existed (commit f4898e7): the changes drawn,
    the generator's next number and the images made, so runs trained with camera_augment then
    are drawn again bit for bit. The images pass through Pillow (blur, JPEG): a Pillow whose
    codecs differ would change only the second digest."""
    assert CAMERA_MIXES["basic"] is RANDOM_CHANGES
    image = np.random.default_rng(0).integers(30, 220, (24, 32, 3), dtype=np.uint8)
    rng = np.random.default_rng([11, 3])
    draws, images = hashlib.sha256(), hashlib.sha256()
    for _ in range(40):
        out, made = random_camera(image, rng)
        draws.update(repr(made).encode())
        images.update(out.tobytes())
    draws.update(repr(rng.random()).encode())
    assert draws.hexdigest() == "6434bc75c4d3d845b1e0d34808e67419fa44fe4e70a31f417bd05723538530b9"
    assert images.hexdigest() == "55e23ba75f7940e71938de1b0390b0775814ed4613caff214a655d5929961fcc"


def test_the_clinic_mix_is_seeded_and_adds_light_and_white_balance():
    """`clinic` is RANDOM_CHANGES after vignette, illumination and white balance; the same seed
    gives the same image, the generator moves by the same draws whatever the image, and each
    change is made at about its probability with values inside its range."""
    assert CAMERA_MIXES["clinic"] is CLINIC_CHANGES
    assert CLINIC_CHANGES[3:] == RANDOM_CHANGES
    assert [name for name, _, _ in CLINIC_CHANGES[:3]] == ["vignette", "illumination",
                                                           "white_balance"]  # fmt: skip
    image = _image(1)
    a, made_a = random_camera(image, np.random.default_rng([7, 1]), CLINIC_CHANGES)
    b, made_b = random_camera(image, np.random.default_rng([7, 1]), CLINIC_CHANGES)
    assert np.array_equal(a, b) and made_a == made_b and a.dtype == np.uint8
    small = _image(2, (8, 8, 3))
    first, second = np.random.default_rng(5), np.random.default_rng(5)
    random_camera(image, first, CLINIC_CHANGES)
    random_camera(small, second, CLINIC_CHANGES)
    assert first.random() == second.random()
    ranges = {name: bounds for name, _, bounds in CLINIC_CHANGES}
    counts = dict.fromkeys(ranges, 0)
    rng = np.random.default_rng(0)
    for _ in range(400):
        _, made = random_camera(small, rng, CLINIC_CHANGES)
        for name, value in made:
            counts[name] += 1
            assert ranges[name][0] <= value <= ranges[name][1]
    for name, p, _ in CLINIC_CHANGES:
        assert abs(counts[name] / 400 - p) < 0.1, (name, counts[name])
