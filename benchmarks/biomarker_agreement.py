"""Our fractal dimension and calibre biomarkers against PVBM's on manual labels.

    pip install --no-deps pvbm    # this benchmark only; not a project requirement
    python benchmarks/biomarker_agreement.py --data-root ../shared/data

(a) Fractal dimension, DRIVE's 20 test labels (first observer, 1st_manual,
inside the FOV masks): ours as predict.py reports it
(`measurements.measure_vessels`: box counting on the map's bounding box,
boxes 2, 4, 8, ... px) against PVBM's capacity dimension D0
(`PVBM.FractalAnalysis.MultifractalVBMs` with its defaults: 25 rotations, the
best kept, boxes counted when 1-98 % full) on the label padded to a square; also PVBM's D0 at one rotation, and our box counting with PVBM's
box sizes (20 sizes from 5 px to 0.6 of the square's side, evenly spaced), to
show where the difference comes from.

(b) CRAE, CRVE and AVR, RITE's 20 test A/V labels (`data.av.classes_from_colours`;
drawn on DRIVE's second observer), disc from `DISC/DRIVE` (centroid and
equal-area diameter): ours (`biomarkers.calibre_biomarkers`, inside the FOV
masks) against PVBM's Knudtson CRAE/CRVE
(`PVBM.CentralRetinalAnalysis.CREVBMs`), which takes one binary map per type:
artery = artery + crossing pixels, vein = vein + crossing pixels, each with its
skeleton cut to the same zone B (PVBM's zones: 2 to 3 disc radii). PVBM
starts a vessel only at a skeleton piece of 50 pixels or more, longer than
zone B is wide at DRIVE's size (about 40 px), so the maps are also given to it
enlarged `--pvbm-scale` times (nearest neighbour) and its widths divided back.
Pearson r over the photographs both measure and the mean absolute difference.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import markdown_table  # noqa: E402
from benchmarks.measure_agreement import agreement, agreement_columns  # noqa: E402
from utils.cli import run_cli  # noqa: E402
from utils.errors import UserError  # noqa: E402

RITE_TEST = range(1, 21)
PVBM_ROTATIONS = 25  # MultifractalVBMs' default
CALIBRE_KEYS = ("crae_px", "crve_px", "avr")


def import_pvbm():
    """PVBM's fractal and central-retinal-equivalent classes; a UserError when not installed."""
    try:
        from PVBM.CentralRetinalAnalysis import CREVBMs
        from PVBM.FractalAnalysis import MultifractalVBMs
    except ImportError as exc:
        raise UserError(
            f"PVBM is not installed ({exc}); `pip install --no-deps pvbm` adds it for this benchmark"
        ) from exc
    return MultifractalVBMs, CREVBMs


def padded_square(vessels: np.ndarray) -> np.ndarray:
    """float64 (S, S) 0/1: a bool (H, W) map in the top-left corner of a square, S = max(H, W)."""
    side = max(vessels.shape)
    square = np.zeros((side, side), np.float64)
    square[: vessels.shape[0], : vessels.shape[1]] = vessels
    return square


def pvbm_box_sizes(side: int) -> list[int]:
    """The box sizes (px) PVBM's D0 fits over for a square `side` px across."""
    return np.linspace(5, int(0.6 * side), 20).astype(np.int64).tolist()


def fractal_rows(data_root: Path, rotations: int) -> list[dict]:
    """Per DRIVE test label: ours, PVBM's D0 (`rotations`, and one), ours with PVBM's box sizes."""
    from data.readers import read_drive
    from measurements import box_counting_dimension, measure_vessels

    multifractal, _ = import_pvbm()
    best = multifractal(n_rotations=rotations)
    upright = multifractal(n_rotations=1, optimize=False)
    rows = []
    for sample in read_drive(data_root)[1]:
        vessels = (sample.label > 0) & sample.mask
        square = padded_square(vessels)
        rows.append(
            {
                "image": sample.name,
                "ours": measure_vessels(vessels, sample.mask).values["fractal_dimension"],
                "pvbm_d0": float(best.compute_multifractals(square.copy())[0]),
                "pvbm_d0_one_rotation": float(upright.compute_multifractals(square.copy())[0]),
                "ours_pvbm_sizes": box_counting_dimension(
                    square > 0, sizes=pvbm_box_sizes(square.shape[0])
                ),
            }
        )
    return rows


def read_rite_test(data_root: Path, number: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(uint8 (H, W) A/V class map, bool FOV, bool disc) of RITE test photograph `number`."""
    from PIL import Image

    from data.av import classes_from_colours
    from data.io import read_mask

    name = f"{number:02d}_test"
    files = {
        "av": data_root / "RITE" / "test" / "av" / f"{name}.png",
        "fov": data_root / "RITE" / "test" / "mask" / f"{name}_mask.gif",
        "disc": data_root / "DISC" / "DRIVE" / f"{name}_gt.tif",
    }
    for path in files.values():
        if not path.is_file():
            raise UserError(f"{path} not found; expected RITE and DISC/DRIVE under {data_root}")
    with Image.open(files["av"]) as label:
        classes = classes_from_colours(np.asarray(label.convert("RGB")))
    return classes, read_mask(files["fov"]), read_mask(files["disc"])


def pvbm_calibre(classes: np.ndarray, centre_xy, diameter: float, scale: int) -> dict:
    """PVBM's Knudtson CRAE, CRVE (px of the original map; NaN where it finds none) and AVR for a
    class map, its maps enlarged `scale` times."""
    from skimage.morphology import skeletonize

    from biomarkers import zone_b
    from data.av import ARTERY, CROSSING, VEIN

    _, central = import_pvbm()
    sys.setrecursionlimit(100000)  # PVBM walks the skeleton recursively
    big = np.kron(classes, np.ones((scale, scale), np.uint8))
    centre = ((centre_xy[0] + 0.5) * scale - 0.5, (centre_xy[1] + 0.5) * scale - 0.5)
    ring = zone_b(big.shape, centre, diameter * scale)
    found = {}
    for kind, key, artery in ((ARTERY, "crae_px", True), (VEIN, "crve_px", False)):
        vessels = np.isin(big, (kind, CROSSING))
        skeleton = skeletonize(vessels)
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its Hubbard formula's square roots of negatives
            result, _ = central().compute_central_retinal_equivalents(
                (vessels & ring).astype(np.float64),
                (skeleton & ring).astype(np.float64),
                int(round(centre[0])),
                int(round(centre[1])),
                int(round(diameter * scale / 2)),
                artery=artery,
            )
        value = float(result["craek" if artery else "crvek"])
        found[key] = value / scale if value > 0 else float("nan")
    found["avr"] = found["crae_px"] / found["crve_px"]
    return found


def calibre_rows(data_root: Path, scales: list[int]) -> list[dict]:
    """Per RITE test label: our biomarkers and PVBM's at each of `scales`."""
    from biomarkers import calibre_biomarkers, disc_from_mask
    from data.av import vessel_mask

    rows = []
    for number in RITE_TEST:
        classes, fov, disc = read_rite_test(data_root, number)
        centre, diameter = disc_from_mask(disc)
        ours = calibre_biomarkers(vessel_mask(classes), classes, centre, diameter, fov)
        row = {
            "image": f"{number:02d}_test",
            "disc_diameter_px": diameter,
            "ours": {key: getattr(ours, key) for key in CALIBRE_KEYS},
            "n_arteries": ours.n_arteries,
            "n_veins": ours.n_veins,
            "flags": list(ours.flags),
        }
        for scale in scales:
            row[f"pvbm_x{scale}"] = pvbm_calibre(classes, centre, diameter, scale)
        rows.append(row)
    return rows


def summary(fractal: list[dict], calibre: list[dict], scales: list[int]) -> dict:
    """Means, Pearson r and mean absolute differences of both parts."""
    found = {"fractal": {}, "calibre": {}}
    if fractal:
        ours = [{"d": row["ours"]} for row in fractal]
        for key in ("pvbm_d0", "pvbm_d0_one_rotation", "ours_pvbm_sizes"):
            found["fractal"][key] = agreement([{"d": row[key]} for row in fractal], ours, ("d",))[
                "d"
            ]
    ours = [row["ours"] for row in calibre]
    found["calibre"]["ours"] = {
        "mean": {k: float(np.nanmean([o[k] for o in ours])) for k in CALIBRE_KEYS},
        "n_arteries": float(np.mean([row["n_arteries"] for row in calibre])),
        "n_veins": float(np.mean([row["n_veins"] for row in calibre])),
        "flags": {
            flag: sum(flag in row["flags"] for row in calibre)
            for flag in sorted({f for row in calibre for f in row["flags"]})
        },
    }
    for scale in scales:
        key = f"pvbm_x{scale}"
        if calibre and key in calibre[0]:
            found["calibre"][key] = agreement([row[key] for row in calibre], ours, CALIBRE_KEYS)
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--rotations", type=int, default=PVBM_ROTATIONS)
    parser.add_argument("--pvbm-scale", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    import_pvbm()
    fractal = fractal_rows(args.data_root, args.rotations)
    calibre = calibre_rows(args.data_root, args.pvbm_scale)
    found = summary(fractal, calibre, args.pvbm_scale)
    if args.json:
        print(json.dumps({"summary": found, "fractal": fractal, "calibre": calibre}, indent=2))
        return 0
    print(f"(a) fractal dimension, DRIVE test 1st_manual inside the FOV, {len(fractal)} labels")
    print(
        f"ours (measurements.box_counting_dimension): mean {np.mean([r['ours'] for r in fractal]):.3f}\n"
    )
    print(
        markdown_table(
            [
                ("against ours", lambda r: r["key"]),
                ("mean", lambda r: f"{r['mean']:.3f}"),
                ("Pearson r", lambda r: f"{r['r']:.3f}"),
                ("mean abs diff", lambda r: f"{r['mad']:.3f}"),
            ],
            [{"key": k, **v} for k, v in found["fractal"].items()],
        )
    )  # fmt: skip
    ours = found["calibre"]["ours"]
    print(f"\n(b) calibre biomarkers, RITE test A/V labels, {len(calibre)} photographs")
    print(
        "ours: mean CRAE {crae_px:.2f} px, CRVE {crve_px:.2f} px, AVR {avr:.3f}; ".format(
            **ours["mean"]
        )
        + f"arteries {ours['n_arteries']:.1f}, veins {ours['n_veins']:.1f} per photograph; "
        + f"flags {ours['flags']}\n"
    )
    rows = [
        {"key": f"{key} PVBM x{scale}", **found["calibre"][f"pvbm_x{scale}"][key]}
        for scale in args.pvbm_scale
        for key in CALIBRE_KEYS
    ]
    print(markdown_table(agreement_columns("biomarker", "PVBM mean", "our mean"), rows))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
