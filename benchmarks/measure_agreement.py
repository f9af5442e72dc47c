"""Vessel measurements from predicted maps against the same from manual labels (DRIVE test).

    python benchmarks/measure_agreement.py --weights weights/sa_unetv2_drive.keras \\
        --data-root ../shared/data

The 20 DRIVE test photographs are segmented with the weights (the default
engine, `--scale auto`: factor 1 on DRIVE; `--threshold auto`, as predict.py:
the threshold the weights' yaml records, else 0.5) and `measurements.py`
is applied to the binary maps and to the first observer's labels
(1st_manual), both inside DRIVE's FOV masks; millimetres from a 45-degree
field of view and each mask's measured diameter. Per measurement: the mean of
each, Pearson's r over the 20 photographs and the mean absolute difference;
the second observer (2nd_manual) against the first, measured the same way, is
the human baseline. Prints a Markdown table (or `--json`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import markdown_table  # noqa: E402

KEYS = (
    "area_fraction",
    "skeleton_length_mm",
    "branch_points",
    "end_points",
    "fractal_dimension",
    "calibre_mean_px",
    "calibre_median_px",
    "tortuosity",
)


def agreement(measured: list[dict], reference: list[dict], keys=KEYS) -> dict[str, dict]:
    """Per key: mean of each, Pearson r and mean absolute difference over paired images."""
    table = {}
    for key in keys:
        a = np.array([m[key] for m in measured], dtype=np.float64)
        b = np.array([r[key] for r in reference], dtype=np.float64)
        ok = np.isfinite(a) & np.isfinite(b)
        a, b = a[ok], b[ok]
        r = float(np.corrcoef(a, b)[0, 1]) if len(a) > 2 and a.std() and b.std() else float("nan")
        nan = float("nan")
        table[key] = {
            "mean": float(a.mean()) if len(a) else nan,
            "reference_mean": float(b.mean()) if len(a) else nan,
            "r": r,
            "mad": float(np.abs(a - b).mean()) if len(a) else nan,
            "n": int(len(a)),
        }
    return table


def agreement_columns(key_title: str, measured_title: str, reference_title: str) -> list:
    """`markdown_table` columns for rows of `agreement` with a "key": the key, both means,
    Pearson r, the mean absolute difference and the number of photographs."""
    return [
        (key_title, lambda r: r["key"]),
        (measured_title, lambda r: f"{r['mean']:.3f}"),
        (reference_title, lambda r: f"{r['reference_mean']:.3f}"),
        ("Pearson r", lambda r: f"{r['r']:.3f}"),
        ("mean abs diff", lambda r: f"{r['mad']:.3f}"),
        ("photographs", lambda r: str(r["n"])),
    ]


def drive_measurements(
    weights: Path, data_root: Path, limit: int | None = None, threshold: float = 0.5
) -> dict:
    """{"predicted", "manual", "second"}: lists of measurement dicts over the DRIVE test images."""
    from data.geometry import pad_shape_for
    from data.readers import read_drive
    from data.scale import (
        fov_diameter,
        image_factor,
        prediction_factors,
        weights_fov_band,
    )
    from inference.engines import make_predictor
    from inference.segment import segment
    from measurements import DEFAULT_FOV_DEGREES, measure_vessels, mm_per_pixel_from_fov

    _, test = read_drive(data_root)
    test = test[:limit] if limit else test
    predictor = make_predictor(weights)
    train_diameter = weights_fov_band(weights)
    found = {"predicted": [], "manual": [], "second": []}
    for sample in test:
        factor = image_factor("auto", sample.mask, train_diameter, sample.name)
        prob = segment(
            predictor,
            sample.image,
            pad_shape_for("drive", sample.image.shape[:2]),
            prediction_factors("auto", factor, train_diameter),
        )
        mm = mm_per_pixel_from_fov(fov_diameter(sample.mask), DEFAULT_FOV_DEGREES)
        found["predicted"].append(measure_vessels(prob > threshold, sample.mask, mm).values)
        found["manual"].append(measure_vessels(sample.label > 0, sample.mask, mm).values)
        if sample.second is not None:
            found["second"].append(measure_vessels(sample.second > 0, sample.mask, mm).values)
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", type=Path, default=Path("weights/sa_unetv2_drive.keras"))
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument(
        "--threshold", default="auto", help="'auto' (as predict.py) or a number in [0, 1]"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from predict import parse_threshold, resolve_threshold

    threshold, _ = resolve_threshold(parse_threshold(args.threshold), args.weights)
    from utils.cli import import_tensorflow_quietly, quiet_tensorflow_logs

    quiet_tensorflow_logs()
    import_tensorflow_quietly()
    found = drive_measurements(args.weights, args.data_root, threshold=threshold)
    model = agreement(found["predicted"], found["manual"])
    human = agreement(found["second"], found["manual"]) if found["second"] else {}
    if args.json:
        print(
            json.dumps(
                {"threshold": threshold, "predicted_vs_manual": model, "second_vs_manual": human},
                indent=2,
            )
        )
        return 0
    rows = [{"key": k, **model[k], "human": human.get(k)} for k in KEYS]
    print(
        f"DRIVE test, {model[KEYS[0]]['n']} photographs, {args.weights.name}, threshold "
        f"{threshold:g}, inside the FOV masks\n"
    )
    print(
        markdown_table(
            [
                ("measurement", lambda r: r["key"]),
                ("manual mean", lambda r: f"{r['reference_mean']:.4g}"),
                ("predicted mean", lambda r: f"{r['mean']:.4g}"),
                ("Pearson r", lambda r: f"{r['r']:.3f}"),
                ("mean abs diff", lambda r: f"{r['mad']:.4g}"),
                ("2nd observer r", lambda r: f"{r['human']['r']:.3f}" if r["human"] else "-"),
                ("2nd observer mean abs diff",
                 lambda r: f"{r['human']['mad']:.4g}" if r["human"] else "-"),
            ],
            rows,
        )
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
