"""How F1 inside the FOV holds up when a test set is made to look like another camera.

    python benchmarks/robustness.py --config configs/chase_db1.yaml --data-root DIR \
        --weights weights/sa_unetv2_fundus.keras --weights weights/sa_unetv2_drive.keras

Every test image is changed as another camera, exposure or file format would
change it: darker or brighter, a gamma curve, lower contrast, less colour,
optical blur, JPEG compression, sensor noise. The label and the FOV mask stay
as they are. Each changed set is predicted as `evaluate.py` predicts (whole,
`--scale auto` by default) and scored at the threshold (0.5 by default, the
paper's protocol; `auto`: the one each weights' .yaml records, as `predict.py`
uses). Prints the mean FOV F1 per change and weights and its difference from
the unchanged images (or `--json`).

Changes, `name:value` (comma-separated in `--changes`): `brightness:F` and
`contrast:F` and `color:F` (Pillow `ImageEnhance` factors, 1 = unchanged),
`gamma:G` (out = in ** G on [0, 1]), `blur:S` (Gaussian, sigma S pixels),
`jpeg:Q` (quality Q), `noise:S` (Gaussian, sigma S grey levels, seeded),
`vignette:S` (corners darker by the share S), `illumination:S` (one side
brighter by S, the other darker, in a seeded direction), `white_balance:S`
(seeded colour-temperature and tint gains of spread S); `data.camera` makes
them. `train.camera_augment` trains on random mixes of them
(`train.camera_changes`). Each row changes the images afresh from the same
seeds, so adding rows leaves the others' figures as they were.

An artery/vein network on an A/V config (configs/av_rite.yaml, configs/av_hrf.yaml)
is scored as evaluate.py scores it, each vessel segment typed as a whole: the
mean of artery and vein F1 (protocol (a), "A/V F1") and the accuracy of the
reference vessels' types (protocol (b)); `color:0` makes a grey (red-free-like)
photograph. A vessel network on such a config is scored on the labelled vessels.

    python benchmarks/robustness.py --config configs/av_rite.yaml --data-root DIR \
        --weights weights/sa_unetv2_av.keras --changes none,color:0,color:0.3,white_balance:0.3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, markdown_table  # noqa: E402

DEFAULT_CHANGES = (
    "none,brightness:0.6,brightness:1.4,gamma:1.5,gamma:0.67,contrast:0.6,"
    "color:0.3,blur:1.5,jpeg:75,jpeg:50,jpeg:30,noise:3,noise:8,"
    "vignette:0.5,illumination:0.3,white_balance:0.3"
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, help="a dataset's config (its test split)")
    parser.add_argument("--weights", action="append", required=True,
                        help=".keras weights; repeat to compare several")  # fmt: skip
    parser.add_argument("--data-root", help="dataset folder (or $SAUNETV2_DATA_ROOT)")
    parser.add_argument("--fold", help="STARE's fold (overrides dataset.fold)")
    parser.add_argument("--split", choices=("test", "val"), default="test",
                        help="test (default), or val: the validation photographs of a by_source "
                        "split (a run's config.yaml), as train.validation: photographs scores them")  # fmt: skip
    parser.add_argument("--changes", default=DEFAULT_CHANGES,
                        help=f"comma-separated changes (default {DEFAULT_CHANGES})")  # fmt: skip
    parser.add_argument("--scale", default="auto", help="auto (default) or a factor")
    parser.add_argument("--threshold", default="0.5",
                        help="0.5 (default), a number, or auto (each weights' chosen one)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser.parse_args(argv)


def score_weights(weights: str, samples: list, changes: list, scale, threshold, name: str) -> dict:
    """Mean FOV F1 of `weights` on `samples` under each change: {"threshold", "kind": "vessel",
    "f1": {change: F1}}; an artery/vein network: {"threshold", "kind": "av", "f1": {change: A/V F1,
    protocol (a)}, "accuracy": {change: A/V accuracy, protocol (b)}}, each vessel segment typed as
    a whole (`data.av.vote_by_segment`), as evaluate.py scores it."""
    from data.av import vote_by_segment
    from data.camera import apply_change
    from data.geometry import pad_shape_for
    from data.readers import AV_DATASETS
    from data.scale import (
        image_factor,
        prediction_factors,
        weights_fov_band,
    )
    from inference.engines import make_predictor
    from inference.evaluation import check_av_evaluation, vessel_samples
    from inference.segment import segment
    from metrics import av_classification_scores, av_segmentation_scores, image_metrics
    from models import is_av_model, load_model
    from predict import resolve_threshold

    cut, _ = resolve_threshold(threshold, Path(weights))
    band = weights_fov_band(weights)
    model = load_model(Path(weights))
    av = is_av_model(model)
    check_av_evaluation(av, name, scale, weights)
    if name in AV_DATASETS and not av:  # a vessel network on the A/V labels' vessels
        samples = vessel_samples(samples)
    predictor = make_predictor(model, "keras")
    # The changes leave the FOV mask as it is: each photograph's factors once, for every change.
    factors = [prediction_factors(scale, image_factor(scale, s.mask, band, s.name), band)
               for s in samples]  # fmt: skip
    f1, accuracy = {}, {}
    for spec, (kind, value) in changes:
        scores, typed = [], []
        for index, s in enumerate(samples):
            image = apply_change(s.image, kind, value, rng=index)
            prob = segment(predictor, image, pad_shape_for(name, image.shape[:2]), factors[index])
            if av:
                prob = vote_by_segment(prob, cut)
                scores.append(av_segmentation_scores(prob, s.label, s.mask, cut)["f1_mean"])
                typed.append(av_classification_scores(prob, s.label, s.mask)["acc"])
            else:
                scores.append(image_metrics(prob, s.label, s.mask, threshold=cut)["f1"])
        f1[spec] = float(np.mean(scores))
        line = f"{Path(weights).stem} {spec}: {'A/V F1' if av else 'FOV F1'} {f1[spec]:.4f}"
        if av:
            accuracy[spec] = float(np.mean(typed))
            line += f", A/V accuracy {accuracy[spec]:.4f}"
        print(line, file=sys.stderr)
    if av:
        return {"threshold": cut, "kind": "av", "f1": f1, "accuracy": accuracy}
    return {"threshold": cut, "kind": "vessel", "f1": f1}


def _with_difference(scores: dict, change: str) -> str:
    """A table cell: the score under `change`, with its difference from "none" but for "none"."""
    text = f"{scores[change]:.4f}"
    return text if change == "none" else f"{text} ({scores[change] - scores['none']:+.4f})"


def main(argv=None) -> int:
    args = parse_args(argv)
    from data import load_dataset
    from data.camera import parse_change
    from data.scale import parse_scale
    from predict import parse_threshold
    from training.config import resolve_run_config
    from utils.checks import check_data_root

    changes = [(spec.strip(), parse_change(spec)) for spec in args.changes.split(",")]
    if "none" not in [spec for spec, _ in changes]:
        changes.insert(0, ("none", ("none", None)))
    overrides = [] if args.fold is None else [f"dataset.fold={args.fold}"]
    cfg = resolve_run_config(args.config, overrides, data_root=args.data_root)["dataset"]
    check_data_root(cfg)
    if args.split == "val":
        from data.prepare import prepare_training_data

        samples, name = prepare_training_data(cfg, progress=False).val_photographs, cfg["name"]
        if not samples:
            raise SystemExit("--split val needs a config whose dataset.val_split is by_source")
    else:
        dataset = load_dataset(cfg)
        samples, name = [s for s in dataset.test if s.label is not None], dataset.name
    scale, threshold = parse_scale(args.scale), parse_threshold(args.threshold)
    results = {w: score_weights(w, samples, changes, scale, threshold, name)
               for w in args.weights}  # fmt: skip
    report = {"dataset": name, "split": args.split, "images": len(samples), "scale": scale,
              "machine": machine(), "weights": results}  # fmt: skip
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{name}: {len(samples)} {args.split} images, FOV F1 (mean; A/V networks: A/V F1 and "
          f"accuracy), scale {scale}\n")  # fmt: skip
    columns = [("change", lambda r: r["change"])]
    for w, result in results.items():
        scores = [("f1", "A/V F1, " if result["kind"] == "av" else "")]
        if result["kind"] == "av":
            scores.append(("accuracy", "A/V accuracy, "))
        for key, what in scores:
            columns.append((f"{Path(w).stem} ({what}t={result['threshold']:g})",
                            lambda r, got=result[key]: _with_difference(got, r["change"])))  # fmt: skip
    print(markdown_table(columns, [{"change": spec} for spec, _ in changes]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
