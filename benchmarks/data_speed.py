"""Speed of the data pipeline on DRIVE: reading the 40 images, the 13-fold augmentation, the cache.

    python benchmarks/data_speed.py --data-root ../shared/data [--repeats 3] [--json]

Prints a table of the best and median wall time over `--repeats` runs. A
benchmark, not a test: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, markdown_table  # noqa: E402
from data import load_dataset  # noqa: E402
from data.prepare import build_augmented, load_cache, save_cache  # noqa: E402


def timed(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, min(times), statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-root", default=os.environ.get("SAUNETV2_DATA_ROOT", "../shared/data")
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rows = []
    ds, best, med = timed(
        lambda: load_dataset({"name": "drive", "data_root": args.data_root}), args.repeats
    )
    rows.append(("read DRIVE (40 images + labels + masks + 2nd_manual)", best, med))
    arrays, best, med = timed(lambda: build_augmented(ds, True, 42, progress=False), args.repeats)
    rows.append(
        (f"augment DRIVE train (20 -> {len(arrays['x'])} images, padded 592 x 592)", best, med)
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "drive.npz"
        _, best, med = timed(lambda: save_cache(path, arrays), args.repeats)
        rows.append((f"write cache ({path.stat().st_size / 2**20:.0f} MiB .npz)", best, med))
        _, best, med = timed(lambda: load_cache(path), args.repeats)
        rows.append(("load cache", best, med))

    if args.json:
        print(
            json.dumps(
                {
                    "machine": machine(),
                    "cpus": os.cpu_count(),
                    "rows": [
                        {"step": r[0], "best_s": round(r[1], 3), "median_s": round(r[2], 3)}
                        for r in rows
                    ],
                }
            )
        )
    else:
        print(f"DRIVE data pipeline, {machine()}, best / median of {args.repeats} runs\n")
        columns = [
            ("step", lambda r: r[0]),
            ("best (s)", lambda r: f"{r[1]:.2f}"),
            ("median (s)", lambda r: f"{r[2]:.2f}"),
        ]
        print(markdown_table(columns, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
