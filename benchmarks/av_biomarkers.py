"""CRAE, CRVE and AVR as predict.py measures them, against the same from the manual A/V labels.

    python benchmarks/av_biomarkers.py --av-weights weights/sa_unetv2_av.keras --data-root ../shared/data

For the test photographs of RITE (DRIVE's 20) and HRF-AV (HRF's 30, at full size):

- predicted: `predict.py --av W --disc --measure` on the photographs as released, with
  predict.py's defaults otherwise (vessel weights, scale, threshold; `--weights` and
  `--predict-flags` change them): its measurements.csv, the optic disc located
  (`data.disc.locate_disc`), vessels from the vessel network, types from the A/V network.
- manual: `biomarkers.calibre_biomarkers` on the label's vessel pixels (`data.av.vessel_mask`)
  typed by the label, about the reference disc (DISC/DRIVE; DISC/HRF, expert A: its centre and
  diameter), inside the photograph's FOV mask.

Per biomarker, over the photographs where both give a value: the two means, Pearson r and the
mean absolute difference (`benchmarks.measure_agreement.agreement`); and how many photographs
each flags with fewer than six vessels of a type. Everything is end to end (disc, vessel map and
types all predicted), which is what a user of predict.py gets. Writes OUT/<dataset>/ (the
predictions) and OUT/summary.json; rerunning skips the photographs already predicted.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, markdown_table  # noqa: E402
from benchmarks.measure_agreement import agreement, agreement_columns  # noqa: E402
from utils.cli import run_cli  # noqa: E402
from utils.errors import UserError  # noqa: E402

KEYS = ("crae_px", "crve_px", "avr")
DATASETS = {"rite": "drive", "hrf_av": "hrf"}  # A/V label set -> the dataset of its photographs
FLAG_KINDS = ("fewer_than_6_arteries", "fewer_than_6_veins", "disc_not_in_picture")


def number(text: str) -> float:
    """A measurements.csv cell as a float (NaN where empty)."""
    return float(text) if text not in ("", None) else float("nan")


def predicted_rows(csv_path: Path) -> dict[str, dict]:
    """{photograph stem: {crae_px, crve_px, avr, flags}} from predict.py's measurements.csv."""
    if not csv_path.is_file():
        raise UserError(f"{csv_path} not found; predict.py did not write its measurements")
    with csv_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if rows and "crae_px" not in rows[0]:
        raise UserError(f"{csv_path} has no crae_px column; it was written without --av")
    return {
        row["image"]: {
            **{key: number(row[key]) for key in KEYS},
            "flags": [flag for flag in row["calibre_flags"].split(";") if flag],
        }
        for row in rows
    }


def manual_samples(label_set: str, data_root: Path) -> list:
    """The test samples of an A/V label set at the photographs' own size."""
    from data.readers import read_hrf_av, read_rite

    if label_set == "rite":
        return read_rite(data_root)[1]
    return read_hrf_av(data_root, downsample=1)[1]


def reference_discs(label_set: str, data_root: Path) -> dict:
    """{sample name: data.disc.DiscLabel} of the label set's photographs."""
    from data.disc import read_drive_discs, read_hrf_discs

    if label_set == "rite":
        return read_drive_discs(data_root)
    return read_hrf_discs(data_root, expert="A")


def manual_row(sample, disc) -> dict:
    """The calibre biomarkers of one A/V label about its reference disc."""
    from biomarkers import calibre_biomarkers
    from data.av import vessel_mask

    found = calibre_biomarkers(
        vessel_mask(sample.label), sample.label, disc.centre_xy, disc.diameter_px, fov=sample.mask
    )
    return {**{key: getattr(found, key) for key in KEYS}, "flags": list(found.flags)}


def compare(predicted: dict[str, dict], manual: dict[str, dict]) -> dict:
    """Agreement per biomarker over the photographs both measured, and the flag counts."""
    names = sorted(set(predicted) & set(manual))
    if not names:
        raise UserError("no photograph has both a prediction and a manual label")
    table = agreement([predicted[n] for n in names], [manual[n] for n in names], KEYS)
    flags = {
        side: {kind: sum(kind in rows[n]["flags"] for n in names) for kind in FLAG_KINDS}
        for side, rows in (("predicted", predicted), ("manual", manual))
    }
    return {"photographs": len(names), "agreement": table, "flags": flags}


def run_predict(av_weights: Path, photos: list[Path], out: Path, weights, flags: list[str]) -> None:
    """predict.py --av --disc --measure on `photos` into `out` (skips what is already there),
    printed and run as the leave-one-out protocol runs its steps (`leave_one_out.run_step`)."""
    from benchmarks.leave_one_out import run_step

    command = [sys.executable, "predict.py", "--av", str(av_weights), "--disc", "--measure",
               "--save", "binary", "--out", str(out), *(["--weights", weights] if weights else []),
               *flags, *map(str, photos)]  # fmt: skip
    run_step(command, dry_run=False)


def summary_markdown(found: dict) -> str:
    """One table per label set: biomarker, means, r, MAD; then the flag counts."""
    parts = []
    for label_set, result in found.items():
        rows = [{"key": key, **result["agreement"][key]} for key in KEYS]
        parts.append(f"{label_set}: {result['photographs']} test photographs\n")
        columns = agreement_columns("biomarker", "predicted mean", "manual mean")
        parts.append(markdown_table(columns, rows))
        counts = result["flags"]
        parts.append(
            "flagged (predicted / manual): "
            + ", ".join(f"{k} {counts['predicted'][k]} / {counts['manual'][k]}" for k in FLAG_KINDS)
            + "\n"
        )
    return "\n".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--av-weights", type=Path, required=True, help="the A/V network (.keras)")
    parser.add_argument("--weights", default=None, help="vessel network (predict.py's default)")
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument(
        "--label-sets", nargs="+", choices=sorted(DATASETS), default=["rite", "hrf_av"]
    )
    parser.add_argument("--predict-flags", default="", help='more predict.py flags, e.g. "--tta"')
    parser.add_argument("--out", type=Path, default=Path("runs/av_biomarkers"))
    args = parser.parse_args(argv)
    if not args.av_weights.is_file():
        raise UserError(f"A/V weights {args.av_weights} not found")
    from benchmarks.leave_one_out import link_photographs

    found = {}
    for label_set in args.label_sets:
        folder = args.out / label_set
        photos = link_photographs(DATASETS[label_set], str(args.data_root), folder / "photographs")
        run_predict(args.av_weights, photos, folder / "pred", args.weights,
                    shlex.split(args.predict_flags))  # fmt: skip
        predicted = predicted_rows(folder / "pred" / "measurements.csv")
        discs = reference_discs(label_set, args.data_root)
        manual = {}
        for sample in manual_samples(label_set, args.data_root):
            disc = discs.get(sample.name)
            if disc is not None and not disc.suspect:
                # the name is predict.py's stem of the photograph (DRIVE's NN_test, HRF's NN_x)
                manual[sample.name] = manual_row(sample, disc)
        found[label_set] = compare(predicted, manual)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(found, indent=2) + "\n")
    print(f"CRAE, CRVE, AVR: predict.py --av against the manual A/V labels. {machine()}.\n")
    print(summary_markdown(found))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
