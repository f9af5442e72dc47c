"""How well the generated FOV mask and the FOV diameter estimate do on every public photograph.

    python benchmarks/fov.py --data-root DIR [--datasets drive,stare,chase_db1,hrf] [--json]

For each photograph of DRIVE (40), STARE (20), CHASE_DB1 (28) and HRF (45, at
full size) the field of view is generated from the photograph
(`data.fov.generate_fov_mask`) and its diameter estimated
(`data.scale.fov_diameter`), as `--scale auto` does for a photograph given
without `--mask`. Compared with:

- the official FOV mask where the dataset releases one (DRIVE, HRF): the
  intersection over union of the two masks, and the relative error of the
  diameter against the official mask's widest row (its diameter: the
  circle's centre row is inside these images and not cut at the sides);
- STARE (no masks): the diameter the project assumes for it, 650 px
  (`KNOWN_FOV_DIAMETERS["stare"]`);
- CHASE_DB1 (no masks): the dataset's median estimate (one camera, one
  field of view: the spread of the estimate).

A photograph fails when its mask's IoU is under 0.95, its diameter is more
than 3 % off, or no field of view is found. Prints a Markdown table per
dataset and the failing photographs (or `--json`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, markdown_table  # noqa: E402

DATASETS = ("drive", "stare", "chase_db1", "hrf")
STARE_DIAMETER = 650.0  # the diameter the project assumes for STARE (KNOWN_FOV_DIAMETERS, rounded)
MIN_IOU = 0.95
MAX_DIAMETER_ERROR = 0.03


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool (H, W) masks (1 when both are empty)."""
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


def widest_row(mask: np.ndarray) -> float:
    """The widest row's extent (px) of a bool (H, W) mask, first to last pixel inside: the
    diameter of a circular field of view whose centre row is in the image."""
    rows = np.flatnonzero(mask.any(axis=1))
    inside = mask[rows]
    left = np.argmax(inside, axis=1)
    right = mask.shape[1] - np.argmax(inside[:, ::-1], axis=1)
    return float((right - left).max()) if len(rows) else 0.0


def photographs(dataset: str, root: Path):
    """(name, uint8 (H, W, 3) photograph, official bool (H, W) mask or None) of every photograph."""
    from data.readers import read_chase_db1, read_drive, read_stare

    if dataset == "drive":
        samples = [s for part in read_drive(root) for s in part]
    elif dataset == "stare":
        samples = [s for part in read_stare(root, fold=1) for s in part]
    elif dataset == "chase_db1":
        samples = [s for part in read_chase_db1(root)[:2] for s in part]
    elif dataset == "hrf":
        yield from _hrf_photographs(root)  # all 45: three have no vessel label to read
        return
    else:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    official = dataset in ("drive", "hrf")  # STARE's and CHASE_DB1's masks are generated
    for s in sorted(samples, key=lambda s: s.name):
        yield s.name, s.image, s.mask if official else None


def _hrf_photographs(root: Path):
    """HRF's 45 photographs with their masks, at full size, labelled or not."""
    from data.io import file_stem, is_image_name, read_image, read_mask
    from data.readers import find_hrf

    tree = find_hrf(root)
    masks = {file_stem(n): n for n in tree.listdir("mask") if is_image_name(n)}
    for name in sorted(n for n in tree.listdir("images") if is_image_name(n)):
        stem = file_stem(name)
        image = read_image(tree.read(f"images/{name}"), tree.where(f"images/{name}"))
        mask_rel = f"mask/{masks[f'{stem}_mask']}"
        yield stem, image, read_mask(tree.read(mask_rel), tree.where(mask_rel))


def measure(dataset: str, root: Path) -> list[dict]:
    """One row per photograph: its diameter estimate, the reference, the mask IoU (or None)."""
    from data.fov import generate_fov_mask
    from data.scale import fov_diameter

    rows = []
    for name, image, official in photographs(dataset, root):
        start = time.perf_counter()
        generated = generate_fov_mask(image)
        diameter = fov_diameter(generated)
        seconds = time.perf_counter() - start
        row = {"name": name, "size": f"{image.shape[1]} x {image.shape[0]}",
               "diameter": diameter, "seconds": seconds, "iou": None, "reference": None}  # fmt: skip
        if official is not None:
            row["iou"] = mask_iou(generated, official)
            row["reference"] = widest_row(official)
        elif dataset == "stare":
            row["reference"] = STARE_DIAMETER
        rows.append(row)
        print(f"{dataset}/{name}: diameter {diameter}, IoU {row['iou']}", file=sys.stderr)
    if dataset == "chase_db1":
        found = [r["diameter"] for r in rows if r["diameter"] is not None]
        for r in rows:
            r["reference"] = float(np.median(found)) if found else None
    for r in rows:
        r["error"] = (
            None
            if r["diameter"] is None or r["reference"] is None
            else r["diameter"] / r["reference"] - 1.0
        )
        r["fails"] = (
            r["diameter"] is None
            or (r["iou"] is not None and r["iou"] < MIN_IOU)
            or (r["error"] is not None and abs(r["error"]) > MAX_DIAMETER_ERROR)
        )
    return rows


REFERENCES = {
    "drive": "official masks",
    "stare": f"{STARE_DIAMETER:.0f} px (assumed)",
    "chase_db1": "dataset median",
    "hrf": "official masks",
}


def summary(dataset: str, rows: list[dict]) -> dict:
    """A dataset's line of the table: n, median and worst IoU and diameter error, failures."""
    ious = [(r["iou"], r["name"]) for r in rows if r["iou"] is not None]
    errors = [(abs(r["error"]), r["error"], r["name"]) for r in rows if r["error"] is not None]
    return {
        "dataset": dataset,
        "n": len(rows),
        "reference": REFERENCES[dataset],
        "iou_median": float(np.median([i for i, _ in ious])) if ious else None,
        "iou_worst": min(ious) if ious else None,
        "error_median": float(np.median([a for a, _, _ in errors])) if errors else None,
        "error_worst": max(errors)[1:] if errors else None,
        "not_found": [r["name"] for r in rows if r["diameter"] is None],
        "fails": [r["name"] for r in rows if r["fails"]],
        "seconds": float(np.median([r["seconds"] for r in rows])),
    }


def _worst(pair, text) -> str:
    return "-" if pair is None else f"{text(pair[0])} ({pair[1]})"


def table(summaries: list[dict]) -> str:
    """The Markdown table of `summary` lines."""
    return markdown_table(
        [("dataset", lambda s: s["dataset"]),
         ("n", lambda s: str(s["n"])),
         ("diameter against", lambda s: s["reference"]),
         ("IoU median", lambda s: "-" if s["iou_median"] is None else f"{s['iou_median']:.4f}"),
         ("IoU worst", lambda s: _worst(s["iou_worst"], lambda v: f"{v:.4f}")),
         ("diameter error median", lambda s: "-" if s["error_median"] is None
          else f"{100 * s['error_median']:.2f} %"),
         ("diameter error worst", lambda s: _worst(s["error_worst"], lambda v: f"{100 * v:+.2f} %")),
         ("not found", lambda s: str(len(s["not_found"]))),
         ("fail", lambda s: ", ".join(s["fails"]) or "none"),
         ("s per photograph", lambda s: f"{s['seconds']:.2f}")],
        summaries,
    )  # fmt: skip


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", help="dataset folder (or $SAUNETV2_DATA_ROOT)")
    parser.add_argument(
        "--datasets",
        default=",".join(DATASETS),
        help=f"comma-separated (default {','.join(DATASETS)})",
    )
    parser.add_argument("--json", action="store_true", help="print JSON (every photograph) instead")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    from data.readers import resolve_data_root

    args = parse_args(argv)
    root = resolve_data_root(args.data_root)
    names = [n.strip().lower() for n in args.datasets.split(",") if n.strip()]
    per_dataset = {name: measure(name, root) for name in names}
    summaries = [summary(name, rows) for name, rows in per_dataset.items()]
    if args.json:
        report = {"machine": machine(), "summaries": summaries, "photographs": per_dataset}
        print(json.dumps(report, indent=2))
        return 0
    print(f"FOV masks and diameters, generated from the photographs ({machine()})\n")
    print(table(summaries))
    for name, rows in per_dataset.items():
        for r in rows:
            if r["fails"]:
                diameter = "not found" if r["diameter"] is None else f"{r['diameter']:.1f} px"
                reference = "" if r["reference"] is None else f" (reference {r['reference']:.1f})"
                iou = "" if r["iou"] is None else f", IoU {r['iou']:.4f}"
                print(f"{name}/{r['name']} ({r['size']}): diameter {diameter}{reference}{iou}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
