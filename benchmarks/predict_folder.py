"""predict.py on a folder of large photographs: photographs per second, peak memory, time per stage.

    git worktree add /tmp/old 47e9aa1        # today's code before the streaming pipeline
    python benchmarks/predict_folder.py --photos 4 --sizes 8,15 --baseline-repo /tmp/old
    python benchmarks/predict_folder.py --sizes 15 --memory 5,100 --no-speed
    python benchmarks/predict_folder.py --sizes 8 --photos 8 --shards 2 --no-speed

Photographs: `data.synthetic`'s fundus image drawn at 1024 px, enlarged
(bicubic) to the height of a 3:2 frame and centred on black, saved as JPEG
(quality 92): 8 Mpx = 3504 x 2336 (HRF's size), 15 Mpx = 4752 x 3168.
predict.py runs as the user runs it (default options: all four pictures,
--scale auto, the default engine), each in a child process whose peak
resident memory is read from `os.wait4`. Photographs per second leave the
start-up out: (N - 1) / (seconds for N photographs - seconds for 1). Stage
times (read, FOV, resample, network, resample back, write) are the means over
the photographs: the new code's from its --verbose lines, the baseline's by
running its library functions in its own checkout in the order its
predict.py calls them. `--memory A,B` runs the new predict.py on A and on B
copies of the photographs (peak memory must not grow with B). `--workers 0,2`
gives a row for each value of predict.py's --workers (default: its default).
`--shards 2,4` runs the folder once as one predict.py and once as N
predict.py --shard K/N processes at the same time (into one folder), for
each N: wall seconds, photographs per second with the start-up included
(each process loads its own model), the peak resident memory of the largest
process and the sampled peak of all of them together (the pages of shared
libraries counted once per process). `--sizes WxH` (such as 96x64) draws
photographs of that size; `--weights` and `--predict-args` (such as
`--predict-args="--scale 1 --engine keras"`) change every run of the new code.

The machine is shared (other jobs, 2 cores): compare rows of one run only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, markdown_table  # noqa: E402
from inference.pipeline import WORKERS  # noqa: E402

SIZES = {8: (2336, 3504), 15: (3168, 4752)}  # megapixels -> (H, W)
WEIGHTS = ROOT / "weights" / "sa_unetv2_drive.keras"
STAGES = ("read", "fov", "resample", "network", "resample_back", "write")
PICTURES = ("prob", "binary", "overlay", "fov")  # predict.py's default --save
COLUMNS = [
    ("code", lambda r: r["code"]),
    ("workers", lambda r: "-" if r["code"] != "new" else str(_workers(r))),
    ("photograph", lambda r: r["size"]),
    ("photographs/s", lambda r: f"{r['rate']:.3f}"),
    ("s per photograph", lambda r: f"{1 / r['rate']:.2f}" if r["rate"] else "-"),
    ("peak RSS MB", lambda r: f"{r['rss_mb']:.0f}"),
    *[(f"{s} s", lambda r, s=s: f"{r['stages'].get(s, float('nan')):.2f}") for s in STAGES],
]
SHARD_COLUMNS = [
    ("processes", lambda r: "1" if r["processes"] == 1 else f"{r['processes']} (--shard K/N)"),
    ("workers", lambda r: str(_workers(r))),
    ("photograph", lambda r: r["size"]),
    ("photographs", lambda r: str(r["photos"])),
    ("seconds", lambda r: f"{r['seconds']:.1f}"),
    ("photographs/s (with start-up)", lambda r: f"{r['rate']:.3f}"),
    ("peak RSS MB, largest process", lambda r: f"{r['rss_mb']:.0f}"),
    ("sampled peak MB, all processes", lambda r: f"{r['total_mb']:.0f}"),
]

# The baseline's predict loop (training/prediction.py at 47e9aa1), stage by stage, timed; run in
# a child with the baseline checkout first on sys.path.
OLD_STAGES = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
import numpy as np
from data.fov import generate_fov_mask
from data.io import read_image, file_stem
from data.scale import image_factor, prediction_factors, training_fov_diameter, weights_config
from data.scale import resize_image, resize_probability, scaled_shape
from training.evaluation import overlay_vessels, probability_png, segment
from utils.io import write_image
from inference.engines import make_predictor
from models import load_model
files, weights, out = sorted(Path(sys.argv[2]).iterdir()), Path(sys.argv[3]), Path(sys.argv[4])
predictor = make_predictor(load_model(weights), "auto")
train = training_fov_diameter(weights_config(weights))
class Timed:  # the network alone
    name, seconds = predictor.name, 0.0
    def predict(self, batch):
        start = time.perf_counter(); out = predictor.predict(batch)
        Timed.seconds += time.perf_counter() - start
        return out
stages = {k: [] for k in ("read", "fov", "resample", "network", "resample_back", "write")}
for path in files:
    t = time.perf_counter(); image = read_image(path); stages["read"].append(time.perf_counter() - t)
    t = time.perf_counter(); fov = generate_fov_mask(image)
    factor = image_factor("auto", fov, train, str(path)); stages["fov"].append(time.perf_counter() - t)
    factors = prediction_factors("auto", factor)
    t = time.perf_counter(); scaled = [resize_image(image, scaled_shape(image.shape[:2], f)) for f in factors]
    stages["resample"].append(time.perf_counter() - t)
    Timed.seconds = 0.0
    maps = [segment(Timed(), s) for s in scaled]
    stages["network"].append(Timed.seconds)
    t = time.perf_counter()
    maps = [resize_probability(m, image.shape[:2]) for m in maps]
    prob = maps[0] if len(maps) == 1 else np.mean(maps, axis=0, dtype=np.float32)
    stages["resample_back"].append(time.perf_counter() - t)
    t = time.perf_counter(); vessels = (prob > 0.5) & fov; stem = out / file_stem(path.name)
    write_image(f"{stem}_prob.png", probability_png(prob))
    write_image(f"{stem}_binary.png", vessels.astype(np.uint8) * 255)
    write_image(f"{stem}_overlay.png", overlay_vessels(image, vessels))
    write_image(f"{stem}_fov.png", fov.astype(np.uint8) * 255)
    stages["write"].append(time.perf_counter() - t)
print(json.dumps({k: sum(v) / len(v) for k, v in stages.items()}))
"""
VERBOSE_STAGES = re.compile(r"seconds: (.*) -> ")


def stage_times(stdout: str) -> dict[str, float]:
    """Mean seconds per stage over the --verbose lines of predict.py in `stdout`."""
    rows = [dict(pair.split(" ") for pair in m.split(", ")) for m in VERBOSE_STAGES.findall(stdout)]
    return {s: float(np.mean([float(r[s]) for r in rows])) for s in STAGES}


def make_photographs(folder: Path, count: int, shape: tuple[int, int]) -> list[Path]:
    """`count` synthetic fundus JPEGs of `shape` (H, W) in `folder`."""
    from PIL import Image

    from data.synthetic import synthetic_sample

    folder.mkdir(parents=True, exist_ok=True)
    height, width = shape
    paths = []
    for index in range(count):
        disc = Image.fromarray(synthetic_sample(1024, 7, 1, index).image)
        frame = Image.new("RGB", (width, height))
        frame.paste(
            disc.resize((height, height), Image.Resampling.BICUBIC), ((width - height) // 2, 0)
        )
        path = folder / f"photo_{index:03d}.jpg"
        frame.save(path, quality=92)
        paths.append(path)
    return paths


def copies(photos: list[Path], folder: Path, count: int) -> Path:
    """A folder of `count` links to `photos` (cycled), distinct names."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        os.link(photos[index % len(photos)], folder / f"copy_{index:03d}.jpg")
    return folder


def run_child(
    command: list[str], cwd: Path, samples: list | None = None, watch: Path | None = None
) -> tuple[float, float, str]:
    """(wall seconds, peak resident MB, stdout) of a child process; raises if it fails.

    samples: if a list, (resident MB, files in `watch`) every 0.1 s is appended to it."""
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=err)
        if samples is not None:
            sampler = threading.Thread(
                target=_sample, args=(process.pid, watch, samples), daemon=True
            )
            sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{stderr[-3000:]}")
    return seconds, usage.ru_maxrss / 1024.0, stdout  # ru_maxrss is in KiB on Linux


def run_children(commands: list[list[str]], cwd: Path) -> tuple[float, list[float], float]:
    """Start `commands` at once: (wall seconds until the last ends, each one's peak resident MB,
    the largest sum of their resident MB sampled every 0.1 s); raises if one fails."""
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        errors = [stack.enter_context(tempfile.TemporaryFile("w+")) for _ in commands]
        processes = [
            subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
            for command, err in zip(commands, errors, strict=True)
        ]
        totals: list[float] = []
        sampler = threading.Thread(
            target=_sample_total, args=([p.pid for p in processes], totals), daemon=True
        )
        sampler.start()
        peaks = []
        for process in processes:
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            peaks.append(usage.ru_maxrss / 1024.0)  # KiB on Linux
        seconds = time.perf_counter() - start
        sampler.join()
        for command, process, err in zip(commands, processes, errors, strict=True):
            if process.returncode != 0:
                err.seek(0)
                raise RuntimeError(f"{' '.join(command)} failed:\n{err.read()[-3000:]}")
    return seconds, peaks, max(totals, default=0.0)


def _sample_total(pids: list[int], totals: list) -> None:
    """Append the summed resident MB of the processes `pids` every 0.1 s until all have ended."""
    while True:
        mb, alive = 0.0, False
        for pid in pids:
            try:
                text = Path(f"/proc/{pid}/status").read_text()
                line = next(x for x in text.splitlines() if x.startswith("VmRSS:"))
            except (OSError, StopIteration):  # ended (a zombie has no VmRSS line)
                continue
            mb, alive = mb + int(line.split()[1]) / 1024.0, True
        if not alive:
            return
        totals.append(mb)
        time.sleep(0.1)


def _sample(pid: int, watch: Path, samples: list) -> None:
    """Append (resident MB, PNG files under `watch`) of process `pid` every 0.1 s until it ends."""
    status = Path(f"/proc/{pid}/status")
    while True:
        try:
            line = next(x for x in status.read_text().splitlines() if x.startswith("VmRSS:"))
        except (OSError, StopIteration):
            return
        files = len(list(watch.glob("*.png"))) if watch.is_dir() else 0
        samples.append((int(line.split()[1]) / 1024.0, files))
        time.sleep(0.1)


def windows(samples: list, per_photo: int, count: int, edges=None) -> dict[str, float]:
    """Peak resident MB while photographs a+1..b of `count` were being finished, for each window
    (a, b] of `edges` (photographs done = PNG files / pictures per photograph; default: the first
    five, then each quarter of the run); the samples after the last photograph count in the last
    window."""
    if edges is None:
        quarters = (round(count * k / 4) for k in range(1, 5))
        edges = (0, 5, *(edge for edge in quarters if edge > 5))
    peaks = {}
    for low, high in zip(edges, edges[1:], strict=False):
        if low >= count:
            break
        last = high >= count
        inside = [
            mb
            for mb, files in samples
            if low <= files // per_photo and (last or files // per_photo < high)
        ]
        if inside:
            peaks[f"{low + 1}-{min(high, count)}"] = max(inside)
    return peaks


def predict_command(
    repo: Path,
    folder: Path,
    out: Path,
    verbose: bool,
    workers: int | None = None,
    weights: Path = WEIGHTS,
    extra: tuple[str, ...] = (),
) -> list[str]:
    """predict.py of `repo` with its defaults; `workers`: its --workers (None: not given);
    `extra`: more of its arguments."""
    command = [
        sys.executable,
        str(repo / "predict.py"),
        "--weights",
        str(weights),
        "--out",
        str(out),
    ]
    command += ["--verbose"] if verbose else []
    command += [*extra, str(folder)]
    return command + ([] if workers is None else ["--workers", str(workers)])


def measure(
    repo: Path,
    code: str,
    photos: list[Path],
    work: Path,
    label: str,
    workers: int | None = None,
    weights: Path = WEIGHTS,
    extra: tuple[str, ...] = (),
) -> dict:
    """One row: the predict.py of `repo` on all photos and on the first alone; `extra`: more
    arguments of the new code's predict.py."""
    one = work / f"{code}_one"
    one.mkdir()
    os.link(photos[0], one / photos[0].name)
    new = code == "new"
    extra = extra if new else ()
    t1, _, _ = run_child(
        predict_command(repo, one, work / f"{code}_out1", False, workers, weights, extra), repo
    )
    folder = photos[0].parent
    tn, rss, stdout = run_child(
        predict_command(repo, folder, work / f"{code}_outn", new, workers, weights, extra), repo
    )
    rate = (len(photos) - 1) / (tn - t1) if tn > t1 else float("nan")
    if new:
        stages = stage_times(stdout)
    else:
        _, _, stdout = run_child(
            [sys.executable, "-c", OLD_STAGES, str(repo), str(folder), str(weights),
             str(work / f"{code}_stages")],
            repo,
        )  # fmt: skip
        stages = json.loads(stdout.strip().splitlines()[-1])
    print(f"{code} {label}: {rate:.3f} photographs/s, {rss:.0f} MB", file=sys.stderr)
    return {"code": code, "workers": workers, "size": label, "photos": len(photos), "rate": rate, "rss_mb": rss,
            "seconds_n": tn, "seconds_1": t1, "stages": stages}  # fmt: skip


def memory_rows(
    photos: list[Path],
    counts: list[int],
    work: Path,
    label: str,
    workers: int | None = None,
    weights: Path = WEIGHTS,
    extra: tuple[str, ...] = (),
) -> list[dict]:
    rows = []
    for count in counts:
        folder = work / f"memory_{count}"
        if not folder.is_dir():
            copies(photos, folder, count)
        samples: list = []
        out = work / f"mem_out{count}"
        seconds, rss, stdout = run_child(
            predict_command(ROOT, folder, out, False, workers, weights, extra),
            ROOT,
            samples=samples,
            watch=out,
        )
        rows.append({"photos": count, "workers": workers, "size": label, "rss_mb": rss, "seconds": seconds,
                     "windows": windows(samples, len(PICTURES), count),
                     "summary": stdout.strip().splitlines()[-1]})  # fmt: skip
        print(
            f"memory {count} x {label}, workers {workers}: {rss:.0f} MB in {seconds:.0f} s",
            file=sys.stderr,
        )
        shutil.rmtree(out)
    return rows


def shard_rows(
    photos: list[Path],
    shard_counts: list[int],
    work: Path,
    label: str,
    workers: int | None = None,
    weights: Path = WEIGHTS,
    extra: tuple[str, ...] = (),
) -> list[dict]:
    """The folder of `photos` by one predict.py, then for each N of `shard_counts` by N
    predict.py --shard K/N at once into one folder: a row each (`run_children`)."""
    rows = []
    for count in (1, *shard_counts):
        out = work / f"shards_out{count}"
        commands = [
            predict_command(ROOT, photos[0].parent, out, False, workers, weights, extra)
            + (["--shard", f"{index}/{count}"] if count > 1 else [])
            for index in range(1, count + 1)
        ]
        seconds, peaks, total = run_children(commands, ROOT)
        written = len(list(out.glob("*_fov.png")))
        if written != len(photos):
            raise RuntimeError(f"{count} processes wrote {written} of {len(photos)} photographs")
        rows.append({"processes": count, "workers": workers, "size": label, "photos": len(photos),
                     "seconds": seconds, "rate": len(photos) / seconds, "rss_mb": max(peaks),
                     "total_mb": total})  # fmt: skip
        print(
            f"{count} process(es) x {label}, workers {_workers({'workers': workers})}: "
            f"{len(photos) / seconds:.3f} photographs/s, {total:.0f} MB in all",
            file=sys.stderr,
        )
        shutil.rmtree(out)
    return rows


def parse_sizes(text: str) -> list[tuple[str, tuple[int, int]]]:
    """--sizes: megapixels of `SIZES` (8, 15) or WxH -> [(key, (H, W))]."""
    sizes = []
    for item in text.split(","):
        if "x" in item:
            width, height = (int(v) for v in item.split("x"))
            sizes.append((item, (height, width)))
        else:
            sizes.append((item, SIZES[int(item)]))
    return sizes


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=int, default=4, help="photographs per size (default 4)")
    parser.add_argument(
        "--sizes",
        default="8,15",
        help="megapixels: 8 and/or 15 (default 8,15), or WxH such as 96x64",
    )
    parser.add_argument("--baseline-repo", type=Path, help="a checkout of older code to time too")
    parser.add_argument(
        "--memory", help="A,B: peak memory for A and for B photographs (first size)"
    )
    parser.add_argument(
        "--no-speed", action="store_true", help="no speed rows: only the --memory and --shards runs"
    )
    parser.add_argument(
        "--shards",
        help="N,...: the folder by one predict.py and by N predict.py --shard K/N at once, for "
        "each N (photographs/s with the start-up, peak memory)",
    )
    parser.add_argument("--weights", type=Path, default=WEIGHTS, help="default: the DRIVE weights")
    parser.add_argument(
        "--predict-args",
        default="",
        help='more arguments of every new predict.py, e.g. --predict-args="--scale 1"',
    )
    parser.add_argument(
        "--workers",
        help="comma-separated values of the new predict.py's --workers, a row each (default: "
        "its default)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    sizes = parse_sizes(args.sizes)
    workers = [int(w) for w in args.workers.split(",")] if args.workers else [None]
    shard_counts = [int(n) for n in args.shards.split(",")] if args.shards else []
    weights, extra = args.weights.resolve(), tuple(shlex.split(args.predict_args))
    report = {"machine": machine(), "cpu": _cpu_model(), "rows": [], "memory": [], "shards": []}
    with tempfile.TemporaryDirectory(prefix="predict_folder_") as tmp:
        work = Path(tmp)
        for size, shape in sizes:
            label = f"{shape[1]} x {shape[0]} JPEG"
            photos = make_photographs(work / f"photos_{size}", args.photos, shape)
            if not args.no_speed:
                runs = [("new", ROOT, w) for w in workers] + (
                    [("baseline", args.baseline_repo, None)] if args.baseline_repo else []
                )
                for index, (code, repo, threads) in enumerate(runs):
                    sub = work / f"{code}_{size}_{index}"
                    sub.mkdir()
                    report["rows"].append(
                        measure(repo.resolve(), code, photos, sub, label, threads, weights, extra)
                    )
            if args.memory and size == sizes[0][0]:
                counts = [int(c) for c in args.memory.split(",")]
                for threads in workers:
                    report["memory"] += memory_rows(
                        photos, counts, work, label, threads, weights, extra
                    )
            if shard_counts:
                for threads in workers:
                    report["shards"] += shard_rows(
                        photos, shard_counts, work, label, threads, weights, extra
                    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['cpu']} ({report['machine']})\n")
    if report["rows"]:
        print(markdown_table(COLUMNS, report["rows"]))
    if report["memory"]:
        print()
        print(markdown_table(
            [("photographs", lambda r: str(r["photos"])), ("photograph", lambda r: r["size"]),
             ("workers", lambda r: str(_workers(r))),
             ("peak RSS MB", lambda r: f"{r['rss_mb']:.0f}"), ("seconds", lambda r: f"{r['seconds']:.0f}"),
             ("sampled peak MB while finishing photographs ...",
              lambda r: ", ".join(f"{k}: {v:.0f}" for k, v in r["windows"].items()))],
            report["memory"],
        ))  # fmt: skip
    if report["shards"]:
        print("\n" if report["rows"] or report["memory"] else "", end="")
        print(markdown_table(SHARD_COLUMNS, report["shards"]))
    return 0


def _workers(row: dict) -> int:
    """The --workers a row of the new code ran with."""
    return WORKERS if row["workers"] is None else row["workers"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
