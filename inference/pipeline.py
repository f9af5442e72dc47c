"""predict.py's library: a cohort of fundus photographs in, vessel maps (and measurements) out.

Streaming, in lock step, so memory does not grow with the number of inputs.
Step k: this thread resamples photograph k to the network's scale; while the
network segments it, `WORKERS` threads write the pictures (and measurements)
of photograph k-1, one picture a task, and then read photograph k+1 and find
its field of view; when they are done, this thread resamples the
probabilities back to full size. At most three photographs are held and
every step allocates the same arrays in the same order, so the peak memory
does not grow with the cohort: with the worker threads it varies by up to
about 1 % with thread timing, flat over 300 photographs; with `workers=0`
(every stage on this thread, one after the other) by about 0.1 %
(docs/prediction.md, "Speed and memory"). What
each step freed is handed back to the system (`release_memory`).

Resumable: every file is written under a temporary name and renamed
(`utils.io.atomic_path`), so a killed run leaves either a complete picture or
none (and a temporary file that the next run deletes). A photograph whose
requested outputs all exist (and, with measurements, whose row is in
measurements.csv) is skipped unless `overwrite`; measurements.csv gets one
row per photograph, appended as each finishes, with the photograph's quality
figures and verdict (`data.quality`) beside its measurements (with
`PredictOptions.shard`, one shard of the jobs and measurements.shard-K-of-N.csv:
`inference.shards`).

With `PredictOptions.disc` the optic disc of each photograph is located
(`data.disc.locate_disc`, with the vessel probability map at the photograph's
size) and drawn in `<name>_disc.png`; with `PredictOptions.av` an artery/vein
network runs after the vessel network, on the photograph resampled to the scale
the A/V weights trained at (`PredictOptions.av_band`, as `--scale auto` resamples
for them; the vessel map is exactly what it is without it), its classes are
painted in `<name>_av.png`, and CRAE, CRVE and
AVR (`biomarkers.calibre_biomarkers`) are measured on the vessel network's
binary map typed by the A/V network's classes, around the disc found. Their
columns (`DISC_KEYS`, `CALIBRE_KEYS`) are in every measurements.csv, empty
where the option was off, so runs with and without them resume and merge into
one table.

A photograph that cannot be read or used is reported in one line and
skipped; the run goes on and `Summary.failed` counts it.
"""

from __future__ import annotations

import csv
import functools
import glob
import io
import math
import os
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from data.io import file_stem, image_size, is_dicom_file, is_image_name
from inference.outputs import AV_KIND, CALIBRE_KIND, DISC_KIND, OUTPUT_KINDS, output_path
from utils.errors import UserError

if TYPE_CHECKING:
    from data.scale import FovBand

WORKERS = 2  # threads writing photograph k-1's pictures and reading photograph k+1
MEASUREMENTS_CSV = "measurements.csv"
STAGES = ("read", "fov", "resample", "network", "resample_back", "write")
# measurements.csv's columns of the optic disc (--disc) and of the calibre biomarkers (--av).
DISC_KEYS = ("disc_x", "disc_y", "disc_radius_px", "disc_confidence", "disc_low_confidence")
CALIBRE_KEYS = ("crae_px", "crve_px", "avr", "crae_um", "crve_um", "n_arteries", "n_veins",
                "calibre_flags")  # fmt: skip


@dataclass(frozen=True)
class Job:
    """One input photograph: its file, its output name under the output folder ("sub/photo"),
    and whether the user named the file itself (its header is checked before anything loads)."""

    path: Path
    name: str
    named: bool = False


@dataclass(frozen=True)
class PredictOptions:
    """What predict.py writes. scale: "auto" or a factor (`data.scale`); mirror: each photograph
    also predicted mirrored left-right, the two maps averaged (`segment`); save: kinds of
    `OUTPUT_KINDS`; measure: measurements.csv (`measurements.py`); measure_images:
    `<name>_calibre.png`; mm_per_pixel, or fov_degrees with the measured FOV diameter, for
    millimetres; workers: threads writing and reading beside the network (0: every stage one
    after the other on the calling thread); shard: (K, N) to do only shard K of N of the jobs,
    their rows in measurements.shard-K-of-N.csv instead of measurements.csv (`inference.shards`);
    disc: locate the optic disc, `<name>_disc.png` and its columns; av: the artery/vein network's
    `<name>_av.png` and the calibre biomarkers (the disc too); av_threshold: a vessel of the A/V
    network's map where its vessel probability > it (`data.av.av_classes`; inside the field of
    view with use_fov); av_vote: each vessel segment typed as a whole
    (`data.av.vote_by_segment`), False: each pixel by itself; av_band: the FOV diameters the A/V
    weights trained at, to which each photograph is resampled for the A/V network (as `scale`
    "auto" or "vessels" resample for the vessel weights; a factor or an NNNpx `scale` applies to
    both networks alike).
    """

    threshold: float = 0.5
    use_fov: bool = True
    scale: str | float = "auto"
    mirror: bool = False
    save: tuple[str, ...] = OUTPUT_KINDS
    measure: bool = False
    measure_images: bool = False
    mm_per_pixel: float | None = None
    fov_degrees: float = 45.0
    overwrite: bool = False
    verbose: bool = False
    workers: int = WORKERS
    vessel_calibre: tuple[float, float] | None = None  # --scale vessels: the weights' range
    shard: tuple[int, int] | None = None
    disc: bool = False
    av: bool = False
    av_threshold: float = 0.5
    av_vote: bool = True
    av_band: FovBand | None = None  # the FOV diameters the A/V weights trained at (None: factor 1)

    @property
    def locates_disc(self) -> bool:
        """Whether the optic disc is located: --disc, or --av (CRAE and CRVE are measured about it)."""
        return self.disc or self.av


@dataclass
class Summary:
    """How a run went: photographs done, skipped (already complete) and failed; seconds in all and
    loading the model; the seconds spent in each of `STAGES`, summed over the photographs done."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    load_seconds: float = 0.0
    times: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    flagged: int = 0  # rows written with quality "check" (`data.quality`)

    def rate(self) -> float:
        """Photographs per second, not counting the model's loading."""
        streaming = self.seconds - self.load_seconds
        return self.done / streaming if self.done and streaming > 0 else 0.0

    def line(self, out_dir: Path) -> str:
        rate = (
            f" ({self.rate():.2f} photographs/s after {self.load_seconds:.1f} s loading the model)"
            if self.done
            else ""
        )
        flagged = (
            f"; {self.flagged} to check (quality column of {MEASUREMENTS_CSV})"
            if self.flagged
            else ""
        )
        return (
            f"{self.done} done, {self.skipped} skipped (already complete), {self.failed} failed "
            f"in {self.seconds:.1f} s{rate}; outputs in {out_dir}{flagged}"
        )


def collect_inputs(
    inputs: list[str], recursive: bool = False, exclude: str | os.PathLike | None = None
) -> list[Job]:
    """Image files named directly, or found (sorted) in the named folders, recursively with
    `recursive` (outputs keep the sub-folders); files under `exclude` (the output folder) are left
    out. UserError for a missing input, a folder without images or two inputs with one output name.
    """
    jobs: list[Job] = []
    skip = Path(exclude).resolve() if exclude is not None else None
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            candidates = path.rglob("*") if recursive else path.iterdir()
            found = sorted(
                p
                for p in candidates
                if p.is_file()
                and (is_image_name(p.name) or is_dicom_file(p))  # DICOM exports: IM000001, UIDs
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
                and (skip is None or skip not in p.resolve().parents)
            )
            if not found:
                where = "or its sub-folders " if recursive else ""
                raise UserError(
                    f"folder {path} {where}holds no image files (expected .png, .jpg, .tif, .gif, "
                    f".ppm, DICOM, ...){'' if recursive else '; --recursive searches sub-folders'}"
                )
            for p in found:
                parent = p.relative_to(path).parent
                jobs.append(Job(p, (parent / file_stem(p.name)).as_posix()))
        elif path.is_file():
            jobs.append(Job(path, file_stem(path.name), named=True))
        else:
            raise UserError(
                f"input {path} does not exist; expected an image file or a folder of images"
            )
    seen: dict[str, Path] = {}
    for job in jobs:
        if job.name in seen:
            raise UserError(
                f"inputs {seen[job.name]} and {job.path} would both write {job.name}_*.png; "
                "rename one or predict them into different --out folders"
            )
        seen[job.name] = job.path
    return jobs


def check_inputs(jobs: list[Job], mask_path: str | os.PathLike | None = None) -> None:
    """Refuse (UserError) a named file whose header is not an image's, and a --mask that is not an
    image of the single input's size; headers only, nothing decoded."""
    sizes = {job.path: image_size(job.path) for job in jobs if job.named}
    if mask_path is not None:
        if len(jobs) != 1:
            raise UserError(f"--mask applies to a single input image, got {len(jobs)} images")
        mask_size = image_size(mask_path)
        size = sizes.get(jobs[0].path) or image_size(jobs[0].path)
        if mask_size != size:
            raise UserError(
                f"mask {mask_path} is {mask_size[1]} x {mask_size[0]}, but image {jobs[0].path} "
                f"is {size[1]} x {size[0]}"
            )


def job_outputs(job: Job, out_dir: Path, options: PredictOptions) -> list[Path]:
    """The pictures a job writes under `options`."""
    kinds = list(options.save) + ([CALIBRE_KIND] if options.measure_images else [])
    kinds += ([DISC_KIND] if options.locates_disc else []) + ([AV_KIND] if options.av else [])
    return [output_path(out_dir, job.name, kind) for kind in kinds]


def measurement_columns() -> list[str]:
    from data.quality import QUALITY_KEYS
    from measurements import MEASUREMENT_KEYS, MM_KEYS

    return ["image", "input", "quality", "quality_reasons", "orientation", "fov_diameter_px",
            "scale_factor", "mm_per_pixel", *QUALITY_KEYS, *MEASUREMENT_KEYS, *MM_KEYS.values(),
            *DISC_KEYS, *CALIBRE_KEYS, "warnings"]  # fmt: skip


class MeasurementLog:
    """measurements.csv: one row per photograph, appended (one write, flushed) as each finishes.

    On opening, a last line cut by a killed run is dropped, and so are the rows of the
    photographs about to be redone (`drop`), so no photograph has two rows. A file of an earlier
    predict.py, whose columns are all among today's, keeps its rows, the new columns empty.
    """

    def __init__(self, path: Path):
        self.path = path
        self.columns = measurement_columns()
        self.rows: dict[str, list[str]] = {}
        self.flagged = 0  # rows appended with quality "check"
        self._lock = threading.Lock()
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            if text and not text.endswith("\n"):
                text = text[: text.rfind("\n") + 1]  # a row cut by a killed run
            lines = list(csv.reader(io.StringIO(text)))
            header = lines[0] if lines else self.columns
            if not set(header) <= set(self.columns) or "image" not in header:
                raise UserError(
                    f"{path} has other columns than predict.py writes; move it away or "
                    "choose another --out folder"
                )
            rows = [
                dict(zip(header, row, strict=True)) for row in lines[1:] if len(row) == len(header)
            ]
            self.rows = {row["image"]: [row.get(c, "") for c in self.columns] for row in rows}

    def names(self) -> set[str]:
        return set(self.rows)

    def start(self, drop: set[str]) -> None:
        """Rewrite the file (atomically) without the rows of `drop` and any cut line."""
        from utils.io import write_text

        kept = [row for name, row in self.rows.items() if name not in drop]
        write_text(self.path, csv_text([self.columns, *kept]))

    def append(self, values: dict) -> None:
        row = [_csv_value(values.get(column)) for column in self.columns]
        text = csv_text([row])
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
            self.flagged += values.get("quality") == "check"


def csv_text(rows) -> str:
    """The CSV text of `rows` (lists of strings), lines ending in a newline."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _csv_value(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _remove_leftovers(paths: list[Path]) -> None:
    """Delete temporary files a killed run left beside `paths` (`utils.io.atomic_path` names)."""
    for path in paths:
        pattern = glob.escape(str(path.parent / f".{path.stem}.")) + f"*.tmp{path.suffix}"
        for leftover in glob.glob(pattern):
            Path(leftover).unlink(missing_ok=True)


@dataclass
class _Photograph:
    """A photograph between the pipeline's stages; `orientation` its EXIF orientation tag,
    `quality` its `data.quality.photograph_quality` figures (with measurements only)."""

    job: Job
    image: np.ndarray
    fov: np.ndarray
    diameter: float | None
    factors: tuple[float, ...]
    times: dict[str, float]
    warnings: list[str]
    orientation: int = 1
    quality: dict | None = None
    prob: np.ndarray | None = None
    av_prob: np.ndarray | None = None  # with --av: the A/V network's (H, W, 3) vessel, artery, vein
    av_factors: tuple[float, ...] = (1.0,)  # with --av: the factors the A/V network sees it at
    share: float = 0.0  # vessel pixels / FOV pixels, for the --verbose line
    shape: tuple[int, int] = (0, 0)
    file_mm_per_pixel: float | None = None  # a DICOM file's own Pixel Spacing (mm)


def predict_files(
    jobs: list[Job],
    weights: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: PredictOptions | None = None,
    engine: str = "auto",
    mask_path: str | os.PathLike | None = None,
    predictor=None,
    av_weights: str | os.PathLike | None = None,
    av_predictor=None,
) -> Summary:
    """Segment each job's photograph into `out_dir`, streamed (module docstring).

    predictor: an `inference.engines.Predictor` to use instead of loading `weights` with
    `engine` (the weights still give the training scale for `--scale auto`). With `options.av`:
    the artery/vein network of the `.keras` file `av_weights` (UserError for a vessel network), or
    `av_predictor` instead, run on each photograph resampled to `options.av_band` (None: the
    FOV diameters `av_weights` trained at, `data.scale.weights_fov_band`). Returns the Summary;
    a progress bar goes to stderr on a terminal, a line per failure to stderr, a line per
    photograph to stdout with `options.verbose`.
    """
    from tqdm import tqdm

    from data.scale import weights_fov_band

    options = options or PredictOptions()
    if options.scale == "vessels" and options.vessel_calibre is None:
        from data.scale import weights_vessel_calibre

        options = replace(options, vessel_calibre=tuple(weights_vessel_calibre(weights)))
    out_dir = Path(out_dir)
    summary = Summary()
    start = time.perf_counter()
    log_name = MEASUREMENTS_CSV
    if options.shard is not None:
        from inference.shards import select_shard, shard_measurements_name

        jobs, log_name = select_shard(jobs, options.shard), shard_measurements_name(options.shard)
    log = MeasurementLog(out_dir / log_name) if options.measure else None
    measured = log.names() if log else set()

    def complete(job: Job) -> bool:
        outputs_there = all(p.is_file() for p in job_outputs(job, out_dir, options))
        return outputs_there and (log is None or job.name in measured)

    todo = [job for job in jobs if options.overwrite or not complete(job)]
    summary.skipped = len(jobs) - len(todo)
    out_dir.mkdir(parents=True, exist_ok=True)
    if log is not None:
        _remove_leftovers([log.path])
        log.start({job.name for job in todo})
    for job in todo:  # any kind: a killed run may have asked for other pictures
        _remove_leftovers(
            [
                output_path(out_dir, job.name, k)
                for k in (*OUTPUT_KINDS, CALIBRE_KIND, DISC_KIND, AV_KIND)
            ]
        )
    if todo:
        if predictor is None:
            from inference.engines import make_predictor
            from models import is_av_model, load_model

            model = load_model(Path(weights))
            if is_av_model(model):  # its (H, W, 3) output is no vessel map to write
                raise UserError(
                    f"weights {weights} are an artery/vein network; give them to --av, beside "
                    "vessel --weights, or score them with evaluate.py (docs/arteries-veins.md)"
                )
            predictor = make_predictor(model, engine)
        if options.av and av_predictor is None:
            av_predictor = load_av_predictor(av_weights, engine)
        summary.load_seconds = time.perf_counter() - start
        mask = None
        if mask_path is not None:
            from data.io import read_mask

            mask = read_mask(mask_path)
        train_diameter = weights_fov_band(weights, options.scale)
        if options.av and options.av_band is None and av_weights is not None:
            options = replace(options, av_band=weights_fov_band(av_weights, options.scale))
        bar = tqdm(total=len(todo), unit="photo", desc="predict", disable=None, file=sys.stderr)
        try:
            _stream(
                todo, (predictor, av_predictor), mask, train_diameter, out_dir, options, log, bar,
                summary,
            )  # fmt: skip
        finally:
            bar.close()
    summary.seconds = time.perf_counter() - start
    summary.flagged = log.flagged if log is not None else 0
    return summary


def av_scale(scale):
    """The --scale the A/V network's photograph is resampled by: "auto" for "vessels" (its
    FOV diameter brought to the A/V weights' band, no second pass), else `scale` as given (a
    factor or an NNNpx band applies to both networks alike)."""
    return "auto" if scale == "vessels" else scale


def load_av_predictor(av_weights: str | os.PathLike, engine: str = "auto"):
    """The predictor of the artery/vein network in the `.keras` file `av_weights` (--av); a
    UserError in one sentence where the file holds a vessel network."""
    from inference.engines import make_predictor
    from models import is_av_model, load_model

    model = load_model(Path(av_weights))
    if not is_av_model(model):
        raise UserError(
            f"--av {av_weights} is a vessel network (one output channel); --av takes "
            "artery/vein weights, such as a run of configs/av_rite.yaml or configs/av_hrf.yaml"
        )
    return make_predictor(model, engine)


def _stream(todo, predictors, mask, train_diameter, out_dir, options, log, bar, summary) -> None:
    """The lock-step loop of `predict_files` (module docstring); `predictors`: the vessel
    network's and the A/V network's (None without --av)."""
    from inference.segment import segment, segment_by_vessels

    predictor, av_predictor = predictors

    def fail(job: Job, exc: BaseException) -> None:
        message = str(exc).strip() or exc.__class__.__name__
        if job.path.name not in message:
            message = f"{job.path}: {message}"
        bar.write(f"skipped: {message}", file=sys.stderr)
        summary.failed += 1
        bar.update(1)

    def finish(writing: _Writing | None) -> None:
        if writing is None:
            return
        try:
            item = writing.collect(log)
        except Exception as exc:  # noqa: BLE001 - a picture that cannot be written: skipped
            fail(writing.item.job, exc)
            return
        if options.verbose:
            bar.write(_describe(item, out_dir))
        summary.done += 1
        for stage in STAGES:
            summary.times[stage] += item.times.get(stage, 0.0)
        bar.update(1)

    def take(reading, job: Job) -> _Photograph | None:
        try:
            item = reading.result()
        except Exception as exc:  # noqa: BLE001 - any undecodable file is skipped, not fatal
            fail(job, exc)
            return None
        for text in item.warnings:
            bar.write(text, file=sys.stderr)
        return item

    pool = (
        ThreadPoolExecutor(options.workers, thread_name_prefix="predict")
        if options.workers > 0
        else _Inline()
    )
    with pool:
        reading = pool.submit(_read, todo[0], mask, train_diameter, options)
        writing = None
        for index, job in enumerate(todo):
            item = take(reading, job)
            following = todo[index + 1] if index + 1 < len(todo) else None
            started: list = []

            def overlap(writing=writing, following=following, started=started):
                """Write photograph k-1 and read photograph k+1 while the network runs."""
                tasks = writing.submit(pool) if writing is not None else []
                if following is not None:
                    tasks.append(pool.submit(_read, following, mask, train_diameter, options))
                started.append(tasks[-1] if following is not None else None)
                return lambda: wait(tasks)

            if item is not None:
                try:
                    if options.vessel_calibre:
                        item.prob, item.factors = segment_by_vessels(
                            predictor, item.image, item.fov, item.factors, options.threshold,
                            options.vessel_calibre, times=item.times, during_network=overlap,
                            mirror=options.mirror,
                        )  # fmt: skip
                    else:
                        item.prob = segment(
                            predictor, item.image, factor=item.factors, times=item.times,
                            during_network=overlap, mirror=options.mirror,
                        )  # fmt: skip
                    if options.av:  # at the A/V weights' own scale (`_read`)
                        item.av_prob = segment(
                            av_predictor, item.image, factor=item.av_factors, times=item.times,
                            mirror=options.mirror,
                        )  # fmt: skip
                except UserError as exc:
                    item = None
                    fail(job, exc)
            if not started:  # nothing reached the network: write and read all the same
                overlap()()
            reading = started[0]
            finish(writing)
            writing = _Writing(item, out_dir, options) if item is not None else None
            del item  # `writing` holds the only reference
            release_memory()  # what this step freed, before the next one allocates
        if writing is not None:
            wait(writing.submit(pool))
            finish(writing)


class _Inline:
    """A stand-in for the thread pool with no threads: `submit` runs the task at once."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def submit(self, function, *args) -> Future:
        future: Future = Future()
        try:
            future.set_result(function(*args))
        except Exception as exc:  # noqa: BLE001 - kept for `result()`, as a pool would
            future.set_exception(exc)
        return future


class _SharedSkeleton:
    """`measurements.skeleton_calibre` of a photograph's vessel map inside its FOV, computed once
    by whichever writer task asks first (the vessel measurements or the calibre biomarkers) and
    handed to the other."""

    def __init__(self, vessels: np.ndarray, fov: np.ndarray):
        self.vessels, self.fov = vessels, fov
        self.lock = threading.Lock()
        self.value = None

    def get(self) -> tuple[np.ndarray, np.ndarray]:
        from measurements import skeleton_calibre

        with self.lock:
            if self.value is None:
                self.value = skeleton_calibre(self.vessels & self.fov)
                self.vessels = self.fov = None
            return self.value


class _Writing:
    """The pictures (and measurements) of one photograph, each a task for the workers; `collect`
    takes their results and appends the measurement row last (a row means every picture of the
    photograph is there)."""

    def __init__(self, item: _Photograph, out_dir: Path, options: PredictOptions):
        self.item, self.out_dir, self.options = item, out_dir, options
        self.vessels = item.prob > options.threshold
        if options.use_fov:
            self.vessels &= item.fov
        item.share = float(self.vessels[item.fov].mean()) if item.fov.any() else 0.0
        self.tasks: list = []
        self.measuring = self.locating = None
        self.seconds = 0.0

    def submit(self, pool) -> list:
        """Start the tasks on `pool`; returns their futures."""
        item, options, start = self.item, self.options, time.perf_counter()

        def timed(function, *args):
            result = function(*args)
            self.seconds = max(self.seconds, time.perf_counter() - start)
            return result

        self.tasks = [
            pool.submit(timed, _write_picture, item, self.vessels, kind, self.out_dir)
            for kind in options.save
        ]
        measures = options.measure or options.measure_images
        skeleton = _SharedSkeleton(self.vessels, item.fov) if measures and options.av else None
        if options.locates_disc:
            self.locating = pool.submit(timed, _disc_and_calibre, item, self.vessels, self.out_dir,
                                        options, skeleton)  # fmt: skip
        if measures:
            self.measuring = pool.submit(timed, _measure, item, self.vessels, self.out_dir, options,
                                         skeleton)  # fmt: skip
        return [t for t in (*self.tasks, self.locating, self.measuring) if t is not None]

    def collect(self, log) -> _Photograph:
        item = self.item
        try:
            for task in self.tasks:
                task.result()
            columns = self.locating.result() if self.locating is not None else {}
            row = self.measuring.result() if self.measuring is not None else None
            if log is not None and row is not None:
                log.append({**row, **columns})
        finally:
            item.shape = item.image.shape[:2]
            item.image = item.fov = item.prob = item.av_prob = self.vessels = None
            self.tasks = self.measuring = self.locating = None
        item.times["write"] = self.seconds
        return item


def _read(job: Job, mask, train_diameter, options: PredictOptions) -> _Photograph:
    """Reader thread: decode the photograph (as displayed: `data.io`), find its field of view and
    its scale factors, and with measurements its quality figures (timed with the FOV)."""
    from data.fov import generate_fov_mask
    from data.io import dicom_mm_per_pixel, read_bytes, read_photograph
    from data.quality import photograph_quality
    from data.scale import fov_diameter, image_factor, prediction_factors

    times: dict[str, float] = {}
    start = time.perf_counter()
    data, name = read_bytes(job.path)  # read once: the pixels and, for DICOM, its Pixel Spacing
    image, orientation = read_photograph(data, name)
    file_mm = dicom_mm_per_pixel(data, name)
    times["read"] = time.perf_counter() - start
    start = time.perf_counter()
    fov = mask if mask is not None else generate_fov_mask(image)
    if fov.shape != image.shape[:2]:
        raise UserError(
            f"the mask is {fov.shape[1]} x {fov.shape[0]}, but image {job.path} is "
            f"{image.shape[1]} x {image.shape[0]}"
        )
    diameter = fov_diameter(fov)
    warnings: list[str] = []
    factor = image_factor(options.scale, fov, train_diameter, str(job.path), warn=warnings.append)
    quality = photograph_quality(image, fov, diameter) if options.measure else None
    times["fov"] = time.perf_counter() - start
    factors = prediction_factors(options.scale, factor, train_diameter)
    av_factors = (1.0,)
    if options.av:  # the A/V network: its own training scale by the same rule (no second pass)
        scale = av_scale(options.scale)
        av_factor = image_factor(scale, fov, options.av_band, str(job.path), warn=lambda _: None)
        av_factors = prediction_factors(scale, av_factor, options.av_band)
    return _Photograph(
        job,
        image,
        fov,
        diameter,
        factors,
        times,
        warnings,
        orientation,
        quality,
        av_factors=av_factors,
        file_mm_per_pixel=file_mm,
    )


def release_memory() -> None:
    """Return the memory freed by the photographs done to the system (glibc's `malloc_trim`;
    nothing elsewhere). Without it, each thread's heap keeps the largest photograph's temporaries
    and the peak creeps up over a long run (docs/prediction.md, "Speed and memory")."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
LARGE_ARRAY_BYTES = 4 << 20


def map_large_arrays(threshold: int = LARGE_ARRAY_BYTES) -> bool:
    """Have glibc give every allocation of `threshold` bytes or more its own memory mapping,
    returned to the system when freed (predict.py sets it for its process; True if it could).

    By default glibc raises this threshold up to 32 MB as large blocks are freed, so full-size
    maps of a few to 30 MB go to the heaps of the threads that made them, and what those heaps
    keep depends on the order the threads happened to run in; with one fixed threshold the large
    arrays leave nothing behind (docs/prediction.md, "Speed and memory")."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, int(threshold)))


@functools.cache
def _libc():
    """The C library through ctypes (loaded once), or None where it cannot be loaded."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


@functools.cache
def _malloc_trim():
    """glibc's malloc_trim, or None where the C library has none (macOS, Windows, musl)."""
    import ctypes

    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def _write_picture(item: _Photograph, vessels: np.ndarray, kind: str, out_dir: Path) -> None:
    """Writer thread: one of the `OUTPUT_KINDS` pictures of a photograph."""
    from inference.outputs import PNG_OPTIONS, output_picture
    from utils.io import write_image

    picture = output_picture(kind, item.image, item.prob, vessels, item.fov)
    write_image(output_path(out_dir, item.job.name, kind), picture, **PNG_OPTIONS)


def _measure(item: _Photograph, vessels: np.ndarray, out_dir: Path, options: PredictOptions,
             skeleton: _SharedSkeleton | None = None):  # fmt: skip
    """Writer thread: the vessel measurements of a photograph (`measurements.py`) and, with
    `measure_images`, its calibre picture; returns the measurements.csv row, with the quality
    figures and verdict (`data.quality`) and the photograph's warnings. `skeleton`: the vessel
    map's skeleton shared with the calibre biomarkers (None: computed here)."""
    from data.quality import quality_flag, quality_reasons
    from inference.outputs import PNG_OPTIONS, calibre_picture
    from measurements import measure_vessels
    from utils.io import write_image

    mm = _mm_per_pixel(item, options)
    result = measure_vessels(vessels, item.fov, mm, skeleton.get() if skeleton else None)
    if options.measure_images:
        write_image(
            output_path(out_dir, item.job.name, CALIBRE_KIND),
            calibre_picture(item.image, result.skeleton, result.calibre),
            **PNG_OPTIONS,
        )
    if not options.measure:
        return None
    reasons = quality_reasons(item.quality, result.values["area_fraction"])
    return {
        "image": item.job.name,
        "input": str(item.job.path),
        "quality": quality_flag(reasons),
        "quality_reasons": ";".join(reasons),
        "orientation": item.orientation,
        "fov_diameter_px": item.diameter,
        "scale_factor": item.factors[0],
        "mm_per_pixel": mm,
        **item.quality,
        **result.values,
        "warnings": " ".join(text.removeprefix("warning: ") for text in item.warnings),
    }


def _mm_per_pixel(item: _Photograph, options: PredictOptions) -> float | None:
    """The photograph's pixel size on the retina (mm): --mm-per-pixel, else the Pixel Spacing its
    DICOM file records, else from --fov-degrees and its FOV diameter; None where none is known."""
    from measurements import mm_per_pixel_from_fov

    return (
        options.mm_per_pixel
        or item.file_mm_per_pixel
        or mm_per_pixel_from_fov(item.diameter, options.fov_degrees)
    )


def _disc_and_calibre(item: _Photograph, vessels: np.ndarray, out_dir: Path, options,
                      skeleton: _SharedSkeleton | None = None):  # fmt: skip
    """Writer thread: the optic disc of a photograph (`data.disc.locate_disc` with its vessel
    probability map) drawn in `<name>_disc.png`; with `options.av`, the A/V network's classes
    painted in `<name>_av.png` and the calibre biomarkers of the binary vessel map `vessels` typed
    by those classes about that disc (`skeleton`: the vessel map's skeleton shared with the vessel
    measurements, None: computed here). Returns the measurements.csv columns (`DISC_KEYS`, and
    `CALIBRE_KEYS` with `options.av`)."""
    from data.disc import LOW_CONFIDENCE, locate_disc
    from inference.outputs import PNG_OPTIONS, disc_picture
    from utils.io import write_image

    disc = locate_disc(item.image, item.fov, item.prob) if item.fov.any() else None
    centre, radius = (disc.centre_xy, disc.radius_px) if disc is not None else (None, None)
    write_image(output_path(out_dir, item.job.name, DISC_KIND),
                disc_picture(item.image, centre, radius), **PNG_OPTIONS)  # fmt: skip
    columns = {}
    if disc is not None:
        columns = {"disc_x": centre[0], "disc_y": centre[1], "disc_radius_px": radius,
                   "disc_confidence": disc.confidence,
                   "disc_low_confidence": disc.confidence < LOW_CONFIDENCE}  # fmt: skip
    if not options.av:
        return columns
    from biomarkers import calibre_biomarkers
    from data.av import BACKGROUND, av_classes, av_overlay, vote_by_segment

    av_prob = item.av_prob
    if options.av_vote:
        av_prob = vote_by_segment(av_prob, options.av_threshold)
    classes = av_classes(av_prob, options.av_threshold)
    if options.use_fov:  # as the binary vessel map: vessels inside the field of view only
        classes[~item.fov] = BACKGROUND
    write_image(output_path(out_dir, item.job.name, AV_KIND), av_overlay(item.image, classes),
                **PNG_OPTIONS)  # fmt: skip
    if disc is None:
        return columns
    mm = _mm_per_pixel(item, options)
    calibre = calibre_biomarkers(vessels, classes, centre, 2.0 * radius, fov=item.fov,
                                 um_per_pixel=1000.0 * mm if mm else None,
                                 skeleton=skeleton.get() if skeleton else None)  # fmt: skip
    return {**columns, "crae_px": calibre.crae_px, "crve_px": calibre.crve_px, "avr": calibre.avr,
            "crae_um": calibre.crae_um, "crve_um": calibre.crve_um,
            "n_arteries": calibre.n_arteries, "n_veins": calibre.n_veins,
            "calibre_flags": ";".join(calibre.flags)}  # fmt: skip


def _describe(item: _Photograph, out_dir: Path) -> str:
    """The --verbose line of one photograph."""
    height, width = item.shape
    where = f"FOV {item.diameter:.0f} px across" if item.diameter else "no FOV found"
    factors = " and ".join(f"{f:.3f}" for f in item.factors)
    stages = ", ".join(f"{stage} {item.times.get(stage, 0.0):.2f}" for stage in STAGES)
    return (
        f"{item.job.path}: {width} x {height}, {where}, scale factor {factors}, vessels "
        f"{100 * item.share:.1f} % of the FOV; seconds: {stages} -> "
        f"{output_path(out_dir, item.job.name, '*')}"
    )
