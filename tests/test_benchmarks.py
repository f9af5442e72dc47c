"""benchmarks/common.py: the timings summary and the Markdown tables the benchmark scripts print."""

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
