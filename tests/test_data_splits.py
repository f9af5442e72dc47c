"""Versioned splits: DRIVE official, STARE folds and leave-one-out, CHASE_DB1 and HRF, leak-free
validation."""

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from data.splits import drive_split, fixed_split, load_split, stare_split, validation_split
from utils.errors import UserError


def test_drive_official_split():
    train, test = drive_split()
    assert train == [f"{i:02d}" for i in range(21, 41)]
    assert test == [f"{i:02d}" for i in range(1, 21)]


def test_chase_db1_split_of_the_sa_unet_paper():
    train, test = fixed_split("chase_db1")
    ids = [f"Image_{i:02d}{eye}" for i in range(1, 15) for eye in "LR"]
    assert train == ids[:20] and test == ids[20:]  # Image_01L-Image_10R / Image_11L-Image_14R
    assert train[-1] == "Image_10R" and test[0] == "Image_11L"
    # Both eyes of a child (Image_NNL, Image_NNR) sit on one side.
    assert {n[6:8] for n in train}.isdisjoint({n[6:8] for n in test})


def test_hrf_split_of_bob_and_lwnet():
    train, test = fixed_split("hrf")
    assert (len(train), len(test)) == (15, 30) and set(train).isdisjoint(test)
    groups = ("dr", "g", "h")
    assert set(train) | set(test) == {f"{i:02d}_{g}" for g in groups for i in range(1, 16)}
    for g in groups:
        assert sorted(t for t in train if t.endswith(f"_{g}")) == [
            f"{i:02d}_{g}" for i in range(1, 6)
        ]
    # The labels some copies lack (this project's among them) are test images: scoring leaves
    # them out (data.readers), training never needs them.
    assert {"11_h", "12_h", "13_h"} <= set(test)


def test_stare_folds_partition_the_20_images():
    ids = load_split("stare")["images"]
    assert len(ids) == 20 == len(set(ids))
    tests = []
    for k in range(1, 6):
        train, test = stare_split(k)
        assert len(test) == 4 and len(train) == 16
        assert set(train).isdisjoint(test) and set(train) | set(test) == set(ids)
        tests += test
    assert sorted(tests) == sorted(ids)


def test_stare_leave_one_out_and_bad_folds():
    train, test = stare_split("loo:im0044")
    assert test == ["im0044"] and len(train) == 19 and "im0044" not in train
    with pytest.raises(UserError):
        stare_split(6)
    with pytest.raises(UserError):
        stare_split("loo:im9999")


def test_by_source_never_leaks_a_source():
    sources = [f"s{i // 13}" for i in range(20 * 13)]
    train, val = validation_split(sources, "by_source", 0.1, seed=42)
    assert len(train) + len(val) == 260 and len(val) == 26
    assert {sources[i] for i in train}.isdisjoint({sources[i] for i in val})
    again = validation_split(sources, "by_source", 0.1, seed=42)
    np.testing.assert_array_equal(val, again[1])


def test_random_matches_scikit_learn_train_test_split():
    n = 208
    train, val = validation_split([str(i) for i in range(n)], "random", 0.1, seed=42)
    sk_train, sk_val = train_test_split(np.arange(n), test_size=0.1, random_state=42)
    np.testing.assert_array_equal(val, np.sort(sk_val))
    np.testing.assert_array_equal(train, np.sort(sk_train))


@pytest.mark.slow
def test_real_splits_do_not_leak(real_data_root):
    from data import load_dataset

    cases = [({"name": "drive"}, "DRIVE"), ({"name": "stare", "fold": 3}, "STARE")]
    cases += [({"name": "chase_db1"}, "CHASE_DB1"), ({"name": "hrf"}, "HRF")]
    for cfg, folder in cases:
        if not (real_data_root / folder).is_dir():
            continue
        ds = load_dataset({**cfg, "data_root": str(real_data_root)})
        train_sources = [s.source for s in ds.train]
        test_sources = {s.source for s in ds.test}
        assert set(train_sources).isdisjoint(test_sources)
        augmented = [src for src in train_sources for _ in range(13)]
        tr, va = validation_split(augmented, "by_source", 0.1, 42)
        assert {augmented[i] for i in tr}.isdisjoint({augmented[i] for i in va})
        assert {augmented[i] for i in va}.isdisjoint(test_sources)
