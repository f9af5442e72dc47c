"""predict.py: any size, folders, streaming, resume after SIGKILL, bad files skipped, --save,
--recursive, --overwrite, measurements.csv and its quality record, EXIF orientation, refusals
before Keras is imported."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from data.synthetic import synthetic_sample
from models import build_model
from tests.helpers import ROOT, run_python
from tests.test_config import NO_KERAS
from utils.cli import run_cli

KINDS = ("prob", "binary", "overlay", "fov")


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """An untrained, narrow SA-UNetv2 (start_neurons 8) saved as .keras: mechanics need no training."""
    path = tmp_path_factory.mktemp("weights") / "tiny.keras"
    build_model("sa_unetv2", start_neurons=8).save(path)
    return path


def photo(path, size=64, seed=0, shape_hw=None):
    """A synthetic fundus photograph (dark surround, so it has a field of view) saved at `path`."""
    image = Image.fromarray(synthetic_sample(size, seed, 1, 0).image)
    if shape_hw is not None:
        image = image.resize((shape_hw[1], shape_hw[0]))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=90) if path.suffix == ".jpg" else image.save(path)
    return path


def predict(argv, capsys):
    """predict.py's main in this process: (exit status, stdout, stderr)."""
    from predict import main

    code = run_cli(main, [str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def complete(path):
    """True if `path` is an image that decodes to its last byte."""
    with Image.open(path) as image:
        image.load()
    return True


@pytest.mark.slow
def test_any_size_and_folders(tmp_path, tiny_weights):
    folder = tmp_path / "photos"
    photo(folder / "a.png", shape_hw=(100, 90))
    Image.open(folder / "a.png").convert("RGB").save(folder / "b.jpg")
    (folder / "notes.txt").write_text("not an image")
    single = photo(tmp_path / "c.png", seed=1, shape_hw=(64, 72))
    out = tmp_path / "pred"
    result = run_python(
        ["predict.py", "--weights", str(tiny_weights), "--out", str(out), str(folder), str(single)]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "3 done, 0 skipped (already complete), 0 failed" in result.stdout
    assert "scale factor" not in result.stdout  # the per-photograph line is --verbose's
    for stem, size in (("a", (90, 100)), ("b", (90, 100)), ("c", (72, 64))):
        for kind in KINDS:
            assert Image.open(out / f"{stem}_{kind}.png").size == size, (stem, kind)
        binary = np.asarray(Image.open(out / f"{stem}_binary.png"))
        fov = np.asarray(Image.open(out / f"{stem}_fov.png"))
        assert set(np.unique(binary)) <= {0, 255}
        assert not (binary[fov == 0]).any()  # vessels only inside the field of view
    assert not (out / "notes_prob.png").exists()


def test_save_recursive_overwrite_verbose(tmp_path, tiny_weights, capsys):
    photos = tmp_path / "cohort"
    for name in ("x.png", "left/y.png", "left/deep/z.jpg"):
        photo(photos / name, seed=len(name))
    out = tmp_path / "out"
    args = ["--weights", tiny_weights, "--out", out, "--engine", "keras", "--scale", "1"]
    # Without --recursive only the top folder's image.
    code, stdout, _ = predict([*args, "--save", "binary,fov", photos], capsys)
    assert code == 0 and "1 done, 0 skipped" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["x_binary.png", "x_fov.png"]
    code, stdout, _ = predict([*args, "--save", "binary,fov", "--recursive", "--verbose", photos], capsys)
    assert code == 0 and "2 done, 1 skipped (already complete), 0 failed" in stdout
    assert (out / "left" / "y_binary.png").is_file() and (out / "left" / "deep" / "z_fov.png").is_file()
    assert not list(out.rglob("*_prob.png")) and not list(out.rglob("*_overlay.png"))
    assert stdout.count("scale factor 1.000") == 2  # --verbose: a line per photograph predicted
    before = (out / "x_binary.png").stat().st_mtime_ns
    code, stdout, _ = predict([*args, "--recursive", "--save", "binary", photos], capsys)
    assert code == 0 and "0 done, 3 skipped" in stdout
    time.sleep(0.01)
    code, stdout, _ = predict([*args, "--recursive", "--save", "binary", "--overwrite", photos], capsys)
    assert code == 0 and "3 done, 0 skipped" in stdout
    assert (out / "x_binary.png").stat().st_mtime_ns > before
    # Asking for a picture not written yet redoes the photographs that lack it.
    code, stdout, _ = predict([*args, "--recursive", "--save", "overlay", photos], capsys)
    assert code == 0 and "3 done, 0 skipped" in stdout and (out / "left" / "y_overlay.png").is_file()


def test_bad_files_are_skipped_and_the_run_goes_on(tmp_path, tiny_weights, capsys):
    folder = tmp_path / "photos"
    for i in range(3):
        photo(folder / f"good{i}.png", seed=i)
    (folder / "garbage.jpg").write_bytes(b"this is not a JPEG at all")
    truncated = photo(folder / "cut.png", seed=9, size=96)
    truncated.write_bytes(truncated.read_bytes()[:200])
    out = tmp_path / "out"
    args = ["--weights", tiny_weights, "--out", out, "--engine", "keras", "--scale", "1", "--measure"]
    code, stdout, stderr = predict([*args, folder], capsys)
    assert code == 1
    skipped = [line for line in stderr.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == 2, stderr
    assert any("garbage.jpg" in line for line in skipped) and any("cut.png" in line for line in skipped)
    assert "3 done, 0 skipped (already complete), 2 failed" in stdout
    for i in range(3):
        assert all(complete(out / f"good{i}_{kind}.png") for kind in KINDS)
    assert not list(out.glob("garbage_*")) and not list(out.glob("cut_*"))
    with (out / "measurements.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["image"] for r in rows) == ["good0", "good1", "good2"]
    assert 0 < float(rows[0]["area_fraction"]) < 1 and float(rows[0]["mm_per_pixel"]) > 0
    # The bad ones are tried again next time (and fail again); the good ones are skipped.
    code, stdout, _ = predict([*args, folder], capsys)
    assert code == 1 and "0 done, 3 skipped (already complete), 2 failed" in stdout


@pytest.mark.slow
def test_resume_after_sigkill(tmp_path, tiny_weights):
    """50 photographs, the run killed (SIGKILL) part way, the same command again: the finished ones
    skipped, the rest done, every picture complete, no temporary file left, one CSV row each."""
    folder = tmp_path / "cohort"
    for i in range(50):
        photo(folder / f"p{i:02d}.jpg", size=96, seed=i, shape_hw=(384, 384))
    out = tmp_path / "out"
    command = [sys.executable, "predict.py", "--weights", str(tiny_weights), "--out", str(out),
               "--scale", "1", "--measure", str(folder)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while len(list(out.glob("*_fov.png"))) < 8 and first.poll() is None:
        assert time.monotonic() < deadline, "the first run wrote nothing in 300 s"
        time.sleep(0.005)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    finished = {p.name[: -len("_fov.png")] for p in out.glob("*_fov.png")}
    assert 8 <= len(finished) < 50, len(finished)

    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    summary = second.stdout.splitlines()[-1].split()  # "N done, M skipped ..."
    done, skipped = int(summary[0]), int(summary[2])
    assert done + skipped == 50 and skipped >= 1 and done >= 1, second.stdout
    for i in range(50):
        assert all(complete(out / f"p{i:02d}_{kind}.png") for kind in KINDS)
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left"
    with (out / "measurements.csv").open() as handle:
        names = [row["image"] for row in csv.DictReader(handle)]
    assert sorted(names) == [f"p{i:02d}" for i in range(50)]  # one row each, none twice


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--save", "prob,veins"], "--save takes a comma-separated list of prob, binary, overlay, fov"),
        (["--weights", "none.keras"], "weights file none.keras does not exist"),
        (["--fov-degrees", "0"], "--fov-degrees must be a positive number"),
        (["--threshold", "1.5"], "--threshold must be 'auto' or a number in [0, 1], got 1.5"),
        (["--workers", "-1"], "--workers must be 0 or more, got -1"),
        (["--shard", "3/2"], "--shard must be K/N, shard K of N with whole numbers 1 <= K <= N"),
        (["NOT_AN_IMAGE"], "is not an image file"),
        (["EMPTY"], "holds no image files"),
        (["MASK"], "mask"),
        (["TWICE"], "would both write"),
    ],
)  # fmt: skip
def test_bad_command_lines_are_refused_before_keras_is_imported(tmp_path, tiny_weights, extra, message):
    image = photo(tmp_path / "p.png")
    (tmp_path / "notes.png").write_text("a text file with an image name")
    (tmp_path / "empty").mkdir()
    Image.new("L", (32, 32), 255).save(tmp_path / "m.png")
    photo(tmp_path / "twice" / "p.jpg")
    inputs = {
        "NOT_AN_IMAGE": [str(tmp_path / "notes.png")],
        "EMPTY": [str(tmp_path / "empty")],
        "MASK": ["--mask", str(tmp_path / "m.png"), str(image)],
        "TWICE": [str(image), str(tmp_path / "twice")],
    }
    args = ["--weights", str(tiny_weights), "--out", str(tmp_path / "out")]
    for item in extra:
        args += inputs.get(item, [item])
    if not any(item in inputs for item in extra):
        args.append(str(image))
    result = run_python(["-c", NO_KERAS, "predict.py", *args])
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "out").exists()


class _HalfPredictor:
    """Probability 0.6 everywhere, at once: the network is never the slow stage."""

    name, multiple = "constant", 8

    def predict(self, batch):
        return np.full((*batch.shape[:3], 1), 0.6, dtype=np.float32)


def test_lock_step_holds_at_most_three_photographs(tmp_path, tiny_weights, monkeypatch):
    """Slow writers and an instant network: still at most three decoded photographs alive (the one
    being written, the one segmented, the one read ahead), whatever the cohort's length."""
    import weakref

    from inference import pipeline

    for i in range(9):
        photo(tmp_path / "in" / f"p{i}.png", size=64, seed=i)
    alive: set[str] = set()
    most = [0]
    read, write = pipeline._read, pipeline._write_picture

    def counting_read(job, *args):
        item = read(job, *args)
        alive.add(job.name)
        weakref.finalize(item.image, alive.discard, job.name)
        most[0] = max(most[0], len(alive))
        return item

    def slow_write(*args):
        time.sleep(0.05)
        write(*args)

    monkeypatch.setattr(pipeline, "_read", counting_read)
    monkeypatch.setattr(pipeline, "_write_picture", slow_write)
    jobs = pipeline.collect_inputs([str(tmp_path / "in")])
    options = pipeline.PredictOptions(scale=1.0, measure=True)
    summary = pipeline.predict_files(
        jobs, tiny_weights, tmp_path / "out", options, predictor=_HalfPredictor()
    )
    assert (summary.done, summary.failed) == (9, 0)
    assert most[0] == 3, most[0]
    assert all(complete(tmp_path / "out" / f"p{i}_{k}.png") for i in range(9) for k in KINDS)


def test_memory_is_handed_back_to_the_system():
    """In a child process (the allocator setting is process-wide): on glibc both calls take."""
    code = (
        "from inference.pipeline import _malloc_trim, map_large_arrays, release_memory\n"
        "release_memory()\n"
        "print(map_large_arrays(), _malloc_trim() is not None)"
    )
    result = run_python(["-c", code])
    assert result.returncode == 0, result.stderr
    if sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION"):
        assert result.stdout.split() == ["True", "True"]


def test_no_workers_runs_every_stage_on_the_calling_thread(tmp_path, tiny_weights, monkeypatch):
    """--workers 0: the same pictures and rows as with the worker threads, a bad file still skipped,
    and no stage leaves the calling thread."""
    import threading

    from inference import pipeline

    for i in range(4):
        photo(tmp_path / "in" / f"p{i}.png", size=64, seed=i)
    (tmp_path / "in" / "p2.png").write_bytes(b"not a PNG")
    threads: set[str] = set()
    read, write = pipeline._read, pipeline._write_picture

    def where_read(*args):
        threads.add(threading.current_thread().name)
        return read(*args)

    def where_write(*args):
        threads.add(threading.current_thread().name)
        write(*args)

    jobs = pipeline.collect_inputs([str(tmp_path / "in")])
    outputs = {}
    for workers in (2, 0):
        threads.clear()
        monkeypatch.setattr(pipeline, "_read", where_read)
        monkeypatch.setattr(pipeline, "_write_picture", where_write)
        options = pipeline.PredictOptions(scale=1.0, measure=True, workers=workers)
        out = tmp_path / f"out{workers}"
        summary = pipeline.predict_files(jobs, tiny_weights, out, options, predictor=_HalfPredictor())
        assert (summary.done, summary.failed) == (3, 1)
        outputs[workers] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
        on_caller = threads == {threading.current_thread().name}
        assert on_caller == (workers == 0), threads
    assert len(outputs[0]) == 3 * len(KINDS) + 1 and outputs[0] == outputs[2]


def test_default_weights_and_the_auto_threshold(tmp_path, tiny_weights, capsys):
    """Without --weights: the fundus weights when shipped, else DRIVE's, and the run says which;
    --threshold auto takes the threshold the weights' yaml records, 0.5 without one."""
    import shutil

    from predict import default_weights, resolve_threshold
    from utils.config import save_config
    from utils.errors import UserError

    folder = tmp_path / "weights"
    folder.mkdir()
    with pytest.raises(UserError, match="no --weights given"):
        default_weights(folder)
    drive = shutil.copyfile(tiny_weights, folder / "sa_unetv2_drive.keras")
    assert default_weights(folder) == drive
    fundus = shutil.copyfile(tiny_weights, folder / "sa_unetv2_fundus.keras")
    assert default_weights(folder) == fundus
    assert resolve_threshold("auto", fundus) == (0.5, "the weights record no chosen threshold")
    save_config({"evaluate": {"threshold": 0.5, "chosen_threshold": 0.42}}, folder / "sa_unetv2_fundus.yaml")
    assert resolve_threshold("auto", fundus) == (0.42, "chosen on the weights' validation images")
    folded = {"threshold": 0.5, "chosen_threshold": 0.5, "folded_threshold": 0.74}
    save_config({"evaluate": folded}, folder / "sa_unetv2_fundus.yaml")
    assert resolve_threshold("auto", fundus) == (
        0.5,
        "chosen on the weights' validation images, 0.74 folded into them",
    )
    assert resolve_threshold(0.3, fundus) == (0.3, "--threshold")

    # As a user runs it: the shipped weights, named in the first line.
    image = photo(tmp_path / "in" / "p.png", size=64)
    code, stdout, _ = predict(["--out", tmp_path / "out", "--engine", "keras", image], capsys)
    assert code == 0, stdout
    shipped = default_weights()
    assert stdout.splitlines()[0] == (
        f"weights weights/{shipped.name} (the default; --weights to choose others), threshold "
        f"{resolve_threshold('auto', shipped)[0]:.2f} ({resolve_threshold('auto', shipped)[1]}), "
        "--scale vessels"
    )
    assert all(complete(tmp_path / "out" / f"p_{kind}.png") for kind in KINDS)


def test_tta_writes_the_mean_of_the_photograph_and_its_mirror_image(tmp_path, tiny_weights, capsys):
    """--tta: the probability map written is `segment`'s mean of the photograph's map and its
    mirror image's (as evaluate.py --tta scores it), and the first line says so."""
    from data.io import read_image
    from inference.engines import make_predictor
    from inference.outputs import probability_png
    from inference.segment import segment

    image = photo(tmp_path / "in" / "p.png", size=64, seed=4)
    args = ["--weights", tiny_weights, "--engine", "keras", "--scale", "1", "--save", "prob"]
    code, stdout, _ = predict([*args, "--tta", "--out", tmp_path / "tta", image], capsys)
    assert code == 0 and stdout.splitlines()[0].endswith(", each photograph also predicted mirrored (--tta)")
    code, _, _ = predict([*args, "--out", tmp_path / "plain", image], capsys)
    assert code == 0
    written = {name: np.asarray(Image.open(tmp_path / name / "p_prob.png")) for name in ("tta", "plain")}
    rgb = read_image(image)
    predictor = make_predictor(tiny_weights, "keras")
    expected = probability_png(segment(predictor, rgb, mirror=True))
    np.testing.assert_allclose(written["tta"], expected, atol=1)
    mirrored = segment(predictor, np.ascontiguousarray(rgb[:, ::-1]))[:, ::-1]
    assert not np.allclose(written["plain"], probability_png(mirrored), atol=1)  # the mirror matters


class _DarkLinePredictor:
    """Vessel probability from the photograph alone: how much darker the green channel is than
    its 9 x 9 neighbourhood (vessels of the synthetic photographs are darker in green)."""

    name, multiple = "dark-lines", 8

    def predict(self, batch):
        from scipy import ndimage

        green = batch[0, :, :, 1]
        local = ndimage.uniform_filter(green, 9)
        prob = np.clip(4.0 * (local - green) / np.maximum(local, 1e-3), 0.0, 1.0)
        return prob[None, :, :, None].astype(np.float32)


def test_exif_orientation_gives_maps_as_the_photograph_is_displayed(tmp_path):
    """A JPEG stored turned a quarter (EXIF orientation 6, as a camera held upright writes it)
    gives every map at the displayed size, on the vessels of the upright photograph: the same
    maps as its pixels turned upright beforehand, nearly the same as the upright photograph
    saved directly; measurements.csv records the tag (1 where there is none)."""
    from inference import pipeline

    sample = synthetic_sample(128, 7, 1, 0)
    upright = np.pad(sample.image, ((0, 0), (0, 40), (0, 0)))  # 128 x 168: width != height
    label = np.pad(sample.label, ((0, 0), (0, 40))).astype(bool)
    folder = tmp_path / "in"
    folder.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned a quarter anticlockwise: shown turned a quarter clockwise
    Image.fromarray(np.rot90(upright, 1)).save(folder / "turned.jpg", quality=95, exif=exif)
    Image.fromarray(upright).save(folder / "upright.jpg", quality=95)
    with Image.open(folder / "turned.jpg") as stored:  # its pixels turned upright by hand
        Image.fromarray(np.rot90(np.asarray(stored), -1)).save(folder / "by_hand.png")
    options = pipeline.PredictOptions(scale=1.0, measure=True, measure_images=True)
    jobs = pipeline.collect_inputs([str(folder)])
    out = tmp_path / "out"
    summary = pipeline.predict_files(jobs, tmp_path / "none.keras", out, options,
                                     predictor=_DarkLinePredictor())  # fmt: skip
    assert (summary.done, summary.failed) == (3, 0)
    for name in ("turned", "upright", "by_hand"):
        for kind in (*KINDS, "calibre"):
            assert Image.open(out / f"{name}_{kind}.png").size == (168, 128), (name, kind)
    names = ("turned", "upright", "by_hand")
    binary = {n: np.asarray(Image.open(out / f"{n}_binary.png")) > 0 for n in names}
    np.testing.assert_array_equal(binary["turned"], binary["by_hand"])
    assert np.mean(binary["turned"] == binary["upright"]) > 0.99
    # The vessels found lie on the upright photograph's vessels, not on them turned.
    found = binary["turned"]
    assert found.sum() > 200
    on_vessels, on_turned = np.mean(label[found]), np.mean(label[::-1, ::-1][found])
    assert on_vessels > 0.9 and on_turned < 0.2, (on_vessels, on_turned)  # 0.98 and 0.07
    with (out / "measurements.csv").open() as handle:
        rows = {row["image"]: row for row in csv.DictReader(handle)}
    orientations = {n: rows[n]["orientation"] for n in names}
    assert orientations == {"turned": "6", "upright": "1", "by_hand": "1"}


def test_measurements_carry_the_quality_record_and_flag_a_photograph_without_fov(tmp_path):
    """measurements.csv: the quality columns for every photograph; one without a field of view
    is kept, marked "check" with no_fov, and its warning is in its row; the run's last line
    counts the photographs to check."""
    from data.quality import MIN_AREA_FRACTION, MIN_SHARPNESS
    from inference import pipeline

    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(synthetic_sample(560, 3, 1, 0).image).save(folder / "fundus.png")
    noise = np.random.default_rng(0).normal(0, 3, (400, 480, 3))
    flat = np.clip(np.array([170, 90, 40]) + noise, 0, 255).astype(np.uint8)  # no dark surround
    Image.fromarray(flat).save(folder / "flat.png")
    out = tmp_path / "out"
    jobs = pipeline.collect_inputs([str(folder)])
    summary = pipeline.predict_files(jobs, tmp_path / "none.keras", out,
                                     pipeline.PredictOptions(measure=True, save=("binary",)),
                                     predictor=_DarkLinePredictor())  # fmt: skip
    assert (summary.done, summary.failed) == (2, 0)
    with (out / "measurements.csv").open() as handle:
        reader = csv.DictReader(handle)
        rows = {row["image"]: row for row in reader}
    assert reader.fieldnames == pipeline.measurement_columns()
    for column in ("quality", "quality_reasons", "orientation", "fov_found", "fov_diameter_px",
                   "scale_factor", "brightness_median", "underexposed_fraction",
                   "overexposed_fraction", "sharpness", "area_fraction", "warnings"):  # fmt: skip
        assert column in reader.fieldnames, column
    fundus, flat = rows["fundus"], rows["flat"]
    assert fundus["fov_found"] == "True" and float(fundus["fov_diameter_px"]) > 450
    assert float(fundus["scale_factor"]) == 1.0 and float(fundus["sharpness"]) > MIN_SHARPNESS
    assert fundus["warnings"] == "" and fundus["orientation"] == "1"
    # The stand-in network finds the thinnest lines only: too few vessels for a fundus photograph.
    assert float(fundus["area_fraction"]) < MIN_AREA_FRACTION
    assert (fundus["quality"], fundus["quality_reasons"]) == ("check", "vessel_area")
    assert flat["quality"] == "check" and flat["quality_reasons"].split(";")[0] == "no_fov"
    assert flat["fov_found"] == "False" and flat["fov_diameter_px"] == ""
    assert "no field of view found" in flat["warnings"] and "flat.png" in flat["warnings"]
    flagged = sum(row["quality"] == "check" for row in rows.values())
    assert summary.flagged == flagged
    assert summary.line(out).endswith(f"; {flagged} to check (quality column of measurements.csv)")


def test_artery_vein_weights_are_refused_in_one_sentence(tmp_path, capsys):
    weights = tmp_path / "av.keras"
    build_model("sa_unetv2_av", start_neurons=8).save(weights)
    source = photo(tmp_path / "a.png")
    code, stdout, stderr = predict(
        ["--weights", weights, "--out", tmp_path / "out", "--engine", "keras", source], capsys
    )
    assert code == 2 and "are an artery/vein network; give them to --av" in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert not list((tmp_path / "out").glob("a_*.png"))


def test_default_scale_is_vessels_where_the_weights_record_their_calibre(tmp_path, capsys):
    """Without --scale: `vessels` for weights whose .yaml records `scale.vessel_calibre` (every
    shipped vessel network), `auto` for weights that record none; a given --scale is kept."""
    import shutil

    from predict import default_scale
    from utils.config import load_config, save_config
    from utils.io import shipped_weights

    for path in shipped_weights(ROOT / "weights", "vessel"):
        assert default_scale(path) == "vessels", path.name
    folder = tmp_path / "w"
    folder.mkdir()
    copy = folder / "fundus.keras"
    shutil.copyfile(ROOT / "weights" / "sa_unetv2_fundus.keras", copy)
    cfg = load_config(ROOT / "weights" / "sa_unetv2_fundus.yaml")
    del cfg["scale"]["vessel_calibre"]
    save_config(cfg, folder / "fundus.yaml")
    assert default_scale(copy) == "auto"
    image = photo(tmp_path / "in" / "p.png", size=64)
    for args, shown in (([], "auto"), (["--scale", "1"], "1.0")):
        code, stdout, _ = predict(["--weights", copy, "--engine", "keras", "--save", "prob",
                                   "--out", tmp_path / shown, *args, image], capsys)  # fmt: skip
        assert code == 0, stdout
        assert stdout.splitlines()[0].endswith(f"--scale {shown}")
