"""Every set of weights against every test split: FOV F1, one evaluate.py run per cell.

    python tools/weights_table.py --data-root DIR                     # every vessel network in weights/
    python tools/weights_table.py --data-root DIR --weights weights/sa_unetv2_drive.keras \\
        weights/sa_unetv2_stare_fold5.keras --splits drive,chase_db1 --out runs/weights_table

Each cell is `python evaluate.py --config CONFIG --weights W --data-root DIR` (the
paper's protocol: threshold 0.5, `--scale auto`, mean over the test images), so
any cell can be rerun alone; the table is what README.md's "Which weights" shows.
Splits: drive (20), stare_fold5 (4), stare_all (20), chase_db1 (8), hrf (27 of 30
at half size). A split whose images the weights were trained on is marked
"(trained on)" and not scored (STARE's 20 for weights trained on a STARE fold); a
split of a dataset the weights saw in training (its other images) is in bold. A
dataset missing from DIR leaves its column "no data". Writes OUT/table.md and
OUT/table.json (each cell: F1 inside the FOV and over the whole image, images,
seconds, command).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from utils.cli import run_cli  # noqa: E402
from utils.errors import UserError  # noqa: E402

# split -> (config, evaluate.py flags beyond --config, the dataset it reads, STARE fold or None)
SPLITS = {
    "drive": ("configs/drive.yaml", [], "drive", None),
    "stare_fold5": ("configs/stare.yaml", ["--fold", "5"], "stare", 5),
    "stare_all": ("configs/stare.yaml", ["--fold", "all"], "stare", "all"),
    "chase_db1": ("configs/chase_db1.yaml", [], "chase_db1", None),
    "hrf": ("configs/hrf.yaml", [], "hrf", None),
}
LABELS = {
    "drive": "DRIVE (20)",
    "stare_fold5": "STARE fold 5 (4)",
    "stare_all": "STARE (20)",
    "chase_db1": "CHASE_DB1 (8)",
    "hrf": "HRF (27)",
}
FUNDUS_PARTS = ("drive", "stare", "chase_db1", "hrf")  # dataset "fundus": the four together


def trained_datasets(weights_cfg: dict) -> tuple[set[str], object]:
    """(the datasets whose training images the weights saw, their STARE fold or None), from the
    weights' config (`<stem>.yaml` or the run's config.yaml)."""
    dataset = weights_cfg.get("dataset") or {}
    name = dataset.get("name")
    names = set(FUNDUS_PARTS) if name == "fundus" else ({name} if name else set())
    return names, dataset.get("fold", 5 if "stare" in names else None)


def cell_role(split: str, trained: set[str], stare_fold) -> str:
    """ "trained on": the split holds images the weights were trained on (not scored);
    "own": another split of a dataset they were trained on; "other": a dataset they never saw."""
    _, _, dataset, fold = SPLITS[split]
    if dataset not in trained:
        return "other"
    if dataset == "stare" and (fold == "all" or str(fold) != str(stare_fold)):
        return "trained on"  # all 20, or another fold's test images: inside this fold's training
    return "own"


def command(split: str, weights: Path, scale: str = "auto") -> str:
    config, flags, _, _ = SPLITS[split]
    flags = flags + ([] if scale == "auto" else ["--scale", f"{scale:g}"])
    return " ".join(
        [
            "python evaluate.py --config",
            config,
            *flags,
            "--weights",
            str(weights),
            "--data-root DIR",
        ]
    )


def evaluate_cell(
    split: str, weights: Path, data_root: str, out_dir: Path, scale="auto", engine=None
) -> dict:
    from inference.evaluation import evaluate_checkpoint
    from training.config import resolve_run_config

    config, flags, _, fold = SPLITS[split]
    overrides = ["evaluate.save_images=false"] + ([f"dataset.fold={fold}"] if fold else [])
    cfg = resolve_run_config(ROOT / config, overrides, data_root=data_root)
    start = time.perf_counter()
    summary = evaluate_checkpoint(cfg, weights, out_dir, engine=engine, verbose=False, scale=scale)
    return {
        "f1_fov": summary["fov"]["mean"]["f1"],
        "f1_whole_image": summary["whole_image"]["mean"]["f1"],
        "images": summary["n_images"],
        "seconds": round(time.perf_counter() - start, 1),
    }


def markdown(rows: list[dict], splits: list[str]) -> str:
    lines = [
        "| weights | " + " | ".join(LABELS[s] for s in splits) + " |",
        "| --- | " + " | ".join("---:" for _ in splits) + " |",
    ]
    for row in rows:
        cells = []
        for split in splits:
            cell = row["cells"][split]
            if cell["role"] == "trained on":
                cells.append("(trained on)")
            elif "f1_fov" not in cell:
                cells.append(cell.get("missing", "no data"))
            else:
                value = f"{cell['f1_fov']:.4f}"
                cells.append(f"**{value}**" if cell["role"] == "own" else value)
        lines.append(f"| `{row['stem']}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def row_name(weights: Path) -> str:
    """A shipped set by its stem; a run's best.keras or last.keras as `<run folder>/best`."""
    if weights.stem in ("best", "last"):
        return f"{weights.parent.name}/{weights.stem}"
    return weights.stem


def find_dataset(dataset: str, data_root: str) -> str | None:
    """None when `dataset` is in `data_root` (folders or archives), else why it is not."""
    from data import readers

    try:
        getattr(readers, f"find_{dataset}")(Path(data_root))
    except UserError as exc:
        return str(exc)
    return None


def build_table(
    weights: list[Path],
    splits: list[str],
    data_root: str,
    out: Path,
    scale="auto",
    engine=None,
    echo=print,
):
    """Evaluate every (weights, split) cell; writes OUT/table.md and OUT/table.json and returns
    (rows, the Markdown table)."""
    from data.scale import weights_config
    from utils.io import write_json, write_text

    absent = {split: find_dataset(SPLITS[split][2], data_root) for split in splits}
    rows = []
    for path in weights:
        trained, fold = trained_datasets(weights_config(path))
        stem = row_name(path)
        row = {"stem": stem, "weights": str(path), "cells": {}}
        for split in splits:
            cell = {"role": cell_role(split, trained, fold), "command": command(split, path, scale)}
            if cell["role"] != "trained on" and absent[split]:
                cell.update(missing="no data", reason=absent[split])
            elif cell["role"] != "trained on":
                where = out / stem.replace("/", "_") / split
                cell.update(evaluate_cell(split, path, data_root, where, scale, engine))
            row["cells"][split] = cell
            shown = f"{cell['f1_fov']:.4f}" if "f1_fov" in cell else cell.get("missing", "-")
            echo(f"{stem} on {split}: {shown} ({cell['role']})")
        rows.append(row)
    table = markdown(rows, splits)
    write_text(out / "table.md", table)
    write_json(out / "table.json", {"splits": splits, "scale": scale, "rows": rows})
    return rows, table


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--weights", nargs="+", help=".keras files (default: every vessel network in weights/)"
    )
    parser.add_argument(
        "--data-root",
        help="folder holding DRIVE/, STARE/, CHASE_DB1/, HRF/ (default: $SAUNETV2_DATA_ROOT)",
    )
    parser.add_argument(
        "--splits",
        default=",".join(SPLITS),
        help=f"comma-separated, of {', '.join(SPLITS)} (default: all)",
    )
    parser.add_argument(
        "--scale",
        default="auto",
        help="auto (default, the README's table) or a factor, as evaluate.py",
    )
    parser.add_argument("--engine", help="inference engine (default auto), as evaluate.py")
    parser.add_argument("--out", default="runs/weights_table", help="output folder")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    unknown = [s for s in splits if s not in SPLITS]
    if unknown or not splits:
        raise UserError(
            f"--splits: unknown '{(unknown or [''])[0]}'; choose from {', '.join(SPLITS)}"
        )
    from utils.io import check_weights_file, shipped_weights

    weights = (
        [check_weights_file(w) for w in args.weights]
        if args.weights
        else shipped_weights(ROOT / "weights", "vessel")
    )
    if not weights:
        raise UserError("no weights given and none in weights/; pass --weights FILE.keras")
    from data import resolve_data_root
    from data.scale import parse_scale
    from training.backend import select_backend

    scale = parse_scale(args.scale)
    data_root = str(resolve_data_root(args.data_root))
    if select_backend(None) == "tensorflow":  # each cell loads its model: TensorFlow's
        logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing warnings, not ours
    _, table = build_table(weights, splits, data_root, Path(args.out), scale, args.engine)
    print()
    print(table, end="")
    print(f"\nF1 inside the FOV; table.md and table.json in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
