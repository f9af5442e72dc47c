"""The quality figures of the four datasets' test photographs, clean and degraded, and how many of
each `data/quality.py` flags: the evidence behind its thresholds (docs/prediction.md, "Quality").

    python benchmarks/quality.py --data-root ../shared/data
    python benchmarks/quality.py --data-root ../shared/data --weights weights/sa_unetv2_fundus.keras

The test photographs of DRIVE (20), STARE (all 20: no STARE photograph is
kept from testing), CHASE_DB1 (8) and HRF (30), each read from its file as
predict.py reads it (full size: HRF's are 3504 x 2336) with its field of view
generated from it (`data/fov.py`), and copies of each (`COPIES`): a quarter of
the brightness (`dark`), two and a half times (`bright`), a Gaussian blur of
sigma 3 px at the normalised scale, that is scaled with the FOV's diameter
(`blurred`), and shrunk so its FOV is 250 px across (`small`). Each copy is
measured by `data.quality.photograph_quality`, as predict.py --measure
measures it. With `--weights` it is also segmented as predict.py does it
(`--scale auto`, `--threshold auto`, the map inside the field of view) and the
vessel area fraction checked; the photograph-only figures need no network.

Prints, per dataset and copy, the range of each figure (lowest, median,
highest) and how many photographs are flagged and why, then one table of
flagged counts (or `--json`: every photograph's figures). `--rows FILE` makes
the tables from the figures of an earlier `--json` run, the checks applied
with the thresholds as they are now (nothing is measured).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, markdown_table  # noqa: E402

DATASETS = ("drive", "stare", "chase_db1", "hrf")
COPIES = ("clean", "dark", "bright", "blurred", "small")
DARK, BRIGHT = 0.25, 2.5  # Pillow ImageEnhance.Brightness factors
BLUR_SIGMA = 3.0  # px at the normalised scale (data.quality.REFERENCE_FOV_DIAMETER)
SMALL_FOV = 250.0  # px: the FOV diameter of the small copies
FIGURES = (
    "fov_width_px",
    "brightness_median",
    "underexposed_fraction",
    "overexposed_fraction",
    "sharpness",
    "area_fraction",
)


def split_photographs(root: Path, dataset: str) -> list[tuple[str, str, object]]:
    """[(id, file to show, tree)] of a dataset's test photographs, through the readers' trees (a
    folder or the official archives; `tree.read(rel)` gives a file's bytes), in split order."""
    from data.io import file_stem, is_image_name
    from data.readers import find_chase_db1, find_drive, find_hrf, find_stare
    from data.splits import drive_split, fixed_split, stare_split

    if dataset == "drive":
        tree, folder, ids = find_drive(root), "test/images", drive_split()[1]
    elif dataset == "stare":
        tree, folder, ids = find_stare(root), "stare-images", stare_split("all")[1]
    elif dataset == "chase_db1":
        tree, folder, ids = find_chase_db1(root), "", fixed_split("chase_db1")[1]
    elif dataset == "hrf":
        tree, folder, ids = find_hrf(root), "images", fixed_split("hrf")[1]
    else:
        raise ValueError(f"unknown dataset {dataset!r}")
    stems = {file_stem(name): name for name in tree.listdir(folder) if is_image_name(name)}
    # DRIVE's ids are the numbers its file names start with: 01 for 01_test.tif.
    names = {stem.split("_")[0] if dataset == "drive" else stem: n for stem, n in stems.items()}
    return [(i, f"{folder}/{names[i]}".lstrip("/"), tree) for i in ids]


def degraded(image: np.ndarray, diameter: float | None, copy: str) -> np.ndarray:
    """The uint8 (H, W, 3) photograph as `copy` (one of COPIES) makes it; `diameter` (px) is the
    clean photograph's FOV diameter (its shorter side without one), which scales the blur and
    the shrinking."""
    from data.camera import apply_change
    from data.quality import REFERENCE_FOV_DIAMETER
    from data.scale import resize_image, scaled_shape

    width = diameter or min(image.shape[:2])
    if copy == "clean":
        return image
    if copy == "dark":
        return apply_change(image, "brightness", DARK)
    if copy == "bright":
        return apply_change(image, "brightness", BRIGHT)
    if copy == "blurred":
        return apply_change(image, "blur", BLUR_SIGMA * width / REFERENCE_FOV_DIAMETER)
    if copy == "small":
        return resize_image(image, scaled_shape(image.shape[:2], SMALL_FOV / width))
    raise ValueError(f"unknown copy {copy!r} (known: {', '.join(COPIES)})")


class Segmenter:
    """The vessel map predict.py makes of a photograph (`--scale auto`, `--threshold auto`)."""

    def __init__(self, weights: Path, engine: str = "auto"):
        from data.scale import weights_fov_band
        from inference.engines import make_predictor
        from models import load_model
        from predict import resolve_threshold

        self.predictor = make_predictor(load_model(weights), engine)
        self.band = weights_fov_band(weights, "auto")
        self.threshold, _ = resolve_threshold("auto", weights)

    def area_fraction(self, image: np.ndarray, fov: np.ndarray, name: str) -> float:
        """Vessel pixels / FOV pixels of the binary map inside `fov` (measurements.py's
        area_fraction, without the rest of its measurements); NaN for an empty field."""
        from data.scale import image_factor, prediction_factors
        from inference.segment import segment

        factor = image_factor("auto", fov, self.band, name, warn=lambda text: None)
        prob = segment(self.predictor, image, factor=prediction_factors("auto", factor, self.band))
        return float(((prob > self.threshold) & fov).sum() / fov.sum()) if fov.any() else np.nan


def measure(
    root: Path, datasets=DATASETS, copies=COPIES, segmenter=None, limit: int | None = None
) -> Iterator[dict]:
    """One row per photograph and copy: {"dataset", "id", "copy", the `photograph_quality`
    figures, "area_fraction" (with a `segmenter`, else None)}."""
    from data.fov import generate_fov_mask
    from data.io import read_photograph
    from data.quality import photograph_quality
    from data.scale import fov_diameter

    for dataset in datasets:
        for ident, rel, tree in split_photographs(root, dataset)[:limit]:
            image, _ = read_photograph(tree.read(rel), tree.where(rel))
            clean_diameter = fov_diameter(generate_fov_mask(image))
            for copy in copies:
                photo = degraded(image, clean_diameter, copy)
                fov = generate_fov_mask(photo)  # as predict.py finds it, on the copy itself
                figures = photograph_quality(photo, fov, fov_diameter(fov))
                area = segmenter.area_fraction(photo, fov, rel) if segmenter else None
                yield {"dataset": dataset, "id": ident, "copy": copy, **figures,
                       "area_fraction": area}  # fmt: skip


def reasons_of(row: dict) -> list[str]:
    """The checks a `measure` row fails (`data.quality.quality_reasons`, thresholds as now)."""
    from data.quality import quality_reasons

    area = row.get("area_fraction")
    return quality_reasons(row, None if area is None else float(area))


def summary_rows(rows: list[dict]) -> list[dict]:
    """Per (dataset, copy): the photographs, those flagged, the reasons' counts, each figure's
    (lowest, median, highest)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["copy"]), []).append(row)
    out = []
    for (dataset, copy), group in groups.items():
        ranges = {}
        for key in FIGURES:
            values = [r[key] for r in group if r.get(key) is not None and np.isfinite(r[key])]
            ranges[key] = (min(values), float(np.median(values)), max(values)) if values else None
        failed = [reasons_of(r) for r in group]
        reasons = Counter(reason for found in failed for reason in found)
        out.append({"dataset": dataset, "copy": copy, "n": len(group),
                    "flagged": sum(bool(found) for found in failed), "reasons": reasons,
                    "no_fov": sum(not r["fov_found"] for r in group), **ranges})  # fmt: skip
    return out


def _range(values, digits: int) -> str:
    if values is None:
        return "-"
    low, middle, high = values
    return f"{middle:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


FIGURE_COLUMNS = [
    ("dataset", lambda r: r["dataset"]),
    ("copy", lambda r: r["copy"]),
    ("FOV px", lambda r: _range(r["fov_width_px"], 0)),
    ("brightness", lambda r: _range(r["brightness_median"], 1)),
    ("under", lambda r: _range(r["underexposed_fraction"], 3)),
    ("over", lambda r: _range(r["overexposed_fraction"], 3)),
    ("sharpness", lambda r: _range(r["sharpness"], 2)),
    ("vessel area", lambda r: _range(r["area_fraction"], 3)),
    ("flagged", lambda r: f"{r['flagged']}/{r['n']}"),
    ("reasons", lambda r: ", ".join(f"{k} {v}" for k, v in sorted(r["reasons"].items())) or "-"),
]


def flagged_table(summary: list[dict], copies=COPIES) -> str:
    """One line per dataset (and all): flagged / photographs for each copy."""
    datasets = list(dict.fromkeys(r["dataset"] for r in summary))
    cells = {(r["dataset"], r["copy"]): (r["flagged"], r["n"]) for r in summary}
    lines = []
    for dataset in [*datasets, "all"]:
        line = {"dataset": dataset}
        for copy in copies:
            pairs = [cells[(d, copy)] for d in datasets if (d, copy) in cells
                     and dataset in (d, "all")]  # fmt: skip
            line[copy] = f"{sum(f for f, _ in pairs)}/{sum(n for _, n in pairs)}" if pairs else "-"
        lines.append(line)
    columns = [("dataset", lambda r: r["dataset"])]
    columns += [(copy, lambda r, c=copy: r[c]) for copy in copies]
    return markdown_table(columns, lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument(
        "--datasets", default=",".join(DATASETS), help=f"of {', '.join(DATASETS)} (default all)"
    )
    parser.add_argument(
        "--copies", default=",".join(COPIES), help=f"of {', '.join(COPIES)} (default all)"
    )
    parser.add_argument(
        "--weights", type=Path, help="also segment each copy with them and check the vessel area"
    )
    parser.add_argument("--engine", default="auto", help="inference engine (auto, keras, ...)")
    parser.add_argument("--limit", type=int, help="the first N test photographs of each dataset")
    parser.add_argument("--json", action="store_true", help="every photograph's figures as JSON")
    parser.add_argument(
        "--rows", type=Path, help="the tables from an earlier --json output, nothing measured"
    )
    args = parser.parse_args(argv)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    copies = [c.strip() for c in args.copies.split(",") if c.strip()]
    for name, known, given in (("--datasets", DATASETS, datasets), ("--copies", COPIES, copies)):
        if not given or any(item not in known for item in given):
            parser.error(f"{name} takes a comma-separated list of {', '.join(known)}")
    if args.rows is not None:
        saved = json.loads(args.rows.read_text(encoding="utf-8"))
        rows = [r for r in saved["rows"] if r["dataset"] in datasets and r["copy"] in copies]
        print(f"{len(rows)} photographs and copies from {args.rows} ({saved['machine']})\n")
        print_tables(rows, [c for c in copies if any(r["copy"] == c for r in rows)])
        return 0
    segmenter = None
    if args.weights is not None:
        from utils.cli import import_tensorflow_quietly, quiet_tensorflow_logs

        quiet_tensorflow_logs()
        import_tensorflow_quietly()
        segmenter = Segmenter(args.weights, args.engine)
    start = time.perf_counter()
    rows = []
    for row in measure(args.data_root, datasets, copies, segmenter, args.limit):
        rows.append(row)
        print(f"{row['dataset']} {row['id']} {row['copy']}: {';'.join(reasons_of(row)) or 'ok'}",
              file=sys.stderr)  # fmt: skip
    seconds = time.perf_counter() - start
    if args.json:
        print(json.dumps({"machine": machine(), "seconds": seconds, "rows": rows}, indent=1))
        return 0
    weights = f", vessel area with {args.weights.name}" if args.weights else ""
    print(f"{len(rows)} photographs and copies in {seconds:.0f} s on {machine()}{weights}\n")
    print_tables(rows, copies)
    return 0


def print_tables(rows: list[dict], copies=COPIES) -> None:
    summary = summary_rows(rows)
    print("Figures: median (lowest-highest)\n")
    print(markdown_table(FIGURE_COLUMNS, summary))
    print("\nFlagged / photographs\n")
    print(flagged_table(summary, copies))


if __name__ == "__main__":
    sys.exit(main())
