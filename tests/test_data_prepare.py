"""data.prepare: the cache (keyed, atomic, reused), summaries, and the CLI's errors (exit 2)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data import prepare
from data.prepare import prepare_training_data

ROOT = Path(__file__).resolve().parents[1]


def run_prepare(*args, cache):
    cmd = [
        sys.executable,
        "-m",
        "data.prepare",
        *args,
        "--cache",
        str(cache),
        "--json",
        "--no-progress",
    ]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_synthetic_through_the_same_cache_path(tmp_path):
    data = prepare_training_data({"name": "synthetic"}, cache_dir=tmp_path, progress=False)
    s = data.summary
    assert (s["train"], s["test"], s["augmented_train"]) == (12, 4, 156)
    assert s["image_shape"] == [96, 96, 3] and s["padded_shape"] == [96, 96, 3]
    assert len(data.x_train) + len(data.x_val) == 156 and len(data.x_val) == 13
    assert data.x_train.shape[1:] == (96, 96, 3) and data.y_train.shape[1:] == (96, 96, 1)
    assert data.x_train.dtype == np.uint8 and set(np.unique(data.y_train)) == {0, 1}
    assert not s["cache_hit"] and data.cache.is_file()
    again = prepare_training_data({"name": "synthetic"}, cache_dir=tmp_path, progress=False)
    assert again.summary["cache_hit"] and again.x_train.tobytes() == data.x_train.tobytes()
    other = prepare_training_data(
        {"name": "synthetic", "seed": 1}, cache_dir=tmp_path, progress=False
    )
    assert other.cache != data.cache  # a change of inputs builds a new cache file
    rand = prepare_training_data(
        {"name": "synthetic", "val_split": "random"}, cache_dir=tmp_path, progress=False
    )
    assert rand.summary["cache_hit"] and len(rand.x_val) == 16  # ceil(0.1 * 156), same cache


def test_crash_while_writing_leaves_no_cache(tmp_path, monkeypatch):
    def crash(f, **arrays):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare.np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        prepare_training_data(
            {"name": "synthetic", "n_train": 2}, cache_dir=tmp_path, progress=False
        )
    assert list(tmp_path.glob("*.npz")) == [] and list(tmp_path.glob(".*")) == []


def test_corrupt_cache_is_rebuilt(tmp_path):
    first = prepare_training_data(
        {"name": "synthetic", "n_train": 2}, cache_dir=tmp_path, progress=False
    )
    first.cache.write_bytes(first.cache.read_bytes()[:1000])
    second = prepare_training_data(
        {"name": "synthetic", "n_train": 2}, cache_dir=tmp_path, progress=False
    )
    assert not second.summary["cache_hit"]
    assert second.x_train.tobytes() == first.x_train.tobytes()


# ----------------------------------------------------------------------------- bad input via the CLI


def fake_drive(root: Path, size: int = 16) -> Path:
    """A tiny DRIVE-shaped folder (40 images of size x size) for error tests."""
    for part, ids in (("training", range(21, 41)), ("test", range(1, 21))):
        for sub in ("images", "1st_manual", "mask"):
            (root / "DRIVE" / part / sub).mkdir(parents=True, exist_ok=True)
        for i in ids:
            Image.fromarray(np.full((size, size, 3), 90, np.uint8)).save(
                root / "DRIVE" / part / "images" / f"{i:02d}_{part}.tif"
            )
            Image.fromarray(np.zeros((size, size), np.uint8)).save(
                root / "DRIVE" / part / "1st_manual" / f"{i:02d}_manual1.gif"
            )
            Image.fromarray(np.full((size, size), 255, np.uint8)).save(
                root / "DRIVE" / part / "mask" / f"{i:02d}_{part}_mask.gif"
            )
    return root


def _assert_user_error(result, *words, cache):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for w in words:
        assert w in lines[0], lines[0]
    assert result.stdout == ""
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))


def test_fake_drive_works(tmp_path):
    r = run_prepare(
        "--dataset", "drive", "--data-root", str(fake_drive(tmp_path / "d")), cache=tmp_path / "c"
    )
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert (s["train"], s["test"], s["augmented_train"]) == (20, 20, 260)


@pytest.mark.parametrize(
    "case, words",
    [
        ("missing_folder", ["does not exist"]),
        ("not_drive", ["does not hold DRIVE"]),
        ("no_label", ["25_training.tif", "has no label", "25_manual1.gif"]),
        ("label_size", ["25_manual1.gif", "expected the same size"]),
        ("truncated", ["25_training.tif", "could not be read"]),
        ("empty", ["contains no images"]),
    ],
)
def test_bad_drive_input(tmp_path, case, words):
    root = tmp_path / "data"
    train = root / "DRIVE" / "training"
    if case == "missing_folder":
        root = tmp_path / "nowhere"
    elif case == "not_drive":
        (root / "something").mkdir(parents=True)
    else:
        fake_drive(root)
        if case == "no_label":
            (train / "1st_manual" / "25_manual1.gif").unlink()
        elif case == "label_size":
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(
                train / "1st_manual" / "25_manual1.gif"
            )
        elif case == "truncated":
            path = train / "images" / "25_training.tif"
            path.write_bytes(path.read_bytes()[:300])
        elif case == "empty":
            for p in (train / "images").iterdir():
                p.unlink()
    cache = tmp_path / "cache"
    _assert_user_error(
        run_prepare("--dataset", "drive", "--data-root", str(root), cache=cache),
        *words,
        cache=cache,
    )


def test_fake_hrf_through_the_cli(tmp_path):
    from test_data_readers import _fake_hrf_files, _write_folder

    _write_folder(tmp_path / "d" / "HRF", _fake_hrf_files())
    for i in ("11_h", "12_h", "13_h"):  # as in the project's copy
        (tmp_path / "d" / "HRF" / "manual1" / f"{i}.tif").unlink()
    r = run_prepare("--dataset", "hrf", "--data-root", str(tmp_path / "d"), cache=tmp_path / "c")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert (s["dataset"], s["train"], s["test"], s["augmented_train"]) == ("hrf", 15, 27, 195)
    assert s["image_shape"] == [8, 12, 3] and s["padded_shape"] == [8, 16, 3]  # half of 16 x 24
    assert s["val_images"] == 26 and "11_h, 12_h, 13_h" in r.stderr


def test_bad_stare_layout(tmp_path):
    (tmp_path / "data" / "STARE" / "images").mkdir(parents=True)
    cache = tmp_path / "cache"
    r = run_prepare("--dataset", "stare", "--data-root", str(tmp_path / "data"), cache=cache)
    _assert_user_error(r, "does not hold STARE", "stare-images", cache=cache)


# ----------------------------------------------------------------------------- real data


@pytest.fixture(scope="session")
def real_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("prepared")


def test_real_drive_prepare_cli(real_data_root, real_cache):
    r = run_prepare("--dataset", "drive", "--data-root", str(real_data_root), cache=real_cache)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert (s["dataset"], s["train"], s["test"]) == ("drive", 20, 20)
    assert s["image_shape"] == [584, 565, 3] and s["padded_shape"] == [592, 592, 3]
    assert s["augmented_train"] == 260 and s["train_images"] + s["val_images"] == 260
    assert s["val_images"] == 26 and len(s["val_sources"]) == 2
    assert abs(s["vessel_fraction"] - 0.086) < 0.002
    assert Path(s["cache"]).is_file() and Path(s["cache"]).parent == real_cache

    data = prepare_training_data(
        {"name": "drive", "data_root": str(real_data_root)}, cache_dir=real_cache, progress=False
    )
    assert data.summary["cache_hit"]
    assert data.x_train.shape == (234, 592, 592, 3) and data.y_val.shape == (26, 592, 592, 1)
    assert set(np.unique(data.y_train)) == {0, 1}
    assert not data.x_train[:, 584:].any() and not data.y_train[:, :, 565:].any()  # zero padding
    assert len(data.test) == 20 and data.test[0].image.shape == (584, 565, 3)


@pytest.mark.slow
def test_real_stare_prepare(real_data_root, real_cache):
    data = prepare_training_data(
        {"name": "stare", "data_root": str(real_data_root), "fold": 1},
        cache_dir=real_cache,
        progress=False,
    )
    s = data.summary
    assert (s["train"], s["test"], s["augmented_train"]) == (16, 4, 208)
    assert s["image_shape"] == [605, 700, 3] and s["padded_shape"] == [704, 704, 3]
    assert data.x_train.shape[1:] == (704, 704, 3)
    test_ids = {t.source for t in data.test}
    assert test_ids.isdisjoint(s["val_sources"])


def test_cache_keeps_artery_vein_class_maps(tmp_path):
    """Labels of 0 and 1 are bit-packed as before; a class map (data.av, values up to 4) is kept
    whole, since bits would keep only vessel or not."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(3, 8, 8, 3), dtype=np.uint8)
    sources = np.array(["a", "a", "b"])
    for y, stored in (
        (rng.integers(0, 2, size=(3, 8, 8), dtype=np.uint8), "y_bits"),
        (rng.integers(0, 5, size=(3, 8, 8), dtype=np.uint8), "y"),
    ):
        path = tmp_path / f"{stored}.npz"
        prepare.save_cache(path, {"x": x, "y": y, "sources": sources})
        with np.load(path) as z:
            assert stored in z.files
        loaded = prepare.load_cache(path)
        np.testing.assert_array_equal(loaded["y"], y)
        assert loaded["y"].dtype == np.uint8
        np.testing.assert_array_equal(loaded["x"], x)
