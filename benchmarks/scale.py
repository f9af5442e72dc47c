"""F1 of weights on a dataset's test images at several prediction scales (the choice of `--scale auto`).

    python benchmarks/scale.py --weights weights/sa_unetv2_drive_interim.keras --dataset stare \\
        --fold all --factors auto,ratio,1,0.9,1.1 --data-root ../shared/data
    python benchmarks/scale.py --weights W --dataset drive --upsample 4 --factors auto,1

Each factor spec is a number (every image resampled by it), `auto` (the
rule of `--scale auto`: `data.scale.scale_factor` and `prediction_factors`), `ratio` (the plain ratio train FOV
diameter / image FOV diameter, no unit band), `ratio^P` (the ratio to the
power P), `ratio*K` (K times the ratio), `floorF` (the ratio, at least F), or two specs joined by `&` (mean
of the two probability maps) or `|` (their maximum). `--upsample K` enlarges the test images K times first (labels and
masks nearest neighbour: a stand-in for a high-resolution camera). Prints a
table (or `--json`) of the mean F1 inside the FOV and over the whole image
(threshold 0.5, the paper's per-image mean; F1 does not need AUC, which is
left out for speed) per spec, with the factors used; a line per spec goes to
stderr as it finishes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, markdown_table  # noqa: E402

COLUMNS = [
    ("factors", lambda r: r["spec"]),
    ("factor range", lambda r: f"{r['factor_min']:.3f}-{r['factor_max']:.3f}"),
    ("FOV F1", lambda r: f"{r['fov_f1']:.4f}"),
    ("whole-image F1", lambda r: f"{r['whole_f1']:.4f}"),
    ("seconds", lambda r: f"{r['seconds']:.1f}"),
]


def factor_for(spec: str, mask, train_diameter, name: str) -> float:
    """The factor of one `--factors` part; `train_diameter`: the weights' data.scale.FovBand
    ("ratio" is to the nearest end of a band)."""
    from data.scale import fov_diameter, image_factor

    if spec == "auto":  # the rule's first factor; run_spec adds its second
        return image_factor("auto", mask, train_diameter, name)
    if spec.startswith("floor"):
        return max(float(spec[5:]), factor_for("ratio", mask, train_diameter, name))
    if spec.startswith("ratio*"):
        return float(spec[6:]) * factor_for("ratio", mask, train_diameter, name)
    if spec.startswith("ratio"):
        power = float(spec.split("^", 1)[1]) if "^" in spec else 1.0
        diameter = fov_diameter(mask)
        return 1.0 if diameter is None else (train_diameter.target(diameter) / diameter) ** power
    return float(spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument(
        "--dataset", default="drive", choices=("drive", "stare", "chase_db1", "hrf")
    )
    parser.add_argument("--fold", default="all", help="STARE fold (default: all 20 images)")
    parser.add_argument("--upsample", type=int, default=1)
    parser.add_argument("--factors", default="auto,1")
    parser.add_argument("--images", type=int, help="only the first N test images")
    parser.add_argument("--engine", default="auto")
    parser.add_argument(
        "--data-root", default=os.environ.get("SAUNETV2_DATA_ROOT", "../shared/data")
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from training.backend import select_backend
    from utils.cli import quiet_tensorflow_logs

    quiet_tensorflow_logs()
    select_backend(None)
    from data import load_dataset
    from data.geometry import pad_shape_for
    from data.scale import (
        prediction_factors,
        upsample_sample,
        weights_fov_band,
    )
    from inference.engines import make_predictor
    from inference.segment import segment
    from metrics import binary_scores

    cfg = {"name": args.dataset, "data_root": args.data_root}
    if args.dataset == "stare":
        cfg["fold"] = args.fold
    samples = load_dataset(cfg).test[: args.images]
    samples = [upsample_sample(s, args.upsample) for s in samples]
    train_diameter = weights_fov_band(args.weights)
    predictor = make_predictor(args.weights, args.engine)
    rows = []
    for spec in args.factors.split(","):
        start = time.perf_counter()
        factors, probs = [], []
        joint = "&" if "&" in spec else "|"
        for s in samples:
            maps = []
            for part in spec.split(joint):
                factor = factor_for(part, s.mask, train_diameter, s.name)
                pad = pad_shape_for(args.dataset, s.image.shape[:2]) if factor == 1.0 else None
                scales = (
                    prediction_factors("auto", factor, train_diameter) if part == "auto" else factor
                )
                maps.append(segment(predictor, s.image, pad, scales))
                factors.append(factor)
            probs.append(np.mean(maps, axis=0) if joint == "&" else np.max(maps, axis=0))
        fov_f1 = [
            binary_scores(p > 0.5, s.label, s.mask)["f1"]
            for p, s in zip(probs, samples, strict=True)
        ]
        whole_f1 = [
            binary_scores(p > 0.5, s.label)["f1"] for p, s in zip(probs, samples, strict=True)
        ]
        rows.append(
            {
                "spec": spec,
                "factor_min": min(factors),
                "factor_max": max(factors),
                "fov_f1": float(np.mean(fov_f1)),
                "whole_f1": float(np.mean(whole_f1)),
                "seconds": time.perf_counter() - start,
            }
        )
        r = rows[-1]
        print(  # progress: each spec takes a while
            f"{args.dataset} x{args.upsample} ({len(samples)} images) {spec:>10}: factor "
            f"{r['factor_min']:.3f}-{r['factor_max']:.3f}  FOV F1 {r['fov_f1']:.4f}  "
            f"whole F1 {r['whole_f1']:.4f}  {r['seconds']:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{args.dataset} x{args.upsample}, {len(samples)} test images, {machine()}\n")
        print(markdown_table(COLUMNS, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
