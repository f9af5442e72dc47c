"""How much of a dataset's labelled detail survives when a network works at a given FOV diameter.

    python benchmarks/scale_ceiling.py --dataset hrf --diameters 538,700,900,1200,native --data-root DIR

No network: each test image's manual label stands for a perfect prediction
at the working scale. It is shrunk to the FOV diameter D (factor D / the
image's own FOV diameter, `data.scale.fov_diameter`; never enlarged) as a
coverage map (`data.scale.resize_probability`: bilinear, antialiased, so a
pixel holds the share of vessel it covers), brought back to full size the
way prediction brings probabilities back, and thresholded at 0.5. The mean
F1 inside the FOV against the label itself is the best any model working at
D can score under the paper's protocol: the ceiling set by the scale alone.
`native` is the image as it is (F1 1). Prints a table (or `--json`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, markdown_table  # noqa: E402


def ceiling_f1(label: np.ndarray, mask: np.ndarray, factor: float) -> float:
    """F1 inside `mask` of `label` shrunk by `factor` as a coverage map and brought back."""
    from data.scale import resize_probability, scaled_shape
    from metrics import image_metrics

    coverage = np.asarray(label, dtype=np.float32)
    if factor < 1.0:
        shape = coverage.shape
        small = resize_probability(coverage, scaled_shape(shape, factor))
        coverage = resize_probability(small, shape)
    return image_metrics(coverage, label, mask)["f1"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="hrf", help="drive, stare, chase_db1 or hrf")
    parser.add_argument("--fold", default="5", help="STARE's fold (default 5)")
    parser.add_argument(
        "--diameters",
        default="538,700,900,1200,native",
        help="comma-separated FOV diameters in pixels, or native (default 538,700,900,1200,native)",
    )
    parser.add_argument("--data-root", help="dataset folder (or $SAUNETV2_DATA_ROOT)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from data import load_dataset
    from data.scale import fov_diameter

    cfg = {"name": args.dataset, "data_root": args.data_root}
    if args.dataset == "stare":
        cfg["fold"] = args.fold
    dataset = load_dataset(cfg)
    samples = [s for s in dataset.test if s.label is not None]
    diameters = [fov_diameter(s.mask) for s in samples]
    rows = []
    for spec in args.diameters.split(","):
        target = None if spec.strip() == "native" else float(spec)
        factors = [1.0 if target is None else min(1.0, target / d) for d in diameters]
        scores = [ceiling_f1(s.label, s.mask, f) for s, f in zip(samples, factors, strict=True)]
        rows.append({"diameter": spec.strip(), "factor_min": min(factors),
                     "factor_max": max(factors), "fov_f1": float(np.mean(scores)),
                     "fov_f1_min": float(np.min(scores))})  # fmt: skip
        print(f"{spec}: FOV F1 ceiling {rows[-1]['fov_f1']:.4f}", file=sys.stderr)
    report = {"dataset": dataset.name, "images": len(samples),
              "image_fov_diameter": [float(np.min(diameters)), float(np.max(diameters))],
              "machine": machine(), "rows": rows}  # fmt: skip
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    low, high = report["image_fov_diameter"]
    print(f"{dataset.name}: {len(samples)} labelled test images, FOV diameter {low:.0f}-{high:.0f} px\n")
    print(markdown_table(
        [("working FOV diameter", lambda r: r["diameter"]),
         ("factor", lambda r: f"{r['factor_min']:.3f}-{r['factor_max']:.3f}"),
         ("FOV F1 ceiling (mean)", lambda r: f"{r['fov_f1']:.4f}"),
         ("lowest image", lambda r: f"{r['fov_f1_min']:.4f}")],
        rows,
    ))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
