"""predict.py --disc and --av: the optic disc and artery/vein pictures, their measurements.csv
columns, the vessel maps unchanged by them, resuming, and the refusals."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from PIL import Image

from data.synthetic import synthetic_sample
from models import build_model
from tests.helpers import run_python
from tests.test_config import NO_KERAS
from tests.test_predict import _DarkLinePredictor, photo, predict
from utils.errors import UserError

SIZE = 256  # a multiple of 8: at --scale 1 the network sees the photograph unpadded
NEW_COLUMNS = ("disc_x", "disc_y", "disc_radius_px", "disc_confidence", "disc_low_confidence",
               "crae_px", "crve_px", "avr", "crae_um", "crve_um", "n_arteries", "n_veins",
               "calibre_flags")  # fmt: skip


class _HalvesAvPredictor:
    """A stand-in A/V network: the vessel channel is `_DarkLinePredictor`'s, every vessel on the
    left half of the picture an artery, on the right half a vein."""

    name, multiple = "halves", 8

    def predict(self, batch):
        vessel = _DarkLinePredictor().predict(batch)
        left = np.zeros(vessel.shape, np.float32)
        left[:, :, : batch.shape[2] // 2] = 1.0
        return np.concatenate([vessel, left, 1.0 - left], axis=-1)


@pytest.fixture(scope="module")
def av_photos(tmp_path_factory):
    """Two synthetic artery/vein photographs, SIZE x SIZE."""
    folder = tmp_path_factory.mktemp("av_photos")
    for index in range(2):
        Image.fromarray(synthetic_sample(SIZE, 5, 1, index, av=True).image).save(
            folder / f"p{index}.png"
        )
    return folder


def rows_of(path):
    with path.open() as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, {row["image"]: row for row in reader}


def number(text):
    return float(text) if text != "" else math.nan


def run(pipeline, folder, out, **options):
    """predict_files with the stand-in networks at scale 1, measuring: the Summary."""
    jobs = pipeline.collect_inputs([str(folder)])
    options = pipeline.PredictOptions(scale=1.0, measure=True, **options)
    return pipeline.predict_files(jobs, "none.keras", out, options,
                                  predictor=_DarkLinePredictor(),
                                  av_predictor=_HalvesAvPredictor())  # fmt: skip


def test_av_writes_its_pictures_and_columns_and_leaves_the_vessel_maps_alone(tmp_path, av_photos):
    from biomarkers import calibre_biomarkers
    from data.av import ARTERY, VEIN, av_classes
    from data.disc import LOW_CONFIDENCE
    from data.io import read_image
    from inference import pipeline
    from inference.outputs import DISC_COLOUR

    # Each pixel typed by itself (--av-pixels), so the halves show as the stand-in drew them.
    summary = run(pipeline, av_photos, tmp_path / "av", av=True, disc=True, av_vote=False)
    assert (summary.done, summary.failed) == (2, 0)
    plain = run(pipeline, av_photos, tmp_path / "plain")
    assert (plain.done, plain.failed) == (2, 0)
    columns, rows = rows_of(tmp_path / "av" / "measurements.csv")
    plain_columns, plain_rows = rows_of(tmp_path / "plain" / "measurements.csv")
    assert columns == plain_columns == pipeline.measurement_columns()
    assert all(column in columns for column in NEW_COLUMNS)
    for name in ("p0", "p1"):
        # The vessel maps and the vessel measurements are those of a run without --av.
        for kind in ("prob", "binary", "overlay", "fov"):
            written = tmp_path / "av" / f"{name}_{kind}.png"
            assert written.read_bytes() == (tmp_path / "plain" / f"{name}_{kind}.png").read_bytes()
        row, plain_row = rows[name], plain_rows[name]
        assert all(row[c] == plain_row[c] for c in columns if c not in NEW_COLUMNS)
        assert all(plain_row[c] == "" for c in NEW_COLUMNS)  # without the options: empty

        image = read_image(av_photos / f"{name}.png")
        av = np.asarray(Image.open(tmp_path / "av" / f"{name}_av.png"))
        assert av.shape == (SIZE, SIZE, 3)
        red = np.all(av == (255, 0, 0), axis=-1) & ~np.all(image == (255, 0, 0), axis=-1)
        blue = np.all(av == (0, 0, 255), axis=-1) & ~np.all(image == (0, 0, 255), axis=-1)
        probs = _HalvesAvPredictor().predict(image[None].astype(np.float32) / 255.0)[0]
        fov = np.asarray(Image.open(tmp_path / "av" / f"{name}_fov.png")) > 0
        classes = np.where(fov, av_classes(probs, 0.5), 0)  # inside the field of view only
        np.testing.assert_array_equal(red, classes == ARTERY)
        np.testing.assert_array_equal(blue, classes == VEIN)
        assert red.sum() > 100 and blue.sum() > 100, (red.sum(), blue.sum())
        assert not red[:, SIZE // 2 :].any() and not blue[:, : SIZE // 2].any()
        np.testing.assert_array_equal(av[~(red | blue)], image[~(red | blue)])  # the rest as it was

        # The disc: its circle and centre drawn in cyan where the row says it is.
        x, y, radius = (float(row[c]) for c in ("disc_x", "disc_y", "disc_radius_px"))
        assert 0 <= x < SIZE and 0 <= y < SIZE and 0.02 * SIZE < radius < 0.2 * SIZE
        confidence = float(row["disc_confidence"])
        assert row["disc_low_confidence"] == str(confidence < LOW_CONFIDENCE)
        disc = np.asarray(Image.open(tmp_path / "av" / f"{name}_disc.png"))
        cyan = np.all(disc == DISC_COLOUR, axis=-1)
        rows_, cols = np.nonzero(cyan)
        distance = np.hypot(cols - x, rows_ - y)
        on_circle = np.abs(distance - radius) <= 2.5
        on_cross = (np.abs(cols - x) <= 1.5) | (np.abs(rows_ - y) <= 1.5)
        assert cyan.sum() > 2 * math.pi * radius and np.all(on_circle | on_cross)
        np.testing.assert_array_equal(disc[~cyan], image[~cyan])

        # CRAE, CRVE, AVR: the vessel network's binary map typed by the A/V network's classes.
        binary = np.asarray(Image.open(tmp_path / "av" / f"{name}_binary.png")) > 0
        um = 1000.0 * float(row["mm_per_pixel"])
        expected = calibre_biomarkers(binary, classes, (x, y), 2 * radius, fov=fov, um_per_pixel=um)
        assert int(row["n_arteries"]) == expected.n_arteries
        assert int(row["n_veins"]) == expected.n_veins
        assert row["calibre_flags"] == ";".join(expected.flags)
        for column in ("crae_px", "crve_px", "avr", "crae_um", "crve_um"):
            np.testing.assert_allclose(number(row[column]), getattr(expected, column), rtol=1e-5)
        if math.isfinite(number(row["crae_px"])):
            assert number(row["crae_um"]) == pytest.approx(number(row["crae_px"]) * um, rel=1e-5)


class _Recording:
    """Wraps a stand-in predictor and records the (height, width) of every batch it sees."""

    def __init__(self, inner):
        self.inner, self.name, self.multiple, self.shapes = inner, inner.name, 8, []

    def predict(self, batch):
        self.shapes.append(batch.shape[1:3])
        return self.inner.predict(batch)


def test_av_types_each_vessel_segment_as_a_whole_by_default(tmp_path, av_photos):
    """Without --av-pixels the picture and the calibre columns use the stand-in's classes after
    `vote_by_segment`: a segment crossing the middle of the picture takes one type."""
    from data.av import ARTERY, VEIN, av_classes, vote_by_segment
    from data.io import read_image
    from inference import pipeline

    summary = run(pipeline, av_photos, tmp_path / "voted", av=True)
    assert (summary.done, summary.failed) == (2, 0)
    straddling = 0
    for name in ("p0", "p1"):
        image = read_image(av_photos / f"{name}.png")
        probs = _HalvesAvPredictor().predict(image[None].astype(np.float32) / 255.0)[0]
        fov = np.asarray(Image.open(tmp_path / "voted" / f"{name}_fov.png")) > 0
        voted = np.where(fov, av_classes(vote_by_segment(probs, 0.5), 0.5), 0)
        pixels = np.where(fov, av_classes(probs, 0.5), 0)
        av = np.asarray(Image.open(tmp_path / "voted" / f"{name}_av.png"))
        red = np.all(av == (255, 0, 0), axis=-1) & ~np.all(image == (255, 0, 0), axis=-1)
        blue = np.all(av == (0, 0, 255), axis=-1) & ~np.all(image == (0, 0, 255), axis=-1)
        np.testing.assert_array_equal(red, voted == ARTERY)
        np.testing.assert_array_equal(blue, voted == VEIN)
        straddling += int((voted != pixels).sum())
    assert straddling > 0  # some segment crosses the middle and was typed as a whole


def test_av_pixels_without_av_is_refused(tmp_path):
    image = photo(tmp_path / "p.png")
    result = run_python(["-c", NO_KERAS, "predict.py", "--av-pixels", "--out",
                         str(tmp_path / "out"), str(image)])  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert "--av-pixels changes how --av types the vessels; give --av as well" in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_av_network_sees_each_photograph_at_its_own_training_scale(tmp_path, av_photos):
    """With --scale auto the vessel network gets each photograph at the vessel weights' FOV
    diameter (DRIVE's, none recorded here) and the A/V network at the A/V weights' (av_band):
    shrunk to it, and also at SECOND_SCALE times that, as --scale auto predicts for one diameter.
    A factor given as --scale applies to both."""
    from data.fov import generate_fov_mask
    from data.geometry import padded_shape
    from data.io import read_image
    from data.scale import DEFAULT_FOV_DIAMETER, SECOND_SCALE, FovBand, fov_diameter, scaled_shape
    from inference import pipeline

    diameter = fov_diameter(generate_fov_mask(read_image(av_photos / "p0.png")))
    av_diameter = diameter / 3  # the A/V weights trained at a third of this FOV
    jobs = pipeline.collect_inputs([str(av_photos / "p0.png")])

    def shapes_at(scale):
        vessel, av = _Recording(_DarkLinePredictor()), _Recording(_HalvesAvPredictor())
        options = pipeline.PredictOptions(
            scale=scale, measure=True, av=True, av_band=FovBand(av_diameter, av_diameter)
        )
        out = tmp_path / str(scale)
        summary = pipeline.predict_files(jobs, "none.keras", out, options, predictor=vessel,
                                         av_predictor=av)  # fmt: skip
        assert (summary.done, summary.failed) == (1, 0)
        assert (out / "p0_av.png").is_file()
        return vessel.shapes, av.shapes

    def padded(factor):
        return padded_shape(scaled_shape((SIZE, SIZE), factor), 8)

    vessel, av = shapes_at("auto")
    assert vessel == [padded(DEFAULT_FOV_DIAMETER / diameter)]  # DRIVE's diameter: enlarged
    third = av_diameter / diameter
    assert av == [padded(third), padded(min(1.0, SECOND_SCALE * third))]
    vessel, av = shapes_at(0.5)
    assert vessel == av == [padded(0.5)]


def test_disc_alone_and_resuming_with_other_options(tmp_path, av_photos):
    """--disc without --av: the disc columns, the calibre ones empty. A run without --disc, then
    with it: every photograph redone for its disc, one row each, one header; then skipped.
    A measurements.csv of an earlier predict.py (fewer columns) keeps its rows."""
    from inference import pipeline

    out = tmp_path / "out"
    first = run(pipeline, av_photos, out)
    assert (first.done, first.skipped) == (2, 0)
    assert not list(out.glob("*_disc.png")) and not list(out.glob("*_av.png"))
    second = run(pipeline, av_photos, out, disc=True)
    assert (second.done, second.skipped) == (2, 0)  # their _disc.png was missing
    columns, rows = rows_of(out / "measurements.csv")
    assert columns == pipeline.measurement_columns() and sorted(rows) == ["p0", "p1"]
    for row in rows.values():
        assert float(row["disc_radius_px"]) > 0 and row["disc_low_confidence"] in ("True", "False")
        assert all(row[c] == "" for c in NEW_COLUMNS[5:])  # no --av: no calibre biomarkers
    assert not list(out.glob("*_av.png"))
    third = run(pipeline, av_photos, out, disc=True)
    assert (third.done, third.skipped) == (0, 2)
    fourth = run(pipeline, av_photos, out)  # fewer outputs asked for: still complete
    assert (fourth.done, fourth.skipped) == (0, 2)
    assert rows_of(out / "measurements.csv")[1] == rows  # nothing rewritten

    # A file written before the disc's columns existed: its rows kept, the new columns empty.
    old_columns = [c for c in columns if c not in NEW_COLUMNS]
    with (out / "measurements.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, old_columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows.values())
    fifth = run(pipeline, av_photos, out)
    assert (fifth.done, fifth.skipped) == (0, 2)
    columns, upgraded = rows_of(out / "measurements.csv")
    assert columns == pipeline.measurement_columns()
    assert all(upgraded[n][c] == rows[n][c] for n in rows for c in old_columns)
    assert all(upgraded[n][c] == "" for n in rows for c in NEW_COLUMNS)


def test_every_output_there_skips_the_photograph(tmp_path, av_photos):
    """--av lists _disc.png and _av.png among a photograph's outputs: with one of them missing
    the photograph is redone, with all there it is skipped."""
    from inference import pipeline

    out = tmp_path / "out"
    options = pipeline.PredictOptions(av=True, measure_images=True)
    job = pipeline.Job(av_photos / "p0.png", "p0")
    names = sorted(p.name for p in pipeline.job_outputs(job, out, options))
    assert names == ["p0_av.png", "p0_binary.png", "p0_calibre.png", "p0_disc.png", "p0_fov.png",
                     "p0_overlay.png", "p0_prob.png"]  # fmt: skip
    assert run(pipeline, av_photos, out, av=True).done == 2
    (out / "p1_av.png").unlink()
    again = run(pipeline, av_photos, out, av=True)
    assert (again.done, again.skipped) == (1, 1) and (out / "p1_av.png").is_file()


def test_shards_with_and_without_disc_merge_into_one_table(tmp_path, av_photos):
    """Shard 1/2 run with --disc, shard 2/2 without: one header, so --merge-shards joins them."""
    from inference import pipeline
    from inference.shards import merge_measurements

    out = tmp_path / "out"
    assert run(pipeline, av_photos, out, disc=True, shard=(1, 2)).done + run(
        pipeline, av_photos, out, shard=(2, 2)
    ).done == 2
    assert merge_measurements(out) == (2, 2)
    columns, rows = rows_of(out / "measurements.csv")
    assert columns == pipeline.measurement_columns()
    with_disc = sorted(name for name, row in rows.items() if row["disc_x"] != "")
    assert with_disc == ["p1"]  # shard 1 of 2 (SHA-1 of "p1.png"); p0 is shard 2's, no disc
    assert sorted(p.name for p in out.glob("*_disc.png")) == ["p1_disc.png"]


@pytest.fixture(scope="module")
def tiny_av_weights(tmp_path_factory):
    """An untrained, narrow A/V SA-UNetv2 saved as .keras."""
    path = tmp_path_factory.mktemp("av_weights") / "tiny_av.keras"
    build_model("sa_unetv2_av", start_neurons=8).save(path)
    return path


def test_predict_py_av_with_a_keras_file(tmp_path, tiny_av_weights, capsys):
    """As a user runs it: a vessel .keras file and an A/V one; the A/V network's threshold from
    its yaml (0.5 where it records none), said in the run's second line."""
    from utils.config import save_config

    vessel = tmp_path / "vessel.keras"
    build_model("sa_unetv2", start_neurons=8).save(vessel)
    image = photo(tmp_path / "in" / "p.png", size=64)
    args = ["--weights", vessel, "--engine", "keras", "--scale", "1", "--measure", "--save", "binary"]
    code, stdout, stderr = predict([*args, "--out", tmp_path / "out", "--av", tiny_av_weights, image],
                                   capsys)  # fmt: skip
    assert code == 0, stderr
    assert stdout.splitlines()[1] == (
        f"artery/vein weights {tiny_av_weights}, threshold 0.50 (the weights record no chosen "
        "threshold), each photograph at --scale 1.0"
    )
    for kind in ("binary", "disc", "av"):
        assert Image.open(tmp_path / "out" / f"p_{kind}.png").size == (64, 64), kind
    _, rows = rows_of(tmp_path / "out" / "measurements.csv")
    assert int(rows["p"]["n_arteries"]) >= 0 and rows["p"]["disc_confidence"] != ""
    save_config({"evaluate": {"threshold": 0.5, "chosen_threshold": 0.37},
                 "scale": {"train_fov_diameter": 540}},
                tiny_av_weights.with_suffix(".yaml"))  # fmt: skip
    try:
        from predict import av_scale_text

        assert av_scale_text(tiny_av_weights, "vessels") == (
            "each photograph's FOV brought to 540px, as they trained"
        )
        code, stdout, _ = predict([*args, "--out", tmp_path / "out2", "--av", tiny_av_weights, image],
                                  capsys)  # fmt: skip
    finally:
        tiny_av_weights.with_suffix(".yaml").unlink()
    assert code == 0 and "threshold 0.37 (chosen on the weights' validation images)" in stdout


def test_a_vessel_network_given_to_av_is_refused(tmp_path, capsys):
    vessel = tmp_path / "vessel.keras"
    build_model("sa_unetv2", start_neurons=8).save(vessel)
    image = photo(tmp_path / "p.png")
    code, _, stderr = predict(["--weights", vessel, "--av", vessel, "--engine", "keras",
                               "--out", tmp_path / "out", image], capsys)  # fmt: skip
    assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert f"--av {vessel} is a vessel network (one output channel)" in stderr
    assert not list((tmp_path / "out").glob("p_*.png"))


def test_missing_av_weights_are_refused_before_keras_is_imported(tmp_path):
    vessel = tmp_path / "vessel.keras"
    vessel.write_bytes(b"never loaded")
    image = photo(tmp_path / "p.png")
    result = run_python(["-c", NO_KERAS, "predict.py", "--weights", str(vessel), "--av",
                         str(tmp_path / "none.keras"), "--out", str(tmp_path / "out"), str(image)])  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"--av weights file {tmp_path / 'none.keras'} does not exist" in result.stderr
    assert not (tmp_path / "out").exists()


def test_av_without_a_value_means_the_shipped_file_and_a_folder_is_explained(tmp_path):
    from predict import SHIPPED_AV, check_av_weights, parse_args

    assert parse_args(["--av", "--", "p.png"]).av == SHIPPED_AV
    assert parse_args(["p.png", "--av"]).av == SHIPPED_AV
    assert parse_args(["--av", "mine.keras", "p.png"]).av == "mine.keras"
    weights = tmp_path / "weights"
    weights.mkdir()
    with pytest.raises(UserError, match=f"--av: {weights / SHIPPED_AV} is not here; give an"):
        check_av_weights(SHIPPED_AV, weights)
    (weights / SHIPPED_AV).write_bytes(b"")
    assert check_av_weights(SHIPPED_AV, weights) == weights / SHIPPED_AV
    photos = tmp_path / "photos"
    photos.mkdir()
    image = photo(tmp_path / "p.png")
    for value in (photos, image):  # `--av PHOTOS`: argparse took the inputs for the weights
        with pytest.raises(UserError, match="is not a .keras file; --av takes the weights as an"):
            check_av_weights(str(value), weights)


def test_a_measurements_csv_of_another_layout_is_refused_and_kept(tmp_path):
    from inference.pipeline import MeasurementLog

    path = tmp_path / "measurements.csv"
    path.write_text("image,something_else\na.png,1\n", encoding="utf-8")
    with pytest.raises(UserError, match="has other columns than predict.py writes; move it away"):
        MeasurementLog(path)
    assert path.read_text(encoding="utf-8") == "image,something_else\na.png,1\n"


def test_the_skeleton_is_computed_once_per_photograph_for_both_measurements(
    tmp_path, av_photos, monkeypatch
):
    """--av with measurements: the vessel measurements and the calibre biomarkers share one
    skeleton of the vessel map (`measurements.skeleton_calibre` runs once per photograph), and the
    row is what the two would give each computing its own."""
    import biomarkers
    import measurements
    from inference import pipeline

    calls = []
    original = measurements.skeleton_calibre

    def counted(vessels):
        calls.append(vessels.shape)
        return original(vessels)

    monkeypatch.setattr(measurements, "skeleton_calibre", counted)
    monkeypatch.setattr(biomarkers, "skeleton_calibre", counted)
    summary = run(pipeline, av_photos, tmp_path / "shared", av=True, disc=True)
    assert (summary.done, summary.failed) == (2, 0)
    assert calls == [(SIZE, SIZE)] * 2
    _, rows = rows_of(tmp_path / "shared" / "measurements.csv")
    for name, row in rows.items():
        binary = np.asarray(Image.open(tmp_path / "shared" / f"{name}_binary.png")) > 0
        fov = np.asarray(Image.open(tmp_path / "shared" / f"{name}_fov.png")) > 0
        alone = measurements.measure_vessels(binary, fov, number(row["mm_per_pixel"]))
        for key in ("skeleton_length_px", "branch_points", "calibre_median_px"):
            np.testing.assert_allclose(number(row[key]), alone.values[key], rtol=1e-5)
    assert len(calls) > 2  # measure_vessels alone computed its own
