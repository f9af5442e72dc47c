"""Export a trained `.keras` model to ONNX, TF SavedModel and TFLite, with a parity check.

    python export.py --weights runs/drive/best.keras --format all --out exports/drive
    python export.py --weights W.keras --format onnx --out DIR

Writes DIR/model.onnx, DIR/saved_model/ and DIR/model.tflite (each written
under a temporary name and renamed into place), then loads every file with
its own runtime (ONNX Runtime, TensorFlow, the TFLite interpreter) and prints
its largest probability difference from the Keras model on a random
2 x 64 x 96 batch; more than --tolerance (1e-3) is an error (exit status 2).
All exports take float32 (B, H, W, 3) in [0, 1], H and W multiples of 8, and
return (B, H, W, 1) vessel probabilities.
"""

from __future__ import annotations

import argparse
import sys

from utils.cli import run_cli


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, help="a trained Keras 3 .keras file")
    parser.add_argument(
        "--format", default="all", help="onnx, savedmodel, tflite, a comma list of them, or all"
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--tolerance", type=float, default=1e-3, help="largest allowed probability difference"
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from inference.export import export_model, parse_formats

    formats = parse_formats(args.format)  # checked before the (slow) model load
    from models import load_model

    model = load_model(args.weights)
    for result in export_model(model, args.out, formats, tolerance=args.tolerance):
        if result["status"] == "ok":
            print(
                f"{result['format']}: {result['path']} "
                f"(max abs diff vs keras {result['max_abs_diff']:.2e})"
            )
        else:
            print(f"{result['format']}: {result['status']}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
