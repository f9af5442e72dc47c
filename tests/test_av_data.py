"""Artery/vein label sets: colours to classes, the downsampling rule, the RITE and HRF-AV readers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from data.av import (
    ARTERY,
    BACKGROUND,
    COLOURS,
    CROSSING,
    UNCERTAIN,
    VEIN,
    av_classes,
    av_overlay,
    classes_from_colours,
    vessel_mask,
    vote_by_segment,
)
from data.io import read_label
from data.prepare import main as prepare_main
from data.prepare import prepare_training_data
from data.readers import (
    load_dataset,
    read_hrf_av,
    read_hrf_av_photograph,
    read_rite_zone_b,
    resolve_dataset_config,
)
from data.scale import resize_nearest
from data.splits import fixed_split
from training.config import resolve_run_config
from utils.errors import UserError

VESSEL_CLASSES = (ARTERY, VEIN, CROSSING, UNCERTAIN)

# ----------------------------------------------------------------------------- colours to classes


def test_classes_from_colours_maps_the_five_colours_and_strays_to_the_nearest():
    rgb = np.array(
        [
            [(0, 0, 0), (255, 0, 0), (0, 0, 255)],
            [(0, 255, 0), (255, 255, 255), (255, 0, 255)],  # magenta: red and blue tie -> artery
            [(0, 255, 255), (128, 0, 127), (20, 10, 5)],  # cyan: blue/green/white tie -> vein
        ],
        dtype=np.uint8,
    )
    classes = classes_from_colours(rgb)
    assert classes.dtype == np.uint8
    # the red-blue blend (128, 0, 127) is nearest red (32258 < black 32513 < blue 32768)
    assert classes.tolist() == [[0, 1, 2], [3, 4, 1], [2, 1, 0]]


def test_classes_from_colours_near_colours_and_alpha():
    rgba = np.array([[(10, 240, 20, 255), (230, 20, 30, 0), (5, 10, 200, 255)]], dtype=np.uint8)
    assert classes_from_colours(rgba).tolist() == [[CROSSING, ARTERY, VEIN]]


# ----------------------------------------------------------------------------- configuration


def test_av_dataset_names_resolve_and_a_config_file_names_rite(tmp_path):
    assert resolve_dataset_config({"name": "RITE"})["name"] == "rite"
    assert resolve_dataset_config({"name": "hrf_av", "downsample": 1})["downsample"] == 1
    config = tmp_path / "rite.yaml"
    config.write_text(
        "dataset:\n  name: rite\n  data_root: null\nmodel:\n  name: sa_unetv2_av\n"
        "train:\n  checkpoint: {monitor: val_loss, mode: min}\n",
        encoding="utf-8",
    )
    cfg = resolve_run_config(config)
    assert resolve_dataset_config(cfg["dataset"])["name"] == "rite"


def test_training_data_of_synthetic_av_keeps_its_class_maps(tmp_path, capsys):
    """The augmented set and its cache hold class maps whole, the vessel pixels where the vessel
    set has them (the same drawing, `data.synthetic`)."""
    small = {"n_train": 3, "n_test": 1, "size": 64}
    av = prepare_training_data({"name": "synthetic_av", **small}, tmp_path, progress=False)
    plain = prepare_training_data({"name": "synthetic", **small}, tmp_path, progress=False)
    assert av.y_train.shape == plain.y_train.shape == (26, 64, 64, 1)  # 2 photographs x 13
    assert set(np.unique(av.y_train)) == {BACKGROUND, ARTERY, VEIN}
    np.testing.assert_array_equal(av.y_train != 0, plain.y_train == 1)
    with np.load(av.cache) as cached:
        assert "y" in cached.files and "y_bits" not in cached.files
    again = prepare_training_data({"name": "synthetic_av", **small}, tmp_path, progress=False)
    assert again.summary["cache_hit"] and np.array_equal(again.y_train, av.y_train)
    assert prepare_main(["--dataset", "synthetic_av", "--cache", str(tmp_path), "--json"]) == 0
    assert '"dataset": "synthetic_av"' in capsys.readouterr().out


# ----------------------------------------------------------------------------- a made-up HRF-AV copy

HRF_SHAPE = (6, 10)  # (H, W) of the made-up photographs


def _write_hrf_av(root, with_manual1: bool = True) -> None:
    """HRF/ (images, mask, an empty manual1) and HRF-AV/ for the 45 photographs of hrf.json, each
    6 x 10, the label's left half artery and right half vein (one stray magenta pixel)."""
    for folder in ("HRF/images", "HRF/mask", "HRF/manual1", "HRF-AV"):
        (root / folder).mkdir(parents=True)
    train, test = fixed_split("hrf")
    h, w = HRF_SHAPE
    label = np.zeros((h, w, 3), np.uint8)
    label[:, : w // 2] = (255, 0, 0)
    label[:, w // 2 :] = (0, 0, 255)
    label[0, 0] = (255, 0, 255)
    for i in train + test:
        suffix = ".JPG" if i.endswith("_dr") else ".jpg"
        Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(root / f"HRF/images/{i}{suffix}")
        Image.fromarray(np.full((h, w), 255, np.uint8)).save(root / f"HRF/mask/{i}_mask.tif")
        Image.fromarray(label).save(root / f"HRF-AV/{i}_AVmanual.png")


def test_read_hrf_av_split_classes_and_downsampling_on_a_made_up_copy(tmp_path):
    _write_hrf_av(tmp_path)
    train, test = read_hrf_av(tmp_path, downsample=2)
    train_ids, test_ids = fixed_split("hrf")
    assert [s.name for s in train] == train_ids and [s.name for s in test] == test_ids
    assert "11_h" in [s.name for s in test]  # HRF's vessel label is missing here: no matter
    sample = train[0]
    assert sample.source == "hrf_av/01_dr"
    assert sample.image.shape == (3, 5, 3) and sample.mask.shape == (3, 5) and sample.mask.all()
    # nearest neighbour keeps columns 1, 3, 5, 7, 9 of ten (artery 0-4, vein 5-9): no blend
    assert sample.label.tolist() == [[1, 1, 2, 2, 2]] * 3
    full = read_hrf_av_photograph(tmp_path, "07_g", downsample=1)
    assert full.label.shape == HRF_SHAPE and full.label[0, 0] == ARTERY  # magenta -> artery
    dataset = load_dataset({"name": "hrf_av", "data_root": str(tmp_path)})
    assert dataset.pad_shape == (8, 8) and dataset.excluded == []


def test_read_hrf_av_names_a_missing_label(tmp_path):
    _write_hrf_av(tmp_path)
    with pytest.raises(UserError, match="no photograph '99_h'"):
        read_hrf_av_photograph(tmp_path, "99_h")
    (tmp_path / "HRF-AV/12_h_AVmanual.png").unlink()
    with pytest.raises(UserError, match="12_h_AVmanual.png"):
        read_hrf_av(tmp_path)


# ----------------------------------------------------------------------------- real RITE

# README's share of each colour among all label pixels (%), training and test.
RITE_SHARES = {
    "train": {ARTERY: 3.492, VEIN: 4.284, CROSSING: 0.212, UNCERTAIN: 0.405},
    "test": {ARTERY: 3.585, VEIN: 4.361, CROSSING: 0.315, UNCERTAIN: 0.158},
}


@pytest.fixture(scope="module")
def rite_dataset(real_rite_root):
    """RITE read by name, as a config's `dataset: {name: rite}` reads it (read_rite)."""
    return load_dataset({"name": "rite", "data_root": str(real_rite_root)})


@pytest.fixture(scope="module")
def rite(rite_dataset):
    return rite_dataset.train, rite_dataset.test


def test_rite_split_shapes_and_classes(rite):
    train, test = rite
    train_ids, test_ids = fixed_split("rite")
    assert [s.source for s in train] == [f"rite/{i}" for i in train_ids]
    assert [s.name for s in test] == [f"{i}_test" for i in test_ids]
    assert (len(train), len(test)) == (20, 20) and fixed_split("rite") == fixed_split("drive")
    for s in train + test:
        assert s.image.shape == (584, 565, 3) and s.image.dtype == np.uint8
        assert s.label.shape == (584, 565) and s.label.dtype == np.uint8
        assert s.mask.shape == (584, 565) and s.mask.dtype == bool
        assert set(np.unique(s.label)) == {0, 1, 2, 3, 4}, s.name
        assert s.second is None


@pytest.mark.parametrize("part", ["train", "test"])
def test_rite_class_shares_match_the_data_readme(rite, part):
    samples = rite[0] if part == "train" else rite[1]
    counts = sum(np.bincount(s.label.ravel(), minlength=5) for s in samples)
    shares = 100 * counts / counts.sum()
    for cls, expected in RITE_SHARES[part].items():
        assert shares[cls] == pytest.approx(expected, abs=0.01), (part, cls)


def test_rite_loads_by_name_with_drives_pad_shape(rite_dataset):
    assert rite_dataset.pad_shape == (592, 592) and rite_dataset.image_shape == (584, 565)


@pytest.mark.slow
def test_rite_training_cache_holds_its_class_maps(real_rite_root, tmp_path):
    """prepare of 'rite': 18 photographs x 13 augmented copies train, 2 photographs validate (by
    source), every class of the labels kept in the cache; the unaugmented first copies are the
    labels as read."""
    data = prepare_training_data(
        {"name": "rite", "data_root": str(real_rite_root)}, tmp_path, progress=False
    )
    assert data.y_train.shape == (234, 592, 592, 1) and data.y_val.shape == (26, 592, 592, 1)
    assert set(np.unique(data.y_train)) == {0, 1, 2, 3, 4}
    assert len(data.val_photographs) == 2
    first = data.val_photographs[0]
    assert set(np.unique(first.label)) == {0, 1, 2, 3, 4}
    with np.load(data.cache) as cached:
        assert "y" in cached.files
        assert cached["y"].shape == (260, 592, 592)
        sources = [str(s) for s in cached["sources"]]
        copy = cached["y"][sources.index(first.source)]  # the photograph's own, unaugmented copy
    np.testing.assert_array_equal(copy[:584, :565], first.label)


def test_rite_zone_b_ring_for_test_photographs_only(real_rite_root):
    ring = read_rite_zone_b(real_rite_root, "01_test")
    assert ring.shape == (584, 565) and ring.dtype == bool
    # about pi (118^2 - 80^2) = 23,637 pixels where not cut off by the image edge
    assert 15_000 < ring.sum() < 24_000
    assert read_rite_zone_b(real_rite_root, "21_training") is None
    with pytest.raises(UserError, match="no zone-B ring"):
        read_rite_zone_b(real_rite_root, "01")


# ----------------------------------------------------------------------------- real HRF-AV


@pytest.fixture(scope="module")
def hrf_av_01_dr(real_hrf_av_root):
    return read_hrf_av_photograph(real_hrf_av_root, "01_dr", downsample=1)


def test_hrf_av_labels_trace_hrf_vessel_labels(real_hrf_av_root, hrf_av_01_dr):
    vessels = vessel_mask(hrf_av_01_dr.label)
    manual = read_label(real_hrf_av_root / "HRF" / "manual1" / "01_dr.tif").astype(bool)
    iou = (vessels & manual).sum() / (vessels | manual).sum()
    assert hrf_av_01_dr.label.shape == (2336, 3504) and iou > 0.999
    assert hrf_av_01_dr.mask.shape == (2336, 3504) and hrf_av_01_dr.mask.mean() > 0.7


def test_hrf_av_at_half_size_has_the_vessel_tasks_half_size_vessel_pixels(
    real_hrf_av_root, hrf_av_01_dr
):
    small = read_hrf_av_photograph(real_hrf_av_root, "01_dr", downsample=2)
    manual = read_label(real_hrf_av_root / "HRF" / "manual1" / "01_dr.tif").astype(bool)
    vessel_task = resize_nearest(manual, (1168, 1752))  # as read_hrf shrinks HRF's labels
    assert small.label.shape == (1168, 1752)
    assert np.array_equal(vessel_mask(small.label), vessel_task)
    # nearest neighbour, not a blend: every half-size class is one of the full-size pixels'
    assert np.array_equal(small.label, hrf_av_01_dr.label[1::2, 1::2]) or np.array_equal(
        small.label, hrf_av_01_dr.label[::2, ::2]
    )


def test_hrf_av_reads_11_h_whose_vessel_label_hrf_lacks(real_hrf_av_root):
    sample = read_hrf_av_photograph(real_hrf_av_root, "11_h")
    assert sample.image.shape == (1168, 1752, 3) and sample.label.shape == (1168, 1752)
    assert {ARTERY, VEIN, CROSSING} <= set(np.unique(sample.label))
    assert 0.03 < (sample.label == VEIN).mean() < 0.06


# ----------------------------------------------------------------------------- predicted maps


def test_av_classes_by_hand():
    # (p_vessel, p_artery, p_vein) of four pixels: a vein, an artery by a tie, background at the
    # threshold itself (a vessel is p > threshold), an artery.
    probs = np.array([[[0.9, 0.2, 0.7], [0.6, 0.4, 0.4]], [[0.5, 0.9, 0.1], [0.51, 0.8, 0.3]]])
    np.testing.assert_array_equal(av_classes(probs), [[VEIN, ARTERY], [BACKGROUND, ARTERY]])
    np.testing.assert_array_equal(av_classes(probs, 0.55), [[VEIN, ARTERY], [BACKGROUND, 0]])
    assert av_classes(probs).dtype == np.uint8
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        av_classes(probs[..., :1])


def test_vote_by_segment_types_each_segment_between_junctions_as_a_whole():
    """A T of 3-pixel-wide vessels: the left arm an artery with a third of its pixels leaning
    vein, the right arm a vein likewise, the stem an artery. Each arm takes one type, the
    junction does not carry one arm's type into another, the vessel channel is kept."""
    probs = np.zeros((48, 44, 3), np.float32)
    probs[..., 1:] = 0.5
    rng = np.random.default_rng(0)

    def draw(rows, cols, artery):
        block = probs[rows, cols]
        block[..., 0] = 0.9
        lean = rng.random(block.shape[:2]) < 1 / 3  # these pixels lean the other way
        p_artery = np.where(lean, 0.4, 0.9) if artery else np.where(lean, 0.6, 0.1)
        block[..., 1], block[..., 2] = p_artery, 1.0 - p_artery
        probs[rows, cols] = block

    draw(slice(9, 12), slice(2, 20), artery=True)  # left arm
    draw(slice(9, 12), slice(20, 42), artery=False)  # right arm
    draw(slice(12, 42), slice(19, 22), artery=True)  # stem
    before = av_classes(probs)
    assert (before[9:12, 2:16] == VEIN).any() and (before[9:12, 26:42] == ARTERY).any()

    voted = vote_by_segment(probs)
    classes = av_classes(voted)
    assert (classes[9:12, 2:16] == ARTERY).all()
    assert (classes[9:12, 26:42] == VEIN).all()
    assert (classes[16:42, 19:22] == ARTERY).all()
    np.testing.assert_array_equal(voted[..., 0], probs[..., 0])
    # One value per segment: the left arm's pixels share theirs, a mean of what was drawn there.
    arm = voted[9:12, 2:16, 1]
    assert np.ptp(arm) == 0 and 0.4 < arm[0, 0] < 0.9
    # A pixel outside the vessels takes the nearest segment's means: below the stem, artery.
    assert voted[46, 20, 1] == voted[30, 20, 1] > voted[46, 20, 2]
    assert av_classes(probs).tolist() == before.tolist()  # the input is not changed


def test_vote_by_segment_of_one_segment_is_its_mean_and_of_none_is_the_map():
    probs = np.zeros((5, 9, 3), np.float32)
    probs[2, 1:8] = [0.9, 0.0, 1.0]
    probs[2, 1:8, 1] = [0.2, 0.8, 0.9, 0.7, 0.6, 0.1, 0.3]
    probs[2, 1:8, 2] = 1.0 - probs[2, 1:8, 1]
    voted = vote_by_segment(probs)
    np.testing.assert_allclose(voted[..., 1], np.mean([0.2, 0.8, 0.9, 0.7, 0.6, 0.1, 0.3]))
    np.testing.assert_allclose(voted[..., 2], 1.0 - voted[..., 1], atol=1e-6)
    empty = np.full((4, 4, 3), 0.3, np.float32)  # no vessel above the threshold
    np.testing.assert_array_equal(vote_by_segment(empty), empty)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        vote_by_segment(probs[..., :2])


def test_av_overlay_paints_each_class_in_its_colour():
    image = np.full((2, 3, 3), 77, np.uint8)
    classes = np.array([[BACKGROUND, ARTERY, VEIN], [CROSSING, UNCERTAIN, BACKGROUND]], np.uint8)
    out = av_overlay(image, classes)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out[0, 1], (255, 0, 0))  # artery red
    np.testing.assert_array_equal(out[0, 2], (0, 0, 255))  # vein blue
    np.testing.assert_array_equal(out[1, 0], COLOURS[CROSSING])
    np.testing.assert_array_equal(out[1, 1], COLOURS[UNCERTAIN])
    np.testing.assert_array_equal(out[0, 0], (77, 77, 77))  # the photograph elsewhere
    assert image[0, 1, 0] == 77  # the input is not painted over
    with pytest.raises(ValueError, match="differ in size"):
        av_overlay(image, classes[:1])
