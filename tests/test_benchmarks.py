"""benchmarks/common.py: the timings summary and the Markdown tables the benchmark scripts print."""

import sys

import numpy as np
import pytest

from benchmarks.common import machine, markdown_table, timing_summary


def test_timing_summary_against_a_baseline():
    summary = timing_summary({"plain": [4.0, 2.0, 3.0], "fast": [1.0, 1.5, 0.5, 9.0]}, "plain")
    assert summary["plain"] == {"median": 3.0, "min": 2.0, "max": 4.0, "speedup": 1.0, "runs": 3}
    assert summary["fast"]["median"] == 1.25
    assert summary["fast"]["speedup"] == pytest.approx(3.0 / 1.25)
    assert (summary["fast"]["min"], summary["fast"]["max"], summary["fast"]["runs"]) == (
        0.5,
        9.0,
        4,
    )
    with pytest.raises(ValueError, match="baseline 'keras'"):
        timing_summary({"plain": [1.0]}, "keras")


def test_markdown_table():
    columns = [("name", lambda r: r["n"]), ("s", lambda r: f"{r['s']:.2f}")]
    table = markdown_table(columns, [{"n": "a", "s": 1.234}, {"n": "b", "s": 0.5}])
    assert table.splitlines() == ["| name | s |", "| --- | --- |", "| a | 1.23 |", "| b | 0.50 |"]
    assert markdown_table(columns, []).count("\n") == 1


def test_machine_names_the_cores():
    assert machine().endswith("CPU cores")


def test_predict_folder_photographs_and_stage_times(tmp_path):
    from PIL import Image

    from benchmarks.predict_folder import make_photographs, stage_times

    (path,) = make_photographs(tmp_path, 1, (60, 90))
    image = Image.open(path)
    assert image.size == (90, 60) and image.format == "JPEG"
    assert image.getpixel((1, 1)) == (0, 0, 0) and sum(image.getpixel((45, 30))) > 100
    line = "a.jpg: ...; seconds: read 0.10, fov 0.20, resample 0.30, network 0.40, resample_back 0.50, write 0.60 -> x"
    times = stage_times(f"{line}\n{line.replace('read 0.10', 'read 0.30')}\nsummary")
    assert times["read"] == pytest.approx(0.2) and times["write"] == pytest.approx(0.6)


def test_predict_folder_memory_windows():
    """Peak memory per window of photographs finished (PNG files / 4 pictures each)."""
    import subprocess
    import sys
    from pathlib import Path

    from benchmarks.predict_folder import _sample, windows

    samples = [
        (100.0, 0),
        (250.0, 3),
        (180.0, 4),
        (300.0, 19),
        (210.0, 20),
        (220.0, 99),
        (90.0, 400),
    ]
    assert windows(samples, 4, 100) == {"1-5": 300.0, "6-25": 220.0, "76-100": 90.0}
    assert windows(samples, 4, 5) == {"1-5": 300.0}  # after the last: in the last window
    longer = [(float(done), done) for done in range(0, 401, 50)]  # one picture per photograph
    assert windows(longer, 1, 400) == {
        "1-5": 0.0, "6-100": 50.0, "101-200": 150.0, "201-300": 250.0, "301-400": 400.0
    }  # fmt: skip
    if not Path("/proc/self/status").is_file():
        pytest.skip("no /proc here: the sampler reads /proc/PID/status")
    seen: list = []
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.35)"])
    _sample(child.pid, Path("/nonexistent"), seen)
    child.wait()
    assert seen and all(mb > 0 and files == 0 for mb, files in seen)


@pytest.mark.slow
def test_predict_folder_times_shards_against_one_process(tmp_path, capsys):
    """--shards 2 on three tiny photographs with the fastest settings: a row for one process and
    one for two shards at once, every photograph written by each."""
    import json

    from benchmarks.predict_folder import main
    from models import build_model

    weights = tmp_path / "tiny.keras"
    build_model("sa_unetv2", start_neurons=8).save(weights)
    args = ["--sizes", "96x64", "--photos", "3", "--shards", "2", "--no-speed", "--json",
            "--weights", str(weights), "--predict-args=--scale 1 --engine keras --save fov"]  # fmt: skip
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == report["memory"] == []
    assert [(r["processes"], r["photos"], r["size"]) for r in report["shards"]] == [
        (1, 3, "96 x 64 JPEG"), (2, 3, "96 x 64 JPEG")
    ]  # fmt: skip
    for row in report["shards"]:
        assert row["rate"] == pytest.approx(3 / row["seconds"])
        assert row["rss_mb"] > 50 and row["total_mb"] > 50


def test_scale_ceiling_loses_thin_vessels_when_shrunk():
    """A label shrunk as a coverage map and brought back: unchanged at factor 1, a 5-px bar kept
    at 0.5, a 1-px line lost at a third (its coverage falls under 0.5)."""
    import numpy as np

    from benchmarks.scale_ceiling import ceiling_f1

    mask = np.ones((120, 120), dtype=bool)
    bar = np.zeros((120, 120), dtype=np.uint8)
    bar[40:45, 10:110] = 1
    line = np.zeros((120, 120), dtype=np.uint8)
    line[80, 10:110] = 1
    assert ceiling_f1(bar, mask, 1.0) == 1.0 and ceiling_f1(line, mask, 1.0) == 1.0
    assert ceiling_f1(bar, mask, 0.5) > 0.9
    assert ceiling_f1(line, mask, 1 / 3) < 0.5


def test_robustness_default_changes_keep_the_documented_rows_first():
    """Every default change parses; the 13 rows docs/cameras.md reports come first, in order,
    and the vignette, illumination and white balance rows after them."""
    from benchmarks.robustness import DEFAULT_CHANGES
    from data.camera import parse_change

    specs = DEFAULT_CHANGES.split(",")
    kinds = [parse_change(spec)[0] for spec in specs]
    assert specs[:13] == ["none", "brightness:0.6", "brightness:1.4", "gamma:1.5", "gamma:0.67",
                          "contrast:0.6", "color:0.3", "blur:1.5", "jpeg:75", "jpeg:50", "jpeg:30",
                          "noise:3", "noise:8"]  # fmt: skip
    assert kinds[13:] == ["vignette", "illumination", "white_balance"]


@pytest.mark.slow
def test_robustness_scores_every_change(tmp_path, capsys):
    """On the demo's test images with untrained weights: one F1 per change, 'none' added first,
    an identity change scoring exactly as 'none', a blur scoring differently, threshold auto
    falling back to 0.5 for weights without a recorded one."""
    import json

    import keras

    from benchmarks.robustness import main
    from models import build_model

    keras.utils.set_random_seed(0)
    weights = tmp_path / "random.keras"
    build_model("sa_unetv2").save(weights)
    args = ["--config", "configs/demo.yaml", "--weights", str(weights),
            "--changes", "brightness:1,blur:3", "--threshold", "auto", "--json"]  # fmt: skip
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    result = report["weights"][str(weights)]
    assert report["images"] == 4 and result["threshold"] == 0.5
    assert list(result["f1"]) == ["none", "brightness:1", "blur:3"]
    assert result["f1"]["brightness:1"] == result["f1"]["none"]
    assert result["f1"]["blur:3"] != result["f1"]["none"]
    assert all(0.0 <= f <= 1.0 for f in result["f1"].values())
    # --split val: the run's held-out source photographs, as train.validation: photographs has them
    assert main([*args[:4], "--changes", "none", "--split", "val", "--json"]) == 0
    val = json.loads(capsys.readouterr().out)
    assert (val["split"], val["images"]) == ("val", 1)  # 12 demo photographs, 10 % held out


@pytest.mark.slow
def test_robustness_scores_an_av_network_by_both_protocols(tmp_path, capsys):
    """An artery/vein network on the synthetic A/V set: A/V F1 and accuracy per change, each
    vessel segment typed as a whole as evaluate.py types it; a vessel network on the same config
    is scored on the labelled vessels; an A/V network on a vessel dataset is refused."""
    import json

    import keras

    from benchmarks.robustness import main
    from data import load_dataset
    from data.av import vote_by_segment
    from inference.engines import make_predictor
    from inference.segment import segment
    from metrics import av_classification_scores
    from models import build_model, load_model
    from training.config import resolve_run_config
    from utils.errors import UserError

    keras.utils.set_random_seed(0)
    av, vessel = tmp_path / "av.keras", tmp_path / "vessel.keras"
    build_model("sa_unetv2_av", start_neurons=8).save(av)
    build_model("sa_unetv2", start_neurons=8).save(vessel)
    config = ["--config", "configs/av_demo.yaml", "--changes", "brightness:1,color:0", "--json",
              "--scale", "1"]  # fmt: skip
    assert main([*config, "--weights", str(av), "--weights", str(vessel)]) == 0
    report = json.loads(capsys.readouterr().out)
    result = report["weights"][str(av)]
    assert result["kind"] == "av"
    assert list(result["accuracy"]) == ["none", "brightness:1", "color:0"]
    assert result["f1"]["brightness:1"] == result["f1"]["none"]
    assert result["accuracy"]["color:0"] != result["accuracy"]["none"]
    # The accuracy of the unchanged images is evaluate.py's protocol (b) after the vote (factor 1).
    samples = load_dataset(resolve_run_config("configs/av_demo.yaml")["dataset"]).test
    predictor = make_predictor(load_model(av), "keras")
    expected = [
        av_classification_scores(vote_by_segment(segment(predictor, s.image)), s.label, s.mask)
        for s in samples
    ]
    mean = float(np.mean([scores["acc"] for scores in expected]))
    assert result["accuracy"]["none"] == pytest.approx(mean, abs=1e-6)
    assert report["weights"][str(vessel)]["kind"] == "vessel"
    assert "accuracy" not in report["weights"][str(vessel)]
    with pytest.raises(UserError, match="has no artery/vein labels"):
        main(["--config", "configs/demo.yaml", "--weights", str(av), "--changes", "none"])


def test_quality_copies_and_flagged_counts():
    """benchmarks/quality.py: the degraded copies as named, and the counts of flagged rows."""
    import numpy as np

    from benchmarks.quality import degraded, flagged_table, summary_rows
    from data.synthetic import synthetic_sample

    image = synthetic_sample(200, 1, 1, 0).image
    assert degraded(image, 180.0, "clean") is image
    assert degraded(image, 180.0, "small").shape == (278, 278, 3)  # FOV 180 -> 250 px
    assert degraded(image, 180.0, "dark").mean() == pytest.approx(image.mean() / 4, rel=0.05)

    def detail(picture):
        return np.abs(np.diff(picture.astype(float), axis=1)).mean()

    assert detail(degraded(image, 538.29, "blurred")) < 0.5 * detail(image)  # sigma 3 px here
    with pytest.raises(ValueError, match="unknown copy"):
        degraded(image, 180.0, "rotated")
    ok = {"fov_found": True, "fov_width_px": 538.0, "brightness_median": 100.0,
          "underexposed_fraction": 0.0, "overexposed_fraction": 0.0, "sharpness": 5.0,
          "area_fraction": 0.1}  # fmt: skip
    rows = [
        {"dataset": "drive", "copy": "clean", **ok},
        {"dataset": "drive", "copy": "clean", **ok, "area_fraction": None},
        {"dataset": "drive", "copy": "dark", **ok, "brightness_median": 20.0},
        {"dataset": "hrf", "copy": "dark", **ok, "sharpness": 1.0, "fov_width_px": 200.0},
    ]
    summary = summary_rows(rows)
    hrf_dark = next(r for r in summary if r["dataset"] == "hrf")
    assert hrf_dark["flagged"] == 1 and dict(hrf_dark["reasons"]) == {"blurred": 1, "small": 1}
    assert flagged_table(summary, ("clean", "dark")).splitlines()[2:] == [
        "| drive | 0/2 | 1/1 |",
        "| hrf | - | 1/1 |",
        "| all | 0/2 | 2/2 |",
    ]


def test_fov_benchmark_iou_widest_row_and_summary():
    """IoU and the widest row by hand on tiny masks; a dataset's line names its failures."""
    import numpy as np

    from benchmarks.fov import mask_iou, summary, widest_row

    a = np.zeros((4, 5), bool)
    a[1:3, 1:4] = True  # 6 pixels
    b = np.zeros((4, 5), bool)
    b[1:3, 2:5] = True  # 6 pixels, 4 shared
    assert mask_iou(a, b) == pytest.approx(4 / 8)
    assert mask_iou(a, np.zeros_like(a)) == 0.0 and mask_iou(a & False, a & False) == 1.0
    a[0, 0] = a[0, 4] = True  # a row with a gap: first to last pixel
    assert widest_row(a) == 5.0 and widest_row(b) == 3.0
    rows = [
        {"name": "x", "diameter": 100.0, "reference": 100.0, "error": 0.0, "iou": 0.99,
         "fails": False, "seconds": 0.1},
        {"name": "y", "diameter": 90.0, "reference": 100.0, "error": -0.1, "iou": 0.9,
         "fails": True, "seconds": 0.3},
        {"name": "z", "diameter": None, "reference": 100.0, "error": None, "iou": 0.5,
         "fails": True, "seconds": 0.2},
    ]  # fmt: skip
    line = summary("drive", rows)
    assert (line["n"], line["iou_worst"], line["error_worst"]) == (3, (0.5, "z"), (-0.1, "y"))
    assert line["fails"] == ["y", "z"] and line["not_found"] == ["z"]
    assert line["error_median"] == pytest.approx(0.05) and line["seconds"] == pytest.approx(0.2)


def test_biomarker_agreement_says_when_pvbm_is_missing(monkeypatch):
    from benchmarks.biomarker_agreement import import_pvbm
    from utils.errors import UserError

    monkeypatch.setitem(sys.modules, "PVBM", None)
    monkeypatch.setitem(sys.modules, "PVBM.CentralRetinalAnalysis", None)
    with pytest.raises(UserError, match="pip install --no-deps pvbm"):
        import_pvbm()


def test_av_biomarkers_reads_predict_rows_and_compares_them(tmp_path):
    from benchmarks.av_biomarkers import compare, predicted_rows, summary_markdown
    from utils.errors import UserError

    path = tmp_path / "measurements.csv"
    path.write_text(
        "image,crae_px,crve_px,avr,calibre_flags\n"
        "a,6,9,0.6667,\n"
        "b,7,10,0.7,fewer_than_6_veins\n"
        "c,,11,,fewer_than_6_arteries;fewer_than_6_veins\n"
        "d,8,8,1,\n"
    )
    predicted = predicted_rows(path)
    assert predicted["b"]["flags"] == ["fewer_than_6_veins"] and np.isnan(predicted["c"]["crae_px"])
    manual = {
        "a": {"crae_px": 5.0, "crve_px": 8.0, "avr": 0.625, "flags": []},
        "b": {"crae_px": 6.0, "crve_px": 9.0, "avr": 2 / 3, "flags": ["fewer_than_6_veins"]},
        "c": {"crae_px": 7.0, "crve_px": 12.0, "avr": 7 / 12, "flags": []},
        "e": {"crae_px": 1.0, "crve_px": 1.0, "avr": 1.0, "flags": []},  # not predicted
    }
    found = compare(predicted, manual)
    assert found["photographs"] == 3  # a, b, c: d has no label, e no prediction
    crae, crve = found["agreement"]["crae_px"], found["agreement"]["crve_px"]
    assert crae["n"] == 2 and crae["mad"] == pytest.approx(1.0) and crae["r"] != crae["r"]  # 2: NaN
    assert (
        crve["n"] == 3
        and crve["mad"] == pytest.approx(1.0)
        and crve["r"] == pytest.approx(np.corrcoef([9, 10, 11], [8, 9, 12])[0, 1])
    )
    assert found["flags"]["predicted"]["fewer_than_6_veins"] == 2
    assert found["flags"]["manual"]["fewer_than_6_veins"] == 1
    assert "| crve_px | 10.000 | 9.667 |" in summary_markdown({"rite": found})
    with pytest.raises(UserError, match="no photograph has both"):
        compare(predicted, {"z": manual["a"]})
    path.write_text("image,area_fraction\na,0.1\n")
    with pytest.raises(UserError, match="without --av"):
        predicted_rows(path)


def test_av_biomarkers_manual_side_on_rite(real_rite_root):
    """The manual CRAE/CRVE/AVR of RITE's test labels about DRIVE's reference discs: the figures
    benchmarks/biomarker_agreement.py reports (mean CRAE 6.16 px, CRVE 8.87 px)."""
    from benchmarks.av_biomarkers import manual_row, manual_samples, reference_discs

    discs = reference_discs("rite", real_rite_root)
    rows = [manual_row(s, discs[s.name]) for s in manual_samples("rite", real_rite_root)]
    assert len(rows) == 20
    assert np.nanmean([r["crae_px"] for r in rows]) == pytest.approx(6.16, abs=0.01)
    assert np.nanmean([r["crve_px"] for r in rows]) == pytest.approx(8.87, abs=0.01)
