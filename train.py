"""Train SA-UNetv2 (or a baseline) with the paper's recipe.

    python train.py --config configs/demo.yaml                      # built-in synthetic set, CPU minutes
    python train.py --config configs/drive.yaml --data-root DIR --out runs/drive
    python train.py --config configs/av_rite.yaml --data-root DIR --out runs/av_rite   # arteries/veins
    python train.py --config configs/drive.yaml --out runs/drive --resume
    python train.py --config configs/drive.yaml --out runs/drive --resume --stop-at 11:55
    python train.py --config configs/stare.yaml --data-root DIR --fold 2 --out runs/stare_fold2

Writes the run folder (resolved config, best.keras, last.keras, history.csv,
curves.png, TensorBoard logs) and, at the end, the test evaluation in
RUN/eval/. Any config value can be changed with --set section.key=value.
A resumed run keeps its saved config: it takes --epochs, --data-root and the
settings in training.config.RESUME_KEYS anew and refuses other changes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from utils.cli import run_cli


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config", required=True, help="YAML config (configs/drive.yaml, configs/stare.yaml, ...)"
    )
    parser.add_argument(
        "--data-root", help="dataset folder or archive (default: $SAUNETV2_DATA_ROOT)"
    )
    parser.add_argument("--out", help="run folder (default: runs/<experiment name>)")
    parser.add_argument("--epochs", type=int, help="number of epochs (overrides train.epochs)")
    parser.add_argument("--batch-size", type=int, help="overrides train.batch_size")
    parser.add_argument("--fold", help="STARE fold 1..5 or loo:<image id> (overrides dataset.fold)")
    parser.add_argument("--seed", type=int, help="overrides train.seed and dataset.seed")
    parser.add_argument(
        "--backend",
        choices=("tensorflow", "jax", "torch"),
        help="Keras backend (default: $KERAS_BACKEND or tensorflow)",
    )
    parser.add_argument(
        "--mixed-precision",
        choices=("mixed_bfloat16", "mixed_float16"),
        help="mixed-precision policy",
    )
    parser.add_argument(
        "--distribute",
        action="store_true",
        help="data-parallel over all devices (TF MirroredStrategy / JAX DataParallel)",
    )
    parser.add_argument(
        "--cache",
        help="cache folder for the augmented set (default: $SAUNETV2_CACHE or ~/.cache/sa-unetv2)",
    )
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from last.keras, with its saved config "
        "(new --epochs, --data-root, jit/tensorboard/evaluate settings; other changes are refused)",
    )
    resume.add_argument("--overwrite", action="store_true", help="replace the run in --out")
    parser.add_argument(
        "--no-eval", action="store_true", help="skip the test evaluation at the end"
    )
    parser.add_argument(
        "--stop-at",
        metavar="WHEN",
        help="stop after the last epoch that ends before WHEN (HH:MM, an ISO date and time, "
        "or +90m / +2h); the run continues later with --resume",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config value, e.g. train.learning_rate=5e-4",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar (one line per epoch)")
    return parser.parse_args(argv)


def flag_overrides(args) -> list[str]:
    """Flags as `key=value` overrides, applied after the config file and before --set."""
    pairs = [
        ("train.epochs", args.epochs),
        ("train.batch_size", args.batch_size),
        ("dataset.fold", args.fold),
        ("train.seed", args.seed),
        ("dataset.seed", args.seed),
        ("train.mixed_precision", args.mixed_precision),
        ("train.distribute", True if args.distribute else None),
    ]
    return [
        f"{key}={json.dumps(value) if isinstance(value, bool) else value}"
        for key, value in pairs
        if value is not None
    ]


def main(argv=None) -> int:
    args = parse_args(argv)
    from utils.checks import check_data_root, parse_stop_at

    stop_at = parse_stop_at(args.stop_at) if args.stop_at else None
    from training.config import resolve_run_config

    # The config is checked first: a typo costs no TensorFlow import.
    overrides = flag_overrides(args) + args.set
    cfg = resolve_run_config(args.config, overrides, data_root=args.data_root)
    from training.run_folder import check_run_dir

    run_dir = Path(args.out) if args.out else Path("runs") / cfg["experiment"]["name"]
    if check_run_dir(run_dir, resume=args.resume, overwrite=args.overwrite) is not None:
        from training.config import resolve_resume_config

        # A flag the resumed run cannot take is one sentence now, not after the imports.
        resolve_resume_config(run_dir, cfg, overrides)
    check_data_root(cfg["dataset"])
    from training.backend import select_backend

    select_backend(args.backend, distribute=args.distribute)
    from training.trainer import TrainingFailed, train

    try:
        summary = train(
            cfg,
            run_dir,
            resume=args.resume,
            overwrite=args.overwrite,
            overrides=overrides,
            cache_dir=args.cache,
            evaluate=not args.no_eval,
            verbose=2 if args.quiet else "auto",
            stop_at=stop_at,
        )
    except TrainingFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    epochs, best = summary["epochs_done"], summary["best"]
    epochs = f"{epochs} epoch" + ("" if epochs == 1 else "s")
    value = best["value"]
    value = f"{value:.5g}" if isinstance(value, float) else value
    print(f"\nrun folder: {run_dir}  ({epochs}, best {best['monitor']} {value})")
    if summary.get("stopped_for_deadline"):
        print(f"not evaluated (the run has not ended): {run_dir / 'best.keras'} so far")
    if "eval" in summary:
        f1 = summary["eval"]["whole_image"]["mean"]["f1"]
        print(
            f"test F1 (whole image, mean over images): {f1:.4f}; report and images in {run_dir / 'eval'}"
        )
        if "av" in summary["eval"]:
            av = summary["eval"]["av"]["segmentation"]["mean"]["f1_mean"]
            print(f"test artery/vein F1 (mean of artery and vein, inside the FOV): {av:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
