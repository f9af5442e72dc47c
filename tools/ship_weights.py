"""Copy a finished run into weights/ as a shippable set, evaluated on its test split.

    python tools/ship_weights.py --run runs/drive --stem sa_unetv2_drive --data-root DIR

writes, each atomically:
  weights/<stem>.keras         the run's best.keras without optimizer state (safe-mode loadable)
  weights/<stem>.yaml          the run's resolved config, data_root cleared
  weights/<stem>.history.csv   the run's per-epoch history
  weights/<stem>.curves.png    its training curves (loss, accuracy, learning rate per epoch)
  weights/<stem>.eval.json     evaluate.py's metrics of these weights (per image and summary),
                               and which checkpoint of the run they are (file and epoch)
so that `python evaluate.py --config weights/<stem>.yaml --weights weights/<stem>.keras
--data-root DIR` reproduces the recorded row (tests/test_weights.py checks a few images).

The yaml also records `scale.vessel_calibre` (for `--scale vessels`): the main vessels' calibre
in the maps these weights draw of the validation photographs at the chosen threshold, or where
the run validated on augmented images, in its training labels; and `evaluate.chosen_threshold`: the threshold (0.05-0.95 in steps of 0.01)
with the best mean F1 over the run's own validation images, the split train.py held out, never
the test images (`predict.py --threshold auto` uses it; evaluation keeps the paper's 0.5).
eval.json records it with that F1 and the number of validation images.

--calibrate folds that threshold into the output: the bias of the network's last 1x1 convolution
is lowered by logit(threshold) (`models.blocks.fold_threshold`), so that 0.5 on the shipped
weights marks exactly the pixels the chosen threshold marked on the run's checkpoint, for
evaluation at the paper's 0.5 and for any program that thresholds the exported model at 0.5.
The yaml's chosen_threshold is then 0.5 and its folded_threshold the one folded in; eval.json's
`threshold_choice` records the validation F1 at 0.5 of the folded weights, the choice before
folding and the bias shift (`folded`), and the threshold a new search on the same images prefers
(`best_after_folding`, a check: about 0.5).

An artery/vein network (`sa_unetv2_av`, docs/arteries-veins.md) ships at evaluate.threshold
(0.5): no threshold is chosen and --calibrate is refused; eval.json holds evaluate.py's metrics
with both A/V protocols under "av".
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils.cli import run_cli  # noqa: E402
from utils.errors import UserError  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a run folder written by train.py")
    parser.add_argument("--stem", required=True, help="file stem under weights/")
    parser.add_argument("--data-root", help="dataset folder (or $SAUNETV2_DATA_ROOT)")
    parser.add_argument("--checkpoint", default="best.keras", help="best.keras or last.keras")
    parser.add_argument("--out", default=str(ROOT / "weights"), help="target folder")
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="fold the threshold chosen on the validation images into the output bias (0.5 becomes it)",
    )
    parser.add_argument(
        "--no-eval",
        action="store_true",
        help="skip the test-split evaluation (eval.json then records the threshold choice and the "
        "checkpoint only); benchmarks/leave_one_out.py scores the camera left out instead",
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    run = Path(args.run)
    for name in (args.checkpoint, "config.yaml", "history.csv"):
        if not (run / name).is_file():
            raise UserError(f"{run / name} does not exist; --run must be a folder train.py wrote")
    if not args.stem.replace("_", "").replace("-", "").isalnum():
        raise UserError(f"--stem may hold letters, digits, '_' and '-' only, got '{args.stem}'")

    from inference.evaluation import evaluate_checkpoint
    from metrics import DEFAULT_THRESHOLD
    from models import is_av_model, load_model
    from models.blocks import fold_threshold
    from training.config import resolve_run_config
    from training.plots import plot_history
    from training.run_folder import read_history
    from training.run_summary import best_epoch
    from utils.config import save_config
    from utils.io import atomic_path, write_json

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = resolve_run_config(run / "config.yaml")
    cfg["dataset"]["data_root"] = None
    model = load_model(run / args.checkpoint)  # compile=False: no optimizer state
    av = is_av_model(model)
    if av and args.calibrate:
        raise UserError(
            "--calibrate folds a vessel threshold into a one-channel output; an artery/vein "
            "network keeps evaluate.threshold (0.5) and needs no --calibrate"
        )
    # An artery/vein network runs on the photograph the vessel network resampled (predict.py
    # --av) at evaluate.threshold: no threshold choice, no calibre of its own.
    choice = None if av else validation_threshold(cfg, model, args.data_root)
    if choice is not None:
        # Validated on whole photographs: their maps; else (augmented images) the training labels.
        cfg["scale"]["vessel_calibre"] = choice["vessel_calibre"] or training_vessel_calibre(
            cfg, args.data_root
        )
    if args.calibrate:
        folded = {**choice, "bias_shift": round(fold_threshold(model, choice["threshold"]), 6)}
        check = validation_threshold(cfg, model, args.data_root)  # the same images, folded model
        choice = {
            **check,
            "threshold": DEFAULT_THRESHOLD,  # the folded operating point
            "val_f1": check["val_f1_at_0.5"],
            "best_after_folding": {"threshold": check["threshold"], "val_f1": check["val_f1"]},
            "folded": folded,
        }
        cfg["evaluate"]["folded_threshold"] = folded["threshold"]
        print(
            f"folded the threshold {folded['threshold']:.2f} into the output bias "
            f"({folded['bias_shift']:+.4f}); validation F1 at 0.5 now {choice['val_f1']:.4f} "
            f"(best {check['val_f1']:.4f} at {check['threshold']:.2f})"
        )
    with atomic_path(out / f"{args.stem}.keras") as tmp:
        model.save(tmp)
    if choice is not None:
        cfg["evaluate"]["chosen_threshold"] = choice["threshold"]
    save_config(cfg, out / f"{args.stem}.yaml")
    with atomic_path(out / f"{args.stem}.history.csv") as tmp:
        shutil.copyfile(run / "history.csv", tmp)
    history = read_history(out / f"{args.stem}.history.csv")
    plot_history(history, out / f"{args.stem}.curves.png")
    summary = {}
    if not args.no_eval:
        eval_cfg = resolve_run_config(out / f"{args.stem}.yaml", data_root=args.data_root)
        eval_cfg["evaluate"]["save_images"] = False
        with tempfile.TemporaryDirectory() as scratch:
            summary = evaluate_checkpoint(eval_cfg, out / f"{args.stem}.keras", scratch)
    epoch = history[-1]["epoch"] if args.checkpoint == "last.keras" and history else None
    monitor, mode = cfg["train"]["checkpoint"]["monitor"], cfg["train"]["checkpoint"]["mode"]
    if args.checkpoint == "best.keras" and history and all(monitor in row for row in history):
        epoch = best_epoch(history, monitor, mode)  # the epoch RunCheckpoint saved as best.keras
    record = {**summary, **({"threshold_choice": choice} if choice is not None else {})}
    record["checkpoint"] = {"file": args.checkpoint, "epoch": epoch}
    write_json(out / f"{args.stem}.eval.json", record)
    if choice is None:
        print(f"artery/vein network: classes at evaluate.threshold {cfg['evaluate']['threshold']:.2f}")
    elif args.calibrate:
        print(
            f"recorded threshold 0.50: the {choice['folded']['threshold']:.2f} chosen on "
            f"{choice['val_images']} validation images, folded into the weights"
        )
    else:
        print(
            f"threshold of the best mean F1 on {choice['val_images']} validation images: "
            f"{choice['threshold']:.2f} (F1 {choice['val_f1']:.4f}; at 0.5: {choice['val_f1_at_0.5']:.4f})"
        )
    print(f"wrote {out}/{args.stem}.{{keras,yaml,history.csv,curves.png,eval.json}}")
    return 0


def training_vessel_calibre(cfg: dict, data_root: str | None) -> list[float] | None:
    """`data.scale.vessel_calibre_range` of the run's training photographs, as they trained."""
    import copy

    from data import load_dataset
    from data.scale import vessel_calibre_range

    dataset = copy.deepcopy(cfg["dataset"])
    if data_root is not None:
        dataset["data_root"] = data_root
    return vessel_calibre_range(load_dataset(dataset).train)


def validation_threshold(cfg: dict, model, data_root: str | None) -> dict:
    """The threshold of the best mean F1 over the run's validation images (`metrics.best_threshold`),
    predicted by `model` as train.py validated: the same augmented, padded images and split, or
    with `train.validation: photographs` the held-out photographs whole, F1 inside their FOV."""
    import copy

    import numpy as np

    from data.io import to_unit_float
    from data.prepare import prepare_training_data
    from data.scale import vessel_calibre_range
    from inference.engines import make_predictor
    from inference.segment import segment
    from metrics import DEFAULT_THRESHOLD, THRESHOLD_GRID, best_threshold, f1_by_threshold
    from training.trainer import pad_to_model

    dataset = copy.deepcopy(cfg["dataset"])
    if data_root is not None:
        dataset["data_root"] = data_root
    data = prepare_training_data(dataset, progress=False)
    if not len(data.x_val):
        raise UserError("the run held out no validation images: no threshold can be chosen")
    predictor = make_predictor(model, cfg["evaluate"]["engine"])
    calibre = None
    if cfg["train"]["validation"] == "photographs":
        photos = data.val_photographs
        maps = [segment(predictor, s.image) for s in photos]
        probs = [m[s.mask] for m, s in zip(maps, photos, strict=True)]
        labels = [s.label[s.mask] for s in photos]
    else:
        x_val, y_val = pad_to_model(model, data.x_val, data.y_val)
        probs = [
            np.asarray(predictor.predict(to_unit_float(x_val[i : i + 1])))[0, ..., 0]
            for i in range(len(x_val))
        ]
        labels = [y[..., 0] for y in y_val]
    curve = f1_by_threshold(probs, labels)  # one pass over the pixels for every threshold
    threshold, f1 = best_threshold(curve)
    at_half = curve[THRESHOLD_GRID.index(DEFAULT_THRESHOLD)]
    if cfg["train"]["validation"] == "photographs":
        # The main vessels as these weights draw them at the sizes they trained at: what
        # --scale vessels compares a photograph's first-pass map with (a network that draws
        # vessels a pixel wider than its labels measures them so on every camera).
        vessels = [m > threshold for m in maps]
        calibre = vessel_calibre_range(photos, vessels)
    return {
        "threshold": threshold,
        "val_f1": round(f1, 6),
        "val_f1_at_0.5": round(float(at_half), 6),
        "val_images": len(probs),
        "grid": [THRESHOLD_GRID[0], THRESHOLD_GRID[-1], 0.01],
        "vessel_calibre": calibre,
    }


if __name__ == "__main__":
    sys.exit(run_cli(main))
