"""Random-crop training batches (training/crops.py): where the crops come from, the epoch's order,
and the same draws after a resume."""

from __future__ import annotations

import numpy as np
import pytest

from training.crops import CropBatches, ImageBatches

PAD = (40, 48)
EXTENTS = np.array([[40, 48], [20, 30], [40, 24], [12, 12], [33, 47]])


def coded_images():
    """uint8 (5, 40, 48, 3): channel 0 the image index + 1, 1 the row, 2 the column, inside each
    image's extent; zero padding outside. Labels: 1 inside the extent."""
    x = np.zeros((len(EXTENTS), *PAD, 3), np.uint8)
    y = np.zeros((len(EXTENTS), *PAD, 1), np.uint8)
    for i, (h, w) in enumerate(EXTENTS):
        rows, cols = np.mgrid[:h, :w]
        x[i, :h, :w] = np.stack([np.full((h, w), i + 1), rows, cols], axis=-1)
        y[i, :h, :w] = 1
    return x, y


def test_crops_come_from_each_image_inside_its_extent():
    x, y = coded_images()
    batches = CropBatches(x, y, EXTENTS, crop=16, batch_size=2, seed=3)
    assert len(batches) == 3
    seen = []
    for index in range(len(batches)):
        xb, yb = batches[index]
        assert xb.shape == (2, 16, 16, 3) and yb.shape == (2, 16, 16, 1)
        assert xb.dtype == np.float32 and yb.dtype == np.float32 and xb.max() <= 1.0
        codes = np.rint(xb * 255).astype(int)
        picks, corners = batches.windows(index)
        for k, (i, (top, left)) in enumerate(zip(picks, corners, strict=True)):
            h, w = EXTENTS[i]
            assert 0 <= top <= max(h - 16, 0) and 0 <= left <= max(w - 16, 0)
            inside = codes[k, : min(16, h - top), : min(16, w - left)]
            assert (inside[..., 0] == i + 1).all()  # the image the order names
            assert inside[0, 0, 1] == top and inside[0, 0, 2] == left  # at the drawn corner
            # a photograph smaller than the crop keeps its zero padding, label 0 there
            assert codes[k, min(16, h - top) :].sum() == 0 and yb[k, min(16, h - top) :].sum() == 0
            assert yb[k, : min(16, h - top), : min(16, w - left)].min() == 1
            seen.append(int(i))
    # every image once per epoch; the last batch wraps around to the start of the order
    assert sorted(seen[:5]) == [0, 1, 2, 3, 4] and seen[5] == seen[0]


def test_a_margin_lets_windows_reach_past_every_side_into_zeros():
    """With margin m a window's corner lies in [-m, extent - crop + m]; what lies on the image
    is the image at that place, the rest zeros with label 0; margin 0 draws what it drew."""
    x, y = coded_images()
    plain = CropBatches(x, y, EXTENTS, crop=16, batch_size=5, seed=3)
    wide = CropBatches(x, y, EXTENTS, crop=16, batch_size=5, seed=3, margin=6)
    assert [c.tolist() for c in plain.windows(0)] == [
        c.tolist() for c in CropBatches(x, y, EXTENTS, 16, 5, 3, margin=0).windows(0)
    ]
    outside = 0
    for epoch in range(20):
        wide.epoch = epoch
        xb, yb = wide[0]
        codes = np.rint(xb * 255).astype(int)
        picks, corners = wide.windows(0)
        for k, (i, (top, left)) in enumerate(zip(picks, corners, strict=True)):
            h, w = EXTENTS[i]
            assert -6 <= top <= max(h - 16, 0) + 6 and -6 <= left <= max(w - 16, 0) + 6
            rows, cols = np.mgrid[top : top + 16, left : left + 16]
            on = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
            assert (codes[k, ..., 0][on] == i + 1).all() and (codes[k][~on] == 0).all()
            assert (codes[k, ..., 1][on] == rows[on]).all() and (
                codes[k, ..., 2][on] == cols[on]
            ).all()
            assert (yb[k, ..., 0] == on).all()
            outside += int(top < 0 or left < 0)
    assert outside > 0  # the margin is used above and left too


def test_each_epoch_draws_anew_and_a_resume_draws_the_same():
    x, y = coded_images()
    run = CropBatches(x, y, EXTENTS, crop=8, batch_size=2, seed=7)
    epochs = []
    for _ in range(3):
        epochs.append([run.windows(i) for i in range(len(run))])
        run.on_epoch_end()  # Keras calls it after each epoch
    first, second = epochs[0], epochs[1]
    assert any(
        not np.array_equal(a[1], b[1]) or not np.array_equal(a[0], b[0])
        for a, b in zip(first, second, strict=True)
    )
    resumed = CropBatches(x, y, EXTENTS, crop=8, batch_size=2, seed=7, initial_epoch=2)
    for (picks, corners), index in zip(epochs[2], range(len(resumed)), strict=True):
        again = resumed.windows(index)
        assert np.array_equal(picks, again[0]) and np.array_equal(corners, again[1])
    other_seed = CropBatches(x, y, EXTENTS, crop=8, batch_size=2, seed=8)
    assert any(not np.array_equal(a[1], other_seed.windows(i)[1]) for i, a in enumerate(first))


def test_without_shuffle_the_order_is_the_arrays():
    x, y = coded_images()
    batches = CropBatches(x, y, EXTENTS, crop=8, batch_size=5, seed=0, shuffle=False)
    assert batches.windows(0)[0].tolist() == [0, 1, 2, 3, 4]


def test_validation_batches_are_the_whole_images_in_order():
    x, y = coded_images()
    batches = ImageBatches(x, y, batch_size=2)
    assert len(batches) == 3
    xs, ys = zip(*(batches[i] for i in range(len(batches))), strict=True)
    assert [len(b) for b in xs] == [2, 2, 1]
    assert np.array_equal(np.rint(np.concatenate(xs) * 255).astype(np.uint8), x)
    assert np.array_equal(np.concatenate(ys), y.astype(np.float32))
    assert xs[0].dtype == np.float32 and ys[0].dtype == np.float32


def test_camera_changes_are_seeded_and_leave_the_labels():
    """camera=0 draws nothing (the batches are those of a run without it); camera=1 changes the
    crops, not the labels, the same way in a resumed run and anew each epoch."""
    x, y = coded_images()
    x[..., 0] *= 40  # brighter codes, so that every change shows
    plain = CropBatches(x, y, EXTENTS, crop=16, batch_size=2, seed=3)
    off = CropBatches(x, y, EXTENTS, crop=16, batch_size=2, seed=3, camera=0.0)
    on = CropBatches(x, y, EXTENTS, crop=16, batch_size=2, seed=3, camera=1.0)
    for i in range(len(plain)):
        (xp, yp), (xo, yo), (xc, yc) = plain[i], off[i], on[i]
        assert np.array_equal(xp, xo) and np.array_equal(yp, yo)
        assert np.array_equal(yp, yc) and xc.shape == xp.shape and xc.dtype == np.float32
    changed = [not np.array_equal(on[i][0], plain[i][0]) for i in range(len(on))]
    assert sum(changed) >= 2
    resumed = CropBatches(x, y, EXTENTS, crop=16, batch_size=2, seed=3, initial_epoch=1, camera=1.0)
    on.on_epoch_end()
    plain.on_epoch_end()
    assert all(np.array_equal(on[i][0], resumed[i][0]) for i in range(len(on)))
    again = CropBatches(x, y, EXTENTS, crop=16, batch_size=2, seed=3, camera=1.0)
    assert not all(np.array_equal(on[i][0], again[i][0]) for i in range(len(on)))


def test_the_camera_mix_basic_draws_as_before_and_clinic_changes_more():
    """camera_changes "basic" (the default) gives the batches recorded before the option existed
    (commit f4898e7); "clinic" leaves the labels and positions, changes the crops otherwise, and
    draws them again after a resume. The config takes clinic with camera_augment."""
    import hashlib

    from training.config import resolve_run_config

    x, y = coded_images()
    x[..., 0] *= 40
    basic = CropBatches(x, y, EXTENTS, crop=16, batch_size=2, seed=3, camera=0.5)
    digest = hashlib.sha256()
    for i in range(len(basic)):
        digest.update(basic[i][0].tobytes())
    assert digest.hexdigest() == "61d184e901e4571e2509d8253c439fddd11c5035cd851798b11f64517b67d22b"
    on = CropBatches(x, y, EXTENTS, crop=16, batch_size=2, seed=3, camera=1.0)
    clinic = CropBatches(x, y, EXTENTS, 16, 2, 3, camera=1.0, camera_changes="clinic")
    for i in range(len(on)):
        assert np.array_equal(on.windows(i)[1], clinic.windows(i)[1])
        assert np.array_equal(on[i][1], clinic[i][1])
    assert any(not np.array_equal(on[i][0], clinic[i][0]) for i in range(len(on)))
    resumed = CropBatches(x, y, EXTENTS, 16, 2, 3, 1, camera=1.0, camera_changes="clinic")
    clinic.on_epoch_end()
    assert all(np.array_equal(clinic[i][0], resumed[i][0]) for i in range(len(clinic)))
    overrides = ["train.crop_size=32", "train.camera_augment=0.5", "train.camera_changes=clinic"]
    assert resolve_run_config("configs/demo.yaml", overrides)["train"]["camera_changes"] == "clinic"
    assert resolve_run_config("configs/demo.yaml")["train"]["camera_changes"] == "basic"


def test_zoomed_crops_are_resized_windows_with_their_labels():
    """zoom=None draws nothing; a fixed zoom of 2 cuts windows of half the crop's side, inside the
    image's extent, and enlarges image and label together; drawn zooms stay in the range, vary, and
    come back the same after a resume."""
    x, y = coded_images()
    plain = CropBatches(x, y, EXTENTS, crop=16, batch_size=2, seed=3)
    off = CropBatches(x, y, EXTENTS, crop=16, batch_size=2, seed=3, zoom=None)
    double = CropBatches(x, y, EXTENTS, crop=16, batch_size=2, seed=3, zoom=(2, 2))
    for i in range(len(plain)):
        assert all(np.array_equal(a, b) for a, b in zip(plain[i], off[i], strict=True))
        assert double.sides(i).tolist() == [8, 8]
        picks, corners = double.windows(i)
        xb, yb = double[i]
        for k, (pick, (top, left)) in enumerate(zip(picks, corners, strict=True)):
            h, w = EXTENTS[pick]
            assert top + min(8, h) <= h and left + min(8, w) <= w  # inside the extent when it fits
            codes = np.rint(xb[k] * 255).astype(int)
            # enlarged x2: row and column codes rise by a half per pixel from the window's corner
            inside = yb[k, ..., 0] == 1
            assert (
                abs(codes[4, 4, 1] - (top + 1.75)) <= 1 and abs(codes[4, 4, 2] - (left + 1.75)) <= 1
            )
            assert set(np.unique(yb[k])) <= {0.0, 1.0}
            if h >= 8 and w >= 8:
                assert inside.all() and (codes[..., 0] == pick + 1).all()
    small = CropBatches(x, y, EXTENTS, crop=16, batch_size=2, seed=3, zoom=(0.5, 1.5))
    sides = np.concatenate([small.sides(i) for i in range(len(small))])
    assert sides.min() >= 11 and sides.max() <= 32 and len(set(sides.tolist())) > 1
    for i in range(len(small)):
        xb, yb = small[i]
        assert xb.shape == (2, 16, 16, 3) and yb.shape == (2, 16, 16, 1)
    resumed = CropBatches(
        x, y, EXTENTS, crop=16, batch_size=2, seed=3, initial_epoch=1, zoom=(0.5, 1.5)
    )
    small.on_epoch_end()
    assert all(np.array_equal(small[i][0], resumed[i][0]) for i in range(len(small)))
    assert all(np.array_equal(small.sides(i), resumed.sides(i)) for i in range(len(small)))


def test_scale_augment_config_is_checked():
    from training.config import resolve_run_config
    from utils.errors import UserError

    cfg = resolve_run_config(
        "configs/demo.yaml", ["train.crop_size=32", "train.scale_augment=[0.7, 1.4]"]
    )
    assert cfg["train"]["scale_augment"] == [0.7, 1.4]
    for bad in ("[1.4, 0.7]", "[0, 1]", "0.7", "[0.7, 1.4, 2]"):
        with pytest.raises(UserError, match="scale_augment must be"):
            resolve_run_config(
                "configs/demo.yaml", ["train.crop_size=32", f"train.scale_augment={bad}"]
            )
    with pytest.raises(UserError, match="set train.crop_size too"):
        resolve_run_config("configs/demo.yaml", ["train.scale_augment=[0.7, 1.4]"])
    assert (
        resolve_run_config("configs/demo.yaml", ["train.crop_size=32", "train.crop_margin=8"])[
            "train"
        ]["crop_margin"]
        == 8
    )
    for bad in ("-1", "2.5", "true"):
        with pytest.raises(UserError, match="crop_margin must be"):
            resolve_run_config(
                "configs/demo.yaml", ["train.crop_size=32", f"train.crop_margin={bad}"]
            )
    with pytest.raises(UserError, match="set train.crop_size too"):
        resolve_run_config("configs/demo.yaml", ["train.crop_margin=8"])


def test_crop_size_must_suit_the_model(tmp_path):
    from training.config import resolve_run_config
    from training.trainer import train
    from utils.errors import UserError

    cfg = resolve_run_config(
        "configs/demo.yaml", ["train.crop_size=36", "train.epochs=1", "train.tensorboard=false"]
    )
    with pytest.raises(UserError, match="train.crop_size must be a multiple of 8"):
        train(cfg, tmp_path / "run", cache_dir=tmp_path / "cache", evaluate=False, verbose=0)
    with pytest.raises(UserError, match="train.crop_size must be a positive integer"):
        resolve_run_config("configs/demo.yaml", ["train.crop_size=0"])


@pytest.mark.slow
def test_a_run_on_crops_trains_resumes_and_evaluates(tmp_path, monkeypatch):
    """The demo on 32 x 32 crops, half of them through a random camera: one epoch, stopped, then
    resumed for a second one."""
    import training.trainer
    from training.config import resolve_run_config
    from training.run_folder import read_history
    from training.trainer import train

    shares = []

    class Recorded(CropBatches):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            shares.append((self.camera, self.zoom))

    monkeypatch.setattr(training.trainer, "CropBatches", Recorded)
    overrides = ["train.crop_size=32", "train.camera_augment=0.5", "train.epochs=1"]
    overrides += ["train.scale_augment=[0.8, 1.25]"]
    overrides += ["train.tensorboard=false"]
    overrides += ["evaluate.save_images=false", "evaluate.engine=keras"]
    cfg = resolve_run_config("configs/demo.yaml", overrides)
    run = tmp_path / "run"
    first = train(cfg, run, cache_dir=tmp_path / "cache", evaluate=False, verbose=0)
    assert first["epochs_done"] == 1
    cfg = resolve_run_config("configs/demo.yaml", [*overrides[:2], "train.epochs=2"])
    second = train(
        cfg, run, resume=True, overrides=["train.epochs=2"], cache_dir=tmp_path / "cache", verbose=0
    )
    assert second["epochs_done"] == 2 and np.isfinite(read_history(run / "history.csv")[-1]["loss"])
    assert second["eval"]["n_images"] > 0
    assert shares == [(0.5, (0.8, 1.25))] * 2


def test_zoomed_crops_keep_artery_vein_classes_and_the_vessel_path():
    """A class map (data.av) through zoomed crops: the same windows and images as its vessel map
    gives, the same vessel pixels, which the earlier formula (the label x 255, bilinear,
    >= 128) gives bit for bit; only classes of the map, each drawn where that class lies."""
    from PIL import Image

    x, _ = coded_images()
    rng = np.random.default_rng(4)
    classes = np.zeros((len(EXTENTS), *PAD, 1), np.uint8)
    classes[:, 10:30, ::2] = rng.integers(1, 5, size=(len(EXTENTS), 20, PAD[1] // 2, 1))
    classes[:, :, 20:24] = 2  # a vein running down every image
    vessels = (classes != 0).astype(np.uint8)
    seen = set()
    for zoom in ((2, 2), (0.5, 1.5)):
        by_class = CropBatches(x, classes, EXTENTS, crop=16, batch_size=2, seed=3, zoom=zoom)
        by_vessel = CropBatches(x, vessels, EXTENTS, crop=16, batch_size=2, seed=3, zoom=zoom)
        for i in range(len(by_class)):
            (xc, yc), (xv, yv) = by_class[i], by_vessel[i]
            np.testing.assert_array_equal(xc, xv)
            np.testing.assert_array_equal(yc != 0, yv == 1)
            picks, corners = by_vessel.windows(i)
            for k, (pick, (top, left), side) in enumerate(
                zip(picks, corners, by_vessel.sides(i), strict=True)
            ):
                if side == 16:
                    continue
                window = np.zeros((side, side), np.uint8)
                part = vessels[pick, max(top, 0) : top + side, max(left, 0) : left + side, 0]
                window[: part.shape[0], : part.shape[1]] = part * 255
                earlier = np.asarray(Image.fromarray(window).resize((16, 16), Image.BILINEAR))
                np.testing.assert_array_equal(yv[k, ..., 0], earlier >= 128)
            assert set(np.unique(yc)) <= {0.0, 1.0, 2.0, 3.0, 4.0}
            seen |= set(np.unique(yc).tolist())
            # The down-running vein stays a vein in the middle of its width.
            assert (yc[..., 0] == 2).any()
    assert seen == {0.0, 1.0, 2.0, 3.0, 4.0}
