"""Evaluate a checkpoint on a dataset's test split (the paper's protocol, docs/paper.md section 5).

    python evaluate.py --config configs/drive.yaml --weights runs/drive/best.keras --data-root DIR
    python evaluate.py --config weights/sa_unetv2_drive.yaml --weights weights/sa_unetv2_drive.keras
    python evaluate.py --config configs/stare.yaml --fold all --weights W_DRIVE.keras   # cross-dataset
    python evaluate.py --config configs/av_rite.yaml --weights runs/av_rite/best.keras --data-root DIR

Brings each test image to the scale the weights were trained at (--scale auto,
the default: factor = training FOV diameter / the image's, 1 on DRIVE and
STARE; the factors are printed), pads it to the paper's size (DRIVE 592 x 592,
STARE 704 x 704), predicts, crops back (and resamples back to the image's size), and scores per image at threshold 0.5 over the whole
image and inside the FOV mask; prints a per-image table and the summary, and
writes metrics.json, per_image.csv, results.md and per-image probability,
binary and overlay PNGs (true positives green, false positives red, false
negatives blue). DRIVE adds the second human observer as a reference row.
An artery/vein network (configs/av_rite.yaml, configs/av_hrf.yaml) is scored twice: its vessel
channel with the vessel metrics against every labelled vessel pixel, and its artery/vein classes
with both protocols of docs/arteries-veins.md (mean, std, bootstrap interval and pooled;
per image in metrics.json), after typing each vessel segment between junctions as a whole
(--set evaluate.av_vote=false: each pixel by itself); it also writes <image>_av.png (arteries
red, veins blue).
--tta also predicts each image mirrored left-right and scores the mean of the two
maps (test-time augmentation, outside the paper's protocol; metrics.json says so).
--split train scores the training images instead (output folder <weights stem>_train), for a
choice that must not see the test images: for example a setting chosen on another dataset's
training photographs, which the weights never saw.

--predictions DIR scores instead the vessel maps predict.py wrote for the test
photographs (<image>_binary.png, searched through DIR's sub-folders), as a user
gets them: whatever weights, threshold and scale predict.py used, no model
loaded. Maps larger than the label (HRF's full-size photographs against its
half-size labels) are resampled to it by nearest neighbour; AUC is n/a.

    python predict.py --out preds/chase ../data/CHASE_DB1/Image_1[1-4]?.jpg
    python evaluate.py --config configs/chase_db1.yaml --predictions preds/chase --data-root DIR
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
        "--config", required=True, help="YAML config of the run (its dataset and evaluate sections)"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--weights", help="a .keras checkpoint (best.keras, last.keras, weights/*.keras)"
    )
    source.add_argument(
        "--predictions",
        metavar="DIR",
        help="instead of weights: score the vessel maps predict.py wrote into DIR "
        "(<image>_binary.png of each test image), as they are",
    )
    parser.add_argument(
        "--data-root", help="dataset folder or archive (default: $SAUNETV2_DATA_ROOT)"
    )
    parser.add_argument("--out", help="output folder (default: runs/eval/<weights stem>)")
    parser.add_argument(
        "--fold",
        help="STARE fold 1..5, loo:<image id>, or all (the 20 images; overrides dataset.fold)",
    )
    parser.add_argument(
        "--scale",
        help="auto (default: each image brought to the FOV diameter the weights were trained at), "
        "vessels (auto, then, where the main vessels are wider than the weights' range, "
        "shrunk to its middle), "
        "NNNpx (every FOV brought to NNN px; LOW-HIGHpx: into that band), or a factor (1 = off); "
        "overrides evaluate.scale",
    )
    parser.add_argument(
        "--upsample",
        type=int,
        default=1,
        metavar="K",
        help="enlarge the test images K times first (a stand-in for a high-resolution camera)",
    )
    parser.add_argument(
        "--threshold", type=float, help="overrides evaluate.threshold (default 0.5)"
    )
    parser.add_argument(
        "--engine",
        help="inference engine: auto (default), keras, or one listed by benchmarks/inference.py",
    )
    parser.add_argument("--backend", choices=("tensorflow", "jax", "torch"), help="Keras backend")
    parser.add_argument(
        "--tta",
        action="store_true",
        help="test-time augmentation: also predict each image mirrored left-right and average "
        "the two maps (twice the network time; not the paper's protocol)",
    )
    parser.add_argument(
        "--split",
        choices=("test", "train"),
        default="test",
        help="the split scored (default test); train: every training image, for choices made "
        "without the test images (another dataset's, or a run's own validation images)",
    )
    parser.add_argument("--no-images", action="store_true", help="write metrics only, no PNGs")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override any config value"
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from data.scale import parse_scale

    if args.scale is not None:
        parse_scale(args.scale)  # a bad value is refused before anything is loaded
    if args.upsample < 1:
        raise UserError(f"--upsample must be a positive whole number, got {args.upsample}")
    if args.predictions is not None:
        given = [
            flag
            for flag, value in (
                ("--scale", args.scale),
                ("--upsample", args.upsample != 1 or None),
                ("--threshold", args.threshold),
                ("--engine", args.engine),
                ("--backend", args.backend),
                ("--tta", args.tta or None),
            )
            if value is not None
        ]
        if given:
            raise UserError(
                f"{', '.join(given)} cannot apply to --predictions: the vessel maps are scored "
                "as predict.py wrote them (give those options to predict.py)"
            )
    from training.config import resolve_run_config
    from utils.io import check_weights_file

    weights = None if args.weights is None else check_weights_file(args.weights)
    overrides = list(args.set)
    if args.fold is not None:
        overrides.append(f"dataset.fold={args.fold}")
    if args.threshold is not None:
        overrides.append(f"evaluate.threshold={args.threshold}")
    if args.no_images:
        overrides.append("evaluate.save_images=false")
    cfg = resolve_run_config(args.config, overrides, data_root=args.data_root)
    from utils.checks import check_data_root

    check_data_root(cfg["dataset"])
    suffix = "" if args.split == "test" else f"_{args.split}"
    if weights is None:
        from inference.evaluation import evaluate_prediction_folder

        folder = Path(args.predictions)
        out = Path(args.out) if args.out else Path("runs") / "eval" / f"{folder.name}_maps{suffix}"
        evaluate_prediction_folder(cfg, folder, out, split=args.split)
        return 0
    from training.backend import select_backend

    select_backend(args.backend)  # after the checks above: a typo costs no TensorFlow import
    from inference.evaluation import evaluate_checkpoint

    out = Path(args.out) if args.out else Path("runs") / "eval" / f"{weights.stem}{suffix}"
    evaluate_checkpoint(
        cfg,
        weights,
        out,
        engine=args.engine,
        scale=args.scale,
        upsample=args.upsample,
        mirror=args.tta,
        split=args.split,
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
