"""How well the generated FOV mask and the FOV diameter estimate do on every public photograph.

    python benchmarks/fov.py --data-root DIR [--datasets drive,stare,chase_db1,hrf] [--hard] [--json]

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

`--hard` adds the hard cases (`hard_case`), each made from the photographs
in `HARD_PHOTOGRAPHS` (DRIVE and HRF, whose official masks give the truth):
4000 px wide, stretched 4:3 (non-square pixels), darkened to a fifth, the
top and bottom clipped by a 16:9 frame, no border (a square inside the
field of view: the honest answer is "not found"), a grey and a white
surround, and JPEG noise in the border.
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
HARD_CASES = ("large", "stretched", "dark", "clipped", "no_border", "grey_surround",
              "white_surround", "jpeg_border")  # fmt: skip
HARD_PHOTOGRAPHS = {"drive": ("01_test", "21_training"), "hrf": ("01_dr", "01_g", "01_h")}
LARGE_WIDTH = 4000
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


def _reframe(array: np.ndarray, centre: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """The (h, w) = `shape` window of `array` (H, W[, 3]) centred on `centre` (row, column);
    what lies outside `array` is 0 (black, outside the field of view)."""
    out = np.zeros(tuple(shape) + array.shape[2:], array.dtype)
    top, left = centre[0] - shape[0] // 2, centre[1] - shape[1] // 2
    rows = slice(max(top, 0), min(top + shape[0], array.shape[0]))
    cols = slice(max(left, 0), min(left + shape[1], array.shape[1]))
    out[rows.start - top : rows.stop - top, cols.start - left : cols.stop - left] = array[
        rows, cols
    ]
    return out


def hard_case(case: str, image: np.ndarray, mask: np.ndarray, seed: int = 0):
    """`image` uint8 (H, W, 3), whose field of view `mask` bool (H, W) is a circle whole across
    (it may be cut at the top and bottom), made into the hard `case` of `HARD_CASES`:
    (photograph uint8, its true field of view bool, its true diameter px or None where the
    honest answer is "not found"). A stretched photograph's diameter is its ellipse's
    equal-area one (`data.scale.FovFit.diameter`)."""
    import io

    from PIL import Image

    from data.scale import resize_image, resize_nearest

    diameter = widest_row(mask)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    centre = ((rows[0] + rows[-1] + 1) // 2, (cols[0] + cols[-1] + 1) // 2)
    height, width = mask.shape
    rng = np.random.default_rng(seed)
    if case == "large":
        shape = (round(height * LARGE_WIDTH / width), LARGE_WIDTH)
        return (
            resize_image(image, shape),
            resize_nearest(mask, shape),
            diameter * LARGE_WIDTH / width,
        )
    if case == "stretched":
        shape = (height, round(width * 4 / 3))
        return resize_image(image, shape), resize_nearest(mask, shape), diameter * (4 / 3) ** 0.5
    if case == "dark":
        return (image * 0.2).astype(np.uint8), mask, diameter
    if case == "clipped":  # the circle in a 16:9 frame 0.8 of its diameter high
        frame = (round(0.8 * diameter), round(0.8 * diameter * 16 / 9))
        return _reframe(image, centre, frame), _reframe(mask, centre, frame), diameter
    if case == "no_border":  # a square inside the field of view
        side = round(0.6 * diameter)
        return _reframe(image, centre, (side, side)), np.ones((side, side), bool), None
    if case in ("grey_surround", "white_surround", "jpeg_border"):
        level, noise = {"grey_surround": (128, 2), "white_surround": (250, 2),
                        "jpeg_border": (12, 8)}[case]  # fmt: skip
        surround = np.clip(rng.normal(level, noise, image.shape), 0, 255).astype(np.uint8)
        out = np.where(mask[..., None], image, surround)
        if case == "jpeg_border":
            buffer = io.BytesIO()
            Image.fromarray(out).save(buffer, format="JPEG", quality=30)
            out = np.asarray(Image.open(buffer).convert("RGB"))
        return out, mask, diameter
    raise ValueError(f"unknown hard case {case!r}; expected one of {', '.join(HARD_CASES)}")


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


def estimate(name: str, image: np.ndarray, truth: np.ndarray | None = None) -> dict:
    """A photograph's generated mask and diameter, timed; with a true mask, their IoU."""
    from data.fov import generate_fov_mask
    from data.scale import fov_diameter

    start = time.perf_counter()
    generated = generate_fov_mask(image)
    diameter = fov_diameter(generated)
    seconds = time.perf_counter() - start
    iou = None if truth is None else mask_iou(generated, truth)
    print(f"{name}: diameter {diameter}, IoU {iou}", file=sys.stderr)
    return {"name": name, "size": f"{image.shape[1]} x {image.shape[0]}", "diameter": diameter,
            "seconds": seconds, "iou": iou, "reference": None}  # fmt: skip


def judge(row: dict, expect_none: bool = False) -> dict:
    """`row` with its diameter's relative `error` and whether it `fails`: IoU under `MIN_IOU`,
    a diameter more than `MAX_DIAMETER_ERROR` off, or none found (`expect_none`: one found)."""
    found, reference = row["diameter"], row["reference"]
    row["error"] = None if found is None or reference is None else found / reference - 1.0
    row["fails"] = bool(
        (found is not None if expect_none else found is None)
        or (row["iou"] is not None and row["iou"] < MIN_IOU)
        or (row["error"] is not None and abs(row["error"]) > MAX_DIAMETER_ERROR)
    )
    return row


def measure(dataset: str, root: Path) -> list[dict]:
    """One row per photograph: its diameter estimate, the reference, the mask IoU (or None)."""
    rows = []
    for name, image, official in photographs(dataset, root):
        row = estimate(f"{dataset}/{name}", image, official)
        row["name"] = name
        if official is not None:
            row["reference"] = widest_row(official)
        elif dataset == "stare":
            row["reference"] = STARE_DIAMETER
        rows.append(row)
    if dataset == "chase_db1":
        found = [r["diameter"] for r in rows if r["diameter"] is not None]
        for r in rows:
            r["reference"] = float(np.median(found)) if found else None
    return [judge(r) for r in rows]


def measure_hard(root: Path) -> dict[str, list[dict]]:
    """{case: one row per photograph of `HARD_PHOTOGRAPHS` made into that case}."""
    rows = {case: [] for case in HARD_CASES}
    for dataset, names in HARD_PHOTOGRAPHS.items():
        for name, image, official in photographs(dataset, root):
            if name not in names:
                continue
            for case in HARD_CASES:
                hard, truth, diameter = hard_case(case, image, official)
                row = estimate(f"{case}: {dataset}/{name}", hard, truth)
                row["name"], row["reference"] = f"{dataset}/{name}", diameter
                rows[case].append(judge(row, expect_none=diameter is None))
    return rows


REFERENCES = {
    "drive": "official masks",
    "stare": f"{STARE_DIAMETER:.0f} px (assumed)",
    "chase_db1": "dataset median",
    "hrf": "official masks",
    "large": f"official, x {LARGE_WIDTH} px / width",
    "stretched": "official x sqrt(4/3)",
    "dark": "official",
    "clipped": "official",
    "no_border": "none: not found",
    "grey_surround": "official",
    "white_surround": "official",
    "jpeg_border": "official",
}


def summary(dataset: str, rows: list[dict]) -> dict:
    """A dataset's (or hard case's) line of the table: n, median and worst IoU and diameter
    error, failures."""
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


def table(summaries: list[dict], first: str = "dataset") -> str:
    """The Markdown table of `summary` lines, the first column headed `first`."""
    return markdown_table(
        [(first, lambda s: s["dataset"]),
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
    parser.add_argument(
        "--hard", action="store_true", help="also the hard cases made from HARD_PHOTOGRAPHS"
    )
    parser.add_argument("--json", action="store_true", help="print JSON (every photograph) instead")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    from data.readers import resolve_data_root

    args = parse_args(argv)
    root = resolve_data_root(args.data_root)
    names = [n.strip().lower() for n in args.datasets.split(",") if n.strip()]
    per_dataset = {name: measure(name, root) for name in names}
    if args.hard:
        per_dataset.update(measure_hard(root))
    summaries = [summary(name, rows) for name, rows in per_dataset.items()]
    if args.json:
        report = {"machine": machine(), "summaries": summaries, "photographs": per_dataset}
        print(json.dumps(report, indent=2))
        return 0
    print(f"FOV masks and diameters, generated from the photographs ({machine()})\n")
    print(table([s for s in summaries if s["dataset"] in DATASETS]))
    if args.hard:
        print("\nHard cases made from DRIVE's and HRF's photographs\n")
        print(table([s for s in summaries if s["dataset"] in HARD_CASES], "case"))
    for name, rows in per_dataset.items():
        for r in rows:
            if r["fails"]:
                diameter = "not found" if r["diameter"] is None else f"{r['diameter']:.1f} px"
                reference = "" if r["reference"] is None else f" (reference {r['reference']:.1f})"
                iou = "" if r["iou"] is None else f", IoU {r['iou']:.4f}"
                print(f"{name}: {r['name']} ({r['size']}): diameter {diameter}{reference}{iou}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
