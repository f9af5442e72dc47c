"""Largest probability difference of every engine from a float64 run, on real test images.

    python benchmarks/precision.py --weights W.keras --dataset drive --data-root DIR
    python benchmarks/precision.py --weights W.keras --dataset drive --limit 5 --json

Each test image is zero-padded as in evaluation and run alone (batch 1, as
predict.py and evaluate.py do). Columns: the largest |p - p_float64| over all
pixels of all images; the same against the plain Keras path ("keras", batch
1) and against the Keras path with the image in a batch of two; the number of
pixels on the other side of 0.5 than in float64. Under TensorFlow it also
prints the relative error of TensorFlow's float32 mean over the axes that
GroupNormalization reduces, at batch 1 and 2 (the plain path's own error at
batch 1 comes from there: docs/inference.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import markdown_table  # noqa: E402
from utils.cli import run_cli  # noqa: E402
from utils.errors import UserError  # noqa: E402

COLUMNS = [
    ("engine", lambda r: r["engine"]),
    ("max diff vs float64", lambda r: f"{r['vs_float64']:.1e}"),
    ("vs keras (batch 1)", lambda r: f"{r['vs_keras_batch1']:.1e}"),
    ("vs keras (batch 2)", lambda r: f"{r['vs_keras_batch2']:.1e}"),
    ("flips at 0.5", lambda r: str(r["flips"])),
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="a trained .keras file (default: random weights)")
    parser.add_argument("--dataset", default="drive", help="drive, stare or synthetic")
    parser.add_argument("--data-root", help="folder with DRIVE/ or STARE/ (or SAUNETV2_DATA_ROOT)")
    parser.add_argument("--fold", type=int, default=1, help="STARE fold (default 1)")
    parser.add_argument("--limit", type=int, default=0, help="first N test images (0: all)")
    parser.add_argument("--engines", default="all", help="comma-separated engines, or 'all'")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import keras

    from data.geometry import pad_to
    from data.io import to_unit_float
    from data.readers import load_dataset
    from inference.engines import parse_engines
    from inference.precision import compare_engines, tf_mean_error
    from models import build_model, load_model

    if args.dataset not in ("drive", "stare", "synthetic"):
        raise UserError(f"--dataset must be drive, stare or synthetic, got '{args.dataset}'")
    engines = parse_engines(args.engines)
    dataset = load_dataset({"name": args.dataset, "data_root": args.data_root, "fold": args.fold})
    samples = dataset.test[: args.limit] if args.limit > 0 else dataset.test
    images = (pad_to(to_unit_float(s.image), dataset.pad_shape) for s in samples)
    if args.weights:
        model, source = load_model(args.weights), args.weights
    else:
        keras.utils.set_random_seed(0)
        model, source = build_model("sa_unetv2"), "sa_unetv2 (random weights)"
    rows = compare_engines(model, engines, images)
    result = {
        "weights": source,
        "dataset": args.dataset,
        "images": len(samples),
        "shape": list(dataset.pad_shape),
        "engines": rows,
    }
    if keras.backend.backend() == "tensorflow":
        result["tf_group_mean_relative_error"] = {
            "batch1": tf_mean_error(1),
            "batch2": tf_mean_error(2),
        }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{source}: {len(samples)} {args.dataset} test images, padded to "
        f"{dataset.pad_shape[0]} x {dataset.pad_shape[1]}, batch 1\n"
    )
    print(markdown_table(COLUMNS, rows))
    if "tf_group_mean_relative_error" in result:
        err = result["tf_group_mean_relative_error"]
        print(
            f"\nTensorFlow float32 mean over GroupNorm's axes, relative error: "
            f"batch 1 {err['batch1']:.1e}, batch 2 {err['batch2']:.1e}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
