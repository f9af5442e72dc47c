"""Readers: image decoding quirks, DRIVE (folder and zip), STARE (folders and tars), any folder."""

import gzip
import io
import json
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from data import load_dataset, resolve_data_root
from data.fov import generate_fov_mask
from data.io import file_stem, read_image, read_label
from data.synthetic import make_synthetic
from utils.errors import UserError


def _png(array, mode=None):
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, format="PNG") if mode else Image.fromarray(array).save(
        buf, format="PNG"
    )
    return buf.getvalue()


def test_file_stem():
    assert file_stem("a/im0001.ah.ppm.gz") == "im0001.ah"
    assert file_stem("21_training.tif") == "21_training"
    assert file_stem("Image_01L.JPG") == "Image_01L"


def test_palette_gif_label_binarised_like_drive_2nd_manual(tmp_path):
    index = np.zeros((6, 6), dtype=np.uint8)
    index[2:4] = 1
    img = Image.fromarray(index, "P")
    img.putpalette([4, 2, 4, 252, 254, 252] + [0] * 762)
    path = tmp_path / "x_manual2.gif"
    img.save(path)
    np.testing.assert_array_equal(read_label(path), index)


def test_grey_rgba_and_gzip_inputs():
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    assert read_image(_png(grey), "g.png").shape == (8, 8, 3)
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    assert read_image(_png(rgba), "a.png")[0, 0].tolist() == [200, 0, 0]
    buf = io.BytesIO()
    Image.fromarray(grey).save(buf, format="PPM")
    label = read_label(gzip.compress(buf.getvalue()), "l.ppm.gz")
    np.testing.assert_array_equal(label, (grey > 127).astype(np.uint8))


def test_truncated_file_names_the_file():
    data = _png(np.zeros((64, 64, 3), dtype=np.uint8) + 7)
    with pytest.raises(UserError, match="broken.png"):
        read_image(data[: len(data) // 2], "broken.png")
    with pytest.raises(UserError, match="bad.ppm.gz"):
        read_image(b"not gzip", "bad.ppm.gz")


def test_config_errors(monkeypatch):
    with pytest.raises(UserError, match="valid"):
        load_dataset({"name": "synthetic", "sise": 3})
    with pytest.raises(UserError, match="expected one of"):
        load_dataset({"name": "chase"})
    monkeypatch.delenv("SAUNETV2_DATA_ROOT", raising=False)
    with pytest.raises(UserError, match="--data-root"):
        resolve_data_root(None)


def test_folder_reader_with_pattern_masks_and_split(tmp_path):
    train, _ = make_synthetic(5, 0, 32, seed=2)
    for sub in ("imgs", "gt", "fov"):
        (tmp_path / sub).mkdir()
    for s in train:
        Image.fromarray(s.image).save(tmp_path / "imgs" / f"{s.name}.jpg", quality=95)
        Image.fromarray(s.label * 255).save(tmp_path / "gt" / f"{s.name}_1stHO.png")
        Image.fromarray(s.mask.astype(np.uint8) * 255).save(tmp_path / "fov" / f"{s.name}_mask.tif")
    cfg = {
        "name": "folder",
        "data_root": str(tmp_path),
        "images": "imgs",
        "labels": "gt",
        "masks": "fov",
        "label_pattern": "{stem}_1stHO",
        "mask_pattern": "{stem}_mask",
        "test_fraction": 0.4,
    }
    ds = load_dataset(cfg)
    assert len(ds.train) == 3 and len(ds.test) == 2 and ds.pad_shape == (32, 32)
    by_name = {s.name: s for s in ds.train + ds.test}
    for s in train:
        np.testing.assert_array_equal(by_name[s.name].label, s.label)
        np.testing.assert_array_equal(by_name[s.name].mask, s.mask)
    (tmp_path / "split.json").write_text(
        json.dumps({"train": [train[0].name], "test": [train[1].name]})
    )
    ds = load_dataset({**cfg, "split": "split.json", "masks": None}, cache_dir=tmp_path / "cache")
    assert [s.name for s in ds.train] == [train[0].name] and [s.name for s in ds.test] == [
        train[1].name
    ]
    assert list((tmp_path / "cache" / "fov" / "folder").glob("*.png"))  # generated masks visible
    (tmp_path / "gt" / f"{train[4].name}_1stHO.png").unlink()
    with pytest.raises(UserError, match="has no label"):
        load_dataset(cfg)


# ----------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def drive(real_data_root):
    return load_dataset({"name": "drive", "data_root": str(real_data_root)})


def test_drive_counts_shapes_binary(drive):
    assert (len(drive.train), len(drive.test)) == (20, 20)
    assert drive.image_shape == (584, 565) and drive.pad_shape == (592, 592)
    assert [s.name for s in drive.train][:2] == ["21_training", "22_training"]
    for s in drive.train + drive.test:
        assert s.image.shape == (584, 565, 3) and s.image.dtype == np.uint8
        assert s.label.shape == (584, 565) and set(np.unique(s.label)) == {0, 1}
        assert s.mask.dtype == bool and 0.6 < s.mask.mean() < 0.75
    assert all(s.second is None for s in drive.train)
    seconds = [s.second for s in drive.test]
    assert all(set(np.unique(x)) == {0, 1} for x in seconds)
    # The README's figures: 8.6 % / 8.4 % vessel pixels (1st / 2nd observer).
    assert abs(np.mean([s.label.mean() for s in drive.train]) - 0.086) < 0.002
    assert abs(np.mean([x.mean() for x in seconds]) - 0.084) < 0.002


def test_drive_zip_nested_one_folder(real_data_root, drive, tmp_path):
    z = tmp_path / "DRIVE.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted((real_data_root / "DRIVE").rglob("*")):
            if path.is_file():
                zf.write(
                    path, "datasets/DRIVE/" + path.relative_to(real_data_root / "DRIVE").as_posix()
                )
    for root in (z, tmp_path):
        ds = load_dataset({"name": "drive", "data_root": str(root)})
        assert [s.name for s in ds.test] == [s.name for s in drive.test]
        for a, b in zip(ds.test[:3], drive.test[:3], strict=True):
            assert (
                a.image.tobytes() == b.image.tobytes() and a.second.tobytes() == b.second.tobytes()
            )


def test_generated_fov_matches_drive_masks(drive):
    for s in drive.test[::5]:
        g = generate_fov_mask(s.image)
        assert (g & s.mask).sum() / (g | s.mask).sum() > 0.97


def test_stare_folders_and_tars(real_data_root, tmp_path):
    ds = load_dataset(
        {"name": "stare", "data_root": str(real_data_root), "fold": 2}, cache_dir=tmp_path / "c"
    )
    assert (len(ds.train), len(ds.test)) == (16, 4)
    assert ds.image_shape == (605, 700) and ds.pad_shape == (704, 704)
    for s in ds.train + ds.test:
        assert s.image.shape == (605, 700, 3)
        assert set(np.unique(s.label)) == {0, 1} and set(np.unique(s.second)) == {0, 1}
        assert 0.6 < s.mask.mean() < 0.85  # im0044 fills more of the frame (0.81)
    assert len(list((tmp_path / "c" / "fov" / "stare").glob("*.png"))) == 20
    assert abs(np.mean([s.label.mean() for s in ds.train + ds.test]) - 0.076) < 0.002

    tars = tmp_path / "tars"
    tars.mkdir()
    for folder in ("stare-images", "labels-ah", "labels-vk"):
        with tarfile.open(tars / f"{folder}.tar", "w") as tf:
            for path in sorted((real_data_root / "STARE" / folder).iterdir()):
                tf.add(path, arcname=path.name)
    dt = load_dataset(
        {"name": "stare", "data_root": str(tars / "stare-images.tar"), "fold": 2},
        cache_dir=tmp_path / "c",
    )
    for a, b in zip(dt.test, ds.test, strict=True):
        assert a.name == b.name and a.image.tobytes() == b.image.tobytes()
        assert a.label.tobytes() == b.label.tobytes() and a.mask.tobytes() == b.mask.tobytes()
