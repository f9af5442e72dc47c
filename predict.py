"""Segment the vessels of your own fundus photographs, one or a whole cohort.

    python predict.py --out predictions photo1.jpg folder/
    python predict.py --weights weights/sa_unetv2_drive.keras --recursive --measure cohort/
    python predict.py --shard 2/4 --measure --out out cohort/   # one of 4 processes or machines
    python predict.py --merge-shards out                        # their rows into measurements.csv
    python predict.py cohort/ --measure --av                   # arteries, veins, disc, CRAE

Without --weights it uses weights/sa_unetv2_fundus.keras (trained on four datasets, for any
camera) when it is there, otherwise weights/sa_unetv2_drive.keras, and says which. The
threshold is the one the weights' .yaml records as chosen on their validation images
(--threshold auto, the default), 0.5 where none is recorded.

Any size and camera: each photograph is resampled so that its field of view
is as wide as in the images the weights were trained on (DRIVE-sized
photographs keep factor 1; --verbose prints it), padded to a multiple of 8,
predicted, and the probabilities resampled back and thresholded at the
input's size. Then, by default (--scale vessels, where the weights' .yaml
records the calibre of the vessels they drew, as every shipped file does),
where the main vessels of that map are wider than the weights drew them, it
is predicted again, shrunk so that they come to the middle of that range
(narrower ones are never enlarged; docs/cameras.md); --scale auto stops after
the first pass.

Writes, per input, PNGs of the input's size (--save chooses; default all):
<stem>_prob.png (probability 0..255), <stem>_binary.png (vessels 255 inside
the field of view), <stem>_overlay.png (vessels drawn on the photograph) and
<stem>_fov.png (the field-of-view mask: --mask, or generated from the image).
--measure adds measurements.csv (one row per photograph: vessel area,
skeleton length, branch and end points, fractal dimension, calibre,
tortuosity, and a quality record whose `quality` column says ok or check:
too dark, blurred, small, no field of view; docs/prediction.md),
--measure-images <stem>_calibre.png.

--disc locates the optic disc of each photograph (data/disc.py, with the
vessel probability map) and writes <stem>_disc.png (the photograph with the
disc's circle and centre in cyan) and, with --measure, its centre, radius and
confidence. --av [WEIGHTS] runs an artery/vein network (weights/sa_unetv2_av.keras,
or a .keras file trained with configs/av_rite.yaml or configs/av_hrf.yaml; with
no value, write the inputs first) after the vessel network, on the
photograph resampled to the FOV diameter the A/V weights trained at (as
--scale auto resamples; a factor or NNNpx given as --scale applies to both
networks), writes <stem>_av.png (arteries red, veins blue)
and, with --measure, CRAE, CRVE and AVR (biomarkers.py) of the vessel
network's binary map typed by the A/V network's classes; it implies --disc.
Each vessel segment between two junctions takes one type, the mean of its
pixels' (data.av.vote_by_segment); --av-pixels types each pixel by itself.
The vessel maps and the other measurements are the same with and without them
(docs/arteries-veins.md, "From predict.py").

Streams (memory does not grow with the number of photographs) and resumes: a
photograph whose outputs are all there is skipped (--overwrite redoes it); a
killed run leaves no partial file. A photograph that cannot be read is
reported and skipped; the exit status is then 1.

A cohort on many machines: --shard K/N takes the photographs whose relative
path hashes to shard K of N (the same share on every machine, whatever the
order of the files), writing measurements.shard-K-of-N.csv; once all N ran,
--merge-shards OUT joins their rows into OUT/measurements.csv, sorted by name
(docs/prediction.md, "A cohort on many machines").
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from inference.pipeline import WORKERS
from utils.cli import run_cli
from utils.errors import UserError

ROOT = Path(__file__).resolve().parent
# Without --weights: the weights for photographs from any camera once shipped, else DRIVE's.
DEFAULT_WEIGHTS = ("sa_unetv2_fundus.keras", "sa_unetv2_drive.keras")
SHIPPED_AV = "sa_unetv2_av.keras"  # --av without a value: the artery/vein network in weights/


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "inputs", nargs="*", metavar="INPUT", help="image files or folders of images"
    )
    parser.add_argument(
        "--weights",
        help="a .keras checkpoint (default: the first of "
        + ", ".join(f"weights/{name}" for name in DEFAULT_WEIGHTS)
        + " that is there)",
    )
    parser.add_argument(
        "--out", default="predictions", help="output folder (default: predictions/)"
    )
    parser.add_argument(
        "--recursive",
        action="store_true",
        help="search folders recursively (outputs keep the sub-folders)",
    )
    parser.add_argument(
        "--save",
        default="prob,binary,overlay,fov",
        help="which pictures to write: comma-separated prob, binary, overlay, fov (default: all)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="redo photographs whose outputs already exist"
    )
    parser.add_argument(
        "--threshold",
        default="auto",
        help="vessel if probability > threshold; auto (default): the threshold the weights' .yaml "
        "records as chosen on their validation images, 0.5 where it records none",
    )
    parser.add_argument("--mask", help="FOV mask image for a single input (default: generated)")
    parser.add_argument(
        "--no-fov", action="store_true", help="do not restrict the binary map to the field of view"
    )
    parser.add_argument(
        "--scale",
        default=None,
        help="vessels (the default where the weights record their vessels' calibre, auto "
        "otherwise): auto, then again, shrunk, where the main vessels are wider than the "
        "weights drew them; auto: resample each photograph so its field of view is as wide as "
        "the training images'; NNNpx: bring every field of view to NNN px (LOW-HIGHpx: into "
        "that band), whatever the weights trained at; a number: that factor; 1: off",
    )
    parser.add_argument(
        "--tta",
        action="store_true",
        help="test-time augmentation: also predict each photograph mirrored left-right and "
        "average the two maps (twice the network time; docs/cameras.md)",
    )
    parser.add_argument(
        "--measure",
        action="store_true",
        help="write measurements.csv: vessel measurements of each binary map inside its FOV",
    )
    parser.add_argument(
        "--measure-images",
        action="store_true",
        help="write <stem>_calibre.png: the vessel skeleton coloured by calibre",
    )
    parser.add_argument(
        "--fov-degrees",
        type=float,
        default=45.0,
        help="the camera's field of view in degrees, for millimetres (default 45)",
    )
    parser.add_argument(
        "--mm-per-pixel",
        type=float,
        help="pixel size on the retina (overrides a DICOM file's Pixel Spacing and --fov-degrees)",
    )
    parser.add_argument(
        "--disc",
        action="store_true",
        help="locate the optic disc: <stem>_disc.png and, with --measure, its columns",
    )
    parser.add_argument(
        "--av",
        nargs="?",
        const=SHIPPED_AV,
        metavar="WEIGHTS",
        help="arteries and veins: <stem>_av.png and, with --measure, CRAE, CRVE and AVR (implies "
        f"--disc); WEIGHTS: an artery/vein .keras file, default weights/{SHIPPED_AV}; its "
        "threshold is the one its .yaml records, else 0.5",
    )
    parser.add_argument(
        "--av-pixels",
        action="store_true",
        help="with --av: type each vessel pixel by itself, not each segment between junctions "
        "as a whole",
    )
    parser.add_argument("--engine", default="auto", help="inference engine (auto, keras, ...)")
    parser.add_argument("--backend", choices=("tensorflow", "jax", "torch"), help="Keras backend")
    parser.add_argument(
        "--workers",
        type=int,
        default=WORKERS,
        help=f"threads writing and reading photographs while the network runs (default "
        f"{WORKERS}); 0: one stage after the other, slower, the least memory",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="print a line per photograph (scale factor, times)"
    )
    parser.add_argument(
        "--shard",
        metavar="K/N",
        help="do only shard K of N (1 <= K <= N): the photographs whose path, relative to the "
        "folder they are in, hashes to K; measurements go to measurements.shard-K-of-N.csv",
    )
    parser.add_argument(
        "--merge-shards",
        metavar="OUT",
        help="join OUT's measurements.shard-K-of-N.csv (K = 1..N) into OUT/measurements.csv, "
        "sorted by name, and exit (no INPUT)",
    )
    return parser.parse_args(argv)


def default_weights(folder: Path = ROOT / "weights") -> Path:
    """The weights predict.py uses without --weights: the first of DEFAULT_WEIGHTS in `folder`."""
    for name in DEFAULT_WEIGHTS:
        if (folder / name).is_file():
            return folder / name
    raise UserError(
        f"no --weights given and none of {', '.join(DEFAULT_WEIGHTS)} is in {folder}; "
        "name a .keras file with --weights"
    )


def av_scale_text(av_weights: Path, scale) -> str:
    """How the A/V network sees each photograph, for predict.py's first lines: the FOV diameter
    its weights trained at (`data.scale.weights_fov_band`), or the --scale factor or diameter."""
    from data.scale import scale_text, weights_fov_band
    from inference.pipeline import av_scale

    if av_scale(scale) != "auto":  # a factor or an NNNpx band: as for the vessel network
        return f"each photograph at --scale {scale_text(scale)}"
    band = weights_fov_band(av_weights, "auto", warn=lambda _: None)
    if band is None:
        return "each photograph at factor 1 (they record no training scale)"
    return f"each photograph's FOV brought to {scale_text(band)}, as they trained"


def check_av_weights(value: str, folder: Path = ROOT / "weights") -> Path:
    """The --av file as a Path if it is an existing `.keras` file (`SHIPPED_AV`, --av without a
    value: the one in `folder`); else one sentence (UserError)."""
    from utils.io import check_weights_file

    path = folder / SHIPPED_AV if value == SHIPPED_AV else Path(value)
    if value == SHIPPED_AV and not path.is_file():
        raise UserError(
            f"--av: {path} is not here; give an artery/vein .keras file (--av FILE) or train one "
            "with configs/av_rite.yaml or configs/av_hrf.yaml (docs/arteries-veins.md)"
        )
    if path.is_dir() or (path.is_file() and path.suffix != ".keras"):
        raise UserError(
            f"--av {value}: {value} is not a .keras file; --av takes the weights as an optional "
            f"value, so write the inputs first (predict.py PHOTOS --av) or name the weights "
            f"(--av weights/{SHIPPED_AV})"
        )
    if not path.is_file():
        raise UserError(f"--av weights file {path} does not exist")
    return check_weights_file(path)


def parse_threshold(value: str) -> str | float:
    """A --threshold value: "auto" or a number in [0, 1]."""
    if value.strip().lower() == "auto":
        return "auto"
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not 0.0 <= number <= 1.0:
        raise UserError(f"--threshold must be 'auto' or a number in [0, 1], got {value}")
    return number


def resolve_threshold(value: str | float, weights: Path) -> tuple[float, str]:
    """(threshold, where it comes from) for a `parse_threshold` value and the weights used."""
    if value != "auto":
        return float(value), "--threshold"
    from data.scale import weights_config

    recorded = weights_config(weights).get("evaluate") or {}
    chosen, folded = recorded.get("chosen_threshold"), recorded.get("folded_threshold")
    if chosen is None:
        return 0.5, "the weights record no chosen threshold"
    if folded is not None:
        return float(chosen), f"chosen on the weights' validation images, {folded:.2f} folded into them"
    return float(chosen), "chosen on the weights' validation images"


def default_scale(weights: Path) -> str:
    """predict.py's --scale without the flag: "vessels" where the weights' .yaml (or their run's
    config.yaml) records the calibre range of the vessels they drew (`scale.vessel_calibre`), the
    rule that did best on cameras left out of training (docs/cameras.md); "auto" otherwise."""
    from data.scale import weights_config

    recorded = (weights_config(weights).get("scale") or {}).get("vessel_calibre")
    return "vessels" if recorded else "auto"


def _positive(value: float | None, flag: str) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise UserError(f"{flag} must be a positive number, got {value}")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.merge_shards is not None:
        return merge_shards(args)
    if not args.inputs:
        raise UserError("name the image files or folders to predict (or --merge-shards OUT)")
    shard = None
    if args.shard is not None:
        from inference.shards import parse_shard

        shard = parse_shard(args.shard)
    threshold = parse_threshold(args.threshold)
    _positive(args.fov_degrees, "--fov-degrees")
    _positive(args.mm_per_pixel, "--mm-per-pixel")
    if args.av_pixels and not args.av:
        raise UserError("--av-pixels changes how --av types the vessels; give --av as well")
    if args.workers < 0:
        raise UserError(f"--workers must be 0 or more, got {args.workers}")
    from data.scale import parse_scale
    from inference.outputs import parse_save

    scale = parse_scale(args.scale) if args.scale is not None else None
    save = parse_save(args.save)
    from utils.io import check_weights_file

    weights = check_weights_file(args.weights) if args.weights else default_weights()
    threshold, source = resolve_threshold(threshold, weights)
    if scale is None:
        scale = default_scale(weights)
    av_weights = check_av_weights(args.av) if args.av else None
    av_threshold, av_source = resolve_threshold("auto", av_weights) if av_weights else (0.5, "")
    from inference.pipeline import (
        PredictOptions,
        check_inputs,
        collect_inputs,
        map_large_arrays,
        predict_files,
    )

    jobs = collect_inputs(args.inputs, recursive=args.recursive, exclude=args.out)
    check_inputs(jobs, args.mask)
    cohort = len(jobs)
    if shard is not None:
        from inference.shards import select_shard

        jobs = select_shard(jobs, shard)  # predict_files selects it again: the same list
    options = PredictOptions(
        threshold=threshold,
        use_fov=not args.no_fov,
        scale=scale,
        mirror=args.tta,
        save=save,
        measure=args.measure,
        measure_images=args.measure_images,
        mm_per_pixel=args.mm_per_pixel,
        fov_degrees=args.fov_degrees,
        overwrite=args.overwrite,
        verbose=args.verbose,
        workers=args.workers,
        shard=shard,
        disc=args.disc or av_weights is not None,
        av=av_weights is not None,
        av_threshold=av_threshold,
        av_vote=not args.av_pixels,
    )
    from training.backend import select_backend

    select_backend(args.backend)  # after the checks above: a typo costs no TensorFlow import
    out = Path(args.out)
    map_large_arrays()  # freed full-size arrays go back to the system at once
    which = "" if args.weights else " (the default; --weights to choose others)"
    tta = ", each photograph also predicted mirrored (--tta)" if args.tta else ""
    from data.scale import scale_text

    print(
        f"weights {_shown(weights)}{which}, threshold {threshold:.2f} ({source}), "
        f"--scale {scale_text(scale)}{tta}"
    )
    if av_weights is not None:
        print(
            f"artery/vein weights {_shown(av_weights)}, threshold {av_threshold:.2f} ({av_source}), "
            f"{av_scale_text(av_weights, scale)}"
        )
    if shard is not None:
        print(f"shard {shard[0]}/{shard[1]}: {len(jobs)} of {cohort} photographs")
    summary = predict_files(
        jobs, weights, out, options, engine=args.engine, mask_path=args.mask, av_weights=av_weights
    )
    print(summary.line(out))
    return 1 if summary.failed else 0


def merge_shards(args) -> int:
    """--merge-shards OUT: the shards' measurement files in OUT joined into measurements.csv."""
    if args.inputs or args.shard is not None:
        raise UserError(
            "--merge-shards OUT merges the shards' files in OUT; give it no INPUT and no --shard"
        )
    from inference.pipeline import MEASUREMENTS_CSV
    from inference.shards import merge_measurements

    count, rows = merge_measurements(args.merge_shards)
    where = Path(args.merge_shards) / MEASUREMENTS_CSV
    print(f"{rows} photographs from {count} shard files merged into {where}")
    return 0


def _shown(path: Path) -> str:
    """`path` relative to the repository when it is inside it, as the README names it."""
    try:
        return Path(path).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(run_cli(main))
