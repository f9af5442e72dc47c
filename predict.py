"""Segment the vessels of your own fundus images.

    python predict.py --weights weights/sa_unetv2_drive.keras --out predictions photo1.jpg folder/

Any size and camera: with --scale auto (the default) each photograph is
resampled so that its field of view is as wide as in the images the weights
were trained on (the factor is printed per image; DRIVE-sized photographs
keep factor 1), padded to a multiple of 8, predicted, and the probabilities
resampled back and thresholded at the input's size.
Writes, per input, PNGs of the input's size: <stem>_prob.png (probability
0..255), <stem>_binary.png (vessels 255 inside the field of view),
<stem>_overlay.png (vessels drawn on the photograph) and <stem>_fov.png
(the field-of-view mask: --mask, or generated from the image).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from utils.cli import run_cli
from utils.errors import UserError


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files or folders of images"
    )
    parser.add_argument("--weights", required=True, help="a .keras checkpoint")
    parser.add_argument(
        "--out", default="predictions", help="output folder (default: predictions/)"
    )
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="vessel if probability > threshold (0.5)"
    )
    parser.add_argument("--mask", help="FOV mask image for a single input (default: generated)")
    parser.add_argument(
        "--no-fov", action="store_true", help="do not restrict the binary map to the field of view"
    )
    parser.add_argument(
        "--scale",
        default="auto",
        help="auto (default): resample each photograph so its field of view is as wide as the "
        "training images' (factor printed per image); a number: that factor; 1: off",
    )
    parser.add_argument("--engine", default="auto", help="inference engine (auto, keras, ...)")
    parser.add_argument("--backend", choices=("tensorflow", "jax", "torch"), help="Keras backend")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not 0.0 <= args.threshold <= 1.0:
        raise UserError(f"--threshold must be in [0, 1], got {args.threshold}")
    from data.scale import parse_scale

    scale = parse_scale(args.scale)
    from utils.io import check_weights_file

    weights = check_weights_file(args.weights)
    from inference.pipeline import collect_inputs, predict_files

    files = collect_inputs(args.inputs)
    if args.mask and len(files) != 1:
        raise UserError(f"--mask applies to a single input image, got {len(files)} images")
    from training.backend import select_backend

    select_backend(args.backend)  # after the checks above: a typo costs no TensorFlow import
    predict_files(
        files,
        weights=weights,
        out_dir=Path(args.out),
        threshold=args.threshold,
        engine=args.engine,
        mask_path=Path(args.mask) if args.mask else None,
        use_fov=not args.no_fov,
        scale=scale,
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
