"""Artery/vein label sets: colours to classes, the downsampling rule, the RITE and HRF-AV readers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from data.av import (
    ARTERY,
    BACKGROUND,
    CROSSING,
    UNCERTAIN,
    VEIN,
    classes_from_colours,
    downsample_classes,
    vessel_mask,
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


# ----------------------------------------------------------------------------- downsampling


@pytest.mark.parametrize("cls", VESSEL_CLASSES)
@pytest.mark.parametrize("row", [2, 3])
def test_downsample_keeps_a_one_pixel_vessel_that_nearest_may_lose(cls, row):
    horizontal = np.zeros((8, 8), np.uint8)
    horizontal[row, :] = cls
    expected = np.zeros((4, 4), np.uint8)
    expected[row // 2, :] = cls
    assert np.array_equal(downsample_classes(horizontal, 2), expected)
    assert np.array_equal(downsample_classes(horizontal.T, 2), expected.T)  # vertical
    # nearest neighbour samples odd rows only: the line on an even row vanishes
    kept = (resize_nearest(horizontal, (4, 4)) == cls).sum()
    assert kept == (0 if row % 2 == 0 else 4)


def test_downsample_halves_a_two_pixel_vessel_and_drops_a_quarter_block():
    label = np.zeros((8, 8), np.uint8)
    label[2:4, :] = ARTERY  # two pixels wide, one block row
    label[6, 6] = VEIN  # one pixel of a 2 x 2 block: background wins
    small = downsample_classes(label, 2)
    expected = np.zeros((4, 4), np.uint8)
    expected[1, :] = ARTERY
    assert np.array_equal(small, expected)


def test_downsample_class_majority_inside_a_block_and_ties_to_the_lower_class():
    blocks = {
        "artery-vein tie": ([ARTERY, ARTERY, VEIN, VEIN], ARTERY),
        "vein majority": ([ARTERY, VEIN, VEIN, VEIN], VEIN),
        "crossing over background": ([CROSSING, CROSSING, BACKGROUND, BACKGROUND], CROSSING),
        "mixed vessel half": ([VEIN, UNCERTAIN, BACKGROUND, BACKGROUND], VEIN),
        "uncertain majority": ([UNCERTAIN, UNCERTAIN, UNCERTAIN, ARTERY], UNCERTAIN),
    }
    for what, (pixels, expected) in blocks.items():
        block = np.array(pixels, np.uint8).reshape(2, 2)
        assert downsample_classes(block, 2).tolist() == [[expected]], what


def test_downsample_factor_one_and_odd_sizes():
    label = np.random.default_rng(0).integers(0, 5, (7, 9)).astype(np.uint8)
    assert np.array_equal(downsample_classes(label, 1), label)
    assert downsample_classes(label, 2).shape == (3, 4)


# ----------------------------------------------------------------------------- configuration


def test_av_dataset_names_resolve_and_a_config_file_names_rite(tmp_path):
    assert resolve_dataset_config({"name": "RITE"})["name"] == "rite"
    assert resolve_dataset_config({"name": "hrf_av", "downsample": 1})["downsample"] == 1
    config = tmp_path / "rite.yaml"
    config.write_text("dataset:\n  name: rite\n  data_root: null\n", encoding="utf-8")
    cfg = resolve_run_config(config)
    assert resolve_dataset_config(cfg["dataset"])["name"] == "rite"


def test_vessel_training_data_refuses_the_av_datasets(capsys):
    with pytest.raises(UserError, match="artery/vein class maps"):
        prepare_training_data({"name": "rite", "data_root": "/nowhere"})
    with pytest.raises(SystemExit):
        prepare_main(["--dataset", "hrf_av"])
    assert "invalid choice: 'hrf_av'" in capsys.readouterr().err


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
    # the block of columns 4 and 5 holds two artery and two vein pixels: the tie goes to artery
    assert sample.label.tolist() == [[1, 1, 1, 2, 2]] * 3
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


def test_hrf_av_downsampling_keeps_vessels_connected_and_each_class_area(hrf_av_01_dr):
    label = hrf_av_01_dr.label
    small_map = downsample_classes(label, 2)

    def pieces(classes):
        return ndimage.label(classes != BACKGROUND, np.ones((3, 3)))[1]

    # measured: 8 pieces at full size, 303 by block majority, 603 by nearest neighbour
    assert pieces(label) == 8
    assert pieces(small_map) < 0.6 * pieces(resize_nearest(label, small_map.shape))
    full = np.bincount(label.ravel(), minlength=5)
    small = np.bincount(small_map.ravel(), minlength=5)
    ratio = 4 * small[1:3] / full[1:3]  # artery, vein: area at half size against full size
    # block majority keeps thin vessels, at the price of some width (measured 1.109 and 1.066)
    assert np.all((ratio > 1.05) & (ratio < 1.12)), ratio


def test_hrf_av_reads_11_h_whose_vessel_label_hrf_lacks(real_hrf_av_root):
    sample = read_hrf_av_photograph(real_hrf_av_root, "11_h")
    assert sample.image.shape == (1168, 1752, 3) and sample.label.shape == (1168, 1752)
    assert {ARTERY, VEIN, CROSSING} <= set(np.unique(sample.label))
    assert 0.03 < (sample.label == VEIN).mean() < 0.06
