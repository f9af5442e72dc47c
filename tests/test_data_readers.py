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
from data.io import file_stem, image_size, read_image, read_label, read_mask, read_photograph
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


@pytest.mark.parametrize(
    ("orientation", "displayed"),
    [
        (1, lambda s: s),
        (2, lambda s: s[:, ::-1]),
        (3, lambda s: s[::-1, ::-1]),
        (4, lambda s: s[::-1]),
        (5, lambda s: s.swapaxes(0, 1)),
        (6, lambda s: np.rot90(s, -1)),  # turned a quarter clockwise for display
        (7, lambda s: np.rot90(s, 2).swapaxes(0, 1)),
        (8, lambda s: np.rot90(s, 1)),
    ],
)
def test_exif_orientation_is_read_as_displayed(tmp_path, orientation, displayed):
    """Stored pixels with an EXIF orientation tag read as a viewer shows them, with the tag; the
    header's size is the displayed one; masks turn the same way."""
    stored = np.random.default_rng(orientation).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "p.png"
    Image.fromarray(stored).save(path, exif=exif)
    image, tag = read_photograph(path)
    expected = displayed(stored)
    np.testing.assert_array_equal(image, expected)
    assert tag == orientation and image_size(path) == expected.shape[:2]
    np.testing.assert_array_equal(read_image(path), expected)
    Image.fromarray(stored[:, :, 0]).save(path, exif=exif)
    np.testing.assert_array_equal(read_mask(path), expected[:, :, 0] > 127)


def test_a_file_without_exif_or_with_a_bad_orientation_is_taken_as_stored():
    stored = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    image, tag = read_photograph(_png(stored), "plain.png")
    assert tag == 1
    np.testing.assert_array_equal(image, stored)
    exif = Image.Exif()
    exif[0x0112] = 9  # not one of the eight orientations
    buf = io.BytesIO()
    Image.fromarray(stored).save(buf, format="JPEG", exif=exif)
    image, tag = read_photograph(buf.getvalue(), "odd.jpg")
    assert tag == 1 and image.shape == stored.shape


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
    ds = load_dataset({**cfg, "test_fraction": 1})  # a labelled set only scored
    assert ds.train == [] and len(ds.test) == 5
    with pytest.raises(UserError, match=r"test_fraction 1.5 must be in \[0, 1\]"):
        load_dataset({**cfg, "test_fraction": 1.5})
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


# ----------------------------------------------------------------------------- CHASE_DB1 and HRF fakes

CHASE_IDS = [f"Image_{i:02d}{eye}" for i in range(1, 15) for eye in "LR"]
HRF_GROUPS = {"h": "healthy", "g": "glaucoma", "dr": "diabetic_retinopathy"}
HRF_IDS = [f"{i:02d}_{g}" for g in HRF_GROUPS for i in range(1, 16)]


def _encoded(array, fmt):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def _fake_label(index, shape):
    return (np.random.default_rng(index).random(shape) > 0.8).astype(np.uint8)


def _fake_chase_files(size=16):
    """{name: bytes} of CHASE_DB1's flat layout; image k is filled with grey level 5 k + 20."""
    files = {}
    for k, i in enumerate(CHASE_IDS):
        files[f"{i}.jpg"] = _encoded(np.full((size, size + 2, 3), 5 * k + 20, np.uint8), "JPEG")
        files[f"{i}_1stHO.png"] = _encoded(_fake_label(k, (size, size + 2)) * 255, "PNG")
        files[f"{i}_2ndHO.png"] = _encoded(_fake_label(100 + k, (size, size + 2)) * 255, "PNG")
    return files


def _fake_hrf_files(shape=(16, 24)):
    """{relative path: bytes} of HRF's all.zip layout (images/, manual1/, mask/); the _dr
    photographs keep their upper-case .JPG as released."""
    files = {}
    for k, i in enumerate(HRF_IDS):
        ext = "JPG" if i.endswith("_dr") else "jpg"
        files[f"images/{i}.{ext}"] = _encoded(np.full((*shape, 3), 4 * k + 10, np.uint8), "JPEG")
        files[f"manual1/{i}.tif"] = _encoded(_fake_label(k, shape) * 255, "TIFF")
        mask = np.zeros((*shape, 3), np.uint8)
        mask[2:-2, 2:-2] = 255  # RGB {0, 255}, as HRF's masks are
        files[f"mask/{i}_mask.tif"] = _encoded(mask, "TIFF")
    return files


def _write_folder(root, files):
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _write_zip(path, files, prefix=""):
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for rel, data in files.items():
            zf.writestr(prefix + rel, data)
    return path


def _hrf_group_archives(folder, files, masks=True):
    """HRF's per-group archives: healthy.zip (NN_h.jpg), healthy_manualsegm.zip (NN_h.tif),
    healthy_fovmask.zip (NN_h_mask.tif), and the same for glaucoma and diabetic_retinopathy."""
    parts = {"images": "", "manual1": "_manualsegm"} | ({"mask": "_fovmask"} if masks else {})
    for short, group in HRF_GROUPS.items():
        for sub, suffix in parts.items():
            members = {
                rel.split("/", 1)[1]: data
                for rel, data in files.items()
                if rel.startswith(f"{sub}/") and file_stem(rel).split("_")[1] == short
            }
            _write_zip(folder / f"{group}{suffix}.zip", members)
    return folder


def _same_samples(a, b):
    assert [s.name for s in a] == [s.name for s in b]
    for x, y in zip(a, b, strict=True):
        assert x.image.tobytes() == y.image.tobytes() and x.label.tobytes() == y.label.tobytes()
        assert x.mask.tobytes() == y.mask.tobytes()


def test_chase_db1_folder_and_zip(tmp_path):
    files = _fake_chase_files()
    folder = _write_folder(tmp_path / "data" / "CHASE_DB1", files)
    ds = load_dataset({"name": "chase_db1", "data_root": str(tmp_path / "data")}, tmp_path / "c")
    assert [s.name for s in ds.train] == CHASE_IDS[:20] and [s.name for s in ds.test] == CHASE_IDS[
        20:
    ]
    assert ds.excluded == [] and ds.image_shape == (16, 18) and ds.pad_shape == (1008, 1008)
    for k, s in enumerate(ds.train + ds.test):
        assert abs(int(s.image.mean()) - (5 * k + 20)) <= 1 and s.source == f"chase_db1/{s.name}"
        np.testing.assert_array_equal(s.label, _fake_label(k, (16, 18)))
        np.testing.assert_array_equal(s.second, _fake_label(100 + k, (16, 18)))
        assert s.mask.dtype == bool and s.mask.shape == (16, 18)
    assert len(list((tmp_path / "c" / "fov" / "chase_db1").glob("*.png"))) == 28
    # The release archive, with and without a folder inside, named directly or found in the root.
    release = _write_zip(tmp_path / "zips" / "CHASEDB1.zip", files, prefix="CHASEDB1/")
    for root in (release, tmp_path / "zips", folder):
        again = load_dataset({"name": "chase_db1", "data_root": str(root)}, tmp_path / "c")
        _same_samples(again.train + again.test, ds.train + ds.test)
    flat = _write_zip(tmp_path / "flat.zip", files)
    _same_samples(load_dataset({"name": "chase_db1", "data_root": str(flat)}).test, ds.test)


def test_chase_db1_missing_labels_and_bad_layouts(tmp_path, capsys):
    folder = _write_folder(tmp_path / "CHASE_DB1", _fake_chase_files())
    (folder / "Image_12R_1stHO.png").unlink()
    ds = load_dataset({"name": "chase_db1", "data_root": str(tmp_path)}, tmp_path / "c")
    assert len(ds.test) == 7 and ds.excluded == ["Image_12R"]
    warning = capsys.readouterr().err
    assert "Image_12R" in warning and "left out of scoring" in warning and "7 of 8" in warning
    (folder / "Image_03L_1stHO.png").unlink()
    with pytest.raises(UserError, match="training image Image_03L has no label"):
        load_dataset({"name": "chase_db1", "data_root": str(tmp_path)}, tmp_path / "c")
    (folder / "Image_14L.jpg").unlink()
    with pytest.raises(UserError, match="Image_14L .*missing"):
        load_dataset({"name": "chase_db1", "data_root": str(tmp_path)}, tmp_path / "c")
    (tmp_path / "other").mkdir()
    with pytest.raises(UserError, match="does not hold CHASE_DB1"):
        load_dataset({"name": "chase_db1", "data_root": str(tmp_path / "other")})


def test_hrf_folders_all_zip_and_group_archives(tmp_path, capsys):
    files = _fake_hrf_files()
    _write_folder(tmp_path / "data" / "HRF", files)
    ds = load_dataset({"name": "hrf", "data_root": str(tmp_path / "data")})
    assert [s.name for s in ds.train] == [
        f"{i:02d}_{g}" for g in ("dr", "g", "h") for i in range(1, 6)
    ]
    assert len(ds.test) == 30 and ds.excluded == []
    assert ds.image_shape == (8, 12) and ds.pad_shape == (8, 16)  # half resolution by default
    by_name = {s.name: s for s in ds.train + ds.test}
    for k, i in enumerate(HRF_IDS):
        s = by_name[i]
        assert s.image.shape == (8, 12, 3) and abs(int(s.image.mean()) - (4 * k + 10)) <= 1
        np.testing.assert_array_equal(s.label, _fake_label(k, (16, 24))[1::2, 1::2])  # nearest
        assert s.mask.sum() == 6 * 10 and s.second is None and s.source == f"hrf/{i}"
    full = load_dataset({"name": "hrf", "data_root": str(tmp_path / "data"), "downsample": 1})
    assert full.image_shape == (16, 24)
    np.testing.assert_array_equal(
        full.train[0].label, _fake_label(HRF_IDS.index("01_dr"), (16, 24))
    )
    # all.zip (its three folders at the top), given directly or found in the root
    all_zip = _write_zip(tmp_path / "release" / "all.zip", files)
    for root in (all_zip, all_zip.parent):
        _same_samples(load_dataset({"name": "hrf", "data_root": str(root)}).test, ds.test)
    # the per-group archives, given as the folder or as one of them
    groups = _hrf_group_archives(tmp_path / "groups", files)
    for root in (groups, groups / "healthy.zip"):
        again = load_dataset({"name": "hrf", "data_root": str(root)})
        _same_samples(again.train + again.test, ds.train + ds.test)
    assert capsys.readouterr().err == ""
    # without the *_fovmask archives the masks are generated, and a warning says so
    bare = _hrf_group_archives(tmp_path / "bare", files, masks=False)
    assert len(load_dataset({"name": "hrf", "data_root": str(bare)}).test) == 30
    assert "generating them" in capsys.readouterr().err
    with pytest.raises(UserError, match="dataset.downsample must be 1 or 2"):
        load_dataset({"name": "hrf", "data_root": str(bare), "downsample": 3})


def test_hrf_missing_test_labels_are_left_out(tmp_path, capsys):
    folder = _write_folder(tmp_path / "HRF", _fake_hrf_files())
    for i in ("11_h", "12_h", "13_h"):  # missing from the project's copy too
        (folder / "manual1" / f"{i}.tif").unlink()
    ds = load_dataset({"name": "hrf", "data_root": str(tmp_path)})
    assert (len(ds.train), len(ds.test)) == (15, 27)
    assert ds.excluded == ["11_h", "12_h", "13_h"] and not {"11_h", "12_h", "13_h"} & {
        s.name for s in ds.test
    }
    warning = capsys.readouterr().err.strip()
    assert len(warning.splitlines()) == 1
    assert "11_h, 12_h, 13_h" in warning and "27 of 30 test images scored" in warning
    (folder / "manual1" / "02_g.tif").unlink()
    with pytest.raises(UserError, match="HRF training image 02_g has no label"):
        load_dataset({"name": "hrf", "data_root": str(tmp_path)})
    with pytest.raises(UserError, match="does not hold HRF"):
        load_dataset({"name": "hrf", "data_root": str(folder / "images")})


# ----------------------------------------------------------------------------- CHASE_DB1 and HRF, real


def test_real_chase_db1(real_chase_root, tmp_path):
    ds = load_dataset({"name": "chase_db1", "data_root": str(real_chase_root)}, tmp_path / "c")
    assert (len(ds.train), len(ds.test)) == (20, 8) and ds.excluded == []
    assert ds.image_shape == (960, 999) and ds.pad_shape == (1008, 1008)
    assert ds.train[0].name == "Image_01L" and ds.test[-1].name == "Image_14R"
    for s in ds.train + ds.test:
        assert s.image.shape == (960, 999, 3) and set(np.unique(s.label)) == {0, 1}
        assert set(np.unique(s.second)) == {0, 1} and 0.63 < s.mask.mean() < 0.72
    from data.scale import KNOWN_FOV_DIAMETERS, median_fov_diameter

    assert median_fov_diameter([s.mask for s in ds.train]) == KNOWN_FOV_DIAMETERS["chase_db1"]
    assert abs(np.mean([s.label.mean() for s in ds.train]) - 0.0719) < 0.001


@pytest.mark.slow
def test_real_hrf_half_resolution(real_hrf_root, capsys):
    ds = load_dataset({"name": "hrf", "data_root": str(real_hrf_root)})
    assert len(ds.train) == 15 and ds.image_shape == (1168, 1752) and ds.pad_shape == (1168, 1752)
    # This copy lacks manual1/11_h.tif, 12_h.tif, 13_h.tif (../shared/data/README.md).
    assert ds.excluded == ["11_h", "12_h", "13_h"] and len(ds.test) == 27
    assert "left out of scoring" in capsys.readouterr().err
    for s in ds.train + ds.test:
        assert s.image.shape == (1168, 1752, 3) and set(np.unique(s.label)) == {0, 1}
        assert 0.83 < s.mask.mean() < 0.86
    from data.scale import KNOWN_FOV_DIAMETERS, median_fov_diameter

    assert median_fov_diameter([s.mask for s in ds.train]) == KNOWN_FOV_DIAMETERS["hrf"]
