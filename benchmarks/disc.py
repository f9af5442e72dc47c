"""How well `data.disc.locate_disc` finds the optic disc, against DRIVE's disc masks and HRF's two experts.

    python benchmarks/disc.py [--data-root DIR] [--vessels none,labels,predicted]
        [--weights weights/sa_unetv2_fundus.keras] [--out benchmarks/results/disc] [--json]

Every photograph is located at its full size inside its dataset's own FOV mask:
DRIVE's 40 (training 21-40, test 01-20) against the disc masks of
`DISC/DRIVE` (centroid, equal-area radius), HRF's 45 (the split of
`data/splits/hrf.json`) against expert A and against expert B (`DISC/HRF`;
each expert's suspect row left out: `data.disc.read_hrf_discs`). The human
baseline is expert B against expert A on HRF (both rows not suspect).

Per row: the centre error in disc radii (the reference's radius) and in
pixels of the full-size photograph (median, mean, 90th percentile, max), the
share within 0.5 and 1 disc radius, the radius error relative to the
reference's radius (median of its absolute value, and the signed median),
how many photographs come with a confidence under `LOW_CONFIDENCE` and how
many of all are more than one radius off, and the median seconds per
photograph (the locator only).

`--vessels` chooses the vessel maps the locator is given, one set of rows
each: `none` (it makes its own from the photograph), `labels` (the manual
segmentations, DRIVE 1st_manual and HRF manual1, as a stand-in for a
perfect model; HRF's 11_h, 12_h and 13_h have none and are left out) and
`predicted` (the probabilities of `--weights`, `--scale auto` and the
default engine as predict.py; cached under `<cache>/disc/<weights>/`, so
only the first run predicts).

What the confidence says where there is no disc to find: DRIVE's 40
photographs with the disc and everything within two disc radii of its
centre blacked out and taken out of the FOV mask (`without_disc`), located
without a vessel map; the share of confidences under `LOW_CONFIDENCE`,
beside the same share for the real photographs.

Writes `disc.json` and `disc.md` to `--out` and prints the Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, markdown_table  # noqa: E402

VESSEL_SOURCES = ("none", "labels", "predicted")
DEFAULT_WEIGHTS = Path("weights/sa_unetv2_fundus.keras")
DEFAULT_OUT = Path("benchmarks/results/disc")


@dataclass(frozen=True)
class Photograph:
    """One photograph to locate: its dataset ("drive", "hrf"), name ("01_test", "01_dr"),
    split ("train", "test") and files (`vessel_path` None where it has no manual label)."""

    dataset: str
    name: str
    split: str
    image_path: Path
    mask_path: Path
    vessel_path: Path | None


def drive_photographs(data_root: Path) -> list[Photograph]:
    """DRIVE's 40 photographs, test (01-20) then training (21-40)."""
    found = []
    for part, split in (("test", "test"), ("training", "train")):
        folder = data_root / "DRIVE" / part
        for image_path in sorted((folder / "images").glob(f"*_{part}.tif")):
            name = image_path.stem
            number = name.split("_")[0]
            found.append(Photograph("drive", name, split, image_path,
                                    folder / "mask" / f"{name}_mask.gif",
                                    folder / "1st_manual" / f"{number}_manual1.gif"))  # fmt: skip
    return found


def hrf_photographs(data_root: Path) -> list[Photograph]:
    """HRF's 45 photographs in the order of `data/splits/hrf.json` (train, then test)."""
    from data.splits import fixed_split

    folder = data_root / "HRF"
    images = {path.stem: path for path in (folder / "images").iterdir()}
    train, test = fixed_split("hrf")
    found = []
    for split, names in (("train", train), ("test", test)):
        for name in names:
            label = folder / "manual1" / f"{name}.tif"
            found.append(Photograph("hrf", name, split, images[name],
                                    folder / "mask" / f"{name}_mask.tif",
                                    label if label.is_file() else None))  # fmt: skip
    return found


def disc_error(centre_xy, radius_px: float, reference) -> dict:
    """A found disc (centre (x, y), radius, px) against a `data.disc.DiscLabel`: the centre's
    distance in px and in the reference's radii, and the radius error relative to its radius."""
    distance = float(np.hypot(centre_xy[0] - reference.centre_xy[0],
                              centre_xy[1] - reference.centre_xy[1]))  # fmt: skip
    return {
        "centre_px": distance,
        "centre_radii": distance / reference.radius_px,
        "radius_rel": radius_px / reference.radius_px - 1.0,
    }


def error_summary(errors: list[dict]) -> dict:
    """The statistics of the module docstring over `disc_error` dicts (which may also hold
    "confidence" and "seconds")."""
    radii = np.array([e["centre_radii"] for e in errors])
    pixels = np.array([e["centre_px"] for e in errors])
    radius = np.array([e["radius_rel"] for e in errors])
    summary = {"n": len(errors)}
    for key, values in (("radii", radii), ("px", pixels)):
        summary.update({
            f"centre_{key}_median": float(np.median(values)),
            f"centre_{key}_mean": float(np.mean(values)),
            f"centre_{key}_p90": float(np.percentile(values, 90)),
            f"centre_{key}_max": float(np.max(values)),
        })  # fmt: skip
    summary["within_half"] = float(np.mean(radii <= 0.5))
    summary["within_one"] = float(np.mean(radii <= 1.0))
    summary["radius_abs_median"] = float(np.median(np.abs(radius)))
    summary["radius_signed_median"] = float(np.median(radius))
    summary["off"] = int(np.sum(radii > 1.0))
    if errors and "confidence" in errors[0]:
        from data.disc import LOW_CONFIDENCE

        low = np.array([e["confidence"] < LOW_CONFIDENCE for e in errors])
        summary["low_confidence"] = int(low.sum())
        summary["off_confident"] = int(np.sum((radii > 1.0) & ~low))
        summary["seconds_median"] = float(np.median([e["seconds"] for e in errors]))
    return summary


def predicted_vessels(photo: Photograph, image, mask, weights: Path, predictor_cache: dict):
    """float32 (H, W) vessel probabilities of `weights` for `photo` (as predict.py with
    `--scale auto`), read from or written to `<cache>/disc/<weights stem>/`."""
    from data.io import default_cache_dir
    from utils.io import write_image

    path = default_cache_dir() / "disc" / weights.stem / photo.dataset / f"{photo.name}.png"
    if path.is_file():
        return read_grey(path)
    if "predictor" not in predictor_cache:
        from data.scale import weights_fov_band
        from inference.engines import make_predictor

        predictor_cache["predictor"] = make_predictor(weights)
        predictor_cache["band"] = weights_fov_band(weights)
    from data.scale import image_factor, prediction_factors
    from inference.segment import segment

    band = predictor_cache["band"]
    factor = image_factor("auto", mask, band, photo.name)
    prob = segment(predictor_cache["predictor"], image, None,
                   prediction_factors("auto", factor, band))  # fmt: skip
    write_image(path, np.round(prob * 255).astype(np.uint8))
    return prob


def read_grey(path: Path) -> np.ndarray:
    """A cached probability map (8-bit grey PNG) -> float32 (H, W) in [0, 1]."""
    from PIL import Image

    return np.asarray(Image.open(path), dtype=np.float32) / 255.0


def locate_all(photos: list[Photograph], source: str, weights: Path) -> dict[str, dict]:
    """{dataset/name: {"centre_xy", "radius_px", "confidence", "method", "seconds"}} for every
    photograph that has a vessel map of `source` ("none", "labels", "predicted")."""
    from data.disc import locate_disc
    from data.io import read_image, read_label, read_mask

    found, predictor_cache = {}, {}
    for photo in photos:
        if source == "labels" and photo.vessel_path is None:
            continue
        image, mask = read_image(photo.image_path), read_mask(photo.mask_path)
        vessels = None
        if source == "labels":
            vessels = read_label(photo.vessel_path).astype(np.float32)
        elif source == "predicted":
            vessels = predicted_vessels(photo, image, mask, weights, predictor_cache)
        start = time.perf_counter()
        disc = locate_disc(image, mask, vessels)
        seconds = time.perf_counter() - start
        found[f"{photo.dataset}/{photo.name}"] = {
            "centre_xy": list(disc.centre_xy), "radius_px": disc.radius_px,
            "confidence": disc.confidence, "method": disc.method, "seconds": seconds,
        }  # fmt: skip
        print(f"{source:>9} {photo.dataset}/{photo.name}: ({disc.centre_xy[0]:.0f}, "
              f"{disc.centre_xy[1]:.0f}) r {disc.radius_px:.0f} confidence {disc.confidence:.2f}",
              file=sys.stderr, flush=True)  # fmt: skip
    return found


def without_disc(image: np.ndarray, mask: np.ndarray, label) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (H, W, 3) photograph and bool (H, W) FOV mask with everything within two radii of
    the `DiscLabel`'s centre black and outside the field of view: a photograph with no disc."""
    rows, cols = np.mgrid[: mask.shape[0], : mask.shape[1]]
    gone = np.hypot(cols - label.centre_xy[0], rows - label.centre_xy[1]) <= 2 * label.radius_px
    image, mask = image.copy(), mask & ~gone
    image[gone] = 0
    return image, mask


def no_disc_confidences(photos: list[Photograph], refs: dict) -> dict[str, float]:
    """{dataset/name: confidence (0.01)} of `locate_disc` on DRIVE's photographs `without_disc`."""
    from data.disc import locate_disc
    from data.io import read_image, read_mask

    found = {}
    for photo in photos:
        key = f"{photo.dataset}/{photo.name}"
        if photo.dataset == "drive" and key in refs["masks"]:
            image, mask = without_disc(read_image(photo.image_path), read_mask(photo.mask_path),
                                       refs["masks"][key])  # fmt: skip
            found[key] = round(locate_disc(image, mask).confidence, 2)
    return found


def confidence_rows(found_by_source: dict, no_disc: dict[str, float]) -> list[dict]:
    """Per vessel source (all photographs) and for the photographs without a disc: n, the median
    and lowest/highest confidence and the share under `LOW_CONFIDENCE`."""
    from data.disc import LOW_CONFIDENCE

    sets = [(f"{source}: all {len(found)} photographs", [d["confidence"] for d in found.values()])
            for source, found in found_by_source.items()]  # fmt: skip
    sets.append((f"none: DRIVE's {len(no_disc)} with the disc blacked out", list(no_disc.values())))
    return [{"photographs": name, "n": len(values), "median": float(np.median(values)),
             "min": float(np.min(values)), "max": float(np.max(values)),
             "low": float(np.mean(np.array(values) < LOW_CONFIDENCE))}
            for name, values in sets if values]  # fmt: skip


def found_record(found_by_source: dict) -> dict:
    """What disc.json keeps of each photograph's disc: {"found": {source: {dataset/name:
    [x, y, radius (px, 0.1), confidence (0.01)]}}, "radius_from_template": {source: [names]}}."""
    return {
        "found": {source: {key: [round(d["centre_xy"][0], 1), round(d["centre_xy"][1], 1),
                                 round(d["radius_px"], 1), round(d["confidence"], 2)]
                           for key, d in found.items()}
                  for source, found in found_by_source.items()},
        "radius_from_template": {source: [k for k, d in found.items() if "template" in d["method"]]
                                 for source, found in found_by_source.items()},
    }  # fmt: skip


CONFIDENCE_COLUMNS = (
    ("vessels: photographs", lambda r: r["photographs"]),
    ("confidence median (min - max)", lambda r: f"{r['median']:.2f} ({r['min']:.2f} - {r['max']:.2f})"),
    ("under LOW_CONFIDENCE", lambda r: f"{r['low']:.0%}"),
)  # fmt: skip


def references(data_root: Path) -> dict[str, dict]:
    """{reference name: {dataset/name: DiscLabel}}: "masks" (DRIVE), "expert A", "expert B"
    (HRF), suspect rows left out."""
    from data.disc import read_drive_discs, read_hrf_discs

    refs = {"masks": {f"drive/{k}": v for k, v in read_drive_discs(data_root).items()}}
    for expert in ("A", "B"):
        labels = read_hrf_discs(data_root, expert)
        refs[f"expert {expert}"] = {f"hrf/{k}": v for k, v in labels.items() if not v.suspect}
    return refs


def benchmark_rows(photos: list[Photograph], refs: dict, found_by_source: dict) -> list[dict]:
    """One row per (vessel source, dataset, split, reference), then the human baseline rows."""
    rows = []
    pairs = (("drive", "masks"), ("hrf", "expert A"), ("hrf", "expert B"))
    for source, found in found_by_source.items():
        for dataset, reference in pairs:
            for split in ("train", "test"):
                errors = []
                for photo in photos:
                    key = f"{photo.dataset}/{photo.name}"
                    if photo.dataset != dataset or photo.split != split:
                        continue
                    if key not in found or key not in refs[reference]:
                        continue
                    disc = found[key]
                    error = disc_error(disc["centre_xy"], disc["radius_px"], refs[reference][key])
                    errors.append(error | {k: disc[k] for k in ("confidence", "seconds")})
                rows.append({"vessels": source, "dataset": dataset, "split": split,
                             "reference": reference, **error_summary(errors)})  # fmt: skip
    for split in ("train", "test"):
        errors = []
        for photo in photos:
            key = f"hrf/{photo.name}"
            if photo.dataset != "hrf" or photo.split != split:
                continue
            if key in refs["expert A"] and key in refs["expert B"]:
                b = refs["expert B"][key]
                errors.append(disc_error(b.centre_xy, b.radius_px, refs["expert A"][key]))
        rows.append({"vessels": "(human)", "dataset": "hrf", "split": split,
                     "reference": "expert B vs A", **error_summary(errors)})  # fmt: skip
    return rows


COLUMNS = (
    ("vessels", lambda r: r["vessels"]),
    ("dataset / split", lambda r: f"{r['dataset']} {r['split']}"),
    ("reference", lambda r: r["reference"]),
    ("n", lambda r: str(r["n"])),
    ("centre, radii: median / mean / p90 / max",
     lambda r: " / ".join(f"{r[f'centre_radii_{k}']:.2f}" for k in ("median", "mean", "p90", "max"))),
    ("centre, px: median / mean / p90 / max",
     lambda r: " / ".join(f"{r[f'centre_px_{k}']:.0f}" for k in ("median", "mean", "p90", "max"))),
    ("within 0.5 / 1 radius", lambda r: f"{r['within_half']:.0%} / {r['within_one']:.0%}"),
    ("radius error: median abs / signed",
     lambda r: f"{r['radius_abs_median']:.1%} / {r['radius_signed_median']:+.1%}"),
    ("low confidence", lambda r: str(r.get("low_confidence", "-"))),
    ("> 1 radius off (confident)",
     lambda r: f"{r['off']} ({r['off_confident']})" if "off_confident" in r else str(r["off"])),
    ("s", lambda r: f"{r['seconds_median']:.2f}" if "seconds_median" in r else "-"),
)  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--vessels", default="none,labels",
                        help=f"comma-separated vessel sources: {', '.join(VESSEL_SOURCES)}")  # fmt: skip
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from data.disc import LOW_CONFIDENCE
    from utils.errors import UserError
    from utils.io import write_json, write_text

    try:
        sources = [s.strip() for s in args.vessels.split(",") if s.strip()]
        unknown = [s for s in sources if s not in VESSEL_SOURCES]
        if unknown or not sources:
            raise UserError(f"--vessels {args.vessels!r} names no known source; expected a "
                            f"comma-separated list of {', '.join(VESSEL_SOURCES)}")  # fmt: skip
        for dataset in ("DRIVE", "HRF", "DISC"):
            if not (args.data_root / dataset).is_dir():
                raise UserError(f"--data-root {args.data_root} has no {dataset}/ folder; "
                                "expected DRIVE/, HRF/ and DISC/ there")  # fmt: skip
        photos = drive_photographs(args.data_root) + hrf_photographs(args.data_root)
        refs = references(args.data_root)
        found = {source: locate_all(photos, source, args.weights) for source in sources}
        no_disc = no_disc_confidences(photos, refs)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = benchmark_rows(photos, refs, found)
    header = (f"Optic disc: data.disc.locate_disc against DRIVE's disc masks and HRF's experts "
              f"(full-size photographs, their own FOV masks), {machine()}")  # fmt: skip
    confidence = confidence_rows(found, no_disc)
    table = (f"{markdown_table(COLUMNS, rows)}\n\nConfidence (LOW_CONFIDENCE = {LOW_CONFIDENCE}):"
             f"\n\n{markdown_table(CONFIDENCE_COLUMNS, confidence)}")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "disc.json", {"machine": machine(), "rows": rows,
                                        "confidence": confidence, **found_record(found),
                                        "no_disc_confidence": no_disc})  # fmt: skip
    write_text(args.out / "disc.md", f"{header}\n\n{table}\n")
    print(json.dumps({"rows": rows, "confidence": confidence}, indent=2) if args.json
          else f"{header}\n\n{table}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
